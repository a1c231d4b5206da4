"""The workload: members' platforms report and retract, and nodes republish after a rotation.

Reports arrive as a Poisson process at random honest members able to publish
(up, not removed, holding the current epoch's key, not frozen, not catching up
on their own feed after losing their state); each entry carries a few fresh
identifiers, and one op in ten corroborates another member's report.
Misbehaving members (but the policy violator, who only sends invalid entries)
publish entries of their own on their own schedule. A retraction takes one of
its author's live reports and retracts it under every live epoch, as
``riskmesh retract`` does.

An entry reporting (or retracting) in one of the policy's urgent categories
is offered at once to every reachable peer when the scenario says so
(``gossip.push_urgent``), as the node's ``_push_urgent`` does:
:meth:`GossipEngine.push_now` with the node's own minimum gap per peer.

After a key rotation a node republishes its live reports under the new epoch
from its own record of the raw values it reported (:meth:`Workload.republish`,
the node's ``republish``), once it holds both the charter version that opened
the epoch and the epoch's key.

Everything published goes into the ledger, the ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from contracts.policy import DAY_MS, DataPolicy
from contracts.taxonomy import CATEGORIES, RETRACT_REASONS
from node.alerts import URGENT_PUSH_GAP_MS
from protocol.entries import AddOp, Op, RetractOp
from protocol.keys import MemberId
from sim.clock import Clock
from sim.driver import Driver
from sim.engines import Attack, Equivocator
from sim.ledger import Ledger, Published
from sim.nodes import Fleet, SimNode
from sim.scenario import Scenario

__all__ = ["ABUSERS", "Workload", "is_urgent", "live_epochs"]

#: Misbehaving roles whose entries are sightings, disputes or appeals (sim.aftermatch)
ABUSERS = ("disputer", "appeal_spammer")


def is_urgent(node: SimNode, ops: Sequence[Op], policy: DataPolicy) -> bool:
    """Whether the node pushes an entry of its own with ``ops`` at once (``Alerts.urgent``
    in node/alerts.py): it reports, or retracts a report of its own, in one of the
    policy's urgent categories."""
    cats = policy.urgent_categories
    if any(isinstance(op, AddOp) and op.cat in cats for op in ops):
        return True
    me = node.id
    return any(
        isinstance(op, RetractOp)
        and any(
            s.author == me and s.ep == op.ep and s.cat in cats
            for s in node.store.indicators(op.tok)
        )
        for op in ops
    )


def live_epochs(node: SimNode) -> list[int]:
    """The epochs whose key the node holds and that its charter lists, oldest first.

    (An epoch retires once a later one has been in force for longer than the
    longest time to live; no run is that long.)
    """
    assert node.chain is not None
    in_charter = node.chain.current.epoch_ids()
    return sorted(ep for ep in node.keys if ep in in_charter)


class Workload:
    """Reports, retractions and republishing, recorded in the ledger."""

    def __init__(
        self,
        sc: Scenario,
        clock: Clock,
        fleet: Fleet,
        ledger: Ledger,
        driver: Driver,
        policy: DataPolicy,
    ) -> None:
        self.sc = sc
        self.clock = clock
        self.fleet = fleet
        self.ledger = ledger
        self.driver = driver
        self.policy = policy
        self.rng = random.Random(f"{sc.seed}:workload")
        self.stop_ms = sc.report_stop_s * 1000.0
        #: identifiers nobody reports: forgers and violators try to plant them
        self.frame_tokens = [(k, ledger.new_token(k)) for k in sc.workload.kinds for _ in range(8)]
        #: (log, seq) of adds their authors have since retracted (a replayer's favourites)
        self.retracted_adds: list[tuple[MemberId, int]] = []
        #: author -> (identifier, kind, seq) of its valid adds, for retractions
        self.adds_by_author: dict[int, list[tuple[int, str, int]]] = {}
        #: identifiers honest members reported (for corroboration)
        self.pool: list[int] = []
        #: epoch -> [entries, ops] republished under it
        self.republished: dict[int, list[int]] = {}
        #: kind -> identifiers made before anyone reported them (a platform queried them,
        #: sim.alerts): the next fresh reports of that kind take them first
        self.ahead: dict[str, list[int]] = {}
        #: called with each fresh identifier an honest member is about to report
        self.on_fresh: list[Callable[[int], None]] = []
        #: entries pushed at once as urgent (gossip.push_urgent)
        self.pushed = 0

    def attack(self, node: SimNode) -> Attack | None:
        """What a misbehaving member's engine is lent (None: an honest member)."""
        spec = node.spec
        if spec is None:
            return None
        return Attack(
            rng=random.Random(f"{self.sc.seed}:attack:{node.idx}"),
            per_message=spec.per_message,
            every=spec.every,
            frame_tokens=self.frame_tokens,
            retracted_adds=self.retracted_adds,
            twin_ops=self.twin_ops,
        )

    def schedule(self) -> None:
        w = self.sc.workload
        start = w.start_s * 1000.0
        if w.reports_per_s > 0:
            self.clock.at(start, self._on_report)
        for node in self.fleet:
            spec = node.spec
            if (
                spec is not None
                and node.role != "policy_violator"
                and node.role not in ABUSERS
                and spec.reports_per_min > 0
            ):
                self.clock.at(start, self._on_own_report, node)
        if w.retractions_per_s > 0:
            self.clock.at(start + 1000.0 / w.retractions_per_s, self._on_retract)

    # -- who may publish -------------------------------------------------------------------

    def publishers(self, *, byzantine: bool = True) -> list[SimNode]:
        return [n for n in self.fleet if self.can_publish(n, byzantine=byzantine)]

    def can_publish(self, n: SimNode, *, byzantine: bool = True) -> bool:
        """Whether ``n``'s platforms can publish now (up, not removed, holding the current
        epoch's key, its own feed back after a loss of state, not frozen)."""
        if not (n.up and n.removed_at is None and n.role != "policy_violator"):
            return False
        chain = n.chain
        assert chain is not None
        if chain.current.current_epoch() not in n.keys:
            return False  # the node refuses reports until it holds the current key
        if not byzantine and not n.honest:
            return False
        if not self._resynced(n):
            return False
        return chain.current.can_publish(n.key.id) and not n.store.is_frozen(n.id)

    @staticmethod
    def _resynced(n: SimNode) -> bool:
        """After losing its state a node holds its reports until its own feed is back."""
        if n.resync_seq is not None:
            if n.own_head() < n.resync_seq:
                return False
            n.resync_seq = None
        return True

    # -- publishing ------------------------------------------------------------------------

    def publish(
        self, node: SimNode, ops: list[Op], *, republished: bool = False, push: bool = False
    ) -> Published:
        """``node`` signs ``ops`` as the next entry of its feed (through its own feeds'
        checks: a refusal raises, and nothing is recorded); with ``push``, an urgent
        entry is pushed at once when the scenario says so."""
        feeds = node.feeds
        assert feeds is not None
        node.publishing = True
        try:
            entry = feeds.publish(node.key, ops, self.clock.now_ms)
        finally:
            node.publishing = False
        t = self.clock.t
        ledger = self.ledger
        rec = ledger.record(entry.hash, node.idx, entry.seq, t, entry.ops, republished=republished)
        ledger.mark_held(node, rec, t)
        engine = node.engine
        if isinstance(engine, Equivocator):
            twin = engine.make_twin(entry)
            if twin is not None:
                ledger.record(twin.hash, node.idx, twin.seq, t, twin.ops, twin=True)
        if (
            push
            and self.sc.gossip.push_urgent
            and engine is not None
            and node.chain is not None
            and is_urgent(node, entry.ops, node.chain.current.policy)
        ):
            engine.push_now(self.clock.now_ms, URGENT_PUSH_GAP_MS)
            self.pushed += 1
            self.driver.drain(node)
            self.driver.arm(node)  # a peer within its gap is pushed to when the gap is over
        else:
            self.driver.drain(node)
        return rec

    def twin_ops(self, n: int) -> list[AddOp]:
        """``n`` ops on fresh identifiers for an equivocator's twin entry."""
        kinds = self.sc.workload.kinds
        now = self.clock.now_ms
        ops = []
        for i in range(n):
            kind = kinds[i % len(kinds)]
            ops.append(AddOp(self.ledger.new_token(kind), kind, 1, "other", 2, now + 7 * DAY_MS))
        return ops

    # -- reports ---------------------------------------------------------------------------

    def _on_own_report(self, node: SimNode) -> None:
        """A misbehaving member publishes entries of its own, on its own schedule."""
        spec = node.spec
        assert spec is not None
        chain = node.chain
        if (
            node.up
            and chain is not None
            and chain.current.current_epoch() in node.keys
            and not node.store.is_frozen(node.id)
        ):
            self._report(node)
        nxt = self.clock.t + self.rng.expovariate(spec.reports_per_min / 60.0) * 1000.0
        if nxt < self.stop_ms:
            self.clock.at(nxt, self._on_own_report, node)

    def _on_report(self) -> None:
        rng = self.rng
        pubs = self.publishers(byzantine=False)
        if pubs:
            self._report(rng.choice(pubs))
        nxt = self.clock.t + rng.expovariate(self.sc.workload.reports_per_s) * 1000.0
        if nxt < self.stop_ms:
            self.clock.at(nxt, self._on_report)

    def _report(self, node: SimNode) -> None:
        """``node`` publishes one entry of fresh reports (some corroborating others')."""
        w = self.sc.workload
        rng = self.rng
        ledger = self.ledger
        assert node.chain is not None
        ep = node.chain.current.current_epoch()
        now = self.clock.now_ms
        ops: list[AddOp] = []
        values: list[int] = []
        seen: set[int] = set()
        one_cat = rng.choice(CATEGORIES) if w.one_category_per_entry else None
        for _ in range(rng.randint(*w.ops_per_entry)):
            if node.honest and self.pool and rng.random() < 0.1:
                value = rng.choice(self.pool)  # corroborate another member's report
                kind = ledger.kind_of[value]
            else:
                kind = rng.choice(w.kinds)
                value = self._fresh(kind, node)
            if value in seen:
                continue
            seen.add(value)
            cat = one_cat or rng.choice(CATEGORIES)
            ttl = min(w.ttl_days, self.policy.max_ttl_days[cat])
            ops.append(
                AddOp(ledger.token(value, ep), kind, ep, cat, rng.randint(1, 5), now + ttl * DAY_MS)
            )
            values.append(value)
        rec = self.publish(node, list(ops), push=True)
        own = node.own_values.setdefault(ep, {})
        for value in values:
            own[value] = None
        if rec.valid:
            adds = self.adds_by_author.setdefault(node.idx, [])
            for value, op in zip(values, ops, strict=True):
                adds.append((value, op.kind, rec.seq))
                if node.honest:
                    self.pool.append(value)

    def _fresh(self, kind: str, node: SimNode) -> int:
        """A fresh identifier of ``kind`` for ``node`` to report: one a platform queried
        before anyone reported it, if any is waiting, else a new one."""
        waiting = self.ahead.get(kind) if node.honest else None
        value = waiting.pop(0) if waiting else self.ledger.new_value(kind)
        if node.honest:
            for fn in self.on_fresh:
                fn(value)
        return value

    # -- retractions -------------------------------------------------------------------------

    def _on_retract(self) -> None:
        rng = self.rng
        pubs = [n for n in self.publishers(byzantine=False) if self.adds_by_author.get(n.idx)]
        if pubs:
            node = rng.choice(pubs)
            adds = self.adds_by_author[node.idx]
            value, kind, seq = adds.pop(rng.randrange(len(adds)))
            now = self.clock.now_ms
            if self.ledger.truth(value, now, authors={node.idx}) is not None:
                reason = rng.choice(RETRACT_REASONS)
                ops: list[Op] = []
                for ep in live_epochs(node):  # under every live epoch it reports it in
                    tok = self.ledger.token(value, ep)
                    if self._mine_live(node, tok, ep, now):
                        ops.append(RetractOp(tok, kind, ep, reason))
                if ops:
                    self.publish(node, ops, push=True)
                    self.retracted_adds.append((node.id, seq))
        nxt = self.clock.t + rng.expovariate(self.sc.workload.retractions_per_s) * 1000.0
        if nxt < self.stop_ms:
            self.clock.at(nxt, self._on_retract)

    @staticmethod
    def _mine_live(node: SimNode, tok: bytes, ep: int, now: int) -> bool:
        me = node.id
        return any(
            s.author == me and s.ep == ep and s.live(now) for s in node.store.indicators(tok)
        )

    # -- republishing after a key rotation ----------------------------------------------------

    def republish(self, node: SimNode) -> int:
        """Republish the node's live reports under the current epoch (the node's
        ``republish``): every identifier it reported under an older live epoch and
        still reports there, not yet reported under the current one. Returns how many."""
        if not (node.up and node.removed_at is None and node.role != "policy_violator"):
            return 0
        chain = node.chain
        if chain is None or node.feeds is None or not chain.current.can_publish(node.key.id):
            return 0
        ce = chain.current.current_epoch()
        if ce not in node.keys or node.store.is_frozen(node.id) or not self._resynced(node):
            return 0
        now = self.clock.now_ms
        ledger = self.ledger
        ops: list[Op] = []
        values: list[int] = []
        done: set[int] = set()
        for ep in live_epochs(node):
            if ep == ce:
                continue
            for value in node.own_values.get(ep, {}):
                if value in done:
                    continue
                mine = [
                    s
                    for s in node.store.indicators(ledger.token(value, ep))
                    if s.author == node.id and s.ep == ep and s.live(now)
                ]
                new_tok = ledger.token(value, ce)
                if not mine or self._mine_live(node, new_tok, ce, now):
                    continue
                done.add(value)
                s0 = mine[0]
                ops.append(AddOp(new_tok, s0.kind, ce, s0.cat, s0.sev, s0.exp))
                values.append(value)
        step = chain.current.policy.max_ops
        own = node.own_values.setdefault(ce, {})
        for i in range(0, len(ops), step):
            self.publish(node, ops[i : i + step], republished=True)
            for value in values[i : i + step]:
                own[value] = None
        if ops:
            stats = self.republished.setdefault(ce, [0, 0])
            stats[0] += (len(ops) + step - 1) // step
            stats[1] += len(ops)
        return len(ops)

    def forget_after(self, node: SimNode, kept: int) -> None:
        """``node`` lost its state: its adds after seq ``kept`` are gone (not retractable)."""
        adds = self.adds_by_author.get(node.idx, [])
        adds[:] = [a for a in adds if a[2] <= kept]
