"""The local API (aiohttp): queries, reports, retractions, status, metrics, OpenAPI.

``create_app(config)`` builds the application; state lives under typed
``web.AppKey``s; background jobs start in a ``cleanup_ctx`` and are stopped
after its ``yield``. Every error is ``{"error": {"code", "message"}}`` with a
4xx status; a 5xx is a bug. JSON by default, CBOR when the request says
``Content-Type: application/cbor`` or ``Accept: application/cbor``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import cbor2
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from node.admin import Admin
from node.config import Config
from node.gossip import GossipService
from node.openapi import openapi_document
from node.service import NodeCore, NotReady, RequestError
from protocol.keys import MemberKey

__all__ = ["CORE", "METRICS", "Metrics", "create_app", "load_member_key", "now_ms"]

log = logging.getLogger("riskmesh.api")

CBOR = "application/cbor"
SCOPES = ("query", "report", "admin")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queries = Counter("riskmesh_query_items", "Items queried", registry=r)
        self.matches = Counter("riskmesh_query_matches", "Items that matched", registry=r)
        self.reports = Counter("riskmesh_reports", "Indicators reported", registry=r)
        self.retractions = Counter("riskmesh_retractions", "Indicators retracted", registry=r)
        self.requests = Counter(
            "riskmesh_api_requests", "Local API requests", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "riskmesh_api_seconds",
            "Local API latency",
            ["route"],
            registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1),
        )
        self.entries = Counter(
            "riskmesh_entries", "Entries offered by peers, by outcome", ["outcome"], registry=r
        )
        self.index_tokens = Gauge("riskmesh_index_tokens", "Tokens in the Bloom index", registry=r)
        self.live_indicators = Gauge(
            "riskmesh_live_indicators", "Live (unexpired, unretracted) tokens", registry=r
        )
        self.forks = Counter("riskmesh_fork_proofs", "Fork proofs found or received", registry=r)
        self.exchanges = Counter(
            "riskmesh_gossip_exchanges", "Gossip exchanges completed", ["role"], registry=r
        )
        self.gossip_bytes = Gauge(
            "riskmesh_gossip_bytes", "Sealed gossip bytes since start", ["direction"], registry=r
        )
        self.lag = Gauge(
            "riskmesh_peer_lag_entries",
            "Entries a peer holds that this node lacks, as the peer last told",
            ["peer"],
            registry=r,
        )


CORE = web.AppKey("core", NodeCore)
GOSSIP = web.AppKey("gossip_service", GossipService)
CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
NOW = web.AppKey("now", Callable[[], int])  # type: ignore[arg-type]


def load_member_key(config: Config) -> MemberKey:
    seed = config.key_path.read_bytes()
    return MemberKey.from_seed(seed)


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
            raise RequestError("bad_cbor", "request body is not valid CBOR") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestError("bad_json", "request body is not valid JSON") from None


def items_of(body: Any) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise RequestError("bad_request", 'request body must be an object with an "items" list')
    return body["items"]


ROUTE_SCOPE = {
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
    except RequestError as e:
        status = e.status
        extra = {"items": e.items} if e.items is not None else {}
        return respond(request, error_body(e.code, e.message, **extra), e.status)
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
        raise RequestError("unauthorized", "missing API key (Authorization: Bearer <key>)", 401)
    scopes = request.app[CORE].store.api_key_scopes(header[7:].strip())
    if scopes is None:
        raise RequestError("unauthorized", "unknown API key", 401)
    if scope is not None and scope not in scopes:
        raise RequestError("forbidden", f"this API key lacks the {scope!r} scope", 403)


async def handle_query(request: web.Request) -> web.Response:
    body = await read_body(request)
    items = items_of(body)
    canonical_input = bool(body.get("canonical", False)) if isinstance(body, dict) else False
    core = request.app[CORE]
    results = core.query(
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
    [result] = request.app[CORE].query([item], request.app[NOW]())
    m = request.app[METRICS]
    m.queries.inc()
    if "error" in result:
        return respond(request, result, 422)
    if result.get("match"):
        m.matches.inc()
    return respond(request, result)


async def handle_reports(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    r = request.app[CORE].report(items, request.app[NOW]())
    request.app[METRICS].reports.inc(r.accepted)
    return respond(
        request,
        {"accepted": r.accepted, "entry": {"seq": r.entry.seq, "hash": r.entry.hash.hex()}},
        201,
    )


async def handle_retractions(request: web.Request) -> web.Response:
    items = items_of(await read_body(request))
    r = request.app[CORE].retract(items, request.app[NOW]())
    request.app[METRICS].retractions.inc(r.accepted)
    return respond(
        request,
        {"accepted": r.accepted, "entry": {"seq": r.entry.seq, "hash": r.entry.hash.hex()}},
        201,
    )


async def handle_status(request: web.Request) -> web.Response:
    status = request.app[CORE].status(request.app[NOW]())
    status["peers"] = request.app[GOSSIP].peer_status()
    return respond(request, status)


def _admin(request: web.Request) -> Admin:
    service = request.app[GOSSIP]
    service.ensure_engine()
    if service.admin is None:
        raise NotReady("no charter installed on this node (riskmesh charter install)")
    return service.admin


async def handle_admin_charter(request: web.Request) -> web.Response:
    return respond(request, _admin(request).charter())


async def handle_admin_proposals(request: web.Request) -> web.Response:
    return respond(request, {"proposals": _admin(request).proposals()})


async def handle_admin_propose(request: web.Request) -> web.Response:
    body = await read_body(request)
    if not isinstance(body, dict):
        raise RequestError("bad_request", "request body must be an object with an action")
    jr = body.get("join_request")
    if isinstance(jr, str):
        try:
            body["join_request"] = base64.b64decode(jr, validate=True)
        except (ValueError, binascii.Error):
            raise RequestError("bad_join_request", "join_request must be base64") from None
    admin = _admin(request)
    view = admin.propose(body, request.app[NOW]())
    admin_dispatch(request)
    return respond(request, view, 201)


async def handle_admin_sign(request: web.Request) -> web.Response:
    admin = _admin(request)
    view = admin.sign(request.match_info["id"], request.app[NOW]())
    admin_dispatch(request)
    return respond(request, view)


def admin_dispatch(request: web.Request) -> None:
    """Handle what the engine did on the spot (a signature may have finalised a version)."""
    service = request.app[GOSSIP]
    if service.engine is not None:
        service.dispatch()


async def handle_metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    m.index_tokens.set(request.app[CORE].index.count)
    request.app[GOSSIP].update_metrics()
    return web.Response(
        body=generate_latest(m.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def handle_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def create_app(
    config: Config,
    *,
    core: NodeCore | None = None,
    clock: Callable[[], int] = now_ms,
    jobs: bool = True,
) -> web.Application:
    """The local API application for the node at ``config.home``."""
    app = web.Application(
        client_max_size=config["api.max_body_bytes"], middlewares=[api_middleware]
    )
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app[NOW] = clock
    if core is None:
        from node.store import SqliteStore

        key = load_member_key(config)
        core = NodeCore(
            SqliteStore(config.db_path, key),
            key,
            region=config["node.region"],
            error_rate=config["index.error_rate"],
        )
    app[CORE] = core
    app[GOSSIP] = GossipService(
        core,
        clock=clock,
        interval_s=config["gossip.interval_s"],
        fanout=config["gossip.fanout"],
        timeout_s=config["gossip.timeout_s"],
        frame_bytes=config["gossip.frame_bytes"],
        metrics=app[METRICS],
    )
    core.rebuild_index(clock())
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
    if jobs:
        app.cleanup_ctx.append(_scheduler)
    app.on_cleanup.append(_close_store)
    return app


async def _scheduler(app: web.Application) -> AsyncIterator[None]:
    core = app[CORE]
    config = app[CONFIG]
    clock = app[NOW]
    gossip = app[GOSSIP]
    metrics = app[METRICS]

    async def sweep() -> None:
        now = clock()
        live = core.sweep(now)
        metrics.live_indicators.set(live)

    async def rebuild_index() -> None:
        core.rebuild_index(clock())

    async def rebuild_if_full() -> None:
        if core.index.needs_rebuild():
            core.rebuild_index(clock())

    sched = AsyncIOScheduler()
    await gossip.start()
    # the engine jitters its own rounds; this job only gives it the time
    tick = min(0.25, config["gossip.interval_s"] / 4)
    sched.add_job(
        gossip.tick, "interval", seconds=tick, id="gossip", max_instances=1, coalesce=True
    )
    sched.add_job(sweep, "interval", seconds=60, id="expiry_sweep", max_instances=1, coalesce=True)
    sched.add_job(
        rebuild_index,
        "interval",
        seconds=config["index.rebuild_interval_s"],
        id="index_rebuild",
        max_instances=1,
        coalesce=True,
    )
    sched.add_job(
        rebuild_if_full, "interval", seconds=5, id="index_full", max_instances=1, coalesce=True
    )
    sched.start()
    try:
        yield
    finally:
        sched.shutdown(wait=False)
        await gossip.stop()


async def _close_store(app: web.Application) -> None:
    app[CORE].store.close()


def new_api_token() -> str:
    return "rm_" + secrets.token_urlsafe(32)
