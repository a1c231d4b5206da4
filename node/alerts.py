"""Watchlists and alerts (DESIGN §14): rapid interception, without HTTP.

A member's platform approved a transfer to an account an hour ago; another
member now reports the account as a money mule. :class:`Alerts` tells the
platform within a second, because matching is local: each node checks only
its own watchlist against the entries it accepts.

What is watched:

* **watches** — values a platform asked to watch (``POST /v1/watches``), each
  with an optional ``ref`` (the platform's case id) and a time to live;
* **recent queries** — every value queried in the last
  ``alerts.recent_query_hours`` (0: none), with the query item's ``ref``.

Both are kept as the value's tokens under every live epoch (re-made when a key
epoch is added, so a rotation loses nothing), the ref, and the canonical value
sealed with the store's at-rest key (:meth:`SqliteStore.seal`, resealed with the
rest when the member adopts a new key): watches one by one, recent queries a
batch at a time (one SecretBox per flush, so recording costs the
query path almost nothing — the items wait in memory for at most a second or
so, then :meth:`Alerts.flush` seals and stores them). A Bloom filter
(:class:`~node.index.TokenIndex`) of every watched token sits in front, so an
accepted entry that touches nothing watched costs one batch probe.

An alert is raised by :meth:`Alerts.on_entry`, the feeds' append listener,
when an accepted entry (any member's, this member's own included) adds a live
report on a watched value (``reported``) or retracts one so that its author no
longer reports it (``retracted``). A report republished under a new epoch, or
re-added while still live, is not news and raises nothing. The alert is
written in the same unit of work as the entry, so an accepted entry never
loses its alert; ids come from SQLite's AUTOINCREMENT, so they only grow, and
alerts are read in id order. Alerts are sealed at rest (they carry the value)
and pruned after ``alerts.retention_days``.

Delivery (cursor, Server-Sent Events, webhooks) is :mod:`node.delivery`'s job;
this module keeps what it needs: :attr:`Alerts.listeners` (called after
alerts are written), the alerts after an id, and durable cursors
(:meth:`Alerts.cursor`).

No raw value leaves this module except in an alert or a watch's verdict to the
member's own platforms: never in a log line, an error message, or the peer API.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import secrets
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Protocol

from prometheus_client import Counter, Histogram

from contracts.errors import InvalidValue, NotReady, RequestRefused
from contracts.indicators import KINDS, canonical
from contracts.policy import DAY_MS, DataPolicy
from node.batch import check_batch, check_fields
from node.index import TokenIndex
from node.metrics import Metrics
from node.store import SqliteStore
from protocol.entries import MAX_REF_CHARS, AddOp, Entry, Op, RetractOp
from protocol.keys import member_id_text
from protocol.store import IndicatorState
from protocol.tokens import EpochKeys

__all__ = [
    "DEFAULT_WATCH_TTL_DAYS",
    "MAX_WATCH_TTL_DAYS",
    "URGENT_PUSH_GAP_MS",
    "AlertSettings",
    "Alerts",
    "Host",
    "WebhookState",
]

log = logging.getLogger("riskmesh.alerts")

HOUR_MS = 3_600_000
#: Urgent reports are pushed to each peer at most once per this many ms (a burst
#: costs one exchange per peer per gap; the rest follows when the gap has passed).
URGENT_PUSH_GAP_MS = 100
DEFAULT_WATCH_TTL_DAYS = 365
MAX_WATCH_TTL_DAYS = 3650
WATCH_FIELDS = frozenset({"kind", "value", "ref", "ttl_days"})
UNWATCH_FIELDS = frozenset({"kind", "value", "ref"})
#: Recent queries waiting in memory past this many items are stored at once
#: (back-pressure on the query path); otherwise the upkeep stores them.
FLUSH_AT = 200_000
#: Items stored per upkeep step, so one step never holds the event loop long.
FLUSH_CHUNK = 20_000
#: Lapsed recent-query tokens are swept in this many slices of the token space,
#: one slice per upkeep step.
SWEEP_SLICES = 256
PRUNE_EVERY_MS = 60_000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=4096)
def _rfc3339(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The ``alerts.*`` settings a node runs with, and its clock (ms)."""

    recent_query_hours: int = 72
    retention_days: int = 30
    clock: Callable[[], int] = _wall_ms


class Host(Protocol):
    """What :class:`Alerts` needs of its :class:`~node.core.Node`."""

    region: str
    epoch_keys: EpochKeys

    def live_epochs(self, now: int | None = None) -> list[int]: ...

    def counted_reports(self, toks: Sequence[bytes], now: int) -> list[IndicatorState]:
        """The live reports on ``toks`` that a verdict counts."""
        ...

    def verdict_of(
        self,
        kind: str,
        live: Sequence[IndicatorState],
        *,
        now: int | None = None,
        toks: Sequence[bytes] | None = None,
    ) -> dict[str, Any]:
        """The verdict a query answers at ``now`` for the value whose tokens are
        ``toks``, from :meth:`counted_reports`."""
        ...


@dataclass(slots=True)
class WebhookState:
    """What the webhook deliverer (:mod:`node.delivery`) did, for ``status``."""

    target: str | None = None  # the URL's origin: scheme, host and port (never a path)
    delivered: int = 0  # alerts delivered
    failures: int = 0  # failed attempts
    consecutive_failures: int = 0
    last_error: str | None = None
    last_delivery: int | None = None
    retry_at: int | None = None


@dataclass(frozen=True, slots=True)
class _Watcher:
    """One watched value touched by an entry."""

    kind: str
    value: str
    ref: str | None
    source: str  # "watch" | "recent_query"
    toks: frozenset[bytes]  # the touched tokens it is watched by


class _AlertMetrics:
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.raised = Counter(
            "riskmesh_alerts", "Alerts raised, by event and source", ["event", "source"], registry=r
        )
        self.latency = Histogram(
            "riskmesh_alert_latency_seconds",
            "From the entry's time to the alert at this node",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )
        self.webhook = Counter(
            "riskmesh_webhook_deliveries",
            "Webhook deliveries: alerts delivered, attempts failed",
            ["outcome"],
            registry=r,
        )


_ALERT_METRICS: weakref.WeakKeyDictionary[Metrics, _AlertMetrics] = weakref.WeakKeyDictionary()


def _alert_metrics(metrics: Metrics | None) -> _AlertMetrics | None:
    """The alert metrics of ``metrics``' registry, registered once (a node reopened on
    the same Metrics must not register them twice)."""
    if metrics is None:
        return None
    m = _ALERT_METRICS.get(metrics)
    if m is None:
        m = _ALERT_METRICS[metrics] = _AlertMetrics(metrics)
    return m


# (at, kinds, canonical values, refs, tokens, tokens per item) of one query batch
_Queried = tuple[int, list[str], list[str], list[str | None], list[bytes], int]


class Alerts:
    """A node's watchlist, its recent queries and its alert log."""

    def __init__(
        self,
        store: SqliteStore,
        host: Host,
        settings: AlertSettings | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.conn = store.conn
        self.host = host
        self.settings = settings or AlertSettings()
        self.clock = self.settings.clock
        self._vkey_key = self._secret("vkey")
        self.metrics = _alert_metrics(metrics)
        #: called (no argument) after alerts were written: delivery waits on this
        self.listeners: list[Callable[[], None]] = []
        self.webhook = WebhookState()
        self.raised = 0  # since start
        self._pending: deque[_Queried] = deque()
        self._pending_items = 0
        self._pending_toks: set[bytes] = set()
        self._stale = 0  # tokens deleted since the filter was built
        self._sweep = 0
        self._next_prune = 0
        row = self.conn.execute("SELECT COALESCE(SUM(items), 0) FROM recent_batches").fetchone()
        self._recent_items = int(row[0])
        self._filter = self._build_filter()

    def __repr__(self) -> str:
        return f"Alerts(watched_tokens={self._filter.count})"

    # -- sealing ---------------------------------------------------------------------

    def _seal(self, data: bytes) -> bytes:
        return self.store.seal(data)

    def _open(self, sealed: bytes) -> bytes:
        return self.store.unseal(sealed)

    def _secret(self, name: str) -> bytes:
        """A random key of this node's, made once and kept sealed (so a member that
        adopts a new key reseals it with the rest)."""
        row = self.conn.execute("SELECT sealed FROM alert_secrets WHERE name = ?", (name,))
        got = row.fetchone()
        if got is not None:
            return self._open(got[0])
        secret = secrets.token_bytes(32)
        with self.store.atomic(durable=True):
            self.conn.execute(
                "INSERT INTO alert_secrets (name, sealed) VALUES (?, ?)", (name, self._seal(secret))
            )
        return secret

    def _vkey(self, kind: str, value: str) -> bytes:
        return hashlib.blake2b(
            f"{kind}\x00{value}".encode(), digest_size=16, key=self._vkey_key
        ).digest()

    def _tokens(self, kind: str, value: str, epochs: Iterable[int]) -> list[tuple[int, bytes]]:
        keys = self.host.epoch_keys
        return [(ep, keys.tokenizer(ep).token(kind, value)) for ep in epochs if ep in keys]

    # -- the filter ------------------------------------------------------------------

    def _build_filter(self) -> TokenIndex:
        c = self.conn
        n = int(
            c.execute(
                "SELECT (SELECT COUNT(*) FROM watch_tokens) + (SELECT COUNT(*) FROM recent_tokens)"
            ).fetchone()[0]
        )

        def toks() -> Iterable[bytes]:
            for (t,) in c.execute("SELECT tok FROM watch_tokens"):
                yield bytes(t)
            for (t,) in c.execute("SELECT tok FROM recent_tokens"):
                yield bytes(t)

        self._stale = 0
        return TokenIndex.build(toks(), n, error_rate=0.001)

    # -- watches ---------------------------------------------------------------------

    def _item(self, item: object, fields: frozenset[str]) -> tuple[str, str, str | None]:
        """Kind, canonical value and ref of one watch item, or RequestRefused/InvalidValue."""
        if not isinstance(item, Mapping):
            raise RequestRefused("bad_item", "an item is an object with kind and value")
        check_fields(item, fields)
        kind, value = item.get("kind"), item.get("value")
        if kind is None or value is None:
            raise RequestRefused("missing_field", "kind and value are required")
        if not isinstance(kind, str) or kind not in KINDS:
            raise RequestRefused(
                "unknown_kind", "unknown kind; expected one of " + ", ".join(sorted(KINDS))
            )
        if not isinstance(value, str):
            raise RequestRefused("bad_value", "value must be a string")
        return kind, canonical(kind, value, region=self.host.region), check_ref(item.get("ref"))

    def watch(self, items: Sequence[Any], now: int, *, max_batch: int = 10_000) -> dict[str, Any]:
        """Add (or renew) watches, all or nothing; answer each item's current verdict
        (the retro-hunt over what is already reported)."""
        epochs = self.host.live_epochs(now)
        if not epochs:
            raise NotReady("no charter or no consortium key on this node yet: nothing to watch")
        check_batch(items, max_batch, "a watch request")
        parsed: list[tuple[str, str, str | None, int]] = []
        errors: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            try:
                kind, value, ref = self._item(item, WATCH_FIELDS)
                ttl = item.get("ttl_days", DEFAULT_WATCH_TTL_DAYS)
                if type(ttl) is not int or not 1 <= ttl <= MAX_WATCH_TTL_DAYS:
                    raise RequestRefused(
                        "bad_ttl", f"ttl_days is a whole number of days, 1 to {MAX_WATCH_TTL_DAYS}"
                    )
                parsed.append((kind, value, ref, ttl))
            except (InvalidValue, RequestRefused) as e:
                errors.append({"index": i, "code": e.reason, "message": e.message})
        if errors:
            raise RequestRefused(
                "invalid_items", f"{len(errors)} item(s) refused; nothing is watched", errors
            )
        results = []
        c = self.conn
        with self.store.atomic(durable=True):
            for kind, value, ref, ttl in parsed:
                toks = self._tokens(kind, value, epochs)
                (wid,) = c.execute(
                    "INSERT INTO watches (vkey, kind, ref, sealed, created, expires)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vkey, ref)"
                    " DO UPDATE SET expires = excluded.expires RETURNING id",
                    (
                        self._vkey(kind, value),
                        kind,
                        ref or "",
                        self._seal(value.encode()),
                        now,
                        now + ttl * DAY_MS,
                    ),
                ).fetchone()
                c.executemany(
                    "INSERT OR IGNORE INTO watch_tokens (tok, ep, watch) VALUES (?, ?, ?)",
                    [(t, ep, wid) for ep, t in toks],
                )
                self._filter.add_many(t for _, t in toks)
                value_toks = [t for _, t in toks]
                live = self.host.counted_reports(value_toks, now)
                results.append(self.host.verdict_of(kind, live, now=now, toks=value_toks))
        log.info("watching %d more values", len(parsed))
        return {"watching": len(parsed), "results": results}

    def unwatch(self, items: Sequence[Any], now: int, *, max_batch: int = 10_000) -> dict[str, Any]:
        """Remove the watches of these values (of one ``ref``, or every ref when the item
        has none), and stop watching them as recent queries."""
        check_batch(items, max_batch, "an unwatch request")
        parsed: list[tuple[str, str, str | None, bool]] = []
        errors: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            try:
                kind, value, ref = self._item(item, UNWATCH_FIELDS)
                parsed.append((kind, value, ref, isinstance(item, Mapping) and "ref" in item))
            except (InvalidValue, RequestRefused) as e:
                errors.append({"index": i, "code": e.reason, "message": e.message})
        if errors:
            raise RequestRefused(
                "invalid_items", f"{len(errors)} item(s) refused; nothing was removed", errors
            )
        removed = recent = 0
        c = self.conn
        epochs = list(self.host.epoch_keys)
        with self.store.atomic(durable=True):
            self.flush()
            for kind, value, ref, by_ref in parsed:
                vkey = self._vkey(kind, value)
                if by_ref:
                    rows = c.execute(
                        "SELECT id FROM watches WHERE vkey = ? AND ref = ?", (vkey, ref or "")
                    ).fetchall()
                else:
                    rows = c.execute("SELECT id FROM watches WHERE vkey = ?", (vkey,)).fetchall()
                removed += self._delete_watches([int(r[0]) for r in rows])
                refs: set[str] = set()  # the value's recent queries, one per ref
                for _, t in self._tokens(kind, value, epochs):
                    if by_ref:
                        gone = c.execute(
                            "DELETE FROM recent_tokens WHERE tok = ? AND ref = ? RETURNING ref",
                            (t, ref or ""),
                        ).fetchall()
                    else:
                        gone = c.execute(
                            "DELETE FROM recent_tokens WHERE tok = ? RETURNING ref", (t,)
                        ).fetchall()
                    refs.update(r[0] for r in gone)
                    self._stale += len(gone)
                recent += len(refs)
        return {"removed": removed, "recent_queries": recent}

    def _delete_watches(self, ids: Sequence[int]) -> int:
        c = self.conn
        for wid in ids:
            cur = c.execute("DELETE FROM watch_tokens WHERE watch = ?", (wid,))
            self._stale += cur.rowcount
            c.execute("DELETE FROM watches WHERE id = ?", (wid,))
        return len(ids)

    def watches(self, now: int, *, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        """Counts and refs of the watches, never their values."""
        c = self.conn
        by_kind = {
            str(k): int(n)
            for k, n in c.execute(
                "SELECT kind, COUNT(*) FROM watches WHERE expires > ? GROUP BY kind ORDER BY kind",
                (now,),
            )
        }
        rows = c.execute(
            "SELECT id, kind, ref, created, expires FROM watches WHERE expires > ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (now, after, limit),
        ).fetchall()
        return {
            "watching": sum(by_kind.values()),
            "by_kind": by_kind,
            "recent_queries": self.recent_count(),
            "recent_query_hours": self.settings.recent_query_hours,
            "watches": [
                {
                    "id": int(wid),
                    "kind": kind,
                    "ref": ref or None,
                    "since": _rfc3339(created),
                    "expires": _rfc3339(exp),
                }
                for wid, kind, ref, created, exp in rows
            ],
            "next": int(rows[-1][0]) if len(rows) == limit else None,
        }

    # -- recent queries --------------------------------------------------------------

    def queried(
        self,
        kinds: list[str],
        values: list[str],
        refs: list[str | None],
        toks: list[bytes],
        per_item: int,
        now: int,
    ) -> None:
        """Remember the values of one query batch for ``recent_query_hours`` (the query
        path: kept in memory until :meth:`flush` seals and stores them)."""
        if self.settings.recent_query_hours <= 0 or not kinds or per_item < 1:
            return
        self._pending.append((now, kinds, values, refs, toks, per_item))
        self._pending_toks.update(toks)
        self._pending_items += len(kinds)
        if self._pending_items >= FLUSH_AT:
            with self.store.atomic():
                self.flush(FLUSH_CHUNK)

    def recent_count(self) -> int:
        """Values queried in the window (a value queried twice counts twice)."""
        return self._recent_items + self._pending_items

    def flush(self, limit: int | None = None) -> int:
        """Seal and store recent queries waiting in memory, about ``limit`` items at
        most (None: all); the number stored. Call inside a unit of work."""
        if not self._pending:
            return 0
        window = self.settings.recent_query_hours * HOUR_MS
        taken: list[_Queried] = []
        n = 0
        while self._pending and (limit is None or n < limit):
            q = self._pending.popleft()
            taken.append(q)
            n += len(q[1])
        # the sealed blob: [[at, kinds, values, refs], ...]; an item's idx counts across
        items = [[at, kinds, values, refs] for at, kinds, values, refs, _, _ in taken]
        self._pending_items -= n
        if not self._pending:
            self._pending_toks.clear()
        c = self.conn
        (bid,) = c.execute(
            "INSERT INTO recent_batches (at, expires, items, sealed) VALUES (?, ?, ?, ?)"
            " RETURNING id",
            (
                taken[0][0],
                max(q[0] for q in taken) + window,
                n,
                self._seal(json.dumps(items, separators=(",", ":")).encode()),
            ),
        ).fetchone()
        rows: list[tuple[bytes, str, int, int, int]] = []  # tok, ref, batch, idx, expires
        idx = 0
        for at, kinds, _, refs, toks, per in taken:
            exp = at + window
            if per == 1:
                rows += zip(
                    toks,
                    [r or "" for r in refs],
                    repeat(bid),
                    range(idx, idx + len(kinds)),
                    repeat(exp),
                    strict=False,
                )
            else:
                for j in range(len(kinds)):
                    for t in toks[j * per : (j + 1) * per]:
                        rows.append((t, refs[j] or "", bid, idx + j, exp))
            idx += len(kinds)
        rows.sort()  # in key order: each B-tree page is written once per flush
        c.executemany(
            "INSERT INTO recent_tokens (tok, ref, batch, idx, expires) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (tok, ref) DO UPDATE SET batch = excluded.batch, idx = excluded.idx,"
            " expires = excluded.expires",
            rows,
        )
        self._filter.add_many([r[0] for r in rows])
        self._recent_items += n
        return n

    def _batch_items(self, sealed: bytes) -> Iterable[tuple[str, str, str | None, int]]:
        """(kind, value, ref, at) of each item of a stored batch, in idx order."""
        for at, kinds, values, refs in json.loads(self._open(sealed)):
            for kind, value, ref in zip(kinds, values, refs, strict=True):
                yield kind, value, ref, at

    # -- key rotation ----------------------------------------------------------------

    def epochs_added(self, epochs: Iterable[int]) -> None:
        """Tokens of every watched value under newly added epoch keys (a rotation)."""
        eps = [ep for ep in epochs if ep in self.host.epoch_keys]
        if not eps:
            return
        now = self.clock()
        window = self.settings.recent_query_hours * HOUR_MS
        c = self.conn
        added: list[bytes] = []
        with self.store.atomic(durable=True):
            self.flush()
            for wid, kind, sealed in c.execute(
                "SELECT id, kind, sealed FROM watches WHERE expires > ?", (now,)
            ).fetchall():
                value = self._open(sealed).decode()
                toks = self._tokens(kind, value, eps)
                c.executemany(
                    "INSERT OR IGNORE INTO watch_tokens (tok, ep, watch) VALUES (?, ?, ?)",
                    [(t, ep, wid) for ep, t in toks],
                )
                added += [t for _, t in toks]
            for bid, sealed in c.execute(
                "SELECT id, sealed FROM recent_batches WHERE expires > ?", (now,)
            ).fetchall():
                rows = []
                for idx, (kind, value, ref, at) in enumerate(self._batch_items(sealed)):
                    if at + window <= now:
                        continue
                    for _, t in self._tokens(kind, value, eps):
                        rows.append((t, ref or "", bid, idx, at + window))
                c.executemany(
                    "INSERT INTO recent_tokens (tok, ref, batch, idx, expires)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tok, ref) DO UPDATE SET"
                    " batch = excluded.batch, idx = excluded.idx, expires = excluded.expires"
                    " WHERE excluded.expires > recent_tokens.expires",
                    rows,
                )
                added += [r[0] for r in rows]
        self._filter.add_many(added)
        log.info("watched values tokenised under epochs %s", eps)

    # -- matching --------------------------------------------------------------------

    def on_entry(self, entry: Entry) -> None:
        """The feeds' append listener: alerts for the watched values this entry adds a
        live report on or retracts. Runs in the unit of work that stores the entry."""
        if self._filter.count == 0 and not self._pending_toks:
            return
        # a retraction of a sighting, dispute or appeal (``of``) leaves the report alone
        ops = [
            op
            for op in entry.ops
            if isinstance(op, AddOp) or (isinstance(op, RetractOp) and op.of is None)
        ]
        if not ops:
            return
        toks = [op.tok for op in ops]
        pending = self._pending_toks
        touched = {
            t for t, hit in zip(toks, self._filter.contains_many(toks), strict=True) if hit
        } | {t for t in toks if t in pending}
        if not touched:
            return
        if pending and not pending.isdisjoint(touched):
            self.flush()
        self._raise(entry, ops, touched)

    def _watchers(self, touched: Iterable[bytes], now: int) -> list[_Watcher]:
        """The live watches and recent queries of the touched tokens, one per value and
        ref (a watch wins over a recent query of the same value and ref)."""
        c = self.conn
        found: dict[tuple[str, str, str | None], tuple[str, set[bytes]]] = {}
        batches: dict[int, list[tuple[str, str, str | None, int]]] = {}

        def note(kind: str, value: str, ref: str | None, source: str, tok: bytes) -> None:
            key = (kind, value, ref)
            got = found.get(key)
            if got is None:
                found[key] = (source, {tok})
            else:
                got[1].add(tok)
                if source == "watch":
                    found[key] = ("watch", got[1])

        for tok in touched:
            for kind, ref, sealed in c.execute(
                "SELECT w.kind, w.ref, w.sealed FROM watch_tokens t JOIN watches w"
                " ON w.id = t.watch WHERE t.tok = ? AND w.expires > ?",
                (tok, now),
            ):
                note(kind, self._open(sealed).decode(), ref or None, "watch", tok)
            for bid, idx, sealed in c.execute(
                "SELECT b.id, r.idx, b.sealed FROM recent_tokens r JOIN recent_batches b"
                " ON b.id = r.batch WHERE r.tok = ? AND r.expires > ?",
                (tok, now),
            ):
                items = batches.get(bid)
                if items is None:
                    items = batches[bid] = list(self._batch_items(sealed))
                kind, value, ref, _at = items[idx]
                note(kind, value, ref, "recent_query", tok)
        return [
            _Watcher(kind, value, ref, source, frozenset(toks))
            for (kind, value, ref), (source, toks) in found.items()
        ]

    def _raise(self, entry: Entry, ops: Sequence[Op], touched: set[bytes]) -> None:
        now = self.clock()
        watchers = self._watchers(touched, now)
        if not watchers:
            return
        epochs = self.host.live_epochs(now)
        # per value: the event this entry is for it, and the verdict after the change
        values: dict[tuple[str, str], tuple[str | None, dict[str, Any]]] = {}
        rows: list[tuple[int, bytes]] = []
        latency = max(0, now - entry.ts)
        for w in watchers:
            key = (w.kind, w.value)
            got = values.get(key)
            if got is None:
                toks = [t for _, t in self._tokens(w.kind, w.value, epochs)]
                live = self.host.counted_reports(toks, now)
                ev = self._event(entry, ops, toks, live, now)
                verdict = (
                    {} if ev is None else self.host.verdict_of(w.kind, live, now=now, toks=toks)
                )
                got = values[key] = (ev, verdict)
            event, verdict = got
            if event is None:
                continue
            alert = {
                "at": _rfc3339(now),
                "event": event,
                "kind": w.kind,
                "ref": w.ref,
                "value": w.value,
                "source": w.source,
                "verdict": verdict,
                "entry": {
                    "log": member_id_text(entry.log),
                    "seq": entry.seq,
                    "hash": entry.hash.hex(),
                },
                "latency_ms": latency,
            }
            rows.append((now, self._seal(json.dumps(alert, separators=(",", ":")).encode())))
            if self.metrics is not None:
                self.metrics.raised.labels(event, w.source).inc()
                self.metrics.latency.observe(latency / 1000)
        if not rows:
            return
        self.conn.executemany("INSERT INTO alerts (at, sealed) VALUES (?, ?)", rows)
        self.raised += len(rows)
        log.info(
            "%d alert(s) on entry %d of %s, %d ms after it was made",
            len(rows),
            entry.seq,
            member_id_text(entry.log)[:8],
            latency,
        )
        for fn in self.listeners:
            fn()

    def _event(
        self,
        entry: Entry,
        ops: Sequence[Op],
        value_toks: Sequence[bytes],
        live: Sequence[IndicatorState],
        now: int,
    ) -> str | None:
        """``reported`` if the entry's author newly reports the value (not a republish
        under a new epoch, not a re-add while live), ``retracted`` if the entry retracts
        it and its author reports it no more; else None."""
        mine = set(value_toks)
        author = entry.log
        own_live = [s for s in live if s.author == author]
        adds = [op for op in ops if isinstance(op, AddOp) and op.tok in mine]
        if adds:
            new = any(
                s.tok == op.tok and s.ep == op.ep and s.first_ts == entry.ts
                for op in adds
                for s in own_live
            )
            older = any(s.first_ts < entry.ts for s in own_live)
            return "reported" if new and not older else None
        retracts = [op for op in ops if isinstance(op, RetractOp) and op.tok in mine]
        if not retracts or own_live:
            return None
        # it was live until this entry (not an expired report retracted after the fact)
        for op in retracts:
            for s in self.store.indicators(op.tok):
                if s.author == author and s.ep == op.ep and s.exp > entry.ts:
                    return "retracted"
        return None

    # -- urgent reports --------------------------------------------------------------

    def urgent(self, ops: Sequence[Op], author: bytes, policy: DataPolicy) -> bool:
        """Whether an entry of ``author`` with ``ops`` is urgent: it reports, or retracts
        a report, in one of the policy's urgent categories."""
        cats = policy.urgent_categories
        for op in ops:
            if isinstance(op, AddOp) and op.cat in cats:
                return True
        for op in ops:
            if (
                isinstance(op, RetractOp)
                and op.of is None
                and any(
                    s.author == author and s.ep == op.ep and s.cat in cats
                    for s in self.store.indicators(op.tok)
                )
            ):
                return True
        return False

    # -- the alert log ---------------------------------------------------------------

    def after(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Alerts with an id above ``after``, oldest first, at most ``limit``."""
        out = []
        for aid, sealed in self.conn.execute(
            "SELECT id, sealed FROM alerts WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ):
            alert = json.loads(self._open(sealed))
            out.append({"id": int(aid), **alert})
        return out

    def last_id(self) -> int:
        """The id of the last alert ever raised here (0: none), pruned or not."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'alerts'").fetchone()
        return 0 if row is None else int(row[0])

    def cursor(self, name: str) -> int:
        """A durable delivery cursor: the last alert id ``name`` has delivered."""
        row = self.conn.execute("SELECT id FROM alert_cursors WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def set_cursor(self, name: str, aid: int) -> None:
        with self.store.atomic(durable=True):
            self.conn.execute(
                "INSERT INTO alert_cursors (name, id) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET id = excluded.id",
                (name, aid),
            )

    def webhook_result(self, delivered: int, error: str | None, now: int) -> None:
        """Count one webhook attempt (``delivered`` alerts, or failed with ``error``)."""
        w = self.webhook
        if error is None:
            w.delivered += delivered
            w.consecutive_failures = 0
            w.last_error = None
            w.last_delivery = now
            w.retry_at = None
            if self.metrics is not None:
                self.metrics.webhook.labels("delivered").inc(delivered)
        else:
            w.failures += 1
            w.consecutive_failures += 1
            w.last_error = error
            if self.metrics is not None:
                self.metrics.webhook.labels("failed").inc()

    # -- upkeep ----------------------------------------------------------------------

    def upkeep(self, now: int) -> bool:
        """One step of upkeep (the server runs it about every second): store waiting
        recent queries, sweep one slice of lapsed ones, and every minute prune lapsed
        watches, recent-query values and old alerts. True if more is waiting."""
        with self.store.atomic():
            self.flush(FLUSH_CHUNK)
            self._sweep_slice(now)
            if now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY_MS
                self.prune(now)
        live = self._filter.count - self._stale
        if self._stale > 1024 and self._stale > live:
            self._filter = self._build_filter()
        return bool(self._pending)

    def _sweep_slice(self, now: int) -> None:
        i = self._sweep
        self._sweep = (i + 1) % SWEEP_SLICES
        lo = bytes([i * 256 // SWEEP_SLICES])
        if i + 1 < SWEEP_SLICES:
            hi = bytes([(i + 1) * 256 // SWEEP_SLICES])
            cur = self.conn.execute(
                "DELETE FROM recent_tokens WHERE tok >= ? AND tok < ? AND expires <= ?",
                (lo, hi, now),
            )
        else:
            cur = self.conn.execute(
                "DELETE FROM recent_tokens WHERE tok >= ? AND expires <= ?", (lo, now)
            )
        self._stale += cur.rowcount

    def prune(self, now: int) -> None:
        """Delete lapsed watches, the sealed values of lapsed recent queries (their
        tokens go slice by slice, and are ignored once lapsed) and alerts older than
        the retention. Call inside a unit of work."""
        c = self.conn
        ids = [int(r[0]) for r in c.execute("SELECT id FROM watches WHERE expires <= ?", (now,))]
        self._delete_watches(ids)
        gone = c.execute(
            "DELETE FROM recent_batches WHERE expires <= ? RETURNING items", (now,)
        ).fetchall()
        self._recent_items -= sum(int(r[0]) for r in gone)
        c.execute("DELETE FROM alerts WHERE at < ?", (now - self.settings.retention_days * DAY_MS,))

    def purge_lapsed_tokens(self, now: int) -> None:
        """Sweep every slice at once (tests, and an operator's maintenance)."""
        with self.store.atomic():
            for _ in range(SWEEP_SLICES):
                self._sweep_slice(now)

    # -- status ----------------------------------------------------------------------

    def status(self, now: int) -> dict[str, Any]:
        c = self.conn
        last = self.last_id()
        w = self.webhook
        cursor = self.cursor("webhook")
        return {
            "watches": int(
                c.execute("SELECT COUNT(*) FROM watches WHERE expires > ?", (now,)).fetchone()[0]
            ),
            "recent_queries": self.recent_count(),
            "recent_query_hours": self.settings.recent_query_hours,
            "last_id": last,
            "raised": self.raised,
            "retained": int(c.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]),
            "webhook": {
                "target": w.target,
                "cursor": cursor,
                "pending": max(0, last - cursor) if w.target else 0,
                "delivered": w.delivered,
                "failures": w.failures,
                "consecutive_failures": w.consecutive_failures,
                "last_error": w.last_error,
                "last_delivery": None if w.last_delivery is None else _rfc3339(w.last_delivery),
                "retry_at": None if w.retry_at is None else _rfc3339(w.retry_at),
            },
        }


def check_ref(ref: object) -> str | None:
    """A query or watch item's optional ``ref`` (the platform's case id)."""
    if ref is None:
        return None
    if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REF_CHARS or not _utf8(ref):
        raise RequestRefused("bad_ref", f"ref is text of 1 to {MAX_REF_CHARS} characters")
    return ref


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
