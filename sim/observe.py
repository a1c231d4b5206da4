"""Observation: what honest nodes see of their peers, what nodes hold, the time series.

:class:`Observer` listens to every engine (an :class:`~sim.driver.EngineListener`)
and every node's feeds (a :class:`~sim.driver.FeedListener`) and keeps:

* misbehaviour detectors, counted by peer: entries refused (``Refused``), whole
  messages refused, quarantines, fork proofs, *stale duplicates* (an entry the
  receiver has held for longer than :data:`STALE_TIMEOUTS` HTTP timeouts: an
  honest relay sends only entries the receiver's heads, told within the same
  exchange, show it lacks), *starved exchanges* (an exchange we started is
  over, and the peer's own heads, as :meth:`~protocol.gossip.GossipEngine.peer_view`
  shows them, still show entries we lack);
* which node holds which published entry since when (in the ledger);
* the time series of traffic and backlog, and the catch-up of nodes that came
  up late (restarts, newcomers).
"""

from __future__ import annotations

from collections import Counter

from protocol.entries import Entry
from protocol.gossip import (
    EntriesAccepted,
    Event,
    ExchangeCompleted,
    ForkDetected,
    PeerFailed,
    PeerQuarantined,
    Refused,
)
from protocol.keys import MemberId
from sim.clock import Clock
from sim.driver import Driver
from sim.ledger import Ledger
from sim.nodes import Fleet, SimNode
from sim.record import CatchUp, Observations, Sample

__all__ = ["STALE_TIMEOUTS", "STARVED_MIN", "STARVED_SHARE", "Observer"]

#: A duplicate entry counts as replayed if the receiver has held it for longer
#: than this many HTTP timeouts: an honest relay sends only entries the
#: receiver's heads, told within the same exchange, show it lacks.
STALE_TIMEOUTS = 2
#: Starved exchanges (over, and the peer's own heads still show entries we lack)
#: that, at this share of its exchanges that brought entries or should have,
#: make a peer a suspected withholder.
STARVED_MIN = 3
STARVED_SHARE = 0.5


class _CatchUp:
    __slots__ = ("done_s", "node", "t_s", "target", "why")

    def __init__(self, node: int, why: str, t_s: float, target: int) -> None:
        self.node = node
        self.why = why
        self.t_s = t_s
        self.target = target
        self.done_s: float | None = None


class Observer:
    """Detectors, holdings, the time series and catch-up (see the module docstring)."""

    def __init__(
        self, clock: Clock, fleet: Fleet, ledger: Ledger, driver: Driver, sample_ms: float
    ) -> None:
        self.clock = clock
        self.fleet = fleet
        self.ledger = ledger
        self.driver = driver
        self.sample_ms = sample_ms
        self.stale_ms = STALE_TIMEOUTS * driver.http_timeout
        self.refusals: dict[int, Counter[str]] = {}
        self.refused_by: dict[int, set[int]] = {}
        self.message_refusals: dict[int, Counter[str]] = {}
        self.quarantined_by: dict[int, set[int]] = {}
        self.forks_seen: dict[int, dict[int, float]] = {}  # log -> node -> t
        self.stale_duplicates: Counter[int] = Counter()
        self.stale_by: dict[int, set[int]] = {}
        self.starved: Counter[int] = Counter()
        self.starved_by: dict[int, set[int]] = {}
        self.fed: Counter[int] = Counter()
        self.relayed: Counter[int] = Counter()
        self.own_sent: Counter[int] = Counter()
        self.first_detected: dict[int, float] = {}
        self.failures = 0
        self.exchanges = 0
        self.unknown_accepted = 0
        self.samples: list[Sample] = []
        self._catch_up: list[_CatchUp] = []
        self._completed: list[ExchangeCompleted] = []

    def _detect(self, peer: int) -> None:
        self.first_detected.setdefault(peer, self.clock.t)

    # -- what the engines report ------------------------------------------------------------

    def on_event(self, node: SimNode, ev: Event) -> None:
        honest = node.honest
        if isinstance(ev, ExchangeCompleted):
            self.exchanges += 1
            if ev.initiator:
                self.driver.window.exchanges += 1
                if honest:
                    self._completed.append(ev)
            return
        if not honest:
            return
        by_id = self.fleet.by_id
        if isinstance(ev, EntriesAccepted):
            if ev.peer is not None:
                p = by_id[ev.peer]
                mine = sum(1 for e in ev.entries if e.log == ev.peer)
                self.own_sent[p] += mine
                self.relayed[p] += len(ev.entries) - mine
        elif isinstance(ev, Refused):
            p = by_id[ev.peer]
            self.refusals.setdefault(p, Counter())[ev.reason] += 1
            self.refused_by.setdefault(p, set()).add(node.idx)
            self._detect(p)
        elif isinstance(ev, ForkDetected):
            log = by_id[ev.proof.log]
            self.forks_seen.setdefault(log, {}).setdefault(node.idx, self.clock.t)
            self._detect(log)
        elif isinstance(ev, PeerQuarantined):
            self.quarantined_by.setdefault(by_id[ev.peer], set()).add(node.idx)
        elif isinstance(ev, PeerFailed):
            self.failures += 1

    def on_message_refused(self, node: SimNode, sender: SimNode, reason: str) -> None:
        if node.honest:
            self.message_refusals.setdefault(sender.idx, Counter())[reason] += 1

    def after_drain(self, node: SimNode, sent_to: set[MemberId]) -> None:
        if not self._completed:
            return
        completed, self._completed = self._completed, []
        for ev in completed:
            if ev.peer not in sent_to:  # the exchange is over (no follow-up started)
                self._check_starved(node, ev)

    def _check_starved(self, node: SimNode, ev: ExchangeCompleted) -> None:
        """An exchange we started is over (no follow-up): does the peer's own account of
        its heads still show entries we lack? An honest peer sends every entry we lack
        (or says ``more`` and the engine follows up), so a peer that leaves us short is
        starving us: counted against it. Feeds frozen here and entries past a removed
        member's until_seq are not owed."""
        p = self.fleet.by_id[ev.peer]
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
            self.starved[p] += 1
            self.starved_by.setdefault(p, set()).add(node.idx)
            if self.starved[p] >= STARVED_MIN:
                self._detect(p)
        elif ev.entries_in > 0:
            self.fed[p] += 1

    # -- what the feeds report ----------------------------------------------------------------

    def on_append(self, node: SimNode, entry: Entry) -> None:
        t = self.clock.t
        node.held_since[(entry.log, entry.seq)] = t
        rec = self.ledger.by_hash.get(entry.hash)
        if rec is None:
            if not node.publishing and node.honest:
                self.unknown_accepted += 1
            return
        self.ledger.mark_held(node, rec, t)

    def on_duplicate(self, node: SimNode, log: MemberId, seq: int) -> None:
        sender = self.driver.sender
        if sender < 0 or not node.honest:
            return
        since = node.held_since.get((log, seq))
        if since is not None and self.clock.t - since > self.stale_ms:
            self.stale_duplicates[sender] += 1
            self.stale_by.setdefault(sender, set()).add(node.idx)
            if self.stale_duplicates[sender] >= STARVED_MIN:
                self._detect(sender)

    # -- the time series and catch-up ----------------------------------------------------------

    def schedule(self) -> None:
        self.clock.at(self.sample_ms, self._on_sample)

    def _on_sample(self) -> None:
        clock = self.clock
        valid = self.ledger.valid_published
        backlog = sum(valid - n.held_valid for n in self.fleet.current())
        nbytes, messages, exchanges = self.driver.window.take()
        self.samples.append(
            Sample(
                t_s=round(clock.t / 1000.0, 3),
                bytes=nbytes,
                messages=messages,
                exchanges=exchanges,
                nodes_up=sum(1 for n in self.fleet if n.up),
                backlog=backlog,
                published=valid,
            )
        )
        self.check_catch_up()
        if clock.t + self.sample_ms <= clock.end:
            clock.at(clock.t + self.sample_ms, self._on_sample)

    def track_catch_up(self, node: SimNode, why: str) -> None:
        """``node`` came up now; watch until it holds every entry published before."""
        t = self.clock.t
        target = sum(1 for r in self.ledger.entries if r.valid and r.t <= t)
        self._catch_up.append(_CatchUp(node.idx, why, round(t / 1000.0, 3), target))

    def check_catch_up(self) -> None:
        entries = self.ledger.entries
        for c in self._catch_up:
            if c.done_s is not None:
                continue
            node = self.fleet[c.node]
            if not node.up or node.held_valid < c.target:
                continue
            before = c.t_s * 1000.0
            if all(r.hash in node.holds for r in entries if r.valid and r.t <= before):
                c.done_s = round(self.clock.t / 1000.0, 3)

    # -- the record ------------------------------------------------------------------------------

    def record(self) -> Observations:
        return Observations(
            refusals={p: dict(c) for p, c in self.refusals.items()},
            refused_by={p: frozenset(s) for p, s in self.refused_by.items()},
            message_refusals={p: dict(c) for p, c in self.message_refusals.items()},
            quarantined_by={p: frozenset(s) for p, s in self.quarantined_by.items()},
            forks_seen={p: dict(d) for p, d in self.forks_seen.items()},
            stale_duplicates=dict(self.stale_duplicates),
            stale_by={p: frozenset(s) for p, s in self.stale_by.items()},
            starved=dict(self.starved),
            starved_by={p: frozenset(s) for p, s in self.starved_by.items()},
            fed=dict(self.fed),
            relayed=dict(self.relayed),
            own_sent=dict(self.own_sent),
            first_detected=dict(self.first_detected),
            failures=self.failures,
            exchanges=self.exchanges,
            unknown_accepted=self.unknown_accepted,
            catch_up=tuple(
                CatchUp(c.node, c.why, c.t_s, c.target, c.done_s) for c in self._catch_up
            ),
        )
