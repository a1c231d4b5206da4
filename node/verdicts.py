"""The query path: items in, verdicts out, from verdict summaries only (DESIGN §9, §11).

One `Verdicts` answers queries for the `~node.core.Node` (in the writer, and
in a node without serving processes) and one for each serving process
(`node.workers`). Both read the same things: the charter chain, the epoch
keys, the authors whose reports no verdict counts, and the token summaries
(`node.summaries`). None of it touches SQLite.

A batch costs, per item, its validation, one keyed BLAKE2b per live epoch
and a share of one `numpy.searchsorted` over the base file; only the items
that match (rare in a payment path) build their verdict from their summary,
with the same functions as before: `verdict` and the after-match part
(`node.aftermatch.VerdictContext`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from contracts.errors import InvalidValue, NotReady, RequestRefused
from contracts.indicators import KINDS, canonical
from contracts.policy import DAY_MS
from node.aftermatch import Confidence, VerdictContext
from node.alerts import check_ref
from node.summaries import Summaries, decode
from protocol.charter_chain import CharterChain
from protocol.keys import member_id_text
from protocol.store import AppealState, Decision, IndicatorState, SignalState
from protocol.tokens import EpochKeys

__all__ = [
    "Recorder",
    "Verdicts",
    "dropped_authors",
    "kind_value",
    "live_epochs",
    "rfc3339",
    "verdict",
]


class Recorder(Protocol):
    """Where a batch's values go to be remembered for ``alerts.recent_query_hours``."""

    def __call__(
        self,
        kinds: list[str],
        values: list[str],
        refs: list[str | None],
        toks: list[bytes],
        per_item: int,
        now: int,
    ) -> None: ...


@functools.lru_cache(maxsize=65536)
def rfc3339(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def live_epochs(chain: CharterChain | None, epochs: Iterable[int], now: int | None) -> list[int]:
    """Epochs whose key is held (``epochs``) and that are not retired.

    An epoch retires once a later epoch has been in force for longer than the
    longest time to live: no report under it can still be live.
    """
    if chain is None:
        return []
    charter = chain.current
    since = {e.ep: e.since for e in charter.epochs}
    longest = max(charter.policy.max_ttl_days.values(), default=0) * DAY_MS
    out = []
    for ep in epochs:
        if ep not in since:
            continue
        later = [s for e, s in since.items() if e > ep]
        if now is not None and later and min(later) + longest < now:
            continue
        out.append(ep)
    return out


def dropped_authors(chain: CharterChain, frozen: Iterable[bytes]) -> frozenset[bytes]:
    """Authors whose reports no verdict counts: an equivocator's (which of its branches
    a node holds depends on arrival order) and, if the policy says so, removed members'."""
    if chain.current.policy.keep_reports_of_removed:
        return frozenset(frozen)
    revoked = {m.id for m in chain.current.members if m.status == "revoked"}
    return frozenset(set(frozen) | revoked)


def kind_value(item: Mapping[str, Any]) -> tuple[str, str]:
    kind = item.get("kind")
    value = item.get("value")
    if kind is None:
        raise RequestRefused("missing_field", "kind is required")
    if value is None:
        raise RequestRefused("missing_field", "value is required")
    if not isinstance(kind, str) or kind not in KINDS:
        shown = repr(kind[:32]) if isinstance(kind, str) else f"of type {type(kind).__name__}"
        raise RequestRefused(
            "unknown_kind",
            f"unknown kind {shown}; expected one of " + ", ".join(sorted(KINDS)),
        )
    if not isinstance(value, str):
        raise RequestRefused("bad_value", "value must be a string")
    return kind, value


def utf8(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def verdict(
    kind: str, live: list[IndicatorState], names: Mapping[bytes, str], disclose: bool
) -> dict[str, Any]:
    """The verdict on one item from the reports that count."""
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


#: matching verdicts kept for reuse, at most (then the cache starts over)
CACHE_ITEMS = 1 << 16

_Cached = tuple[tuple[bytes | None, ...], int, dict[str, Any], Confidence | None]


class Verdicts:
    """Answers queries from a chain, epoch keys and summaries (see the module docstring).

    The owner keeps the attributes current: ``chain`` and ``frozen`` as the
    charter and fork proofs change, ``epoch_keys`` as keys arrive, and
    ``summaries`` as commits change tokens.
    """

    def __init__(
        self,
        summaries: Summaries,
        epoch_keys: EpochKeys,
        *,
        region: str,
        record: Recorder | None = None,
    ) -> None:
        self.summaries = summaries
        self.epoch_keys = epoch_keys
        self.region = region
        self.record = record
        self.chain: CharterChain | None = None
        self.frozen: frozenset[bytes] = frozenset()
        self._ctx_key: tuple[int, int, frozenset[bytes]] | None = None
        self._names: dict[bytes, str] = {}
        self._dropped: frozenset[bytes] = frozenset()
        self._no_match = {k: {"match": False, "kind": k} for k in KINDS}
        #: verdicts of matching items, by their tokens: (the summaries they were made
        #: from, the time until which they hold, the verdict but its confidence, what the
        #: confidence is computed from). Emptied when the charter or the frozen feeds
        #: change; an entry is used only while its summaries are the same bytes
        self._cache: dict[bytes, _Cached] = {}
        self._eps: list[int] | None = None
        self._prefixes: list[dict[str, hashlib.blake2b]] = []

    def __repr__(self) -> str:
        return f"Verdicts(tokens={self.summaries.base.count}+{len(self.summaries.overlay)})"

    def _context(self, chain: CharterChain) -> tuple[dict[bytes, str], frozenset[bytes]]:
        key = (chain.current.version, id(chain.current), self.frozen)
        if key != self._ctx_key:
            disclose = chain.current.policy.disclose_reporters
            self._names = {m.id: m.name for m in chain.current.members} if disclose else {}
            self._dropped = dropped_authors(chain, self.frozen)
            self._ctx_key = key
            self._cache.clear()
        return self._names, self._dropped

    def query(
        self,
        items: Sequence[Any],
        now: int,
        *,
        canonical_input: bool = False,
        max_batch: int = 10_000,
        record: bool = True,
    ) -> list[dict[str, Any]]:
        """Verdicts for ``items``; with ``record``, the values are handed to the recorder
        (``alerts.recent_query_hours``), each with its item's ``ref``. A verdict may be
        one object shared by several items and calls (every "no match" of a kind is):
        copy one before changing it."""
        chain = self.chain
        if chain is None:
            raise NotReady("no charter installed yet: run riskmesh charter install")
        if len(items) > max_batch:
            raise RequestRefused(
                "batch_too_large", f"{len(items)} items; at most {max_batch} per query"
            )
        eps = live_epochs(chain, self.epoch_keys, now)
        if eps != self._eps:
            tokenizers = [self.epoch_keys.tokenizer(ep) for ep in eps]
            self._prefixes = [{k: tk.prefixed(k) for k in KINDS} for tk in tokenizers]
            self._eps = eps
        prefixes = self._prefixes
        n_ep = len(prefixes)
        results: list[dict[str, Any] | None] = [None] * len(items)
        kinds: list[str] = []
        toks: list[bytes] = []
        slots: list[int] = []
        canons: list[str] = []
        #: the refs of the items that have one, by slot
        refs_of: dict[int, str] = {}
        region = self.region
        one = prefixes[0] if n_ep == 1 and canonical_input else None
        add_tok, add_kind, add_slot, add_canon = (
            toks.append,
            kinds.append,
            slots.append,
            canons.append,
        )
        for i, item in enumerate(items):
            # the common case first: {"kind", "value"} of canonical ASCII text, one epoch
            if one is not None and type(item) is dict and len(item) == 2:
                kind = item.get("kind")
                value = item.get("value")
                if type(kind) is str and type(value) is str and value.isascii():
                    p = one.get(kind)
                    if p is not None:
                        h = p.copy()
                        h.update(value.encode())
                        add_tok(h.digest())
                        add_kind(kind)
                        add_slot(i)
                        add_canon(value)
                        continue
            try:
                if not isinstance(item, Mapping):
                    raise RequestRefused("bad_item", "an item is an object with kind and value")
                kind, value = kind_value(item)
                if not canonical_input:
                    canon = canonical(kind, value, region=region)
                elif value.isascii() or utf8(value):
                    canon = value
                else:
                    raise InvalidValue(kind, "encoding", "not valid Unicode text")
                ref = item.get("ref")
                if ref is not None:
                    ref = check_ref(ref)
            except (InvalidValue, RequestRefused) as e:
                results[i] = {"error": {"code": e.reason, "message": e.message}}
                continue
            encoded = canon.encode()
            for pre in prefixes:
                h = pre[kind].copy()
                h.update(encoded)
                add_tok(h.digest())
            add_kind(kind)
            if ref is not None:
                refs_of[len(slots)] = ref
            add_slot(i)
            add_canon(canon)
        if record and self.record is not None:
            refs: list[str | None] = [None] * len(slots)
            for j, ref in refs_of.items():
                refs[j] = ref
            self.record(kinds, canons, refs, toks, n_ep, now)
        found = self.summaries.lookup(toks)
        no_match = self._no_match
        if not any(found):
            if len(slots) == len(items):  # every item valid, none found: the common batch
                return [no_match[k] for k in kinds]
            for j, i in enumerate(slots):
                results[i] = no_match[kinds[j]]
            return [r for r in results if r is not None]
        names, dropped = self._context(chain)
        cache = self._cache
        for j, i in enumerate(slots):
            lo = j * n_ep
            if n_ep == 1:
                blob = found[j]
                if blob is None:
                    results[i] = no_match[kinds[j]]
                    continue
                key: bytes = toks[j]
                blobs: tuple[bytes | None, ...] = (blob,)
            else:
                blobs = tuple(found[lo : lo + n_ep])
                if not any(blobs):
                    results[i] = no_match[kinds[j]]
                    continue
                key = b"".join(toks[lo : lo + n_ep])
            c = cache.get(key)
            if c is None or c[0] != blobs or now >= c[1]:
                c = self._verdict(chain, kinds[j], toks[lo : lo + n_ep], blobs, now, names, dropped)
                if len(cache) >= CACHE_ITEMS:
                    cache.clear()
                cache[key] = c
            v = dict(c[2])
            if c[3] is not None:
                v["confidence"] = c[3].at(now)
            results[i] = v
        return [r for r in results if r is not None]

    def _verdict(
        self,
        chain: CharterChain,
        kind: str,
        toks: Sequence[bytes],
        blobs: tuple[bytes | None, ...],
        now: int,
        names: Mapping[bytes, str],
        dropped: frozenset[bytes],
    ) -> _Cached:
        """One item's verdict from its tokens' summaries (the same functions as ever),
        without its confidence, and until when it holds."""
        reports: list[IndicatorState] = []
        signals: dict[bytes, list[SignalState]] = {}
        appeals: dict[bytes, list[AppealState]] = {}
        decisions: dict[str, list[Decision]] = {}
        for t, blob in zip(toks, blobs, strict=True):
            if blob is None:
                continue
            s = decode(t, blob)
            reports.extend(s.reports)
            if s.signals:
                signals[t] = list(s.signals)
            if s.appeals:
                appeals[t] = list(s.appeals)
            for aid, ds in s.decisions.items():
                decisions[aid] = list(ds)
        policy = chain.current.policy
        live = [s for s in reports if s.live(now) and s.author not in dropped]
        ctx = VerdictContext(policy, dropped, signals, appeals, decisions)
        counted = ctx.counted(toks, live, now)
        v = verdict(kind, counted, names, policy.disclose_reporters)
        conf = None
        if v["match"]:
            extra, conf = ctx.fields_at(toks, counted, now)
            v.update(extra)
        return blobs, ctx.changes_at(toks, live, now), v, conf
