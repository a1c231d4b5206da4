"""After the match (DESIGN §15): sightings, disputes, appeals and decisions.

**Honest members** (``workload.sightings_per_s``, ``disputes_per_s``,
``appeals_per_s``): a random honest member that can publish picks an
identifier another honest member reported and, as the node's
``AfterMatch`` does, publishes a ``seen`` or ``dispute`` op (a random
reason) per live epoch in which another member has a live report of it that
verdicts count, or files an appeal: an ``appeal`` op per such epoch in its
own feed, and a sealed case per epoch (:func:`protocol.appeals.make_case`,
under the case key made from the value) handed to its engine
(``GossipEngine.add_appeal_item``), which gossips it to every node. A value
nobody else reports is refused by the node (``not_listed``); so is a second
appeal of the same value by the same member.

**Reporters** open the cases that reach them (the engine's
``AppealItemArrived`` events) when they reported the value themselves — with
the case key made from their own record of the values they reported
(:func:`protocol.appeals.open_case`, the real decryption) — and decide after
``appeals.decide_s``: upheld (a share ``appeals.upheld``) retracts their live
reports of the value with reason ``appeal_upheld`` and publishes
``appeal_decided``; rejected publishes ``appeal_decided``. Either way a
sealed note goes back to the appellant (:func:`protocol.appeals.make_note`).
Grounds that are an appeal spammer's boilerplate are always rejected.

**Abusers** (``[[byzantine]]`` roles ``disputer`` and ``appeal_spammer``):
each goes after every token another member reports, as its node accepts the
entry, ``reports_per_min`` times a minute: the disputer disputes them
(``false_positive``), the spammer files an appeal on each (with a sealed
case: a fraud ring appealing its own identifiers knows their values). What
fits its quota (``policy.max_disputes_per_day`` / ``max_appeals_per_day``,
counted as the feeds count it) goes through its own feeds as valid entries;
the rest its own feeds would refuse (``over_quota``), so it signs it anyway
and slips it into every message (:class:`sim.engines.QuotaAbuser`), where
every honest node refuses it. The spammer still relays a sealed case for
every appeal, the refused ones included: nothing in the protocol bounds
those (the record counts the cases honest nodes hold for appeals no node
holds an op of).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from contracts.errors import LocalProtocolError, PolicyViolation
from contracts.policy import DAY_MS
from contracts.taxonomy import DISPUTE_REASONS
from protocol.appeals import CASE, NOTE, case_key, decode_case, make_case, make_note, open_case
from protocol.entries import (
    AddOp,
    AppealDecidedOp,
    AppealOp,
    DisputeOp,
    Entry,
    Op,
    RetractOp,
    SeenOp,
)
from protocol.gossip import AppealItemArrived, Event
from protocol.keys import MemberId
from sim.clock import T0, Clock
from sim.driver import Driver
from sim.engines import QuotaAbuser
from sim.ledger import Ledger
from sim.nodes import Fleet, SimNode
from sim.record import AbuseRecord, AfterMatchRecord, AppealRecord
from sim.scenario import Scenario
from sim.workload import ABUSERS, Workload, live_epochs

__all__ = ["HONEST_GROUNDS", "SPAM_GROUNDS", "AfterMatch"]

HONEST_GROUNDS = "the customer shows the transfer was authorised and the account is theirs"
SPAM_GROUNDS = "bulk appeal: the data subject contests every report"


@dataclass(slots=True)
class _Appeal:
    id: str
    appellant: int
    t: float
    spam: bool
    op_published: bool
    cases: int = 0
    opened: dict[int, float] = field(default_factory=dict)
    decided: dict[int, tuple[float, str]] = field(default_factory=dict)


@dataclass(slots=True)
class _Abuse:
    what: str
    tokens_seen: int = 0
    attempted: int = 0
    accepted_own: int = 0
    over_quota: int = 0
    cases_made: int = 0
    #: tokens it saw and has not gone after yet: (token, kind, epoch)
    queue: list[tuple[bytes, str, int]] = field(default_factory=list)
    done: set[bytes] = field(default_factory=set)


class AfterMatch:
    """Sightings, disputes, appeals and decisions (see the module docstring)."""

    def __init__(
        self,
        sc: Scenario,
        clock: Clock,
        fleet: Fleet,
        ledger: Ledger,
        workload: Workload,
        driver: Driver,
    ) -> None:
        self.sc = sc
        self.clock = clock
        self.fleet = fleet
        self.ledger = ledger
        self.workload = workload
        self.driver = driver
        w = sc.workload
        self.abusers = [n for n in fleet if n.role in ABUSERS]
        self.enabled = bool(self.abusers) or (
            w.sightings_per_s > 0 or w.disputes_per_s > 0 or w.appeals_per_s > 0
        )
        self.rng = random.Random(f"{sc.seed}:aftermatch")
        self.honest_ops: Counter[str] = Counter()
        self.honest_refused: Counter[str] = Counter()
        self.abuse: dict[int, _Abuse] = {
            n.idx: _Abuse("dispute" if n.role == "disputer" else "appeal") for n in self.abusers
        }
        self.appeals: dict[str, _Appeal] = {}
        #: (appellant, identifier) of honest appeals filed
        self._filed: set[tuple[int, int]] = set()
        #: (reporter, appeal id) of cases opened
        self._opened: set[tuple[int, str]] = set()

    # -- the schedule ----------------------------------------------------------------------------

    def schedule(self) -> None:
        if not self.enabled:
            return
        w = self.sc.workload
        start = w.start_s * 1000.0
        rng = self.rng
        for what, rate in (("seen", w.sightings_per_s), ("dispute", w.disputes_per_s)):
            if rate > 0:
                self.clock.at(start + rng.expovariate(rate) * 1000.0, self._on_signal, what)
        if w.appeals_per_s > 0:
            self.clock.at(start + rng.expovariate(w.appeals_per_s) * 1000.0, self._on_appeal)
        for node in self.abusers:
            spec = node.spec
            assert spec is not None
            if spec.reports_per_min > 0:
                gap = rng.expovariate(spec.reports_per_min / 60.0) * 1000.0
                self.clock.at(start + gap, self._on_abuse, node)

    def _next(self, rate_per_s: float) -> float | None:
        nxt = self.clock.t + self.rng.expovariate(rate_per_s) * 1000.0
        return nxt if nxt < self.workload.stop_ms else None

    def _ttl_ms(self, node: SimNode) -> int:
        assert node.chain is not None
        longest = node.chain.current.policy.max_signal_ms()
        return min(self.sc.workload.ttl_days * DAY_MS, longest)

    def _reported_by_others(self, node: SimNode, value: int) -> list[tuple[bytes, int]]:
        """(token, epoch) of ``value`` for each live epoch of ``node`` in which another
        member has a live report its verdicts count (node.aftermatch)."""
        now = self.clock.now_ms
        store = node.store
        me = node.id
        out = []
        for ep in live_epochs(node):
            tok = self.ledger.token(value, ep)
            if any(
                s.live(now) and s.author != me and not store.is_frozen(s.author)
                for s in store.indicators(tok)
            ):
                out.append((tok, ep))
        return out

    def _publish(self, node: SimNode, ops: list[Op]) -> str | None:
        """Publish through the node's own feeds; the reason if they refuse."""
        try:
            self.workload.publish(node, ops)
        except PolicyViolation as e:
            return e.reason
        except LocalProtocolError as e:
            return e.reason
        return None

    # -- honest members --------------------------------------------------------------------------

    def _pick(self) -> tuple[SimNode, int] | None:
        pubs = self.workload.publishers(byzantine=False)
        pool = self.workload.pool
        if not pubs or not pool:
            return None
        return self.rng.choice(pubs), self.rng.choice(pool)

    def _on_signal(self, what: str) -> None:
        picked = self._pick()
        if picked is not None:
            node, value = picked
            toks = self._reported_by_others(node, value)
            if not toks:
                self.honest_refused["not_listed"] += 1
            else:
                kind = self.ledger.kind_of[value]
                exp = self.clock.now_ms + self._ttl_ms(node)
                ops: list[Op] = [
                    SeenOp(tok, kind, ep, exp)
                    if what == "seen"
                    else DisputeOp(tok, kind, ep, exp, self.rng.choice(DISPUTE_REASONS))
                    for tok, ep in toks
                ]
                refused = self._publish(node, ops)
                if refused is None:
                    self.honest_ops[what] += len(ops)
                else:
                    self.honest_refused[refused] += 1
        w = self.sc.workload
        nxt = self._next(w.sightings_per_s if what == "seen" else w.disputes_per_s)
        if nxt is not None:
            self.clock.at(nxt, self._on_signal, what)

    def _on_appeal(self) -> None:
        picked = self._pick()
        if picked is not None:
            node, value = picked
            toks = self._reported_by_others(node, value)
            if (node.idx, value) in self._filed:
                self.honest_refused["already_appealed"] += 1
            elif not toks:
                self.honest_refused["not_listed"] += 1
            else:
                self._file(node, value, toks)
        nxt = self._next(self.sc.workload.appeals_per_s)
        if nxt is not None:
            self.clock.at(nxt, self._on_appeal)

    def _file(self, node: SimNode, value: int, toks: list[tuple[bytes, int]]) -> None:
        """An honest member files an appeal of ``value``: the ops, then the sealed cases."""
        aid = self.rng.randbytes(8).hex()
        kind = self.ledger.kind_of[value]
        ops: list[Op] = [AppealOp(tok, kind, ep, aid) for tok, ep in toks]
        refused = self._publish(node, ops)
        if refused is not None:
            self.honest_refused[refused] += 1
            return
        self._filed.add((node.idx, value))
        self.honest_ops["appeal"] += len(ops)
        ap = self.appeals[aid] = _Appeal(aid, node.idx, self.clock.t, False, True)
        for tok, ep in toks:
            ap.cases += self._send_case(node, aid, tok, kind, ep, HONEST_GROUNDS)

    def _send_case(
        self, node: SimNode, aid: str, tok: bytes, kind: str, ep: int, grounds: str
    ) -> int:
        """Seal the case of appeal ``aid`` on ``tok`` for its reporters; hand it to the
        engine (node.aftermatch's ``_after_filing``). 1 if sent."""
        engine = node.engine
        key = node.keys.get(ep)
        if engine is None or key is None:
            return 0
        value = self.ledger.value_of[tok]
        raw = make_case(
            node.key,
            appeal_id=aid,
            tok=tok,
            kind=kind,
            ep=ep,
            ts=self.clock.now_ms,
            key=case_key(key, kind, self.ledger.canonical[value]),
            case_ref=f"case-{aid[:8]}",
            grounds=grounds,
        )
        engine.add_appeal_item(CASE, raw)
        return 1

    # -- reporters: cases and decisions (an EngineListener) ----------------------------------------

    def on_event(self, node: SimNode, ev: Event) -> None:
        if not isinstance(ev, AppealItemArrived) or ev.kind != CASE or not node.current:
            return
        case = decode_case(ev.raw)
        if case.appellant == node.id or case.ep not in node.keys:
            return
        ledger = self.ledger
        value = ledger.value_of.get(case.tok)
        if value is None or value not in node.own_values.get(case.ep, {}):
            return  # not a value this member reported: not for it
        if (node.idx, case.id) in self._opened:
            return  # another epoch's case of the same appeal
        kind = ledger.kind_of[value]
        _, grounds = open_case(case, case_key(node.keys[case.ep], kind, ledger.canonical[value]))
        self._opened.add((node.idx, case.id))
        t = self.clock.t
        ap = self.appeals.get(case.id)
        if ap is not None:
            ap.opened[node.idx] = t
        lo, hi = self.sc.appeals.decide_s
        at = t + self.rng.uniform(lo, hi) * 1000.0
        self.clock.at(at, self._decide, node, case.id, value, case.appellant, case.ep, grounds)

    def after_drain(self, node: SimNode, sent_to: set[MemberId]) -> None:
        pass

    def on_message_refused(self, node: SimNode, sender: SimNode, reason: str) -> None:
        pass

    def _decide(
        self, node: SimNode, aid: str, value: int, appellant: MemberId, ep: int, grounds: str
    ) -> None:
        """The reporter decides appeal ``aid`` (node.aftermatch's ``decide``)."""
        if not (node.current and self.workload.can_publish(node, byzantine=False)):
            self.honest_refused["reporter_not_publishing"] += 1
            return
        me = node.id
        store = node.store
        if any(d.author == me for d in store.decisions(aid)) or ep not in node.keys:
            return
        spam = grounds == SPAM_GROUNDS
        upheld = not spam and self.rng.random() < self.sc.appeals.upheld
        decision = "upheld" if upheld else "rejected"
        now = self.clock.now_ms
        kind = self.ledger.kind_of[value]
        ops: list[Op] = []
        if upheld:
            for e in live_epochs(node):
                tok = self.ledger.token(value, e)
                if any(s.author == me and s.live(now) for s in store.indicators(tok)):
                    ops.append(RetractOp(tok, kind, e, "appeal_upheld"))
        retracted = len(ops)
        ops.append(AppealDecidedOp(aid, decision))
        refused = self._publish(node, ops)
        if refused is not None:
            self.honest_refused[refused] += 1
            return
        self.honest_ops[decision] += 1
        self.honest_ops["retracted_on_appeal"] += retracted
        engine = node.engine
        assert engine is not None
        note = make_note(
            appeal_id=aid,
            to=appellant,
            ts=now,
            decision=decision,
            note="the report stands" if not upheld else "the report is withdrawn",
            key=case_key(node.keys[ep], kind, self.ledger.canonical[value]),
        )
        engine.add_appeal_item(NOTE, note)
        ap = self.appeals.get(aid)
        if ap is not None:
            ap.decided[node.idx] = (self.clock.t, decision)

    # -- abusers (their tokens: a FeedListener) --------------------------------------------------

    def on_append(self, node: SimNode, entry: Entry) -> None:
        abuse = self.abuse.get(node.idx)
        if abuse is None or entry.log == node.id:
            return
        for op in entry.ops:
            if isinstance(op, AddOp) and op.tok not in abuse.done:
                abuse.done.add(op.tok)
                abuse.queue.append((op.tok, op.kind, op.ep))
                abuse.tokens_seen += 1

    def on_duplicate(self, node: SimNode, log: MemberId, seq: int) -> None:
        pass

    def _on_abuse(self, node: SimNode) -> None:
        spec = node.spec
        assert spec is not None
        if node.up and self.workload.can_publish(node):
            self._abuse(node)
        nxt = self._next(spec.reports_per_min / 60.0)
        if nxt is not None:
            self.clock.at(nxt, self._on_abuse, node)

    def _abuse(self, node: SimNode) -> None:
        abuse = self.abuse[node.idx]
        engine = node.engine
        if not abuse.queue or not isinstance(engine, QuotaAbuser):
            return
        queue, abuse.queue = abuse.queue, []
        assert node.chain is not None
        policy = node.chain.current.policy
        now = self.clock.now_ms
        ops: list[Op] = []
        cases: list[tuple[str, bytes, str, int]] = []
        for tok, kind, ep in queue:
            if abuse.what == "dispute":
                ops.append(DisputeOp(tok, kind, ep, now + self._ttl_ms(node), "false_positive"))
            else:
                aid = self.rng.randbytes(8).hex()
                ops.append(AppealOp(tok, kind, ep, aid))
                cases.append((aid, tok, kind, ep))
        abuse.attempted += len(ops)
        quota = (
            policy.max_disputes_per_day if abuse.what == "dispute" else policy.max_appeals_per_day
        )
        room = max(0, quota - node.store.recent_signals(node.id, abuse.what, now - DAY_MS))
        within, over = ops[:room], ops[room:]
        step = policy.max_ops
        published: set[str] = set()
        for i in range(0, len(within), step):
            chunk = within[i : i + step]
            if self._publish(node, chunk) is None:
                abuse.accepted_own += len(chunk)
                published.update(op.id for op in chunk if isinstance(op, AppealOp))
            else:
                over = chunk + over
        engine.overflow.extend(over)
        abuse.over_quota += len(over)
        for aid, tok, kind, ep in cases:
            ap = self.appeals[aid] = _Appeal(aid, node.idx, self.clock.t, True, aid in published)
            ap.cases = self._send_case(node, aid, tok, kind, ep, SPAM_GROUNDS)
            abuse.cases_made += ap.cases

    # -- the record ------------------------------------------------------------------------------

    def record(self) -> AfterMatchRecord | None:
        if not self.enabled:
            return None
        current = self.fleet.current()
        orphans = {a.id for a in self.appeals.values() if not a.op_published}
        orphan_cases: dict[int, int] = {}
        orphan_ops = 0
        for n in current:
            if orphans:
                held = sum(
                    1
                    for kind, raw in n.store.appeal_items()
                    if kind == CASE and decode_case(raw).id in orphans
                )
                orphan_cases[n.idx] = held
                orphan_ops += any(n.store.appeal(i) for i in sorted(orphans))
        abusers = []
        for node in self.abusers:
            a = self.abuse[node.idx]
            assert node.chain is not None
            policy = node.chain.current.policy
            quota = (
                policy.max_disputes_per_day if a.what == "dispute" else policy.max_appeals_per_day
            )
            counts = [n.store.recent_signals(node.id, a.what, T0 - DAY_MS) for n in current]
            abusers.append(
                AbuseRecord(
                    node=node.idx,
                    role=node.role,
                    what=a.what,
                    quota=quota,
                    tokens_seen=a.tokens_seen,
                    attempted=a.attempted,
                    accepted_own=a.accepted_own,
                    over_quota=a.over_quota,
                    max_held_by_an_honest_node=max(counts, default=0),
                    cases_made=a.cases_made,
                )
            )
        return AfterMatchRecord(
            honest_ops=dict(sorted(self.honest_ops.items())),
            honest_refused=dict(sorted(self.honest_refused.items())),
            abusers=tuple(abusers),
            appeals=tuple(
                AppealRecord(
                    id=a.id,
                    appellant=a.appellant,
                    t=a.t,
                    spam=a.spam,
                    op_published=a.op_published,
                    cases=a.cases,
                    opened=dict(a.opened),
                    decided=dict(a.decided),
                )
                for a in self.appeals.values()
            ),
            orphan_cases_held=orphan_cases,
            orphan_ops_held=orphan_ops,
            truth=self._truth(),
        )

    def _truth(self) -> dict[str, int]:
        ledger = self.ledger
        now = self.clock.now_ms
        spam = {a.id for a in self.appeals.values() if a.spam}
        out = dict.fromkeys(
            ("matching", "with_sightings", "with_disputes", "under_appeal", "under_spam_appeal"),
            0,
        )
        for value in ledger.values():
            x = ledger.extras(value, now)
            if x is None:
                continue
            out["matching"] += 1
            out["with_sightings"] += x.sightings > 0
            out["with_disputes"] += x.disputes > 0
            out["under_appeal"] += x.under_appeal
            if x.under_appeal and spam:
                ids = {
                    op.id for _, _, op in ledger.signals.get(value, ()) if isinstance(op, AppealOp)
                }
                out["under_spam_appeal"] += bool(ids & spam)
        return out
