"""A report acknowledged with 201 survives a hard kill of the node process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

READY_DEADLINE_S = 20.0

REPORTS = [
    ({"kind": "phone", "value": "+86 139 1234 5678"}, "telecom_fraud"),
    ({"kind": "email", "value": "Mule.Account@Example.com"}, "money_mule"),
    ({"kind": "bank_card", "value": "5500 0000 0000 0004"}, "card_cashout"),
    ({"kind": "ip", "value": "198.51.100.99"}, "phishing"),
    ({"kind": "device", "value": "imei:490154203237518"}, "device_risk"),
    ({"kind": "account", "value": "alipay:mule_7781"}, "money_laundering"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(home: Path) -> list[str]:
    exe = shutil.which("riskmesh")
    if exe is not None:
        return [exe, "serve", "--home", str(home)]
    code = "from node.cli import main; main()"
    return [sys.executable, "-c", code, "serve", "--home", str(home)]


def call(base: str, token: str | None, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One HTTP call; returns (status, decoded JSON body or None)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, None


@contextmanager
def node_process(
    home: Path, port: int, stderr_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `riskmesh serve` on ``port``; ready when GET /v1/status answers. Always killed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMESH_")}
    env["RISKMESH_API_LISTEN"] = f"127.0.0.1:{port}"
    env.update(extra_env or {})
    token = (home / "api-token").read_text().strip()
    base = f"http://127.0.0.1:{port}"
    with stderr_path.open("ab") as err:
        proc = subprocess.Popen(serve_command(home), env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"node exited with {proc.returncode} before it answered:\n"
                    + stderr_path.read_text(errors="replace")[-3000:]
                )
            try:
                status, body = call(base, token, "GET", "/v1/status")
                if status == 200:
                    break
                if status >= 500:
                    pytest.fail(f"GET /v1/status answered {status}: {body!r}")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"node did not answer GET /v1/status within {READY_DEADLINE_S}s:\n"
                    + stderr_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


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
