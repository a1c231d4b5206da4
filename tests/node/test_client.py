"""The typed clients a member platform uses, against a real local API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.client import AsyncClient, Client, ClientError, ItemProblem, Verdict

ITEMS = [
    {"kind": "phone", "value": "+86 138 0013 8000", "category": "telecom_fraud", "severity": 4},
    {"kind": "email", "value": "Mule@Mule-Ring.cn", "category": "money_mule"},
]


@pytest.fixture
async def server(make_app: Callable[[], web.Application]) -> Any:
    srv = TestServer(make_app())
    await srv.start_server()
    yield srv
    await srv.close()


async def test_async_client_typed_results(server: Any, api_token: str) -> None:
    base = str(server.make_url("/")).rstrip("/")
    async with AsyncClient(base, api_token) as c:
        receipt = await c.report(ITEMS)
        assert receipt.accepted == 2 and receipt.seq == 1 and len(receipt.hash) == 64
        v = await c.check("phone", "13800138000")
        assert isinstance(v, Verdict) and v.match and v.reporters == 1
        assert v.categories == ("telecom_fraud",) and v.max_severity == 4
        assert v.reported_by == ("bank-a",)
        assert v.first_reported is not None and v.first_reported.tzinfo == UTC
        [good, bad] = await c.query(
            [{"kind": "email", "value": "mule@mule-ring.cn"}, {"kind": "phone", "value": "12"}]
        )
        assert isinstance(good, Verdict) and good.match
        assert isinstance(bad, ItemProblem) and bad.index == 1 and bad.code == "invalid_value"
        with pytest.raises(ClientError) as e:
            await c.check("phone", "12")
        assert e.value.reason == "invalid_value"
        with pytest.raises(ClientError) as e:
            await c.report([{"kind": "phone", "value": "12", "category": "telecom_fraud"}])
        assert e.value.status == 422 and e.value.reason == "invalid_items"
        assert e.value.items[0]["index"] == 0
        r = await c.retract([{"kind": "email", "value": "mule@mule-ring.cn", "reason": "resolved"}])
        assert r.seq == 2
        assert not (await c.check("email", "MULE@mule-ring.cn")).match
    async with AsyncClient(base, "rm_wrong") as c:
        with pytest.raises(ClientError) as e:
            await c.status()
        assert e.value.status == 401 and e.value.reason == "unauthorized"


async def test_sync_client_typed_results(server: Any, api_token: str) -> None:
    base = str(server.make_url("/")).rstrip("/")
    c = Client(base, api_token)

    def work() -> tuple[Any, Verdict, Verdict]:
        return c.report(ITEMS), c.check("email", "mule@mule-ring.cn"), c.check("ip", "10.0.0.1")

    receipt, hit, miss = await asyncio.get_running_loop().run_in_executor(None, work)
    assert receipt.accepted == 2
    assert hit.match and hit.categories == ("money_mule",)
    assert not miss.match and miss.reporters == 0 and miss.kind == "ip"
    assert "rm_" not in repr(c) and api_token not in repr(c)


def test_unreachable_node_is_a_clear_error() -> None:
    with pytest.raises(ClientError) as e:
        Client("http://127.0.0.1:9", "rm_x", timeout=2).check("ip", "10.0.0.1")
    assert e.value.status == 0 and e.value.reason == "unreachable"
