"""The discrete-event core: real engines, a virtual clock, a simulated network.

:class:`Simulation` runs one scenario. Time is virtual: a heap of timed events
(``(time, sequence, handler, args)``; the sequence number makes ties
deterministic), popped in order; nothing reads a wall clock. Every random
choice comes from a ``random.Random`` seeded from the scenario's seed and the
purpose (``f"{seed}:workload"``, ``f"{seed}:engine:{node}:{incarnation}"``,
...), so a run is reproducible from its seed and the streams do not disturb
each other.

Each node is a real :class:`protocol.gossip.GossipEngine` (see
:mod:`sim.engines`) over its own :class:`protocol.store.MemoryStore`,
:class:`protocol.feeds.Feeds` and :class:`protocol.charter_chain.CharterChain`.
The simulator drives it the way the node's HTTP driver (``node/gossip.py``)
does: it calls ``handle_timer`` when ``get_timer`` says so, delivers every
``Send`` as a request whose answer goes back to the sender, which may answer
again, until the conversation ends; a request that is lost, blocked by a
partition, refused by a node that is down, or answered with an error becomes
``connection_failed`` at the sender — after the HTTP timeout, or one round
trip for a refused connection.

What happens is recorded as it happens (acceptances, refusals, fork proofs,
quarantines, traffic, charter versions, keys); :mod:`sim.figures` turns the
record into the figures of a report.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from contracts.charter import Member
from contracts.policy import DAY_MS, GossipSettings
from contracts.taxonomy import CATEGORIES, RETRACT_REASONS
from node.index import TokenIndex
from protocol.charter_chain import CharterChain
from protocol.entries import AddOp, Entry, Op, RetractOp
from protocol.gossip import (
    CharterAdvanced,
    EntriesAccepted,
    ExchangeCompleted,
    ForkDetected,
    GossipError,
    KeysGranted,
    PeerFailed,
    PeerQuarantined,
    Refused,
    Send,
)
from protocol.grants import make_grant
from protocol.keys import MemberId, MemberKey
from protocol.store import MemoryStore
from sim.consortium import T0, Consortium
from sim.engines import ENGINE_CLASSES, Attack, Equivocator, ObservedFeeds, SimEngine
from sim.ledger import Ledger, Published, Verdict, verdict_of
from sim.network import Network
from sim.scenario import (
    ByzantineSpec,
    Churn,
    Crash,
    GovernanceSpec,
    LinkLoss,
    Partition,
    Scenario,
    SlowLinks,
    count_nodes,
)

__all__ = ["QueryCheck", "SimNode", "Simulation"]

#: A duplicate entry counts as replayed if the receiver has held it for longer
#: than this many HTTP timeouts: an honest relay sends only entries the
#: receiver's heads, told within the same exchange, show it lacks.
STALE_TIMEOUTS = 2
#: Starved exchanges (over, and the peer's own heads still show entries we lack)
#: that, at this share of its exchanges that brought entries or should have,
#: make a peer a suspected withholder.
STARVED_MIN = 3
STARVED_SHARE = 0.5


@dataclass(slots=True, eq=False)
class SimNode:
    idx: int
    name: str
    key: MemberKey
    role: str = "honest"
    admin: bool = False
    founder: bool = True
    started: bool = False
    up: bool = False
    incarnation: int = 0
    timer_gen: int = 0
    timer_at: float | None = None
    joined_at: float = 0.0
    has_keys: bool = False
    removed_at: float | None = None
    store: MemoryStore = field(default_factory=MemoryStore)
    chain: CharterChain | None = None
    feeds: ObservedFeeds | None = None
    engine: SimEngine | None = None
    holds: set[bytes] = field(default_factory=set)
    held_valid: int = 0
    held_since: dict[tuple[bytes, int], float] = field(default_factory=dict)
    bytes_sent: int = 0
    messages_sent: int = 0
    spec: ByzantineSpec | None = None
    #: after a restart with its state lost: the seq of its own feed it must hold again
    #: before its platforms report (None: nothing to wait for)
    resync_seq: int | None = None

    @property
    def id(self) -> MemberId:
        return MemberId(self.key.id)

    @property
    def honest(self) -> bool:
        return self.role == "honest"


@dataclass(frozen=True, slots=True)
class QueryCheck:
    """One query check at one node: answers against the ground truth, and the Bloom stage."""

    t: float
    node: int
    final: bool
    present: int
    agree: int
    disagree: int
    removal_race: int
    bloom_false_negatives: int
    absent: int
    bloom_positives: int
    false_matches: int
    live_tokens: int
    capacity: int
    expected_fpr: float
    textbook_fpr: float


@dataclass
class Observations:
    """What honest nodes saw of their peers, by peer index."""

    refusals: dict[int, Counter[str]] = field(default_factory=dict)
    refused_by: dict[int, set[int]] = field(default_factory=dict)
    message_refusals: dict[int, Counter[str]] = field(default_factory=dict)
    quarantined_by: dict[int, set[int]] = field(default_factory=dict)
    forks_seen: dict[int, dict[int, float]] = field(default_factory=dict)  # log -> node -> t
    stale_duplicates: Counter[int] = field(default_factory=Counter)
    stale_by: dict[int, set[int]] = field(default_factory=dict)
    starved: Counter[int] = field(default_factory=Counter)
    starved_by: dict[int, set[int]] = field(default_factory=dict)
    fed: Counter[int] = field(default_factory=Counter)
    relayed: Counter[int] = field(default_factory=Counter)  # others' entries accepted from it
    own_sent: Counter[int] = field(default_factory=Counter)  # its own entries accepted from it
    first_detected: dict[int, float] = field(default_factory=dict)
    failures: int = 0
    exchanges: int = 0

    def detect(self, peer: int, t: float) -> None:
        self.first_detected.setdefault(peer, t)


class Simulation:
    """One run of one scenario. ``run()`` returns when the virtual run length is over."""

    def __init__(
        self, scenario: Scenario, *, progress: Callable[[float], None] | None = None
    ) -> None:
        self.sc = sc = scenario
        seed = sc.seed
        self.progress = progress
        self.rng_work = random.Random(f"{seed}:workload")
        self.rng_fault = random.Random(f"{seed}:faults")
        self.rng_query = random.Random(f"{seed}:queries")
        self.rng_gov = random.Random(f"{seed}:governance")
        g = sc.gossip
        later = sum(x.count for x in sc.governance if x.kind == "onboard")
        self.cons = Consortium.build(
            seed=seed,
            founders=sc.members.count,
            admins=sc.members.admins,
            later=later,
            gossip=GossipSettings(
                interval_ms=g.interval_ms, fanout=g.fanout, frame_bytes=g.frame_bytes
            ),
        )
        self.net = Network(sc.network, seed=seed, rng=random.Random(f"{seed}:network"))
        self.interval = g.interval_ms
        self.http_timeout = float(sc.network.http_timeout_ms)
        self.stale_ms = STALE_TIMEOUTS * self.http_timeout
        self.sample_ms = float(sc.sample_ms or g.interval_ms)
        # An exchange's deadline can come before the next round only if the engine's
        # exchange timeout is shorter than a (jittered) interval; only then does a new
        # exchange move the engine's timer earlier (otherwise only handle_timer does).
        self._deadline_may_lead = g.timeout_ms < 1.5 * g.interval_ms
        self.end = sc.duration_s * 1000.0
        self.stop_reports = sc.report_stop_s * 1000.0

        ids = [MemberId(k.id) for k in self.cons.keys]
        self.by_id: dict[MemberId, int] = {m: i for i, m in enumerate(ids)}
        self.nodes = [
            SimNode(
                idx=i,
                name=f"m{i:04d}",
                key=k,
                admin=i < sc.members.admins,
                founder=i < sc.members.count,
            )
            for i, k in enumerate(self.cons.keys)
        ]
        self.ledger = Ledger(self.cons.epoch_keys.tokenizer(1), [bytes(m) for m in ids])
        self._assign_roles()
        #: identifiers nobody reports: forgers and violators try to plant them
        self.frame_tokens = [
            (k, self.ledger.new_token(k)) for k in sc.workload.kinds for _ in range(8)
        ]
        self.equivocator_tokens: list[bytes] = []
        self.retracted_adds: list[tuple[MemberId, int]] = []
        self.adds_by_author: dict[int, list[tuple[bytes, str, int]]] = {}
        self.pool: list[bytes] = []  # tokens honest members reported (for corroboration)

        self.heap: list[tuple[Any, ...]] = []
        self._seq = 0
        self.t = 0.0
        self.events = 0
        self._sender = -1
        self._publishing = -1
        self.obs = Observations()
        self.valid_published = 0
        self.unknown_accepted = 0  # entries no member published, accepted by an honest node
        self.win_bytes = 0
        self.win_msgs = 0
        self.win_exchanges = 0
        self.series: list[dict[str, Any]] = []
        self.checks: list[QueryCheck] = []
        self.charter_at: dict[int, dict[int, float]] = {1: {}}
        self.charter_made: dict[int, float] = {1: 0.0}
        self.keys_at: dict[int, float] = {}
        self.catch_up: list[dict[str, Any]] = []  # restarts and newcomers catching up
        self.fault_log: list[tuple[float, str]] = []
        self.partitions: list[dict[str, Any]] = []
        self.governance: list[dict[str, Any]] = []
        self.planted = 0
        self.lost_entries = 0  # entries lost with their author's state
        self.forked_tokens: dict[int, dict[str, int]] = {}

    # -- set-up ---------------------------------------------------------------------------

    def _assign_roles(self) -> None:
        sc = self.sc
        rng = random.Random(f"{sc.seed}:roles")
        candidates = list(range(sc.members.admins, sc.members.count))
        rng.shuffle(candidates)
        for b in sc.byzantine:
            for _ in range(count_nodes(b.count, sc.members.count)):
                node = self.nodes[candidates.pop()]
                node.role = b.role
                node.spec = b
                if b.role == "equivocator":
                    self.ledger.excluded.add(node.idx)

    def _engine(self, node: SimNode) -> SimEngine:
        sc = self.sc
        cls = ENGINE_CLASSES[node.role]
        attack = None
        if node.spec is not None:
            attack = Attack(
                rng=random.Random(f"{sc.seed}:attack:{node.idx}"),
                per_message=node.spec.per_message,
                every=node.spec.every,
                frame_tokens=self.frame_tokens,
                retracted_adds=self.retracted_adds,
                twin_ops=self._twin_ops,
            )
        assert node.feeds is not None
        return cls(
            node.key,
            node.feeds,
            rng=random.Random(f"{sc.seed}:engine:{node.idx}:{node.incarnation}"),
            now=self.now_ms,
            gossip=sc.gossip,
            attack=attack,
        )

    def _start(self, node: SimNode, *, fresh: bool) -> None:
        """Start (or restart) a node: over its store, or from the genesis if ``fresh``."""
        if fresh:
            node.store = MemoryStore()
            node.store.put_charter(1, self.cons.genesis_raw)
            node.chain = self.cons.fresh_chain()
            node.holds = set()
            node.held_valid = 0
            node.held_since = {}
            if not node.founder:
                node.has_keys = False
        assert node.chain is not None
        node.feeds = ObservedFeeds(node.store, node.chain, partial(self._on_duplicate, node))
        node.feeds.listeners.append(partial(self._on_append, node))
        node.incarnation += 1
        node.engine = self._engine(node)
        node.started = node.up = True
        node.timer_at = None
        node.timer_gen += 1
        self._arm(node)

    def _crash(self, node: SimNode) -> None:
        node.up = False
        node.engine = None
        node.feeds = None
        node.timer_gen += 1
        node.timer_at = None

    # -- the clock ------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return T0 + int(self.t)

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.heap, (t, self._seq, fn, args))
        self._seq += 1

    def run(self) -> None:
        sc = self.sc
        for node in self.nodes:
            if node.founder:
                node.has_keys = True  # epoch 1 is installed with the genesis (see docs)
                self._start(node, fresh=True)
                self.charter_at[1][node.idx] = 0.0
        w = sc.workload
        if w.reports_per_s > 0:
            self.at(w.start_s * 1000.0, self._on_report)
        for node in self.nodes:
            spec = node.spec
            if spec is not None and node.role != "policy_violator" and spec.reports_per_min > 0:
                self.at(w.start_s * 1000.0, self._on_own_report, node)
        if w.retractions_per_s > 0:
            self.at(w.start_s * 1000.0 + 1000.0 / w.retractions_per_s, self._on_retract)
        self.at(self.sample_ms, self._on_sample)
        if sc.queries.every_s > 0:
            self.at(sc.queries.every_s * 1000.0, self._on_query)
        for f in sc.faults:
            self._schedule_fault(f)
        for gspec in sc.governance:
            self.at(gspec.at_s * 1000.0, self._on_governance, gspec)

        heap = self.heap
        pop = heapq.heappop
        end = self.end
        step = end / 200
        next_progress = step
        while heap:
            t, _, fn, args = pop(heap)
            if t > end:
                break
            self.t = t
            fn(*args)
            self.events += 1
            if self.progress is not None and t >= next_progress:
                self.progress(t / end)
                next_progress = t + step
        self.t = end
        self._final_check()
        if self.progress is not None:
            self.progress(1.0)

    # -- timers ---------------------------------------------------------------------------

    def _arm(self, node: SimNode) -> None:
        if not node.up or node.engine is None:
            return
        t = max(self.t, float(node.engine.get_timer() - T0))
        if node.timer_at is None or t < node.timer_at:
            node.timer_gen += 1
            node.timer_at = t
            self.at(t, self._on_timer, node, node.timer_gen)

    def _on_timer(self, node: SimNode, gen: int) -> None:
        if gen != node.timer_gen or not node.up or node.engine is None:
            return
        node.timer_at = None
        now = self.now_ms
        engine = node.engine
        if now >= engine.get_timer():
            engine.handle_timer(now)
            self._drain(node)
        if node.up and engine.get_timer() <= now:
            # nothing more can happen within this millisecond
            node.timer_gen += 1
            node.timer_at = self.t + 1.0
            self.at(self.t + 1.0, self._on_timer, node, node.timer_gen)
        else:
            self._arm(node)

    # -- the network ----------------------------------------------------------------------

    def _count(self, node: SimNode, nbytes: int) -> None:
        node.bytes_sent += nbytes
        node.messages_sent += 1
        self.win_bytes += nbytes
        self.win_msgs += 1

    def _post(self, src: SimNode, peer: MemberId, data: bytes) -> None:
        """``src`` sends a request to ``peer`` (an HTTP POST of one engine message)."""
        self._count(src, len(data))
        inc = src.incarnation
        sent = self.t
        dst_idx = self.by_id.get(peer)
        if dst_idx is None or not self.nodes[dst_idx].started:
            self.at(sent + 1.0, self._fail, src, inc, peer)  # no node at that endpoint
            return
        arrive = self.net.transit(src.idx, dst_idx, len(data), sent)
        if arrive is None or arrive - sent > self.http_timeout:
            self.at(sent + self.http_timeout, self._fail, src, inc, peer)
        else:
            self.at(arrive, self._on_request, src, inc, self.nodes[dst_idx], data, sent)

    def _on_request(self, src: SimNode, inc: int, dst: SimNode, data: bytes, sent: float) -> None:
        if not dst.up or dst.engine is None:
            back = self.t + self.net.refused_after(src.idx, dst.idx) / 2
            self.at(min(back, sent + self.http_timeout), self._fail, src, inc, dst.id)
            return
        self._sender = src.idx
        try:
            answer = dst.engine.receive(src.id, data, self.now_ms)
        except GossipError as e:
            answer = None
            if dst.honest:
                self.obs.message_refusals.setdefault(src.idx, Counter())[e.reason] += 1
            back = self.t + self.net.latency(dst.idx, src.idx)
            self.at(min(back, sent + self.http_timeout), self._fail, src, inc, dst.id)
        finally:
            self._sender = -1
        self._drain(dst)
        if answer is None:
            return
        self._count(dst, len(answer))
        arrive = self.net.transit(dst.idx, src.idx, len(answer), self.t)
        if arrive is None or arrive - sent > self.http_timeout:
            self.at(sent + self.http_timeout, self._fail, src, inc, dst.id)
        else:
            self.at(arrive, self._on_answer, src, inc, dst, answer)

    def _on_answer(self, src: SimNode, inc: int, dst: SimNode, answer: bytes) -> None:
        if not src.up or src.incarnation != inc or src.engine is None:
            return
        now = self.now_ms
        self._sender = dst.idx
        try:
            nxt = src.engine.receive(dst.id, answer, now)
        except GossipError:
            src.engine.connection_failed(dst.id, now)
            nxt = None
        finally:
            self._sender = -1
        self._drain(src)
        if nxt is not None:
            self._post(src, dst.id, nxt)

    def _fail(self, src: SimNode, inc: int, peer: MemberId) -> None:
        if not src.up or src.incarnation != inc or src.engine is None:
            return
        src.engine.connection_failed(peer, self.now_ms)
        self._drain(src)

    # -- what the engines report ---------------------------------------------------------

    def _drain(self, node: SimNode) -> None:
        engine = node.engine
        if engine is None:
            return
        obs = self.obs
        honest = node.honest
        completed: list[ExchangeCompleted] = []
        sent_to: set[MemberId] = set()
        rearm = False
        for ev in engine.events():
            tp = type(ev)
            if tp is Send:
                assert isinstance(ev, Send)
                self._post(node, ev.peer, ev.data)
                sent_to.add(ev.peer)
                rearm = self._deadline_may_lead
            elif tp is ExchangeCompleted:
                assert isinstance(ev, ExchangeCompleted)
                obs.exchanges += 1
                if ev.initiator:
                    self.win_exchanges += 1
                if honest and ev.initiator:
                    completed.append(ev)
            elif tp is EntriesAccepted:
                assert isinstance(ev, EntriesAccepted)
                if honest and ev.peer is not None:
                    p = self.by_id[ev.peer]
                    mine = sum(1 for e in ev.entries if e.log == ev.peer)
                    obs.own_sent[p] += mine
                    obs.relayed[p] += len(ev.entries) - mine
            elif tp is KeysGranted:
                node.has_keys = True
                self.keys_at.setdefault(node.idx, self.t)
            elif tp is CharterAdvanced:
                assert isinstance(ev, CharterAdvanced)
                self.charter_at.setdefault(ev.version, {}).setdefault(node.idx, self.t)
            elif not honest:
                continue
            elif tp is Refused:
                assert isinstance(ev, Refused)
                p = self.by_id[ev.peer]
                obs.refusals.setdefault(p, Counter())[ev.reason] += 1
                obs.refused_by.setdefault(p, set()).add(node.idx)
                obs.detect(p, self.t)
            elif tp is ForkDetected:
                assert isinstance(ev, ForkDetected)
                log = self.by_id[ev.proof.log]
                obs.forks_seen.setdefault(log, {}).setdefault(node.idx, self.t)
                obs.detect(log, self.t)
            elif tp is PeerQuarantined:
                assert isinstance(ev, PeerQuarantined)
                p = self.by_id[ev.peer]
                obs.quarantined_by.setdefault(p, set()).add(node.idx)
            elif tp is PeerFailed:
                obs.failures += 1
        for ev in completed:
            if ev.peer not in sent_to:  # the exchange is over (no follow-up started)
                self._check_starved(node, ev)
        if rearm:
            self._arm(node)

    def _check_starved(self, node: SimNode, ev: ExchangeCompleted) -> None:
        """An exchange we started is over (no follow-up): does the peer's own account of
        its heads still show entries we lack? An honest peer sends every entry we lack
        (or says ``more`` and the engine follows up), so a peer that leaves us short is
        starving us: counted against it. Feeds frozen here and entries past a removed
        member's until_seq are not owed."""
        p = self.by_id[ev.peer]
        engine = node.engine
        assert engine is not None and node.chain is not None
        owed = False
        view = engine.peer_view(ev.peer)
        known = None if view is None or view.in_sync else view.heads
        if known:
            store = node.store
            chain = node.chain
            for log, (seq, _) in known.items():
                if store.is_frozen(log):
                    continue
                until = chain.revoked_until(log)
                if until is not None and seq > until:
                    seq = until
                head = store.head(log)
                if seq > (0 if head is None else head.seq):
                    owed = True
                    break
        if owed:
            self.obs.starved[p] += 1
            self.obs.starved_by.setdefault(p, set()).add(node.idx)
            if self.obs.starved[p] >= STARVED_MIN:
                self.obs.detect(p, self.t)
        elif ev.entries_in > 0:
            self.obs.fed[p] += 1

    def _on_append(self, node: SimNode, entry: Entry) -> None:
        node.held_since[(entry.log, entry.seq)] = self.t
        rec = self.ledger.by_hash.get(entry.hash)
        if rec is None:
            if self._publishing != node.idx and node.honest:
                self.unknown_accepted += 1
            return
        self._mark_held(node, rec)

    def _mark_held(self, node: SimNode, rec: Published) -> None:
        rec.held.setdefault(node.idx, self.t)
        if rec.hash not in node.holds:
            node.holds.add(rec.hash)
            if rec.valid:
                node.held_valid += 1

    def _on_duplicate(self, node: SimNode, log: MemberId, seq: int) -> None:
        sender = self._sender
        if sender < 0 or not node.honest:
            return
        since = node.held_since.get((log, seq))
        if since is not None and self.t - since > self.stale_ms:
            self.obs.stale_duplicates[sender] += 1
            self.obs.stale_by.setdefault(sender, set()).add(node.idx)
            if self.obs.stale_duplicates[sender] >= STARVED_MIN:
                self.obs.detect(sender, self.t)

    # -- workload -------------------------------------------------------------------------

    def _publishers(self, *, byzantine: bool = True) -> list[SimNode]:
        out = []
        for n in self.nodes:
            if not (n.up and n.has_keys and n.removed_at is None and n.role != "policy_violator"):
                continue
            if not byzantine and not n.honest:
                continue
            assert n.chain is not None
            if n.resync_seq is not None:
                head = n.store.head(n.id)
                if (0 if head is None else head.seq) < n.resync_seq:
                    continue
                n.resync_seq = None
            if n.chain.current.can_publish(n.key.id) and not n.store.is_frozen(n.id):
                out.append(n)
        return out

    def _publish(self, node: SimNode, ops: list[Op]) -> Published:
        assert node.feeds is not None
        self._publishing = node.idx
        try:
            entry = node.feeds.publish(node.key, ops, self.now_ms)
        finally:
            self._publishing = -1
        rec = self.ledger.record(entry.hash, node.idx, entry.seq, self.t, entry.ts, entry.ops)
        if rec.valid:
            self.valid_published += 1
        self._mark_held(node, rec)
        engine = node.engine
        if isinstance(engine, Equivocator):
            twin = engine.make_twin(entry)
            if twin is not None:
                self.ledger.record(
                    twin.hash, node.idx, twin.seq, self.t, twin.ts, twin.ops, twin=True
                )
        self._drain(node)
        return rec

    def _twin_ops(self, n: int) -> list[AddOp]:
        kinds = self.sc.workload.kinds
        ops = []
        for i in range(n):
            kind = kinds[i % len(kinds)]
            tok = self.ledger.new_token(kind)
            self.equivocator_tokens.append(tok)
            ops.append(AddOp(tok, kind, 1, "other", 2, self.now_ms + 7 * DAY_MS))
        return ops

    def _on_own_report(self, node: SimNode) -> None:
        """A misbehaving member publishes entries of its own, on its own schedule."""
        assert node.spec is not None
        if (
            node.up
            and node.has_keys
            and node.chain is not None
            and not node.store.is_frozen(node.id)
        ):
            self._report(node)
        nxt = self.t + self.rng_work.expovariate(node.spec.reports_per_min / 60.0) * 1000.0
        if nxt < self.stop_reports:
            self.at(nxt, self._on_own_report, node)

    def _on_report(self) -> None:
        w = self.sc.workload
        rng = self.rng_work
        pubs = self._publishers(byzantine=False)
        if pubs:
            self._report(rng.choice(pubs))
        nxt = self.t + rng.expovariate(w.reports_per_s) * 1000.0
        if nxt < self.stop_reports:
            self.at(nxt, self._on_report)

    def _report(self, node: SimNode) -> None:
        """``node`` publishes one entry of fresh reports (some corroborating others')."""
        w = self.sc.workload
        rng = self.rng_work
        policy = self.cons.genesis.policy
        ops: list[Op] = []
        seen: set[bytes] = set()
        for _ in range(rng.randint(*w.ops_per_entry)):
            if node.honest and self.pool and rng.random() < 0.1:
                tok = rng.choice(self.pool)  # corroborate another member's report
                kind = self.ledger.kind_of[tok]
            else:
                kind = rng.choice(w.kinds)
                tok = self.ledger.new_token(kind)
            if tok in seen:
                continue
            seen.add(tok)
            cat = rng.choice(CATEGORIES)
            ttl = min(w.ttl_days, policy.max_ttl_days[cat])
            ops.append(AddOp(tok, kind, 1, cat, rng.randint(1, 5), self.now_ms + ttl * DAY_MS))
        rec = self._publish(node, ops)
        if rec.valid:
            adds = self.adds_by_author.setdefault(node.idx, [])
            for op in ops:
                adds.append((op.tok, op.kind, rec.seq))
                if node.honest:
                    self.pool.append(op.tok)

    def _on_retract(self) -> None:
        w = self.sc.workload
        rng = self.rng_work
        pubs = [n for n in self._publishers(byzantine=False) if self.adds_by_author.get(n.idx)]
        if pubs:
            node = rng.choice(pubs)
            adds = self.adds_by_author[node.idx]
            tok, kind, seq = adds.pop(rng.randrange(len(adds)))
            if self.ledger.truth(tok, self.now_ms, authors={node.idx}) is not None:
                self._publish(node, [RetractOp(tok, kind, 1, rng.choice(RETRACT_REASONS))])
                self.retracted_adds.append((node.id, seq))
        nxt = self.t + rng.expovariate(w.retractions_per_s) * 1000.0
        if nxt < self.stop_reports:
            self.at(nxt, self._on_retract)

    # -- time series and queries -------------------------------------------------------------

    def _honest_up(self) -> list[SimNode]:
        return [n for n in self.nodes if n.up and n.honest and n.removed_at is None]

    def _on_sample(self) -> None:
        up = self._honest_up()
        backlog = sum(self.valid_published - n.held_valid for n in up)
        all_up = sum(1 for n in self.nodes if n.up)
        self.series.append(
            {
                "t_s": round(self.t / 1000.0, 3),
                "bytes": self.win_bytes,
                "messages": self.win_msgs,
                "exchanges": self.win_exchanges,
                "nodes_up": all_up,
                "backlog": backlog,
                "published": self.valid_published,
            }
        )
        self.win_bytes = self.win_msgs = self.win_exchanges = 0
        self._check_catch_up()
        if self.t + self.sample_ms <= self.end:
            self.at(self.t + self.sample_ms, self._on_sample)

    def _check_catch_up(self) -> None:
        for c in self.catch_up:
            if c["done_s"] is not None:
                continue
            node = self.nodes[c["node"]]
            if not node.up or node.held_valid < c["target"]:
                continue
            before = c["t_s"] * 1000.0
            if all(r.hash in node.holds for r in self.ledger.entries if r.valid and r.t <= before):
                c["done_s"] = round(self.t / 1000.0, 3)

    def _on_query(self) -> None:
        q = self.sc.queries
        if self.t >= self.end:
            return
        up = [n for n in self._honest_up() if n.chain is not None]
        for node in self.rng_query.sample(up, min(q.nodes, len(up))):
            self._query(node, q.present, q.absent, final=False)
        self.at(self.t + q.every_s * 1000.0, self._on_query)

    def _query(
        self,
        node: SimNode,
        present: int,
        absent: int,
        *,
        final: bool,
        truth: dict[bytes, tuple[Verdict | None, Verdict | None]] | None = None,
    ) -> QueryCheck:
        """Query ``node`` as its platform would (Bloom index, then exact store) and check.

        ``present`` reported tokens (all of them if ``final``) are answered and
        compared with the ground truth; ``absent`` never-reported tokens measure
        the Bloom stage's false positives (each positive is then refused by the
        exact store: a false *match* would be a bug).
        """
        q = self.sc.queries
        rng = self.rng_query
        now = self.now_ms
        store = node.store
        live = list(dict.fromkeys(s.tok for s in store.all_indicators() if s.live(now)))
        index = TokenIndex.build(live, len(live), error_rate=q.error_rate, headroom=q.headroom)
        tokens = self.ledger.tokens()
        sample = tokens if final or present >= len(tokens) else rng.sample(tokens, present)
        if truth is None:
            truth = {}
        agree = disagree = race = fneg = 0
        hits = index.contains_many(sample) if sample else []
        for tok, hit in zip(sample, hits, strict=True):
            answer: Verdict | None = verdict_of(store.indicators(tok), now) if hit else None
            if not hit and verdict_of(store.indicators(tok), now) is not None:
                fneg += 1
            expected = truth.get(tok)
            if expected is None:
                expected = truth[tok] = (
                    self.ledger.truth(tok, now),
                    self._truth_ignoring_removal(tok, now) if self.ledger.until else None,
                )
            if answer == expected[0]:
                agree += 1
            elif self.ledger.until and answer == expected[1]:
                race += 1
            else:
                disagree += 1
        blob = rng.randbytes(16 * absent)
        probes = [blob[i : i + 16] for i in range(0, len(blob), 16)]
        probes = [t for t in probes if t not in self.ledger.kind_of]
        positives = [t for t, h in zip(probes, index.contains_many(probes), strict=True) if h]
        false_matches = sum(1 for t in positives if verdict_of(store.indicators(t), now))
        check = QueryCheck(
            t=self.t,
            node=node.idx,
            final=final,
            present=len(sample),
            agree=agree,
            disagree=disagree,
            removal_race=race,
            bloom_false_negatives=fneg,
            absent=len(probes),
            bloom_positives=len(positives),
            false_matches=false_matches,
            live_tokens=len(live),
            capacity=index.capacity,
            expected_fpr=index.measured_fpr(),
            textbook_fpr=index.expected_fpr(),
        )
        self.checks.append(check)
        return check

    def _truth_ignoring_removal(self, tok: bytes, now: int) -> Verdict | None:
        until, self.ledger.until = self.ledger.until, {}
        try:
            return self.ledger.truth(tok, now)
        finally:
            self.ledger.until = until

    def _final_check(self) -> None:
        """Every honest node answers every reported token; a sample also probes absent ones."""
        q = self.sc.queries
        up = [n for n in self._honest_up() if n.chain is not None]
        probe = set(range(len(up)))
        if q.final_nodes and q.final_nodes < len(up):
            probe = set(self.rng_query.sample(range(len(up)), q.final_nodes))
        truth: dict[bytes, tuple[Verdict | None, Verdict | None]] = {}
        for i, node in enumerate(up):
            self._query(node, 0, q.final_absent if i in probe else 0, final=True, truth=truth)
            # identifiers a forger or violator tried to plant: no honest node may hold them
            self.planted += sum(1 for _, tok in self.frame_tokens if node.store.indicators(tok))
        self._forked_answers(up)
        self._check_catch_up()

    def _forked_answers(self, up: list[SimNode]) -> None:
        """How honest nodes answer for the tokens of a feed frozen by a fork proof.

        They are not part of the ground truth: which of the two branches a node
        accepted before the proof arrived depends on arrival order, and the node's
        query counts a frozen feed's accepted reports like any other.
        """
        now = self.now_ms
        for node in self.nodes:
            if node.role != "equivocator":
                continue
            toks = {op.tok for r in self.ledger.entries if r.author == node.idx for op in r.ops}
            differ = held = 0
            for tok in sorted(toks):
                answers = {verdict_of(n.store.indicators(tok), now) for n in up}
                differ += len(answers) > 1
                held += any(a is not None for a in answers)
            self.forked_tokens[node.idx] = {
                "tokens": len(toks),
                "matched_by_some_honest_node": held,
                "answered_differently_by_honest_nodes": differ,
            }

    # -- faults -----------------------------------------------------------------------------

    def _log(self, what: str) -> None:
        self.fault_log.append((round(self.t / 1000.0, 3), what))

    def _schedule_fault(self, f: Any) -> None:
        if isinstance(f, Partition):
            self.at(f.at_s * 1000.0, self._partition, f)
            if f.heal_s is not None:
                self.at(f.heal_s * 1000.0, self._heal, f)
        elif isinstance(f, Crash):
            self.at(f.at_s * 1000.0, self._crash_fault, f)
        elif isinstance(f, Churn):
            self.at(f.from_s * 1000.0, self._churn, f)
        elif isinstance(f, SlowLinks):
            self.at(f.from_s * 1000.0, self._slow, f)
        elif isinstance(f, LinkLoss):
            self.at(f.from_s * 1000.0, self._loss, f, True)
            if f.to_s is not None:
                self.at(f.to_s * 1000.0, self._loss, f, False)

    def _partition(self, f: Partition) -> None:
        members = [n.idx for n in self.nodes if n.started]
        self.rng_fault.shuffle(members)
        total = sum(f.groups)
        groups: dict[int, int] = {}
        start = 0.0
        for g, share in enumerate(f.groups):
            lo = round(start / total * len(members))
            start += share
            hi = round(start / total * len(members))
            for i in members[lo:hi]:
                groups[i] = g
        self.net.groups = groups
        self.partitions.append(
            {
                "at_s": f.at_s,
                "heal_s": f.heal_s,
                "groups": groups,
                "sizes": [sum(1 for v in groups.values() if v == g) for g in range(len(f.groups))],
            }
        )
        self._log(f"partition into groups of {self.partitions[-1]['sizes']}")

    def _heal(self, f: Partition) -> None:
        self.net.groups = None
        self._log("partition healed")

    def _crash_candidates(self) -> list[SimNode]:
        return [n for n in self.nodes if n.up and n.honest and not n.admin and n.removed_at is None]

    def _crash_fault(self, f: Crash) -> None:
        cands = self._crash_candidates()
        chosen = self.rng_fault.sample(
            cands, min(count_nodes(f.nodes, len(self.nodes)), len(cands))
        )
        for node in chosen:
            self._crash(node)
            if f.restart_s is not None:
                self.at(f.restart_s * 1000.0, self._restart, node, f.state == "lost")
        self._log(f"crash of {len(chosen)} node(s)" + ("" if f.restart_s else ", for good"))

    def _churn(self, f: Churn) -> None:
        if self.t >= f.to_s * 1000.0:
            return
        cands = self._crash_candidates()
        if cands:
            node = self.rng_fault.choice(cands)
            self._crash(node)
            down = self.rng_fault.uniform(*f.down_s) * 1000.0
            lost = self.rng_fault.random() < f.lost_state
            self.at(self.t + down, self._restart, node, lost)
        if f.per_min > 0:
            self.at(self.t + self.rng_fault.expovariate(f.per_min / 60_000.0), self._churn, f)

    def _restart(self, node: SimNode, lost: bool) -> None:
        if node.up:
            return
        if lost:
            self._lose_state(node)
        self._start(node, fresh=lost)
        self.catch_up.append(
            {
                "node": node.idx,
                "why": "restart, state lost" if lost else "restart, state kept",
                "t_s": round(self.t / 1000.0, 3),
                "target": sum(1 for r in self.ledger.entries if r.valid and r.t <= self.t),
                "done_s": None,
            }
        )

    def _lose_state(self, node: SimNode) -> None:
        """``node`` comes back without its store. Entries of its own feed that no other
        node holds are gone for good (they leave the ground truth: no node can answer
        from them). Its platforms report again only once the node holds its own feed
        back up to what others hold: publishing from an empty store would sign a second
        seq 1 — a fork of its own feed (see docs/simulator.md)."""
        others = [n for n in self.nodes if n is not node and n.started]
        kept = 0
        for r in self.ledger.entries:
            if r.author != node.idx or r.twin:
                continue
            if any(r.hash in n.holds for n in others):
                kept = max(kept, r.seq)
        for r in self.ledger.entries:
            if r.author == node.idx and not r.twin and r.seq > kept and not r.lost:
                r.lost = True
                self.ledger.drop(r)
                if r.valid:
                    r.valid = False
                    self.valid_published -= 1
                    for n in self.nodes:
                        if r.hash in n.holds:
                            n.held_valid -= 1
                self.lost_entries += 1
        node.resync_seq = kept
        adds = self.adds_by_author.get(node.idx, [])
        adds[:] = [a for a in adds if a[2] <= kept]

    def _slow(self, f: SlowLinks) -> None:
        started = [n.idx for n in self.nodes if n.started]
        chosen = self.rng_fault.sample(
            started, min(count_nodes(f.nodes, len(started)), len(started))
        )
        for i in chosen:
            self.net.slow[i] = (f.extra_latency_ms, f.bandwidth_kbps)
        self._log(f"slow links at {len(chosen)} node(s)")
        if f.to_s is not None:
            self.at(f.to_s * 1000.0, self._unslow, chosen)

    def _unslow(self, chosen: list[int]) -> None:
        for i in chosen:
            self.net.slow.pop(i, None)
        self._log(f"links of {len(chosen)} node(s) fast again")

    def _loss(self, f: LinkLoss, on: bool) -> None:
        if on:
            self.net.extra_loss.append(f.loss)
        else:
            self.net.extra_loss.remove(f.loss)
        self._log(f"message loss {f.loss:.0%} {'starts' if on else 'ends'}")

    # -- governance ---------------------------------------------------------------------------

    def _admin(self) -> SimNode | None:
        for n in self.nodes:
            if n.admin and n.up:
                return n
        return None

    def _install(self, admin: SimNode, members: tuple[Member, ...]) -> int:
        """Sign the next charter version (a quorum of admins) and install it at ``admin``."""
        assert admin.chain is not None and admin.engine is not None
        charter, raw = self.cons.next_version(admin.chain, members, self.now_ms)
        admin.chain.append(raw)  # the same checks a node's `charter install` runs
        admin.store.put_charter(charter.version, raw)
        self.charter_made[charter.version] = self.t
        self.charter_at.setdefault(charter.version, {})[admin.idx] = self.t
        return charter.version

    def _on_governance(self, g: GovernanceSpec) -> None:
        admin = self._admin()
        if admin is None:
            self.at(self.t + 1000.0, self._on_governance, g)
            return
        assert admin.chain is not None and admin.engine is not None
        cur = admin.chain.current
        if g.kind == "onboard":
            new = [n for n in self.nodes if not n.founder and not n.started][: g.count]
            members = cur.members + tuple(self.cons.member(n.idx) for n in new)
            v = self._install(admin, members)
            for n in new:
                grant = make_grant(
                    admin.key, n.key.id, {1: self.cons.epoch_keys[1]}, cv=v, ts=self.now_ms
                )
                admin.engine.add_grant(grant)
                n.joined_at = self.t
                self._start(n, fresh=True)
                self.catch_up.append(
                    {
                        "node": n.idx,
                        "why": "newcomer",
                        "t_s": round(self.t / 1000.0, 3),
                        "target": sum(1 for r in self.ledger.entries if r.valid and r.t <= self.t),
                        "done_s": None,
                    }
                )
            self.governance.append(
                {
                    "kind": "onboard",
                    "t_s": round(self.t / 1000.0, 3),
                    "version": v,
                    "members": [n.idx for n in new],
                }
            )
        else:
            cands = [
                n
                for n in self.nodes
                if n.started
                and n.honest
                and not n.admin
                and n.removed_at is None
                and cur.is_active(n.key.id)
            ]
            chosen = self.rng_gov.sample(cands, min(g.count, len(cands)))
            until: dict[int, int] = {}
            for n in chosen:
                head = admin.store.head(n.id)
                until[n.idx] = 0 if head is None else head.seq
            by_idx: dict[bytes, int] = {self.nodes[i].key.id: i for i in until}
            members = tuple(
                Member(
                    id=m.id,
                    name=m.name,
                    endpoint=m.endpoint,
                    roles=m.roles,
                    status="revoked",
                    until_seq=until[by_idx[m.id]],
                )
                if m.id in by_idx
                else m
                for m in cur.members
            )
            v = self._install(admin, members)
            for i, u in until.items():
                self.nodes[i].removed_at = self.t
                self.ledger.until[i] = u
                for r in self.ledger.entries:
                    if r.author == i and r.seq > u and r.valid:
                        r.valid = False
                        self.valid_published -= 1
                        for n in self.nodes:
                            if r.hash in n.holds:
                                n.held_valid -= 1
            self.governance.append(
                {
                    "kind": "remove",
                    "t_s": round(self.t / 1000.0, 3),
                    "version": v,
                    "members": sorted(until),
                    "until_seq": {str(k): u for k, u in sorted(until.items())},
                }
            )
        self._drain(admin)
        self._arm(admin)
