"""The gossip engine (DESIGN §8): push-pull exchanges as a sans-IO state machine.

One :class:`GossipEngine` per node. It never touches a socket or a clock: the
driver (the node's aiohttp transport, or the simulator's virtual network)
feeds it with

* :meth:`GossipEngine.receive` — a message from a peer; returns the answer to
  deliver back to that peer, or ``None``;
* :meth:`GossipEngine.handle_timer` — time has reached :meth:`get_timer`;
* :meth:`GossipEngine.connection_failed` — a message could not be delivered;

and drains :meth:`GossipEngine.next_event` for what happened: messages to
send (:class:`Send`), entries accepted, forks found, keys granted, peers
backing off or quarantined. Randomness comes from the ``rng`` it is given.

An exchange between initiator A and responder B::

    A -> B  hello: A's charter (version, hash); A's feed heads changed since
            the last exchange B confirmed, plus a digest of all A's heads;
            grants and fork proofs B has not been given yet
    B -> A  reply: what A lacks (charter versions, grants, fork proofs,
            entries oldest first, round-robin over feeds, up to the frame
            limit, "more" if B had to stop), and B's heads likewise
    A -> B  push:  what B lacks, likewise (sent only if there is something
            to send or to confirm)
    B -> A  ack

Heads travel as deltas against what the other side confirmed, and every
message carries an 8-byte digest of *all* the sender's heads (an XOR of one
keyed hash per head, updated incrementally). A receiver whose view does not
match the digest (it restarted, or a message was lost) asks for the full set
(``rs``). So an idle exchange is two small messages whatever the member count.
While ``more`` is set the initiator starts the next exchange at once.

Wire format: canonical CBOR maps with short text keys (DESIGN §5)::

    hello = {"t": "h", "x": id, "c": [cv, hash prefix], "dg": digest,
             "hd"?: [[log, seq, hash], ...], "f"?: true, "it"?: [[kind, raw], ...], "rs"?: true,
             "sv"?: software version text}
    reply = {"t": "r", "x": id, "c": [cv, hash prefix], "dg": digest, "hd"?, "f"?, "it"?, "rs"?,
             "ch"?: [charter raw, ...], "en"?: [entry raw, ...], "m"?: true, "sv"?}

``sv`` (optional, at most :data:`MAX_SOFTWARE_CHARS` characters) names the
sender's software and version, e.g. ``riskmesh/0.2.0``, so operators see what
their peers run; an engine made without ``software`` sends none.
    push  = {"t": "p", "x": id, "ch"?, "it"?, "en"?, "m"?}
    ack   = {"t": "a", "x": id}

Item kinds: ``g`` a key grant, ``f`` a fork proof, ``p`` a charter proposal
(the next charter version with the signatures it has so far; see
:mod:`protocol.proposals`), ``a`` a sealed appeal case and ``n`` a sealed
appeal decision note (see :mod:`protocol.appeals`). A proposal that reaches
its quorum is appended as the next charter version on the spot. Appeal items
are relayed to everyone and opened only where they can be (the engine emits
:class:`AppealItemArrived` for each new one); at most
:data:`MAX_CASES_PER_APPEAL` cases and :data:`MAX_NOTES_PER_APPEAL` notes are
kept per appeal id.

A peer that relays data no honest node would have accepted — a bad
signature, a malformed entry, an entry outside the policy, a forged grant —
is counted; after :data:`QUARANTINE_AFTER` such messages it is quarantined
for :data:`QUARANTINE_MS`: not contacted, its messages refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from contracts.charter import Charter
from contracts.errors import AppealItemRejected, CharterRejected, DecodeError, GossipError
from protocol import codec
from protocol.appeals import CASE, NOTE, decode_case, decode_note
from protocol.entries import HARD_MAX_ENTRY_BYTES, Entry
from protocol.feeds import REJECTED, Feeds
from protocol.forks import ForkProof, decode_fork_proof
from protocol.grants import Grant, GrantRejected, check_grant, decode_grant, open_grant
from protocol.keys import MemberId, MemberKey, short_id
from protocol.proposals import (
    FINAL,
    KNOWN,
    STALE,
    ProposalBook,
    ProposalOffer,
    ProposalRejected,
)

__all__ = [
    "BACKOFF_CAP_MS",
    "QUARANTINE_AFTER",
    "QUARANTINE_MS",
    "SUSPICIOUS_REASONS",
    "AppealItemArrived",
    "CharterAdvanced",
    "EntriesAccepted",
    "Event",
    "ExchangeCompleted",
    "ForkDetected",
    "GossipEngine",
    "GossipError",
    "KeysGranted",
    "PeerFailed",
    "PeerQuarantined",
    "PeerStats",
    "PeerView",
    "ProposalUpdated",
    "Refused",
    "Send",
    "max_message_bytes",
]

#: Consecutive failures back a peer off for interval * 2**(n-1), jittered, at most this.
BACKOFF_CAP_MS = 300_000
#: A peer that relays this many invalid messages is quarantined.
QUARANTINE_AFTER = 3
QUARANTINE_MS = 600_000
#: An exchange whose answer has not come within this is counted as failed.
EXCHANGE_TIMEOUT_MS = 30_000
#: Entries taken from one feed per turn of the round-robin.
ENTRIES_PER_TURN = 32
#: Answers kept waiting for confirmation, per peer.
MAX_PENDING_PER_PEER = 8
#: Items (grants, proofs) waiting for a charter version not yet held.
MAX_WAITING_ITEMS = 1024
#: Heads sent inline at most; more changed heads travel as the digest alone
#: (see ``_heads_fields``), so no exchange carries O(members) heads unasked.
MAX_INLINE_HEADS = 16
#: Follow-up exchanges in a row that make no progress before the engine pauses.
MAX_IDLE_FOLLOW_UPS = 2

#: Refusal reasons no honest relay could cause: each counts against the peer
#: that sent the entry. (``ts_future``, ``cv_stale``, ``revoked``, ``frozen``
#: and ``held_full`` depend on when a node learnt something, and ``bad_prev``
#: is what an honest relay on the other branch of a forked feed sends: they do not.)
SUSPICIOUS_REASONS = frozenset(
    {
        "too_large",
        "decode",
        "not_member",
        "bad_signature",
        "ts_before_head",
        "cv_decreased",
        "too_many_ops",
        "policy",
        "unknown_epoch",
        "retract_unknown",
        "warning_listed",
        "over_quota",
    }
)

_KINDS = {"h": "hello", "r": "reply", "p": "push", "a": "ack"}
_ITEM_KINDS = ("g", "f", "p", CASE, NOTE)
#: Sealed appeal items kept per appeal id: cases (one per epoch the appeal
#: names) and decision notes (one per reporter); more are not taken.
MAX_CASES_PER_APPEAL = 8
MAX_NOTES_PER_APPEAL = 32
_KEYS = {
    "h": frozenset({"t", "x", "c", "dg", "hd", "f", "it", "rs", "sv"}),
    "r": frozenset({"t", "x", "c", "dg", "hd", "f", "it", "rs", "ch", "en", "m", "sv"}),
    "p": frozenset({"t", "x", "ch", "it", "en", "m"}),
    "a": frozenset({"t", "x"}),
}
#: The longest software version text (``sv``) a hello or reply may carry.
MAX_SOFTWARE_CHARS = 64
_DIGEST_KEY = b"riskmesh-heads-digest-v1"
#: The heads digest: it only tells a receiver whether its view of the sender is
#: current (a sender can lie about its heads anyway), so 64 bits are plenty.
DIGEST_BYTES = 8
#: Hello and reply name the sender's charter version and a prefix of its hash:
#: enough to notice a peer on a different chain; the versions themselves are
#: checked signature by signature when they travel.
CHARTER_REF_BYTES = 8


def max_message_bytes(frame_bytes: int, members: int) -> int:
    """The largest gossip message a node accepts for this frame size and membership."""
    return frame_bytes + HARD_MAX_ENTRY_BYTES + 128 * members + 65_536


_T = TypeVar("_T")


class Rng(Protocol):
    """What the engine needs of its randomness (a ``random.Random`` has it)."""

    def random(self) -> float: ...
    def getrandbits(self, k: int, /) -> int: ...
    def sample(self, population: Sequence[_T], k: int) -> list[_T]: ...


# -- events --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver ``data`` to ``peer``; feed its answer (if any) back to :meth:`receive`."""

    peer: MemberId
    data: bytes

    def __repr__(self) -> str:
        return f"Send(peer={short_id(self.peer)}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class EntriesAccepted:
    peer: MemberId | None
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """Something a peer sent was refused (an entry, a grant, a charter, a proof)."""

    peer: MemberId
    what: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ForkDetected:
    proof: ForkProof
    peer: MemberId | None  # who relayed it (None: found here)


@dataclass(frozen=True, slots=True)
class CharterAdvanced:
    version: int


@dataclass(frozen=True, slots=True)
class ProposalUpdated:
    """A proposal arrived or gained signatures (status new, merged, waiting or final)."""

    id: str
    version: int
    status: str


@dataclass(frozen=True, slots=True)
class KeysGranted:
    grant: Grant
    keys: dict[int, bytes] = field(repr=False)


@dataclass(frozen=True, slots=True)
class AppealItemArrived:
    """A new sealed appeal item (``kind`` ``a`` a case, ``n`` a note) came from a peer."""

    kind: str
    raw: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PeerFailed:
    peer: MemberId
    failures: int
    backoff_until: int


@dataclass(frozen=True, slots=True)
class PeerQuarantined:
    peer: MemberId
    until: int
    reason: str


@dataclass(frozen=True, slots=True)
class ExchangeCompleted:
    peer: MemberId
    initiator: bool
    entries_in: int
    entries_out: int


Event = (
    Send
    | EntriesAccepted
    | Refused
    | ForkDetected
    | CharterAdvanced
    | KeysGranted
    | PeerFailed
    | PeerQuarantined
    | ExchangeCompleted
    | ProposalUpdated
    | AppealItemArrived
)


# -- per-peer state ----------------------------------------------------------------


@dataclass(slots=True)
class PeerStats:
    exchanges: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    backoff_until: int = 0
    last_attempt: int | None = None
    last_success: int | None = None
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    entries_sent: int = 0
    entries_received: int = 0
    invalid: int = 0
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    quarantined_until: int = 0


@dataclass(slots=True)
class _Pending:
    """An answer sent and waiting for the message that confirms it arrived."""

    counter: int | None  # our heads counter the message's delta reached (None: no heads)
    item_upto: int
    deadline: int
    initiator: bool
    follow_up: bool = False
    entries_in: int = 0
    entries_out: int = 0


@dataclass(slots=True)
class _Peer:
    stats: PeerStats = field(default_factory=PeerStats)
    told: int | None = None  # heads counter the peer confirmed (None: send full heads)
    item_upto: int = 0  # items[:item_upto] the peer confirmed
    known: dict[MemberId, tuple[int, bytes]] | None = None  # the peer's heads as it told us
    known_dig: int = 0
    known_cv: int = 0
    behind: set[MemberId] = field(default_factory=set)  # logs where we are ahead of the peer
    # logs where the peer's head is not the entry we hold at its seq: a fork
    diverged: set[MemberId] = field(default_factory=set)
    scanned: int = 0  # our heads counter up to which `behind` is current
    want_full: bool = False  # ask the peer for its full heads
    full_next: bool = False  # the peer asked for our full heads
    has_items: set[bytes] = field(default_factory=set)  # item hashes the peer sent us
    pending: dict[int, _Pending] = field(default_factory=dict)
    cursor: int = 0  # round-robin position over `behind`
    idle_follow_ups: int = 0
    software: str | None = None  # the software version the peer named
    last_push: int | None = None  # when push_now last started an exchange with the peer


@dataclass(frozen=True, slots=True)
class PeerView:
    """What an engine knows of one peer (:meth:`GossipEngine.peer_view`), read-only.

    ``heads`` is the peer's feed heads (log -> (seq, hash)) as the peer last
    told them and their digest checked out, or None while unknown (never
    exchanged, or the peer's digest no longer matches what we hold of it). It
    is a read-only view of the engine's own table, not a copy: it follows the
    next exchange with the peer; copy it (``dict(view.heads)``) to keep it.
    ``digest`` is the peer's heads digest as we hold it (None with ``heads``);
    ``in_sync`` is whether it equals ours, i.e. the peer holds exactly our
    heads. ``charter_version`` is the charter version the peer last named.
    ``stats`` is a copy of the engine's statistics for the peer. ``software``
    is the software version the peer last named in a hello or reply (None: not told).
    """

    heads: Mapping[MemberId, tuple[int, bytes]] | None
    digest: bytes | None
    in_sync: bool
    charter_version: int
    stats: PeerStats
    software: str | None = None


def _head_hash(log: bytes, seq: int, h: bytes) -> int:
    d = hashlib.blake2b(log + seq.to_bytes(8, "big") + h, digest_size=DIGEST_BYTES, key=_DIGEST_KEY)
    return int.from_bytes(d.digest(), "big")


def _dig_bytes(d: int) -> bytes:
    return d.to_bytes(DIGEST_BYTES, "big")


# -- the engine ----------------------------------------------------------------------


class GossipEngine:
    """One node's side of gossip, over its :class:`~protocol.feeds.Feeds`."""

    def __init__(
        self,
        key: MemberKey,
        feeds: Feeds,
        *,
        rng: Rng,
        now: int,
        interval_ms: int | None = None,
        fanout: int | None = None,
        frame_bytes: int | None = None,
        timeout_ms: int = EXCHANGE_TIMEOUT_MS,
        software: str | None = None,
    ) -> None:
        if software is not None and not 0 < len(software) <= MAX_SOFTWARE_CHARS:
            raise ValueError(f"software is 1 to {MAX_SOFTWARE_CHARS} characters")
        self.software = software
        self.key = key
        self.me = key.id
        self.feeds = feeds
        self.chain = feeds.chain
        self.store = feeds.store
        self.rng = rng
        gs = self.chain.current.policy.gossip
        self.interval_ms = interval_ms or gs.interval_ms
        self.fanout = fanout or gs.fanout
        self.frame_bytes = frame_bytes or gs.frame_bytes
        self.timeout_ms = timeout_ms
        self.round = 0
        self._next_round = now + self._jitter(self.interval_ms)
        self._events: list[Event] = []
        self._peers: dict[MemberId, _Peer] = {}
        # our heads, their digest, and an ordered log of which changed when
        self._heads: dict[MemberId, tuple[int, bytes]] = {}
        self._dig = 0
        self._counter = 0
        self._changed: dict[MemberId, int] = {}
        for log, h in self.store.heads().items():
            self._set_head(log, h.seq, h.hash)
        # items: grants and fork proofs, in the order this node learnt them
        self._items: list[tuple[str, bytes, bytes]] = []  # (kind, hash, raw)
        self._item_hashes: set[bytes] = set()
        self._waiting: list[tuple[MemberId, str, bytes]] = []  # items awaiting a charter version
        for raw in self.store.grants():
            self._add_item("g", raw)
        for kind, raw in self.store.appeal_items():
            self._add_item(kind, raw)
        for proof in self.store.fork_proofs():
            self._add_item("f", proof.encode())
        self.proposals = ProposalBook(self.store, self.chain)
        for prop in self.proposals.pending():
            self._add_item("p", prop.raw)
        #: entries appended while this engine takes a peer's entries or retries held
        #: ones (collected only then: the node's own published entries must not pile
        #: up here while no peer sends anything)
        self._accepted_now: list[Entry] = []
        self._collecting = False
        feeds.listeners.append(self._on_append)
        feeds.fork_listeners.append(self._on_fork)
        self._via: MemberId | None = None  # the peer whose proof is being taken
        # push_now: peers to push to once their rate limit allows, and when
        self._push_due: dict[MemberId, int] = {}

    # -- public driving interface ---------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def events(self) -> Iterator[Event]:
        """Drain every pending event."""
        while self._events:
            yield self._events.pop(0)

    def get_timer(self) -> int:
        """When :meth:`handle_timer` next has something to do."""
        t = self._next_round
        for p in self._peers.values():
            for pend in p.pending.values():
                if pend.initiator:
                    t = min(t, pend.deadline)
        if self._push_due:
            t = min(t, *self._push_due.values())
        return t

    def handle_timer(self, now: int) -> None:
        self._expire(now)
        if self._push_due:
            self._due_pushes(now)
        if now >= self._next_round:
            self.start_round(now)

    def push_now(self, now: int, min_gap_ms: int) -> list[MemberId]:
        """Offer what this node holds to every reachable active peer now, not at the
        next round (an urgent report, DESIGN §14): each gets an ordinary exchange, so
        the same messages and the same checks as a round's.

        Rate-limited per peer: a peer pushed to less than ``min_gap_ms`` ago is pushed
        to once the gap has passed (:meth:`get_timer` includes that time), so a burst
        of urgent reports costs each peer one exchange per gap. Peers backing off or
        quarantined are skipped, and so is a peer already waiting on two exchanges
        (their next message carries what is new). Returns the peers contacted now.
        """
        out = []
        for m in self.chain.current.members:
            pid = MemberId(m.id)
            if pid == self.me or m.status != "active":
                continue
            p = self._peer(pid)
            if not self._reachable(p, now):
                continue
            if p.last_push is not None and now < p.last_push + min_gap_ms:
                due = p.last_push + min_gap_ms
                self._push_due[pid] = min(due, self._push_due.get(pid, due))
                continue
            self._push_due.pop(pid, None)
            p.last_push = now
            self._start_exchange(pid, now)
            out.append(pid)
        return out

    def _due_pushes(self, now: int) -> None:
        for pid, due in list(self._push_due.items()):
            if due > now:
                continue
            del self._push_due[pid]
            p = self._peers.get(pid)
            if p is None or not self.chain.current.is_active(pid) or not self._reachable(p, now):
                continue
            p.last_push = now
            self._start_exchange(pid, now)

    def _reachable(self, p: _Peer, now: int) -> bool:
        st = p.stats
        if st.backoff_until > now or st.quarantined_until > now:
            return False
        return sum(1 for v in p.pending.values() if v.initiator) < 2

    def start_round(self, now: int) -> list[MemberId]:
        """Start an exchange with up to ``fanout`` random peers; return who."""
        self.round += 1
        self._next_round = now + self._jitter(self.interval_ms)
        chosen = self._choose_peers(now)
        for peer in chosen:
            self._start_exchange(peer, now)
        return chosen

    def start_exchange(self, peer: MemberId, now: int) -> None:
        """Start an exchange with one chosen peer now (a round picks peers at random)."""
        if peer == self.me or not self.chain.current.is_active(peer):
            raise GossipError("not_member", "can only exchange with another active member")
        self._start_exchange(peer, now)

    def connection_failed(self, peer: MemberId, now: int) -> None:
        """The driver could not deliver a message to ``peer`` or got no answer."""
        p = self._peer(peer)
        p.pending = {x: v for x, v in p.pending.items() if not v.initiator}
        self._fail(peer, p, now)

    def receive(self, peer: MemberId, data: bytes, now: int) -> bytes | None:
        """Handle one message from ``peer``; return the answer to deliver back, if any.

        Raises GossipError if the message is refused as a whole (a non-member,
        a quarantined peer, a malformed message); nothing changes then except
        the peer's statistics.
        """
        charter = self.chain.current
        if peer == self.me or not charter.is_active(peer):
            raise GossipError("not_member", "sender is not an active member of the consortium")
        p = self._peer(peer)
        st = p.stats
        if st.quarantined_until > now:
            raise GossipError("quarantined", "sender is quarantined for relaying invalid data")
        st.messages_received += 1
        st.bytes_received += len(data)
        try:
            msg = self._decode(data, charter)
        except GossipError as e:
            self._invalid(peer, p, "message", e.reason, now)
            raise
        t = msg["t"]
        if t == "h":
            return self._on_hello(peer, p, msg, now)
        if t == "r":
            return self._on_reply(peer, p, msg, now)
        if t == "p":
            return self._on_push(peer, p, msg, now)
        self._on_ack(peer, p, msg, now)
        return None

    # -- questions -----------------------------------------------------------------------

    def peer_stats(self) -> dict[MemberId, PeerStats]:
        return {pid: p.stats for pid, p in self._peers.items()}

    def peer_view(self, peer: MemberId) -> PeerView | None:
        """What this engine knows of ``peer`` (None: nothing yet); see :class:`PeerView`."""
        p = self._peers.get(peer)
        if p is None:
            return None
        known = p.known
        st = p.stats
        return PeerView(
            heads=None if known is None else MappingProxyType(known),
            digest=None if known is None else _dig_bytes(p.known_dig),
            in_sync=known is not None and p.known_dig == self._dig,
            charter_version=p.known_cv,
            stats=replace(st, invalid_reasons=dict(st.invalid_reasons)),
            software=p.software,
        )

    def peer_lag(self, peer: MemberId) -> tuple[int, int] | None:
        """(entries the peer holds that we lack, entries we hold that it lacks), as last told."""
        p = self._peers.get(peer)
        if p is None or p.known is None:
            return None
        ahead = behind = 0
        for log, (seq, _) in p.known.items():
            mine = self._heads.get(log, (0, b""))[0]
            if seq > mine:
                behind += seq - mine
        for log, (seq, _) in self._heads.items():
            theirs = p.known.get(log, (0, b""))[0]
            if seq > theirs:
                ahead += seq - theirs
        return behind, ahead

    def claimed_head(self, log: MemberId) -> int:
        """The highest seq of ``log`` any peer has told this engine it holds."""
        best = 0
        for p in self._peers.values():
            if p.known is not None:
                best = max(best, p.known.get(log, (0, b""))[0])
        return best

    def heads(self) -> dict[MemberId, tuple[int, bytes]]:
        return dict(self._heads)

    def digest(self) -> bytes:
        return _dig_bytes(self._dig)

    def item_count(self) -> int:
        return len(self._items)

    def add_appeal_item(self, kind: str, raw: bytes) -> None:
        """Add a sealed appeal item made on this node (a case or a note); it travels by
        gossip. Raises AppealItemRejected if it is malformed or over its limit."""
        self._check_appeal_item(kind, raw)

    def retry_waiting(self, now: int) -> None:
        """Offer again what waits here (held entries, items, proposals): the node calls
        this when epoch keys arrive, as the engine does itself when the charter advances."""
        self._after_advance(now)

    def add_grant(self, raw: bytes) -> Grant:
        """Add a grant made on this node (an admin granting keys); it travels by gossip."""
        grant = decode_grant(raw)
        check_grant(grant, self.chain)
        self.store.put_grant(grant)
        self._add_item("g", raw)
        return grant

    # -- heads bookkeeping -------------------------------------------------------------

    def _set_head(self, log: MemberId, seq: int, h: bytes) -> None:
        old = self._heads.get(log)
        if old is not None:
            if old[0] >= seq:
                return
            self._dig ^= _head_hash(log, old[0], old[1])
        self._heads[log] = (seq, h)
        self._dig ^= _head_hash(log, seq, h)
        self._counter += 1
        self._changed.pop(log, None)
        self._changed[log] = self._counter

    def _on_append(self, entry: Entry) -> None:
        self._set_head(entry.log, entry.seq, entry.hash)
        if self._collecting:
            self._accepted_now.append(entry)

    def _on_fork(self, proof: ForkProof) -> None:
        """A fork proof found or taken here, by gossip or not: it travels as an item."""
        self._add_item("f", proof.encode())
        self._events.append(ForkDetected(proof, self._via))

    def _changed_since(self, counter: int, limit: int | None = None) -> list[MemberId]:
        out: list[MemberId] = []
        for log, c in reversed(self._changed.items()):
            if c <= counter or (limit is not None and len(out) >= limit):
                break
            out.append(log)
        return out

    def _heads_fields(self, p: _Peer) -> tuple[dict[str, Any], int]:
        """The heads part of a hello or reply to ``p`` and the counter it reaches.

        Full heads when the peer asked (or there are only a few); otherwise the
        heads changed since the peer last confirmed, if there are only a few;
        otherwise the digest alone — a peer holding exactly our heads sees its
        own digest and is in sync at no cost, one that does not asks for all.
        """
        out: dict[str, Any] = {"dg": _dig_bytes(self._dig)}
        logs: Iterable[MemberId]
        if p.full_next or (p.told is None and len(self._heads) <= MAX_INLINE_HEADS):
            logs = self._heads
            out["f"] = True
            p.full_next = False
        elif p.told is None:
            logs = ()
        else:
            changed = self._changed_since(p.told, MAX_INLINE_HEADS + 1)
            logs = changed if len(changed) <= MAX_INLINE_HEADS else ()
        hd = [[log, self._heads[log][0], self._heads[log][1]] for log in logs]
        if hd:
            out["hd"] = hd
        return out, self._counter

    def _apply_heads(self, p: _Peer, msg: dict[str, Any]) -> bool:
        """Update our view of the peer's heads; False if it no longer matches its digest."""
        if msg["dg"] == _dig_bytes(self._dig):
            # the peer holds exactly the heads we hold: nothing to tell either way
            p.known = dict(self._heads)
            p.known_dig = self._dig
            p.behind = set()
            p.diverged = set()
            p.scanned = self._counter
            p.told = self._counter
            return True
        full = msg.get("f", False)
        hd = msg.get("hd", [])
        if full:
            p.known = {}
            p.known_dig = 0
            p.behind = set(self._heads)
            p.scanned = self._counter
        elif p.known is None:
            return False
        known = p.known
        for log, seq, h in hd:
            old = known.get(log)
            if old is not None:
                if old[0] >= seq:
                    continue
                p.known_dig ^= _head_hash(log, old[0], old[1])
            known[log] = (seq, h)
            p.known_dig ^= _head_hash(log, seq, h)
            mine = self._heads.get(log)
            if mine is not None and mine[0] > seq:
                p.behind.add(log)
            else:
                p.behind.discard(log)
            if mine is not None and mine[0] >= seq and self._holds_other(log, seq, h):
                p.diverged.add(log)
        if _dig_bytes(p.known_dig) != msg["dg"]:
            p.known = None
            p.behind = set()
            return False
        return True

    def _holds_other(self, log: MemberId, seq: int, h: bytes) -> bool:
        """Whether our entry at ``(log, seq)`` differs from the one hashing to ``h``."""
        mine = self._heads.get(log)
        if mine is not None and mine[0] == seq:
            return mine[1] != h
        raw = self.store.entry(log, seq)
        return raw is not None and codec.obj_hash(raw) != h

    def _update_behind(self, p: _Peer) -> None:
        if p.known is None:
            return
        for log in self._changed_since(p.scanned):
            mine = self._heads[log][0]
            theirs = p.known.get(log, (0, b""))[0]
            if mine > theirs:
                p.behind.add(log)
        p.scanned = self._counter

    # -- items ----------------------------------------------------------------------------

    def _add_item(self, kind: str, raw: bytes) -> bool:
        h = codec.obj_hash(raw)
        if h in self._item_hashes:
            return False
        self._item_hashes.add(h)
        self._items.append((kind, h, raw))
        return True

    def _items_for(self, p: _Peer, budget: int) -> tuple[list[list[Any]], int, int]:
        out: list[list[Any]] = []
        used = 0
        i = p.item_upto
        while i < len(self._items):
            kind, h, raw = self._items[i]
            if h not in p.has_items:
                if out and used + len(raw) > budget:
                    break
                out.append([kind, raw])
                used += len(raw)
            i += 1
        return out, i, used

    def _take_items(self, peer: MemberId, p: _Peer, items: list[Any], now: int) -> None:
        for kind, raw in items:
            h = codec.obj_hash(raw)
            p.has_items.add(h)
            if h in self._item_hashes:
                continue
            self._take_item(peer, p, kind, raw, now)

    def _take_item(self, peer: MemberId, p: _Peer, kind: str, raw: bytes, now: int) -> None:
        if kind == "g":
            try:
                grant = decode_grant(raw)
                if self.chain.get(grant.cv) is None:
                    if len(self._waiting) < MAX_WAITING_ITEMS:
                        self._waiting.append((peer, kind, raw))
                    return
                check_grant(grant, self.chain)
            except GrantRejected as e:
                self._invalid(peer, p, "grant", "bad_grant", now, e.message)
                return
            self.store.put_grant(grant)
            self._add_item("g", raw)
            if grant.to == self.me:
                try:
                    keys = open_grant(grant, self.key)
                except GrantRejected as e:
                    self._invalid(peer, p, "grant", "bad_grant", now, e.message)
                    return
                self._events.append(KeysGranted(grant, keys))
        elif kind == "f":
            try:
                proof = decode_fork_proof(raw)
            except DecodeError as e:
                self._invalid(peer, p, "fork_proof", "bad_proof", now, e.message)
                return
            if not any(v.charter.member(proof.log) for v in self.chain.versions()):
                self._invalid(peer, p, "fork_proof", "not_member", now, "proof for a non-member")
                return
            self._add_item("f", proof.encode())
            self._via = peer
            try:
                self.feeds.accept_fork_proof(proof)  # a new proof comes back through _on_fork
            finally:
                self._via = None
        elif kind == "p":
            try:
                offer = self.proposals.offer(raw, now)
            except ProposalRejected as e:
                self._invalid(peer, p, "proposal", e.reason, now, e.message)
                return
            self._after_proposal(offer, now)
        elif kind in (CASE, NOTE):
            try:
                if self._check_appeal_item(kind, raw):
                    self._events.append(AppealItemArrived(kind, raw))
            except AppealItemRejected as e:
                self._invalid(peer, p, "appeal_item", e.reason, now, e.message)
        else:  # _decode admits only known kinds
            raise AssertionError(kind)

    def _check_appeal_item(self, kind: str, raw: bytes) -> bool:
        """Check a sealed appeal item and keep it for relay; False if it is over the
        per-appeal limit or already held (not held against whoever sent it: honest
        relays may hold different items up to the limit)."""
        if kind == CASE:
            case = decode_case(raw)
            if not self.chain.current.is_active(case.appellant):
                raise AppealItemRejected("not_member", "appeal case signed by no active member")
            appeal_id, limit = case.id, MAX_CASES_PER_APPEAL
        else:
            note = decode_note(raw)
            if not self.chain.current.is_active(note.to):
                raise AppealItemRejected("not_member", "appeal note to no active member")
            appeal_id, limit = note.id, MAX_NOTES_PER_APPEAL
        if self.store.appeal_item_count(kind, appeal_id) >= limit:
            return False
        new = self.store.put_appeal_item(kind, appeal_id, raw)
        if new:
            self._add_item(kind, raw)
        return new

    def _retry_waiting(self, now: int) -> None:
        waiting, self._waiting = self._waiting, []
        for peer, kind, raw in waiting:
            if codec.obj_hash(raw) not in self._item_hashes:
                self._take_item(peer, self._peer(peer), kind, raw, now)

    # -- charters ------------------------------------------------------------------------

    def _charters_for(self, their_cv: int, budget: int) -> list[bytes]:
        out: list[bytes] = []
        used = 0
        for v in range(their_cv + 1, len(self.chain) + 1):
            info = self.chain.version_info(v)
            assert info is not None
            if out and used + len(info.raw) > budget:
                break
            out.append(info.raw)
            used += len(info.raw)
        return out

    def _take_charters(self, peer: MemberId, p: _Peer, raws: list[bytes], now: int) -> None:
        try:
            self._append_charters(raws, now)
        except CharterRejected as e:
            self._invalid(peer, p, "charter", e.reason, now, e.message)

    def _append_charters(self, raws: Iterable[bytes], now: int) -> None:
        """Append charter versions in order; then let everything that waited for them in."""
        advanced = False
        try:
            for raw in raws:
                if self.chain.append(raw):
                    v = self.chain.current.version
                    self.store.put_charter(v, raw)
                    self._events.append(CharterAdvanced(v))
                    advanced = True
        finally:
            if advanced:
                self._after_advance(now)

    def _after_advance(self, now: int) -> None:
        self._accepted_now.clear()
        self._collecting = True
        try:
            self.feeds.retry_held(now)
        finally:
            self._collecting = False
        if self._accepted_now:
            self._events.append(EntriesAccepted(None, tuple(self._accepted_now)))
            self._accepted_now.clear()
        self._retry_waiting(now)
        for offer in self.proposals.retry(now):
            self._after_proposal(offer, now)

    # -- proposals -----------------------------------------------------------------------

    def add_proposal(self, raw: bytes, now: int) -> ProposalOffer:
        """A proposal made or signed on this node; it travels by gossip.

        Raises ProposalRejected if it is no valid candidate for the next version.
        """
        offer = self.proposals.offer(raw, now)
        self._after_proposal(offer, now)
        return offer

    def propose(self, charter: Charter, now: int) -> ProposalOffer:
        """Propose ``charter`` (see :meth:`ProposalBook.draft`) signed by this member."""
        offer = self.proposals.propose(charter, self.key, now)
        self._after_proposal(offer, now)
        return offer

    def sign_proposal(self, pid: str, now: int) -> ProposalOffer:
        """Add this member's signature to proposal ``pid``."""
        offer = self.proposals.sign(pid, self.key, now)
        self._after_proposal(offer, now)
        return offer

    def _after_proposal(self, offer: ProposalOffer, now: int) -> None:
        p = offer.proposal
        if p is None or offer.status == STALE:
            return
        self._add_item("p", p.raw)
        if offer.status == KNOWN:
            return
        self._events.append(ProposalUpdated(p.id, p.charter.version, offer.status))
        if offer.status == FINAL:
            try:
                self._append_charters([p.raw], now)
            except CharterRejected:  # pragma: no cover - the book checked the same rule
                return

    def _check_charter_ref(self, peer: MemberId, p: _Peer, c: list[Any], now: int) -> None:
        v, h = c
        p.known_cv = v
        mine = self.chain.version_info(v)
        if mine is not None and mine.hash[:CHARTER_REF_BYTES] != h:
            self._invalid(
                peer, p, "charter", "conflicting_version", now, f"different charter version {v}"
            )

    # -- entries --------------------------------------------------------------------------

    def outgoing_entries(
        self, peer: MemberId, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        """The hook for the entries this engine offers ``peer`` in one reply or push.

        ``entries`` (raw, oldest first, round-robin over feeds) are what the peer
        lacks as far as this engine knows, within the frame; ``more`` says that
        some had to wait for the next exchange. Called once per reply and push
        that has room for entries (also when there are none to offer); returns
        the entries to send and the ``more`` flag. The engine returns them as
        they are. A subclass may change what it offers — the simulator's
        misbehaving members (``sim/engines.py``) add forged or replayed entries,
        swap in a twin, or hold back what others published — and reads what it
        knows of the peer through :meth:`peer_view`. The receiver checks
        whatever arrives like any entry.
        """
        del peer, now
        return entries, more

    def _entries_for(self, p: _Peer, budget: int) -> tuple[list[bytes], bool]:
        """Entries the peer lacks, oldest first, round-robin over feeds, within ``budget``."""
        self._update_behind(p)
        if p.known is None or not (p.behind or p.diverged):
            return [], False
        known = p.known
        logs = sorted(p.behind)
        start = p.cursor % len(logs) if logs else 0
        logs = logs[start:] + logs[:start]
        next_seq = {}
        for log in logs:
            if self.store.is_frozen(log):
                p.behind.discard(log)
                continue
            next_seq[log] = known.get(log, (0, b""))[0]
        out: list[bytes] = []
        used = 0
        more = False
        # a peer on another branch of a feed gets our entry at its head: the proof
        for log in sorted(p.diverged):
            raw = self.store.entry(log, known.get(log, (0, b""))[0])
            if raw is not None and not self.store.is_frozen(log):
                out.append(raw)
                used += len(raw)
            next_seq.pop(log, None)
        p.diverged.clear()
        active = list(next_seq)
        while active and not more:
            still = []
            for log in active:
                batch = self.store.entries_after(log, next_seq[log], ENTRIES_PER_TURN)
                for raw in batch:
                    if out and used + len(raw) > budget:
                        more = True
                        break
                    out.append(raw)
                    used += len(raw)
                    next_seq[log] += 1
                if more:
                    break
                if len(batch) == ENTRIES_PER_TURN:
                    still.append(log)
            active = still
        p.cursor = start + 1
        return out, more

    def _take_entries(self, peer: MemberId, p: _Peer, raws: list[bytes], now: int) -> int:
        self._accepted_now.clear()
        bad = 0
        self._collecting = True
        try:
            for raw in raws:
                offer = self.feeds.offer(raw, now)
                if offer.status == REJECTED:
                    reason = offer.reason or "rejected"
                    if reason in SUSPICIOUS_REASONS:
                        bad += 1
                        self._events.append(Refused(peer, "entry", reason, offer.message))
                        st = p.stats
                        st.invalid_reasons[reason] = st.invalid_reasons.get(reason, 0) + 1
        finally:
            self._collecting = False
        accepted = tuple(self._accepted_now)
        self._accepted_now.clear()
        p.stats.entries_received += len(accepted)
        if accepted:
            self._events.append(EntriesAccepted(peer, accepted))
        if bad:
            self._invalid(peer, p, "entry", "invalid_entries", now, count_reason=False)
        return len(accepted)

    # -- the exchange ---------------------------------------------------------------------

    def _start_exchange(self, peer: MemberId, now: int) -> None:
        p = self._peer(peer)
        x = self.rng.getrandbits(32)
        msg: dict[str, Any] = {"t": "h", "x": x, "c": self._charter_ref()}
        if self.software is not None:
            msg["sv"] = self.software
        fields, counter = self._heads_fields(p)
        msg.update(fields)
        items, upto, _ = self._items_for(p, self.frame_bytes)
        if items:
            msg["it"] = items
        if p.want_full:
            msg["rs"] = True
        self._remember(p, x, _Pending(counter, upto, now + self.timeout_ms, initiator=True))
        p.stats.last_attempt = now
        self._send(peer, p, msg)

    def _on_hello(self, peer: MemberId, p: _Peer, msg: dict[str, Any], now: int) -> bytes:
        self._check_charter_ref(peer, p, msg["c"], now)
        p.software = msg.get("sv", p.software)
        if msg.get("rs"):
            p.full_next = True
            p.item_upto = 0
        in_sync = self._apply_heads(p, msg)
        self._take_items(peer, p, msg.get("it", []), now)
        reply: dict[str, Any] = {"t": "r", "x": msg["x"], "c": self._charter_ref()}
        if self.software is not None:
            reply["sv"] = self.software
        fields, counter = self._heads_fields(p)
        reply.update(fields)
        if not in_sync:
            reply["rs"] = True
        charters, items, entries, upto = self._fill_frame(peer, p, reply, now)
        needs_confirm = bool(fields.get("hd") or fields.get("f") or items)
        if needs_confirm or entries or charters:
            pend = _Pending(
                counter if needs_confirm else None,
                upto,
                now + self.timeout_ms,
                initiator=False,
                entries_out=len(entries),
            )
            self._remember(p, msg["x"], pend)
        else:
            self._success(peer, p, now, initiator=False, entries_in=0, entries_out=0)
        p.stats.entries_sent += len(entries)
        return self._encode(peer, p, reply)

    def _fill_frame(
        self, peer: MemberId, p: _Peer, msg: dict[str, Any], now: int
    ) -> tuple[list[bytes], list[list[Any]], list[bytes], int]:
        """Put what the peer lacks into ``msg`` — charter versions, then grants, proofs
        and proposals, then entries (through :meth:`outgoing_entries`) — within the
        frame; set ``m`` if some had to wait.
        Returns (charters, items, entries, items index reached)."""
        budget = self.frame_bytes
        charters = self._charters_for(p.known_cv, budget)
        budget -= sum(len(c) for c in charters)
        items, upto, used = self._items_for(p, max(budget, 0))
        budget -= used
        entries: list[bytes] = []
        more = False
        if budget > 0:
            entries, more = self._entries_for(p, budget)
            entries, more = self.outgoing_entries(peer, entries, more, now)
        if charters:
            msg["ch"] = charters
        if items:
            msg["it"] = items
        if entries:
            msg["en"] = entries
        if more or upto < len(self._items):  # entries, or grants and proofs, filled it
            msg["m"] = True
        return charters, items, entries, upto

    def _on_reply(self, peer: MemberId, p: _Peer, msg: dict[str, Any], now: int) -> bytes | None:
        pend = p.pending.pop(msg["x"], None)
        if pend is None or not pend.initiator:
            raise GossipError("unexpected", "reply to no exchange in progress")
        # the hello arrived: what it told is confirmed
        if pend.counter is not None:
            p.told = pend.counter
        p.item_upto = max(p.item_upto, pend.item_upto)
        if msg.get("rs"):
            p.full_next = True
            p.item_upto = 0
        self._check_charter_ref(peer, p, msg["c"], now)
        p.software = msg.get("sv", p.software)
        in_sync = self._apply_heads(p, msg)
        p.want_full = not in_sync
        self._take_charters(peer, p, msg.get("ch", []), now)
        self._take_items(peer, p, msg.get("it", []), now)
        got = self._take_entries(peer, p, msg.get("en", []), now)
        if p.stats.quarantined_until > now:
            return None
        push: dict[str, Any] = {"t": "p", "x": msg["x"]}
        _, _, entries, upto = self._fill_frame(peer, p, push, now)
        more = "m" in push
        progress = got > 0 or bool(entries)
        if progress:
            p.idle_follow_ups = 0
        follow = bool(msg.get("m") or more or msg.get("rs") or not in_sync)
        if follow and not progress:
            p.idle_follow_ups += 1
            follow = p.idle_follow_ups <= MAX_IDLE_FOLLOW_UPS
        confirm = bool(
            msg.get("hd") or msg.get("f") or msg.get("it") or msg.get("en") or msg.get("ch")
        )
        if len(push) == 2 and not confirm:
            # an idle answer: nothing to push, nothing to confirm
            self._success(peer, p, now, initiator=True, entries_in=got, entries_out=0)
            if follow:
                self._start_exchange(peer, now)
            return None
        self._remember(
            p,
            msg["x"],
            _Pending(
                None,
                upto,
                now + self.timeout_ms,
                initiator=True,
                follow_up=follow,
                entries_in=got,
                entries_out=len(entries),
            ),
        )
        p.stats.entries_sent += len(entries)
        return self._encode(peer, p, push)

    def _on_push(self, peer: MemberId, p: _Peer, msg: dict[str, Any], now: int) -> bytes:
        pend = p.pending.pop(msg["x"], None)
        if pend is not None and not pend.initiator:
            # the reply arrived: what it told is confirmed
            if pend.counter is not None:
                p.told = pend.counter
            p.item_upto = max(p.item_upto, pend.item_upto)
        self._take_charters(peer, p, msg.get("ch", []), now)
        self._take_items(peer, p, msg.get("it", []), now)
        got = self._take_entries(peer, p, msg.get("en", []), now)
        self._success(
            peer,
            p,
            now,
            initiator=False,
            entries_in=got,
            entries_out=0 if pend is None else pend.entries_out,
        )
        return self._encode(peer, p, {"t": "a", "x": msg["x"]})

    def _on_ack(self, peer: MemberId, p: _Peer, msg: dict[str, Any], now: int) -> None:
        pend = p.pending.pop(msg["x"], None)
        if pend is None or not pend.initiator:
            raise GossipError("unexpected", "ack of no push in progress")
        p.item_upto = max(p.item_upto, pend.item_upto)
        self._success(
            peer, p, now, initiator=True, entries_in=pend.entries_in, entries_out=pend.entries_out
        )
        if pend.follow_up:
            self._start_exchange(peer, now)

    # -- peers -----------------------------------------------------------------------------

    def _peer(self, peer: MemberId) -> _Peer:
        p = self._peers.get(peer)
        if p is None:
            p = self._peers[peer] = _Peer()
        return p

    def _choose_peers(self, now: int) -> list[MemberId]:
        busy = {
            pid for pid, p in self._peers.items() if any(v.initiator for v in p.pending.values())
        }
        candidates = []
        for m in self.chain.current.members:
            if m.id == self.me or m.status != "active" or m.id in busy:
                continue
            p = self._peers.get(MemberId(m.id))
            if p is not None and (p.stats.backoff_until > now or p.stats.quarantined_until > now):
                continue
            candidates.append(MemberId(m.id))
        return self.rng.sample(candidates, min(self.fanout, len(candidates)))

    def _success(
        self,
        peer: MemberId,
        p: _Peer,
        now: int,
        *,
        initiator: bool,
        entries_in: int,
        entries_out: int,
    ) -> None:
        st = p.stats
        st.exchanges += 1
        st.consecutive_failures = 0
        st.backoff_until = 0
        st.last_success = now
        self._check_claim_on_us(peer, p, now)
        self._events.append(ExchangeCompleted(peer, initiator, entries_in, entries_out))

    def _check_claim_on_us(self, peer: MemberId, p: _Peer, now: int) -> None:
        """A peer that says it holds our own feed past our head must have shown us those
        entries, signed by us, by the end of the exchange: an unproven claim changes
        nothing here (we never hold back on a claim alone) and counts against it."""
        if p.known is None:
            return
        claimed = p.known.get(self.me, (0, b""))[0]
        ours = self._heads.get(self.me, (0, b""))[0]
        # (a frozen feed of ours: the peer holds what a fork proof froze; no lie)
        if (
            claimed > ours
            and not self.store.held_count(self.me)
            and not self.store.is_frozen(self.me)
        ):
            self._invalid(
                peer,
                p,
                "heads",
                "unproven_claim",
                now,
                f"claims our feed at seq {claimed}, we hold {ours}, and it showed no entry",
            )

    def _fail(self, peer: MemberId, p: _Peer, now: int) -> None:
        st = p.stats
        st.failures += 1
        st.consecutive_failures += 1
        delay = min(BACKOFF_CAP_MS, self.interval_ms * 2 ** (st.consecutive_failures - 1))
        st.backoff_until = now + int(delay * (0.5 + self.rng.random() / 2))
        self._events.append(PeerFailed(peer, st.consecutive_failures, st.backoff_until))

    def _invalid(
        self,
        peer: MemberId,
        p: _Peer,
        what: str,
        reason: str,
        now: int,
        message: str = "",
        *,
        count_reason: bool = True,
    ) -> None:
        st = p.stats
        st.invalid += 1
        if count_reason:
            st.invalid_reasons[reason] = st.invalid_reasons.get(reason, 0) + 1
            self._events.append(Refused(peer, what, reason, message))
        if st.invalid >= QUARANTINE_AFTER and st.quarantined_until <= now:
            st.quarantined_until = now + QUARANTINE_MS
            p.pending.clear()
            self._events.append(PeerQuarantined(peer, st.quarantined_until, reason))

    def _expire(self, now: int) -> None:
        for peer, p in list(self._peers.items()):
            expired = [x for x, v in p.pending.items() if v.deadline <= now]
            timed_out = False
            for x in expired:
                if p.pending.pop(x).initiator:
                    timed_out = True
            if timed_out:
                self._fail(peer, p, now)

    def _remember(self, p: _Peer, x: int, pend: _Pending) -> None:
        p.pending[x] = pend
        while len(p.pending) > MAX_PENDING_PER_PEER:
            p.pending.pop(next(iter(p.pending)))

    def _jitter(self, interval: int) -> int:
        return int(interval * (0.5 + self.rng.random()))

    def _charter_ref(self) -> list[Any]:
        cur = self.chain.current_version
        return [cur.version, cur.hash[:CHARTER_REF_BYTES]]

    # -- encoding ---------------------------------------------------------------------------

    def _send(self, peer: MemberId, p: _Peer, msg: dict[str, Any]) -> None:
        self._events.append(Send(peer, self._encode(peer, p, msg)))

    def _encode(self, peer: MemberId, p: _Peer, msg: dict[str, Any]) -> bytes:
        data = codec.dumps(msg)
        p.stats.messages_sent += 1
        p.stats.bytes_sent += len(data)
        return data

    def _decode(self, data: bytes, charter: Any) -> dict[str, Any]:
        limit = max_message_bytes(self.frame_bytes, len(charter.members))
        if len(data) > limit:
            raise GossipError("too_large", f"message of {len(data)} bytes; the limit is {limit}")
        try:
            msg = codec.loads(data, max_bytes=limit)
        except DecodeError as e:
            raise GossipError("decode", f"malformed gossip message: {e.message}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("t"), str) or msg["t"] not in _KINDS:
            raise GossipError("decode", "a gossip message is a map with t = h, r, p or a")
        t = msg["t"]
        extra = msg.keys() - _KEYS[t]
        if extra:
            raise GossipError("decode", f"unknown fields in a {_KINDS[t]}: {sorted(extra)}")
        if type(msg.get("x")) is not int:
            raise GossipError("decode", "x (exchange id) must be an integer")
        if t in "hr":
            c = msg.get("c")
            if not (
                isinstance(c, list)
                and len(c) == 2
                and type(c[0]) is int
                and c[0] >= 1
                and isinstance(c[1], bytes)
                and len(c[1]) == CHARTER_REF_BYTES
            ):
                raise GossipError(
                    "decode", f"c must be [charter version, {CHARTER_REF_BYTES}-byte hash prefix]"
                )
            dg = msg.get("dg")
            if not isinstance(dg, bytes) or len(dg) != DIGEST_BYTES:
                raise GossipError("decode", f"dg must be a {DIGEST_BYTES}-byte digest")
            for h in msg.get("hd", []) if isinstance(msg.get("hd", []), list) else [None]:
                if not (
                    isinstance(h, list)
                    and len(h) == 3
                    and isinstance(h[0], bytes)
                    and len(h[0]) == 32
                    and type(h[1]) is int
                    and h[1] >= 1
                    and isinstance(h[2], bytes)
                    and len(h[2]) == 32
                ):
                    raise GossipError("decode", "hd must be a list of [log, seq, hash]")
        sv = msg.get("sv", "")
        if "sv" in msg and not (isinstance(sv, str) and 0 < len(sv) <= MAX_SOFTWARE_CHARS):
            raise GossipError("decode", f"sv is text of 1 to {MAX_SOFTWARE_CHARS} characters")
        for name in ("f", "rs", "m"):
            if name in msg and msg[name] is not True:
                raise GossipError("decode", f"{name} is present only as true")
        for name in ("ch", "en"):
            v = msg.get(name, [])
            if not isinstance(v, list) or not all(isinstance(b, bytes) for b in v):
                raise GossipError("decode", f"{name} must be a list of byte strings")
        it = msg.get("it", [])
        if not isinstance(it, list) or not all(
            isinstance(i, list) and len(i) == 2 and i[0] in _ITEM_KINDS and isinstance(i[1], bytes)
            for i in it
        ):
            raise GossipError("decode", "it must be a list of [kind g|f|p|a|n, bytes]")
        return msg
