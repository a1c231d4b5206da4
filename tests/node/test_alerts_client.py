"""Watches and alert iteration in the typed clients (Client, AsyncClient), against a
real local API served in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.client import Alert, AsyncClient, Client, ClientError, Verdict

PAYEE = {"kind": "account", "value": "alipay:payee_881", "ref": "order-7731"}
MULE = {"kind": "account", "value": "alipay:payee_881", "category": "money_mule"}


@pytest.fixture
async def base(make_app: Callable[[], web.Application]) -> AsyncIterator[str]:
    srv = TestServer(make_app())
    await srv.start_server()
    yield str(srv.make_url("/")).rstrip("/")
    await srv.close()


async def test_async_client_watches_and_follows_alerts(base: str, api_token: str) -> None:
    async with AsyncClient(base, api_token) as c:
        [v] = await c.watch([PAYEE])
        assert isinstance(v, Verdict) and not v.match
        assert (await c.watches())["watching"] == 1
        assert [a async for a in c.alerts()] == []  # nothing yet, and not following

        got: list[Alert] = []

        async def follow() -> None:
            async for alert in c.alerts(follow=True, wait=10):
                got.append(alert)
                if len(got) == 2:
                    return

        task = asyncio.create_task(follow())
        await c.report([MULE])
        await c.retract([{"kind": "account", "value": "alipay:payee_881", "reason": "resolved"}])
        await asyncio.wait_for(task, 10)
        first, second = got
        assert (first.id, first.event, second.id, second.event) == (1, "reported", 2, "retracted")
        assert first.value == "alipay:payee_881" and first.ref == "order-7731"
        assert first.source == "watch" and first.at.tzinfo == UTC
        assert first.verdict.match and first.verdict.categories == ("money_mule",)
        assert not second.verdict.match
        assert first.entry["seq"] == 1 and first.latency_ms >= 0
        # resuming after an id gives only what came after it
        assert [a.id async for a in c.alerts(after=1)] == [2]
        assert await c.unwatch([{"kind": "account", "value": "alipay:payee_881"}]) == 1
        with pytest.raises(ClientError) as e:
            await c.watch([{"kind": "account", "value": ""}])
        assert e.value.status == 422 and e.value.reason == "invalid_items"


async def test_sync_client_iterates_alerts(base: str, api_token: str) -> None:
    c = Client(base, api_token, timeout=10)

    def work() -> tuple[list[Verdict], list[Alert], list[int]]:
        verdicts = c.watch([PAYEE])
        c.report([MULE])
        every = list(c.alerts())
        later = [a.id for a in c.alerts(after=every[-1].id)]
        return verdicts, every, later

    verdicts, every, later = await asyncio.get_running_loop().run_in_executor(None, work)
    assert len(verdicts) == 1 and not verdicts[0].match
    [alert] = every
    assert alert.event == "reported" and alert.ref == "order-7731" and later == []


def test_alert_from_json_keeps_every_field() -> None:
    d: dict[str, Any] = {
        "id": 7,
        "at": "2026-01-02T03:04:05.678Z",
        "event": "retracted",
        "kind": "phone",
        "ref": None,
        "value": "+8613800138000",
        "source": "recent_query",
        "verdict": {"match": False, "kind": "phone"},
        "entry": {"log": "abc", "seq": 3, "hash": "00"},
        "latency_ms": 12,
    }
    a = Alert.from_json(d)
    assert (a.id, a.event, a.source, a.ref, a.latency_ms) == (
        7,
        "retracted",
        "recent_query",
        None,
        12,
    )
    assert a.at.year == 2026 and a.at.tzinfo == UTC and a.entry["seq"] == 3
