"""One run of one scenario: :class:`Simulation` composes the simulator's collaborators.

Time is virtual (:class:`~sim.clock.Clock`); nothing reads a wall clock. Every
random choice comes from a ``random.Random`` seeded from the scenario's seed
and the purpose (``f"{seed}:workload"``, ``f"{seed}:engine:{node}:{incarnation}"``,
...), so a run is reproducible from its seed and the streams do not disturb
each other.

Each node (:class:`~sim.nodes.SimNode`) is a real
:class:`protocol.gossip.GossipEngine` (see :mod:`sim.engines`) over its own
:class:`protocol.store.MemoryStore`, :class:`protocol.feeds.Feeds` and
:class:`protocol.charter_chain.CharterChain`. The collaborators, each with
its own part of the run:

==================  ====================================================================
``driver``          :class:`~sim.driver.Driver`: starts and crashes nodes, runs their
                    timers, carries their messages over the network
                    (:class:`~sim.network.Network`), hands their events on
``observer``        :class:`~sim.observe.Observer`: misbehaviour detectors, which node
                    holds which entry, the time series, catch-up
``workload``        :class:`~sim.workload.Workload`: reports, retractions, republishing
``governance``      :class:`~sim.governance.Governance`: proposals, signatures, grants
                    and key rotation, with the node's own drafting rules
``faults``          :class:`~sim.faults.Faults`: partitions, crashes, churn, slow links
``checks``          :class:`~sim.checks.Checks`: query answers against the ground truth
``alerts``          :class:`~sim.alerts.Alerts`: watches at watching nodes, the alerts
                    they raise (only when the scenario has watchers)
``after_match``     :class:`~sim.aftermatch.AfterMatch`: sightings, disputes, appeals
                    and decisions, and the disputer's and appeal spammer's abuse
==================  ====================================================================

They share the clock, the nodes (:class:`~sim.nodes.Fleet`) and the ground
truth (:class:`~sim.ledger.Ledger`). :meth:`Simulation.run` returns a frozen
:class:`~sim.record.RunRecord`, from which :mod:`sim.figures` computes every
figure.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from contracts.policy import DEFAULT_URGENT_CATEGORIES, DataPolicy, GossipSettings
from protocol.keys import MemberId
from protocol.tokens import EpochKeys
from sim.aftermatch import AfterMatch
from sim.alerts import Alerts
from sim.checks import Checks
from sim.clock import Clock
from sim.consortium import Consortium
from sim.driver import Driver
from sim.faults import Faults
from sim.governance import Governance
from sim.ledger import Ledger
from sim.network import Network
from sim.nodes import Fleet, SimNode
from sim.observe import Observer
from sim.record import EntryRecord, NodeRecord, RunRecord
from sim.scenario import PolicySpec, Scenario, count_nodes
from sim.workload import Workload

__all__ = ["Simulation"]


class Simulation:
    """One run of one scenario. ``run()`` returns when the virtual run length is over."""

    def __init__(
        self, scenario: Scenario, *, progress: Callable[[float], None] | None = None
    ) -> None:
        self.sc = sc = scenario
        seed = sc.seed
        self.progress = progress
        g = sc.gossip
        later = sum(x.count for x in sc.governance if x.kind == "onboard")
        self.cons = cons = Consortium.build(
            seed=seed,
            founders=sc.members.count,
            admins=sc.members.admins,
            later=later,
            gossip=GossipSettings(
                interval_ms=g.interval_ms, fanout=g.fanout, frame_bytes=g.frame_bytes
            ),
            policy=_policy(sc),
        )
        self.clock = clock = Clock(sc.duration_s * 1000.0)
        self.net = net = Network(sc.network, seed=seed, rng=random.Random(f"{seed}:network"))
        self.fleet = fleet = Fleet(
            [
                SimNode(
                    idx=i,
                    name=f"m{i:04d}",
                    key=k,
                    admin=i < sc.members.admins,
                    founder=i < sc.members.count,
                )
                for i, k in enumerate(cons.keys)
            ]
        )
        self.ledger = ledger = Ledger(
            EpochKeys({1: cons.epoch_keys[1]}), [bytes(n.id) for n in fleet]
        )
        self._assign_roles()
        self.driver = driver = Driver(sc, clock, net, fleet, cons)
        self.workload = workload = Workload(sc, clock, fleet, ledger, driver, cons.genesis.policy)
        for node in fleet:
            node.attack = workload.attack(node)
        sample_ms = float(sc.sample_ms or g.interval_ms)
        self.observer = observer = Observer(clock, fleet, ledger, driver, sample_ms)
        driver.subscribe(observer)
        driver.subscribe_feeds(observer)
        self.governance = governance = Governance(
            sc, clock, fleet, driver, ledger, workload, observer, cons
        )
        driver.subscribe(governance)
        self.faults = Faults(sc, clock, fleet, net, driver, ledger, workload, observer)
        self.after_match = after = AfterMatch(sc, clock, fleet, ledger, workload, driver)
        if after.enabled:
            driver.subscribe(after)
            driver.subscribe_feeds(after)
        self.alerts = alerts = Alerts(sc, clock, fleet, ledger, workload, cons.genesis.policy)
        if alerts.enabled:
            driver.subscribe_feeds(alerts)
        self.checks = Checks(sc, clock, fleet, ledger, workload.frame_tokens, extras=after.enabled)

    def _assign_roles(self) -> None:
        sc = self.sc
        rng = random.Random(f"{sc.seed}:roles")
        candidates = list(range(sc.members.admins, sc.members.count))
        rng.shuffle(candidates)
        for b in sc.byzantine:
            for _ in range(count_nodes(b.count, sc.members.count)):
                node = self.fleet[candidates.pop()]
                node.role = b.role
                node.spec = b
                if b.role == "equivocator":
                    self.ledger.excluded.add(node.idx)

    def run(self) -> RunRecord:
        """Run the scenario to its end; return what it left (see :class:`RunRecord`)."""
        for node in self.fleet:
            if node.founder:
                self.driver.start(node, fresh=True)
        self.workload.schedule()
        self.observer.schedule()
        self.checks.schedule()
        self.faults.schedule()
        self.governance.schedule()
        self.after_match.schedule()
        self.alerts.schedule()
        self.clock.run(self.progress)
        self.checks.final()
        self.observer.check_catch_up()
        if self.progress is not None:
            self.progress(1.0)
        return self.record()

    def record(self) -> RunRecord:
        """The run as it stands (the end of it, once ``run`` has returned)."""
        fleet = self.fleet
        ledger = self.ledger
        by_id = fleet.by_id
        holders: dict[bytes, set[int]] = {}
        for n in fleet:
            for h in n.holds:
                holders.setdefault(h, set()).add(n.idx)
        nodes = tuple(
            NodeRecord(
                idx=n.idx,
                name=n.name,
                role=n.role,
                admin=n.admin,
                founder=n.founder,
                started=n.started,
                up=n.up,
                removed=n.removed_at is not None,
                joined_at=n.joined_at,
                bytes_sent=n.bytes_sent,
                bad_items_sent=0 if n.engine is None else n.engine.sent_bad,
                frozen_feeds=frozenset(by_id[MemberId(p.log)] for p in n.store.fork_proofs()),
                refused_as_revoked=0
                if n.feeds is None
                else n.feeds.stats.rejected.get("revoked", 0),
                epochs=tuple(sorted(n.keys)),
                charter_version=0 if n.chain is None else n.chain.current.version,
            )
            for n in fleet
        )
        entries = tuple(
            EntryRecord(
                author=r.author,
                seq=r.seq,
                t=r.t,
                ops=len(r.ops),
                valid=r.valid,
                twin=r.twin,
                republished=r.republished,
                held=r.held,
                held_at_end=frozenset(holders.get(r.hash, ())),
            )
            for r in ledger.entries
        )
        return RunRecord(
            scenario=self.sc,
            end_ms=self.clock.end,
            events=self.clock.events,
            sample_ms=self.observer.sample_ms,
            stop_reports_ms=self.workload.stop_ms,
            nodes=nodes,
            entries=entries,
            identifiers_in_truth=len(ledger.by_value),
            tokens_in_truth=ledger.tokens_in_truth(),
            lost_entries=ledger.lost_entries,
            samples=tuple(self.observer.samples),
            observations=self.observer.record(),
            queries=self.checks.record(),
            governance=self.governance.record(),
            faults=self.faults.record(),
            alerts=self.alerts.record(),
            after_match=self.after_match.record(),
            pushed=self.workload.pushed,
        )


def _policy(sc: Scenario) -> DataPolicy | None:
    """The genesis charter's data policy: the default one (None), unless the scenario says."""
    p = sc.policy
    if p == PolicySpec():
        return None
    return DataPolicy(
        max_disputes_per_day=p.max_disputes_per_day,
        max_appeals_per_day=p.max_appeals_per_day,
        urgent_categories=DEFAULT_URGENT_CATEGORIES
        if p.urgent_categories is None
        else frozenset(p.urgent_categories),
    )
