"""Alerts at watching nodes (DESIGN §14): who watches what, and when each alert is raised.

A watch is local to a node: the node matches its own watchlist against the
entries it accepts, and nothing of it goes on the wire. So the simulator keeps
each watching node's watches beside the node (what the node keeps sealed in
its store) and listens to the node's feeds (a
:class:`~sim.driver.FeedListener`): every entry a watching node appends, after
every check, is matched as ``node.alerts.Alerts.on_entry`` matches it.

What is watched (``[alerts]``):

* **watches** — each of ``watchers`` honest founders watches each fresh
  identifier an honest member is about to report with probability
  ``watch_share``, from before the report (a platform's watchlist);
* **recent queries** — ``queries_per_s`` platform queries, each of one value
  at a random watcher that is up; the value is watched for ``recent_query_s``
  (``alerts.recent_query_hours``). A share ``queried_ahead`` of them are
  values nobody has reported yet, which the workload's next fresh reports of
  that kind then take (a platform approved a transfer to an account that
  another member reports later); the others are reported values.

When an alert is raised, exactly as node/alerts.py decides it: an accepted
entry (any member's, the watcher's own included) with an ``add`` on a token of
a watched value (under an epoch whose key the node holds) raises
``reported`` if its author newly reports the value — the node's live state of
that author's report was made by this very entry and none of the author's
live reports of the value is older (so a republish under a new epoch, or a
re-add while live, is not news); a ``retract`` without ``of`` raises
``retracted`` if its author no longer reports the value and the report was
live until this entry. A retract naming ``of`` (a sighting, dispute or
appeal withdrawn) raises nothing. Reports of authors whose feed the node
holds frozen do not count, as in the node's verdicts.

The latency of an alert is the node's time of acceptance minus the entry's
``ts``, in virtual ms (and rounds: divided by the gossip interval).
"""

from __future__ import annotations

import math
import random

from contracts.policy import DataPolicy
from protocol.entries import AddOp, Entry, RetractOp
from protocol.keys import MemberId
from sim.clock import Clock
from sim.ledger import Ledger
from sim.nodes import Fleet, SimNode
from sim.record import Alert, AlertRecord
from sim.scenario import Scenario, count_nodes
from sim.workload import Workload, live_epochs

__all__ = ["Alerts"]

WATCH = "watch"
RECENT = "recent_query"


class Alerts:
    """Watches of the watching nodes and the alerts they raise (see the module docstring)."""

    def __init__(
        self,
        sc: Scenario,
        clock: Clock,
        fleet: Fleet,
        ledger: Ledger,
        workload: Workload,
        policy: DataPolicy,
    ) -> None:
        a = sc.alerts
        self.sc = sc
        self.clock = clock
        self.fleet = fleet
        self.ledger = ledger
        self.workload = workload
        self.urgent_categories = policy.urgent_categories
        self.keep_removed = policy.keep_reports_of_removed
        self.rng = random.Random(f"{sc.seed}:alerts")
        honest = [n.idx for n in fleet if n.founder and n.honest]
        k = min(len(honest), count_nodes(a.watchers, len(honest)))
        self.watchers: list[int] = sorted(self.rng.sample(honest, k)) if k else []
        self.enabled = bool(self.watchers) and (
            a.watch_share > 0 or (a.queries_per_s > 0 and a.recent_query_s > 0)
        )
        #: node -> identifier -> (source, virtual ms until which it is watched)
        self.watches: dict[int, dict[int, tuple[str, float]]] = {w: {} for w in self.watchers}
        self.explicit = 0
        self.recent_queries = 0
        self.queried_ahead = 0
        self.alerts: list[Alert] = []
        if self.enabled and a.watch_share > 0:
            workload.on_fresh.append(self._on_fresh)

    # -- watches -------------------------------------------------------------------------------

    def _on_fresh(self, value: int) -> None:
        """An honest member is about to report a fresh identifier: who watched it."""
        share = self.sc.alerts.watch_share
        rng = self.rng
        for w in self.watchers:
            if rng.random() < share:
                self.watches[w][value] = (WATCH, math.inf)
                self.explicit += 1

    def schedule(self) -> None:
        a = self.sc.alerts
        if self.enabled and a.queries_per_s > 0 and a.recent_query_s > 0:
            start = self.sc.workload.start_s * 1000.0
            self.clock.at(start + self._gap(), self._on_query)

    def _gap(self) -> float:
        return self.rng.expovariate(self.sc.alerts.queries_per_s) * 1000.0

    def _on_query(self) -> None:
        """A platform at a random watcher that is up queries one value; it is watched
        for ``recent_query_s`` from now (a watch of the same value wins)."""
        a = self.sc.alerts
        rng = self.rng
        clock = self.clock
        up = [w for w in self.watchers if self.fleet[w].up]
        if up:
            w = rng.choice(up)
            pool = self.workload.pool
            if not pool or rng.random() < a.queried_ahead:
                kind = rng.choice(self.sc.workload.kinds)
                value = self.ledger.new_value(kind)
                self.workload.ahead.setdefault(kind, []).append(value)
                self.queried_ahead += 1
            else:
                value = rng.choice(pool)
            watched = self.watches[w]
            got = watched.get(value)
            if got is None or got[0] == RECENT:
                watched[value] = (RECENT, clock.t + a.recent_query_s * 1000.0)
            self.recent_queries += 1
        nxt = clock.t + self._gap()
        if nxt < self.workload.stop_ms:
            clock.at(nxt, self._on_query)

    # -- matching (a FeedListener) ---------------------------------------------------------------

    def on_append(self, node: SimNode, entry: Entry) -> None:
        watched = self.watches.get(node.idx)
        if not watched:
            return
        value_of = self.ledger.value_of
        touched: dict[int, list[AddOp | RetractOp]] = {}
        for op in entry.ops:
            if isinstance(op, AddOp) or (isinstance(op, RetractOp) and op.of is None):
                v = value_of.get(op.tok)
                if v is not None and v in watched:
                    touched.setdefault(v, []).append(op)
        if not touched:
            return
        t = self.clock.t
        for value, ops in touched.items():
            source, until = watched[value]
            if until <= t:
                continue  # a recent query that has lapsed
            found = self._event(node, entry, value, ops)
            if found is None:
                continue
            event, category = found
            self.alerts.append(
                Alert(
                    node=node.idx,
                    value=value,
                    event=event,
                    source=source,
                    category=category,
                    urgent=category in self.urgent_categories,
                    author=self.fleet.by_id[MemberId(entry.log)],
                    seq=entry.seq,
                    entry_ts=entry.ts,
                    t=t,
                    latency_ms=max(0, self.clock.now_ms - entry.ts),
                    # (the author's own node appends before the ledger records it)
                    published=node.publishing or entry.hash in self.ledger.by_hash,
                )
            )

    def on_duplicate(self, node: SimNode, log: MemberId, seq: int) -> None:
        pass

    def _event(
        self, node: SimNode, entry: Entry, value: int, ops: list[AddOp | RetractOp]
    ) -> tuple[str, str] | None:
        """``(event, category)`` of the alert ``entry`` raises on ``value`` at ``node``, or
        None (``Alerts._event`` in node/alerts.py; see the module docstring)."""
        store = node.store
        now = self.clock.now_ms
        ledger = self.ledger
        toks = {ledger.token(value, ep) for ep in live_epochs(node)}
        ops = [op for op in ops if op.tok in toks]
        if not ops:
            return None
        chain = node.chain
        revoked: set[bytes] = set()
        if not self.keep_removed and chain is not None:
            revoked = {m.id for m in chain.current.members if m.status == "revoked"}
        author = entry.log
        own_live = [
            s
            for tok in toks
            for s in store.indicators(tok)
            if s.author == author
            and s.live(now)
            and not store.is_frozen(s.author)
            and s.author not in revoked
        ]
        adds = [op for op in ops if isinstance(op, AddOp)]
        if adds:
            made = [
                s
                for op in adds
                for s in own_live
                if s.tok == op.tok and s.ep == op.ep and s.first_ts == entry.ts
            ]
            older = any(s.first_ts < entry.ts for s in own_live)
            return ("reported", made[0].cat) if made and not older else None
        if own_live:
            return None
        for op in ops:  # it was live until this entry (not an expired report retracted)
            for s in store.indicators(op.tok):
                if s.author == author and s.ep == op.ep and s.exp > entry.ts:
                    return "retracted", s.cat
        return None

    # -- the record ------------------------------------------------------------------------------

    def record(self) -> AlertRecord | None:
        if not self.enabled:
            return None
        return AlertRecord(
            watchers=tuple(self.watchers),
            watches=self.explicit,
            recent_queries=self.recent_queries,
            queried_ahead=self.queried_ahead,
            alerts=tuple(self.alerts),
        )
