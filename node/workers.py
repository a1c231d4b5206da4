"""Serving processes: the local API on several cores, queries answered without the writer.

`riskmesh serve` runs one **writer** process (the `~node.core.Node`: gossip,
reports, administration, upkeep) and ``serve.workers`` **serving processes**
that share the local API's port (``SO_REUSEPORT``: the kernel spreads the
connections). DESIGN §9.

A serving process answers ``POST /v1/query`` and ``GET /v1/query/{kind}/{value}``
itself, from memory (`node.verdicts.Verdicts` over `node.summaries`), checking
API keys from memory too. Every other request is passed, as it came, to the
writer's local API on a Unix socket (``HOME/run/api.sock``), and its answer
passed back (streamed: the alert stream and long polls work through it). So a
report at any serving process is done by the writer and acknowledged only
after its durable commit.

**The hub** (writer side, `Hub`) keeps the serving processes current over a
second Unix socket (``HOME/run/hub.sock``). Each message is one
length-prefixed marshal-encoded tuple, numbered by the hub (``pos``):

* ``ctx``: charter versions, epoch keys, frozen feeds, API keys (hashed);
  sent on connect (last: a serving process listens once it has it) and
  whenever one of them changes (checked after every commit);
* ``base``: the verdict summary file to map (sent on connect and after every
  rebuild);
* ``overlay``: the verdict summaries changed since that file (sent on connect,
  before the context, in pieces);
* ``delta``: one commit's token summaries (full replacements), in pieces of
  at most `DELTA_CHUNK` tokens, so that a serving process never spends longer
  than one piece between two queries.

Back from a serving process: the values it was queried for (for
``alerts.recent_query_hours``), API key use, and its metrics, once a second.

**Read your writes.** The writer stamps each answer with the hub position of
the last message sent before it (``X-Riskmesh-Hub``); a serving process
passing the answer back first waits (50 ms at most) until it has applied that
message. So a report acknowledged through a serving process is answered by
that process at once, and by every other one as soon as its stream delivers
the change (a test checks under 50 ms).

**Supervision.** The writer starts the serving processes, replaces any that
dies (with back-off), and stops them on SIGTERM before it stops itself. A
serving process whose hub connection ends (the writer is gone) stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import marshal
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from aiohttp import ClientError, ClientSession, ClientTimeout, UnixConnector, web
from yarl import URL

from contracts.errors import RequestRefused
from node.api import (
    CONFIG,
    KEYS,
    METRICS,
    NOW,
    QUERIER,
    api_middleware,
    error_body,
    handle_query,
    handle_query_one,
    now_ms,
    respond,
)
from node.config import Config, load_config, parse_listen
from node.core import Node
from node.keys import ApiKey, key_hash
from node.listen import (
    BodyTimeout,
    HardenedRunner,
    Limits,
    RedactingAccessLogger,
    quiet_accept_errors,
    raise_open_file_limit,
    read_body_within,
)
from node.logs import setup_logging
from node.metrics import Metrics
from node.summaries import BaseFile, Changes, Summaries
from node.verdicts import Verdicts
from protocol.charter_chain import CharterChain
from protocol.tokens import EpochKeys

__all__ = ["HUB_HEADER", "WORKER_HEADER", "Hub", "Worker", "main", "run_dir", "worker_count"]

log = logging.getLogger("riskmesh.workers")

HUB_HEADER: Final = "X-Riskmesh-Hub"
#: a serving process's exit code when it cannot listen on api.listen: the node stops
CANNOT_LISTEN: Final = 3
WORKER_HEADER: Final = "X-Riskmesh-Worker"
_LEN: Final = struct.Struct(">I")
MAX_MESSAGE: Final = 1 << 30
#: how long a serving process waits for the hub to deliver what an answer it relays
#: depends on (read-your-writes), at most
CATCH_UP_S: Final = 0.05
#: queried items a serving process forwards in one batch, at most
RECORD_BATCH: Final = 50_000
#: token changes in one hub message, at most: what a serving process unpacks and
#: applies before letting queries in again
DELTA_CHUNK: Final = 500
#: hop-by-hop headers (RFC 9110 §7.6.1) and those aiohttp sets itself
_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        HUB_HEADER.lower(),
    }
)


def run_dir(home: Path) -> Path:
    d = home / "run"
    d.mkdir(mode=0o700, exist_ok=True)
    d.chmod(0o700)
    return d


def worker_count(config: Config) -> int:
    n: int = config["serve.workers"]
    return n if n > 0 else max(1, os.cpu_count() or 1)


async def _send(writer: asyncio.StreamWriter, msg: tuple[Any, ...]) -> None:
    data = marshal.dumps(msg)
    writer.write(_LEN.pack(len(data)) + data)
    await writer.drain()


async def _receive(reader: asyncio.StreamReader) -> tuple[Any, ...]:
    (n,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if n > MAX_MESSAGE:
        raise ValueError("hub message too large")
    msg = marshal.loads(await reader.readexactly(n))
    if not isinstance(msg, tuple) or not msg:
        raise ValueError("bad hub message")
    return msg


# -- the writer's side -----------------------------------------------------------------------


class Hub:
    """Keeps the serving processes current (see the module docstring). Writer side."""

    def __init__(self, node: Node, path: Path) -> None:
        self.node = node
        self.path = path
        self.pos = 0
        self._clients: set[asyncio.StreamWriter] = set()
        self._queues: dict[asyncio.StreamWriter, asyncio.Queue[bytes | None]] = {}
        self._ctx_key: tuple[Any, ...] | None = None
        self._server: asyncio.AbstractServer | None = None
        node.summary_listeners.append(self._delta)
        node.base_listeners.append(self.base_changed)
        node.mark_listeners.append(self._mark)
        node.store.commit_listeners.append(self._maybe_ctx)

    # -- messages ------------------------------------------------------------------------------

    def _ctx_fingerprint(self) -> tuple[Any, ...]:
        node = self.node
        chain = node.chain
        return (
            None if chain is None else (chain.current.version, id(chain.current)),
            tuple(sorted(node.epoch_keys)),
            tuple(sorted(node.frozen)),
            node.store.api_keys_changed,
        )

    def _ctx(self) -> tuple[Any, ...]:
        node = self.node
        self._ctx_key = self._ctx_fingerprint()
        charters = tuple(node.store.charters()) if node.chain is not None else ()
        epochs = tuple((ep, node.epoch_keys[ep]) for ep in sorted(node.epoch_keys))
        keys = tuple((h, k.name, tuple(sorted(k.scopes))) for h, k in node.keys.in_force().items())
        return ("ctx", self.pos, charters, epochs, tuple(sorted(node.frozen)), keys)

    def _base(self) -> tuple[Any, ...]:
        base = self.node.summaries.base
        return ("base", self.pos, base.path, base.seq)

    def _broadcast(self, msg: tuple[Any, ...]) -> None:
        self.pos += 1
        msg = (msg[0], self.pos, *msg[2:])
        data = marshal.dumps(msg)
        frame = _LEN.pack(len(data)) + data
        for q in self._queues.values():
            q.put_nowait(frame)

    def _delta(self, seq: int, changes: Mapping[bytes, bytes | None]) -> None:
        if self._queues:
            # in pieces: a serving process unpacks and applies one between two queries,
            # so a large commit (a gossip frame of a catch-up) is no pause of its size
            items = tuple(changes.items())
            for i in range(0, len(items), DELTA_CHUNK):
                self._broadcast(("delta", 0, seq, items[i : i + DELTA_CHUNK]))
        self._maybe_ctx()

    def _maybe_ctx(self) -> None:
        if self._queues and self._ctx_fingerprint() != self._ctx_key:
            self._broadcast(self._ctx())

    def _mark(self, seq: int) -> None:
        if self._queues:
            self._broadcast(("mark", 0, seq))

    def base_changed(self) -> None:
        if self._queues:
            self._broadcast(self._base())

    def stamp(self) -> int:
        """The position an answer given now depends on (read-your-writes)."""
        self._maybe_ctx()
        return self.pos

    # -- connections ---------------------------------------------------------------------------

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        self.path.chmod(0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._clients):
                w.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        node = self.node
        # what a new serving process needs, then every change after it, in order
        self._ctx_key = None
        # the context last: a serving process starts listening once it has it, so by
        # then it holds the base and the overlay too
        first = [self._base()]
        overlay = tuple((t, s, b) for t, (s, b) in node.summaries.changes().items())
        for i in range(0, len(overlay), DELTA_CHUNK):
            first.append(("overlay", self.pos, overlay[i : i + DELTA_CHUNK]))
        first.append(self._ctx())
        for msg in first:
            data = marshal.dumps((msg[0], self.pos, *msg[2:]))
            queue.put_nowait(_LEN.pack(len(data)) + data)
        self._queues[writer] = queue
        self._clients.add(writer)
        sender = asyncio.create_task(self._pump(queue, writer))
        try:
            while True:
                msg = await _receive(reader)
                self._from_worker(msg)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, EOFError):
            pass
        finally:
            self._queues.pop(writer, None)
            self._clients.discard(writer)
            queue.put_nowait(None)
            await sender
            writer.close()

    async def _pump(self, queue: asyncio.Queue[bytes | None], writer: asyncio.StreamWriter) -> None:
        try:
            while (frame := await queue.get()) is not None:
                writer.write(frame)
                if queue.empty():
                    await writer.drain()
        except (ConnectionError, RuntimeError):
            pass

    def _from_worker(self, msg: tuple[Any, ...]) -> None:
        node = self.node
        what = msg[0]
        if what == "queried":
            for kinds, values, refs, toks, per_item, now in msg[1]:
                node.alerts.queried(
                    list(kinds), list(values), list(refs), list(toks), per_item, now
                )
        elif what == "used":
            node.keys.note_use(dict(msg[1]))
        elif what == "metrics" and node.metrics is not None:
            node.metrics.absorb(msg[1])


#: how much lower than its serving processes the writer runs (nice; on Linux, where
#: nice is a thread's, the writer's own thread and the threads it starts): a query never
#: waits for a core behind a catch-up, a sweep or a publish
WRITER_NICE: Final = 5


class _Spawner:
    """Starts serving processes from a thread of its own, made before the writer lowers
    its priority: a process inherits the nice of the thread that starts it, and one
    that did not run as root could never raise it again, so a serving process started
    later (a replacement) would run as low as the writer."""

    def __init__(self, started: Callable[[subprocess.Popen[bytes]], None]) -> None:
        #: told of every process started, on the loop, before whoever asked for it
        self.started = started
        self._requests: queue.SimpleQueue[
            tuple[list[str], asyncio.AbstractEventLoop, asyncio.Future[subprocess.Popen[bytes]]]
            | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="riskmesh-spawner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            args, loop, fut = request
            try:
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
            except OSError as e:
                _settle(loop, fut, error=e)
                continue
            try:
                loop.call_soon_threadsafe(self._deliver, proc, fut)
            except RuntimeError:  # the loop is gone
                _end(proc)

    def _deliver(
        self, proc: subprocess.Popen[bytes], fut: asyncio.Future[subprocess.Popen[bytes]]
    ) -> None:
        self.started(proc)
        if fut.done():  # nobody waits for it any more (the node is stopping)
            _end(proc)
        else:
            fut.set_result(proc)

    async def spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[subprocess.Popen[bytes]] = loop.create_future()
        self._requests.put((args, loop, fut))
        return await fut

    def close(self) -> None:
        self._requests.put(None)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a serving process nobody waits for any more (started as the node stopped)."""
    proc.terminate()
    threading.Thread(target=proc.wait, name="riskmesh-wait", daemon=True).start()


def _settle(
    loop: asyncio.AbstractEventLoop,
    fut: asyncio.Future[Any],
    result: Any = None,
    error: BaseException | None = None,
) -> bool:
    """From another thread: settle ``fut`` on its loop; False if the loop is closed."""

    def settle() -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        return False
    return True


async def _exited(proc: subprocess.Popen[bytes]) -> int:
    """``proc``'s exit code, once it has exited (waited for in a thread)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()
    threading.Thread(
        target=lambda: _settle(loop, fut, result=proc.wait()), name="riskmesh-wait", daemon=True
    ).start()
    return await fut


def lower_writer_priority() -> Callable[[], None]:
    """Lower the calling thread (the writer's event loop) by `WRITER_NICE`; returns what
    undoes it, where allowed (root). Linux only: elsewhere nice is the whole process's,
    serving processes included."""
    if sys.platform != "linux":
        return lambda: None
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, before + WRITER_NICE))
    except OSError as e:
        log.warning("the writer could not lower its priority (%s)", e)
        return lambda: None
    log.info(
        "the writer runs at nice %d, its serving processes at %d",
        os.getpriority(os.PRIO_PROCESS, 0),
        before,
    )

    def undo() -> None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, before)

    return undo


class Supervisor:
    """Starts ``count`` serving processes and keeps them running until :meth:`stop`.

    They are started by a thread made in :meth:`start` (`_Spawner`), at the priority
    the node started with, whatever the writer's own is by then."""

    def __init__(
        self, home: Path, count: int, on_fatal: Callable[[str], None] | None = None
    ) -> None:
        self.home = home
        self.count = count
        #: told why when a serving process cannot run at all (the port is taken)
        self.on_fatal = on_fatal
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        #: every serving process started, as soon as it is (see `stop`)
        self._started: list[subprocess.Popen[bytes]] = []
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._spawner: _Spawner | None = None

    async def start(self) -> None:
        self._spawner = _Spawner(self._started.append)
        for slot in range(self.count):
            self._tasks.append(asyncio.create_task(self._keep(slot)))

    async def _keep(self, slot: int) -> None:
        assert self._spawner is not None
        delay = 0.5
        while not self._stopping:
            started = time.monotonic()
            proc = await self._spawner.spawn(
                [sys.executable, "-m", "node.workers", str(self.home), str(slot)]
            )
            self.procs[slot] = proc
            self._started[:] = [p for p in self._started if p.returncode is None]
            code = await _exited(proc)
            if self._stopping:
                return
            if code == CANNOT_LISTEN:
                if self.on_fatal is not None:
                    self.on_fatal("a serving process cannot listen on api.listen (see above)")
                return
            log.warning(
                "serving process %d (pid %d) ended with %s; starting another", slot, proc.pid, code
            )
            delay = 0.5 if time.monotonic() - started > 30 else min(delay * 2, 10.0)
            await asyncio.sleep(delay)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM to every serving process started (one whose start was under way
        included), SIGKILL to any still running after ``timeout_s``."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        running = [p for p in self._started if p.poll() is None]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        exits = [asyncio.ensure_future(_exited(p)) for p in running]
        if exits:
            await asyncio.wait(exits, timeout=timeout_s)
            for p, exit in zip(running, exits, strict=True):
                if not exit.done():
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
            await asyncio.gather(*exits)
        if self._spawner is not None:
            self._spawner.close()


# -- a serving process ----------------------------------------------------------------------


class MemoryKeys:
    """The API keys in force, as the writer last sent them; checked from memory."""

    def __init__(self) -> None:
        self.by_hash: dict[bytes, ApiKey] = {}
        self.used: dict[bytes, int] = {}
        self._hashes: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryKeys({len(self.by_hash)} keys)"

    def set(self, rows: Sequence[tuple[bytes, str, Sequence[str]]]) -> None:
        self.by_hash = {h: ApiKey(name, frozenset(scopes), 0) for h, name, scopes in rows}

    def check(self, secret: str, now: int) -> ApiKey | None:
        hashes = self._hashes
        h = hashes.get(secret)
        if h is None:
            h = key_hash(secret)
            if len(hashes) >= 1024:  # bounded: a client trying many secrets evicts nothing useful
                hashes.clear()
            hashes[secret] = h
        key = self.by_hash.get(h)
        if key is not None:
            self.used[h] = now
        else:
            hashes.pop(secret, None)
        return key


class Worker:
    """One serving process: its state from the hub, its app, its forwarding."""

    def __init__(self, config: Config, slot: int = 0) -> None:
        self.config = config
        self.slot = slot
        self.home = config.home
        self.summaries = Summaries()
        self.epoch_keys = EpochKeys()
        self.verdicts = Verdicts(
            self.summaries, self.epoch_keys, region=config["node.region"], record=self._record
        )
        self.keys = MemoryKeys()
        self.metrics = Metrics()
        self.applied = 0
        self._applied_event = asyncio.Event()
        self._queried: list[tuple[Any, ...]] = []
        self._recording = config["alerts.recent_query_hours"] > 0
        self._metrics_sent: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._charters: tuple[bytes, ...] = ()
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._freeing: set[asyncio.Task[None]] = set()
        self.session: ClientSession | None = None

    def __repr__(self) -> str:
        return f"Worker(pid={os.getpid()})"

    # -- state from the hub ----------------------------------------------------------------------

    def _record(
        self,
        kinds: list[str],
        values: list[str],
        refs: list[str | None],
        toks: list[bytes],
        per_item: int,
        now: int,
    ) -> None:
        if not kinds or not self._recording:
            return
        q = self._queried
        # the queries of one forwarding interval go as one batch (the writer seals and
        # stores a batch as a whole: one per second, not one per request); its time is
        # the latest query's, at most a second later than the earliest's
        if q and q[-1][4] == per_item and len(q[-1][0]) < RECORD_BATCH:
            last = q[-1]
            last[0].extend(kinds)
            last[1].extend(values)
            last[2].extend(refs)
            last[3].extend(toks)
            q[-1] = (*last[:5], max(last[5], now))
        else:
            q.append((list(kinds), list(values), list(refs), list(toks), per_item, now))

    def apply(self, msg: tuple[Any, ...]) -> None:
        what, pos = msg[0], msg[1]
        if what == "delta":
            self.summaries.apply(msg[2], dict(msg[3]))
        elif what == "overlay":
            for tok, seq, blob in msg[2]:
                self.summaries.apply(seq, {tok: blob})
        elif what == "mark":
            self.summaries.mark(msg[2])
        elif what == "base":
            path, seq = msg[2], msg[3]
            base = BaseFile.open(path) if path is not None else BaseFile.empty(seq)
            old = self.summaries.set_base(base, release=self._release)
            # off the event loop: the last unmapping of a deleted file frees its pages
            asyncio.get_running_loop().run_in_executor(None, old.close)
        elif what == "ctx":
            charters, epochs, frozen, keys = msg[2], msg[3], msg[4], msg[5]
            if charters and charters != self._charters:
                raws = list(charters)
                self.verdicts.chain = CharterChain.from_raws(
                    raws, anchor=CharterChain(raws[0]).anchor
                )
                self._charters = tuple(charters)
            for ep, key in epochs:
                if ep not in self.epoch_keys:
                    self.epoch_keys.add(ep, key)
            self.verdicts.frozen = frozenset(frozen)
            self.keys.set(keys)
            self._ready.set()
        self.applied = pos
        self._applied_event.set()

    def _release(self, changes: Changes) -> None:
        """Free changes a new base file holds a shard at a time, queries let in between
        (freeing a million at once would be a pause of 30 ms)."""

        async def free() -> None:
            for shard in changes.shards:
                shard.clear()
                await asyncio.sleep(0)

        task = asyncio.get_running_loop().create_task(free())
        self._freeing.add(task)
        task.add_done_callback(self._freeing.discard)

    async def caught_up(self, pos: int, timeout_s: float = CATCH_UP_S) -> None:
        """Wait until the hub message ``pos`` is applied (or ``timeout_s`` passes)."""
        deadline = time.monotonic() + timeout_s
        while self.applied < pos:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._applied_event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._applied_event.wait()

    async def connect(self, deadline_s: float = 60.0) -> None:
        path = str(run_dir(self.home) / "hub.sock")
        end = time.monotonic() + deadline_s
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.05)
        self._writer = writer
        self._reader_task = asyncio.create_task(self._read(reader))
        await self._ready.wait()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                self.apply(await _receive(reader))
                # messages already read return without a pause: let queries in between
                await asyncio.sleep(0)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, EOFError):
            log.info("the writer is gone; this serving process stops")
            os.kill(os.getpid(), signal.SIGTERM)

    async def forward(self) -> None:
        """Once a second (and at the end): recent queries, key use and metrics to the writer."""
        while True:
            await asyncio.sleep(1.0)
            await self.flush()

    async def flush(self) -> None:
        w = self._writer
        if w is None or w.is_closing():
            return
        if self._queried:
            batch, self._queried = self._queried, []
            await _send(w, ("queried", batch))
        if self.keys.used:
            used, self.keys.used = self.keys.used, {}
            await _send(w, ("used", tuple(used.items())))
        delta = self.metrics.delta_since(self._metrics_sent)
        if delta:
            await _send(w, ("metrics", delta))

    # -- the app ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        config = self.config
        app = web.Application(
            client_max_size=config["api.max_body_bytes"], middlewares=[api_middleware]
        )
        app[QUERIER] = self.verdicts
        app[KEYS] = self.keys
        app[CONFIG] = config
        app[METRICS] = self.metrics
        app[NOW] = now_ms
        app.router.add_post("/v1/query", handle_query, name="query")
        app.router.add_get("/v1/query/{kind}/{value}", handle_query_one, name="query_one")
        app.router.add_route("*", "/{tail:.*}", self.proxy, name="proxied")
        app.cleanup_ctx.append(self._session)
        app.on_shutdown.append(self._end_streams)
        app.on_response_prepare.append(self._name_process)
        return app

    async def _end_streams(self, app: web.Application) -> None:
        # on a stop, requests still passed to the writer (a long poll, the alert
        # stream) end now rather than hold the port for their whole wait
        if self.session is not None:
            await self.session.close()

    async def _name_process(self, request: web.Request, response: web.StreamResponse) -> None:
        # which serving process answered (operators and tests tell them apart by it)
        response.headers[WORKER_HEADER] = str(self.slot)

    async def _session(self, app: web.Application) -> AsyncIterator[None]:
        path = str(run_dir(self.home) / "api.sock")
        self.session = ClientSession(
            connector=UnixConnector(path=path, limit=256),
            timeout=ClientTimeout(total=None, connect=10, sock_read=None),
            auto_decompress=False,
        )
        yield
        await self.session.close()

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Pass the request to the writer's local API, and its answer back, as they are."""
        assert self.session is not None
        try:
            body = await read_body_within(request, self.config["http.body_timeout_s"])
        except BodyTimeout:
            return respond(
                request,
                error_body("body_timeout", "the request body did not arrive in time"),
                408,
            )
        except web.HTTPRequestEntityTooLarge:
            return respond(request, error_body("body_too_large", "request body is too large"), 413)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        url = URL("http://writer" + request.raw_path, encoded=True)
        try:
            upstream = await self.session.request(
                request.method,
                url,
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
            )
        except (OSError, ClientError, RuntimeError):  # refused, reset, or stopping
            resp = respond(
                request,
                error_body("writer_unavailable", "the node's writer process is restarting"),
                503,
            )
            resp.headers["Retry-After"] = "1"
            return resp
        async with upstream:
            pos = upstream.headers.get(HUB_HEADER)
            if pos is not None and pos.isdigit():
                await self.caught_up(int(pos))
            out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in upstream.headers.items():
                if k.lower() not in _HOP:
                    out.headers.add(k, v)
            if upstream.headers.get("Content-Length") is not None:
                out.content_length = int(upstream.headers["Content-Length"])
            await out.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await out.write(chunk)
            except (OSError, ClientError):  # the writer stopped mid-answer: so does this one
                return out
            await out.write_eof()
            return out


def hub_stamp(hub: Hub) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook for the writer's app: stamp the hub position."""

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[HUB_HEADER] = str(hub.stamp())

    return stamp


async def serve_worker(home: Path, slot: int) -> None:
    config = load_config(home)
    host, port = parse_listen(config["api.listen"], "api.listen")
    worker = Worker(config, slot)
    await worker.connect()
    # what start-up made lives as long as the process: out of the collector's way, so
    # that its full collections (pauses a query would wait through) stay short
    gc.collect()
    gc.freeze()
    raise_open_file_limit()
    quiet_accept_errors(asyncio.get_running_loop())
    limits = Limits(
        max_connections=config["api.max_connections"],
        header_timeout_s=config["http.header_timeout_s"],
        body_timeout_s=config["http.body_timeout_s"],
    )
    # the writer logs what it is passed; queries are counted in metrics, and logged one
    # by one (route only, never the path) only at log.level = debug
    if config["log.level"] == "debug":
        runner = HardenedRunner(worker.app(), limits, access_log_class=RedactingAccessLogger)
    else:
        runner = HardenedRunner(worker.app(), limits, access_log=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    forward = asyncio.create_task(worker.forward())
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port, reuse_port=True).start()
        except OSError as e:
            log.error("serving process %d cannot listen on %s:%d: %s", slot, host, port, e)
            raise SystemExit(CANNOT_LISTEN) from None
        log.info("serving process %d (pid %d) on %s:%d", slot, os.getpid(), host, port)
        await stop.wait()
    finally:
        await runner.cleanup()
        forward.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await forward
        with contextlib.suppress(Exception):
            await worker.flush()


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    home, slot = Path(args[0]), int(args[1])
    config = load_config(home)
    setup_logging(config["log.level"], config["log.format"])
    try:
        import uvloop

        runner: Callable[[Awaitable[None]], None] = uvloop.run  # type: ignore[assignment]
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        runner = asyncio.run  # type: ignore[assignment]
    try:
        runner(serve_worker(home, slot))
    except RequestRefused as e:  # pragma: no cover - a bad config is refused at start
        log.error("%s", e.message)
        sys.exit(2)


if __name__ == "__main__":
    main()
