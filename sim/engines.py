"""The engines the simulator runs: the real gossip engine, and misbehaving members.

Every node runs :class:`protocol.gossip.GossipEngine` — the engine the node
runs, not a model of it — as :class:`SimEngine`, which adds nothing but the
constructor the simulator calls and a count of the bad items a misbehaving
subclass sent. :class:`ObservedFeeds` reports entries refused as duplicates,
so that a replayer can be told from an honest relay.

The misbehaving members subclass the engine and change only what they send,
through the engine's public hook for the entries it offers a peer
(:meth:`~protocol.gossip.GossipEngine.outgoing_entries`), reading what the
engine knows of the peer through :meth:`~protocol.gossip.GossipEngine.peer_view`.
Everything they send is real signed data, and every node that receives it
decides with the real validation:

=================  ===========================================================
forger             slips entries into its messages that claim another member's
                   feed (the next seq, the right prev) but carry the forger's
                   own signature over the victim's key id: ``bad_signature``
equivocator        signs a second, different entry for the same seq of its
                   own feed and sends it to half of its peers: a fork
policy_violator    signs entries of its own that break the charter's data
                   policy (unknown category, over-long TTL, severity 9, a kind
                   the policy does not allow): ``policy``
replayer           re-sends old entries its peers already hold, preferring
                   adds that their author has since retracted
withholder         answers every exchange but never relays anyone's entries
                   but its own
disputer           disputes every token another member reports (DESIGN §15);
                   past the policy's ``max_disputes_per_day``, which its own
                   feeds enforce like every node's, it signs the entries anyway
                   and slips them into every message: ``over_quota``
appeal_spammer     files an appeal on every token another member reports, in
                   bulk, with a sealed case for the reporters; past
                   ``max_appeals_per_day`` as the disputer: ``over_quota``
=================  ===========================================================

The disputer's and the appeal spammer's ops within their quota are ordinary
entries of their own feeds (published by :mod:`sim.aftermatch`); the engine
only sends what is over the quota (:attr:`QuotaAbuser.overflow`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cbor2 import CBORTag

from contracts.policy import DAY_MS
from protocol import codec
from protocol.charter_chain import CharterChain
from protocol.entries import AddOp, Entry, Op, build_entry, decode_entry
from protocol.feeds import DUPLICATE, Feeds, Offer
from protocol.gossip import GossipEngine
from protocol.keys import MemberId, MemberKey
from protocol.store import FeedStore
from sim.scenario import GossipSpec

__all__ = [
    "ENGINE_CLASSES",
    "AppealSpammer",
    "Attack",
    "Disputer",
    "Equivocator",
    "Forger",
    "ObservedFeeds",
    "PolicyViolator",
    "QuotaAbuser",
    "Replayer",
    "SimEngine",
    "Withholder",
    "forge_entry",
]


class ObservedFeeds(Feeds):
    """:class:`protocol.feeds.Feeds` that reports each duplicate it refuses."""

    def __init__(
        self,
        store: FeedStore,
        chain: CharterChain,
        on_duplicate: Callable[[MemberId, int], None],
    ) -> None:
        super().__init__(store, chain)
        self.on_duplicate = on_duplicate

    def offer(self, raw: bytes, now: int) -> Offer:
        offer = super().offer(raw, now)
        if offer.status == DUPLICATE and offer.log is not None and offer.seq is not None:
            self.on_duplicate(offer.log, offer.seq)
        return offer


@dataclass(frozen=True, slots=True)
class Attack:
    """What a misbehaving engine is given: its own randomness and what the run lends it.

    ``frame_tokens`` are (kind, token) pairs nobody reports (a forger and a
    violator try to plant them); ``retracted_adds`` is the run's live list of
    (log, seq) of adds their authors have since retracted (a replayer prefers
    them); ``twin_ops(n)`` makes ``n`` fresh ops for an equivocator's twin entry.
    """

    rng: random.Random
    per_message: int
    every: int = 1
    frame_tokens: Sequence[tuple[str, bytes]] = ()
    retracted_adds: Sequence[tuple[MemberId, int]] = ()
    twin_ops: Callable[[int], list[AddOp]] | None = None


class SimEngine(GossipEngine):
    """The real engine, as the simulator builds it; an honest member's engine."""

    role = "honest"

    def __init__(
        self,
        key: MemberKey,
        feeds: Feeds,
        *,
        rng: random.Random,
        now: int,
        gossip: GossipSpec,
        attack: Attack | None = None,
    ) -> None:
        super().__init__(
            key,
            feeds,
            rng=rng,
            now=now,
            interval_ms=gossip.interval_ms,
            fanout=gossip.fanout,
            frame_bytes=gossip.frame_bytes,
            timeout_ms=gossip.timeout_ms,
        )
        self.attack = attack
        #: forged, invalid or replayed entries sent (a withholder: entries withheld)
        self.sent_bad = 0

    def known_heads(self, peer: MemberId) -> Mapping[MemberId, tuple[int, bytes]]:
        """The peer's heads as it last told them (empty while unknown)."""
        view = self.peer_view(peer)
        return {} if view is None or view.heads is None else view.heads


class _Misbehaving(SimEngine):
    """Base of the misbehaving engines: they must be given an :class:`Attack`."""

    @property
    def plan(self) -> Attack:
        assert self.attack is not None, f"a {self.role} engine needs an Attack"
        return self.attack


def forge_entry(
    forger: MemberKey,
    victim: MemberId,
    *,
    seq: int,
    prev: bytes | None,
    ts: int,
    cv: int,
    ops: Sequence[Op],
) -> bytes:
    """A COSE_Sign1 entry for ``victim``'s feed (kid = victim) signed with ``forger``'s key."""
    payload = codec.dumps(
        {
            "v": 1,
            "log": victim,
            "seq": seq,
            "prev": prev,
            "ts": ts,
            "cv": cv,
            "ops": [op.to_map() for op in ops],
        }
    )
    protected = codec.dumps({1: -8, 4: victim})
    sig = forger.sign(codec.dumps(["Signature1", protected, b"", payload]))
    return codec.dumps(CBORTag(18, [protected, {}, payload, sig]))


class Forger(_Misbehaving):
    """Frames innocent identifiers in other members' names, with its own signature."""

    role = "forger"

    def outgoing_entries(
        self, peer: MemberId, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        plan = self.plan
        known = self.known_heads(peer)
        victims = sorted(log for log in known if log != self.me)
        if not victims or not plan.frame_tokens:
            return entries, more
        for _ in range(plan.per_message):
            victim = plan.rng.choice(victims)
            seq, head = known[victim]
            kind, tok = plan.rng.choice(plan.frame_tokens)
            op = AddOp(tok, kind, 1, "telecom_fraud", 5, now + 30 * DAY_MS)
            cv = self.chain.current.version
            entries.append(
                forge_entry(self.key, victim, seq=seq + 1, prev=head, ts=now, cv=cv, ops=[op])
            )
            self.sent_bad += 1
        return entries, more


class PolicyViolator(_Misbehaving):
    """Signs entries of its own that the charter's data policy forbids."""

    role = "policy_violator"
    variant = 0  # which rule the next bad op breaks

    def _bad_op(self, now: int) -> AddOp:
        kind, tok = self.plan.rng.choice(self.plan.frame_tokens)
        v = self.variant % 4
        self.variant += 1
        if v == 0:  # a category the taxonomy does not know
            return AddOp(tok, kind, 1, "crypto_scam", 3, now + DAY_MS)
        if v == 1:  # over the category's maximum TTL (promotion_abuse: 180 days)
            return AddOp(tok, kind, 1, "promotion_abuse", 3, now + 400 * DAY_MS)
        if v == 2:  # severity out of 1..5
            return AddOp(tok, kind, 1, "money_mule", 9, now + DAY_MS)
        return AddOp(tok, "passport", 1, "money_mule", 3, now + DAY_MS)  # unknown kind

    def outgoing_entries(
        self, peer: MemberId, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        head = self.store.head(self.me)
        for _ in range(self.plan.per_message):
            e = build_entry(
                self.key,
                seq=1 if head is None else head.seq + 1,
                prev=None if head is None else head.hash,
                ts=now if head is None else max(now, head.ts),
                cv=self.chain.current.version,
                ops=[self._bad_op(now)],
            )
            entries.append(e.raw)
            self.sent_bad += 1
        return entries, more


class Replayer(_Misbehaving):
    """Re-sends entries the peer already holds, retracted adds first."""

    role = "replayer"

    def outgoing_entries(
        self, peer: MemberId, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        plan = self.plan
        known = self.known_heads(peer)
        if not known:
            return entries, more
        held = [
            (log, seq) for log, seq in plan.retracted_adds if known.get(log, (0, b""))[0] >= seq
        ]
        logs = sorted(known)
        for i in range(plan.per_message):
            if held and i % 2 == 0:
                log, seq = plan.rng.choice(held)
            else:
                log = plan.rng.choice(logs)
                seq = plan.rng.randint(1, known[log][0])
            raw = self.store.entry(log, seq)
            if raw is not None:
                entries.append(raw)
                self.sent_bad += 1
        return entries, more


class Withholder(_Misbehaving):
    """Answers every exchange but relays only its own entries."""

    role = "withholder"

    def outgoing_entries(
        self, peer: MemberId, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        mine = [raw for raw in entries if decode_entry(raw).log == self.me]
        self.sent_bad += len(entries) - len(mine)  # here: entries withheld
        return mine, more and bool(mine)


class Equivocator(_Misbehaving):
    """Signs two entries for one seq of its feed; each half of its peers gets one of them."""

    role = "equivocator"

    def __init__(
        self,
        key: MemberKey,
        feeds: Feeds,
        *,
        rng: random.Random,
        now: int,
        gossip: GossipSpec,
        attack: Attack | None = None,
    ) -> None:
        super().__init__(key, feeds, rng=rng, now=now, gossip=gossip, attack=attack)
        self.twins: dict[bytes, bytes] = {}  # hash of the entry kept -> raw of its twin

    def make_twin(self, entry: Entry) -> Entry | None:
        """After publishing ``entry``: sign a different entry with the same seq and prev."""
        plan = self.plan
        if entry.seq % plan.every or plan.twin_ops is None:
            return None
        twin = build_entry(
            self.key,
            seq=entry.seq,
            prev=entry.prev,
            ts=entry.ts,
            cv=entry.cv,
            ops=plan.twin_ops(len(entry.ops)),
        )
        self.twins[entry.hash] = twin.raw
        return twin

    @staticmethod
    def _other_half(peer: MemberId) -> bool:
        return peer[-1] & 1 == 1

    def outgoing_entries(
        self, peer: MemberId, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        if self.twins and self._other_half(peer):
            swapped = []
            for raw in entries:
                twin = self.twins.get(codec.obj_hash(raw))
                if twin is not None:
                    self.sent_bad += 1
                swapped.append(twin or raw)
            entries = swapped
        return entries, more


class QuotaAbuser(_Misbehaving):
    """Sends the ops its own feeds refused as over the policy's quota, signed anyway.

    Each message that carries entries gets ``per_message`` entries, each the next seq
    of its feed (chained to its head, not kept: honest nodes refuse them, so its feed
    goes on from its head), carrying the next ``max_ops`` ops of :attr:`overflow`.
    """

    def __init__(
        self,
        key: MemberKey,
        feeds: Feeds,
        *,
        rng: random.Random,
        now: int,
        gossip: GossipSpec,
        attack: Attack | None = None,
    ) -> None:
        super().__init__(key, feeds, rng=rng, now=now, gossip=gossip, attack=attack)
        #: ops over the quota, in the order it tried to publish them
        self.overflow: list[Op] = []
        self._cursor = 0

    def outgoing_entries(
        self, peer: MemberId, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        overflow = self.overflow
        if not overflow:
            return entries, more
        head = self.store.head(self.me)
        step = self.chain.current.policy.max_ops
        for _ in range(self.plan.per_message):
            if self._cursor >= len(overflow):
                self._cursor = 0
            ops = overflow[self._cursor : self._cursor + step]
            self._cursor += len(ops)
            e = build_entry(
                self.key,
                seq=1 if head is None else head.seq + 1,
                prev=None if head is None else head.hash,
                ts=now if head is None else max(now, head.ts),
                cv=self.chain.current.version,
                ops=ops,
            )
            entries.append(e.raw)
            self.sent_bad += 1
        return entries, more


class Disputer(QuotaAbuser):
    """Disputes every token another member reports."""

    role = "disputer"


class AppealSpammer(QuotaAbuser):
    """Files an appeal on every token another member reports, in bulk."""

    role = "appeal_spammer"


ENGINE_CLASSES: dict[str, type[SimEngine]] = {
    "honest": SimEngine,
    "forger": Forger,
    "equivocator": Equivocator,
    "policy_violator": PolicyViolator,
    "replayer": Replayer,
    "withholder": Withholder,
    "disputer": Disputer,
    "appeal_spammer": AppealSpammer,
}
