"""The local API (aiohttp): thin handlers over :class:`~node.core.Node`.

Handlers parse the request, call the node and render its answer; authentication
is one middleware; the one table :data:`STATUS` maps an error's ``reason`` to
its HTTP status. Every error is ``{"error": {"code", "message"}}`` with a 4xx
status (``code`` is the error's ``reason``); a 5xx is a bug. JSON by default,
CBOR when the request says ``Content-Type: application/cbor`` or
``Accept: application/cbor``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import cbor2
from aiohttp import web

from contracts.errors import (
    GovernanceError,
    InvalidValue,
    NotReady,
    PolicyViolation,
    RequestRefused,
    RiskmeshError,
)
from node.config import Config
from node.core import Node
from node.metrics import CONTENT_TYPE_LATEST, Metrics
from node.openapi import openapi_document

__all__ = [
    "CONFIG",
    "METRICS",
    "NODE",
    "STATUS",
    "create_api_app",
    "error_body",
    "now_ms",
    "status_of",
]

log = logging.getLogger("riskmesh.api")

CBOR = "application/cbor"

#: The HTTP status of each error reason the local API answers with; reasons not
#: listed take their class's default (:func:`status_of`).
STATUS: Mapping[str, int] = {
    "bad_request": 400,
    "bad_json": 400,
    "bad_cbor": 400,
    "bad_action": 400,
    "unknown_field": 400,
    "missing_field": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_admin": 403,
    "not_found": 404,
    "unknown_proposal": 404,
    "not_member": 404,
    "method_not_allowed": 405,
    "not_ready": 409,
    "syncing": 409,
    "revoked": 409,
    "already_member": 409,
    "name_taken": 409,
    "superseded": 409,
    "already_final": 409,
    "body_too_large": 413,
    "batch_too_large": 413,
    "invalid_items": 422,
    "bad_join_request": 422,
    "bad_member": 422,
    "ambiguous_member": 422,
    "bad_policy": 422,
    "bad_proposal": 422,
    "no_change": 422,
}

_CLASS_STATUS: tuple[tuple[type[RiskmeshError], int], ...] = (
    (NotReady, 409),
    (InvalidValue, 422),
    (PolicyViolation, 422),
    (GovernanceError, 409),
    (RequestRefused, 400),
)


def status_of(e: RiskmeshError) -> int:
    """The HTTP status for an error the node raised."""
    s = STATUS.get(e.reason)
    if s is not None:
        return s
    for cls, status in _CLASS_STATUS:
        if isinstance(e, cls):
            return status
    return 400


def now_ms() -> int:
    return time.time_ns() // 1_000_000


NODE = web.AppKey("node", Node)
CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
NOW: web.AppKey[Callable[[], int]] = web.AppKey("now")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def respond(request: web.Request, body: Any, status: int = 200) -> web.Response:
    if CBOR in request.headers.get("Accept", ""):
        return web.Response(body=cbor2.dumps(body), status=status, content_type=CBOR)
    return web.Response(
        text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if request.content_type == CBOR:
        try:
            return cbor2.loads(raw, allow_indefinite=False, allow_duplicate_keys=False)
        except Exception:
            raise RequestRefused("bad_cbor", "request body is not valid CBOR") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestRefused("bad_json", "request body is not valid JSON") from None


def items_of(body: Any) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise RequestRefused("bad_request", 'request body must be an object with an "items" list')
    items: list[Any] = body["items"]
    return items


def fields_of(body: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """``body`` as an object with no fields but ``allowed``."""
    if not isinstance(body, dict):
        raise RequestRefused("bad_request", f"request body must be an object ({what})")
    extra = set(body) - allowed
    if extra:
        raise RequestRefused("unknown_field", f"unknown fields {sorted(map(str, extra))}")
    return body


ROUTE_SCOPE: Mapping[str, str | None] = {
    "query": "query",
    "query_one": "query",
    "reports": "report",
    "retractions": "report",
    "status": None,
    "admin_charter": "admin",
    "admin_proposals": "admin",
    "admin_propose": "admin",
    "admin_sign": "admin",
}


@web.middleware
async def api_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    metrics = request.app[METRICS]
    route = request.match_info.route.name or "unmatched"
    t0 = time.perf_counter()
    status = 500
    try:
        if route in ROUTE_SCOPE:
            check_auth(request, ROUTE_SCOPE[route])
        resp = await handler(request)
        status = resp.status
        return resp
    except RiskmeshError as e:
        status = status_of(e)
        items = getattr(e, "items", None)
        extra = {"items": items} if items is not None else {}
        return respond(request, error_body(e.reason, e.message, **extra), status)
    except web.HTTPRequestEntityTooLarge:
        status = 413
        return respond(request, error_body("body_too_large", "request body is too large"), 413)
    except web.HTTPException as e:
        status = e.status
        if e.status >= 500:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status, "http_error")
        return respond(request, error_body(code, e.reason), e.status)
    finally:
        metrics.requests.labels(route, str(status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - t0)


def check_auth(request: web.Request, scope: str | None) -> None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise RequestRefused("unauthorized", "missing API key (Authorization: Bearer <key>)")
    scopes = request.app[NODE].store.api_key_scopes(header[7:].strip())
    if scopes is None:
        raise RequestRefused("unauthorized", "unknown API key")
    if scope is not None and scope not in scopes:
        raise RequestRefused("forbidden", f"this API key lacks the {scope!r} scope")


# -- queries, reports, retractions, status ---------------------------------------------


async def handle_query(request: web.Request) -> web.Response:
    body = await read_body(request)
    items = items_of(body)
    canonical_input = bool(body.get("canonical", False))
    results = request.app[NODE].query(
        items,
        request.app[NOW](),
        canonical_input=canonical_input,
        max_batch=request.app[CONFIG]["api.max_batch"],
    )
    m = request.app[METRICS]
    m.queries.inc(len(items))
    m.matches.inc(sum(1 for r in results if r.get("match")))
    return respond(request, {"results": results})


async def handle_query_one(request: web.Request) -> web.Response:
    item = {"kind": request.match_info["kind"], "value": request.match_info["value"]}
    [result] = request.app[NODE].query([item], request.app[NOW]())
    m = request.app[METRICS]
    m.queries.inc()
    if "error" in result:
        return respond(request, result, 422)
    if result.get("match"):
        m.matches.inc()
    return respond(request, result)


async def handle_reports(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    r = request.app[NODE].report(items, request.app[NOW]())
    request.app[METRICS].reports.inc(r.accepted)
    return respond(
        request,
        {"accepted": r.accepted, "entry": {"seq": r.entry.seq, "hash": r.entry.hash.hex()}},
        201,
    )


async def handle_retractions(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    r = request.app[NODE].retract(items, request.app[NOW]())
    request.app[METRICS].retractions.inc(r.accepted)
    return respond(
        request,
        {"accepted": r.accepted, "entry": {"seq": r.entry.seq, "hash": r.entry.hash.hex()}},
        201,
    )


async def handle_status(request: web.Request) -> web.Response:
    return respond(request, request.app[NODE].status(request.app[NOW]()))


# -- administration ----------------------------------------------------------------------

ACTIONS = ("add-member", "remove-member", "rekey-member", "rotate-key", "policy")
_ACTION_FIELDS: Mapping[str, frozenset[str]] = {
    "add-member": frozenset({"action", "join_request", "admin"}),
    "remove-member": frozenset({"action", "member"}),
    "rekey-member": frozenset({"action", "member", "join_request"}),
    "rotate-key": frozenset({"action"}),
    "policy": frozenset({"action", "set"}),
}


def _join_request(body: Mapping[str, Any]) -> bytes:
    jr = body.get("join_request")
    if isinstance(jr, str):
        try:
            return base64.b64decode(jr, validate=True)
        except (ValueError, binascii.Error):
            raise RequestRefused("bad_join_request", "join_request must be base64") from None
    if isinstance(jr, bytes):
        return jr
    raise RequestRefused("missing_field", "join_request (the join-request.cbor bytes)")


def _member(body: Mapping[str, Any]) -> str:
    who = body.get("member")
    if not isinstance(who, str) or not who:
        raise RequestRefused("missing_field", "member (a member's name or id)")
    return who


async def handle_admin_charter(request: web.Request) -> web.Response:
    return respond(request, request.app[NODE].charter_view())


async def handle_admin_proposals(request: web.Request) -> web.Response:
    return respond(request, {"proposals": request.app[NODE].proposals()})


async def handle_admin_propose(request: web.Request) -> web.Response:
    body = await read_body(request)
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, str) or action not in _ACTION_FIELDS:
        raise RequestRefused("bad_action", "action must be one of " + ", ".join(ACTIONS))
    body = fields_of(body, _ACTION_FIELDS[action], action)
    node, now = request.app[NODE], request.app[NOW]()
    if action == "add-member":
        p = node.propose_add_member(_join_request(body), now, admin=bool(body.get("admin")))
    elif action == "remove-member":
        p = node.propose_remove_member(_member(body), now)
    elif action == "rekey-member":
        p = node.propose_rekey_member(_member(body), _join_request(body), now)
    elif action == "rotate-key":
        p = node.propose_rotate_key(now)
    else:
        changes = body.get("set")
        if not isinstance(changes, dict) or not changes:
            raise RequestRefused("missing_field", "set: an object of policy fields to change")
        p = node.propose_policy(changes, now)
    return respond(request, node.proposal_view(p), 201)


async def handle_admin_sign(request: web.Request) -> web.Response:
    node = request.app[NODE]
    p = node.sign_proposal(request.match_info["id"], request.app[NOW]())
    return respond(request, node.proposal_view(p))


# -- metrics and the document ------------------------------------------------------------


async def handle_metrics(request: web.Request) -> web.Response:
    request.app[NODE].update_metrics()
    return web.Response(
        body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def handle_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def create_api_app(
    node: Node, config: Config, metrics: Metrics, *, clock: Callable[[], int] = now_ms
) -> web.Application:
    """The local API application over ``node``."""
    app = web.Application(
        client_max_size=config["api.max_body_bytes"], middlewares=[api_middleware]
    )
    app[NODE] = node
    app[CONFIG] = config
    app[METRICS] = metrics
    app[NOW] = clock
    app.router.add_post("/v1/query", handle_query, name="query")
    app.router.add_get("/v1/query/{kind}/{value}", handle_query_one, name="query_one")
    app.router.add_post("/v1/reports", handle_reports, name="reports")
    app.router.add_post("/v1/retractions", handle_retractions, name="retractions")
    app.router.add_get("/v1/status", handle_status, name="status")
    app.router.add_get("/v1/admin/charter", handle_admin_charter, name="admin_charter")
    app.router.add_get("/v1/admin/proposals", handle_admin_proposals, name="admin_proposals")
    app.router.add_post("/v1/admin/proposals", handle_admin_propose, name="admin_propose")
    app.router.add_post("/v1/admin/proposals/{id}/sign", handle_admin_sign, name="admin_sign")
    app.router.add_get("/metrics", handle_metrics, name="metrics")
    app.router.add_get("/openapi.json", handle_openapi, name="openapi")
    return app
