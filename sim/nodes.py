"""The simulated members: one :class:`SimNode` per member key, and the :class:`Fleet` of them.

A node is what a member runs — a store, a charter chain, feeds, a gossip
engine, the epoch keys it holds — plus what the simulator keeps about it
(which entries it holds, since when, what it sent). Its state is changed by
the collaborators of :class:`sim.runner.Simulation`: the driver starts and
crashes it, the workload publishes through it, governance grants it keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from protocol.charter_chain import CharterChain
from protocol.keys import MemberId, MemberKey
from protocol.store import MemoryStore
from sim.engines import Attack, ObservedFeeds, SimEngine
from sim.scenario import ByzantineSpec

__all__ = ["Fleet", "SimNode"]


@dataclass(slots=True, eq=False)
class SimNode:
    idx: int
    name: str
    key: MemberKey
    role: str = "honest"
    admin: bool = False
    founder: bool = True
    spec: ByzantineSpec | None = None
    attack: Attack | None = None
    started: bool = False
    up: bool = False
    incarnation: int = 0
    timer_gen: int = 0
    timer_at: float | None = None
    joined_at: float = 0.0
    #: when its removal was proposed: its platforms stop reporting then
    removed_at: float | None = None
    store: MemoryStore = field(default_factory=MemoryStore)
    chain: CharterChain | None = None
    feeds: ObservedFeeds | None = None
    engine: SimEngine | None = None
    #: the epoch keys the node holds (epoch 1 comes with the genesis for founders)
    keys: dict[int, bytes] = field(default_factory=dict)
    #: identifiers it reported, by epoch (the node's sealed store of raw values, which it
    #: republishes from after a key rotation); lost with its state
    own_values: dict[int, dict[int, None]] = field(default_factory=dict)
    #: the node is publishing an entry of its own right now
    publishing: bool = False
    holds: set[bytes] = field(default_factory=set)
    held_valid: int = 0
    held_since: dict[tuple[bytes, int], float] = field(default_factory=dict)
    bytes_sent: int = 0
    messages_sent: int = 0
    #: after a restart with its state lost: the seq of its own feed it must hold again
    #: before its platforms report (None: nothing to wait for)
    resync_seq: int | None = None

    @property
    def id(self) -> MemberId:
        return MemberId(self.key.id)

    @property
    def honest(self) -> bool:
        return self.role == "honest"

    @property
    def current(self) -> bool:
        """Honest, up and not removed: a node whose answers and holdings count."""
        return self.up and self.role == "honest" and self.removed_at is None

    def own_head(self) -> int:
        head = self.store.head(self.id)
        return 0 if head is None else head.seq


class Fleet:
    """Every member's node, founders first, then the members onboarded later."""

    def __init__(self, nodes: list[SimNode]) -> None:
        self.nodes = nodes
        self.by_id: dict[MemberId, int] = {n.id: n.idx for n in nodes}

    def __iter__(self) -> Iterator[SimNode]:
        return iter(self.nodes)

    def __getitem__(self, idx: int) -> SimNode:
        return self.nodes[idx]

    def __len__(self) -> int:
        return len(self.nodes)

    def of(self, member: MemberId) -> SimNode | None:
        i = self.by_id.get(member)
        return None if i is None else self.nodes[i]

    def started(self) -> list[SimNode]:
        return [n for n in self.nodes if n.started]

    def current(self) -> list[SimNode]:
        """Honest nodes that are up and not removed (see :attr:`SimNode.current`)."""
        return [n for n in self.nodes if n.up and n.honest and n.removed_at is None]

    def admins_up(self) -> list[SimNode]:
        return [n for n in self.nodes if n.admin and n.up]

    def crash_candidates(self) -> list[SimNode]:
        """Nodes a fault may take down: honest, up, not admins, not removed."""
        return [n for n in self.nodes if n.up and n.honest and not n.admin and n.removed_at is None]
