"""Alert delivery over the local API (DESIGN §14): cursor long-poll, Server-Sent
Events, webhooks with an HMAC signature, retries and a durable cursor.

The node is served in process (aiohttp's test server); the webhook endpoint is a
real local HTTP server that checks the signature. Every wait is for a
condition (an event set by a handler, a response), never a sleep.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api import NODE
from node.config import load_config
from node.core import Node
from node.delivery import ALERT_FEED, SIGNATURE_HEADER, WebhookDelivery, sign
from node.server import create_app

PHONE = "+8613800138000"
SECRET = "hook-secret-9f2c"


@pytest.fixture
async def api(
    make_app: Callable[[], web.Application], api_token: str
) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, str]]]:
    client: TestClient[Any, Any] = TestClient(TestServer(make_app()))
    await client.start_server()
    yield client, {"Authorization": f"Bearer {api_token}"}
    await client.close()


async def report(client: TestClient[Any, Any], auth: dict[str, str], value: str) -> None:
    item = {"kind": "phone", "value": value, "category": "money_mule"}
    resp = await client.post("/v1/reports", json={"items": [item]}, headers=auth)
    assert resp.status == 201, await resp.text()


async def watch(client: TestClient[Any, Any], auth: dict[str, str], *values: str) -> Any:
    items = [{"kind": "phone", "value": v, "ref": f"ref-{i}"} for i, v in enumerate(values)]
    resp = await client.post("/v1/watches", json={"items": items}, headers=auth)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def phones(n: int, base: int = 0) -> list[str]:
    return [f"+86138{base + i:08d}" for i in range(n)]


# -- the cursor ----------------------------------------------------------------------------


async def test_the_cursor_pages_in_id_order(api: Any) -> None:
    client, auth = api
    values = phones(5)
    await watch(client, auth, *values)
    for v in values:
        await report(client, auth, v)
    resp = await client.get("/v1/alerts?limit=2", headers=auth)
    page = await resp.json()
    assert [a["id"] for a in page["alerts"]] == [1, 2] and page["next"] == 2
    resp = await client.get(f"/v1/alerts?after={page['next']}&limit=10", headers=auth)
    page = await resp.json()
    assert [a["id"] for a in page["alerts"]] == [3, 4, 5] and page["next"] == 5
    assert [a["value"] for a in page["alerts"]] == values[2:]
    resp = await client.get("/v1/alerts?after=5", headers=auth)
    assert await resp.json() == {"alerts": [], "next": 5}


async def test_a_long_poll_answers_as_soon_as_an_alert_is_raised(api: Any) -> None:
    client, auth = api
    await watch(client, auth, PHONE)
    poll = asyncio.create_task(client.get("/v1/alerts?after=0&wait=30", headers=auth))
    # the poll is waiting (no alert yet) when the report comes
    feed = client.server.app[ALERT_FEED]
    while not feed._event._waiters:  # the handler is parked on the feed's event
        await asyncio.sleep(0)
    assert not poll.done()
    await report(client, auth, PHONE)
    resp = await asyncio.wait_for(poll, 5)
    [alert] = (await resp.json())["alerts"]
    assert alert["value"] == PHONE and alert["ref"] == "ref-0"


async def test_a_long_poll_with_nothing_new_answers_empty_after_its_wait(api: Any) -> None:
    client, auth = api
    resp = await client.get("/v1/alerts?after=7&wait=0.05", headers=auth)
    assert resp.status == 200 and await resp.json() == {"alerts": [], "next": 7}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("after=-1", "bad_after"),
        ("after=x", "bad_after"),
        ("limit=0", "bad_limit"),
        ("limit=1001", "bad_limit"),
        ("wait=61", "bad_wait"),
        ("wait=-1", "bad_wait"),
        ("wait=nan", "bad_wait"),
    ],
)
async def test_bad_cursor_parameters_are_400_naming_the_parameter(
    api: Any, query: str, code: str
) -> None:
    client, auth = api
    resp = await client.get(f"/v1/alerts?{query}", headers=auth)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == code


async def test_watch_routes_answer_specific_errors(api: Any) -> None:
    client, auth = api
    resp = await client.post("/v1/watches", json={"items": []}, headers=auth)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "empty_batch"
    resp = await client.post("/v1/watches", json={"x": 1}, headers=auth)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_request"
    bad = {"items": [{"kind": "phone", "value": PHONE}, {"kind": "phone", "value": "12"}]}
    resp = await client.post("/v1/watches", json=bad, headers=auth)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "invalid_items"
    assert body["error"]["items"][0]["index"] == 1
    assert "12" not in body["error"]["message"]
    resp = await client.delete("/v1/watches", json=bad, headers=auth)
    assert resp.status == 422
    resp = await client.get("/v1/watches?limit=0", headers=auth)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_limit"
    resp = await client.get("/v1/alerts")
    assert resp.status == 401
    resp = await client.get("/v1/alerts/stream", headers={**auth, "Last-Event-ID": "x"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_last_event_id"


# -- Server-Sent Events ----------------------------------------------------------------------


async def read_events(resp: Any, n: int) -> list[dict[str, Any]]:
    """The next ``n`` events of an SSE response: their id and parsed data."""
    out: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    while len(out) < n:
        line = (await asyncio.wait_for(resp.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("id: "):
            event["id"] = int(line[4:])
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line == "" and "data" in event:
            out.append(event)
            event = {}
    return out


async def test_sse_streams_alerts_and_last_event_id_resumes(api: Any) -> None:
    client, auth = api
    values = phones(4)
    await watch(client, auth, *values)
    await report(client, auth, values[0])
    resp = await client.get("/v1/alerts/stream", headers=auth)
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    [first] = await read_events(resp, 1)  # what was there before
    assert first["id"] == 1 and first["event"] == "alert" and first["data"]["id"] == 1
    await report(client, auth, values[1])  # and what comes while connected
    [second] = await read_events(resp, 1)
    assert second["id"] == 2 and second["data"]["value"] == values[1]
    resp.close()  # the client goes away
    # while it is away, more alerts; it comes back with the last id it saw
    await report(client, auth, values[2])
    await report(client, auth, values[3])
    resp = await client.get("/v1/alerts/stream", headers={**auth, "Last-Event-ID": "2"})
    got = await read_events(resp, 2)
    assert [e["id"] for e in got] == [3, 4]
    resp.close()


async def test_shutdown_ends_streams_and_long_polls(
    make_app: Callable[[], web.Application], api_token: str
) -> None:
    auth = {"Authorization": f"Bearer {api_token}"}
    client: TestClient[Any, Any] = TestClient(TestServer(make_app()))
    await client.start_server()
    feed = client.server.app[ALERT_FEED]
    stream = await client.get("/v1/alerts/stream", headers=auth)
    poll = asyncio.create_task(client.get("/v1/alerts?wait=60", headers=auth))
    while len(feed._event._waiters) < 2:
        await asyncio.sleep(0)
    await asyncio.wait_for(client.server.app.shutdown(), 5)
    resp = await asyncio.wait_for(poll, 5)
    assert (await resp.json())["alerts"] == []
    assert await asyncio.wait_for(stream.content.read(), 5) is not None
    await client.close()


# -- webhooks ------------------------------------------------------------------------------


class Endpoint:
    """A real local HTTP server taking webhook POSTs; it checks each signature and
    can be made to fail."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.received: list[dict[str, Any]] = []
        self.deliveries: list[str] = []
        self.attempts = 0
        self.fail_next = 0
        self.bad_signatures = 0
        self.changed = asyncio.Event()
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        want = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        try:
            if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), want):
                self.bad_signatures += 1
                return web.Response(status=401)
            if self.fail_next:
                self.fail_next -= 1
                return web.Response(status=503)
            alerts = json.loads(body)["alerts"]
            self.deliveries.append(request.headers["X-Riskmesh-Delivery"])
            assert self.deliveries[-1] == str(alerts[0]["id"])
            self.received += alerts
            return web.Response(status=204)
        finally:
            self.changed.set()

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    async def wait_for(self, ids: int) -> None:
        while len({a["id"] for a in self.received}) < ids:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


def hook_for(app: web.Application, url: str, **kw: Any) -> WebhookDelivery:
    node: Node = app[NODE]
    return WebhookDelivery(node.alerts, app[ALERT_FEED], url, SECRET, rng=random.Random(1), **kw)


async def test_a_webhook_gets_every_alert_in_order_with_a_valid_signature(
    api: Any,
) -> None:
    client, auth = api
    endpoint = Endpoint(SECRET)
    await endpoint.server.start_server()
    hook = hook_for(client.server.app, endpoint.url)
    task = asyncio.create_task(hook.run())
    try:
        values = phones(3)
        await watch(client, auth, *values)
        for v in values:
            await report(client, auth, v)
        await endpoint.wait_for(3)
        assert [a["id"] for a in endpoint.received] == [1, 2, 3]
        assert [a["value"] for a in endpoint.received] == values
        assert endpoint.bad_signatures == 0
        node: Node = client.server.app[NODE]
        assert node.alerts.cursor("webhook") == 3
        st = (await (await client.get("/v1/status", headers=auth)).json())["alerts"]["webhook"]
        assert st["delivered"] == 3 and st["pending"] == 0 and st["cursor"] == 3
        assert st["target"] == endpoint.url.rsplit("/", 1)[0]
    finally:
        task.cancel()
        await endpoint.server.close()


async def test_a_failing_endpoint_is_retried_with_back_off_and_gets_all_in_order(
    api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client, auth = api
    endpoint = Endpoint(SECRET)
    endpoint.fail_next = 3
    await endpoint.server.start_server()
    hook = hook_for(client.server.app, endpoint.url, base_s=0.01, cap_s=0.05)
    task = asyncio.create_task(hook.run())
    try:
        values = phones(4, 100)
        await watch(client, auth, *values)
        for v in values:
            await report(client, auth, v)
        await endpoint.wait_for(4)
        ids = [a["id"] for a in endpoint.received]
        assert ids == sorted(ids) == [1, 2, 3, 4]  # in order, none twice
        assert endpoint.attempts >= 4
        node: Node = client.server.app[NODE]
        assert node.alerts.webhook.failures == 3
        assert node.alerts.webhook.consecutive_failures == 0
        text = caplog.text
        assert "answered 503" in text
        assert SECRET not in text and "hook?" not in text
        for v in values:
            assert v not in text
    finally:
        task.cancel()
        await endpoint.server.close()


def test_back_off_is_exponential_jittered_and_capped() -> None:
    hook = WebhookDelivery.__new__(WebhookDelivery)
    hook.base_s, hook.cap_s, hook.rng = 1.0, 60.0, random.Random(3)
    for n, full in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (30, 60.0)]:
        for _ in range(20):
            d = hook.backoff(n)
            assert full / 2 <= d <= full
    assert len({round(hook.backoff(3), 6) for _ in range(10)}) > 1  # jittered


async def test_the_webhook_cursor_survives_a_restart_and_nothing_is_sent_twice(
    node_home: Path, api_token: str, tmp_path: Path
) -> None:
    auth = {"Authorization": f"Bearer {api_token}"}
    endpoint = Endpoint(SECRET)
    await endpoint.server.start_server()
    values = phones(4, 200)
    try:
        for round_ in range(2):
            app = create_app(load_config(node_home, env={}), jobs=False)
            client: TestClient[Any, Any] = TestClient(TestServer(app))
            await client.start_server()
            task = asyncio.create_task(hook_for(app, endpoint.url).run())
            if round_ == 0:
                await watch(client, auth, *values)
            for v in values[round_ * 2 : round_ * 2 + 2]:
                await report(client, auth, v)
            await endpoint.wait_for(2 * (round_ + 1))
            task.cancel()
            await client.close()  # the node closes: a restart
        assert [a["id"] for a in endpoint.received] == [1, 2, 3, 4]
    finally:
        await endpoint.server.close()


async def test_a_dead_endpoint_never_blocks_serving(api: Any) -> None:
    client, auth = api
    hung = asyncio.Event()
    gate = asyncio.Event()  # never set: the endpoint never answers

    async def black_hole(request: web.Request) -> web.Response:
        hung.set()
        await gate.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", black_hole)
    server = TestServer(app)
    await server.start_server()
    hook = hook_for(client.server.app, str(server.make_url("/hook")), timeout_s=30.0)
    task = asyncio.create_task(hook.run())
    try:
        await watch(client, auth, PHONE, "+8613912345678")
        await report(client, auth, PHONE)
        await asyncio.wait_for(hung.wait(), 5)  # the webhook is stuck on its POST
        # meanwhile the node serves, and the other ways out deliver
        await report(client, auth, "+8613912345678")
        resp = await asyncio.wait_for(client.get("/v1/alerts", headers=auth), 2)
        assert [a["id"] for a in (await resp.json())["alerts"]] == [1, 2]
        resp = await asyncio.wait_for(
            client.post(
                "/v1/query", json={"items": [{"kind": "phone", "value": PHONE}]}, headers=auth
            ),
            2,
        )
        assert (await resp.json())["results"][0]["match"] is True
    finally:
        task.cancel()
        gate.set()
        await server.close()


def test_signature_and_repr_never_show_the_secret() -> None:
    body = b'{"alerts":[]}'
    assert sign(SECRET.encode(), body) == (
        "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    hook = WebhookDelivery.__new__(WebhookDelivery)
    hook.target = "http://127.0.0.1:9"
    assert SECRET not in repr(hook) and repr(hook) == "WebhookDelivery('http://127.0.0.1:9')"
