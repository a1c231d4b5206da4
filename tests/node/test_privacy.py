"""The report and query paths never write a raw identifier to disk or to a log.

Raw identifiers are canonicalised and tokenised in the node and go no further:
the database holds tokens (and this member's own values only sealed), and no
log line — the access log included — carries a raw value or its canonical form.
"""

from __future__ import annotations

import json
import logging
import signal
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from alertkit import Mesh
from nodeproc import call, free_port, node_process

from contracts.errors import RequestRefused
from node.server import RedactingAccessLogger

READY_DEADLINE_S = 20.0
STOP_DEADLINE_S = 20.0

# (kind, raw value as a platform sends it, category) — reported, then queried.
REPORTED = [
    ("phone", "+86 138 0013 8000", "telecom_fraud"),
    ("email", " Fraud.Ster@Mule-Ring.CN ", "phishing"),
    ("bank_card", "4532 0151 1283 0366", "card_cashout"),
    ("id_number", "CN:11010519491231002X", "fake_account_opening"),
    ("ip", "36.112.44.77", "account_takeover"),
    ("device", "imei:490154203237518", "device_risk"),
    ("account", "alipay:scam_acct_771", "money_mule"),
    ("merchant", "uscc:91350100M000100Y43", "merchant_fraud"),
]

# Queried only: other spellings of reported values, values nobody reported, invalid values.
QUERIED_ONLY = [
    ("phone", "13800138000"),
    ("phone", "008613800138000"),
    ("phone", "+1 (650) 253-0000"),
    ("phone", "139 1234 5678"),
    ("email", "innocent.bystander@example.org"),
    ("email", "not-an-email-zq9"),
    ("bank_card", "4111-1111-1111-1111"),
    ("bank_card", "5500 0000 0000 0004"),
    ("bank_card", "4111 1111 1111 1112"),  # fails Luhn
    ("id_number", "CN:110105194912310029"),  # wrong check digit
    ("ip", "::ffff:198.51.100.23"),
    ("ip", "2001:db8::dead:beef"),
    ("ip", "999.88.77.66"),  # invalid
    ("device", "imei:356938035643809"),
    ("account", "alipay:harmless_user_42"),
]

# Every raw spelling above and every canonical or distinctive part of it.
SECRETS = sorted(
    {v.strip() for _, v, _ in REPORTED}
    | {v for _, v in QUERIED_ONLY}
    | {
        "+8613800138000",
        "13800138000",
        "138 0013 8000",
        "fraud.ster@mule-ring.cn",
        "Fraud.Ster@Mule-Ring.CN",
        "4532015112830366",
        "4532 0151 1283 0366",
        "36.112.44.77",
        "4111111111111111",
        "4111 1111 1111 1111",
        "11010519491231002X",
        "11010519491231002x",
        "203.0.113.77",
        "490154203237518",
        "scam_acct_771",
        "91350100M000100Y43",
        "+16502530000",
        "6502530000",
        "+8613912345678",
        "13912345678",
        "innocent.bystander@example.org",
        "not-an-email-zq9",
        "5500000000000004",
        "4111111111111112",
        "110105194912310029",
        "198.51.100.23",
        "2001:db8::dead:beef",
        "999.88.77.66",
        "356938035643809",
        "harmless_user_42",
    }
)


def encodings(secret: str) -> Iterator[bytes]:
    yield secret.encode("utf-8")
    yield secret.encode("utf-16-le")
    yield secret.encode("utf-16-be")
    quoted = urllib.parse.quote(secret, safe="")
    if quoted != secret:
        yield quoted.encode()


def leaks_in_bytes(blob: bytes) -> list[str]:
    return [s for s in SECRETS if any(enc in blob for enc in encodings(s))]


def leaks_in_text(text: str) -> list[str]:
    return leaks_in_bytes(text.encode("utf-8"))


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_no_leak_on_disk(home: Path) -> None:
    files = files_under(home)
    assert any(p.name == "riskmesh.db" for p in files), files
    for p in files:
        found = leaks_in_bytes(p.read_bytes())
        assert not found, f"{p.relative_to(home)} contains raw identifiers {found}"


def report_items() -> list[dict[str, Any]]:
    return [{"kind": k, "value": v, "category": c, "severity": 4} for k, v, c in REPORTED]


def query_items() -> list[dict[str, str]]:
    return [{"kind": k, "value": v} for k, v, _ in REPORTED] + [
        {"kind": k, "value": v} for k, v in QUERIED_ONLY
    ]


def query_path(kind: str, value: str) -> str:
    return f"/v1/query/{kind}/{urllib.parse.quote(value, safe='')}"


def test_secret_list_is_sane() -> None:
    # The scan must not trip on the words the node legitimately stores.
    for harmless in (b"phone", b"email", b"bank_card", b"telecom_fraud", b"bank-a"):
        assert not leaks_in_bytes(harmless)
    assert "+8613800138000" in SECRETS and "4532015112830366" in SECRETS


# -- in process: database files and every log record ------------------------------------


async def test_report_and_query_leave_no_raw_value_on_disk_or_in_logs(
    aiohttp_client: Any,
    make_app: Callable[[], web.Application],
    node_home: Path,
    api_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # Serve with the access logger `riskmesh serve` uses (TestServer ignores its kwargs,
    # so the runner gets it through start_server).
    server = TestServer(make_app())
    await server.start_server(access_log_class=RedactingAccessLogger)
    client = await aiohttp_client(server)
    auth = {"Authorization": f"Bearer {api_token}"}

    resp = await client.post("/v1/reports", json={"items": report_items()}, headers=auth)
    assert resp.status == 201, await resp.text()

    # One item refused: the whole report gets 422 and its message names no value.
    bad = [*report_items()[:2], {"kind": "bank_card", "value": "4111 1111 1111 1112"}]
    for item in bad:
        item["category"] = "other"
    resp = await client.post("/v1/reports", json={"items": bad}, headers=auth)
    assert resp.status == 422
    assert not leaks_in_text(await resp.text())

    resp = await client.post("/v1/query", json={"items": query_items()}, headers=auth)
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert [r.get("match") for r in results[: len(REPORTED)]] == [True] * len(REPORTED)
    errors = [r for r in results if "error" in r]
    assert len(errors) == 4  # the four invalid values
    assert not leaks_in_text(json.dumps(errors))

    resp = await client.post(
        "/v1/query",
        json={"items": [{"kind": "phone", "value": "+8613800138000"}], "canonical": True},
        headers=auth,
    )
    assert resp.status == 200
    assert (await resp.json())["results"][0]["match"] is True

    for kind, value in [(k, v) for k, v, _ in REPORTED] + QUERIED_ONLY:
        resp = await client.get(query_path(kind, value), headers=auth)
        assert resp.status in (200, 422)
        if resp.status == 422:
            assert not leaks_in_text(await resp.text())

    # Retract one, then query it again.
    resp = await client.post(
        "/v1/retractions",
        json={"items": [{"kind": "ip", "value": "36.112.44.77", "reason": "false_positive"}]},
        headers=auth,
    )
    assert resp.status == 201
    resp = await client.get(query_path("ip", "36.112.44.77"), headers=auth)
    assert (await resp.json())["match"] is False

    # While the node runs: the database, its -wal and -shm, config, keys, everything.
    files = {p.name for p in files_under(node_home)}
    assert "riskmesh.db-wal" in files, files
    assert_no_leak_on_disk(node_home)

    # After a clean close (WAL checkpointed into the main file).
    await client.close()
    assert_no_leak_on_disk(node_home)

    records = caplog.records
    assert records, "nothing was logged at DEBUG: the log check would be vacuous"
    access = [r.getMessage() for r in records if r.name == "aiohttp.access"]
    assert any("GET /v1/query/{kind}/{value} 200" in m for m in access), access
    log_text = caplog.text + "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records
    )
    found = leaks_in_text(log_text)
    assert not found, f"log carries raw identifiers {found}"


# -- watches and alerts: the store, the logs and the peer API ---------------------------


class RecordingMesh(Mesh):
    """Two members in process; every gossip message (before sealing) is kept."""

    def __init__(self, root: Path) -> None:
        self.wire: list[bytes] = []
        super().__init__(root, "ab")

    def _converse(self, src: str, dst: str, data: bytes) -> None:
        msg: bytes | None = data
        a, b = src, dst
        while msg is not None:
            self.wire.append(msg)
            msg = self.nodes[b].receive(self.id(a), msg, self.clock())
            a, b = b, a


async def test_watches_and_alerts_leave_no_raw_value_on_disk_in_logs_or_on_the_peer_api(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mesh = RecordingMesh(tmp_path)
    a, b = mesh["a"], mesh["b"]
    now = mesh.clock
    # a watches every value (with refs), and queries them all (recent queries)
    watched = [
        {"kind": k, "value": v, "ref": f"case-{i}"}
        for i, (k, v) in enumerate([(k, v) for k, v, _ in REPORTED] + QUERIED_ONLY)
    ]
    valid = []
    for item in watched:
        try:
            a.alerts.watch([item], now())
            valid.append(item)
        except Exception as e:  # an invalid value is refused: its message names no value
            assert not leaks_in_text(str(e)), e
    assert len(valid) == len(watched) - 4
    a.query([{**i, "ref": "q"} for i in watched], now())
    a.alerts.upkeep(now())
    # b reports them (urgent ones pushed at once), then retracts one; a is alerted
    mesh.clock.advance(1_000)
    items = report_items()
    try:
        b.report(items, now())
    except RequestRefused as e:  # values on a warning list are refused: report the rest
        refused = {i["index"] for i in e.items or []}
        assert len(refused) < len(items) and not leaks_in_text(json.dumps(e.items))
        items = [x for i, x in enumerate(items) if i not in refused]
        b.report(items, now())
    mesh.flush()
    mesh.sync("b", "a")
    mesh.clock.advance(1_000)
    gone = items[0]
    b.retract([{"kind": gone["kind"], "value": gone["value"], "reason": "resolved"}], now())
    mesh.flush()
    alerts = a.alerts.after(0, 1000)
    assert {x["event"] for x in alerts} == {"reported", "retracted"}
    # each report alerts every watch of its value (one value, several spellings and refs)
    assert len([x for x in alerts if x["source"] == "watch"]) >= len(items) + 1
    # the alerts carry the value (local API only) ...
    assert leaks_in_text(json.dumps(alerts))
    # ... but nothing else does: status, the watch list, the peer API, the logs, the disk
    for view in (a.status(now()), a.alerts.watches(now()), b.status(now())):
        found = leaks_in_text(json.dumps(view))
        assert not found, found
    assert mesh.wire, "no gossip was carried: the check would be vacuous"
    found = leaks_in_bytes(b"".join(mesh.wire))
    assert not found, f"the peer API carried raw values {found}"
    log_text = caplog.text + "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert "alert(s) on entry" in log_text  # alerts were logged: the check is not vacuous
    found = leaks_in_text(log_text)
    assert not found, f"log carries raw identifiers {found}"
    mesh.close()
    for name in "ab":
        home = tmp_path / name
        for p in files_under(home):
            found = leaks_in_bytes(p.read_bytes())
            assert not found, f"{name}/{p.relative_to(home)} contains raw identifiers {found}"


# -- a real `riskmesh serve`: its stderr, access log included -------------------------


def lines_with(text: str, needles: Iterable[str]) -> list[str]:
    return [line for line in text.splitlines() if any(n in line for n in needles)]


@pytest.mark.e2e
def test_served_node_stderr_and_access_log_carry_no_raw_value(
    node_home: Path, tmp_path: Path, api_token: str
) -> None:
    stderr_path = tmp_path / "serve.stderr"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with node_process(node_home, port, stderr_path, {"RISKMESH_LOG_LEVEL": "debug"}) as proc:
        status, body = call(base, api_token, "POST", "/v1/reports", {"items": report_items()})
        assert status == 201, body
        status, body = call(base, api_token, "GET", "/v1/query/phone/13800138000")
        assert status == 200 and body["match"] is True, body
        status, body = call(base, api_token, "GET", query_path("phone", "+86 138 0013 8000"))
        assert status == 200 and body["match"] is True, body
        status, body = call(base, api_token, "GET", query_path("bank_card", "4111111111111112"))
        assert status == 422, body
        # unauthenticated: refused, and still not logged
        status, _ = call(base, None, "GET", "/v1/query/email/innocent.bystander@example.org")
        assert status == 401
        status, body = call(base, api_token, "POST", "/v1/query", {"items": query_items()})
        assert status == 200, body
        status, _ = call(
            base,
            api_token,
            "POST",
            "/v1/retractions",
            {"items": [{"kind": "ip", "value": "36.112.44.77", "reason": "resolved"}]},
        )
        assert status == 201
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_DEADLINE_S)

    text = stderr_path.read_text(errors="replace")
    # The access log was on (else this check would prove nothing) and redacted.
    assert "GET /v1/query/{kind}/{value} 200" in text, text[-3000:]
    assert "POST /v1/query 200" in text, text[-3000:]
    assert "POST /v1/reports 201" in text, text[-3000:]
    found = leaks_in_text(text)
    assert not found, f"stderr carries raw identifiers {found}: {lines_with(text, found)}"
    assert_no_leak_on_disk(node_home)
