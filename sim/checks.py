"""Query checks: nodes answer as their platforms would, against the ground truth.

A check queries a node the way the node's query does: every identifier is
tokenised under each live epoch the node holds a key for, the tokens go
through a :class:`node.index.TokenIndex` built from the node's live tokens
(``TokenIndex.build`` at the scenario's error rate and headroom, then
``contains_many``), and the exact store answers for the positives; the
states of all an identifier's tokens make one verdict. Each answer is
compared with the ledger's ground truth. Never-reported tokens measure the
Bloom stage's false positives, beside the rate the index reports of itself
(:meth:`~node.index.TokenIndex.measured_fpr`, from the bits it has set).

When the run has sightings, disputes or appeals, a matching answer also gets
what the node's verdict adds from them — computed by the node's own
:class:`node.aftermatch.VerdictContext` over the node's store — and its
sightings, disputes and ``under_appeal`` are compared with the ground truth
(:meth:`sim.ledger.Ledger.extras`).

During the run a few random honest nodes are checked every ``queries.every_s``;
at the end every honest node answers every identifier, and a sample of them
also answers many never-reported tokens.
"""

from __future__ import annotations

import random

from node.aftermatch import VerdictContext
from node.index import TokenIndex
from protocol.entries import AddOp, RetractOp
from protocol.store import AppealState, Decision, IndicatorState, SignalState
from sim.clock import Clock
from sim.ledger import Extras, Ledger, Verdict, verdict_of
from sim.nodes import Fleet, SimNode
from sim.record import QueryCheck, QueryRecord
from sim.scenario import Scenario
from sim.workload import live_epochs

__all__ = ["Checks"]

#: identifier -> (the ground truth, the ground truth if removals had not happened)
Truths = dict[int, tuple[Verdict | None, Verdict | None]]


class Checks:
    """Query checks during the run and at its end (see the module docstring)."""

    def __init__(
        self,
        sc: Scenario,
        clock: Clock,
        fleet: Fleet,
        ledger: Ledger,
        frame_tokens: list[tuple[str, bytes]],
        *,
        extras: bool = False,
    ) -> None:
        self.sc = sc
        #: compare sightings, disputes and appeals too (the run has some)
        self.extras = extras
        self.clock = clock
        self.fleet = fleet
        self.ledger = ledger
        self.frame_tokens = frame_tokens
        self.rng = random.Random(f"{sc.seed}:queries")
        self.checks: list[QueryCheck] = []
        self.planted = 0
        self.forked_tokens: dict[int, dict[str, int]] = {}

    def schedule(self) -> None:
        every = self.sc.queries.every_s
        if every > 0:
            self.clock.at(every * 1000.0, self._on_query)

    def _answering(self) -> list[SimNode]:
        return [n for n in self.fleet.current() if n.chain is not None]

    def _on_query(self) -> None:
        q = self.sc.queries
        clock = self.clock
        if clock.t >= clock.end:
            return
        up = self._answering()
        for node in self.rng.sample(up, min(q.nodes, len(up))):
            self.query(node, q.present, q.absent, final=False)
        clock.at(clock.t + q.every_s * 1000.0, self._on_query)

    def query(
        self,
        node: SimNode,
        present: int,
        absent: int,
        *,
        final: bool,
        truth: Truths | None = None,
    ) -> QueryCheck:
        """Query ``node`` as its platform would (Bloom index, then exact store) and check.

        ``present`` reported identifiers (all of them if ``final``) are answered and
        compared with the ground truth; ``absent`` never-reported tokens measure
        the Bloom stage's false positives (each positive is then refused by the
        exact store: a false *match* would be a bug).
        """
        q = self.sc.queries
        rng = self.rng
        ledger = self.ledger
        now = self.clock.now_ms
        store = node.store
        live = list(dict.fromkeys(s.tok for s in store.all_indicators() if s.live(now)))
        index = TokenIndex.build(live, len(live), error_rate=q.error_rate, headroom=q.headroom)
        values = ledger.values()
        sample = values if final or present >= len(values) else rng.sample(values, present)
        if truth is None:
            truth = {}
        epochs = live_epochs(node)
        n_ep = len(epochs)
        toks = [ledger.token(v, ep) for v in sample for ep in epochs]
        hits = index.contains_many(toks) if toks else []
        removals = bool(ledger.until)
        agree = disagree = race = fneg = extras_agree = extras_disagree = 0
        for j, value in enumerate(sample):
            found: list[IndicatorState] = []
            positives: list[bytes] = []
            for k in range(j * n_ep, (j + 1) * n_ep):
                states = store.indicators(toks[k])
                if hits[k]:
                    found.extend(states)
                    positives.append(toks[k])
                elif verdict_of(states, now) is not None:
                    fneg += 1
            answer = verdict_of(found, now)
            expected = truth.get(value)
            if expected is None:
                expected = truth[value] = (
                    ledger.truth(value, now),
                    ledger.truth(value, now, ignore_removals=True) if removals else None,
                )
            if answer == expected[0]:
                agree += 1
                if self.extras and answer is not None:
                    if self._extras(node, positives, found, now) == ledger.extras(value, now):
                        extras_agree += 1
                    else:
                        extras_disagree += 1
            elif removals and answer == expected[1]:
                race += 1
            else:
                disagree += 1
        blob = rng.randbytes(16 * absent)
        probes = [blob[i : i + 16] for i in range(0, len(blob), 16)]
        made = ledger.value_of  # tokens of identifiers the run made are not "absent"
        probes = [t for t in probes if t not in made]
        positives = [t for t, h in zip(probes, index.contains_many(probes), strict=True) if h]
        false_matches = sum(1 for t in positives if verdict_of(store.indicators(t), now))
        check = QueryCheck(
            t=self.clock.t,
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
            extras_agree=extras_agree,
            extras_disagree=extras_disagree,
        )
        self.checks.append(check)
        return check

    @staticmethod
    def _extras(
        node: SimNode, positives: list[bytes], found: list[IndicatorState], now: int
    ) -> Extras | None:
        """What the node's verdict adds from sightings, disputes and appeals, by the node's
        own rules (``VerdictContext`` over what the node holds of the positive tokens)."""
        store = node.store
        chain = node.chain
        assert chain is not None
        policy = chain.current.policy
        dropped: set[bytes] = {p.log for p in store.fork_proofs()}
        if not policy.keep_reports_of_removed:
            dropped |= {m.id for m in chain.current.members if m.status == "revoked"}
        signals: dict[bytes, list[SignalState]] = {t: store.signals(t) for t in positives}
        appeals: dict[bytes, list[AppealState]] = {t: store.appeals(t) for t in positives}
        ids = {a.id for rows in appeals.values() for a in rows}
        decisions: dict[str, list[Decision]] = {i: store.decisions(i) for i in sorted(ids)}
        ctx = VerdictContext(policy, frozenset(dropped), signals, appeals, decisions)
        live = [s for s in found if s.live(now) and s.author not in dropped]
        counted = ctx.counted(positives, live, now)
        if not counted:
            return None
        f = ctx.fields(positives, counted, now)
        return Extras(f["sightings"], f["disputes"], f["under_appeal"])

    def final(self) -> None:
        """Every honest node answers every identifier; a sample also probes absent ones."""
        q = self.sc.queries
        up = self._answering()
        probe = set(range(len(up)))
        if q.final_nodes and q.final_nodes < len(up):
            probe = set(self.rng.sample(range(len(up)), q.final_nodes))
        truth: Truths = {}
        for i, node in enumerate(up):
            self.query(node, 0, q.final_absent if i in probe else 0, final=True, truth=truth)
            # identifiers a forger or violator tried to plant: no honest node may hold them
            self.planted += sum(1 for _, tok in self.frame_tokens if node.store.indicators(tok))
        self._forked_answers(up)

    def _forked_answers(self, up: list[SimNode]) -> None:
        """How honest nodes answer for the tokens of a feed frozen by a fork proof.

        They are not part of the ground truth: which of the two branches a node
        accepted before the proof arrived depends on arrival order, and the node's
        query counts a frozen feed's accepted reports like any other.
        """
        now = self.clock.now_ms
        for node in self.fleet:
            if node.role != "equivocator":
                continue
            toks = {
                op.tok
                for r in self.ledger.entries
                if r.author == node.idx
                for op in r.ops
                if isinstance(op, AddOp | RetractOp)
            }
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

    def record(self) -> QueryRecord:
        return QueryRecord(
            checks=tuple(self.checks), planted=self.planted, forked_tokens=self.forked_tokens
        )
