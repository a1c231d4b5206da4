"""Faults on the scenario's timeline: partitions, crashes, churn, slow links, message loss.

Crashes and churn take honest, non-admin members that are up and not removed
(admins stay up so that governance has someone to act). A node restarted
with its state kept starts a new engine over its store; one restarted with its
state lost starts from the genesis: entries of its own feed that no other node
holds are gone for good (they leave the ground truth: no node can answer from
them), and its platforms report again only once the node holds its own feed
back up to what others hold — publishing from an empty store would sign a
second seq 1, a fork of its own feed (see docs/simulator.md).
"""

from __future__ import annotations

import random

from sim.clock import Clock
from sim.driver import Driver
from sim.ledger import Ledger
from sim.network import Network
from sim.nodes import Fleet, SimNode
from sim.observe import Observer
from sim.record import FaultRecord, PartitionRecord
from sim.scenario import Churn, Crash, Fault, LinkLoss, Partition, Scenario, SlowLinks, count_nodes
from sim.workload import Workload

__all__ = ["Faults"]


class Faults:
    """Schedules the scenario's faults and carries them out."""

    def __init__(
        self,
        sc: Scenario,
        clock: Clock,
        fleet: Fleet,
        net: Network,
        driver: Driver,
        ledger: Ledger,
        workload: Workload,
        observer: Observer,
    ) -> None:
        self.sc = sc
        self.clock = clock
        self.fleet = fleet
        self.net = net
        self.driver = driver
        self.ledger = ledger
        self.workload = workload
        self.observer = observer
        self.rng = random.Random(f"{sc.seed}:faults")
        self.timeline: list[tuple[float, str]] = []
        self.partitions: list[PartitionRecord] = []

    def _log(self, what: str) -> None:
        self.timeline.append((round(self.clock.t / 1000.0, 3), what))

    def schedule(self) -> None:
        for f in self.sc.faults:
            self._schedule(f)

    def _schedule(self, f: Fault) -> None:
        at = self.clock.at
        if isinstance(f, Partition):
            at(f.at_s * 1000.0, self._partition, f)
            if f.heal_s is not None:
                at(f.heal_s * 1000.0, self._heal, f)
        elif isinstance(f, Crash):
            at(f.at_s * 1000.0, self._crash, f)
        elif isinstance(f, Churn):
            at(f.from_s * 1000.0, self._churn, f)
        elif isinstance(f, SlowLinks):
            at(f.from_s * 1000.0, self._slow, f)
        elif isinstance(f, LinkLoss):
            at(f.from_s * 1000.0, self._loss, f, True)
            if f.to_s is not None:
                at(f.to_s * 1000.0, self._loss, f, False)

    # -- partitions --------------------------------------------------------------------------

    def _partition(self, f: Partition) -> None:
        members = [n.idx for n in self.fleet.started()]
        self.rng.shuffle(members)
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
        sizes = tuple(sum(1 for v in groups.values() if v == g) for g in range(len(f.groups)))
        self.partitions.append(PartitionRecord(f.at_s, f.heal_s, groups, sizes))
        self._log(f"partition into groups of {list(sizes)}")

    def _heal(self, f: Partition) -> None:
        self.net.groups = None
        self._log("partition healed")

    # -- crashes, churn and restarts -------------------------------------------------------------

    def _crash(self, f: Crash) -> None:
        cands = self.fleet.crash_candidates()
        chosen = self.rng.sample(cands, min(count_nodes(f.nodes, len(self.fleet)), len(cands)))
        for node in chosen:
            self.driver.crash(node)
            if f.restart_s is not None:
                self.clock.at(f.restart_s * 1000.0, self._restart, node, f.state == "lost")
        self._log(f"crash of {len(chosen)} node(s)" + ("" if f.restart_s else ", for good"))

    def _churn(self, f: Churn) -> None:
        clock = self.clock
        if clock.t >= f.to_s * 1000.0:
            return
        cands = self.fleet.crash_candidates()
        rng = self.rng
        if cands:
            node = rng.choice(cands)
            self.driver.crash(node)
            down = rng.uniform(*f.down_s) * 1000.0
            lost = rng.random() < f.lost_state
            clock.at(clock.t + down, self._restart, node, lost)
        if f.per_min > 0:
            clock.at(clock.t + rng.expovariate(f.per_min / 60_000.0), self._churn, f)

    def _restart(self, node: SimNode, lost: bool) -> None:
        if node.up:
            return
        if lost:
            self._lose_state(node)
        self.driver.start(node, fresh=lost)
        self.observer.track_catch_up(node, "restart, state lost" if lost else "restart, state kept")

    def _lose_state(self, node: SimNode) -> None:
        """``node`` comes back without its store (see the module docstring)."""
        others = [n for n in self.fleet if n is not node and n.started]
        kept = 0
        for r in self.ledger.entries:
            if r.author != node.idx or r.twin:
                continue
            if any(r.hash in n.holds for n in others):
                kept = max(kept, r.seq)
        self.ledger.lose_after(node.idx, kept, self.fleet)
        node.resync_seq = kept
        self.workload.forget_after(node, kept)

    # -- links ---------------------------------------------------------------------------------

    def _slow(self, f: SlowLinks) -> None:
        started = [n.idx for n in self.fleet.started()]
        chosen = self.rng.sample(started, min(count_nodes(f.nodes, len(started)), len(started)))
        for i in chosen:
            self.net.slow[i] = (f.extra_latency_ms, f.bandwidth_kbps)
        self._log(f"slow links at {len(chosen)} node(s)")
        if f.to_s is not None:
            self.clock.at(f.to_s * 1000.0, self._unslow, chosen)

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

    def record(self) -> FaultRecord:
        return FaultRecord(timeline=tuple(self.timeline), partitions=tuple(self.partitions))
