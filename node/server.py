"""The composition root: `riskmesh serve` builds a Node and its two listeners.

:func:`open_node` makes the :class:`~node.core.Node` from a home's config;
:func:`create_app` builds the local API over it (:mod:`node.api`) with the
maintenance jobs; :func:`serve` adds the peer listener (:mod:`node.peer`) and
runs both until SIGINT/SIGTERM. Each listener's lifecycle is its app's own
``cleanup_ctx``: the local API's runs the maintenance scheduler, the peer
API's runs the peer transport (session, engine timer, exchanges). The node is
closed after both have stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from contracts.errors import StoreError
from node.aftermatch import read_local_list
from node.alerts import AlertSettings
from node.api import CONFIG, METRICS, NODE, NOW, create_api_app, now_ms
from node.config import Config, load_config, parse_listen
from node.core import GossipSettings, Node
from node.delivery import ALERT_FEED, alerts_context
from node.home import adopt_next_key, read_next_key
from node.listen import (
    HardenedRunner,
    Limits,
    RedactingAccessLogger,
    quiet_accept_errors,
    raise_open_file_limit,
)
from node.logs import setup_logging
from node.metrics import Metrics
from node.peer import PeerTransport, create_peer_app
from node.store import SqliteStore, count_live
from node.summaries import BaseFile, build_base_file
from node.version import SOFTWARE, VERSION
from node.workers import (
    Hub,
    Supervisor,
    hub_stamp,
    lower_writer_priority,
    run_dir,
    worker_count,
)
from protocol.keys import MemberKey

__all__ = ["RedactingAccessLogger", "create_app", "load_member_key", "open_node", "run", "serve"]

log = logging.getLogger("riskmesh")


def load_member_key(config: Config) -> MemberKey:
    return MemberKey.from_seed(config.key_path.read_bytes())


def open_node(
    config: Config,
    *,
    clock: Callable[[], int] = now_ms,
    metrics: Metrics | None = None,
    summary_dir: Path | None = None,
) -> Node:
    """The node of the home ``config`` describes, its index built from the store."""
    key = load_member_key(config)
    next_key = read_next_key(config)
    store = SqliteStore(config.db_path, key)
    if next_key is not None:
        try:
            store.epoch_keys()
        except StoreError:
            # a rekey was adopted (the store resealed) but the key files not yet swapped
            store.close()
            adopt_next_key(config)
            key = next_key
            store = SqliteStore(config.db_path, key)
    return Node(
        store,
        key,
        find_next_key=lambda: read_next_key(config),
        on_key_adopted=lambda _key: adopt_next_key(config),
        region=config["node.region"],
        error_rate=config["index.error_rate"],
        gossip=GossipSettings(
            interval_s=config["gossip.interval_s"],
            fanout=config["gossip.fanout"],
            frame_bytes=config["gossip.frame_bytes"],
        ),
        metrics=metrics,
        now=clock(),
        software=SOFTWARE,
        summary_dir=summary_dir,
        alerts=AlertSettings(
            recent_query_hours=config["alerts.recent_query_hours"],
            retention_days=config["alerts.retention_days"],
            clock=clock,
        ),
    )


def create_app(
    config: Config,
    *,
    clock: Callable[[], int] = now_ms,
    jobs: bool = True,
    node: Node | None = None,
) -> web.Application:
    """The local API for the node at ``config.home`` (opened here unless given, and
    then closed with the app), with the maintenance jobs unless ``jobs`` is false."""
    metrics = node.metrics if node is not None and node.metrics is not None else Metrics()
    owned = node is None
    if node is None:
        node = open_node(config, clock=clock, metrics=metrics)
    app = create_api_app(node, config, metrics, clock=clock)
    node.after_match.local_list = read_local_list(config)  # node.warning_list
    if jobs:
        app.cleanup_ctx.append(_maintenance)
        # alert upkeep and webhook delivery: their own tasks, never in a request's way
        app.cleanup_ctx.append(
            alerts_context(
                node.alerts,
                app[ALERT_FEED],
                config["alerts.webhook_url"],
                config["alerts.webhook_secret"],
                clock=clock,
            )
        )
    if owned:

        async def close(app: web.Application) -> None:
            app[NODE].close()

        app.on_cleanup.append(close)
    return app


def build_base_file_niced(
    db_path: str, path: str, now: int, seq: int, error_rate: float = 0.001
) -> int:
    """`build_base_file` at a lower priority: on a busy machine the serving processes
    get the CPU first (a rebuild may take longer; a query may not)."""
    with contextlib.suppress(OSError):
        os.nice(BUILDER_NICE)
    return build_base_file(db_path, path, now, seq, error_rate=error_rate)


#: how much lower than the node the summary builder runs (os.nice)
BUILDER_NICE = 10


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return None


_malloc_trim = _load_malloc_trim()


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Building the first base file reads every live row through Python objects; once
    they are freed, glibc keeps most of their pages (about 20 MiB at 4 M live
    indicators), counted as the writer's resident memory until reused. The writer
    calls this after start-up and after each expiry sweep; it takes milliseconds."""
    if _malloc_trim is not None:
        _malloc_trim(0)


async def _maintenance(app: web.Application) -> AsyncIterator[None]:
    """Periodic upkeep (never gossip: the peer transport drives the engine's timer)."""
    node, config, clock, metrics = app[NODE], app[CONFIG], app[NOW], app[METRICS]

    # verdict summaries and the Bloom index's filter: a new base file once the overlay
    # is large or the filter of recent adds is full, once expired or retracted tokens
    # make up most of the index, and every rebuild interval (dropping what expired).
    # Built from SQLite in a process of its own.
    #: the rebuild under way, if any: the jobs below only start one (they return at
    #: once, so the scheduler never sees one still running)
    building: asyncio.Task[None] | None = None

    async def build_base(now: int) -> None:
        """A new base file written by a process of its own (spawned: no copy of this
        one's state), which a stop terminates."""
        path, seq = node.next_base_path(now)
        proc = multiprocessing.get_context("spawn").Process(
            target=build_base_file_niced,
            args=(str(node.store.path), str(path), now, seq, node.error_rate),
            name="riskmesh-summaries",
            daemon=True,
        )
        t0 = time.monotonic()
        proc.start()
        try:
            await asyncio.to_thread(proc.join)
        except asyncio.CancelledError:
            proc.terminate()
            log.info("verdict summary rebuild abandoned (stopping)")
            raise
        if proc.exitcode != 0:
            log.error("verdict summary rebuild failed (exit %s); the old file stays", proc.exitcode)
            return
        base = BaseFile.open(path)
        old = node.install_base(base, close=False)
        await asyncio.to_thread(old.close)
        log.info(
            "verdict summaries rebuilt: %d tokens in %.1f s", base.count, time.monotonic() - t0
        )

    async def rebuild_summaries(force: bool = False) -> None:
        nonlocal building
        if building is not None and not building.done():
            return
        # the overlay is large, or the index's filter of recent adds is full
        big = len(node.summaries.overlay) >= config["serve.summary_overlay"]
        if not (force or big or node.index.needs_rebuild()):
            return
        now = clock()
        if node.summary_dir is None or node.store.path is None:
            node.rebuild_summaries(now)
            return
        building = asyncio.create_task(build_base(now))

    async def rebuild_summaries_now() -> None:
        await rebuild_summaries(force=True)

    async def sweep() -> None:
        """The live count (a full scan, in a thread); a new base file (and so a new
        index) once expired or retracted tokens make up most of the index."""
        now = clock()
        path = node.store.path
        live = (
            node.sweep(now) if path is None else await asyncio.to_thread(count_live, str(path), now)
        )
        metrics.live_indicators.set(live)
        if node.index.count > 2 * live + 1024:
            await rebuild_summaries(force=True)
        release_free_memory()

    sched = AsyncIOScheduler()
    # a job that starts late (the loop was busy) still runs: upkeep is never skipped
    every = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    sched.add_job(sweep, "interval", seconds=60, id="expiry_sweep", **every)
    sched.add_job(rebuild_summaries, "interval", seconds=5, id="summaries_full", **every)
    sched.add_job(
        rebuild_summaries_now,
        "interval",
        seconds=config["index.rebuild_interval_s"],
        id="summaries_rebuild",
        **every,
    )

    async def flush_key_use() -> None:
        node.keys.flush()

    sched.add_job(flush_key_use, "interval", seconds=60, id="key_use", **every)
    sched.start()
    try:
        yield
    finally:
        sched.shutdown(wait=False)
        if building is not None and not building.done():
            building.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await building


def hold_home(home: Path) -> int:
    """This writer's exclusive hold on HOME (``HOME/run/writer.lock``, released when the
    process ends, however it ends): a second ``riskmesh serve`` on the same home stops
    before it touches anything (the database, the summary files, the sockets)."""
    fd = os.open(run_dir(home) / "writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"another riskmesh serve is running on {home} (it holds {home}/run/writer.lock); "
            "stop it first, or give this one a home of its own"
        ) from None
    return fd


async def serve(home: Path, stop: asyncio.Event | None = None) -> None:
    """The writer process and its ``serve.workers`` serving processes (node/workers.py):
    the serving processes share the local API's port; the writer answers what they
    pass it on a Unix socket, and the peer API itself."""
    held = hold_home(home)
    try:
        await _serve(home, stop)
    finally:
        os.close(held)


async def _serve(home: Path, stop: asyncio.Event | None) -> None:
    config = load_config(home)
    api_host, api_port = parse_listen(config["api.listen"], "api.listen")
    peer_host, peer_port = parse_listen(config["peer.listen"], "peer.listen")
    metrics = Metrics()
    node = open_node(config, metrics=metrics, summary_dir=home / "summaries")
    release_free_memory()
    app = create_app(config, node=node)
    run = run_dir(home)
    hub = Hub(node, run / "hub.sock")
    app.on_response_prepare.append(hub_stamp(hub))
    transport = PeerTransport(
        node,
        clock=now_ms,
        timeout_s=config["gossip.timeout_s"],
        metrics=metrics,
        body_timeout_s=config["http.body_timeout_s"],
    )
    peer_app = create_peer_app(transport)
    soft, _ = raise_open_file_limit()
    quiet_accept_errors(asyncio.get_running_loop())
    timeouts = {
        "header_timeout_s": config["http.header_timeout_s"],
        "body_timeout_s": config["http.body_timeout_s"],
    }
    api_limits = Limits(max_connections=config["api.max_connections"], **timeouts)
    peer_limits = Limits(max_connections=config["peer.max_connections"], **timeouts)
    if api_limits.max_connections + peer_limits.max_connections + 64 > soft:
        log.warning(
            "the open-file limit (%d) is below the listeners' connection caps; raise "
            "LimitNOFILE or lower api.max_connections / peer.max_connections",
            soft,
        )
    # the serving processes hold the connection caps and timeouts of the local API; the
    # writer's own socket takes only what they pass it
    api_runner = HardenedRunner(
        app, Limits(max_connections=4096, **timeouts), access_log_class=RedactingAccessLogger
    )
    # the peer API's access log would only repeat the gossip metrics at debug volume
    peer_runner = HardenedRunner(peer_app, peer_limits, access_log=None)
    stop = stop or asyncio.Event()
    fatal: list[str] = []
    restore_priority: Callable[[], None] = lambda: None  # noqa: E731

    def give_up(why: str) -> None:
        fatal.append(why)
        stop.set()

    supervisor = Supervisor(home, worker_count(config), on_fatal=give_up)
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread() and sys.platform != "win32":
        # signal handlers belong to the main thread (tests run serve() elsewhere)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    api_sock = run / "api.sock"
    try:
        await hub.start()
        await api_runner.setup()
        await peer_runner.setup()
        with contextlib.suppress(FileNotFoundError):
            api_sock.unlink()
        await web.UnixSite(api_runner, str(api_sock)).start()
        api_sock.chmod(0o600)
        await web.TCPSite(peer_runner, peer_host, peer_port).start()
        await supervisor.start()
        # serving processes are started at the node's priority by a thread of the
        # supervisor's; the writer's own work (catch-ups, publishing, upkeep) goes below
        # theirs, so that a query never waits for a core behind it
        restore_priority = lower_writer_priority()
        log.info(
            "local API on %s:%d (%d serving processes), peer API on %s:%d",
            api_host,
            api_port,
            supervisor.count,
            peer_host,
            peer_port,
        )
        await stop.wait()
        log.info("stopping" if not fatal else f"stopping: {fatal[0]}")
    finally:
        await supervisor.stop()
        restore_priority()
        await peer_runner.cleanup()
        await api_runner.cleanup()
        api_sock.unlink(missing_ok=True)
        await hub.close()
        node.close()
    if fatal:
        raise SystemExit(1)


def run(home: Path) -> None:
    config = load_config(home)
    setup_logging(config["log.level"], config["log.format"])
    log.info("riskmesh %s starting (home %s)", VERSION, home)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency wherever it builds
        asyncio.run(serve(home))
    else:
        uvloop.run(serve(home))
