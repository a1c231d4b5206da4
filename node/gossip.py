"""The node's gossip driver: the protocol engine over HTTP, sealed envelopes and jobs.

:class:`GossipService` owns one :class:`protocol.gossip.GossipEngine` over the
node's SQLite-backed feeds and drives it:

* the peer API (:func:`create_peer_app`, its own listener) opens each sealed
  envelope (:mod:`node.envelope`), hands the message to the engine inside one
  store transaction and answers with the engine's sealed reply;
* :meth:`GossipService.tick` (an APScheduler job) calls the engine's timer —
  which starts a round of ``gossip.fanout`` exchanges every
  ``gossip.interval_s``, jittered — and sends what the engine wants sent, each
  exchange as one task that POSTs message after message to the peer over one
  shared ``aiohttp.ClientSession`` until the conversation ends;
* the engine's events update the Bloom index (entries accepted), the epoch
  keys (a grant to this member), the metrics and the log (forks, quarantines).

A transport failure (refused connection, timeout, an error status) is
reported to the engine, which backs the peer off exponentially.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from contracts.errors import RiskmeshError
from node.admin import Admin
from node.envelope import EnvelopeError, Opener, Sealer
from node.service import NodeCore, rfc3339
from protocol.entries import AddOp
from protocol.gossip import (
    CharterAdvanced,
    EntriesAccepted,
    ExchangeCompleted,
    ForkDetected,
    GossipEngine,
    GossipError,
    KeysGranted,
    PeerFailed,
    PeerQuarantined,
    ProposalUpdated,
    Refused,
    Send,
    max_message_bytes,
)
from protocol.keys import MemberId, member_id_text, short_id

__all__ = ["GOSSIP_PATH", "GossipService", "create_peer_app"]

log = logging.getLogger("riskmesh.gossip")

GOSSIP_PATH = "/v1/gossip"
CBOR = "application/cbor"


class GossipService:
    def __init__(
        self,
        core: NodeCore,
        *,
        clock: Callable[[], int],
        interval_s: float,
        fanout: int,
        timeout_s: float,
        frame_bytes: int = 1 << 20,
        rng: random.Random | None = None,
        metrics: Any = None,
    ) -> None:
        self.core = core
        self.clock = clock
        self.interval_ms = max(1, int(interval_s * 1000))
        self.fanout = fanout
        self.frame_bytes = frame_bytes
        self.timeout_s = timeout_s
        self.rng = rng or random.Random()
        self.metrics = metrics
        self.engine: GossipEngine | None = None
        self.admin: Admin | None = None
        self.session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sealer = Sealer(core.key)
        self._opener: Opener | None = None
        self.bytes_sent = 0
        self.bytes_received = 0

    # -- lifecycle -----------------------------------------------------------------

    def ensure_engine(self) -> GossipEngine | None:
        """The engine, made once a charter is installed."""
        if self.engine is None and self.core.feeds is not None:
            self.engine = GossipEngine(
                self.core.key,
                self.core.feeds,
                rng=self.rng,
                now=self.clock(),
                interval_ms=self.interval_ms,
                fanout=self.fanout,
                frame_bytes=min(
                    self.frame_bytes, self.core.feeds.chain.current.policy.gossip.frame_bytes
                ),
            )
            self.admin = Admin(self.core, self.engine)
            engine, me = self.engine, self.core.key.id
            self.core.own_head_claimed = lambda: engine.claimed_head(me)
            policy = self.core.feeds.chain.current.policy
            self._opener = Opener(
                self.core.key,
                is_member=self._is_member,
                skew_ms=policy.clock_skew_ms,
                max_bytes=self.max_body_bytes(),
            )
        return self.engine

    def max_body_bytes(self) -> int:
        feeds = self.core.feeds
        if feeds is None:
            return max_message_bytes(1 << 20, 1000) + 1024
        c = feeds.chain.current
        # the sealed envelope adds its fields and the box's MAC to the message
        return max_message_bytes(c.policy.gossip.frame_bytes, len(c.members)) + 1024

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers={"Content-Type": CBOR},
        )

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _skew_ms(self) -> int:
        feeds = self.core.feeds
        return 300_000 if feeds is None else feeds.chain.current.policy.clock_skew_ms

    def _is_member(self, member_id: bytes) -> bool:
        feeds = self.core.feeds
        return feeds is not None and feeds.chain.current.is_active(member_id)

    # -- the timer job -----------------------------------------------------------------

    async def tick(self) -> None:
        engine = self.ensure_engine()
        if engine is None or self.session is None:
            return
        now = self.clock()
        if now >= engine.get_timer():
            with self.core.store.atomic():
                engine.handle_timer(now)
            self._dispatch(engine)

    def dispatch(self) -> None:
        """Act on whatever the engine has to say (after a local proposal or signature)."""
        if self.engine is not None:
            self._dispatch(self.engine)

    def _dispatch(self, engine: GossipEngine) -> None:
        for ev in engine.events():
            if isinstance(ev, Send):
                task = asyncio.create_task(self._converse(ev.peer, ev.data))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._on_event(ev)

    async def _converse(self, peer: MemberId, data: bytes) -> None:
        """POST ``data`` to ``peer``; feed each answer to the engine until none is left."""
        engine = self.engine
        assert engine is not None and self.session is not None
        member = engine.chain.current.member(peer)
        if member is None or not member.endpoint:
            engine.connection_failed(peer, self.clock())
            self._dispatch(engine)
            return
        url = member.endpoint.rstrip("/") + GOSSIP_PATH
        msg: bytes | None = data
        while msg is not None:
            body = self._sealer.seal(peer, msg, self.clock())
            try:
                async with self.session.post(url, data=io.BytesIO(body)) as resp:
                    answer = await resp.read()
                    if resp.status == 204:
                        msg = None
                        break
                    if resp.status != 200:
                        raise _PeerAnswered(resp.status, answer)
            except (aiohttp.ClientError, TimeoutError, _PeerAnswered) as e:
                log.debug("gossip with %s failed: %s", short_id(peer), _describe(e))
                engine.connection_failed(peer, self.clock())
                self._dispatch(engine)
                return
            self.bytes_sent += len(body)
            self.bytes_received += len(answer)
            now = self.clock()
            try:
                plain = self._sealer.open_response(
                    peer, answer, now, self._skew_ms(), max_bytes=self.max_body_bytes()
                )
                with self.core.store.atomic():
                    msg = engine.receive(peer, plain, now)
            except (EnvelopeError, GossipError) as e:
                log.warning("gossip answer from %s refused: %s", short_id(peer), e.message)
                engine.connection_failed(peer, now)
                msg = None
            self._dispatch(engine)

    # -- the peer API ------------------------------------------------------------------

    def handle(self, body: bytes) -> bytes | None:
        """One sealed request from a peer; the sealed answer, or None (nothing to say)."""
        engine = self.ensure_engine()
        if engine is None or self._opener is None:
            raise _NotServing("this node has no charter installed yet")
        now = self.clock()
        sender, plain = self._opener.open(body, now)
        self.bytes_received += len(body)
        with self.core.store.atomic():
            reply = engine.receive(sender, plain, now)
        self._dispatch(engine)
        if reply is None:
            return None
        sealed = self._sealer.seal_response(sender, reply, self.clock())
        self.bytes_sent += len(sealed)
        return sealed

    # -- events ------------------------------------------------------------------------

    def _on_event(self, ev: Any) -> None:
        m = self.metrics
        if isinstance(ev, EntriesAccepted):
            ops = 0
            for e in ev.entries:
                for op in e.ops:
                    if isinstance(op, AddOp):
                        self.core.index.add(op.tok)
                ops += len(e.ops)
            if m is not None:
                m.entries.labels("accepted").inc(len(ev.entries))
            log.debug("accepted %d entries (%d ops)", len(ev.entries), ops)
        elif isinstance(ev, Refused):
            if m is not None:
                m.entries.labels(ev.reason).inc()
            log.warning(
                "refused %s from %s: %s (%s)", ev.what, short_id(ev.peer), ev.reason, ev.message
            )
        elif isinstance(ev, KeysGranted):
            with self.core.store.atomic(durable=True):
                for ep, k in ev.keys.items():
                    self.core.store.put_epoch_key(ep, k)
                    self.core.epoch_keys.add(ep, k)
            log.info(
                "key grant from %s opened: epochs %s", short_id(ev.grant.issuer), sorted(ev.keys)
            )
            self.core.republish(self.clock())
        elif isinstance(ev, ForkDetected):
            log.error(
                "ALERT fork proof: member %s signed two entries at seq %d; its feed is frozen",
                short_id(ev.proof.log),
                ev.proof.seq,
            )
            if m is not None:
                m.forks.inc()
        elif isinstance(ev, CharterAdvanced):
            log.info("charter version %d accepted", ev.version)
            if self.admin is not None:
                self.admin.charter_advanced(ev.version, self.clock())
        elif isinstance(ev, ProposalUpdated):
            log.info("proposal %s for version %d: %s", ev.id, ev.version, ev.status)
        elif isinstance(ev, PeerQuarantined):
            log.warning(
                "peer %s quarantined until %s (%s)",
                short_id(ev.peer),
                rfc3339(ev.until),
                ev.reason,
            )
        elif isinstance(ev, PeerFailed):
            log.info(
                "peer %s unreachable (%d in a row); backing off until %s",
                short_id(ev.peer),
                ev.failures,
                rfc3339(ev.backoff_until),
            )
        elif isinstance(ev, ExchangeCompleted) and m is not None:
            m.exchanges.labels("initiated" if ev.initiator else "answered").inc()

    # -- status ------------------------------------------------------------------------

    def peer_status(self) -> list[dict[str, Any]]:
        engine = self.engine
        if engine is None:
            return []
        now = self.clock()
        out = []
        stats = engine.peer_stats()
        for member in engine.chain.current.members:
            pid = MemberId(member.id)
            if pid == engine.me:
                continue
            st = stats.get(pid)
            lag = engine.peer_lag(pid)
            row: dict[str, Any] = {
                "id": member_id_text(pid),
                "name": member.name,
                "endpoint": member.endpoint,
                "last_success": None,
                "failures": 0,
                "consecutive_failures": 0,
                "backoff_until": None,
                "quarantined_until": None,
                "exchanges": 0,
                "invalid": 0,
                "bytes_sent": 0,
                "bytes_received": 0,
                "lag": None if lag is None else {"we_lack": lag[0], "they_lack": lag[1]},
            }
            if st is not None:
                row.update(
                    last_success=None if st.last_success is None else rfc3339(st.last_success),
                    failures=st.failures,
                    consecutive_failures=st.consecutive_failures,
                    backoff_until=rfc3339(st.backoff_until) if st.backoff_until > now else None,
                    quarantined_until=rfc3339(st.quarantined_until)
                    if st.quarantined_until > now
                    else None,
                    exchanges=st.exchanges,
                    invalid=st.invalid,
                    invalid_reasons=dict(st.invalid_reasons),
                    bytes_sent=st.bytes_sent,
                    bytes_received=st.bytes_received,
                )
            out.append(row)
        return out

    def update_metrics(self) -> None:
        m = self.metrics
        if m is None or self.engine is None:
            return
        for pid in self.engine.peer_stats():
            lag = self.engine.peer_lag(pid)
            if lag is not None:
                m.lag.labels(short_id(pid)).set(lag[0])
        m.gossip_bytes.labels("sent").set(self.bytes_sent)
        m.gossip_bytes.labels("received").set(self.bytes_received)


class _PeerAnswered(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"peer answered {status}")
        self.status = status
        self.body = body


class _NotServing(RiskmeshError):
    reason = "not_ready"


def _describe(e: BaseException) -> str:
    return str(e) or type(e).__name__


# -- the peer API app ------------------------------------------------------------------

SERVICE = web.AppKey("gossip", GossipService)


def _error(code: str, message: str, status: int) -> web.Response:
    import cbor2

    return web.Response(
        body=cbor2.dumps({"error": {"code": code, "message": message}}),
        status=status,
        content_type=CBOR,
    )


async def handle_gossip(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error("too_large", "request body is too large", 413)
    try:
        answer = service.handle(body)
    except EnvelopeError as e:
        return _error(e.reason, e.message, e.status)
    except GossipError as e:
        return _error(e.reason, e.message, 400 if e.reason != "quarantined" else 403)
    except _NotServing:
        return _error("not_ready", "this node has no charter installed yet", 503)
    if answer is None:
        return web.Response(status=204)
    return web.Response(body=answer, content_type=CBOR)


def create_peer_app(service: GossipService) -> web.Application:
    """The peer API: one route, POST /v1/gossip, sealed CBOR in and out."""
    app = web.Application(client_max_size=service.max_body_bytes())
    app[SERVICE] = service
    app.router.add_post(GOSSIP_PATH, handle_gossip, name="gossip")
    return app
