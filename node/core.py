"""The member node, without HTTP: :class:`Node`, the one owner of its state.

A :class:`Node` owns the store, the Bloom index, the epoch keys, the charter
chain, the feeds, the gossip engine and the consortium administration. Every
other part of ``node/`` is a thin layer over it:

* the local API (:mod:`node.api`) turns HTTP requests into calls of
  :meth:`Node.query`, :meth:`Node.report`, :meth:`Node.retract`,
  :meth:`Node.status` and the ``propose_*`` / :meth:`Node.sign_proposal` admin
  calls, and maps the domain errors they raise to HTTP statuses;
* the peer transport (:mod:`node.peer`) seals and opens envelopes and moves
  bytes: it hands each opened peer message to :meth:`Node.receive`, fires
  :meth:`Node.handle_timer` when :meth:`Node.timer` says, and sends what
  :meth:`Node.take_sends` returns;
* the server (:mod:`node.server`) composes them and runs maintenance
  (:meth:`Node.sweep`, :meth:`Node.rebuild_index`).

State changes have one place each: epoch keys enter through
:meth:`Node._add_epoch_keys`, tokens enter the index through the feeds'
append listener (:meth:`Node._index_entry`, for this member's own entries and
replicated ones alike), and every engine event is handled by
:meth:`Node._handle_events`. Governance changes are drafted by the pure
functions of :mod:`protocol.governance`, which the simulator calls too.

Raw identifiers are canonicalised and tokenised here and go no further: the
store keeps them only sealed (for republishing after a key rotation), and no
log line or error message carries one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from contracts.charter import Member
from contracts.errors import (
    CharterRejected,
    DecodeError,
    GovernanceError,
    InvalidValue,
    LocalProtocolError,
    NotReady,
    PolicyViolation,
    ProposalRejected,
    RequestRefused,
    SignatureError,
)
from contracts.indicators import canonical
from contracts.policy import DAY_MS
from contracts.taxonomy import RETRACT_REASONS
from node.aftermatch import AfterMatch
from node.alerts import URGENT_PUSH_GAP_MS, Alerts, AlertSettings
from node.audit import current_actor, detail
from node.batch import ReportResult, check_batch, check_fields
from node.index import LiveIndex
from node.keys import KeyRing
from node.metrics import Metrics
from node.store import SqliteStore
from node.summaries import (
    BaseFile,
    Summaries,
    appeal_tokens,
    build_base,
    encode_add,
    summaries_of,
)
from node.verdicts import Verdicts, dropped_authors, kind_value, live_epochs, rfc3339, utf8, verdict
from node.version import version_info
from protocol import codec, governance
from protocol.charter_chain import CharterChain, decode_charter
from protocol.cose import verify1
from protocol.entries import (
    MAX_REF_CHARS,
    RETRACTABLE,
    AddOp,
    AppealDecidedOp,
    Entry,
    Op,
    RetractOp,
)
from protocol.feeds import Feeds
from protocol.gossip import (
    AppealItemArrived,
    CharterAdvanced,
    EntriesAccepted,
    Event,
    ExchangeCompleted,
    ForkDetected,
    GossipEngine,
    KeysGranted,
    PeerFailed,
    PeerQuarantined,
    ProposalUpdated,
    Refused,
    Send,
)
from protocol.grants import make_grant
from protocol.keys import MemberId, MemberKey, member_id_text, parse_member_id, short_id
from protocol.listed import WarningTokens
from protocol.proposals import Proposal, ProposalOffer
from protocol.store import IndicatorState
from protocol.tokens import EpochKeys

__all__ = [
    "GossipSettings",
    "ItemError",
    "JoinRequest",
    "Node",
    "ReportResult",
    "read_join_request",
    "rfc3339",
]

log = logging.getLogger("riskmesh.node")
admin_log = logging.getLogger("riskmesh.admin")
gossip_log = logging.getLogger("riskmesh.gossip")

DEFAULT_TTL_DAYS = 365
REPORT_FIELDS = frozenset({"kind", "value", "category", "severity", "ttl_days", "ref"})
RETRACT_FIELDS = frozenset({"kind", "value", "reason", "of"})


@dataclass(frozen=True, slots=True)
class GossipSettings:
    """How this node gossips (``gossip.*`` settings); the charter's policy caps the frame."""

    interval_s: float = 2.0
    fanout: int = 3
    frame_bytes: int = 1 << 20


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A would-be member's self-signed request: its id, name and peer endpoint."""

    id: bytes
    name: str
    endpoint: str


def read_join_request(data: bytes) -> JoinRequest:
    """Check a join request's self-signature and shape."""
    try:
        s = verify1(data, max_bytes=4096)
        m = codec.loads(s.payload)
    except (DecodeError, SignatureError) as e:
        raise LocalProtocolError(f"not a valid join request: {e.message}") from None
    if (
        not isinstance(m, dict)
        or m.keys() != {"v", "id", "name", "endpoint", "ts"}
        or m["id"] != s.kid
        or not isinstance(m["name"], str)
        or not isinstance(m["endpoint"], str)
    ):
        raise LocalProtocolError("not a valid join request: wrong fields")
    return JoinRequest(m["id"], m["name"], m["endpoint"])


#: the window catch-up progress is measured over (``Node.catch_up``)
CATCH_UP_WINDOW_MS = 60_000


class Node:
    """One member's node: its state, and every rule it applies to it."""

    def __init__(
        self,
        store: SqliteStore,
        key: MemberKey,
        *,
        region: str = "CN",
        error_rate: float = 0.001,
        gossip: GossipSettings | None = None,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        now: int = 0,
        software: str | None = None,
        alerts: AlertSettings | None = None,
        find_next_key: Callable[[], MemberKey | None] | None = None,
        on_key_adopted: Callable[[MemberKey], None] | None = None,
        summary_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.key = key
        #: where to find a key `riskmesh rekey` prepared (it may appear while the node
        #: runs): adopted once a charter version makes it active in place of this
        #: member's current key (rekey-member)
        self.find_next_key = find_next_key
        self.on_key_adopted = on_key_adopted
        self.region = region
        self.error_rate = error_rate
        self.gossip = gossip or GossipSettings()
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.chain: CharterChain | None = None
        self.feeds: Feeds | None = None
        self.engine: GossipEngine | None = None
        self.epoch_keys = EpochKeys(store.epoch_keys())
        #: the local API's keys, checked from memory (node/keys.py)
        self.keys = KeyRing(store)
        #: this build's version, told to peers in the gossip hello (None: not told)
        self.software: str | None = software
        #: watchlist, recent queries and alert log (node/alerts.py)
        self.alerts = Alerts(store, self, alerts, metrics=metrics)
        #: sightings, disputes, appeals and what verdicts add from them (node/aftermatch.py)
        self.after_match = AfterMatch(self)
        #: members whose feed a fork proof froze: their reports drop out of verdicts
        self.frozen: set[bytes] = {p.log for p in store.fork_proofs()}
        self._synced = False
        #: verdict summaries (node/summaries.py): what queries read instead of SQLite.
        #: Tokens an uncommitted unit of work touched wait in ``_dirty``; each commit
        #: turns them into one numbered change (``summary_seq``), applied here and
        #: handed to ``summary_listeners`` (the serving processes' stream)
        self.summary_dir = summary_dir
        self._dirty: set[bytes] = set()
        self._dirty_adds: dict[bytes, tuple[bytes, int, AddOp]] = {}
        self._dirty_appeals: set[str] = set()
        self.summary_seq = 0
        self.summary_listeners: list[Callable[[int, Mapping[bytes, bytes | None]], None]] = []
        #: called after the query path switched to a new base file
        self.base_listeners: list[Callable[[], None]] = []
        #: called when a new base file starts being built, with the seq it will hold
        self.mark_listeners: list[Callable[[int], None]] = []
        started = time.perf_counter()
        if moved := store.merge_all_recent():
            log.info(
                "merged %d recent indicator rows into the indicator table in %.1f s",
                moved,
                time.perf_counter() - started,
            )
        self._clear_summary_dir()
        self.summaries = Summaries(self._build_base(now))
        #: the Bloom index of live tokens: the base file's filter and the adds since
        #: (node/index.py)
        self.index = LiveIndex(self.summaries.base.bloom, error_rate=error_rate)
        self.verdicts = Verdicts(
            self.summaries, self.epoch_keys, region=region, record=self.alerts.queried
        )
        store.commit_listeners.append(self._summaries_changed)
        #: entries and ops appended from other members' feeds (catch-up progress),
        #: and (time, entries, ops) after each message received, over the last minute
        self._replicated = [0, 0]
        self._progress: deque[tuple[int, int, int]] = deque()
        self._outbox: deque[Send] = deque()
        #: called (with no argument) whenever there is something to send or the
        #: engine's timer may have moved: the peer transport subscribes here
        self.wakeup_listeners: list[Callable[[], None]] = []
        raws = store.charters()
        if raws:
            self._set_chain(CharterChain.from_raws(raws, anchor=CharterChain(raws[0]).anchor), now)

    def close(self) -> None:
        self.keys.flush()
        with self.store.atomic():
            self.alerts.flush()
        self.store.close()

    def __repr__(self) -> str:
        return f"Node(member={short_id(self.key.id)})"

    # -- setup -------------------------------------------------------------------------

    def _set_chain(self, chain: CharterChain, now: int) -> None:
        self.chain = chain
        self.feeds = Feeds(self.store, chain)
        self.feeds.listeners.append(self._index_entry)
        # an entry adding a warning-listed value is refused by its token (DESIGN §15)
        self.feeds.listed = WarningTokens(self.epoch_keys)
        self.feeds.listeners.append(self.alerts.on_entry)
        self.feeds.fork_listeners.append(lambda proof: self.frozen.add(proof.log))
        policy = chain.current.policy
        self.engine = GossipEngine(
            self.key,
            self.feeds,
            rng=self.rng,
            now=now,
            interval_ms=max(1, int(self.gossip.interval_s * 1000)),
            fanout=self.gossip.fanout,
            frame_bytes=min(self.gossip.frame_bytes, policy.gossip.frame_bytes),
            software=self.software,
        )

    def _index_entry(self, entry: Entry) -> None:
        """Every appended entry's added tokens go into the Bloom index at once (the
        one place tokens are indexed: own entries and replicated ones alike)."""
        dirty, adds = self._dirty, self._dirty_adds
        if entry.log != self.key.id:
            self._replicated[0] += 1
            self._replicated[1] += len(entry.ops)
        ops = entry.ops
        fresh = None
        if all(type(op) is AddOp for op in ops):  # most entries: whole-entry set operations
            only_adds = cast("Sequence[AddOp]", ops)
            fresh = {op.tok: (entry.log, entry.ts, op) for op in only_adds}
            if len(fresh) < len(ops):  # a token twice in one entry: op by op
                fresh = None
        if fresh is not None:
            clash = fresh.keys() & adds.keys()
            if dirty:
                clash |= fresh.keys() & dirty
            for t in clash:
                del fresh[t]
            dirty |= clash
            adds.update(fresh)
            added = [op.tok for op in only_adds]
        else:
            added = []
            for op in ops:
                if isinstance(op, AddOp):
                    added.append(op.tok)
                    # a token's first add in this unit of work: its summary may be made
                    # from the op itself (see _summaries_changed)
                    if op.tok in adds or op.tok in dirty:
                        dirty.add(op.tok)
                    else:
                        adds[op.tok] = (entry.log, entry.ts, op)
                elif isinstance(op, AppealDecidedOp):
                    self._dirty_appeals.add(op.id)
                else:
                    dirty.add(op.tok)
        self.index.add_many(added)

    # -- verdict summaries -------------------------------------------------------------

    def _build_base(self, now: int) -> BaseFile:
        """A base file of every token's summary, as the store holds them now."""
        seq = self.summary_seq
        if self.summary_dir is None or self.store.path is None:
            return BaseFile.from_connection(self.store.conn, now, seq, error_rate=self.error_rate)
        self.summary_dir.mkdir(mode=0o700, exist_ok=True)
        path = self.summary_dir / f"base-{seq}-{now}"
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w+b") as f:
            build_base(self.store.conn, f, now, seq, error_rate=self.error_rate)
        return BaseFile.open(path)

    def _clear_summary_dir(self) -> None:
        """Delete the base files an earlier run left (its last one, and a builder's
        unfinished ``.tmp`` if it was killed): this run builds its own from the store,
        and one base file is as large as the summaries of every live token."""
        if self.summary_dir is None or not self.summary_dir.is_dir():
            return
        for path in self.summary_dir.glob("base-*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                log.info("removed %s, a summary file of an earlier run", path.name)

    def next_base_path(self, now: int) -> tuple[Path, int]:
        """Where a new base file goes, and the change seq it will hold at least (the
        builder reads the store after this call: a later commit may be in it too,
        which the overlay's full replacements make harmless)."""
        assert self.summary_dir is not None
        self.summary_dir.mkdir(mode=0o700, exist_ok=True)
        self._mark_summaries()
        return self.summary_dir / f"base-{self.summary_seq}-{now}", self.summary_seq

    def _mark_summaries(self) -> None:
        seq = self.summary_seq
        self.summaries.mark(seq)
        self.index.mark(seq)
        for listener in self.mark_listeners:
            listener(seq)

    def install_base(self, base: BaseFile, *, close: bool = True) -> BaseFile:
        """Switch the query path to a newly built base file and delete the older one;
        returns it, closed unless ``close`` is false (then the caller closes it, e.g.
        off its event loop: the last unmapping of a deleted file frees its page cache,
        which takes a while for a large one)."""
        old = self.summaries.set_base(base)
        self.index.set_base(base.bloom, base.seq)
        for listener in self.base_listeners:
            listener()
        # a serving process still mapping the old file keeps it until it switches
        if old.path is not None and old.path != base.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old.path)
        if close:
            old.close()
        return old

    def rebuild_summaries(self, now: int) -> None:
        """Rebuild the base file here and now (tests, and nodes without a file)."""
        self._mark_summaries()
        self.install_base(self._build_base(now))

    def _summaries_changed(self) -> None:
        """After each commit: the new summaries of the tokens it touched. A token this
        unit of work added once and touched no other way, and that had no summary, gets
        one made from the add itself (the row it wrote: first and last reported at the
        entry's time); any other is read back from SQLite."""
        if not self._dirty and not self._dirty_adds and not self._dirty_appeals:
            return
        toks, self._dirty = self._dirty, set()
        adds, self._dirty_adds = self._dirty_adds, {}
        changes: dict[bytes, bytes | None] = {}
        if adds:
            for t in toks:
                adds.pop(t, None)
            fresh = list(adds)
            for t, before in zip(fresh, self.summaries.lookup(fresh), strict=True):
                if before is None:
                    log, ts, op = adds[t]
                    changes[t] = encode_add(op.ep, log, op.kind, op.cat, op.sev, op.exp, ts)
                else:
                    toks.add(t)
        if self._dirty_appeals:
            ids, self._dirty_appeals = self._dirty_appeals, set()
            toks |= appeal_tokens(self.store.conn, ids)
        if toks:
            # expired rows stay in (a query applies expiry); the next base drops them
            changes.update(summaries_of(self.store.conn, toks, 0))
        self.summary_seq += 1
        self.summaries.apply(self.summary_seq, changes)
        for listener in self.summary_listeners:
            listener(self.summary_seq, changes)

    def _add_epoch_keys(self, keys: Mapping[int, bytes]) -> None:
        """The one place epoch keys are added: durable in the store, then in memory."""
        with self.store.atomic(durable=True):
            for ep, k in keys.items():
                self.store.put_epoch_key(ep, k)
        for ep, k in keys.items():
            self.epoch_keys.add(ep, k)
        self.alerts.epochs_added(keys)

    def install_charter(
        self, raw: bytes, epoch_keys: Mapping[int, bytes] | None = None, now: int = 0
    ) -> None:
        """Install a genesis charter (or the next version) and any epoch keys."""
        with self.store.atomic(durable=True):
            if self.chain is None:
                self._set_chain(CharterChain(raw), now)
            else:
                self.chain.append(raw)
            assert self.chain is not None
            self.store.put_charter(self.chain.current.version, raw)
        if epoch_keys:
            self._add_epoch_keys(epoch_keys)

    def rebuild_index(self, now: int) -> None:
        """The Bloom index rebuilt here and now: it is a new base file's filter (the
        served node builds them in a process of its own, node/server.py)."""
        self.rebuild_summaries(now)

    def sweep(self, now: int) -> int:
        """The expiry sweep: rebuild the index once expired or retracted tokens
        make up most of it; return the live token count."""
        live = self.store.live_count(now)
        if self.index.count > 2 * live + 1024:
            self.rebuild_index(now)
        return live

    def _ready(self) -> tuple[CharterChain, Feeds]:
        if self.chain is None or self.feeds is None:
            raise NotReady("no charter installed on this node (riskmesh charter install)")
        if not self.epoch_keys:
            raise NotReady("this node holds no consortium key yet (waiting for a key grant)")
        return self.chain, self.feeds

    def _engine(self) -> GossipEngine:
        if self.engine is None:
            raise NotReady("no charter installed on this node (riskmesh charter install)")
        return self.engine

    def claimed_own_head(self) -> int:
        """The highest seq of this member's own feed that a peer has *shown* this node:
        entries signed by this member's key, beyond its head, held until the gap before
        them fills. A peer's word alone (its heads) changes nothing (the engine counts an
        unproven claim against the peer)."""
        me = MemberId(self.key.id)
        best = 0
        for e in self.store.held(me):
            try:
                e.verify_signature()
            except SignatureError:
                continue
            best = max(best, e.seq)
        return best

    def _maybe_adopt_next_key(self, now: int) -> None:
        """If the charter now has this member under its prepared next key (rekey-member),
        in place of its current key: adopt it and republish the live reports."""
        chain = self.chain
        if chain is None or self.find_next_key is None or chain.current.is_active(self.key.id):
            return
        new = self.find_next_key()
        if new is None:
            return
        cur = chain.current
        if not cur.is_active(new.id) or cur.is_active(self.key.id):
            return
        old = self.key
        resealed = self.store.reseal(new)
        self.key = new
        if self.on_key_adopted is not None:
            self.on_key_adopted(new)
        self._set_chain(chain, now)  # a new feed and engine under the new key
        self._synced = True  # the new feed is empty everywhere: no seq to reuse
        n = self.republish(now, author=old.id)
        log.warning(
            "adopted the new member key %s in place of %s (charter version %d); resealed "
            "%d rows and republished %d live reports in the new feed",
            short_id(new.id),
            short_id(old.id),
            cur.version,
            resealed,
            n,
        )
        self._wake()

    @property
    def revoked(self) -> bool:
        """Whether the charter this node holds says this member was removed."""
        me = None if self.chain is None else self.chain.current.member(self.key.id)
        return me is not None and me.status == "revoked"

    def learn_charters(self, raws: Sequence[bytes], now: int) -> int:
        """Signed charter versions a peer sent along with its refusal (it no longer counts
        this member in); append those that follow the chain, each checked as always
        (predecessor hash, a quorum of admin signatures). Returns how many were new."""
        chain = self.chain
        if chain is None:
            return 0
        added = 0
        for raw in raws:
            if not isinstance(raw, bytes):
                continue
            try:
                cv = decode_charter(raw)
                if cv.charter.version != chain.current.version + 1:
                    continue
                with self.store.atomic(durable=True):
                    chain.append(raw)
                    self.store.put_charter(cv.charter.version, raw)
            except (CharterRejected, DecodeError, SignatureError) as e:
                gossip_log.warning(
                    "a charter version sent with a refusal is invalid: %s", e.message
                )
                break
            added += 1
        if added:
            self._maybe_adopt_next_key(now)
        if added and self.revoked:
            gossip_log.error(
                "this member was REMOVED from the consortium in charter version %d: its "
                "reports are refused and its feed no longer gossips",
                chain.current.version,
            )
        return added

    @property
    def syncing(self) -> bool:
        """Whether this node still holds its own publishing after a start: until it has
        completed one exchange with a peer (which brings back any of its own entries that
        peers hold and it lacks: a restored backup), unless it is the only active member."""
        if self._synced:
            return False
        chain = self.chain
        if chain is None:
            return True
        return any(m.id != self.key.id for m in chain.current.active_members())

    def own_head(self) -> int:
        head = self.store.head(MemberId(self.key.id))
        return 0 if head is None else head.seq

    def _ready_to_publish(self) -> tuple[CharterChain, Feeds]:
        chain, feeds = self._ready()
        if self.key.id in self.frozen:
            raise NotReady(
                "this member's feed is frozen by a fork proof (two entries signed at one seq): "
                "nothing more can be added to it; an admin gives it a new key and feed with "
                "`riskmesh admin propose rekey-member` (see `riskmesh status`)",
                reason="frozen",
            )
        if self.revoked:
            raise NotReady(
                f"this member was removed from the consortium (charter version "
                f"{chain.current.version}); it may no longer report",
                reason="revoked",
            )
        if self.syncing:
            raise NotReady(
                "this node has just started and holds its own reports until it has completed "
                "one exchange with a peer (so that it never signs over entries of its own "
                "that peers hold and it lacks, after a restore); see `riskmesh status`",
                reason="syncing",
            )
        claimed, mine = self.claimed_own_head(), self.own_head()
        if claimed > mine:
            raise NotReady(
                f"peers hold this member's feed up to seq {claimed} but this node only to "
                f"{mine} (restored from an old backup?); it is catching up from them and "
                "will take reports again once it has"
            )
        return chain, feeds

    def live_epochs(self, now: int | None = None) -> list[int]:
        """Epochs whose key this node holds and that are not retired (node/verdicts.py)."""
        return live_epochs(self.chain, self.epoch_keys, now)

    def republish(self, now: int, *, author: bytes | None = None) -> int:
        """Republish this member's live reports under the current epoch (after a key
        rotation), from its sealed store of raw values; returns how many.

        With ``author`` (this member's former identity, after a rekey), republish that
        identity's live reports, whatever their epoch, in this member's new feed.
        """
        chain, feeds = self.chain, self.feeds
        if chain is None or feeds is None or not chain.current.can_publish(self.key.id):
            return 0
        charter = chain.current
        ce = charter.current_epoch()
        if ce not in self.epoch_keys:
            return 0
        tk = self.epoch_keys.tokenizer(ce)
        me = self.key.id
        source = me if author is None else author
        ops: list[Op] = []
        own: list[tuple[bytes, int, str, str]] = []
        done: set[bytes] = set()
        for ep in self.live_epochs(now):
            if ep == ce and author is None:
                continue
            for tok, kind, value in list(self.store.own_values(ep)):
                mine = [
                    s
                    for s in self.store.indicators(tok)
                    if s.author == source and s.ep == ep and s.live(now)
                ]
                if not mine:
                    continue
                new_tok = tk.token(kind, value)
                if new_tok in done or any(
                    s.author == me and s.ep == ce and s.live(now)
                    for s in self.store.indicators(new_tok)
                ):
                    continue
                done.add(new_tok)
                s0 = mine[0]
                ops.append(AddOp(new_tok, kind, ce, s0.cat, s0.sev, s0.exp))
                own.append((new_tok, ce, kind, value))
        step = charter.policy.max_ops
        for i in range(0, len(ops), step):
            with self.store.atomic(durable=True):
                # the values first: the entry's rows point at their batch (node/store.py)
                self.store.put_own_values(own[i : i + step])
                feeds.publish(self.key, ops[i : i + step], now)
        if ops:
            log.info("republished %d live reports under epoch %d", len(ops), ce)
            self._wake()
        return len(ops)

    def own_reports(
        self, now: int, *, after: str = "", limit: int = 1000, values: bool = False
    ) -> dict[str, Any]:
        """This member's own live reports, by token (``riskmesh reports list|export``):
        kind, category, severity, times, and with ``values`` the raw (canonical) value
        from the sealed store. ``next`` is the token to pass as ``after`` for more."""
        try:
            start = bytes.fromhex(after)
        except ValueError:
            raise RequestRefused("bad_request", "after is a token in hex") from None
        if not 1 <= limit <= 10_000:
            raise RequestRefused("bad_request", "limit is 1 to 10000")
        rows = self.store.own_live_reports(self.key.id, now, start, limit)
        out = []
        for tok, ep, kind, cat, sev, first_ts, exp, value in rows:
            r: dict[str, Any] = {
                "token": tok.hex(),
                "epoch": ep,
                "kind": kind,
                "category": cat,
                "severity": sev,
                "first_reported": rfc3339(first_ts),
                "expires": rfc3339(exp),
            }
            if values:
                r["value"] = value
            out.append(r)
        return {"reports": out, "next": rows[-1][0].hex() if len(rows) == limit else None}

    # -- reports -----------------------------------------------------------------------

    def report(self, items: Sequence[Any], now: int) -> ReportResult:
        chain, feeds = self._ready_to_publish()
        policy = chain.current.policy
        check_batch(items, policy.max_ops, "a report")
        ep = chain.current.current_epoch()
        if ep not in self.epoch_keys:
            raise NotReady(f"this node holds no key for the current epoch {ep}")
        tk = self.epoch_keys.tokenizer(ep)
        errors: list[ItemError] = []
        ops: list[Op] = []
        own: list[tuple[bytes, int, str, str]] = []
        for i, item in enumerate(items):
            try:
                kind, canon = self._item_canonical(item, REPORT_FIELDS)
                self.after_match.check_listed(policy, kind, canon)
                cat = item.get("category")
                if cat is None:
                    raise RequestRefused("missing_field", "category is required")
                sev = item.get("severity", 3)
                ttl = item.get(
                    "ttl_days",
                    min(
                        DEFAULT_TTL_DAYS,
                        policy.max_ttl_days.get(cat, DEFAULT_TTL_DAYS)
                        if isinstance(cat, str)
                        else DEFAULT_TTL_DAYS,
                    ),
                )
                if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
                    raise RequestRefused("bad_ttl", "ttl_days must be a positive integer")
                ref = item.get("ref")
                if ref is not None and (
                    not isinstance(ref, str) or len(ref) > MAX_REF_CHARS or not utf8(ref)
                ):
                    raise RequestRefused("bad_ref", f"ref is text of at most {MAX_REF_CHARS} chars")
                exp = now + ttl * DAY_MS
                policy.check_add(kind=kind, category=cat, severity=sev, exp=exp, ts=now)
                tok = tk.token(kind, canon)
                ops.append(AddOp(tok, kind, ep, cat, sev, exp, ref))
                own.append((tok, ep, kind, canon))
            except (InvalidValue, PolicyViolation, RequestRefused) as e:
                errors.append(ItemError(i, e.reason, e.message))
        if errors:
            raise _invalid_items(errors)
        with self.store.atomic(durable=True):
            # the values first: the entry's rows point at their batch (node/store.py)
            self.store.put_own_values(own)
            entry = feeds.publish(self.key, ops, now)
            self.store.audit(now, current_actor(), "report", _entry_detail(entry, ops))
        log.info("published entry seq=%d with %d reports", entry.seq, len(ops))
        self._push_urgent(ops, now)
        self._wake()
        return ReportResult(len(ops), entry)

    def retract(self, items: Sequence[Any], now: int) -> ReportResult:
        chain, feeds = self._ready_to_publish()
        policy = chain.current.policy
        check_batch(items, policy.max_ops, "a retraction")
        errors: list[ItemError] = []
        ops: list[Op] = []
        for i, item in enumerate(items):
            try:
                kind, canon = self._item_canonical(item, RETRACT_FIELDS)
                reason = item.get("reason")
                if reason not in RETRACT_REASONS:
                    raise RequestRefused(
                        "bad_reason", "reason must be one of " + ", ".join(RETRACT_REASONS)
                    )
                of = item.get("of", "report")
                if of != "report":  # a sighting, dispute or appeal (node/aftermatch.py)
                    if of not in RETRACTABLE:
                        raise RequestRefused(
                            "bad_of", "of is report, seen, dispute or appeal (default report)"
                        )
                    ops.extend(self.after_match.retract_ops(kind, canon, of, str(reason), now))
                    continue
                found = False
                for ep in self.live_epochs(now):
                    tok = self.epoch_keys.tokenizer(ep).token(kind, canon)
                    mine = [
                        s
                        for s in self.store.indicators(tok)
                        if s.author == self.key.id and s.live(now)
                    ]
                    if mine:
                        ops.append(RetractOp(tok, kind, ep, str(reason)))
                        found = True
                if not found:
                    raise RequestRefused("not_reported", "this member has no live report of it")
            except (InvalidValue, PolicyViolation, RequestRefused) as e:
                errors.append(ItemError(i, e.reason, e.message))
        if errors:
            raise _invalid_items(errors)
        with self.store.atomic(durable=True):
            entry = feeds.publish(self.key, ops, now)
            self.store.audit(now, current_actor(), "retract", _entry_detail(entry, ops))
        log.info("published entry seq=%d with %d retractions", entry.seq, len(ops))
        self._push_urgent(ops, now)
        self._wake()
        return ReportResult(len(ops), entry)

    def _item_canonical(self, item: object, fields: frozenset[str]) -> tuple[str, str]:
        """Kind and canonical value of one report or retraction item, or RequestRefused."""
        if not isinstance(item, Mapping):
            raise RequestRefused("bad_item", "an item is an object")
        check_fields(item, fields)
        kind, value = kind_value(item)
        return kind, canonical(kind, value, region=self.region)

    # -- replication -------------------------------------------------------------------

    def accept_entry(self, raw: bytes, now: int) -> str:
        """Offer an entry from a peer (outside gossip). Returns the offer's status."""
        return self.accept_entries([raw], now)[0]

    def accept_entries(self, raws: Sequence[bytes], now: int) -> list[str]:
        """Offer entries from a peer in one unit of work, as a gossip frame's are (outside
        gossip: tools and benchmarks). Each offer's status, in order."""
        _, feeds = self._ready()
        out = []
        with self.store.atomic():
            for raw in raws:
                offer = feeds.offer(raw, now)
                out.append(
                    offer.status if offer.reason is None else f"{offer.status}:{offer.reason}"
                )
        return out

    # -- queries -----------------------------------------------------------------------

    def query(
        self,
        items: Sequence[Any],
        now: int,
        *,
        canonical_input: bool = False,
        max_batch: int = 10_000,
        record: bool = True,
    ) -> list[dict[str, Any]]:
        """Verdicts for ``items`` (node/verdicts.py, from the summaries); with ``record``,
        the values are watched for ``alerts.recent_query_hours`` (node/alerts.py), each
        with its item's ``ref``."""
        chain, _ = self._ready()
        v = self.verdicts
        v.chain = chain
        if len(v.frozen) != len(self.frozen):
            v.frozen = frozenset(self.frozen)
        return v.query(
            items, now, canonical_input=canonical_input, max_batch=max_batch, record=record
        )

    def counted_reports(self, toks: Sequence[bytes], now: int) -> list[IndicatorState]:
        """The live reports on ``toks`` that a verdict counts (as :meth:`query` does)."""
        chain = self.chain
        if chain is None or not toks:
            return []
        hits = [t for t, h in zip(toks, self.index.contains_many(toks), strict=True) if h]
        states = self.store.indicators_many(hits) if hits else {}
        dropped = self._dropped_authors(chain)
        return [
            s for t in hits for s in states.get(t, ()) if s.live(now) and s.author not in dropped
        ]

    def verdict_of(
        self,
        kind: str,
        live: Sequence[IndicatorState],
        *,
        now: int | None = None,
        toks: Sequence[bytes] | None = None,
    ) -> dict[str, Any]:
        """The verdict :meth:`query` answers, from :meth:`counted_reports` (alerts and
        the retro-hunt of a new watch use it: keep the two alike). Given ``now`` (and
        the value's tokens, else those of ``live``), with what sightings, disputes and
        appeals add (node/aftermatch.py), as :meth:`query` answers."""
        chain = self.chain
        disclose = chain is not None and chain.current.policy.disclose_reporters
        names = {m.id: m.name for m in chain.current.members} if chain and disclose else {}
        if now is None or chain is None:
            return verdict(kind, list(live), names, disclose)
        item_toks = list(toks) if toks is not None else sorted({s.tok for s in live})

        def base(k: str, lv: list[IndicatorState]) -> dict[str, Any]:
            return verdict(k, lv, names, disclose)

        ctx = self.after_match.context(item_toks, chain)
        return self.after_match.verdict(ctx, kind, item_toks, list(live), now, base)

    def _push_urgent(self, ops: Sequence[Op], now: int) -> None:
        """An entry reporting (or retracting) in an urgent category is offered to every
        reachable peer at once (DESIGN §14), rate-limited, through the engine."""
        engine, chain = self.engine, self.chain
        if engine is None or chain is None:
            return
        if self.alerts.urgent(ops, self.key.id, chain.current.policy):
            engine.push_now(now, URGENT_PUSH_GAP_MS)
            self._handle_events(now)

    def _dropped_authors(self, chain: CharterChain) -> frozenset[bytes]:
        """Authors whose reports no verdict counts (node/verdicts.py)."""
        return dropped_authors(chain, self.frozen)

    # -- gossip: what the peer transport calls ------------------------------------------

    def is_member(self, member_id: bytes) -> bool:
        return self.chain is not None and self.chain.current.is_active(member_id)

    def endpoint_of(self, member_id: bytes) -> str | None:
        m = None if self.chain is None else self.chain.current.member(member_id)
        return None if m is None or not m.endpoint else m.endpoint

    def receive(self, peer: MemberId, data: bytes, now: int) -> bytes | None:
        """One opened message from ``peer`` (a request or an answer); our reply, if any.

        Raises GossipError when the message is refused as a whole.
        """
        engine = self._engine()
        try:
            with self.store.atomic():
                reply = engine.receive(peer, data, now)
        finally:
            self._handle_events(now)
            self._progress.append((now, self._replicated[0], self._replicated[1]))
            while len(self._progress) > 2 and self._progress[1][0] < now - CATCH_UP_WINDOW_MS:
                self._progress.popleft()
        return reply

    def catch_up(self, now: int) -> dict[str, Any] | None:
        """How far behind its peers this node is and how fast it gains, over the last
        minute: entries behind (the most any peer holds that this node lacks), entries
        and ops replicated per second, and the seconds left at that rate (None: no
        progress seen). None when no peer holds anything this node lacks."""
        engine = self.engine
        if engine is None:
            return None
        lags = [engine.peer_lag(MemberId(m.id)) for m in engine.chain.current.members]
        behind = max((lag[0] for lag in lags if lag is not None), default=0)
        if behind <= 0:
            return None
        window = [p for p in self._progress if p[0] >= now - CATCH_UP_WINDOW_MS]
        if len(window) >= 2 and window[-1][0] > window[0][0]:
            secs = (window[-1][0] - window[0][0]) / 1000
            entries = (window[-1][1] - window[0][1]) / secs
            ops = (window[-1][2] - window[0][2]) / secs
        else:
            entries = ops = 0.0
        return {
            "entries_behind": behind,
            "entries_per_s": round(entries, 1),
            "ops_per_s": round(ops, 1),
            "eta_s": round(behind / entries) if entries > 0 else None,
        }

    def start_exchange(self, peer: MemberId, now: int) -> None:
        """Begin an exchange with ``peer`` now (outside the engine's rounds)."""
        self._engine().start_exchange(peer, now)
        self._handle_events(now)

    def timer(self) -> int | None:
        """When :meth:`handle_timer` next has something to do (ms), or None."""
        return None if self.engine is None else self.engine.get_timer()

    def handle_timer(self, now: int) -> None:
        engine = self.engine
        if engine is None or now < engine.get_timer():
            return
        with self.store.atomic():
            engine.handle_timer(now)
        self._handle_events(now)

    def connection_failed(self, peer: MemberId, now: int) -> None:
        if self.engine is not None:
            self.engine.connection_failed(peer, now)
            self._handle_events(now)

    def take_sends(self) -> list[Send]:
        """What the engine wants sent, each the first message of an exchange."""
        out = list(self._outbox)
        self._outbox.clear()
        return out

    def _wake(self) -> None:
        for fn in self.wakeup_listeners:
            fn()

    def _handle_events(self, now: int) -> None:
        """The one place engine events are handled."""
        engine = self.engine
        if engine is None:
            return
        m = self.metrics
        while (ev := engine.next_event()) is not None:
            if isinstance(ev, Send):
                self._outbox.append(ev)
            else:
                self._on_event(ev, now, m)
        # something to send, or the engine's timer moved: the transport looks again
        self._wake()

    def _on_event(self, ev: Event, now: int, m: Metrics | None) -> None:
        if isinstance(ev, EntriesAccepted):
            if m is not None:
                m.entries.labels("accepted").inc(len(ev.entries))
            gossip_log.debug(
                "accepted %d entries (%d ops)",
                len(ev.entries),
                sum(len(e.ops) for e in ev.entries),
            )
        elif isinstance(ev, Refused):
            if m is not None:
                m.entries.labels(ev.reason).inc()
            gossip_log.warning(
                "refused %s from %s: %s (%s)", ev.what, short_id(ev.peer), ev.reason, ev.message
            )
        elif isinstance(ev, KeysGranted):
            self._add_epoch_keys(ev.keys)
            self._engine().retry_waiting(now)  # entries that waited for the key
            gossip_log.info(
                "key grant from %s opened: epochs %s", short_id(ev.grant.issuer), sorted(ev.keys)
            )
            self.republish(now)
        elif isinstance(ev, ForkDetected):
            gossip_log.error(
                "ALERT fork proof: member %s signed two entries at seq %d; its feed is frozen",
                short_id(ev.proof.log),
                ev.proof.seq,
            )
            if m is not None:
                m.forks.inc()
        elif isinstance(ev, CharterAdvanced):
            gossip_log.info("charter version %d accepted", ev.version)
            self._charter_advanced(ev.version, now)
            self._maybe_adopt_next_key(now)
        elif isinstance(ev, AppealItemArrived):
            self.after_match.on_item(ev.kind, ev.raw, now)
        elif isinstance(ev, ProposalUpdated):
            gossip_log.info("proposal %s for version %d: %s", ev.id, ev.version, ev.status)
        elif isinstance(ev, PeerQuarantined):
            gossip_log.warning(
                "peer %s quarantined until %s (%s)",
                short_id(ev.peer),
                rfc3339(ev.until),
                ev.reason,
            )
        elif isinstance(ev, PeerFailed):
            if m is not None:
                m.gossip_failures.inc()
            gossip_log.info(
                "peer %s unreachable (%d in a row); backing off until %s",
                short_id(ev.peer),
                ev.failures,
                rfc3339(ev.backoff_until),
            )
        elif isinstance(ev, ExchangeCompleted):
            if not self._synced:
                self._synced = True
                gossip_log.info(
                    "first exchange completed (with %s): reporting open", short_id(ev.peer)
                )
            if m is not None:
                m.exchanges.labels("initiated" if ev.initiator else "answered").inc()

    # -- administration ----------------------------------------------------------------

    def _admin_base(self) -> tuple[GossipEngine, CharterChain]:
        engine = self._engine()
        if self.key.id not in engine.chain.current.admins():
            raise GovernanceError("not_admin", "this member is not an admin of the consortium")
        return engine, engine.chain

    def propose_add_member(self, join_request: bytes, now: int, *, admin: bool = False) -> Proposal:
        """Propose adding the member whose join request this is."""
        _, chain = self._admin_base()
        try:
            jr = read_join_request(join_request)
        except LocalProtocolError as e:
            raise GovernanceError("bad_join_request", e.message) from None
        newcomer = governance.member(jr.id, jr.name, jr.endpoint, admin=admin)
        d = governance.draft_add_member(chain.current_version, now, self.key.id, newcomer)
        return self._propose("add-member", d, now)

    def propose_remove_member(self, member: str, now: int) -> Proposal:
        """Propose removing ``member`` (name, id or unambiguous id prefix), revoked at its
        feed head as this node sees it, with a key rotation in the same version."""
        _, chain = self._admin_base()
        mid = self.resolve_member(member)
        d = governance.draft_remove_member(
            chain.current_version,
            now,
            self.key.id,
            mid,
            self._head_seq(mid),
            secrets.token_bytes(32),
        )
        return self._propose("remove-member", d, now)

    def propose_rekey_member(self, member: str, join_request: bytes, now: int) -> Proposal:
        """Propose giving ``member`` a new key and feed (from its new join request)."""
        _, chain = self._admin_base()
        mid = self.resolve_member(member)
        try:
            jr = read_join_request(join_request)
        except LocalProtocolError as e:
            raise GovernanceError("bad_join_request", e.message) from None
        cur = chain.current.member(mid)
        assert cur is not None
        replacement = Member(id=jr.id, name=cur.name, endpoint=jr.endpoint, roles=cur.roles)
        d = governance.draft_rekey_member(
            chain.current_version, now, self.key.id, mid, self._head_seq(mid), replacement
        )
        return self._propose("rekey-member", d, now)

    def propose_rotate_key(self, now: int) -> Proposal:
        _, chain = self._admin_base()
        d = governance.draft_rotate_key(
            chain.current_version, now, self.key.id, secrets.token_bytes(32)
        )
        return self._propose("rotate-key", d, now)

    def propose_policy(self, changes: Mapping[str, object], now: int) -> Proposal:
        _, chain = self._admin_base()
        d = governance.draft_policy(chain.current_version, now, self.key.id, changes)
        return self._propose("policy", d, now)

    def sign_proposal(self, pid: str, now: int) -> Proposal:
        engine = self._engine()
        p = engine.proposals.get(pid)
        if p is not None and p.charter.version <= engine.chain.current.version:
            final = engine.chain.version_info(p.charter.version)
            if final is not None and final.charter == p.charter:
                raise GovernanceError("already_final", f"proposal {pid} is already final")
            raise GovernanceError(
                "superseded",
                f"proposal {pid} was superseded: version "
                f"{p.charter.version} was made final by another proposal",
            )
        with self.store.atomic(durable=True):
            offer = _proposal_offer(lambda: engine.sign_proposal(pid, now))
            self.store.audit(now, current_actor(), "sign", detail(proposal=pid))
        assert offer.proposal is not None
        admin_log.info("signed proposal %s (%s)", pid, offer.status)
        self._handle_events(now)
        return offer.proposal

    def _propose(self, action: str, draft: governance.Draft, now: int) -> Proposal:
        engine = self._engine()
        with self.store.atomic(durable=True):
            offer = _proposal_offer(lambda: engine.propose(draft.charter, now))
            assert offer.proposal is not None
            if draft.new_epoch is not None:
                self.store.put_pending_key(offer.proposal.id, *draft.new_epoch)
            self.store.audit(
                now, current_actor(), "propose", detail(proposal=offer.proposal.id, change=action)
            )
        admin_log.info("proposed %s as %s (%s)", action, offer.proposal.id, offer.status)
        self._handle_events(now)
        return offer.proposal

    def _head_seq(self, member_id: bytes) -> int:
        head = self.store.head(MemberId(member_id))
        return 0 if head is None else head.seq

    def resolve_member(self, who: str) -> bytes:
        """A member by name, full id, or unambiguous id prefix (of at least 4 characters)."""
        chain = self._engine().chain
        members = chain.current.members
        by_name = [m for m in members if m.name == who]
        if len(by_name) > 1:  # a rekeyed member: its old identity is revoked
            by_name = [m for m in by_name if m.status == "active"]
        if len(by_name) == 1:
            return by_name[0].id
        try:
            return parse_member_id(who)
        except DecodeError:
            pass
        text = who.strip().lower()
        hits = [m for m in members if len(text) >= 4 and member_id_text(m.id).startswith(text)]
        if len(hits) == 1:
            return hits[0].id
        if len(hits) > 1:
            raise GovernanceError("ambiguous_member", f"{who!r} matches {len(hits)} members")
        raise GovernanceError("not_member", f"no member named or with an id starting {who!r}")

    def _charter_advanced(self, version: int, now: int) -> None:
        """A version became final (here or anywhere): keys of its new epoch made here
        come into force, an admin seals the keys whoever needs them, and this member
        republishes its live reports under a new epoch."""
        engine = self._engine()
        chain = engine.chain
        info = chain.version_info(version)
        prev = chain.get(version - 1)
        if info is None or prev is None:
            return
        new = info.charter
        for p in engine.proposals.all():
            if p.charter == new:
                pending = self.store.take_pending_key(p.id)
                if pending is not None and pending[0] in new.epoch_ids():
                    self._add_epoch_keys({pending[0]: pending[1]})
                    admin_log.info("epoch %d key of proposal %s now in force", pending[0], p.id)
        held = dict(self.epoch_keys.items())
        with self.store.atomic(durable=True):
            for plan in governance.plan_grants(prev, new, self.key.id, held):
                engine.add_grant(make_grant(self.key, plan.to, plan.keys, cv=version, ts=now))
                admin_log.info("granted epochs %s to %s", sorted(plan.keys), plan.name)
        self.republish(now)

    # -- views -------------------------------------------------------------------------

    def proposal_view(self, p: Proposal) -> dict[str, Any]:
        chain = self._engine().chain
        cur = chain.current
        final = chain.version_info(p.charter.version)
        if final is not None and final.charter == p.charter:
            status = "final"
        elif p.charter.version <= cur.version:
            status = "superseded"
        else:
            status = "pending"
        names = {m.id: m.name for m in (*cur.members, *p.charter.members)}
        base = chain.get(p.charter.version - 1) or cur
        return {
            "id": p.id,
            "version": p.charter.version,
            "status": status,
            # the charter's ts: a quorum must sign by then, or the proposal expires
            # and must be made again
            "signing_deadline": rfc3339(p.charter.ts) if status == "pending" else None,
            "changes": governance.describe_changes(base, p.charter),
            "signers": sorted(names.get(s, short_id(s)) for s in p.signers),
            "needed": base.quorum_size(),
            "admins": sorted(names.get(a, short_id(a)) for a in base.admins()),
        }

    def proposals(self) -> list[dict[str, Any]]:
        engine = self._engine()
        ordered = sorted(engine.proposals.all(), key=lambda p: (p.charter.version, p.id))
        return [self.proposal_view(p) for p in ordered]

    def charter_view(self) -> dict[str, Any]:
        chain = self._engine().chain
        c = chain.current
        return {
            "consortium": c.consortium,
            "version": c.version,
            "hash": chain.current_version.hash.hex(),
            "anchor": chain.anchor.hex(),
            "effective": rfc3339(c.ts),
            "quorum": c.quorum,
            "quorum_size": c.quorum_size(),
            "members": [_member_view(m) for m in c.members],
            "epochs": [{"ep": e.ep, "since": rfc3339(e.since)} for e in c.epochs],
            "policy": c.policy.to_map(),
            "versions": [
                {"version": v.version, "hash": v.hash.hex(), "signers": len(v.signers)}
                for v in chain.versions()
            ],
        }

    def status(self, now: int) -> dict[str, Any]:
        heads = self.store.heads()
        out: dict[str, Any] = {
            "member": {"id": member_id_text(self.key.id)},
            "version": version_info(),
            "charter": None,
            "members": [],
            "epochs": self.live_epochs(now),
            "syncing": self.syncing,
            "index": dataclasses.asdict(self.index.statistics()),
            "forks": [
                {"log": member_id_text(p.log), "seq": p.seq} for p in self.store.fork_proofs()
            ],
            "peers": self.peer_status(now),
            "catch_up": self.catch_up(now),
            "alerts": self.alerts.status(now),
        }
        if self.chain is not None:
            c = self.chain.current
            out["charter"] = {
                "consortium": c.consortium,
                "version": c.version,
                "hash": self.chain.current_version.hash.hex(),
                "quorum": c.quorum,
                "policy": c.policy.to_map(),
            }
            me = c.member(self.key.id)
            if me is not None:
                out["member"]["name"] = me.name
                out["member"]["status"] = me.status
            for m in c.members:
                h = heads.get(MemberId(m.id))
                out["members"].append(
                    {
                        "id": member_id_text(m.id),
                        "name": m.name,
                        "status": m.status,
                        "roles": sorted(m.roles),
                        "endpoint": m.endpoint,
                        "head": None
                        if h is None
                        else {"seq": h.seq, "hash": h.hash.hex(), "ts": rfc3339(h.ts)},
                    }
                )
        return out

    def peer_status(self, now: int) -> list[dict[str, Any]]:
        engine = self.engine
        if engine is None:
            return []
        out = []
        stats = engine.peer_stats()
        for member in engine.chain.current.members:
            pid = MemberId(member.id)
            if pid == engine.me:
                continue
            st = stats.get(pid)
            lag = engine.peer_lag(pid)
            row: dict[str, Any] = {
                "id": member_id_text(pid),
                "name": member.name,
                "endpoint": member.endpoint,
                "last_success": None,
                "failures": 0,
                "consecutive_failures": 0,
                "backoff_until": None,
                "quarantined_until": None,
                "exchanges": 0,
                "invalid": 0,
                "bytes_sent": 0,
                "bytes_received": 0,
                "lag": None if lag is None else {"we_lack": lag[0], "they_lack": lag[1]},
                "version": None,
            }
            view = engine.peer_view(pid)
            if view is not None:
                row["version"] = view.software
            if st is not None:
                row.update(
                    last_success=None if st.last_success is None else rfc3339(st.last_success),
                    failures=st.failures,
                    consecutive_failures=st.consecutive_failures,
                    backoff_until=rfc3339(st.backoff_until) if st.backoff_until > now else None,
                    quarantined_until=rfc3339(st.quarantined_until)
                    if st.quarantined_until > now
                    else None,
                    exchanges=st.exchanges,
                    invalid=st.invalid,
                    invalid_reasons=dict(st.invalid_reasons),
                    bytes_sent=st.bytes_sent,
                    bytes_received=st.bytes_received,
                )
            out.append(row)
        return out

    def update_metrics(self) -> None:
        m = self.metrics
        if m is None:
            return
        m.index_tokens.set(self.index.count)
        # a removed member's series go: only current members' lag is shown
        m.lag.clear()
        if self.engine is None:
            return
        members = self.engine.chain.current
        for pid in self.engine.peer_stats():
            lag = self.engine.peer_lag(pid)
            if lag is not None and members.is_active(pid):
                m.lag.labels(short_id(pid)).set(lag[0])


def _member_view(m: Member) -> dict[str, Any]:
    return {
        "id": member_id_text(m.id),
        "name": m.name,
        "endpoint": m.endpoint,
        "roles": sorted(m.roles),
        "status": m.status,
        **({"until_seq": m.until_seq} if m.until_seq is not None else {}),
    }


def _proposal_offer(fn: Callable[[], ProposalOffer]) -> ProposalOffer:
    try:
        return fn()
    except ProposalRejected as e:
        raise GovernanceError(e.reason, e.message) from None


def _entry_detail(entry: Entry, ops: Sequence[Op]) -> str:
    """An audit row's detail for a published entry: its seq and hash, the tokens
    (with epoch) and refs of its ops; never a raw value."""
    return detail(
        seq=entry.seq,
        hash=entry.hash,
        tokens=[f"{op.tok.hex()}/{op.ep}" for op in ops if isinstance(op, AddOp | RetractOp)],
        refs=[op.ref for op in ops if isinstance(op, AddOp) and op.ref] or None,
        reasons=sorted({op.why for op in ops if isinstance(op, RetractOp)}) or None,
    )


def _invalid_items(errors: list[ItemError]) -> RequestRefused:
    # a batch refused only for warning-listed values says so (DESIGN §15)
    listed = all(e.code == "warning_listed" for e in errors)
    return RequestRefused(
        "warning_listed" if listed else "invalid_items",
        f"{len(errors)} item(s) refused; nothing was accepted",
        [e.to_json() for e in errors],
    )
