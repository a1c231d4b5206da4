"""Governance in the simulation: the node's own rules, through the admins' engines.

Every charter change is drafted by :mod:`protocol.governance` — the functions
the node's administration calls — and travels as the node's does: the
proposing admin's engine signs it (:meth:`~protocol.gossip.GossipEngine.propose`)
and gossips it as a proposal (a :class:`~protocol.proposals.ProposalBook`
item); the admins whose turn it is sign it as soon as their node has received
it (:meth:`~protocol.gossip.GossipEngine.sign_proposal`, what ``riskmesh admin
sign`` does) and their nodes gossip the signatures on; whichever node first
holds a quorum of signatures appends the version, which then spreads like any
charter version. Nothing is signed out of band.

**Admins sign in turn**: the proposer and the next ``quorum - 1`` admins (by
index, after the proposer) sign, no more. A version's hash covers its
signatures, so two admins who each complete a quorum of the same proposal
(say {A, B} and {A, C} of three) make two different versions with the same
number: the consortium forks at that version (``conflicting_version``) and
every later version is refused (``wrong_prev``) where the other copy is held.
The protocol does not prevent it; an operating rule does (docs/simulator.md,
Findings). :attr:`Governance.in_turn` = False lets every admin sign what it
receives, to show the fork.

A scenario's change covers ``count`` members; the drafting functions change
one member per version, as ``riskmesh admin propose`` does, so a change is a
sequence of proposals, each made once the previous one is final, by the admin
whose node holds the newest version.

* **Onboarding** (:func:`~protocol.governance.draft_add_member`): once the
  version is final, the newcomer's node starts from the genesis alone, and
  every admin node that holds the version seals to it every live epoch key it
  holds (:func:`~protocol.governance.plan_grants`); the grants travel by gossip.
* **Removal** (:func:`~protocol.governance.draft_remove_member`): the member is
  revoked after its feed head as the proposer sees it (``until_seq``) and, in
  the same version, a new key epoch opens, whose key the proposer drew. The
  member's platforms stop reporting when the removal is decided. Once the
  version is final the proposer holds the new key and grants it to every
  remaining member (``plan_grants`` again); each node then republishes its
  live reports under the new epoch (:meth:`sim.workload.Workload.republish`),
  and reports under it from then on.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from contracts.charter import Charter
from protocol import governance as gov
from protocol.gossip import CharterAdvanced, Event, KeysGranted, ProposalUpdated
from protocol.grants import make_grant
from protocol.keys import MemberId
from protocol.proposals import ProposalRejected
from sim.clock import Clock
from sim.consortium import Consortium
from sim.driver import Driver
from sim.ledger import Ledger
from sim.nodes import Fleet, SimNode
from sim.observe import Observer
from sim.record import ChangeRecord, GovernanceRecord, VersionRecord
from sim.scenario import GovernanceSpec, Scenario
from sim.workload import Workload, live_epochs

__all__ = ["Governance"]

#: an admin that finds no admin up to propose tries again this much later (ms)
RETRY_MS = 1000.0
#: proposal statuses an admin's node reports while the proposal still needs signatures
_TO_SIGN = frozenset({"new", "merged", "waiting"})


@dataclass(slots=True)
class _Change:
    kind: str
    t: float
    members: list[int]
    versions: list[int] = field(default_factory=list)
    until_seq: dict[int, int] = field(default_factory=dict)
    new_epochs: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Open:
    """The proposal in flight: one member added or removed."""

    change: _Change
    member: int
    pid: str
    version: int
    proposer: int
    proposed_t: float
    prev: Charter
    charter: Charter
    new_epoch: tuple[int, bytes] | None


@dataclass(slots=True)
class _Version:
    version: int
    changes: tuple[str, ...]
    proposed_t: float
    final_t: float
    proposer: int
    signers: tuple[int, ...]
    new_epoch: int | None


class Governance:
    """Onboarding and removal through proposals, signatures, grants and rotation."""

    def __init__(
        self,
        sc: Scenario,
        clock: Clock,
        fleet: Fleet,
        driver: Driver,
        ledger: Ledger,
        workload: Workload,
        observer: Observer,
        cons: Consortium,
    ) -> None:
        self.sc = sc
        self.clock = clock
        self.fleet = fleet
        self.driver = driver
        self.ledger = ledger
        self.workload = workload
        self.observer = observer
        self.cons = cons
        self.rng = random.Random(f"{sc.seed}:governance")
        #: admins sign in turn, just a quorum of them (False: every admin signs what its
        #: node receives; two of them may then complete a quorum at once: see the docs)
        self.in_turn = True
        self._steps: deque[tuple[_Change, int]] = deque()
        self._open: _Open | None = None
        self._latest = 1  # the newest charter version made
        self._claimed: set[int] = set()  # members already in a change
        self._signing: set[tuple[int, str]] = set()
        self._signers: dict[str, frozenset[int]] = {}  # proposal -> the admins who sign it
        #: the key of an epoch a proposal opens, kept by its proposer until final
        self._pending_keys: dict[tuple[int, int], tuple[int, bytes]] = {}  # (node, v) -> key
        self.changes: list[_Change] = []
        self.versions: dict[int, _Version] = {}
        #: version -> node -> when the node had it
        self.charter_at: dict[int, dict[int, float]] = {}
        self.keys_at: dict[int, dict[int, float]] = {}
        self.first_keys_at: dict[int, float] = {}

    def schedule(self) -> None:
        for g in self.sc.governance:
            self.clock.at(g.at_s * 1000.0, self._on_change, g)

    # -- deciding a change ---------------------------------------------------------------------

    def _proposer(self) -> SimNode | None:
        """An admin node that is up and holds the newest charter version made (the first)."""
        for n in self.fleet.admins_up():
            assert n.chain is not None
            if n.chain.current.version >= self._latest:
                return n
        return None

    def _on_change(self, g: GovernanceSpec) -> None:
        admins = self.fleet.admins_up()
        if not admins:
            self.clock.at(self.clock.t + RETRY_MS, self._on_change, g)
            return
        admin = admins[0]
        assert admin.chain is not None
        t = self.clock.t
        if g.kind == "onboard":
            waiting = [n for n in self.fleet if not n.founder and not n.started]
            chosen = [n.idx for n in waiting if n.idx not in self._claimed][: g.count]
        else:
            cur = admin.chain.current
            cands = [
                n
                for n in self.fleet
                if n.started
                and n.honest
                and not n.admin
                and n.removed_at is None
                and n.idx not in self._claimed
                and cur.is_active(n.key.id)
            ]
            chosen = [n.idx for n in self.rng.sample(cands, min(g.count, len(cands)))]
            for i in chosen:  # its platforms stop reporting now
                self.fleet[i].removed_at = t
        change = _Change(g.kind, t, chosen)
        self.changes.append(change)
        self._claimed.update(chosen)
        self._steps.extend((change, i) for i in chosen)
        self._next()

    def _next(self) -> None:
        """Propose the next step, unless one is in flight or no admin node holds the newest
        version yet (then the next version an admin node appends calls this again)."""
        if self._open is not None or not self._steps:
            return
        admin = self._proposer()
        if admin is None:
            if not self.fleet.admins_up():
                self.clock.at(self.clock.t + RETRY_MS, self._next)
            return
        change, idx = self._steps.popleft()
        chain, engine = admin.chain, admin.engine
        assert chain is not None and engine is not None
        base = chain.current_version
        now = self.clock.now_ms
        member = self.fleet[idx]
        if change.kind == "onboard":
            draft = gov.draft_add_member(base, now, admin.key.id, self.cons.member(idx))
        else:
            head = admin.store.head(member.id)
            until = 0 if head is None else head.seq
            change.until_seq[idx] = until
            key = self.rng.randbytes(32)
            draft = gov.draft_remove_member(base, now, admin.key.id, member.key.id, until, key)
        offer = engine.propose(draft.charter, now)
        assert offer.proposal is not None
        version = draft.charter.version
        admins = sorted(self.fleet.by_id[MemberId(a)] for a in base.charter.admins())
        at = admins.index(admin.idx)
        turn = admins[at:] + admins[:at]
        if draft.new_epoch is not None:
            ep, key = draft.new_epoch
            self.ledger.add_epoch(ep, key)  # the ground truth knows every key
            self._pending_keys[(admin.idx, version)] = draft.new_epoch
            change.new_epochs.append(ep)
        self._open = _Open(
            change=change,
            member=idx,
            pid=offer.proposal.id,
            version=version,
            proposer=admin.idx,
            proposed_t=self.clock.t,
            prev=base.charter,
            charter=draft.charter,
            new_epoch=draft.new_epoch,
        )
        # who signs: the proposer and the next quorum - 1 admins (every admin if not in turn)
        self._signers[offer.proposal.id] = frozenset(
            turn[: base.charter.quorum_size()] if self.in_turn else turn
        )
        self.driver.drain(admin)
        self.driver.arm(admin)

    # -- what the engines report ---------------------------------------------------------------

    def on_event(self, node: SimNode, ev: Event) -> None:
        if isinstance(ev, CharterAdvanced):
            self._advanced(node, ev.version)
        elif isinstance(ev, KeysGranted):
            self._granted(node, ev.keys)
        elif (
            isinstance(ev, ProposalUpdated)
            and ev.status in _TO_SIGN
            and node.idx in self._signers.get(ev.id, ())
            and (node.idx, ev.id) not in self._signing
        ):
            self._signing.add((node.idx, ev.id))
            self.clock.at(self.clock.t, self._sign, node, ev.id)

    def after_drain(self, node: SimNode, sent_to: set[MemberId]) -> None:
        pass

    def on_message_refused(self, node: SimNode, sender: SimNode, reason: str) -> None:
        pass

    def _sign(self, node: SimNode, pid: str) -> None:
        """The admin's operator signs the proposal its node received (``admin sign``)."""
        engine, chain = node.engine, node.chain
        if not node.up or engine is None or chain is None:
            self._signing.discard((node.idx, pid))  # it may see the proposal again
            return
        p = engine.proposals.get(pid)
        if p is None or p.charter.version <= chain.current.version or node.key.id in p.signers:
            return
        try:
            engine.sign_proposal(pid, self.clock.now_ms)
        except ProposalRejected:
            return
        self.driver.drain(node)
        self.driver.arm(node)

    def _advanced(self, node: SimNode, version: int) -> None:
        t = self.clock.t
        self.charter_at.setdefault(version, {}).setdefault(node.idx, t)
        op = self._open
        if op is not None and op.version == version and version not in self.versions:
            self._final(node, op)
        elif node.admin and self._open is None and self._steps and version >= self._latest:
            self.clock.at(t, self._next)
        pending = self._pending_keys.pop((node.idx, version), None)
        if pending is not None:
            self._add_keys(node, {pending[0]: pending[1]})
        chain, engine = node.chain, node.engine
        assert chain is not None and engine is not None
        if node.admin:
            prev, new = chain.get(version - 1), chain.get(version)
            assert prev is not None and new is not None
            now = self.clock.now_ms
            for plan in gov.plan_grants(prev, new, node.key.id, node.keys):
                engine.add_grant(make_grant(node.key, plan.to, plan.keys, cv=version, ts=now))
        self._maybe_republish(node)

    def _final(self, node: SimNode, op: _Open) -> None:
        """The version is final (``node`` completed the quorum): carry the change out."""
        t = self.clock.t
        info = node.chain.version_info(op.version) if node.chain is not None else None
        assert info is not None
        by_id = self.fleet.by_id
        self.versions[op.version] = _Version(
            version=op.version,
            changes=tuple(gov.describe_changes(op.prev, op.charter)),
            proposed_t=op.proposed_t,
            final_t=t,
            proposer=op.proposer,
            signers=tuple(sorted(by_id[MemberId(s)] for s in info.signers)),
            new_epoch=None if op.new_epoch is None else op.new_epoch[0],
        )
        op.change.versions.append(op.version)
        self._latest = op.version
        member = self.fleet[op.member]
        if op.change.kind == "onboard":
            member.joined_at = t
            self.driver.start(member, fresh=True)
            self.observer.track_catch_up(member, "newcomer")
        else:
            self.ledger.remove_after(op.member, op.change.until_seq[op.member], self.fleet)
        self._open = None
        self.clock.at(t, self._next)

    def _granted(self, node: SimNode, keys: dict[int, bytes]) -> None:
        self.first_keys_at.setdefault(node.idx, self.clock.t)
        self._add_keys(node, keys)
        self._maybe_republish(node)

    def _add_keys(self, node: SimNode, keys: dict[int, bytes]) -> None:
        t = self.clock.t
        for ep, key in keys.items():
            node.keys[ep] = key
            self.keys_at.setdefault(ep, {}).setdefault(node.idx, t)

    def _maybe_republish(self, node: SimNode) -> None:
        """After a charter version or a key: republish if an older epoch may hold reports."""
        chain = node.chain
        assert chain is not None
        if chain.current.current_epoch() in node.keys and len(live_epochs(node)) > 1:
            self.clock.at(self.clock.t, self._republish, node)

    def _republish(self, node: SimNode) -> None:
        self.workload.republish(node)

    # -- the record ----------------------------------------------------------------------------

    def record(self) -> GovernanceRecord:
        versions = tuple(
            VersionRecord(
                version=v.version,
                changes=v.changes,
                proposed_t=v.proposed_t,
                final_t=v.final_t,
                proposer=v.proposer,
                signers=v.signers,
                held=self.charter_at.get(v.version, {}),
                new_epoch=v.new_epoch,
            )
            for v in sorted(self.versions.values(), key=lambda v: v.version)
        )
        changes = tuple(
            ChangeRecord(
                kind=c.kind,
                t=c.t,
                members=tuple(c.members),
                versions=tuple(c.versions),
                until_seq=c.until_seq,
                new_epochs=tuple(c.new_epochs),
            )
            for c in self.changes
        )
        return GovernanceRecord(
            versions=versions,
            changes=changes,
            keys_at=self.keys_at,
            first_keys_at=self.first_keys_at,
            republished={ep: (s[0], s[1]) for ep, s in sorted(self.workload.republished.items())},
        )
