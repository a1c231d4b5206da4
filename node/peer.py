"""The peer transport: sealed envelopes over HTTP, and the engine's own timer.

:class:`PeerTransport` moves bytes for the :class:`~node.core.Node` and knows
no protocol rule:

* it holds one ``aiohttp.ClientSession`` for the whole life of the peer
  listener (started and closed by :func:`peer_context`, the peer app's
  ``cleanup_ctx``);
* it arms the engine's timer with ``loop.call_at`` — :meth:`Node.timer` says
  when the engine next has something to do, as aioquic's asyncio layer does
  with ``get_timer()`` — and re-arms it whenever the node wakes it;
* each exchange the engine starts runs as one task in an ``asyncio.TaskGroup``
  (no fire-and-forget task): it seals the message (:mod:`protocol.sealed`),
  POSTs it to the peer's ``/v1/gossip``, opens the answer and hands it to
  :meth:`Node.receive`, until the conversation ends; a transport failure is
  reported with :meth:`Node.connection_failed`;
* the peer API (:func:`create_peer_app`, its own listener) opens each sealed
  request, hands it to :meth:`Node.receive` and seals the reply.

The one table :data:`PEER_STATUS` maps a refusal's reason to its HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp
import cbor2
from aiohttp import web

from contracts.errors import EnvelopeError, GossipError, NotReady
from node.core import Node
from node.listen import BodyTimeout, read_body_within
from node.metrics import Metrics
from protocol.gossip import max_message_bytes
from protocol.keys import MemberId, short_id
from protocol.sealed import Opener, Sealer

__all__ = ["GOSSIP_PATH", "PEER_STATUS", "TRANSPORT", "PeerTransport", "create_peer_app"]

log = logging.getLogger("riskmesh.gossip")

GOSSIP_PATH = "/v1/gossip"
CBOR = "application/cbor"

#: The HTTP status of each refusal reason on the peer API.
PEER_STATUS: Mapping[str, int] = {
    # envelope refusals (protocol.sealed.REASONS)
    "decode": 400,
    "too_large": 413,
    "wrong_recipient": 421,
    "not_member": 403,
    "skew": 400,
    "bad_nonce": 400,
    "replay": 409,
    "busy": 503,
    "bad_box": 403,
    # the node cannot take gossip yet, or refuses the peer
    "not_ready": 503,
    "quarantined": 403,
}


class _PeerAnswered(Exception):
    def __init__(self, status: int, body: bytes = b"") -> None:
        super().__init__(f"peer answered {status}")
        self.status = status
        self.body = body


#: how many charter versions a refusal of a removed member carries at most
MAX_CHARTERS_WITH_REFUSAL = 16


class Refusal(Exception):
    """A refusal of a removed member's request, with the signed charter versions that
    removed it (public signed data, sent only once its Box has opened: it is that member)."""

    def __init__(self, charters: list[bytes]) -> None:
        super().__init__("not a member")
        self.charters = charters


class PeerTransport:
    """The node's gossip over HTTP: one session, sealed envelopes, exchange tasks."""

    def __init__(
        self,
        node: Node,
        *,
        clock: Callable[[], int],
        timeout_s: float,
        metrics: Metrics | None = None,
        body_timeout_s: float = 30.0,
    ) -> None:
        self.node = node
        self.clock = clock
        self.timeout_s = timeout_s
        self.body_timeout_s = body_timeout_s
        self.metrics = metrics
        self.sealer = Sealer(node.key)
        self._opener: Opener | None = None
        self._opener_for: tuple[int, int] | None = None
        self._removed_opener: Opener | None = None
        self.session: aiohttp.ClientSession | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bytes_sent = 0
        self.bytes_received = 0

    # -- limits ------------------------------------------------------------------------

    def max_body_bytes(self) -> int:
        chain = self.node.chain
        if chain is None:
            return max_message_bytes(1 << 20, 1000) + 1024
        c = chain.current
        # the sealed envelope adds its fields and the box's MAC to the message
        return max_message_bytes(c.policy.gossip.frame_bytes, len(c.members)) + 1024

    def _skew_ms(self) -> int:
        chain = self.node.chain
        return 300_000 if chain is None else chain.current.policy.clock_skew_ms

    def opener(self) -> Opener:
        """The request opener, remade when the policy's skew or size limit changes."""
        if self.node.chain is None:
            raise NotReady("this node has no charter installed yet")
        params = (self._skew_ms(), self.max_body_bytes())
        if self._opener is None or self._opener_for != params:
            self._opener = Opener(
                self.node.key,
                is_member=self.node.is_member,
                skew_ms=params[0],
                max_bytes=params[1],
            )
            self._opener_for = params
            self._removed_opener = Opener(
                self.node.key,
                is_member=self._is_removed,
                skew_ms=params[0],
                max_bytes=params[1],
            )
        return self._opener

    def _is_removed(self, member_id: bytes) -> bool:
        chain = self.node.chain
        m = None if chain is None else chain.current.member(member_id)
        return m is not None and m.status == "revoked"

    def _charters_for_removed(self, body: bytes, now: int) -> list[bytes] | None:
        """If ``body`` is a genuine request from a removed member (its Box opens), the
        charter versions that removed it, up to the current one."""
        opener, chain = self._removed_opener, self.node.chain
        if opener is None or chain is None:
            return None
        try:
            sender, _ = opener.open(body, now)
        except EnvelopeError:
            return None
        first = next(
            (
                v.charter.version
                for v in chain.versions()
                if (m := v.charter.member(sender)) is not None and m.status == "revoked"
            ),
            chain.current.version,
        )
        versions = chain.versions()[first - 1 :][-MAX_CHARTERS_WITH_REFUSAL:]
        return [v.raw for v in versions]

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self, started: asyncio.Event | None = None) -> None:
        """Run until cancelled: one session, exchanges in a TaskGroup, the engine's timer."""
        self._loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, headers={"Content-Type": CBOR}) as session,
                asyncio.TaskGroup() as group,
            ):
                self.session, self._group = session, group
                self.node.wakeup_listeners.append(self.wake)
                self.wake()
                if started is not None:
                    started.set()
                try:
                    await asyncio.Event().wait()  # until cancelled
                finally:
                    self.node.wakeup_listeners.remove(self.wake)
                    if self._timer is not None:
                        self._timer.cancel()
                    for t in list(self._tasks):
                        t.cancel()
        finally:
            self.session, self._group = None, None

    def wake(self) -> None:
        """Start the exchanges the node wants and re-arm the engine's timer."""
        group, loop = self._group, self._loop
        if group is None or loop is None:
            return
        if self.sealer.id != self.node.key.id:  # the node adopted a new member key
            self.sealer = Sealer(self.node.key)
            self._opener = self._removed_opener = None
        for send in self.node.take_sends():
            task = group.create_task(self._converse(send.peer, send.data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        when = self.node.timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if when is None:
            return
        delay = max(0.0, (when - self.clock()) / 1000.0)
        self._timer = loop.call_at(loop.time() + delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.node.handle_timer(self.clock())  # the node wakes us: sends start, timer re-armed
        if self._timer is None:
            self.wake()

    # -- one exchange ------------------------------------------------------------------

    async def _converse(self, peer: MemberId, data: bytes) -> None:
        """POST ``data`` to ``peer``; feed each answer to the node until none is left."""
        try:
            await self._exchange(peer, data)
        except asyncio.CancelledError:
            raise
        except Exception:
            # a bug here must not take the other exchanges down with it
            log.exception("gossip exchange with %s failed unexpectedly", short_id(peer))
            self.node.connection_failed(peer, self.clock())

    async def _exchange(self, peer: MemberId, data: bytes) -> None:
        session = self.session
        endpoint = self.node.endpoint_of(peer)
        if session is None or endpoint is None:
            self.node.connection_failed(peer, self.clock())
            return
        url = endpoint.rstrip("/") + GOSSIP_PATH
        msg: bytes | None = data
        while msg is not None:
            body = self.sealer.seal(peer, msg, self.clock())
            try:
                async with session.post(url, data=io.BytesIO(body)) as resp:
                    answer = await resp.read()
                    if resp.status == 204:
                        self._count(len(body), len(answer))
                        return
                    if resp.status != 200:
                        raise _PeerAnswered(resp.status, answer)
            except _PeerAnswered as e:
                self._refused_by(peer, e)
                return
            except (aiohttp.ClientError, TimeoutError) as e:
                log.debug("gossip with %s failed: %s", short_id(peer), str(e) or type(e).__name__)
                self.node.connection_failed(peer, self.clock())
                return
            self._count(len(body), len(answer))
            now = self.clock()
            try:
                plain = self.sealer.open_response(
                    peer, answer, now, self._skew_ms(), max_bytes=self.max_body_bytes()
                )
                msg = self.node.receive(peer, plain, now)
            except (EnvelopeError, GossipError) as e:
                log.warning("gossip answer from %s refused: %s", short_id(peer), e.message)
                self.node.connection_failed(peer, now)
                return

    def _refused_by(self, peer: MemberId, e: _PeerAnswered) -> None:
        """A peer refused us: count the failure, and if it says we are no member and
        shows the signed charter versions that say so, learn them."""
        self.node.connection_failed(peer, self.clock())
        if e.status != 403:
            return
        try:
            body = cbor2.loads(e.body[: 1 << 20])
        except Exception:  # a peer's garbage is not our error
            return
        charters = body.get("charters") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
        refused = isinstance(error, dict) and error.get("code") == "not_member"
        if refused and isinstance(charters, list):
            self.node.learn_charters(charters[:MAX_CHARTERS_WITH_REFUSAL], self.clock())

    def _count(self, sent: int, received: int) -> None:
        self.bytes_sent += sent
        self.bytes_received += received
        m = self.metrics
        if m is not None:
            m.gossip_bytes.labels("sent").inc(sent)
            m.gossip_bytes.labels("received").inc(received)

    # -- the peer API --------------------------------------------------------------------

    def handle(self, body: bytes) -> bytes | None:
        """One sealed request from a peer; the sealed answer, or None (nothing to say)."""
        now = self.clock()
        try:
            sender, plain = self.opener().open(body, now)
        except EnvelopeError as e:
            if e.reason == "not_member":
                charters = self._charters_for_removed(body, now)
                if charters is not None:
                    raise Refusal(charters) from None
            raise
        reply = self.node.receive(sender, plain, now)
        self._count(0, len(body))
        if reply is None:
            return None
        sealed = self.sealer.seal_response(sender, reply, self.clock())
        self._count(len(sealed), 0)
        return sealed


TRANSPORT = web.AppKey("transport", PeerTransport)


def _error(code: str, message: str, status: int) -> web.Response:
    return web.Response(
        body=cbor2.dumps({"error": {"code": code, "message": message}}),
        status=status,
        content_type=CBOR,
    )


async def handle_gossip(request: web.Request) -> web.StreamResponse:
    transport = request.app[TRANSPORT]
    try:
        body = await read_body_within(request, transport.body_timeout_s)
    except web.HTTPRequestEntityTooLarge:
        return _error("too_large", "request body is too large", 413)
    except BodyTimeout:
        return _error("body_timeout", "the request body did not arrive in time", 408)
    try:
        answer = transport.handle(body)
    except Refusal as r:
        return web.Response(
            body=cbor2.dumps(
                {
                    "error": {"code": "not_member", "message": "this member was removed"},
                    "charters": r.charters,
                }
            ),
            status=403,
            content_type=CBOR,
        )
    except (EnvelopeError, GossipError, NotReady) as e:
        return _error(e.reason, e.message, PEER_STATUS.get(e.reason, 400))
    if answer is None:
        return web.Response(status=204)
    return web.Response(body=answer, content_type=CBOR)


async def peer_context(app: web.Application) -> AsyncIterator[None]:
    """The peer listener's lifecycle: the transport runs while the listener does."""
    transport = app[TRANSPORT]
    started = asyncio.Event()
    task = asyncio.create_task(transport.run(started))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # it failed to start: say why
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_peer_app(transport: PeerTransport, *, run_transport: bool = True) -> web.Application:
    """The peer API: one route, POST /v1/gossip, sealed CBOR in and out.

    With ``run_transport`` the app's ``cleanup_ctx`` also runs the transport's
    outgoing side (session, timer, exchanges) for as long as the app is up.
    """
    app = web.Application(client_max_size=transport.max_body_bytes())
    app[TRANSPORT] = transport
    app.router.add_post(GOSSIP_PATH, handle_gossip, name="gossip")
    if run_transport:
        app.cleanup_ctx.append(peer_context)
    return app
