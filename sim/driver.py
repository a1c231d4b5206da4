"""Driving the engines: timers, the simulated network, and the events engines report.

:class:`Driver` does for every node what the node's HTTP peer transport does
for one: it calls ``handle_timer`` when ``get_timer`` says so, delivers every
``Send`` as a request whose answer goes back to the sender, which may answer
again, until the conversation ends. A request that is lost, blocked by a
partition, refused by a node that is down, or answered with an error becomes
``connection_failed`` at the sender — after the HTTP timeout, or one round
trip for a refused connection. Every other event an engine reports goes to the
:class:`EngineListener` objects subscribed (observation, governance); every
entry a node's feeds append or refuse as a duplicate goes to the
:class:`FeedListener` objects.

It also starts nodes (over their store, or from the genesis) and crashes them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from protocol.entries import Entry
from protocol.gossip import Event, GossipError, Send
from protocol.keys import MemberId
from protocol.store import MemoryStore
from sim.clock import T0, Clock
from sim.consortium import Consortium
from sim.engines import ENGINE_CLASSES, ObservedFeeds
from sim.network import Network
from sim.nodes import Fleet, SimNode
from sim.scenario import Scenario

__all__ = ["Driver", "EngineListener", "FeedListener", "TrafficWindow"]


class EngineListener(Protocol):
    """Told of every event an engine reports other than ``Send``."""

    def on_event(self, node: SimNode, ev: Event) -> None: ...

    def after_drain(self, node: SimNode, sent_to: set[MemberId]) -> None:
        """The node's events are drained; ``sent_to``: peers it sent a message meanwhile."""
        ...

    def on_message_refused(self, node: SimNode, sender: SimNode, reason: str) -> None:
        """``node``'s engine refused a whole message from ``sender`` (a ``GossipError``)."""
        ...


class FeedListener(Protocol):
    """Told of every entry a node's feeds append, and of every duplicate they refuse."""

    def on_append(self, node: SimNode, entry: Entry) -> None: ...

    def on_duplicate(self, node: SimNode, log: MemberId, seq: int) -> None: ...


@dataclass(slots=True)
class TrafficWindow:
    """Messages and bytes sent, and exchanges completed, since the last sample."""

    bytes: int = 0
    messages: int = 0
    exchanges: int = 0

    def take(self) -> tuple[int, int, int]:
        out = (self.bytes, self.messages, self.exchanges)
        self.bytes = self.messages = self.exchanges = 0
        return out


class Driver:
    """Runs the nodes' engines on the clock, over the network."""

    def __init__(
        self, sc: Scenario, clock: Clock, net: Network, fleet: Fleet, cons: Consortium
    ) -> None:
        self.sc = sc
        self.clock = clock
        self.net = net
        self.fleet = fleet
        self.cons = cons
        self.http_timeout = float(sc.network.http_timeout_ms)
        # An exchange's deadline can come before the next round only if the engine's
        # exchange timeout is shorter than a (jittered) interval; only then does a new
        # exchange move the engine's timer earlier (otherwise only handle_timer does).
        g = sc.gossip
        self._deadline_may_lead = g.timeout_ms < 1.5 * g.interval_ms
        self.window = TrafficWindow()
        #: the node whose message is being received right now (-1: none)
        self.sender = -1
        self._listeners: list[EngineListener] = []
        self._feed_listeners: list[FeedListener] = []

    def subscribe(self, listener: EngineListener) -> None:
        self._listeners.append(listener)

    def subscribe_feeds(self, listener: FeedListener) -> None:
        self._feed_listeners.append(listener)

    # -- starting and crashing -------------------------------------------------------------

    def start(self, node: SimNode, *, fresh: bool) -> None:
        """Start (or restart) a node: over its store, or from the genesis if ``fresh``.

        A fresh founder holds the epoch-1 key (installed with the genesis); a fresh
        newcomer holds no key until a grant reaches it.
        """
        if fresh:
            node.store = MemoryStore()
            node.store.put_charter(1, self.cons.genesis_raw)
            node.chain = self.cons.fresh_chain()
            node.holds = set()
            node.held_valid = 0
            node.held_since = {}
            node.own_values = {}
            node.keys = {1: self.cons.epoch_keys[1]} if node.founder else {}
        assert node.chain is not None
        node.feeds = ObservedFeeds(node.store, node.chain, partial(self._on_duplicate, node))
        node.feeds.listeners.append(partial(self._on_append, node))
        node.incarnation += 1
        node.engine = ENGINE_CLASSES[node.role](
            node.key,
            node.feeds,
            rng=random.Random(f"{self.sc.seed}:engine:{node.idx}:{node.incarnation}"),
            now=self.clock.now_ms,
            gossip=self.sc.gossip,
            attack=node.attack,
        )
        node.started = node.up = True
        node.timer_at = None
        node.timer_gen += 1
        self.arm(node)

    def crash(self, node: SimNode) -> None:
        node.up = False
        node.engine = None
        node.feeds = None
        node.timer_gen += 1
        node.timer_at = None

    def _on_append(self, node: SimNode, entry: Entry) -> None:
        for listener in self._feed_listeners:
            listener.on_append(node, entry)

    def _on_duplicate(self, node: SimNode, log: MemberId, seq: int) -> None:
        for listener in self._feed_listeners:
            listener.on_duplicate(node, log, seq)

    # -- timers ------------------------------------------------------------------------------

    def arm(self, node: SimNode) -> None:
        """Schedule the node's timer for when its engine next has something to do."""
        if not node.up or node.engine is None:
            return
        clock = self.clock
        t = max(clock.t, float(node.engine.get_timer() - T0))
        if node.timer_at is None or t < node.timer_at:
            node.timer_gen += 1
            node.timer_at = t
            clock.at(t, self._on_timer, node, node.timer_gen)

    def _on_timer(self, node: SimNode, gen: int) -> None:
        if gen != node.timer_gen or not node.up or node.engine is None:
            return
        node.timer_at = None
        clock = self.clock
        now = clock.now_ms
        engine = node.engine
        if now >= engine.get_timer():
            engine.handle_timer(now)
            self.drain(node)
        if node.up and engine.get_timer() <= now:
            # nothing more can happen within this millisecond
            node.timer_gen += 1
            node.timer_at = clock.t + 1.0
            clock.at(clock.t + 1.0, self._on_timer, node, node.timer_gen)
        else:
            self.arm(node)

    # -- the network -------------------------------------------------------------------------

    def _count(self, node: SimNode, nbytes: int) -> None:
        node.bytes_sent += nbytes
        node.messages_sent += 1
        w = self.window
        w.bytes += nbytes
        w.messages += 1

    def _post(self, src: SimNode, peer: MemberId, data: bytes) -> None:
        """``src`` sends a request to ``peer`` (an HTTP POST of one engine message)."""
        self._count(src, len(data))
        inc = src.incarnation
        clock = self.clock
        sent = clock.t
        dst = self.fleet.of(peer)
        if dst is None or not dst.started:
            clock.at(sent + 1.0, self._fail, src, inc, peer)  # no node at that endpoint
            return
        arrive = self.net.transit(src.idx, dst.idx, len(data), sent)
        if arrive is None or arrive - sent > self.http_timeout:
            clock.at(sent + self.http_timeout, self._fail, src, inc, peer)
        else:
            clock.at(arrive, self._on_request, src, inc, dst, data, sent)

    def _on_request(self, src: SimNode, inc: int, dst: SimNode, data: bytes, sent: float) -> None:
        clock = self.clock
        if not dst.up or dst.engine is None:
            back = clock.t + self.net.refused_after(src.idx, dst.idx) / 2
            clock.at(min(back, sent + self.http_timeout), self._fail, src, inc, dst.id)
            return
        self.sender = src.idx
        try:
            answer = dst.engine.receive(src.id, data, clock.now_ms)
        except GossipError as e:
            answer = None
            for listener in self._listeners:
                listener.on_message_refused(dst, src, e.reason)
            back = clock.t + self.net.latency(dst.idx, src.idx)
            clock.at(min(back, sent + self.http_timeout), self._fail, src, inc, dst.id)
        finally:
            self.sender = -1
        self.drain(dst)
        if answer is None:
            return
        self._count(dst, len(answer))
        arrive = self.net.transit(dst.idx, src.idx, len(answer), clock.t)
        if arrive is None or arrive - sent > self.http_timeout:
            clock.at(sent + self.http_timeout, self._fail, src, inc, dst.id)
        else:
            clock.at(arrive, self._on_answer, src, inc, dst, answer)

    def _on_answer(self, src: SimNode, inc: int, dst: SimNode, answer: bytes) -> None:
        if not src.up or src.incarnation != inc or src.engine is None:
            return
        now = self.clock.now_ms
        self.sender = dst.idx
        try:
            nxt = src.engine.receive(dst.id, answer, now)
        except GossipError:
            src.engine.connection_failed(dst.id, now)
            nxt = None
        finally:
            self.sender = -1
        self.drain(src)
        if nxt is not None:
            self._post(src, dst.id, nxt)

    def _fail(self, src: SimNode, inc: int, peer: MemberId) -> None:
        if not src.up or src.incarnation != inc or src.engine is None:
            return
        src.engine.connection_failed(peer, self.clock.now_ms)
        self.drain(src)

    # -- what the engines report ---------------------------------------------------------------

    def drain(self, node: SimNode) -> None:
        """Deliver the node's pending ``Send`` events; tell the listeners of the rest."""
        engine = node.engine
        if engine is None:
            return
        listeners = self._listeners
        sent_to: set[MemberId] = set()
        rearm = False
        for ev in engine.events():
            if isinstance(ev, Send):
                self._post(node, ev.peer, ev.data)
                sent_to.add(ev.peer)
                rearm = self._deadline_may_lead
            else:
                for listener in listeners:
                    listener.on_event(node, ev)
        for listener in listeners:
            listener.after_drain(node, sent_to)
        if rearm:
            self.arm(node)
