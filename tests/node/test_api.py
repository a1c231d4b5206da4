"""The local API: every endpoint and every error class (DESIGN §11)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from contracts.policy import DAY_MS
from node.api import NODE as CORE

Client = TestClient  # type: ignore[type-arg]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(aiohttp_client: Any, make_app: Callable[[], web.Application]) -> Any:
    return await aiohttp_client(make_app())


async def post(client: Any, path: str, body: Any, token: str, **kw: Any) -> tuple[int, Any]:
    r = await client.post(path, json=body, headers=auth(token), **kw)
    return r.status, await r.json()


REPORT = {
    "kind": "phone",
    "value": "+86 138 0013 8000",
    "category": "telecom_fraud",
    "severity": 4,
    "ttl_days": 30,
    "ref": "case-1",
}


async def test_report_then_query_matches(client: Any, api_token: str, clock: Any) -> None:
    status, body = await post(client, "/v1/reports", {"items": [REPORT]}, api_token)
    assert status == 201, body
    assert body["accepted"] == 1 and body["entry"]["seq"] == 1 and len(body["entry"]["hash"]) == 64
    status, body = await post(
        client,
        "/v1/query",
        {
            "items": [
                {"kind": "phone", "value": "13800138000"},
                {"kind": "phone", "value": "+8613800138001"},
                {"kind": "email", "value": "nobody@example.com"},
            ]
        },
        api_token,
    )
    assert status == 200
    hit, miss, miss2 = body["results"]
    assert hit["match"] is True and hit["reporters"] == 1 and hit["reported_by"] == ["bank-a"]
    assert hit["categories"] == ["telecom_fraud"] and hit["max_severity"] == 4
    assert hit["first_reported"] == "2023-11-14T22:13:20.000Z"
    assert hit["expires"] == "2023-12-14T22:13:20.000Z"
    assert miss == {"match": False, "kind": "phone"} and miss2 == {"match": False, "kind": "email"}


async def test_single_query(client: Any, api_token: str) -> None:
    await post(client, "/v1/reports", {"items": [REPORT]}, api_token)
    r = await client.get("/v1/query/phone/13800138000", headers=auth(api_token))
    assert r.status == 200 and (await r.json())["match"] is True
    r = await client.get("/v1/query/phone/12", headers=auth(api_token))
    assert r.status == 422
    assert (await r.json())["error"]["code"] == "invalid_value"


async def test_query_already_canonical(client: Any, api_token: str) -> None:
    await post(client, "/v1/reports", {"items": [REPORT]}, api_token)
    status, body = await post(
        client,
        "/v1/query",
        {"canonical": True, "items": [{"kind": "phone", "value": "+8613800138000"}]},
        api_token,
    )
    assert status == 200 and body["results"][0]["match"] is True


async def test_expired_report_no_longer_matches(client: Any, api_token: str, clock: Any) -> None:
    await post(client, "/v1/reports", {"items": [REPORT]}, api_token)
    clock.now += 31 * DAY_MS
    _, body = await post(
        client, "/v1/query", {"items": [{"kind": "phone", "value": "13800138000"}]}, api_token
    )
    assert body["results"][0]["match"] is False


async def test_retraction(client: Any, api_token: str) -> None:
    await post(client, "/v1/reports", {"items": [REPORT]}, api_token)
    status, body = await post(
        client,
        "/v1/retractions",
        {"items": [{"kind": "phone", "value": "0086 138 0013 8000", "reason": "appeal_upheld"}]},
        api_token,
    )
    assert status == 201 and body["entry"]["seq"] == 2
    _, body = await post(
        client, "/v1/query", {"items": [{"kind": "phone", "value": "13800138000"}]}, api_token
    )
    assert body["results"][0]["match"] is False
    # retracting again: nothing live to retract
    status, body = await post(
        client,
        "/v1/retractions",
        {"items": [{"kind": "phone", "value": "13800138000", "reason": "appeal_upheld"}]},
        api_token,
    )
    assert status == 422 and body["error"]["items"][0]["code"] == "not_reported"


async def test_report_batch_all_or_nothing(client: Any, api_token: str) -> None:
    good = dict(REPORT)
    bad = {**REPORT, "value": "4111 1111 1111 1112", "kind": "bank_card"}
    status, body = await post(client, "/v1/reports", {"items": [good, bad]}, api_token)
    assert status == 422
    assert body["error"]["code"] == "invalid_items"
    assert body["error"]["items"] == [
        {"index": 1, "code": "invalid_value", "message": body["error"]["items"][0]["message"]}
    ]
    assert (
        "luhn" in body["error"]["items"][0]["message"].lower()
        or "check" in body["error"]["items"][0]["message"].lower()
    )
    _, q = await post(
        client, "/v1/query", {"items": [{"kind": "phone", "value": "13800138000"}]}, api_token
    )
    assert q["results"][0]["match"] is False
    r = await client.get("/v1/status", headers=auth(api_token))
    me = (await r.json())["members"][0]
    assert me["head"] is None


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"kind": "shoe", "value": "42", "category": "other"}, "unknown_kind"),
        ({"kind": "phone", "value": "12", "category": "other"}, "invalid_value"),
        ({"kind": "email", "value": "no-at-sign", "category": "phishing"}, "invalid_value"),
        ({"kind": "bank_card", "value": "1234", "category": "card_cashout"}, "invalid_value"),
        (
            {"kind": "id_number", "value": "CN:110105194912310021", "category": "other"},
            "invalid_value",
        ),
        ({"kind": "merchant", "value": "no-scheme", "category": "merchant_fraud"}, "invalid_value"),
        (
            {"kind": "device", "value": "imei:490154203237519", "category": "device_risk"},
            "invalid_value",
        ),
        (
            {
                "kind": "account",
                "value": "iban:GB82 WEST 1234 5698 7654 33",
                "category": "money_mule",
            },
            "invalid_value",
        ),
        ({"kind": "ip", "value": "300.1.1.1", "category": "other"}, "invalid_value"),
        ({"kind": "phone", "value": "13800138000", "category": "jaywalking"}, "unknown_category"),
        (
            {"kind": "phone", "value": "13800138000", "category": "other", "ttl_days": 100_000},
            "ttl_too_long",
        ),
        (
            {"kind": "phone", "value": "13800138000", "category": "other", "severity": 9},
            "bad_severity",
        ),
        ({"kind": "phone", "value": "13800138000"}, "missing_field"),
        ({"kind": "phone", "category": "other"}, "missing_field"),
        ({"kind": "phone", "value": 13800138000, "category": "other"}, "bad_value"),
        (
            {"kind": "phone", "value": "13800138000", "category": "other", "colour": "red"},
            "unknown_field",
        ),
        ({"kind": "phone", "value": "13800138000", "category": "other", "ttl_days": 0}, "bad_ttl"),
        (
            {"kind": "phone", "value": "13800138000", "category": "other", "ref": "x" * 65},
            "bad_ref",
        ),
        ("not an object", "bad_item"),
    ],
)
async def test_report_item_errors(client: Any, api_token: str, item: Any, code: str) -> None:
    status, body = await post(client, "/v1/reports", {"items": [item]}, api_token)
    assert status == 422, body
    assert body["error"]["items"][0]["code"] == code
    assert body["error"]["items"][0]["index"] == 0


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (b"{not json", "application/json", "bad_json"),
        (b"\xff\xfe", "application/json", "bad_json"),
        (b"[]", "application/json", "bad_request"),
        (b'{"items": 3}', "application/json", "bad_request"),
        (b"\x9f\x01", "application/cbor", "bad_cbor"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/query", "/v1/reports", "/v1/retractions"])
async def test_bad_bodies(
    client: Any, api_token: str, raw: bytes, content_type: str, code: str, path: str
) -> None:
    r = await client.post(path, data=raw, headers={**auth(api_token), "Content-Type": content_type})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == code


async def test_query_item_errors_are_per_item(client: Any, api_token: str) -> None:
    status, body = await post(
        client,
        "/v1/query",
        {
            "items": [
                {"kind": "phone", "value": "12"},
                {"kind": "nope", "value": "x"},
                7,
                {"kind": "ip", "value": "192.0.2.1"},
            ]
        },
        api_token,
    )
    assert status == 200
    codes = [r.get("error", {}).get("code") for r in body["results"]]
    assert codes == ["invalid_value", "unknown_kind", "bad_item", None]
    assert body["results"][3] == {"match": False, "kind": "ip"}


async def test_batch_too_large(client: Any, api_token: str) -> None:
    items = [{"kind": "ip", "value": "192.0.2.1"}] * 10_001
    status, body = await post(client, "/v1/query", {"items": items}, api_token)
    assert status == 413 and body["error"]["code"] == "batch_too_large"
    status, body = await post(client, "/v1/query", {"items": items[:10_000]}, api_token)
    assert status == 200 and len(body["results"]) == 10_000
    reports = [
        {"kind": "ip", "value": f"10.0.{i // 256}.{i % 256}", "category": "other"}
        for i in range(1001)
    ]
    status, body = await post(client, "/v1/reports", {"items": reports}, api_token)
    assert status == 413 and body["error"]["code"] == "batch_too_large"


async def test_body_too_large(
    aiohttp_client: Any, node_home: Any, clock: Any, api_token: str
) -> None:
    from node.config import load_config
    from node.server import create_app

    config = load_config(node_home, env={"RISKMESH_API_MAX_BODY_BYTES": "1000"})
    client = await aiohttp_client(create_app(config, clock=clock, jobs=False))
    status, body = await post(
        client, "/v1/query", {"items": [{"kind": "ip", "value": "192.0.2.1"}] * 100}, api_token
    )
    assert status == 413 and body["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("path", ["/v1/query", "/v1/reports", "/v1/retractions"])
async def test_no_key_or_wrong_key(client: Any, path: str) -> None:
    r = await client.post(path, json={"items": []})
    assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    r = await client.post(path, json={"items": []}, headers=auth("rm_wrong"))
    assert r.status == 401
    r = await client.get("/v1/status")
    assert r.status == 401


async def test_wrong_scope(client: Any, app_core: Any = None) -> None:
    core = client.server.app[CORE]
    core.store.add_api_key("rm_reader", "reader", ["query"], 0)
    core.store.add_api_key("rm_reporter", "reporter", ["report"], 0)
    status, body = await post(client, "/v1/reports", {"items": [REPORT]}, "rm_reader")
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _ = await post(client, "/v1/retractions", {"items": [REPORT]}, "rm_reader")
    assert status == 403
    status, _ = await post(client, "/v1/query", {"items": []}, "rm_reporter")
    assert status == 403
    status, _ = await post(client, "/v1/query", {"items": []}, "rm_reader")
    assert status == 200


async def test_cbor_in_and_out(client: Any, api_token: str) -> None:
    body = cbor2.dumps({"items": [REPORT]})
    r = await client.post(
        "/v1/reports",
        data=body,
        headers={
            **auth(api_token),
            "Content-Type": "application/cbor",
            "Accept": "application/cbor",
        },
    )
    assert r.status == 201 and r.content_type == "application/cbor"
    assert cbor2.loads(await r.read())["accepted"] == 1
    r = await client.post(
        "/v1/query",
        data=cbor2.dumps({"items": [{"kind": "phone", "value": "13800138000"}]}),
        headers={
            **auth(api_token),
            "Content-Type": "application/cbor",
            "Accept": "application/cbor",
        },
    )
    assert cbor2.loads(await r.read())["results"][0]["match"] is True


async def test_status_and_metrics(client: Any, api_token: str) -> None:
    await post(client, "/v1/reports", {"items": [REPORT]}, api_token)
    await post(
        client, "/v1/query", {"items": [{"kind": "phone", "value": "13800138000"}]}, api_token
    )
    r = await client.get("/v1/status", headers=auth(api_token))
    s = await r.json()
    assert s["charter"]["consortium"] == "test-consortium" and s["charter"]["version"] == 1
    assert s["member"]["name"] == "bank-a" and s["epochs"] == [1]
    assert s["members"][0]["head"]["seq"] == 1
    assert s["index"]["count"] >= 1
    text = await (await client.get("/metrics")).text()
    assert "riskmesh_reports_total 1.0" in text
    assert "riskmesh_query_matches_total 1.0" in text


async def test_unknown_route_and_method_are_json_4xx(client: Any, api_token: str) -> None:
    r = await client.get("/v1/nothing", headers=auth(api_token))
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    r = await client.get("/v1/retractions", headers=auth(api_token))
    assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"


async def test_node_without_charter_is_not_ready(
    aiohttp_client: Any, tmp_path: Any, clock: Any
) -> None:
    from node.config import load_config
    from node.home import init_home
    from node.server import create_app

    home = tmp_path / "fresh"
    init_home(home, name="fresh", endpoint="http://x")
    client = await aiohttp_client(create_app(load_config(home, env={}), clock=clock, jobs=False))
    token = (home / "api-token").read_text()
    status, body = await post(
        client, "/v1/query", {"items": [{"kind": "ip", "value": "192.0.2.1"}]}, token
    )
    assert status == 409 and body["error"]["code"] == "not_ready"


def test_error_bodies_have_code_and_message() -> None:
    from node.api import error_body

    assert json.loads(json.dumps(error_body("x", "y"))) == {"error": {"code": "x", "message": "y"}}


async def test_concurrent_reports_share_durable_commits_and_each_is_acknowledged_committed(
    client: Any, api_token: str
) -> None:
    """Group commit (node/commit.py): reports sent together are committed together, each
    acknowledged with its own entry once committed; a refused one refuses alone."""
    import asyncio

    from node.api import COMMIT, NODE

    commit = client.server.app[COMMIT]
    groups_before = commit.groups
    headers = {"Authorization": f"Bearer {api_token}"}

    async def report(i: int) -> Any:
        value = f"fp:group-{i}" if i != 7 else "not a device id"
        item = {"kind": "device", "value": value, "category": "device_risk"}
        return await client.post("/v1/reports", json={"items": [item]}, headers=headers)

    resps = await asyncio.gather(*(report(i) for i in range(24)))
    bodies = [await r.json() for r in resps]
    assert [r.status for r in resps] == [201] * 7 + [422] + [201] * 16
    assert bodies[7]["error"]["code"] == "invalid_items"
    seqs = [b["entry"]["seq"] for i, b in enumerate(bodies) if i != 7]
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + 23))  # one entry each
    assert commit.groups - groups_before < 23  # fewer commits than reports
    node = client.server.app[NODE]
    for b in (b for i, b in enumerate(bodies) if i != 7):
        assert node.store.entry(node.key.id, b["entry"]["seq"]) is not None
    got = node.query([{"kind": "device", "value": f"fp:group-{i}"} for i in range(24)], 0)
    assert [v["match"] for v in got[:7]] == [True] * 7
