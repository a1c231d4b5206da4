"""In-memory harness for gossip engines: N real engines, messages delivered in process."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from protocol_world import T0, World
from protocol_world import make_consortium as make_consortium  # re-exported for the tests

from protocol import codec
from protocol.charter_chain import CharterChain
from protocol.entries import Entry, Op
from protocol.feeds import Feeds
from protocol.gossip import Event, GossipEngine, GossipError, Send
from protocol.keys import MemberId
from protocol.store import MemoryStore

Tamper = Callable[[str, str, bytes], bytes | None]
E = TypeVar("E")


# -- messages ---------------------------------------------------------------------------


def decode(data: bytes) -> dict[str, Any]:
    msg = codec.loads(data)
    assert isinstance(msg, dict)
    return msg


def encode(msg: dict[str, Any]) -> bytes:
    return codec.dumps(msg)


@dataclass(frozen=True)
class Msg:
    """One message as the harness carried it (before any tampering)."""

    src: str
    dst: str
    data: bytes

    @property
    def msg(self) -> dict[str, Any]:
        return decode(self.data)

    @property
    def kind(self) -> str:
        return str(self.msg["t"])


def with_extra(
    data: bytes, *, en: Sequence[bytes] = (), it: Sequence[tuple[str, bytes]] = ()
) -> bytes:
    """``data`` with entries and items appended to its ``en`` and ``it`` lists."""
    msg = decode(data)
    if en:
        msg["en"] = [*msg.get("en", []), *en]
    if it:
        msg["it"] = [*msg.get("it", []), *[[k, raw] for k, raw in it]]
    return encode(msg)


def without_entries(data: bytes, drop: Callable[[bytes], bool]) -> bytes:
    """``data`` without the entries for which ``drop(raw)`` is true."""
    msg = decode(data)
    kept = [raw for raw in msg.get("en", []) if not drop(raw)]
    if kept:
        msg["en"] = kept
    else:
        msg.pop("en", None)
    return encode(msg)


# -- the network ------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    store: MemoryStore
    feeds: Feeds
    engine: GossipEngine
    events: list[Event] = field(default_factory=list)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


class Net:
    """Engines for the named members of ``world``, each with its own store and chain.

    ``deliver`` passes every message through ``tamper(sender, receiver, data)``
    (return None to drop it) and hands answers straight back, so one call of
    :meth:`round` runs every exchange started in that round to completion.
    Members of the charter without an engine here are unreachable, like
    members in ``down``.
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
        self.seed = seed
        self.fanout = fanout
        self.frame_bytes = frame_bytes
        self.nodes: dict[str, Node] = {}
        self.by_id: dict[MemberId, str] = {k.id: n for n, k in world.keys.items()}
        self.tamper: Tamper | None = None
        self.down: set[str] = set()
        self.sent: list[tuple[str, str, bytes]] = []
        self.chosen: dict[str, list[str]] = {}  # whom each node contacted in its last round
        for i, name in enumerate(names):
            store = MemoryStore()
            feeds = Feeds(store, CharterChain(world.genesis_raw))
            self.nodes[name] = Node(name, store, feeds, self._engine(name, feeds, seed * 1000 + i))

    def _engine(self, name: str, feeds: Feeds, rng_seed: int) -> GossipEngine:
        return GossipEngine(
            self.world.keys[name],
            feeds,
            rng=random.Random(rng_seed),
            now=self.now,
            fanout=self.fanout,
            frame_bytes=self.frame_bytes,
        )

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def engine(self, name: str) -> GossipEngine:
        return self.nodes[name].engine

    def id(self, name: str) -> MemberId:
        return self.world.keys[name].id

    def publish(self, name: str, ops: list[Op]) -> Entry:
        return self.nodes[name].feeds.publish(self.world.keys[name], ops, self.now)

    def restart(self, name: str, rng_seed: int) -> GossipEngine:
        """A new engine for ``name`` over the same store and feeds (the node restarted)."""
        node = self.nodes[name]
        node.feeds.listeners.clear()
        node.feeds.fork_listeners.clear()
        node.engine = self._engine(name, node.feeds, rng_seed)
        return node.engine

    def messages(self, since: int = 0) -> list[Msg]:
        return [Msg(s, d, data) for s, d, data in self.sent[since:]]

    def _drain(self, name: str) -> list[Send]:
        node = self.nodes[name]
        sends = []
        for ev in node.engine.events():
            if isinstance(ev, Send):
                sends.append(ev)
            else:
                node.events.append(ev)
        return sends

    def _reachable(self, name: str) -> bool:
        return name in self.nodes and name not in self.down

    def _converse(self, sender: str, send: Send) -> None:
        """Deliver ``send`` and bounce answers back and forth until none is left."""
        queue = deque([(sender, self.by_id[send.peer], send.data)])
        while queue:
            src, dst, data = queue.popleft()
            self.sent.append((src, dst, data))
            src_engine = self.nodes[src].engine
            if self.tamper is not None:
                tampered = self.tamper(src, dst, data)
                if tampered is None:
                    src_engine.connection_failed(self.id(dst), self.now)
                    continue
                data = tampered
            if not self._reachable(dst):
                src_engine.connection_failed(self.id(dst), self.now)
                continue
            try:
                answer = self.nodes[dst].engine.receive(self.id(src), data, self.now)
            except GossipError:
                src_engine.connection_failed(self.id(dst), self.now)
                continue
            if answer is not None:
                queue.append((dst, src, answer))
            for s in self._drain(dst):
                queue.append((dst, self.by_id[s.peer], s.data))
            for s in self._drain(src):
                queue.append((src, self.by_id[s.peer], s.data))

    def flush(self) -> None:
        """Run any exchange still waiting to start and collect every event."""
        busy = True
        while busy:
            busy = False
            for name in self.nodes:
                for s in self._drain(name):
                    busy = True
                    self._converse(name, s)

    def start(self, name: str) -> list[str]:
        """``name`` starts a round now; every exchange it starts runs to completion."""
        chosen = self.nodes[name].engine.start_round(self.now)
        self.chosen[name] = [self.by_id[c] for c in chosen]
        for s in self._drain(name):
            self._converse(name, s)
        self.flush()
        return self.chosen[name]

    def round(self, step_ms: int = 2_000) -> None:
        self.now += step_ms
        for name in self.nodes:
            if name in self.down:
                continue
            self.start(name)

    def converged(self) -> bool:
        heads = [n.engine.heads() for n in self.nodes.values() if n.name not in self.down]
        return all(h == heads[0] for h in heads)

    def run_until_converged(self, max_rounds: int = 50) -> int:
        for r in range(1, max_rounds + 1):
            self.round()
            if self.converged():
                return r
        raise AssertionError(f"no convergence after {max_rounds} rounds")


class EnginePair(Net):
    """Two engines, ``a`` and ``b``, with exchanges started one at a time.

    Every other member of the charter is unreachable, so each engine only ever
    completes exchanges with the other one.
    """

    def __init__(self, world: World, a: str = "A", b: str = "B", **kwargs: Any) -> None:
        kwargs.setdefault("fanout", max(1, len(world.genesis.members) - 1))
        super().__init__(world, [a, b], **kwargs)
        self.a, self.b = a, b

    def other(self, name: str) -> str:
        return self.b if name == self.a else self.a

    def exchange(self, initiator: str, step_ms: int = 0) -> list[Msg]:
        """``initiator`` starts a round; return the messages it caused between the pair."""
        self.now += step_ms
        mark = len(self.sent)
        self.start(initiator)
        pair = {self.a, self.b}
        return [m for m in self.messages(mark) if {m.src, m.dst} == pair]

    def sync(self, max_exchanges: int = 20) -> int:
        """Exchange alternately until both hold the same heads; return how many it took."""
        for i in range(max_exchanges):
            self.exchange(self.a if i % 2 == 0 else self.b, step_ms=1_000)
            if self.converged():
                return i + 1
        raise AssertionError(f"no convergence after {max_exchanges} exchanges")
