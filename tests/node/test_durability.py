"""A report acknowledged with 201 survives a hard kill of the node process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from nodeproc import call, free_port, node_process

pytestmark = pytest.mark.e2e

READY_DEADLINE_S = 20.0

REPORTS = [
    ({"kind": "phone", "value": "+86 139 1234 5678"}, "telecom_fraud"),
    ({"kind": "email", "value": "Mule.Account@Mule-Ring.cn"}, "money_mule"),
    ({"kind": "bank_card", "value": "5180 2466 9811 2042"}, "card_cashout"),
    ({"kind": "ip", "value": "36.112.44.99"}, "phishing"),
    ({"kind": "device", "value": "imei:490154203237518"}, "device_risk"),
    ({"kind": "account", "value": "alipay:mule_7781"}, "money_laundering"),
]


def test_acknowledged_reports_survive_sigkill(node_home: Path, tmp_path: Path) -> None:
    token = (node_home / "api-token").read_text().strip()
    stderr_path = tmp_path / "serve.stderr"

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with node_process(node_home, port, stderr_path) as proc:
        for i, (item, category) in enumerate(REPORTS):
            status, body = call(
                base, token, "POST", "/v1/reports", {"items": [{**item, "category": category}]}
            )
            assert status == 201, body
            assert body["accepted"] == 1
            assert body["entry"]["seq"] == i + 1
        # Hard kill right after the last acknowledgement: no shutdown hooks, no checkpoint.
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with node_process(node_home, port, stderr_path):
        items = [item for item, _ in REPORTS]
        status, body = call(base, token, "POST", "/v1/query", {"items": items})
        assert status == 200, body
        results = body["results"]
        assert len(results) == len(REPORTS)
        for (item, category), verdict in zip(REPORTS, results, strict=True):
            assert verdict["match"] is True, (item, verdict)
            assert verdict["kind"] == item["kind"]
            assert verdict["categories"] == [category]
            assert verdict["reporters"] == 1
        status, st = call(base, token, "GET", "/v1/status")
        assert status == 200
        [me] = st["members"]
        assert me["head"]["seq"] == len(REPORTS)
