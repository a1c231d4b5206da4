"""Accepting and publishing feed entries: the validation order of DESIGN §6.

:meth:`Feeds.offer` decides one entry, checking, cheapest first:

1. size limit (``too_large``) and strict decode (``decode``);
2. the feed is not frozen by a fork proof (``frozen``);
3. the charter version the entry cites (``cv``) is held — if not, the entry
   waits; the author is an active publisher under it (``not_member``), and not
   past the ``until_seq`` of a removal (``revoked``);
4. the author's signature (``bad_signature``);
5. ``seq`` is head+1 and ``prev`` is the head's hash (``bad_prev``); a later
   seq waits for the gap to fill; an earlier seq is a duplicate or, if it
   differs from what we hold, a fork proof;
6. ``ts`` not before the head's (``ts_before_head``) nor more than the allowed
   skew in the future (``ts_future``);
7. ``cv`` never decreases along a feed (``cv_decreased``), and an entry citing
   version n is not dated after version n+1's ``ts`` plus the skew
   (``cv_stale``);
8. every op within the cited version's policy: op count (``too_many_ops``),
   kind, category, severity, TTL, dispute reason, appeal decision
   (``policy``), a known epoch (``unknown_epoch``), no add of a warning-listed
   exact value (``warning_listed``: the token of a listed value under the
   op's epoch key; a node without that key yet keeps the entry waiting), a
   retract only of a token the same author added — or, with ``of``, saw,
   disputed or appealed (``retract_unknown``); the author's disputes and
   appeals within the policy's quotas per 24 hours (``over_quota``).

An entry is accepted whole or not at all; a refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from contracts.charter import Charter
from contracts.errors import EntryRejected, LocalProtocolError, PolicyViolation
from contracts.policy import DAY_MS
from protocol.charter_chain import CharterChain
from protocol.entries import (
    HARD_MAX_ENTRY_BYTES,
    AddOp,
    AppealDecidedOp,
    AppealOp,
    DisputeOp,
    Entry,
    Op,
    RetractOp,
    SeenOp,
    build_entry,
    decode_entry,
)
from protocol.forks import ForkProof, make_fork_proof
from protocol.keys import MemberId, MemberKey
from protocol.store import FeedStore

__all__ = ["MAX_HELD_PER_LOG", "Feeds", "ListedTokens", "Offer"]

#: The tokens of the warning-listed exact values under epoch ``ep`` for the
#: charter version an entry cites, or None when this node has no key for ``ep``
#: yet (the entry then waits, as for a charter version).
ListedTokens = Callable[[int, Charter], frozenset[bytes] | None]

#: Entries held per feed while waiting for a gap or a charter version.
MAX_HELD_PER_LOG = 4096

ACCEPTED = "accepted"
HELD = "held"
DUPLICATE = "duplicate"
REJECTED = "rejected"
FORK = "fork"


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """What became of one offered entry.

    ``status`` is ``accepted``, ``held``, ``duplicate``, ``rejected`` or ``fork``.
    ``accepted`` lists every entry appended as a result, including held
    entries the new one unblocked.
    """

    status: str
    reason: str | None = None
    message: str = ""
    log: MemberId | None = None
    seq: int | None = None
    accepted: tuple[Entry, ...] = ()
    fork: ForkProof | None = None
    held_for: str | None = None  # "gap", "charter" or "key"


class _NeedKey(Exception):
    """The entry adds a token under an epoch whose key this node does not hold yet."""


@dataclass(slots=True)
class FeedStatistics:
    accepted: int = 0
    held: int = 0
    duplicates: int = 0
    forks: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class Feeds:
    """Every member's feed as this node holds it, over a :class:`FeedStore`."""

    def __init__(self, store: FeedStore, chain: CharterChain) -> None:
        self.store = store
        self.chain = chain
        self.stats = FeedStatistics()
        #: Called with every entry appended, in order (the gossip engine and the
        #: node's index listen here).
        self.listeners: list[Callable[[Entry], None]] = []
        #: Called with every fork proof this node finds or is given, once.
        self.fork_listeners: list[Callable[[ForkProof], None]] = []
        #: The warning-listed tokens per epoch (see :data:`ListedTokens`); None: no check.
        self.listed: ListedTokens | None = None

    # -- publishing --------------------------------------------------------

    def publish(self, key: MemberKey, ops: Sequence[Op], now: int) -> Entry:
        """Sign ``ops`` as the next entry of ``key``'s feed and append it.

        The entry goes through the same validation as any peer's; a refusal is
        a LocalProtocolError (or PolicyViolation) and changes nothing.
        """
        head = self.store.head(key.id)
        charter = self.chain.current
        charter.policy.check_op_count(len(ops))
        entry = build_entry(
            key,
            seq=1 if head is None else head.seq + 1,
            prev=None if head is None else head.hash,
            ts=now if head is None else max(now, head.ts),
            cv=charter.version,
            ops=ops,
        )
        # our own entry, just built and signed: checked like any (chain, charter, policy)
        # but neither decoded again nor its signature verified again
        try:
            offer = self._offer(entry, now, own=True)
        except EntryRejected as e:
            offer = self._reject(e, entry)
        if offer.status != ACCEPTED:
            if offer.reason in ("policy", "warning_listed", "over_quota"):
                raise PolicyViolation(offer.reason, offer.message)
            raise LocalProtocolError(f"own entry refused ({offer.reason}): {offer.message}")
        return entry

    # -- accepting ---------------------------------------------------------

    def offer(self, raw: bytes, now: int) -> Offer:
        """Decide one entry received from anyone; see the module docstring."""
        try:
            entry = decode_entry(raw, max_bytes=self._max_bytes())
        except EntryRejected as e:
            return self._reject(e, None)
        return self.offer_entry(entry, now)

    def offer_entry(self, entry: Entry, now: int) -> Offer:
        try:
            return self._offer(entry, now)
        except EntryRejected as e:
            return self._reject(e, entry)

    def retry_held(self, now: int) -> list[Offer]:
        """Offer again every held entry whose charter version is now known."""
        results = []
        for log in self.store.held_logs():
            ready = [e for e in self.store.held(log) if self.chain.get(e.cv) is not None]
            for e in ready:
                self.store.unhold(e)
            for e in ready:
                results.append(self.offer_entry(e, now))
        return results

    def _max_bytes(self) -> int:
        return min(self.chain.current.policy.max_entry_bytes, HARD_MAX_ENTRY_BYTES)

    def _reject(self, e: EntryRejected, entry: Entry | None) -> Offer:
        r = self.stats.rejected
        r[e.reason] = r.get(e.reason, 0) + 1
        return Offer(
            status=REJECTED,
            reason=e.reason,
            message=e.message,
            log=None if entry is None else entry.log,
            seq=None if entry is None else entry.seq,
        )

    def _offer(self, entry: Entry, now: int, *, drain: bool = True, own: bool = False) -> Offer:
        store = self.store
        log = entry.log
        if store.is_frozen(log):
            raise EntryRejected("frozen", "this feed is frozen by a fork proof")
        charter = self.chain.get(entry.cv)
        if charter is None:
            if store.held_count(log) >= MAX_HELD_PER_LOG:
                raise EntryRejected("held_full", "too many entries waiting for this feed")
            store.hold(entry)
            self.stats.held += 1
            return Offer(status=HELD, held_for="charter", log=log, seq=entry.seq)
        if not charter.can_publish(log):
            raise EntryRejected(
                "not_member",
                f"author is not an active publisher under charter version {entry.cv}",
            )
        until = self.chain.revoked_until(log)
        if until is not None and entry.seq > until:
            raise EntryRejected(
                "revoked", f"author was removed; entries after seq {until} are refused"
            )
        if not own:
            entry.verify_signature()

        head = store.head(log)
        head_seq = 0 if head is None else head.seq
        if entry.seq <= head_seq:
            return self._seen_before(entry)
        if entry.seq > head_seq + 1:
            return self._hold_gap(entry)
        if entry.prev != (None if head is None else head.hash):
            raise EntryRejected("bad_prev", f"entry {entry.seq} does not chain to entry {head_seq}")
        try:
            self._check_body(
                entry, charter, head.ts if head else None, head.cv if head else None, now
            )
        except _NeedKey:
            if store.held_count(log) >= MAX_HELD_PER_LOG:
                raise EntryRejected("held_full", "too many entries waiting for this feed") from None
            store.hold(entry)
            self.stats.held += 1
            return Offer(status=HELD, held_for="key", log=log, seq=entry.seq)
        store.append(entry)
        self.stats.accepted += 1
        for listener in self.listeners:
            listener(entry)
        accepted = [entry]
        if drain:
            accepted.extend(self._drain_held(log, now))
        return Offer(status=ACCEPTED, log=log, seq=entry.seq, accepted=tuple(accepted))

    def _check_body(
        self, entry: Entry, charter: Charter, head_ts: int | None, head_cv: int | None, now: int
    ) -> None:
        policy = charter.policy
        skew = policy.clock_skew_ms
        if head_ts is not None and entry.ts < head_ts:
            raise EntryRejected("ts_before_head", "entry is dated before the one it follows")
        if entry.ts > now + skew:
            raise EntryRejected(
                "ts_future", "entry is dated further in the future than the skew allows"
            )
        if head_cv is not None and entry.cv < head_cv:
            raise EntryRejected(
                "cv_decreased", "entry cites an older charter version than the one before"
            )
        nxt = self.chain.get(entry.cv + 1)
        if nxt is not None and entry.ts > nxt.ts + skew:
            raise EntryRejected(
                "cv_stale",
                f"entry cites charter version {entry.cv} but is dated after version {entry.cv + 1}",
            )
        try:
            policy.check_op_count(len(entry.ops))
        except PolicyViolation as e:
            raise EntryRejected("too_many_ops", e.message) from None
        try:
            passed = self._adds_pass(entry, charter)
        except TypeError:  # a field of a type no decoder gives: the op-by-op check says
            passed = False
        if not passed:
            self._check_ops(entry, charter)

    def _adds_pass(self, entry: Entry, charter: Charter) -> bool:
        """True if ``entry`` holds adds alone and every one passes `_check_ops`'s checks,
        decided a kind-category-severity at a time and with whole-entry passes over the
        ops (most entries; a third of replicating's Python time op by op). False decides
        nothing: `_check_ops` then runs, and refuses with the reason and op number."""
        ops = entry.ops
        if not ops or any(type(op) is not AddOp for op in ops):
            return False
        adds = cast("Sequence[AddOp]", ops)
        policy, ts = charter.policy, entry.ts
        latest: dict[str, int] = {}
        for kind, cat, sev in {(op.kind, op.cat, op.sev) for op in adds}:
            if type(kind) is not str or type(cat) is not str or type(sev) is not int:
                return False
            try:
                policy.check_add(kind=kind, category=cat, severity=sev, exp=ts + 1, ts=ts)
            except PolicyViolation:
                return False
            latest[cat] = ts + policy.max_ttl_ms(cat)
        # exactly int: a bool expiry or severity is refused, as check_add refuses it (and
        # the set of triples above holds one of (k, c, 1) and (k, c, True): they are equal)
        if not all(
            type(op.exp) is int and type(op.sev) is int and ts < op.exp <= latest[op.cat]
            for op in adds
        ):
            return False
        epochs = charter.epoch_ids()
        eps = {op.ep for op in adds}
        if not all(ep in epochs for ep in eps):
            return False
        if self.listed is not None:
            for ep in eps:
                listed = self.listed(ep, charter)
                if listed is None or not listed.isdisjoint([op.tok for op in adds if op.ep == ep]):
                    return False
        return True

    def _check_ops(self, entry: Entry, charter: Charter) -> None:
        """Each op of ``entry`` against the policy, the charter's epochs, the warning list
        and what its author added and signalled before; EntryRejected names the op."""
        policy = charter.policy
        epochs = charter.epoch_ids()
        added_here: set[tuple[bytes, int]] = set()
        signaled_here: set[tuple[bytes, int, str]] = set()
        quota = {"dispute": 0, "appeal": 0}
        ts = entry.ts
        # (kind, category, severity) of an add the policy took in this entry -> the
        # latest expiry it allows: the same triple's next add needs only its expiry
        # checked (the triple's values are exactly str, str, int: a bool is no int here)
        allowed: dict[tuple[str, str, int], int] = {}
        listed_in: dict[int, frozenset[bytes]] = {}
        for i, op in enumerate(entry.ops):
            try:
                if isinstance(op, AddOp):
                    triple = (op.kind, op.cat, op.sev)
                    exact = type(op.kind) is str and type(op.cat) is str and type(op.sev) is int
                    latest = allowed.get(triple) if exact else None
                    exp = op.exp
                    if latest is None or type(exp) is not int or not ts < exp <= latest:
                        policy.check_add(
                            kind=op.kind, category=op.cat, severity=op.sev, exp=exp, ts=ts
                        )
                        if exact and latest is None:
                            allowed[triple] = ts + policy.max_ttl_ms(op.cat)
                elif isinstance(op, RetractOp):
                    policy.check_retract(kind=op.kind, reason=op.why)
                elif isinstance(op, SeenOp):
                    policy.check_signal(kind=op.kind, exp=op.exp, ts=entry.ts)
                elif isinstance(op, DisputeOp):
                    policy.check_signal(kind=op.kind, exp=op.exp, ts=entry.ts, why=op.why)
                elif isinstance(op, AppealOp):
                    policy.check_kind(op.kind)
                else:
                    policy.check_decision(op.decision)
            except PolicyViolation as e:
                raise EntryRejected("policy", f"op {i}: {e.message}") from None
            if isinstance(op, AppealDecidedOp):
                continue  # about an appeal id, not a token: it counts where it applies
            if op.ep not in epochs:
                raise EntryRejected("unknown_epoch", f"op {i}: epoch {op.ep} is not in the charter")
            if isinstance(op, AddOp):
                if self.listed is not None:
                    listed = listed_in.get(op.ep)
                    if listed is None:
                        listed = self.listed(op.ep, charter)
                        if listed is None:
                            raise _NeedKey
                        listed_in[op.ep] = listed
                    if op.tok in listed:
                        raise EntryRejected(
                            "warning_listed", f"op {i}: adds a warning-listed value"
                        )
                added_here.add((op.tok, op.ep))
            elif isinstance(op, RetractOp):
                if op.of is None:
                    if (op.tok, op.ep) not in added_here and not self.store.added(
                        entry.log, op.tok, op.ep
                    ):
                        raise EntryRejected(
                            "retract_unknown", f"op {i}: retracts a token this author never added"
                        )
                elif (op.tok, op.ep, op.of) not in signaled_here and not self.store.signaled(
                    entry.log, op.tok, op.ep, op.of
                ):
                    raise EntryRejected(
                        "retract_unknown", f"op {i}: retracts a {op.of} this author never made"
                    )
            else:
                what = "seen" if isinstance(op, SeenOp) else "dispute"
                if isinstance(op, AppealOp):
                    what = "appeal"
                signaled_here.add((op.tok, op.ep, what))
                if what in quota:
                    quota[what] += 1
        for what, n in quota.items():
            if not n:
                continue
            limit = policy.max_disputes_per_day if what == "dispute" else policy.max_appeals_per_day
            if n + self.store.recent_signals(entry.log, what, entry.ts - DAY_MS) > limit:
                raise EntryRejected(
                    "over_quota", f"more than {limit} {what} ops by this member in 24 hours"
                )

    def _seen_before(self, entry: Entry) -> Offer:
        held = self.store.entry(entry.log, entry.seq)
        assert held is not None
        mine = decode_entry(held)
        if mine.hash == entry.hash:
            self.stats.duplicates += 1
            return Offer(status=DUPLICATE, log=entry.log, seq=entry.seq)
        return self._fork(make_fork_proof(mine, entry))

    def _hold_gap(self, entry: Entry) -> Offer:
        for other in self.store.held(entry.log):
            if other.seq != entry.seq:
                continue
            if other.hash == entry.hash:
                return Offer(status=HELD, held_for="gap", log=entry.log, seq=entry.seq)
            try:
                other.verify_signature()
            except EntryRejected:
                self.store.unhold(other)  # held unchecked for a charter; it was bad
                continue
            return self._fork(make_fork_proof(other, entry))
        if self.store.held_count(entry.log) >= MAX_HELD_PER_LOG:
            raise EntryRejected("held_full", "too many entries waiting for this feed")
        self.store.hold(entry)
        self.stats.held += 1
        return Offer(status=HELD, held_for="gap", log=entry.log, seq=entry.seq)

    def _fork(self, proof: ForkProof) -> Offer:
        if self.store.add_fork_proof(proof):
            self.stats.forks += 1
            for listener in self.fork_listeners:
                listener(proof)
        return Offer(
            status=FORK,
            reason="fork",
            log=proof.log,
            seq=proof.seq,
            fork=proof,
            message="author signed two different entries with the same seq",
        )

    def accept_fork_proof(self, proof: ForkProof) -> bool:
        """Store a (checked) fork proof from a peer; True if it is new here."""
        new = self.store.add_fork_proof(proof)
        if new:
            self.stats.forks += 1
            for listener in self.fork_listeners:
                listener(proof)
        return new

    def _drain_held(self, log: MemberId, now: int) -> list[Entry]:
        """Append held entries that now follow the head, one after another."""
        out: list[Entry] = []
        while True:
            head = self.store.head(log)
            nxt = (0 if head is None else head.seq) + 1
            ready = None
            for e in self.store.held(log):
                if e.seq < nxt:
                    self.store.unhold(e)  # superseded by an entry that arrived directly
                elif e.seq == nxt and self.chain.get(e.cv) is not None:
                    ready = e
                    break
                else:
                    break
            if ready is None:
                return out
            self.store.unhold(ready)
            try:
                r = self._offer(ready, now, drain=False)
            except EntryRejected as err:
                self._reject(err, ready)
                continue
            out.extend(r.accepted)
            if r.status != ACCEPTED:
                return out
