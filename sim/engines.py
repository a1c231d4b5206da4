"""The engines the simulator runs: the real gossip engine, observed; and misbehaving members.

Every node runs :class:`protocol.gossip.GossipEngine` — the engine the node
runs, not a model of it. :class:`ObservedEngine` adds nothing but read-only
questions the simulator's detectors ask (what a peer last told of its heads),
and :class:`ObservedFeeds` reports entries refused as duplicates, with the
peer they came from, so that a replayer can be told from an honest relay.

The misbehaving members subclass the engine and change only what they send;
everything they send is real signed data, and every node that receives it
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
=================  ===========================================================

The engine hooks used here (``_entries_for``, ``_peers``) are the engine's
private parts; docs/simulator.md lists the public hooks the simulator would
rather have.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from cbor2 import CBORTag

from contracts.policy import DAY_MS
from protocol import codec
from protocol.entries import AddOp, Entry, Op, build_entry, decode_entry
from protocol.feeds import DUPLICATE, Feeds, Offer
from protocol.gossip import GossipEngine
from protocol.keys import MemberId, MemberKey

__all__ = [
    "ENGINE_CLASSES",
    "Equivocator",
    "Forger",
    "ObservedEngine",
    "ObservedFeeds",
    "PolicyViolator",
    "Replayer",
    "Withholder",
    "forge_entry",
]


class ObservedFeeds(Feeds):
    """:class:`protocol.feeds.Feeds` that reports each duplicate it refuses."""

    def __init__(
        self, store: Any, chain: Any, on_duplicate: Callable[[MemberId, int, int], None]
    ) -> None:
        super().__init__(store, chain)
        self.on_duplicate = on_duplicate

    def offer(self, raw: bytes, now: int) -> Offer:
        offer = super().offer(raw, now)
        if offer.status == DUPLICATE and offer.log is not None and offer.seq is not None:
            self.on_duplicate(offer.log, offer.seq, now)
        return offer


class ObservedEngine(GossipEngine):
    """The real engine plus read-only questions for the simulator's detectors."""

    role = "honest"

    def peer_heads(self, peer: MemberId) -> dict[MemberId, tuple[int, bytes]] | None:
        """The peer's feed heads as it last told us (None: not known). Do not modify."""
        p = self._peers.get(peer)
        return None if p is None else p.known

    def in_sync_with(self, peer: MemberId) -> bool:
        """Whether the peer's heads, as last told, are exactly ours (digests equal)."""
        p = self._peers.get(peer)
        return p is not None and p.known is not None and p.known_dig == self._dig


class _Misbehaving(ObservedEngine):
    """Base of the misbehaving engines: remembers who it is talking to, and when."""

    def __init__(self, *args: Any, attack_rng: random.Random, per_message: int, **kw: Any):
        super().__init__(*args, **kw)
        self.attack_rng = attack_rng
        self.per_message = per_message
        self.talking_to: MemberId | None = None
        self.now = 0
        self.sent_bad = 0  # forged, invalid or replayed entries sent

    def receive(self, peer: MemberId, data: bytes, now: int) -> bytes | None:
        self.talking_to, self.now = peer, now
        try:
            return super().receive(peer, data, now)
        finally:
            self.talking_to = None

    def _known(self, p: Any) -> dict[MemberId, tuple[int, bytes]]:
        known: dict[MemberId, tuple[int, bytes]] | None = p.known
        return known or {}


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

    def __init__(self, *args: Any, frame_tokens: Sequence[tuple[str, bytes]], **kw: Any):
        super().__init__(*args, **kw)
        self.frame_tokens = frame_tokens

    def _entries_for(self, p: Any, budget: int) -> tuple[list[bytes], bool]:
        out, more = super()._entries_for(p, budget)
        victims = sorted(log for log in self._known(p) if log != self.me)
        if not victims or not self.frame_tokens:
            return out, more
        for _ in range(self.per_message):
            victim = self.attack_rng.choice(victims)
            seq, head = self._known(p)[victim]
            kind, tok = self.attack_rng.choice(self.frame_tokens)
            op = AddOp(tok, kind, 1, "telecom_fraud", 5, self.now + 30 * DAY_MS)
            cv = self.chain.current.version
            out.append(
                forge_entry(self.key, victim, seq=seq + 1, prev=head, ts=self.now, cv=cv, ops=[op])
            )
            self.sent_bad += 1
        return out, more


class PolicyViolator(_Misbehaving):
    """Signs entries of its own that the charter's data policy forbids."""

    role = "policy_violator"

    def __init__(self, *args: Any, frame_tokens: Sequence[tuple[str, bytes]], **kw: Any):
        super().__init__(*args, **kw)
        self.frame_tokens = frame_tokens
        self._variant = 0

    def _bad_op(self) -> AddOp:
        kind, tok = self.attack_rng.choice(self.frame_tokens)
        v = self._variant % 4
        self._variant += 1
        if v == 0:  # a category the taxonomy does not know
            return AddOp(tok, kind, 1, "crypto_scam", 3, self.now + DAY_MS)
        if v == 1:  # over the category's maximum TTL (promotion_abuse: 180 days)
            return AddOp(tok, kind, 1, "promotion_abuse", 3, self.now + 400 * DAY_MS)
        if v == 2:  # severity out of 1..5
            return AddOp(tok, kind, 1, "money_mule", 9, self.now + DAY_MS)
        return AddOp(tok, "passport", 1, "money_mule", 3, self.now + DAY_MS)  # unknown kind

    def _entries_for(self, p: Any, budget: int) -> tuple[list[bytes], bool]:
        out, more = super()._entries_for(p, budget)
        head = self.store.head(self.me)
        for _ in range(self.per_message):
            e = build_entry(
                self.key,
                seq=1 if head is None else head.seq + 1,
                prev=None if head is None else head.hash,
                ts=self.now if head is None else max(self.now, head.ts),
                cv=self.chain.current.version,
                ops=[self._bad_op()],
            )
            out.append(e.raw)
            self.sent_bad += 1
        return out, more


class Replayer(_Misbehaving):
    """Re-sends entries the peer already holds, retracted adds first."""

    role = "replayer"

    def __init__(self, *args: Any, retracted_adds: list[tuple[MemberId, int]], **kw: Any):
        super().__init__(*args, **kw)
        self.retracted_adds = retracted_adds

    def _entries_for(self, p: Any, budget: int) -> tuple[list[bytes], bool]:
        out, more = super()._entries_for(p, budget)
        known = self._known(p)
        if not known:
            return out, more
        held = [
            (log, seq) for log, seq in self.retracted_adds if known.get(log, (0, b""))[0] >= seq
        ]
        logs = sorted(known)
        for i in range(self.per_message):
            if held and i % 2 == 0:
                log, seq = self.attack_rng.choice(held)
            else:
                log = self.attack_rng.choice(logs)
                seq = self.attack_rng.randint(1, known[log][0])
            raw = self.store.entry(log, seq)
            if raw is not None:
                out.append(raw)
                self.sent_bad += 1
        return out, more


class Withholder(_Misbehaving):
    """Answers every exchange but relays only its own entries."""

    role = "withholder"

    def _entries_for(self, p: Any, budget: int) -> tuple[list[bytes], bool]:
        out, more = super()._entries_for(p, budget)
        mine = [raw for raw in out if decode_entry(raw).log == self.me]
        self.sent_bad += len(out) - len(mine)  # here: entries withheld
        return mine, more and bool(mine)


class Equivocator(_Misbehaving):
    """Signs two entries for one seq of its feed; each half of its peers gets one of them."""

    role = "equivocator"

    def __init__(
        self, *args: Any, every: int, twin_tokens: Callable[[int], list[AddOp]], **kw: Any
    ):
        super().__init__(*args, **kw)
        self.every = every
        self.twin_tokens = twin_tokens
        self.twins: dict[bytes, bytes] = {}  # hash of the entry kept -> raw of its twin

    def make_twin(self, entry: Entry) -> Entry | None:
        """After publishing ``entry``: sign a different entry with the same seq and prev."""
        if entry.seq % self.every:
            return None
        twin = build_entry(
            self.key,
            seq=entry.seq,
            prev=entry.prev,
            ts=entry.ts,
            cv=entry.cv,
            ops=self.twin_tokens(len(entry.ops)),
        )
        self.twins[entry.hash] = twin.raw
        return twin

    def _other_half(self, peer: MemberId | None) -> bool:
        return peer is not None and peer[-1] & 1 == 1

    def _entries_for(self, p: Any, budget: int) -> tuple[list[bytes], bool]:
        out, more = super()._entries_for(p, budget)
        if self.twins and self._other_half(self.talking_to):
            swapped = []
            for raw in out:
                twin = self.twins.get(codec.obj_hash(raw))
                if twin is not None:
                    self.sent_bad += 1
                swapped.append(twin or raw)
            out = swapped
        return out, more


ENGINE_CLASSES: dict[str, type[ObservedEngine]] = {
    "honest": ObservedEngine,
    "forger": Forger,
    "equivocator": Equivocator,
    "policy_violator": PolicyViolator,
    "replayer": Replayer,
    "withholder": Withholder,
}
