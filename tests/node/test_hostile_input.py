"""Every input to the local API gets a 2xx or a 4xx in the error shape, never a 5xx.

The repros of hand-made inputs that once gave aiohttp's plain-text 500 (a list
or object as ``kind``, deep nesting, lone surrogates, a non-ASCII bearer token,
CBOR keys of mixed types) and a property test sending arbitrary JSON and CBOR
bodies to every route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.openapi import openapi_document

CBOR = "application/cbor"
#: every route that takes a body, from the API's own document (a path parameter
#: filled with something plausible)
BODY_ROUTES = sorted(
    (method.upper(), path.replace("{id}", "0123456789abcdef"))
    for path, ops in openapi_document()["paths"].items()
    for method, op in ops.items()
    if isinstance(op, dict) and "requestBody" in op
)
POST_ROUTES = [path for method, path in BODY_ROUTES if method == "POST"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def check_shape(resp: Any) -> dict[str, Any]:
    assert resp.status < 500, (resp.status, await resp.text())
    if resp.status >= 400:
        assert resp.content_type in ("application/json", CBOR), resp.content_type
        raw = await resp.read()
        body = cbor2.loads(raw) if resp.content_type == CBOR else json.loads(raw)
        assert set(body["error"]) >= {"code", "message"}, body
        return body  # type: ignore[no-any-return]
    return {}


@pytest.fixture
async def client(aiohttp_client: Any, make_app: Callable[[], web.Application]) -> Any:
    return await aiohttp_client(make_app())


HOSTILE_ITEMS: list[Any] = [
    {"kind": {}, "value": ""},  # (A) an object as kind
    {"kind": [], "value": "x"},  # (A) a list as kind
    {"kind": "phone", "value": {}},
    {"kind": "phone", "value": "\ud800"},  # (D) a lone surrogate
    {"kind": "phone", "value": "+8613800138000", "category": {}, "severity": []},
    {"kind": "phone", "value": "+8613800138000", "category": "telecom_fraud", "ref": "\ud800"},
    {"kind": "phone", "value": "+8613800138000", "category": "telecom_fraud", "severity": 1e99},
    {"kind": "phone", "value": "+8613800138000", "category": "telecom_fraud", "ttl_days": []},
    {"kind": "phone", "value": "+8613800138000", "reason": {}},
    {"kind": "device", "value": "x" * 100_000, "category": "device_risk"},
    [],
    None,
    "phone",
    7,
]


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize("canonical", [False, True])
async def test_hostile_items_get_4xx_in_json_and_cbor(
    client: Any, api_token: str, route: str, canonical: bool
) -> None:
    for item in HOSTILE_ITEMS:
        body: dict[str, Any] = {"items": [item]}
        if canonical:
            body["canonical"] = True
        # JSON: the surrogates go out as \ud800 escapes, which json.loads takes back
        resp = await client.post(
            route,
            data=json.dumps(body),
            headers={**auth(api_token), "Content-Type": "application/json"},
        )
        await check_shape(resp)
        try:
            data = cbor2.dumps(body)
        except UnicodeEncodeError:
            continue  # CBOR text cannot hold a lone surrogate; the JSON case above does
        resp = await client.post(
            route, data=data, headers={**auth(api_token), "Content-Type": CBOR, "Accept": CBOR}
        )
        await check_shape(resp)


@pytest.mark.parametrize("route", POST_ROUTES)
async def test_deep_nesting_is_refused(client: Any, api_token: str, route: str) -> None:
    # (B) a bracket bomb, in JSON and in CBOR
    resp = await client.post(
        route,
        data=b"[" * 100_000,
        headers={**auth(api_token), "Content-Type": "application/json"},
    )
    body = await check_shape(resp)
    assert resp.status == 400 and body["error"]["code"] == "bad_json"
    resp = await client.post(
        route, data=b"\x81" * 100_000, headers={**auth(api_token), "Content-Type": CBOR}
    )
    body = await check_shape(resp)
    assert resp.status == 400 and body["error"]["code"] == "bad_cbor"
    # nesting within the limit still parses (and is refused for what it says)
    resp = await client.post(
        route, json={"items": [[[[[]]]]]}, headers=auth(api_token)
    )
    await check_shape(resp)


async def test_cbor_keys_of_mixed_types(client: Any, api_token: str) -> None:
    # (F) unknown keys of mixed types must not break the unknown-field message
    item = {"kind": "phone", "value": "+8613800138000", "category": "telecom_fraud", "zz": 1, 1: 2}
    for route in ("/v1/reports", "/v1/retractions"):
        resp = await client.post(
            route,
            data=cbor2.dumps({"items": [item]}),
            headers={**auth(api_token), "Content-Type": CBOR},
        )
        body = await check_shape(resp)
        assert resp.status == 422, body
        assert body["error"]["items"][0]["code"] == "unknown_field"
    resp = await client.post(
        "/v1/admin/proposals",
        data=cbor2.dumps({"action": "rotate-key", "zz": 1, 1: 2, b"k": 3}),
        headers={**auth(api_token), "Content-Type": CBOR},
    )
    body = await check_shape(resp)
    assert resp.status == 400 and body["error"]["code"] == "unknown_field"


async def test_a_lone_surrogate_in_a_ref_is_a_422_and_stores_nothing(
    client: Any, api_token: str
) -> None:
    # (C)
    item = {"kind": "phone", "value": "+8613800138000", "category": "telecom_fraud"}
    resp = await client.post(
        "/v1/reports",
        data=json.dumps({"items": [{**item, "ref": "case-\ud800"}]}),
        headers={**auth(api_token), "Content-Type": "application/json"},
    )
    body = await check_shape(resp)
    assert resp.status == 422 and body["error"]["items"][0]["code"] == "bad_ref"
    status = await (await client.get("/v1/status", headers=auth(api_token))).json()
    assert all(m["head"] is None for m in status["members"])  # nothing was signed


async def test_odd_bearer_tokens_are_401(client: Any) -> None:
    # (E) a non-ASCII byte in the bearer token needs no key at all to try
    for raw in (b"Bearer \xff\xfe", b"Bearer rm_\x80abc", b"Bearer \xe4\xb8\xad"):
        resp = await client.get("/v1/status", headers={"Authorization": raw.decode("latin-1")})
        body = await check_shape(resp)
        assert resp.status == 401 and body["error"]["code"] == "unauthorized"


async def test_odd_methods_and_paths(client: Any, api_token: str) -> None:
    resp = await client.request("TRACE", "/v1/query", headers=auth(api_token))
    body = await check_shape(resp)
    assert resp.status == 405 and body["error"]["code"] == "method_not_allowed"
    assert "POST" in resp.headers.get("Allow", "")
    for path in ("/v1/Query/phone/1", "/nope", "/v1/query/phone", "/v1/query/phone/%FF"):
        await check_shape(await client.get(path, headers=auth(api_token)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
item_like = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["phone", "device", "email", "ip", "nope"]) | json_values,
        "value": st.text(max_size=40) | json_values,
        "category": st.sampled_from(["telecom_fraud", "phishing", "x"]) | json_values,
        "severity": st.integers(-3, 9) | json_values,
        "ttl_days": st.integers(-3, 5000) | json_values,
        "ref": st.text(max_size=200) | json_values,
        "reason": st.sampled_from(["false_positive", "x"]) | json_values,
    },
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"items": st.lists(item_like | json_values, max_size=5)},
        optional={"canonical": json_values, "action": json_values, "set": json_values},
    ),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies, route=st.sampled_from(BODY_ROUTES), as_cbor=st.booleans())
async def test_arbitrary_bodies_never_get_a_5xx(
    aiohttp_client: Any,
    make_app: Callable[[], web.Application],
    api_token: str,
    body: Any,
    route: tuple[str, str],
    as_cbor: bool,
) -> None:
    client = await aiohttp_client(make_app())
    try:
        if as_cbor:
            try:
                data, ct = cbor2.dumps(body), CBOR
            except UnicodeEncodeError:  # a lone surrogate: CBOR text cannot hold one
                data, ct = json.dumps(body).encode(), "application/json"
        else:
            data, ct = json.dumps(body).encode(), "application/json"
        method, path = route
        resp = await client.request(
            method, path, data=data, headers={**auth(api_token), "Content-Type": ct}
        )
        await check_shape(resp)
    finally:
        await client.close()
