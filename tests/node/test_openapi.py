"""GET /openapi.json is a valid OpenAPI 3.1 document and describes the real handlers.

* the document: version 3.1.x, every ``$ref`` resolves inside it;
* routes: every (method, path) the app's router serves is in ``paths`` and
  vice versa, with the route's name as the ``operationId``;
* responses: each status code a small exercise of the handlers really
  produces (success, 400, 401, 403, 409, 413, 422) is listed for that
  operation, with the response's content type, and every JSON body conforms
  to its documented schema (a small checker of ``$ref``, ``type``,
  ``required``, ``properties``, ``additionalProperties``, ``items``,
  ``oneOf``, ``enum`` and bounds).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest
from aftermatch_exercise import exercise_after_match
from aiohttp import web

from node.api import CONFIG
from node.api import NODE as CORE
from node.config import load_config
from node.home import init_home
from node.openapi import openapi_document
from node.server import create_app
from protocol.keys import MemberKey, member_id_text

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
QUERY_ONLY_KEY = "rm_test_query_only_key"
REPORT_ONLY_KEY = "rm_test_report_only_key"


# -- a small JSON Schema checker ---------------------------------------------------------


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"external $ref {ref!r}"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref {ref!r} does not resolve"
        node = node[part]
    return node


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for v in node.values():
            out.extend(all_refs(v))
        return out
    if isinstance(node, list):
        return [r for v in node for r in all_refs(v)]
    return []


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema_errors(doc: dict[str, Any], schema: Any, value: Any, where: str = "$") -> list[str]:
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{where}: no value allowed"]
    errs: list[str] = []
    if "$ref" in schema:
        errs += schema_errors(doc, resolve(doc, schema["$ref"]), value, where)
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not schema_errors(doc, s, value, where)]
        if len(ok) != 1:
            errs.append(f"{where}: matches {len(ok)} of oneOf's branches, not exactly 1")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [*errs, f"{where}: {value!r} is not of type {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} not in enum")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{where}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        errs.append(f"{where}: longer than {schema['maxLength']}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, v in enumerate(value):
                errs += schema_errors(doc, schema["items"], v, f"{where}[{i}]")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errs.append(f"{where}: required property {name!r} missing")
        props = schema.get("properties", {})
        for name, v in value.items():
            if name in props:
                errs += schema_errors(doc, props[name], v, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{where}: property {name!r} not allowed")
    return errs


def test_schema_checker_catches_what_it_should() -> None:
    doc = openapi_document()
    verdict = {"$ref": "#/components/schemas/Verdict"}
    assert schema_errors(doc, verdict, {"match": False, "kind": "phone"}) == []
    assert schema_errors(doc, verdict, {"match": False})
    assert schema_errors(doc, verdict, {"match": "no", "kind": "phone"})
    assert schema_errors(doc, verdict, {"match": True, "kind": "fax"})
    assert schema_errors(doc, verdict, {"match": True, "kind": "ip", "max_severity": 9})
    result = {"$ref": "#/components/schemas/QueryResult"}
    assert schema_errors(doc, result, {"error": {"code": "x", "message": "y"}}) == []
    assert schema_errors(doc, result, {"error": {"code": "x"}})
    with pytest.raises(AssertionError, match="does not resolve"):
        schema_errors(doc, {"$ref": "#/components/schemas/Nope"}, {})


# -- the document on its own ---------------------------------------------------------------


async def test_document_is_openapi_31_and_refs_resolve(
    aiohttp_client: Any, make_app: Callable[[], web.Application]
) -> None:
    client = await aiohttp_client(make_app())
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    doc = await resp.json()
    assert doc == json.loads(json.dumps(openapi_document()))
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"]), doc["openapi"]
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["paths"]
    refs = all_refs(doc)
    assert refs
    for ref in refs:
        resolve(doc, ref)
    # every operation has an id, unique, and at least one response
    ops = [op for item in doc["paths"].values() for m, op in item.items() if m in HTTP_METHODS]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids))
    for op in ops:
        assert op["responses"], op["operationId"]
        for sec in op.get("security", []):
            for name in sec:
                assert name in doc["components"]["securitySchemes"]


def test_document_passes_an_openapi_validator_if_one_is_installed() -> None:
    # Not a dependency of the project: used only where the environment has it.
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi_document())


# -- the document against the router -------------------------------------------------------


def router_operations(app: web.Application) -> dict[tuple[str, str], str | None]:
    out: dict[tuple[str, str], str | None] = {}
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        assert route.resource is not None
        out[(route.method.lower(), route.resource.canonical)] = route.name
    return out


def document_operations(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (method, path): op["operationId"]
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS and method != "head"
    }


async def test_every_route_is_documented_and_vice_versa(
    aiohttp_client: Any, make_app: Callable[[], web.Application]
) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    doc = await (await client.get("/openapi.json")).json()
    served = router_operations(app)
    documented = document_operations(doc)
    assert set(served) - set(documented) == set(), "served but not documented"
    assert set(documented) - set(served) == set(), "documented but not served"
    assert served == documented, "operationId differs from the route name"


# -- the document against what the handlers answer ------------------------------------------


@dataclass
class Seen:
    method: str
    path: str  # the documented path template
    status: int
    content_type: str
    body: Any
    what: str


class Exerciser:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.seen: list[Seen] = []

    async def __call__(
        self,
        what: str,
        method: str,
        url: str,
        template: str,
        *,
        key: str | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: int,
        follow: bool = True,
    ) -> Any:
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        kw: dict[str, Any] = {"headers": h, "allow_redirects": follow}
        if json_body is not None:
            kw["json"] = json_body
        if data is not None:
            kw["data"] = data
        resp = await self.client.request(method, url, **kw)
        raw = await resp.read()
        ct = resp.content_type
        if ct == "application/json":
            body: Any = json.loads(raw)
        elif ct == "application/cbor":
            body = cbor2.loads(raw)
        else:
            body = raw.decode()
        assert resp.status == expect, f"{what}: {resp.status} {body!r}"[:500]
        self.seen.append(Seen(method.lower(), template, resp.status, ct, body, what))
        return body


def report_item(value: str = "+86 138 0013 8000", **kw: Any) -> dict[str, Any]:
    return {"kind": "phone", "value": value, "category": "telecom_fraud", "severity": 4, **kw}


async def exercise_admin(ex: Exerciser, token: str, own_join_request: bytes) -> None:
    ch, props, sign = "/v1/admin/charter", "/v1/admin/proposals", "/v1/admin/proposals/{id}/sign"
    await ex("charter", "GET", ch, ch, key=token, expect=200)
    await ex("charter no key", "GET", ch, ch, expect=401)
    await ex("charter wrong scope", "GET", ch, ch, key=QUERY_ONLY_KEY, expect=403)
    await ex("proposals", "GET", props, props, key=token, expect=200)
    await ex("proposals no key", "GET", props, props, expect=401)
    policy = {"action": "policy", "set": {"disclose_reporters": False}}
    # a one-admin consortium: the proposer's own signature is the quorum
    view = await ex("propose policy", "POST", props, props, key=token, json_body=policy, expect=201)
    assert view["status"] == "final" and view["changes"] == [
        "policy disclose_reporters: true -> false"
    ]
    rotate = {"action": "rotate-key"}
    view = await ex("propose rotate", "POST", props, props, key=token, json_body=rotate, expect=201)
    assert view["changes"] == ["new key epoch 2"]
    await ex("propose no key", "POST", props, props, json_body=rotate, expect=401)
    await ex(
        "propose scope", "POST", props, props, key=REPORT_ONLY_KEY, json_body=rotate, expect=403
    )
    await ex(
        "propose bad action", "POST", props, props, key=token, json_body={"action": "x"}, expect=400
    )
    stranger = member_id_text(MemberKey.from_seed(bytes(32)).id)
    gone = {"action": "remove-member", "member": stranger}
    await ex("remove unknown", "POST", props, props, key=token, json_body=gone, expect=404)
    junk = {"action": "add-member", "join_request": base64.b64encode(b"junk").decode()}
    await ex("add junk", "POST", props, props, key=token, json_body=junk, expect=422)
    me = {"action": "add-member", "join_request": base64.b64encode(own_join_request).decode()}
    await ex("add self", "POST", props, props, key=token, json_body=me, expect=409)
    url = sign.replace("{id}", "0123456789abcdef")
    await ex("sign unknown", "POST", url, sign, key=token, expect=404)
    await ex("sign no key", "POST", url, sign, expect=401)


async def exercise(ex: Exerciser, token: str, max_ops: int, max_batch: int) -> None:
    q, q1, rep, ret, st = (
        "/v1/query",
        "/v1/query/{kind}/{value}",
        "/v1/reports",
        "/v1/retractions",
        "/v1/status",
    )
    # reports
    await ex(
        "report", "POST", rep, rep, key=token, json_body={"items": [report_item()]}, expect=201
    )
    await ex(
        "report cbor",
        "POST",
        rep,
        rep,
        key=token,
        data=cbor2.dumps({"items": [report_item("139 1234 5678")]}),
        headers={"Content-Type": "application/cbor", "Accept": "application/cbor"},
        expect=201,
    )
    await ex("report no key", "POST", rep, rep, json_body={"items": [report_item()]}, expect=401)
    await ex("report bad key", "POST", rep, rep, key="rm_nope", json_body={"items": []}, expect=401)
    await ex(
        "report wrong scope",
        "POST",
        rep,
        rep,
        key=QUERY_ONLY_KEY,
        json_body={"items": [report_item()]},
        expect=403,
    )
    await ex(
        "report bad json",
        "POST",
        rep,
        rep,
        key=token,
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        expect=400,
    )
    await ex("report no items", "POST", rep, rep, key=token, json_body={"x": 1}, expect=400)
    await ex("report empty", "POST", rep, rep, key=token, json_body={"items": []}, expect=400)
    await ex(
        "report too many",
        "POST",
        rep,
        rep,
        key=token,
        json_body={"items": [report_item()] * (max_ops + 1)},
        expect=413,
    )
    await ex(
        "report invalid item",
        "POST",
        rep,
        rep,
        key=token,
        json_body={"items": [report_item(), report_item("12")]},
        expect=422,
    )
    # retractions
    retract = {"kind": "phone", "value": "13800138000", "reason": "resolved"}
    await ex("retract", "POST", ret, ret, key=token, json_body={"items": [retract]}, expect=201)
    await ex(
        "retract again", "POST", ret, ret, key=token, json_body={"items": [retract]}, expect=422
    )
    await ex("retract no key", "POST", ret, ret, json_body={"items": [retract]}, expect=401)
    await ex(
        "retract wrong scope",
        "POST",
        ret,
        ret,
        key=QUERY_ONLY_KEY,
        json_body={"items": [retract]},
        expect=403,
    )
    await ex("retract bad body", "POST", ret, ret, key=token, json_body=[1, 2], expect=400)
    await ex(
        "retract too many",
        "POST",
        ret,
        ret,
        key=token,
        json_body={"items": [retract] * (max_ops + 1)},
        expect=413,
    )
    # batch query
    items = [
        {"kind": "phone", "value": "+86 139 1234 5678"},
        {"kind": "phone", "value": "13800138000"},
        {"kind": "email", "value": "nobody@example.org"},
        {"kind": "bank_card", "value": "4111 1111 1111 1112"},
        {"kind": "fax", "value": "1"},
    ]
    body = await ex("query", "POST", q, q, key=token, json_body={"items": items}, expect=200)
    assert [r.get("match") for r in body["results"]] == [True, False, False, None, None]
    await ex(
        "query canonical",
        "POST",
        q,
        q,
        key=QUERY_ONLY_KEY,
        json_body={"items": [{"kind": "phone", "value": "+8613912345678"}], "canonical": True},
        headers={"Accept": "application/cbor"},
        expect=200,
    )
    await ex("query no key", "POST", q, q, json_body={"items": items}, expect=401)
    await ex(
        "query wrong scope",
        "POST",
        q,
        q,
        key=REPORT_ONLY_KEY,
        json_body={"items": items},
        expect=403,
    )
    await ex(
        "query bad cbor",
        "POST",
        q,
        q,
        key=token,
        data=b"\xff\xff",
        headers={"Content-Type": "application/cbor"},
        expect=400,
    )
    await ex("query no items", "POST", q, q, key=token, json_body={"items": 3}, expect=400)
    await ex(
        "query too many",
        "POST",
        q,
        q,
        key=token,
        json_body={"items": [items[0]] * (max_batch + 1)},
        expect=413,
    )
    # single query
    await ex("query_one hit", "GET", "/v1/query/phone/13912345678", q1, key=token, expect=200)
    await ex("query_one miss", "GET", "/v1/query/ip/192.0.2.1", q1, key=QUERY_ONLY_KEY, expect=200)
    await ex(
        "query_one cbor",
        "GET",
        "/v1/query/phone/13912345678",
        q1,
        key=token,
        headers={"Accept": "application/cbor"},
        expect=200,
    )
    await ex("query_one no key", "GET", "/v1/query/phone/13912345678", q1, expect=401)
    await ex(
        "query_one wrong scope",
        "GET",
        "/v1/query/phone/13912345678",
        q1,
        key=REPORT_ONLY_KEY,
        expect=403,
    )
    await ex("query_one invalid", "GET", "/v1/query/phone/12", q1, key=token, expect=422)
    await ex("query_one bad kind", "GET", "/v1/query/fax/12345", q1, key=token, expect=422)
    # status, metrics, the document
    await ex("status", "GET", st, st, key=token, expect=200)
    await ex("status any scope", "GET", st, st, key=QUERY_ONLY_KEY, expect=200)
    await ex("status no key", "GET", st, st, expect=401)
    await ex("status bad key", "GET", st, st, key="rm_nope", expect=401)
    await ex("metrics", "GET", "/metrics", "/metrics", expect=200)
    await ex("openapi", "GET", "/openapi.json", "/openapi.json", expect=200)


async def exercise_operator(ex: Exerciser, token: str) -> None:
    """Own reports, API keys, the audit trail, health and the console's files."""
    rep, keys, audit = "/v1/reports", "/v1/admin/keys", "/v1/audit"
    one, rot = "/v1/admin/keys/{name}", "/v1/admin/keys/{name}/rotate"
    body = await ex("own reports", "GET", rep, rep, key=token, expect=200)
    assert body["reports"] and "value" not in body["reports"][0]
    body = await ex(
        "own values", "GET", rep + "?values=true&limit=1", rep, key=REPORT_ONLY_KEY, expect=200
    )
    assert body["reports"][0]["value"] and body["next"]
    await ex("own bad limit", "GET", rep + "?limit=0", rep, key=token, expect=400)
    await ex("own no key", "GET", rep, rep, expect=401)
    await ex("own wrong scope", "GET", rep, rep, key=QUERY_ONLY_KEY, expect=403)
    new = {"name": "engine", "scopes": ["query", "watch"]}
    made = await ex("key create", "POST", keys, keys, key=token, json_body=new, expect=201)
    assert made["key"].startswith("rm_") and made["scopes"] == ["query", "watch"]
    await ex("key again", "POST", keys, keys, key=token, json_body=new, expect=409)
    bad = {"name": "x", "scopes": ["root"]}
    await ex("key bad scope", "POST", keys, keys, key=token, json_body=bad, expect=422)
    await ex("key extra", "POST", keys, keys, key=token, json_body={"nm": 1}, expect=400)
    await ex("key no key", "POST", keys, keys, json_body=new, expect=401)
    await ex("key scope", "POST", keys, keys, key=made["key"], json_body=new, expect=403)
    await ex("keys", "GET", keys, keys, key=token, expect=200)
    await ex("keys all", "GET", keys + "?revoked=true", keys, key=token, expect=200)
    await ex("keys no key", "GET", keys, keys, expect=401)
    await ex("keys scope", "GET", keys, keys, key=QUERY_ONLY_KEY, expect=403)
    url = rot.replace("{name}", "engine")
    rotated = await ex("key rotate", "POST", url, rot, key=token, expect=200)
    assert rotated["key"] != made["key"]
    await ex("rotated old key", "GET", "/v1/status", "/v1/status", key=made["key"], expect=401)
    await ex("rotate unknown", "POST", rot.replace("{name}", "nope"), rot, key=token, expect=404)
    await ex("rotate no key", "POST", url, rot, expect=401)
    await ex("rotate scope", "POST", url, rot, key=QUERY_ONLY_KEY, expect=403)
    await ex("revoke", "DELETE", one.replace("{name}", "engine"), one, key=token, expect=200)
    await ex("revoke again", "DELETE", one.replace("{name}", "engine"), one, key=token, expect=404)
    await ex("revoke default", "DELETE", one.replace("{name}", "cli"), one, key=token, expect=409)
    await ex("revoke no key", "DELETE", one.replace("{name}", "q"), one, expect=401)
    q = one.replace("{name}", "q")
    await ex("revoke scope", "DELETE", q, one, key=REPORT_ONLY_KEY, expect=403)
    body = await ex("audit", "GET", audit + "?after=0&limit=2", audit, key=token, expect=200)
    assert len(body["audit"]) == 2 and body["next"] == body["audit"][-1]["id"]
    await ex("audit bad", "GET", audit + "?after=x", audit, key=token, expect=400)
    await ex("audit no key", "GET", audit, audit, expect=401)
    await ex("audit scope", "GET", audit, audit, key=QUERY_ONLY_KEY, expect=403)
    await ex("healthz", "GET", "/healthz", "/healthz", expect=200)
    await ex("readyz", "GET", "/readyz", "/readyz", expect=200)
    await ex("ui", "GET", "/ui", "/ui", expect=302, follow=False)
    await ex("ui index", "GET", "/ui/", "/ui/", expect=200)
    for name in ("console.js", "console.css", "index.html"):
        await ex(f"ui {name}", "GET", f"/ui/{name}", "/ui/{file}", expect=200)
    await ex("ui unknown", "GET", "/ui/secret.txt", "/ui/{file}", expect=404)


async def exercise_alerts(ex: Exerciser, token: str, max_batch: int) -> None:
    """Watches, the alert cursor and the alert stream (DESIGN §14)."""
    w, a, s = "/v1/watches", "/v1/alerts", "/v1/alerts/stream"
    item = {"kind": "phone", "value": "+86 138 0013 8000", "ref": "case-1"}
    other = {"kind": "email", "value": "Mule@Example.com", "ttl_days": 30}
    body = await ex(
        "watch", "POST", w, w, key=token, json_body={"items": [item, other]}, expect=201
    )
    assert body["watching"] == 2 and len(body["results"]) == 2
    await ex(
        "watch cbor",
        "POST",
        w,
        w,
        key=QUERY_ONLY_KEY,
        data=cbor2.dumps({"items": [item]}),
        headers={"Content-Type": "application/cbor", "Accept": "application/cbor"},
        expect=201,
    )
    await ex("watch no key", "POST", w, w, json_body={"items": [item]}, expect=401)
    await ex(
        "watch scope", "POST", w, w, key=REPORT_ONLY_KEY, json_body={"items": [item]}, expect=403
    )
    await ex("watch bad body", "POST", w, w, key=token, json_body={"x": 1}, expect=400)
    many = {"items": [item] * (max_batch + 1)}
    await ex("watch too many", "POST", w, w, key=token, json_body=many, expect=413)
    bad = {"items": [{"kind": "phone", "value": "12"}]}
    await ex("watch invalid", "POST", w, w, key=token, json_body=bad, expect=422)
    body = await ex("watches", "GET", w, w, key=QUERY_ONLY_KEY, expect=200)
    assert body["watching"] == 2 and "value" not in json.dumps(body["watches"])
    await ex("watches page", "GET", w + "?after=1&limit=1", w, key=token, expect=200)
    await ex("watches bad", "GET", w + "?limit=0", w, key=token, expect=400)
    await ex("watches no key", "GET", w, w, expect=401)
    await ex("watches scope", "GET", w, w, key=REPORT_ONLY_KEY, expect=403)
    rep = "/v1/reports"
    await ex("report watched", "POST", rep, rep, key=token, json_body={"items": [report_item()]},
             expect=201)
    body = await ex("alerts", "GET", a, a, key=token, expect=200)
    # the watch, and the query of the same value earlier (a recent query, no ref)
    assert {(x["ref"], x["source"]) for x in body["alerts"]} == {
        ("case-1", "watch"),
        (None, "recent_query"),
    }
    alert = body["alerts"][0]
    assert body["next"] == body["alerts"][-1]["id"]
    await ex("alerts after", "GET", f"{a}?after={alert['id']}&wait=0&limit=5", a,
             key=QUERY_ONLY_KEY, headers={"Accept": "application/cbor"}, expect=200)
    await ex("alerts bad", "GET", a + "?wait=99", a, key=token, expect=400)
    await ex("alerts no key", "GET", a, a, expect=401)
    await ex("alerts scope", "GET", a, a, key=REPORT_ONLY_KEY, expect=403)
    await ex("stream bad", "GET", s, s, key=token, headers={"Last-Event-ID": "x"}, expect=400)
    await ex("stream no key", "GET", s, s, expect=401)
    await ex("stream scope", "GET", s, s, key=REPORT_ONLY_KEY, expect=403)
    # an event stream never ends: read its first event, then hang up
    resp = await ex.client.get(
        s, headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "0"}
    )
    text = ""
    while "data: " not in text or not text.endswith("\n\n"):
        text += (await resp.content.readline()).decode()
    resp.close()
    assert f"id: {alert['id']}" in text
    ex.seen.append(Seen("get", s, resp.status, resp.content_type, text, "stream"))
    gone = {"items": [{"kind": "phone", "value": "13800138000"}]}
    body = await ex("unwatch", "DELETE", w, w, key=token, json_body=gone, expect=200)
    assert body == {"removed": 1, "recent_queries": 1}  # the same value and ref: one watch
    await ex("unwatch no key", "DELETE", w, w, json_body=gone, expect=401)
    await ex("unwatch scope", "DELETE", w, w, key=REPORT_ONLY_KEY, json_body=gone, expect=403)
    await ex("unwatch bad body", "DELETE", w, w, key=token, json_body=[1], expect=400)
    many = {"items": [gone["items"][0]] * (max_batch + 1)}
    await ex("unwatch too many", "DELETE", w, w, key=token, json_body=many, expect=413)
    await ex("unwatch invalid", "DELETE", w, w, key=token, json_body=bad, expect=422)


async def exercise_not_ready(ex: Exerciser, token: str) -> None:
    """A node with no charter installed answers 409 on the paths that need one."""
    q1 = "/v1/query/{kind}/{value}"
    item = {"kind": "phone", "value": "13800138000"}
    await ex(
        "nr query",
        "POST",
        "/v1/query",
        "/v1/query",
        key=token,
        json_body={"items": [item]},
        expect=409,
    )
    await ex("nr query_one", "GET", "/v1/query/phone/13800138000", q1, key=token, expect=409)
    await ex(
        "nr report",
        "POST",
        "/v1/reports",
        "/v1/reports",
        key=token,
        json_body={"items": [report_item()]},
        expect=409,
    )
    await ex(
        "nr retract",
        "POST",
        "/v1/retractions",
        "/v1/retractions",
        key=token,
        json_body={"items": [{**item, "reason": "resolved"}]},
        expect=409,
    )
    await ex("nr status", "GET", "/v1/status", "/v1/status", key=token, expect=200)
    body = await ex("nr readyz", "GET", "/readyz", "/readyz", expect=503)
    assert body["error"]["code"] == "not_ready" and "charter" in body["error"]["message"]


def check_seen(doc: dict[str, Any], seen: list[Seen]) -> list[str]:
    problems: list[str] = []
    for s in seen:
        op = doc["paths"][s.path][s.method]
        resp = op["responses"].get(str(s.status))
        if resp is None:
            problems.append(
                f"{s.what}: {s.method.upper()} {s.path} answered {s.status}, "
                f"not among documented {sorted(op['responses'])}"
            )
            continue
        content = resp.get("content", {})
        if s.content_type not in content:
            problems.append(
                f"{s.what}: {s.status} answered as {s.content_type}, documented {sorted(content)}"
            )
            continue
        if s.content_type in ("application/json", "application/cbor"):
            errs = schema_errors(doc, content[s.content_type]["schema"], s.body)
            problems += [f"{s.what} ({s.status}): {e}" for e in errs]
    return problems


async def test_handlers_answer_as_documented(
    aiohttp_client: Any,
    make_app: Callable[[], web.Application],
    api_token: str,
    tmp_path: Path,
) -> None:
    doc = openapi_document()
    app = make_app()
    core = app[CORE]
    core.store.add_api_key(QUERY_ONLY_KEY, "q", ["query"], 0)
    core.store.add_api_key(REPORT_ONLY_KEY, "r", ["report"], 0)
    assert core.chain is not None
    max_ops = core.chain.current.policy.max_ops
    max_batch = app[CONFIG]["api.max_batch"]
    ex = Exerciser(await aiohttp_client(app))
    await exercise(ex, api_token, max_ops, max_batch)
    await exercise_admin(ex, api_token, (tmp_path / "bank-a" / "join-request.cbor").read_bytes())
    await exercise_operator(ex, api_token)
    await exercise_alerts(ex, api_token, max_batch)
    await exercise_after_match(ex, api_token, max_ops)


    bare = tmp_path / "bare"
    init_home(bare, name="bare", endpoint="http://127.0.0.1:1/peer", api_listen="127.0.0.1:0")
    bare_app = create_app(load_config(bare, env={}), jobs=False)
    ex_bare = Exerciser(await aiohttp_client(bare_app))
    await exercise_not_ready(ex_bare, (bare / "api-token").read_text().strip())
    watch = {"items": [{"kind": "phone", "value": "13800138000"}]}
    await ex_bare(
        "nr watch",
        "POST",
        "/v1/watches",
        "/v1/watches",
        key=(bare / "api-token").read_text().strip(),
        json_body=watch,
        expect=409,
    )

    seen = ex.seen + ex_bare.seen
    problems = check_seen(doc, seen)
    assert not problems, "\n".join(problems)

    # Every documented operation was exercised, and every documented status of a
    # secured operation for 401/403 was really produced where a scope exists.
    exercised = {(s.method, s.path) for s in seen}
    assert exercised == set(document_operations(doc))
    for (method, path), _ in document_operations(doc).items():
        op = doc["paths"][path][method]
        statuses = {s.status for s in seen if (s.method, s.path) == (method, path)}
        if op.get("security"):
            assert 401 in statuses, (method, path)
        else:  # every documented answer of an open route was seen
            assert statuses == {int(c) for c in op["responses"]}, (method, path)
