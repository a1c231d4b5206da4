"""In-memory harness for gossip engines: N real engines, messages delivered in process."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocol.charter_chain import CharterChain
from protocol.entries import Entry, Op
from protocol.feeds import Feeds
from protocol.gossip import Event, GossipEngine, GossipError, Send
from protocol.keys import MemberId
from protocol.store import MemoryStore
from protocol_world import T0, World

Tamper = Callable[[str, str, bytes], bytes | None]


@dataclass
class Node:
    name: str
    store: MemoryStore
    feeds: Feeds
    engine: GossipEngine
    events: list[Event] = field(default_factory=list)


class Net:
    """Engines for the named members of ``world``, each with its own store and chain.

    ``deliver`` passes every message through ``tamper(sender, receiver, data)``
    (return None to drop it) and hands answers straight back, so one call of
    :meth:`round` runs every exchange started in that round to completion.
    """

    def __init__(
        self,
        world: World,
        names: Iterable[str],
        *,
        seed: int = 7,
        fanout: int = 3,
        frame_bytes: int | None = None,
        now: int = T0,
    ) -> None:
        self.world = world
        self.now = now
        self.nodes: dict[str, Node] = {}
        self.by_id: dict[MemberId, str] = {}
        self.tamper: Tamper | None = None
        self.down: set[str] = set()
        self.sent: list[tuple[str, str, bytes]] = []
        for i, name in enumerate(names):
            store = MemoryStore()
            feeds = Feeds(store, CharterChain(world.genesis_raw))
            engine = GossipEngine(
                world.keys[name],
                feeds,
                rng=random.Random(seed * 1000 + i),
                now=now,
                fanout=fanout,
                frame_bytes=frame_bytes,
            )
            self.nodes[name] = Node(name, store, feeds, engine)
            self.by_id[world.keys[name].id] = name

    def engine(self, name: str) -> GossipEngine:
        return self.nodes[name].engine

    def publish(self, name: str, ops: list[Op]) -> Entry:
        return self.nodes[name].feeds.publish(self.world.keys[name], ops, self.now)

    def _drain(self, name: str) -> list[Send]:
        node = self.nodes[name]
        sends = []
        for ev in node.engine.events():
            if isinstance(ev, Send):
                sends.append(ev)
            else:
                node.events.append(ev)
        return sends

    def _converse(self, sender: str, send: Send) -> None:
        """Deliver ``send`` and bounce answers back and forth until none is left."""
        queue = deque([(sender, self.by_id[send.peer], send.data)])
        while queue:
            src, dst, data = queue.popleft()
            self.sent.append((src, dst, data))
            if self.tamper is not None:
                tampered = self.tamper(src, dst, data)
                if tampered is None:
                    self.nodes[src].engine.connection_failed(self.world.keys[dst].id, self.now)
                    continue
                data = tampered
            if dst in self.down:
                self.nodes[src].engine.connection_failed(self.world.keys[dst].id, self.now)
                continue
            try:
                answer = self.nodes[dst].engine.receive(self.world.keys[src].id, data, self.now)
            except GossipError:
                self.nodes[src].engine.connection_failed(self.world.keys[dst].id, self.now)
                continue
            if answer is not None:
                queue.append((dst, src, answer))
            for s in self._drain(dst):
                queue.append((dst, self.by_id[s.peer], s.data))
            for s in self._drain(src):
                queue.append((src, self.by_id[s.peer], s.data))

    def round(self, step_ms: int = 2_000) -> None:
        self.now += step_ms
        for name, node in self.nodes.items():
            if name in self.down:
                continue
            node.engine.start_round(self.now)
            for s in self._drain(name):
                self._converse(name, s)

    def converged(self) -> bool:
        heads = [n.engine.heads() for n in self.nodes.values() if n.name not in self.down]
        return all(h == heads[0] for h in heads)

    def run_until_converged(self, max_rounds: int = 50) -> int:
        for r in range(1, max_rounds + 1):
            self.round()
            if self.converged():
                return r
        raise AssertionError(f"no convergence after {max_rounds} rounds")
