"""The member node's core, without HTTP: reports, retractions, queries, status.

:class:`NodeCore` owns the store, the charter chain, the feeds, the epoch keys
and the Bloom index. The local API (:mod:`node.api`) and the CLI are thin
layers over it. Raw identifiers are canonicalised and tokenised here and go no
further: the store keeps them only sealed (for republishing after a key
rotation), and no log line or error message carries one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.errors import InvalidValue, PolicyViolation, RiskmeshError
from contracts.indicators import KINDS, canonical
from contracts.policy import DAY_MS
from contracts.taxonomy import RETRACT_REASONS
from node.index import TokenIndex
from node.store import SqliteStore
from protocol.charter_chain import CharterChain
from protocol.entries import MAX_REF_CHARS, AddOp, Entry, Op, RetractOp
from protocol.feeds import Feeds
from protocol.keys import MemberKey, member_id_text
from protocol.store import IndicatorState
from protocol.tokens import EpochKeys

__all__ = ["ItemError", "NodeCore", "NotReady", "ReportResult", "RequestError", "rfc3339"]

log = logging.getLogger("riskmesh.node")

DEFAULT_TTL_DAYS = 365
REPORT_FIELDS = {"kind", "value", "category", "severity", "ttl_days", "ref"}
RETRACT_FIELDS = {"kind", "value", "reason"}


class RequestError(RiskmeshError):
    """A request the node refuses as a whole (maps to a 4xx)."""

    def __init__(
        self, code: str, message: str, status: int = 400, items: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, reason=code)
        self.code = code
        self.status = status
        self.items = items


class NotReady(RequestError):
    def __init__(self, message: str) -> None:
        super().__init__("not_ready", message, status=409)


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class ReportResult:
    accepted: int
    entry: Entry


@functools.lru_cache(maxsize=65536)
def rfc3339(ms: int) -> str:
    """RFC 3339 UTC text of a time in ms (cached: verdicts repeat the same few times)."""
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class NodeCore:
    def __init__(
        self, store: SqliteStore, key: MemberKey, *, region: str = "CN", error_rate: float = 0.001
    ) -> None:
        self.store = store
        self.key = key
        self.region = region
        self.error_rate = error_rate
        self.chain: CharterChain | None = None
        self.feeds: Feeds | None = None
        self.epoch_keys = EpochKeys(store.epoch_keys())
        self.index = TokenIndex(1024, error_rate)
        #: members whose feed a fork proof froze: their reports drop out of verdicts
        self.frozen: set[bytes] = {p.log for p in store.fork_proofs()}
        #: set by the gossip service: the highest seq of this member's own feed
        #: that any peer says it holds (a node restored from an old backup must
        #: catch up on its own feed before it signs again, or it equivocates)
        self.own_head_claimed: Callable[[], int] | None = None
        raws = store.charters()
        if raws:
            self._set_chain(CharterChain.from_raws(raws, anchor=CharterChain(raws[0]).anchor))

    def _set_chain(self, chain: CharterChain) -> None:
        self.chain = chain
        self.feeds = Feeds(self.store, chain)
        self.feeds.listeners.append(self._index_entry)
        self.feeds.fork_listeners.append(lambda proof: self.frozen.add(proof.log))

    def _index_entry(self, entry: Entry) -> None:
        """Every appended entry's added tokens go into the Bloom index at once."""
        add = self.index.add
        for op in entry.ops:
            if isinstance(op, AddOp):
                add(op.tok)

    # -- setup ---------------------------------------------------------------

    def install_charter(self, raw: bytes, epoch_keys: Mapping[int, bytes] | None = None) -> None:
        """Install a genesis charter (or the next version) and any epoch keys."""
        with self.store.atomic(durable=True):
            if self.chain is None:
                self._set_chain(CharterChain(raw))
            else:
                self.chain.append(raw)
            self.store.put_charter(self.chain.current.version, raw)
            for ep, k in (epoch_keys or {}).items():
                self.store.put_epoch_key(ep, k)
                self.epoch_keys.add(ep, k)

    def rebuild_index(self, now: int) -> None:
        count = self.store.live_count(now)
        self.index = TokenIndex.build(
            self.store.live_tokens(now), count, error_rate=self.error_rate
        )

    def _ready(self) -> tuple[CharterChain, Feeds]:
        if self.chain is None or self.feeds is None:
            raise NotReady("no charter installed on this node (riskmesh charter install)")
        if not self.epoch_keys:
            raise NotReady("this node holds no consortium key yet (waiting for a key grant)")
        return self.chain, self.feeds

    def _ready_to_publish(self) -> tuple[CharterChain, Feeds]:
        chain, feeds = self._ready()
        if self.own_head_claimed is not None:
            head = self.store.head(self.key.id)
            mine = 0 if head is None else head.seq
            claimed = self.own_head_claimed()
            if claimed > mine:
                raise NotReady(
                    f"peers hold this member's feed up to seq {claimed} but this node only to "
                    f"{mine} (restored from an old backup?); it is catching up from them and "
                    "will take reports again once it has"
                )
        return chain, feeds

    def live_epochs(self, now: int | None = None) -> list[int]:
        """Epochs whose key this node holds and that are not retired.

        An epoch retires once a later epoch has been in force for longer than
        the longest time to live: no report under it can still be live.
        """
        if self.chain is None:
            return []
        charter = self.chain.current
        since = {e.ep: e.since for e in charter.epochs}
        longest = max(charter.policy.max_ttl_days.values(), default=0) * DAY_MS
        out = []
        for ep in self.epoch_keys:
            if ep not in since:
                continue
            later = [s for e, s in since.items() if e > ep]
            if now is not None and later and min(later) + longest < now:
                continue
            out.append(ep)
        return out

    def republish(self, now: int) -> int:
        """Republish this member's live reports under the current epoch (after a key
        rotation), from its sealed store of raw values; returns how many."""
        chain, feeds = self.chain, self.feeds
        if chain is None or feeds is None or not chain.current.can_publish(self.key.id):
            return 0
        charter = chain.current
        ce = charter.current_epoch()
        if ce not in self.epoch_keys:
            return 0
        tk = self.epoch_keys.tokenizer(ce)
        me = self.key.id
        ops: list[Op] = []
        own: list[tuple[bytes, int, str, str]] = []
        for ep in self.live_epochs(now):
            if ep == ce:
                continue
            for tok, kind, value in list(self.store.own_values(ep)):
                mine = [
                    s
                    for s in self.store.indicators(tok)
                    if s.author == me and s.ep == ep and s.live(now)
                ]
                if not mine:
                    continue
                new_tok = tk.token(kind, value)
                if any(
                    s.author == me and s.ep == ce and s.live(now)
                    for s in self.store.indicators(new_tok)
                ):
                    continue
                s0 = mine[0]
                ops.append(AddOp(new_tok, kind, ce, s0.cat, s0.sev, s0.exp))
                own.append((new_tok, ce, kind, value))
        step = charter.policy.max_ops
        for i in range(0, len(ops), step):
            with self.store.atomic(durable=True):
                feeds.publish(self.key, ops[i : i + step], now)
                self.store.put_own_values(own[i : i + step])
        if ops:
            log.info("republished %d live reports under epoch %d", len(ops), ce)
        return len(ops)

    # -- reports ---------------------------------------------------------------

    def report(self, items: Sequence[Mapping[str, Any]], now: int) -> ReportResult:
        chain, feeds = self._ready_to_publish()
        policy = chain.current.policy
        _check_batch(items, policy.max_ops, "a report")
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
                cat = item.get("category")
                if cat is None:
                    raise RequestError("missing_field", "category is required")
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
                    raise RequestError("bad_ttl", "ttl_days must be a positive integer")
                ref = item.get("ref")
                if ref is not None and (not isinstance(ref, str) or len(ref) > MAX_REF_CHARS):
                    raise RequestError("bad_ref", f"ref is text of at most {MAX_REF_CHARS} chars")
                exp = now + ttl * DAY_MS
                policy.check_add(kind=kind, category=cat, severity=sev, exp=exp, ts=now)
                tok = tk.token(kind, canon)
                ops.append(AddOp(tok, kind, ep, cat, sev, exp, ref))
                own.append((tok, ep, kind, canon))
            except (InvalidValue, PolicyViolation, RequestError) as e:
                errors.append(ItemError(i, _item_code(e), e.message))
        if errors:
            raise _invalid_items(errors)
        with self.store.atomic(durable=True):
            entry = feeds.publish(self.key, ops, now)
            self.store.put_own_values(own)
        log.info("published entry seq=%d with %d reports", entry.seq, len(ops))
        return ReportResult(len(ops), entry)

    def retract(self, items: Sequence[Mapping[str, Any]], now: int) -> ReportResult:
        chain, feeds = self._ready_to_publish()
        policy = chain.current.policy
        _check_batch(items, policy.max_ops, "a retraction")
        errors: list[ItemError] = []
        ops: list[Op] = []
        for i, item in enumerate(items):
            try:
                kind, canon = self._item_canonical(item, RETRACT_FIELDS)
                reason = item.get("reason")
                if reason not in RETRACT_REASONS:
                    raise RequestError(
                        "bad_reason", "reason must be one of " + ", ".join(RETRACT_REASONS)
                    )
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
                    raise RequestError("not_reported", "this member has no live report of it")
            except (InvalidValue, PolicyViolation, RequestError) as e:
                errors.append(ItemError(i, _item_code(e), e.message))
        if errors:
            raise _invalid_items(errors)
        with self.store.atomic(durable=True):
            entry = feeds.publish(self.key, ops, now)
        log.info("published entry seq=%d with %d retractions", entry.seq, len(ops))
        return ReportResult(len(ops), entry)

    def _item_canonical(self, item: object, fields: set[str]) -> tuple[str, str]:
        """Kind and canonical value of one report or retraction item, or RequestError."""
        if not isinstance(item, Mapping):
            raise RequestError("bad_item", "an item is an object")
        extra = set(item) - fields
        if extra:
            raise RequestError("unknown_field", f"unknown fields {sorted(extra)}")
        kind, value = _kind_value(item)
        return kind, canonical(kind, value, region=self.region)

    # -- replication -------------------------------------------------------------

    def accept_entry(self, raw: bytes, now: int) -> str:
        """Offer an entry from a peer; index what it adds. Returns the offer's status."""
        _, feeds = self._ready()
        with self.store.atomic():
            offer = feeds.offer(raw, now)
        return offer.status if offer.reason is None else f"{offer.status}:{offer.reason}"

    def sweep(self, now: int) -> int:
        """The expiry sweep: rebuild the index once expired or retracted tokens
        make up most of it; return the live token count."""
        live = self.store.live_count(now)
        if self.index.count > 2 * live + 1024:
            self.rebuild_index(now)
        return live

    # -- queries -------------------------------------------------------------------

    def query(
        self,
        items: Sequence[Any],
        now: int,
        *,
        canonical_input: bool = False,
        max_batch: int = 10_000,
    ) -> list[dict[str, Any]]:
        chain, _ = self._ready()
        if len(items) > max_batch:
            raise RequestError(
                "batch_too_large", f"{len(items)} items; at most {max_batch} per query", 413
            )
        epochs = [self.epoch_keys.tokenizer(ep) for ep in self.live_epochs(now)]
        n_ep = len(epochs)
        results: list[dict[str, Any] | None] = [None] * len(items)
        kinds: list[str] = []
        toks: list[bytes] = []
        slots: list[int] = []
        region = self.region
        for i, item in enumerate(items):
            try:
                if not isinstance(item, Mapping):
                    raise RequestError("bad_item", "an item is an object with kind and value")
                kind, value = _kind_value(item)
                canon = value if canonical_input else canonical(kind, value, region=region)
            except (InvalidValue, RequestError) as e:
                results[i] = {"error": {"code": _item_code(e), "message": e.message}}
                continue
            for tk in epochs:
                toks.append(tk.token(kind, canon))
            kinds.append(kind)
            slots.append(i)
        hits = self.index.contains_many(toks)
        positives = [t for t, h in zip(toks, hits, strict=True) if h]
        states = self.store.indicators_many(positives) if positives else {}
        disclose = chain.current.policy.disclose_reporters
        names = {m.id: m.name for m in chain.current.members} if disclose else {}
        dropped = self._dropped_authors(chain)
        for j, i in enumerate(slots):
            found: list[IndicatorState] = []
            for t in toks[j * n_ep : (j + 1) * n_ep]:
                found.extend(states.get(t, ()))
            live = [s for s in found if s.live(now) and s.author not in dropped]
            results[i] = _verdict(kinds[j], live, names, disclose)
        return [r for r in results if r is not None]

    def _dropped_authors(self, chain: CharterChain) -> frozenset[bytes]:
        """Authors whose reports no verdict counts: an equivocator's (which of its
        branches a node holds depends on arrival order) and, if the policy says so,
        removed members'."""
        if chain.current.policy.keep_reports_of_removed:
            return frozenset(self.frozen)
        revoked = {m.id for m in chain.current.members if m.status == "revoked"}
        return frozenset(self.frozen | revoked)

    # -- status -----------------------------------------------------------------

    def status(self, now: int) -> dict[str, Any]:
        heads = self.store.heads()
        out: dict[str, Any] = {
            "member": {"id": member_id_text(self.key.id)},
            "charter": None,
            "members": [],
            "epochs": self.live_epochs(now),
            "index": dataclasses.asdict(self.index.statistics()),
            "forks": [
                {"log": member_id_text(p.log), "seq": p.seq} for p in self.store.fork_proofs()
            ],
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
            for m in c.members:
                h = heads.get(m.id)  # type: ignore[call-overload]
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


def _check_batch(items: Sequence[Any], max_items: int, what: str) -> None:
    if not items:
        raise RequestError("empty_batch", f"{what} carries at least one item")
    if len(items) > max_items:
        raise RequestError(
            "batch_too_large", f"{len(items)} items; at most {max_items} in {what}", 413
        )


def _kind_value(item: Mapping[str, Any]) -> tuple[str, str]:
    kind = item.get("kind")
    value = item.get("value")
    if kind is None:
        raise RequestError("missing_field", "kind is required")
    if value is None:
        raise RequestError("missing_field", "value is required")
    if kind not in KINDS:
        raise RequestError(
            "unknown_kind",
            f"unknown kind {str(kind)[:32]!r}; expected one of " + ", ".join(sorted(KINDS)),
        )
    if not isinstance(value, str):
        raise RequestError("bad_value", "value must be a string")
    return kind, value


def _item_code(e: RiskmeshError) -> str:
    if isinstance(e, InvalidValue):
        return "invalid_value"
    if isinstance(e, PolicyViolation):
        return e.reason
    return e.reason


def _invalid_items(errors: list[ItemError]) -> RequestError:
    return RequestError(
        "invalid_items",
        f"{len(errors)} item(s) refused; nothing was accepted",
        422,
        [e.to_json() for e in errors],
    )


def _verdict(
    kind: str, live: list[IndicatorState], names: Mapping[bytes, str], disclose: bool
) -> dict[str, Any]:
    if not live:
        return {"match": False, "kind": kind}
    authors = {s.author for s in live}
    v: dict[str, Any] = {
        "match": True,
        "kind": kind,
        "reporters": len(authors),
        "categories": sorted({s.cat for s in live}),
        "max_severity": max(s.sev for s in live),
        "first_reported": rfc3339(min(s.first_ts for s in live)),
        "last_reported": rfc3339(max(s.last_ts for s in live)),
        "expires": rfc3339(max(s.exp for s in live)),
    }
    if disclose:
        v["reported_by"] = sorted(
            names[a] if a in names else member_id_text(a)[:8] for a in authors
        )
    return v
