"""Rapid interception across four real nodes (DESIGN §14), gossip every 2 s.

Each member is `riskmesh serve` in its own process (node.localnet through the
e2e Cluster). D watches values; A and B report and retract them; D's alerts
arrive through the cursor, Server-Sent Events and a webhook received by a real
local HTTP server that checks the HMAC of every body. C is alerted on a value
it queried an hour earlier. D restarts and the webhook endpoint goes down and
comes back: nothing is lost, nothing is delivered twice, everything in order.

The tests run in order over one consortium and each leaves every node running.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from cluster import Cluster, Member

from node.localnet import free_port, riskmesh, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEADLINE_S = 30.0
SECRET = "e2e-hook-secret-5d1"
HOUR_MS = 3_600_000
ENV = {
    "RISKMESH_GOSSIP_INTERVAL_S": "2",
    "RISKMESH_GOSSIP_TIMEOUT_S": "5",
    "RISKMESH_LOG_LEVEL": "info",
}


# -- a webhook endpoint and an SSE reader, each in its own thread ------------------------------


class HookServer:
    """A real HTTP server on a fixed port taking webhook POSTs; it checks each
    signature, records what it got, and can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[tuple[str, list[dict[str, Any]]]] = []
        self.bad_signatures = 0
        self.cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/riskmesh"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        with self.cond:
            if not hmac.compare_digest(request.headers.get("X-Riskmesh-Signature", ""), want):
                self.bad_signatures += 1
                self.cond.notify_all()
                return web.Response(status=401)
            alerts = json.loads(body)["alerts"]
            self.deliveries.append((request.headers["X-Riskmesh-Delivery"], alerts))
            self.cond.notify_all()
        return web.Response(status=204)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/riskmesh", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def ids(self) -> list[int]:
        with self.cond:
            return [a["id"] for _, alerts in self.deliveries for a in alerts]

    def wait_for_ids(self, n: int) -> list[int]:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: len({a["id"] for _, b in self.deliveries for a in b}) >= n, DEADLINE_S
            )
        assert ok, f"the webhook got {self.ids()}, waiting for {n} alerts"
        return self.ids()


class SSEReader:
    """``GET /v1/alerts/stream`` of one node, read line by line in a thread."""

    def __init__(self, node: Member, last_id: int | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.conn = http.client.HTTPConnection("127.0.0.1", node.api_port, timeout=120)
        headers = {"Authorization": f"Bearer {node.token}"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        self.conn.request("GET", "/v1/alerts/stream", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type", "").startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif not line and "data" in event:
                    with self.cond:
                        self.events.append(event)
                        self.cond.notify_all()
                    event = {}
        except (OSError, ValueError, AttributeError):
            pass  # the stream was closed (by us: http.client drops its file; or the node)

    def wait_for(self, n: int) -> list[dict[str, Any]]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.events) >= n, DEADLINE_S)
            got = list(self.events)
        assert ok, f"the stream gave {[e['id'] for e in got]}, waiting for {n}"
        return got

    def close(self) -> None:
        self.conn.close()


# -- the consortium ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook() -> Iterator[HookServer]:
    h = HookServer()
    h.start()
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, hook: HookServer) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("alerts"), "ABCD", ENV)
    c["D"].env.update(
        {"RISKMESH_ALERTS_WEBHOOK_URL": hook.url, "RISKMESH_ALERTS_WEBHOOK_SECRET": SECRET}
    )
    try:
        c.start()
        wait_until(
            "every node to hold epoch 1 and take reports",
            lambda: all(
                (st := c[n].status())["epochs"] and not st.get("syncing", False) for n in "ABCD"
            ),
            DEADLINE_S,
        )
        yield c
    finally:
        c.close()


def call(node: Member, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    code, got = node.call(method, path, body, timeout=30)
    assert code == status, (method, path, code, got)
    return got


def item(value: str, category: str = "money_mule", kind: str = "account") -> dict[str, Any]:
    return {"kind": kind, "value": value, "category": category, "severity": 5}


def cursor(node: Member, after: int, n: int) -> list[dict[str, Any]]:
    """Alerts after ``after`` until there are ``n`` (long polls; never a sleep)."""
    got: list[dict[str, Any]] = []
    while len(got) < n:
        page = call(node, "GET", f"/v1/alerts?after={after}&wait=20")
        assert page["alerts"], f"no alert came after {after} (have {got})"
        got += page["alerts"]
        after = page["next"]
    return got


# -- the story ---------------------------------------------------------------------------------


STATE: dict[str, Any] = {}


def test_an_urgent_report_at_a_alerts_d_by_cursor_sse_and_webhook(
    cluster: Cluster, hook: HookServer
) -> None:
    d, a = cluster["D"], cluster["A"]
    got = call(
        d,
        "POST",
        "/v1/watches",
        {"items": [{"kind": "account", "value": "alipay:mule_01", "ref": "payee-1"}]},
        status=201,
    )
    assert got["watching"] == 1 and got["results"][0]["match"] is False
    stream = SSEReader(d)
    STATE["stream"] = stream
    receipt = a.report([item("alipay:mule_01")])
    [alert] = cursor(d, 0, 1)
    assert alert["event"] == "reported" and alert["source"] == "watch"
    assert alert["value"] == "alipay:mule_01" and alert["ref"] == "payee-1"
    assert alert["entry"]["seq"] == receipt["entry"]["seq"]
    assert alert["entry"]["hash"] == receipt["entry"]["hash"]
    assert alert["verdict"]["match"] and alert["verdict"]["categories"] == ["money_mule"]
    assert alert["latency_ms"] >= 0
    [event] = stream.wait_for(1)
    assert event["id"] == alert["id"] and event["data"] == alert
    assert hook.wait_for_ids(1) == [alert["id"]]
    assert hook.bad_signatures == 0
    delivery, [hooked] = hook.deliveries[0]
    assert delivery == str(alert["id"]) and hooked == alert
    # nobody else watches it, and nobody else's raw value went anywhere
    for name in "ABC":
        assert call(cluster[name], "GET", "/v1/alerts")["alerts"] == []


def test_a_retraction_at_a_gives_a_retracted_alert_at_d(cluster: Cluster, hook: HookServer) -> None:
    d, a = cluster["D"], cluster["A"]
    a.retract([{"kind": "account", "value": "alipay:mule_01", "reason": "false_positive"}])
    [alert] = cursor(d, 1, 1)
    assert alert["event"] == "retracted" and alert["ref"] == "payee-1"
    assert alert["verdict"]["match"] is False
    assert STATE["stream"].wait_for(2)[1]["id"] == alert["id"]
    assert hook.wait_for_ids(2) == [1, 2]


def test_a_value_queried_at_c_an_hour_earlier_alerts_when_b_reports_it(
    cluster: Cluster,
) -> None:
    c, b = cluster["C"], cluster["B"]
    [v] = c.query([{"kind": "account", "value": "alipay:payee_77", "ref": "txn-9"}])
    assert v["match"] is False
    # C's upkeep stores the query (sealed) within a second or so ...
    db = sqlite3.connect(c.home / "riskmesh.db", timeout=10)
    try:
        wait_until(
            "C to store its recent query",
            lambda: db.execute("SELECT COUNT(*) FROM recent_tokens").fetchone()[0] > 0,
            DEADLINE_S,
        )
        # ... and an hour passes (the clock faked in C's records: it is as if the
        # query had been made an hour ago)
        with db:
            db.execute("UPDATE recent_tokens SET expires = expires - ?", (HOUR_MS,))
            db.execute(
                "UPDATE recent_batches SET at = at - ?, expires = expires - ?", (HOUR_MS, HOUR_MS)
            )
    finally:
        db.close()
    b.report([item("alipay:payee_77", "telecom_fraud")])
    [alert] = cursor(c, 0, 1)
    assert alert["source"] == "recent_query" and alert["ref"] == "txn-9"
    assert alert["value"] == "alipay:payee_77" and alert["event"] == "reported"


def test_restarting_d_loses_no_alert_and_delivers_none_twice(
    cluster: Cluster, hook: HookServer
) -> None:
    d, a = cluster["D"], cluster["A"]
    call(
        d,
        "POST",
        "/v1/watches",
        {"items": [{"kind": "account", "value": f"alipay:mule_{i}"} for i in range(2, 5)]},
        status=201,
    )
    before = call(d, "GET", "/v1/alerts")["alerts"]
    assert [x["id"] for x in before] == [1, 2]
    STATE["stream"].close()
    cluster.stop("D")
    a.report([item("alipay:mule_2")])  # while D is down
    cluster.start("D")
    a.report([item("alipay:mule_3")])  # and after
    got = cursor(d, 2, 2)
    assert sorted(x["value"] for x in got) == ["alipay:mule_2", "alipay:mule_3"]
    every = call(d, "GET", "/v1/alerts")["alerts"]
    ids = [x["id"] for x in every]
    assert ids == sorted(set(ids)) == [1, 2, 3, 4] and every[:2] == before
    # an SSE client resumes after the last id it saw
    stream = SSEReader(d, last_id=2)
    assert [e["id"] for e in stream.wait_for(2)] == [3, 4]
    stream.close()
    # the webhook got each exactly once, in order, across the restart
    assert hook.wait_for_ids(4) == [1, 2, 3, 4]
    st = d.status()["alerts"]
    assert st["webhook"]["cursor"] == 4 and st["last_id"] == 4


def test_a_webhook_endpoint_down_for_a_while_gets_everything_in_order(
    cluster: Cluster, hook: HookServer
) -> None:
    d, a = cluster["D"], cluster["A"]
    hook.stop()
    a.report([item("alipay:mule_4")])
    call(
        d,
        "POST",
        "/v1/watches",
        {"items": [{"kind": "phone", "value": "+86 139 0000 1111"}]},
        status=201,
    )
    a.report([item("+86 139 0000 1111", "phishing", kind="phone")])
    assert [x["id"] for x in cursor(d, 4, 2)] == [5, 6]  # the cursor does not wait for it
    wait_until(
        "D to have failed twice on the webhook",
        lambda: d.status()["alerts"]["webhook"]["consecutive_failures"] >= 2,
        DEADLINE_S,
    )
    st = d.status()["alerts"]["webhook"]
    assert st["pending"] == 2 and st["last_error"] and SECRET not in json.dumps(st)
    hook.start()
    assert hook.wait_for_ids(6) == [1, 2, 3, 4, 5, 6]
    assert hook.bad_signatures == 0
    wait_until(
        "D to count the delivery",
        lambda: d.status()["alerts"]["webhook"]["pending"] == 0,
        DEADLINE_S,
    )


def test_the_cli_watches_lists_and_shows_alerts(cluster: Cluster) -> None:
    d = cluster["D"]
    home = str(d.home)
    out = riskmesh(
        "watch",
        "add",
        "--home",
        home,
        "--kind",
        "phone",
        "--value",
        "+86 139 0000 1111",
        "--ref",
        "cli-case",
    )
    assert out.returncode == 0, out.stderr
    assert "MATCH" in out.stdout  # the retro-hunt: already reported
    out = riskmesh("watch", "list", "--home", home, "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert "cli-case" in [w["ref"] for w in listed["watches"]]
    assert "+86 139 0000 1111" not in out.stdout and "8613900001111" not in out.stdout
    out = riskmesh("alerts", "--home", home, "--after", "4", "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["id"] for x in lines] == [5, 6]
    out = riskmesh("alerts", "--home", home, "--after", "5")
    assert out.returncode == 0 and out.stdout.startswith("#6 ")
    out = riskmesh(
        "watch", "remove", "--home", home, "--kind", "phone", "--value", "+86 139 0000 1111"
    )
    assert out.returncode == 0 and "removed 2 watch(es)" in out.stdout, out.stdout
    out = riskmesh("alerts", "--home", home, "--after", "-1")
    assert out.returncode != 0


def test_no_watched_value_in_any_log(cluster: Cluster) -> None:
    values = ["mule_0", "mule_1", "mule_2", "mule_3", "mule_4", "payee_77", "13900001111"]
    for name in "ABCD":
        text = cluster.stderr(name) + cluster.log(name, tail=None)
        leaked = [v for v in values if v in text]
        assert not leaked, f"{name}'s log carries {leaked}"
