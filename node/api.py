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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import cbor2
import orjson
from aiohttp import web

from contracts.errors import (
    GovernanceError,
    InvalidValue,
    NotReady,
    PolicyViolation,
    RequestRefused,
    RiskmeshError,
)
from node.audit import AuditRow, acting
from node.batch import fields_of
from node.commit import GroupCommit
from node.config import Config
from node.console import add_console_routes
from node.core import Node
from node.delivery import ALERT_FEED, AlertFeed, stream_alerts
from node.health import not_ready_reasons
from node.keys import ApiKey
from node.listen import BodyTimeout, read_body_within
from node.metrics import CONTENT_TYPE_LATEST, Metrics
from node.openapi import openapi_document
from node.verdicts import rfc3339
from node.version import VERSION

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
    "unknown_key": 404,
    "default_key": 409,
    "not_member": 404,
    "method_not_allowed": 405,
    "not_ready": 409,
    "syncing": 409,
    "revoked": 409,
    "frozen": 409,
    "already_member": 409,
    "name_taken": 409,
    "superseded": 409,
    "already_final": 409,
    "body_timeout": 408,
    "body_too_large": 413,
    "batch_too_large": 413,
    "invalid_items": 422,
    "bad_join_request": 422,
    "bad_member": 422,
    "ambiguous_member": 422,
    "bad_policy": 422,
    "bad_proposal": 422,
    "no_change": 422,
    "bad_scope": 422,
    "bad_name": 422,
    # after the match (node/aftermatch.py)
    "warning_listed": 422,
    "not_listed": 422,
    "unknown_appeal": 404,
    "already_appealed": 409,
    "already_decided": 409,
    "over_quota": 429,
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


class Querier(Protocol):
    def query(
        self,
        items: Sequence[Any],
        now: int,
        *,
        canonical_input: bool = False,
        max_batch: int = 10_000,
        record: bool = True,
    ) -> list[dict[str, Any]]: ...


class KeyChecker(Protocol):
    def check(self, secret: str, now: int) -> ApiKey | None: ...


#: reports and retractions arriving together share one durable commit (node/commit.py)
COMMIT = web.AppKey("commit", GroupCommit)
#: what answers queries: the node itself, or a serving process's verdicts (node/workers.py)
QUERIER: web.AppKey[Querier] = web.AppKey("querier")
#: what checks API keys, from memory: the node's key ring, or a serving process's copy
KEYS: web.AppKey[KeyChecker] = web.AppKey("keys")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def respond(request: web.Request, body: Any, status: int = 200) -> web.Response:
    if CBOR in request.headers.get("Accept", ""):
        return web.Response(body=cbor2.dumps(body), status=status, content_type=CBOR)
    return web.Response(body=dumps_json(body), status=status, content_type="application/json")


def dumps_json(body: Any) -> bytes:
    """Compact JSON: orjson, or the standard library for what orjson will not write
    (integers beyond 64 bits)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":")).encode()


#: deepest nesting a body may have where a recursive parser reads it (a bracket bomb is
#: refused before the standard library's JSON parser recurses into it; orjson and cbor2
#: limit their own depth)
MAX_DEPTH = 32


async def read_body(request: web.Request) -> Any:
    try:
        raw = await read_body_within(request, request.app[CONFIG]["http.body_timeout_s"])
    except BodyTimeout:
        raise RequestRefused("body_timeout", "the request body did not arrive in time") from None
    if request.content_type == CBOR:
        try:
            return cbor2.loads(raw, allow_indefinite=False, allow_duplicate_keys=False)
        except Exception:  # cbor2 raises many kinds on hostile input, RecursionError included
            raise RequestRefused("bad_cbor", "request body is not valid CBOR") from None
    try:
        # orjson first: it parses in C and refuses nesting past 1024 levels on its own
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    # what orjson refuses goes to the standard library, which is more lenient (lone
    # surrogates, NaN, integers beyond 64 bits) but recursive: a bracket bomb is refused
    # before it recurses into it
    if _too_deep(raw):
        raise RequestRefused("bad_json", f"request body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RequestRefused("bad_json", "request body is not valid JSON") from None


def _too_deep(raw: bytes) -> bool:
    """Whether JSON text opens more than MAX_DEPTH brackets at once (strings aside)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    in_str = escaped = False
    for c in raw:
        if in_str:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif c in (0x5D, 0x7D):
            depth -= 1
    return False


def items_of(body: Any) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise RequestRefused("bad_request", 'request body must be an object with an "items" list')
    items: list[Any] = body["items"]
    return items


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
    "watches_add": "query",
    "watches_remove": "query",
    "watches": "query",
    "alerts": "query",
    "alerts_stream": "query",
    "own_reports": "report",
    "admin_keys": "admin",
    "admin_key_create": "admin",
    "admin_key_revoke": "admin",
    "admin_key_rotate": "admin",
    "audit": "admin",
    "sightings": "report",
    "disputes": "report",
    "appeals_file": "report",
    "appeals": "report",
    "appeal_decision": "report",
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
        # who acts: the API key's name, for the audit trail (node/audit.py)
        actor = check_auth(request, ROUTE_SCOPE[route]) if route in ROUTE_SCOPE else "anonymous"
        with acting(actor):
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
        resp = respond(request, error_body(code, e.reason), e.status)
        if "Allow" in e.headers:
            resp.headers["Allow"] = e.headers["Allow"]
        return resp
    finally:
        metrics.observe_request(route, status, time.perf_counter() - t0)


def check_auth(request: web.Request, scope: str | None) -> str:
    """The name of the request's API key, which has ``scope``; else 401 or 403."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise RequestRefused("unauthorized", "missing API key (Authorization: Bearer <key>)")
    secret = header[7:].strip()
    if not secret.isascii() or not secret.isprintable():
        raise RequestRefused("unauthorized", "unknown API key")
    key = request.app[KEYS].check(secret, request.app[NOW]())
    if key is None:
        raise RequestRefused("unauthorized", "unknown API key")
    if scope is not None and scope not in key.scopes:
        raise RequestRefused("forbidden", f"this API key lacks the {scope!r} scope")
    return key.name


# -- queries, reports, retractions, status ---------------------------------------------


async def handle_query(request: web.Request) -> web.Response:
    body = await read_body(request)
    items = items_of(body)
    canonical_input = body.get("canonical", False)
    if not isinstance(canonical_input, bool):
        raise RequestRefused("bad_request", "canonical is true or false")
    results = request.app[QUERIER].query(
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
    [result] = request.app[QUERIER].query([item], request.app[NOW]())
    m = request.app[METRICS]
    m.queries.inc()
    if "error" in result:
        return respond(request, result, 422)
    if result.get("match"):
        m.matches.inc()
    return respond(request, result)


async def handle_reports(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    node, now = request.app[NODE], request.app[NOW]()
    r = await request.app[COMMIT].run(lambda: node.report(items, now))
    request.app[METRICS].reports.inc(r.accepted)
    return respond(
        request,
        {"accepted": r.accepted, "entry": {"seq": r.entry.seq, "hash": r.entry.hash.hex()}},
        201,
    )


async def handle_retractions(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    node, now = request.app[NODE], request.app[NOW]()
    r = await request.app[COMMIT].run(lambda: node.retract(items, now))
    request.app[METRICS].retractions.inc(r.accepted)
    return respond(
        request,
        {"accepted": r.accepted, "entry": {"seq": r.entry.seq, "hash": r.entry.hash.hex()}},
        201,
    )


async def handle_status(request: web.Request) -> web.Response:
    return respond(request, request.app[NODE].status(request.app[NOW]()))


# -- sightings, disputes, appeals (node/aftermatch.py) -----------------------------------


def _published(accepted: int, entry: Any) -> dict[str, Any]:
    return {"accepted": accepted, "entry": {"seq": entry.seq, "hash": entry.hash.hex()}}


async def handle_sightings(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    r = request.app[NODE].after_match.sightings(items, request.app[NOW]())
    return respond(request, _published(r.accepted, r.entry), 201)


async def handle_disputes(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    r = request.app[NODE].after_match.disputes(items, request.app[NOW]())
    return respond(request, _published(r.accepted, r.entry), 201)


async def handle_appeals_file(request: web.Request) -> web.Response:
    body = await read_body(request)
    view = request.app[NODE].after_match.file_appeal(body, request.app[NOW]())
    return respond(request, view, 201)


async def handle_appeals(request: web.Request) -> web.Response:
    return respond(request, request.app[NODE].after_match.appeals(request.app[NOW]()))


async def handle_appeal_decision(request: web.Request) -> web.Response:
    body = await read_body(request)
    view = request.app[NODE].after_match.decide(request.match_info["id"], body, request.app[NOW]())
    return respond(request, view, 201)


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


# -- own reports, API keys, audit (scopes report and admin) -----------------------------


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise RequestRefused("bad_request", f"{name} is an integer from {lo} to {hi}")
    return int(text)


async def handle_own_reports(request: web.Request) -> web.Response:
    values = request.query.get("values", "false")
    if values not in ("true", "false"):
        raise RequestRefused("bad_request", "values is true or false")
    view = request.app[NODE].own_reports(
        request.app[NOW](),
        after=request.query.get("after", ""),
        limit=_int_param(request, "limit", 1000, 1, 10_000),
        values=values == "true",
    )
    return respond(request, view)


_KEY_FIELDS = frozenset({"name", "scopes"})


async def handle_admin_keys(request: web.Request) -> web.Response:
    flag = request.query.get("revoked", "false")
    if flag not in ("true", "false"):
        raise RequestRefused("bad_request", "revoked is true or false")
    revoked = flag == "true"
    keys = request.app[NODE].keys.list(revoked=revoked)
    return respond(request, {"keys": [k.to_json(rfc3339) for k in keys]})


async def handle_admin_key_create(request: web.Request) -> web.Response:
    body = fields_of(await read_body(request), _KEY_FIELDS, "a new API key")
    if "name" not in body or "scopes" not in body:
        raise RequestRefused("missing_field", 'a new key needs "name" and "scopes"')
    scopes = body["scopes"]
    if not isinstance(scopes, list | str):
        raise RequestRefused("bad_scope", "scopes is a list of query, report, watch, admin")
    key, secret = request.app[NODE].keys.create(body["name"], scopes, request.app[NOW]())
    return respond(request, {**key.to_json(rfc3339), "key": secret}, 201)


async def handle_admin_key_revoke(request: web.Request) -> web.Response:
    key = request.app[NODE].keys.revoke(request.match_info["name"], request.app[NOW]())
    return respond(request, key.to_json(rfc3339))


async def handle_admin_key_rotate(request: web.Request) -> web.Response:
    key, secret = request.app[NODE].keys.rotate(request.match_info["name"], request.app[NOW]())
    return respond(request, {**key.to_json(rfc3339), "key": secret})


async def handle_audit(request: web.Request) -> web.Response:
    after = _int_param(request, "after", 0, 0, 2**62)
    limit = _int_param(request, "limit", 1000, 1, 10_000)
    rows = request.app[NODE].store.audit_rows(after, limit)
    out = [AuditRow(*r).to_json() for r in rows]
    return respond(request, {"audit": out, "next": rows[-1][0] if len(rows) == limit else None})


# -- watches and alerts (node/alerts.py, node/delivery.py) -------------------------------


def _number(request: web.Request, name: str, default: float, hi: float) -> float:
    """A query parameter that is a number from 0 to ``hi``; else 400 ``bad_<name>``."""
    text = request.query.get(name)
    if text is None:
        return default
    try:
        v = float(text) if text.replace(".", "", 1).isdigit() else -1.0
    except ValueError:
        v = -1.0
    if not 0 <= v <= hi:
        raise RequestRefused(f"bad_{name}", f"{name} is a number from 0 to {hi:g}")
    return v


def _count(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """A query parameter that is a whole number from ``lo`` to ``hi``; else 400."""
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not lo <= int(text) <= hi:
        raise RequestRefused(f"bad_{name}", f"{name} is a whole number from {lo} to {hi}")
    return int(text)


async def handle_watches_add(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    body = request.app[NODE].alerts.watch(
        items, request.app[NOW](), max_batch=request.app[CONFIG]["api.max_batch"]
    )
    return respond(request, body, 201)


async def handle_watches_remove(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    body = request.app[NODE].alerts.unwatch(
        items, request.app[NOW](), max_batch=request.app[CONFIG]["api.max_batch"]
    )
    return respond(request, body)


async def handle_watches(request: web.Request) -> web.Response:
    after = _count(request, "after", 0, 0, 2**62)
    limit = _count(request, "limit", 1000, 1, 10_000)
    view = request.app[NODE].alerts.watches(request.app[NOW](), after=after, limit=limit)
    return respond(request, view)


async def handle_alerts(request: web.Request) -> web.Response:
    after = _count(request, "after", 0, 0, 2**62)
    limit = _count(request, "limit", 100, 1, 1000)
    wait = _number(request, "wait", 0.0, 60.0)
    alerts = await request.app[ALERT_FEED].wait_after(after, limit, wait)
    return respond(request, {"alerts": alerts, "next": alerts[-1]["id"] if alerts else after})


async def handle_alerts_stream(request: web.Request) -> web.StreamResponse:
    last = request.headers.get("Last-Event-ID")
    if last is not None:
        if not last.isascii() or not last.isdigit() or int(last) > 2**62:
            raise RequestRefused("bad_last_event_id", "Last-Event-ID is an alert id")
        after = int(last)
    else:
        after = _count(request, "after", 0, 0, 2**62)
    return await stream_alerts(request, request.app[ALERT_FEED], after)


async def _close_alert_feed(app: web.Application) -> None:
    app[ALERT_FEED].close()  # long polls and streams end: the server is stopping


# -- health ------------------------------------------------------------------------------


async def handle_healthz(request: web.Request) -> web.Response:
    return respond(request, {"status": "ok", "version": VERSION})


async def handle_readyz(request: web.Request) -> web.Response:
    reasons = not_ready_reasons(request.app[NODE])
    if reasons:
        return respond(request, error_body("not_ready", "; ".join(reasons), reasons=reasons), 503)
    return respond(request, {"ready": True})


# -- metrics and the document ------------------------------------------------------------


async def handle_metrics(request: web.Request) -> web.Response:
    request.app[NODE].update_metrics()
    return web.Response(
        body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def handle_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def _close_commit(app: web.Application) -> None:
    await app[COMMIT].close()


def create_api_app(
    node: Node, config: Config, metrics: Metrics, *, clock: Callable[[], int] = now_ms
) -> web.Application:
    """The local API application over ``node``."""
    app = web.Application(
        client_max_size=config["api.max_body_bytes"], middlewares=[api_middleware]
    )
    app[NODE] = node
    app[COMMIT] = GroupCommit(node.store)
    app.on_shutdown.append(_close_commit)
    app[QUERIER] = node
    app[KEYS] = node.keys
    app[CONFIG] = config
    app[METRICS] = metrics
    app[NOW] = clock
    app[ALERT_FEED] = AlertFeed(node.alerts)
    app.on_shutdown.append(_close_alert_feed)
    app.router.add_post("/v1/query", handle_query, name="query")
    app.router.add_get("/v1/query/{kind}/{value}", handle_query_one, name="query_one")
    app.router.add_post("/v1/reports", handle_reports, name="reports")
    app.router.add_post("/v1/retractions", handle_retractions, name="retractions")
    app.router.add_get("/v1/status", handle_status, name="status")
    app.router.add_get("/v1/admin/charter", handle_admin_charter, name="admin_charter")
    app.router.add_get("/v1/admin/proposals", handle_admin_proposals, name="admin_proposals")
    app.router.add_post("/v1/admin/proposals", handle_admin_propose, name="admin_propose")
    app.router.add_post("/v1/admin/proposals/{id}/sign", handle_admin_sign, name="admin_sign")
    app.router.add_get("/v1/reports", handle_own_reports, name="own_reports")
    app.router.add_get("/v1/admin/keys", handle_admin_keys, name="admin_keys")
    app.router.add_post("/v1/admin/keys", handle_admin_key_create, name="admin_key_create")
    app.router.add_delete("/v1/admin/keys/{name}", handle_admin_key_revoke, name="admin_key_revoke")
    app.router.add_post(
        "/v1/admin/keys/{name}/rotate", handle_admin_key_rotate, name="admin_key_rotate"
    )
    app.router.add_get("/v1/audit", handle_audit, name="audit")
    app.router.add_post("/v1/sightings", handle_sightings, name="sightings")
    app.router.add_post("/v1/disputes", handle_disputes, name="disputes")
    app.router.add_post("/v1/appeals", handle_appeals_file, name="appeals_file")
    app.router.add_get("/v1/appeals", handle_appeals, name="appeals")
    app.router.add_post("/v1/appeals/{id}/decision", handle_appeal_decision, name="appeal_decision")
    app.router.add_post("/v1/watches", handle_watches_add, name="watches_add")
    app.router.add_delete("/v1/watches", handle_watches_remove, name="watches_remove")
    app.router.add_get("/v1/watches", handle_watches, name="watches")
    app.router.add_get("/v1/alerts", handle_alerts, name="alerts")
    app.router.add_get("/v1/alerts/stream", handle_alerts_stream, name="alerts_stream")
    app.router.add_get("/healthz", handle_healthz, name="healthz")
    app.router.add_get("/readyz", handle_readyz, name="readyz")
    add_console_routes(app)
    app.router.add_get("/metrics", handle_metrics, name="metrics")
    app.router.add_get("/openapi.json", handle_openapi, name="openapi")
    return app
