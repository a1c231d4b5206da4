"""The node's SQLite store (sqlite-utils), implementing the protocol's FeedStore.

One writer. WAL. Each unit of work runs in ``with db.atomic():`` so an
exception rolls everything back; the report path commits with
``synchronous=FULL`` (acknowledged means committed), the replication path with
``NORMAL`` (a replicated entry lost in a power cut is fetched again).

Secrets at rest — the consortium's epoch keys and this member's own raw
values, kept only to republish them after a key rotation — are sealed with a
SecretBox whose key is derived from the member key, so a copy of the database
alone reveals neither.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, cast

import cbor2
import nacl.exceptions
import nacl.secret
import sqlite_utils
from sqlite_utils.migrations import Migrations

from contracts.errors import StoreError
from node.aftermatch_store import SCHEMA as AFTER_MATCH_SCHEMA
from node.aftermatch_store import AfterMatchStore
from node.audit import GENESIS, row_hash
from protocol.entries import AddOp, Entry, RetractOp, decode_entry
from protocol.forks import ForkProof, decode_fork_proof
from protocol.grants import Grant
from protocol.keys import MemberId, MemberKey
from protocol.store import Head, IndicatorState

__all__ = ["MIGRATIONS", "Codes", "SqliteStore", "count_live", "state_row"]

log = logging.getLogger("riskmesh.store")

MIGRATIONS = Migrations("riskmesh")


@MIGRATIONS()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS charters (
            version INTEGER PRIMARY KEY, hash BLOB NOT NULL, raw BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS feeds (
            log BLOB PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL,
            ts INTEGER NOT NULL, cv INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS entries (
            log BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, raw BLOB NOT NULL,
            PRIMARY KEY (log, seq)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS indicators (
            tok BLOB NOT NULL, ep INTEGER NOT NULL, author BLOB NOT NULL, kind TEXT NOT NULL,
            cat TEXT NOT NULL, sev INTEGER NOT NULL, exp INTEGER NOT NULL,
            first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, retracted INTEGER NOT NULL,
            PRIMARY KEY (tok, ep, author)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS indicators_exp ON indicators (exp);
        CREATE TABLE IF NOT EXISTS held (
            hash BLOB PRIMARY KEY, log BLOB NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS held_log ON held (log, seq);
        CREATE TABLE IF NOT EXISTS fork_proofs (
            log BLOB PRIMARY KEY, seq INTEGER NOT NULL, raw BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS key_epochs (
            ep INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS grants (
            hash BLOB PRIMARY KEY, issuer BLOB NOT NULL, recipient BLOB NOT NULL,
            cv INTEGER NOT NULL, ts INTEGER NOT NULL, raw BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS proposals (
            id TEXT PRIMARY KEY, raw BLOB NOT NULL, created INTEGER NOT NULL,
            status TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS peers (
            id BLOB PRIMARY KEY, endpoint TEXT NOT NULL, last_success INTEGER,
            failures INTEGER NOT NULL DEFAULT 0, backoff_until INTEGER,
            quarantined INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, detail TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS own_values (
            tok BLOB NOT NULL, ep INTEGER NOT NULL, kind TEXT NOT NULL, sealed BLOB NOT NULL,
            PRIMARY KEY (tok, ep)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS api_keys (
            hash BLOB PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL,
            created INTEGER NOT NULL);
        """
    )


@MIGRATIONS()
def m002_pending_keys(db: sqlite_utils.Database) -> None:
    # an epoch key made for a rotation proposal, sealed, until the proposal is final
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS pending_keys (
            pid TEXT NOT NULL, ep INTEGER NOT NULL, sealed BLOB NOT NULL,
            PRIMARY KEY (pid, ep));
        """
    )


@MIGRATIONS()
def m003_alerts(db: sqlite_utils.Database) -> None:
    # Watchlists and alerts (node/alerts.py). Raw values are sealed (watches one by
    # one, recent queries a batch at a time); ``vkey`` is a hash of the value keyed
    # with a random secret of the node's (kept sealed in alert_secrets), to find a
    # watch without opening every sealed value.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS watches (
            id INTEGER PRIMARY KEY AUTOINCREMENT, vkey BLOB NOT NULL, kind TEXT NOT NULL,
            ref TEXT NOT NULL, sealed BLOB NOT NULL, created INTEGER NOT NULL,
            expires INTEGER NOT NULL, UNIQUE (vkey, ref));
        CREATE TABLE IF NOT EXISTS watch_tokens (
            tok BLOB NOT NULL, ep INTEGER NOT NULL, watch INTEGER NOT NULL,
            PRIMARY KEY (tok, watch)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS watch_tokens_watch ON watch_tokens (watch);
        CREATE TABLE IF NOT EXISTS recent_batches (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
            expires INTEGER NOT NULL, items INTEGER NOT NULL, sealed BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS recent_tokens (
            tok BLOB NOT NULL, ref TEXT NOT NULL, batch INTEGER NOT NULL, idx INTEGER NOT NULL,
            expires INTEGER NOT NULL, PRIMARY KEY (tok, ref)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, sealed BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS alert_cursors (
            name TEXT PRIMARY KEY, id INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS alert_secrets (
            name TEXT PRIMARY KEY, sealed BLOB NOT NULL);
        """
    )


@MIGRATIONS()
def m004_after_match(db: sqlite_utils.Database) -> None:
    # Sightings, disputes, appeals and decisions from every feed; sealed appeal items
    # relayed by gossip; this member's own appeals, opened cases and notes, sealed
    # (node/aftermatch_store.py).
    db.executescript(AFTER_MATCH_SCHEMA)


@MIGRATIONS()
def m005_operators(db: sqlite_utils.Database) -> None:
    # API keys: when last used, when revoked (a rotated key is revoked and re-made).
    # Audit rows: hash-chained (prev, hash); ``actor`` is the acting API key's name.
    db.executescript(
        """
        ALTER TABLE api_keys ADD COLUMN last_used INTEGER;
        ALTER TABLE api_keys ADD COLUMN revoked INTEGER;
        ALTER TABLE audit ADD COLUMN prev BLOB;
        ALTER TABLE audit ADD COLUMN hash BLOB;
        """
    )
    prev = GENESIS
    rows = db.execute("SELECT id, ts, actor, action, detail FROM audit ORDER BY id").fetchall()
    for rid, ts, actor, action, text in rows:
        h = row_hash(prev, rid, ts, actor, action, text)
        db.execute("UPDATE audit SET prev = ?, hash = ? WHERE id = ?", (prev, h, rid))
        prev = h


@MIGRATIONS()
def m006_no_expiry_index(db: sqlite_utils.Database) -> None:
    # The index on indicators(exp) took a quarter of the database and slowed every
    # insert; nothing looks indicators up by expiry (the live scans read the table in
    # token order, and queries read the verdict summaries: node/summaries.py).
    db.execute("DROP INDEX IF EXISTS indicators_exp")


@MIGRATIONS()
def m007_compact_indicators(db: sqlite_utils.Database) -> None:
    # An indicator row repeated its author's 32-byte id and the names of its kind and
    # category: over half of its bytes. They are small integers now, from ``codes``
    # (see `Codes`), and a row takes about 60 bytes instead of 112.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS codes (code INTEGER PRIMARY KEY, value NOT NULL UNIQUE);
        CREATE TABLE indicators_compact (
            tok BLOB NOT NULL, ep INTEGER NOT NULL, author INTEGER NOT NULL,
            kind INTEGER NOT NULL, cat INTEGER NOT NULL, sev INTEGER NOT NULL,
            exp INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
            retracted INTEGER NOT NULL, PRIMARY KEY (tok, ep, author)) WITHOUT ROWID;
        INSERT OR IGNORE INTO codes (value) SELECT DISTINCT author FROM indicators;
        INSERT OR IGNORE INTO codes (value) SELECT DISTINCT kind FROM indicators;
        INSERT OR IGNORE INTO codes (value) SELECT DISTINCT cat FROM indicators;
        INSERT INTO indicators_compact
            SELECT i.tok, i.ep, a.code, k.code, c.code, i.sev, i.exp, i.first_ts, i.last_ts,
                   i.retracted
            FROM indicators i JOIN codes a ON a.value = i.author
            JOIN codes k ON k.value = i.kind JOIN codes c ON c.value = i.cat;
        DROP TABLE indicators;
        ALTER TABLE indicators_compact RENAME TO indicators;
        """
    )


@MIGRATIONS()
def m008_compressed_entries(db: sqlite_utils.Database) -> None:
    # An entry's signed bytes repeat each op's field names, kind, category and expiry:
    # zlib (level 1, about 0.3 us an op) takes a 1000-op device entry from 79 to 18 bytes
    # an op. ``z`` = 1 marks a compressed row; rows written before stay as they are.
    db.execute("ALTER TABLE entries ADD COLUMN z INTEGER NOT NULL DEFAULT 0")


@MIGRATIONS()
def m009_own_batches(db: sqlite_utils.Database) -> None:
    # This member's raw values were a row each in ``own_values``, keyed by token: a
    # second random-keyed table, whose inserts took a third of publishing's time. They
    # are sealed a batch a row now (the values of one published entry), appended, and
    # an own report's indicator row holds its batch's id (``own``: NULL on every other
    # member's row). ``own_values`` is read still, for rows written before; nothing
    # writes it.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS own_batches (
            id INTEGER PRIMARY KEY, ep INTEGER NOT NULL, sealed BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS own_batches_ep ON own_batches (ep, id);
        ALTER TABLE indicators ADD COLUMN own INTEGER;
        """
    )


@MIGRATIONS()
def m010_recent_indicators(db: sqlite_utils.Database) -> None:
    # Indicator rows are keyed by random tokens: once the table outgrows the page cache,
    # every upsert dirties a page of its own (written to the WAL, then again at the
    # checkpoint). Writes go to this small table instead, which stays in the cache, and
    # are merged into ``indicators`` a token range at a time, in key order, many rows a
    # page (see `SqliteStore.merge_recent`). A row here is the current state of its key.
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS indicators_recent (
            tok BLOB NOT NULL, ep INTEGER NOT NULL, author INTEGER NOT NULL,
            kind INTEGER NOT NULL, cat INTEGER NOT NULL, sev INTEGER NOT NULL,
            exp INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
            retracted INTEGER NOT NULL, own INTEGER,
            PRIMARY KEY (tok, ep, author)) WITHOUT ROWID;
        """
    )


def _entry_raw(raw: bytes, z: int) -> bytes:
    """An ``entries`` row's signed bytes (see m008)."""
    return zlib.decompress(raw) if z else bytes(raw)


class Codes:
    """The small integers indicator rows hold for values they repeat: a member's id
    (bytes) and the name of a kind or a category (text), kept in the ``codes`` table.

    The writer's copy is loaded once and grows with each new value, inside the
    transaction that first uses it; a unit of work that rolls back forgets the
    copy (`SqliteStore._unit`), so a code is never remembered that the database does
    not hold. A reader's copy (another connection, another process) is read within
    the same read transaction as the rows it decodes (`Codes.read`)."""

    __slots__ = ("_code", "_value")

    def __init__(self) -> None:
        self._code: dict[bytes | str, int] | None = None
        self._value: dict[int, bytes | str] = {}

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> Codes:
        codes = cls()
        codes._load(conn)
        return codes

    def _load(self, conn: sqlite3.Connection) -> dict[bytes | str, int]:
        value: dict[int, bytes | str] = {}
        for code, v in conn.execute("SELECT code, value FROM codes"):
            value[code] = bytes(v) if isinstance(v, bytes | memoryview) else v
        self._value = value
        self._code = {v: c for c, v in value.items()}
        return self._code

    def forget(self) -> None:
        self._code = None
        self._value = {}

    def code(self, conn: sqlite3.Connection, value: bytes | str) -> int:
        """``value``'s code, made (in the open transaction) if it has none."""
        codes = self._code if self._code is not None else self._load(conn)
        c = codes.get(value)
        if c is None:
            cur = conn.execute("INSERT INTO codes (value) VALUES (?)", (value,))
            c = int(cur.lastrowid or 0)
            codes[value] = c
            self._value[c] = value
        return c

    def known(self, conn: sqlite3.Connection, value: bytes | str) -> int | None:
        """``value``'s code, or None if no row holds it."""
        codes = self._code if self._code is not None else self._load(conn)
        return codes.get(value)

    def values(self, conn: sqlite3.Connection) -> dict[int, bytes | str]:
        if self._code is None:
            self._load(conn)
        return self._value


def state_row(row: Sequence[Any], values: Mapping[int, Any]) -> IndicatorState:
    """An indicator row (`STATE_COLS`) as the protocol's state; ``values`` decodes its
    codes (`Codes.values`)."""
    return IndicatorState(
        tok=bytes(row[0]),
        ep=row[1],
        author=MemberId(values[row[2]]),
        kind=values[row[3]],
        cat=values[row[4]],
        sev=row[5],
        exp=row[6],
        first_ts=row[7],
        last_ts=row[8],
        retracted=bool(row[9]),
    )


def report_order(s: IndicatorState) -> tuple[int, bytes]:
    """The order a token's rows are listed in: epoch, then the author's id."""
    return (s.ep, s.author)


STATE_COLS = "tok, ep, author, kind, cat, sev, exp, first_ts, last_ts, retracted"
#: an indicator row as both tables hold it: `STATE_COLS`, then the own batch (m009)
ROW_COLS = STATE_COLS + ", own"


def _live(row: Sequence[Any], now: int) -> bool:
    return not row[9] and row[6] > now


def current_rows(
    conn: sqlite3.Connection,
    where: str = "1",
    params: Sequence[Any] = (),
    *,
    live_at: int | None = None,
    ordered: bool = False,
) -> Iterator[tuple[Any, ...]]:
    """The indicator rows (`ROW_COLS`) matching ``where``, each key's current one: its
    row in ``indicators_recent`` if it has one there, else its row in ``indicators``
    (m010). ``live_at``: live rows only (unretracted, expiring after it), decided on the
    current row. ``ordered``: in key order (tok, ep, author), both tables streamed.

    ``where`` is SQL over the row's columns, the same for both tables."""
    live_sql, live_args = "", cast("tuple[int, ...]", ())
    if live_at is not None:
        live_sql, live_args = " AND retracted = 0 AND exp > ?", (live_at,)
    order = " ORDER BY tok, ep, author" if ordered else ""
    recent = conn.execute(f"SELECT {ROW_COLS} FROM indicators_recent WHERE {where}{order}", params)
    main = conn.execute(
        f"SELECT {ROW_COLS} FROM indicators WHERE {where}{live_sql}{order}", (*params, *live_args)
    )
    if not ordered:
        newer = {(r[0], r[1], r[2]): r for r in recent}
        if not newer:
            yield from main
            return
        for m in main:
            if (m[0], m[1], m[2]) not in newer:
                yield m
        for r in newer.values():
            if live_at is None or _live(r, live_at):
                yield r
        return
    r = next(recent, None)
    if r is None:  # the common case between merges' ends and the next writes
        yield from main
        return
    for m in main:
        mk = (m[0], m[1], m[2])
        while r is not None and (r[0], r[1], r[2]) < mk:
            if live_at is None or _live(r, live_at):
                yield r
            r = next(recent, None)
        if r is not None and (r[0], r[1], r[2]) == mk:
            if live_at is None or _live(r, live_at):
                yield r
            r = next(recent, None)
            continue
        yield m
    while r is not None:
        if live_at is None or _live(r, live_at):
            yield r
        r = next(recent, None)


def chunks(seq: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """``seq`` in slices of ``size`` (SQL ``IN (...)`` lists stay under SQLite's limit)."""
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _recent_tokens(conn: sqlite3.Connection) -> list[bytes]:
    return [bytes(r[0]) for r in conn.execute("SELECT DISTINCT tok FROM indicators_recent")]


def _live_among(conn: sqlite3.Connection, toks: Sequence[bytes], now: int) -> set[bytes]:
    """Those of ``toks`` with a live current row (`current_rows`)."""
    live: set[bytes] = set()
    for chunk in chunks(toks):
        q = ",".join("?" * len(chunk))
        live.update(bytes(r[0]) for r in current_rows(conn, f"tok IN ({q})", chunk, live_at=now))
    return live


def _count_live(conn: sqlite3.Connection, now: int) -> int:
    """Live tokens: counted in SQL over ``indicators``, corrected for the tokens that
    have a row in ``indicators_recent`` (few: decided on their current rows)."""
    main = int(
        conn.execute(
            "SELECT COUNT(DISTINCT tok) FROM indicators WHERE retracted = 0 AND exp > ?", (now,)
        ).fetchone()[0]
    )
    recent = _recent_tokens(conn)
    if not recent:
        return main
    live_in_main: set[bytes] = set()
    for chunk in chunks(recent):
        q = ",".join("?" * len(chunk))
        live_in_main.update(
            bytes(r[0])
            for r in conn.execute(
                f"SELECT DISTINCT tok FROM indicators WHERE tok IN ({q})"
                " AND retracted = 0 AND exp > ?",
                (*chunk, now),
            )
        )
    return main - len(live_in_main) + len(_live_among(conn, recent, now))


def _read_only(db_path: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)


def count_live(db_path: str, now: int) -> int:
    """Live (unexpired, unretracted) tokens, counted through a read-only connection of
    its own (any thread: the writer's upkeep runs it off its event loop)."""
    conn = _read_only(db_path)
    try:
        conn.execute("BEGIN")  # one snapshot of both tables
        return _count_live(conn, now)
    finally:
        conn.close()


#: SQLite's own page cache, KiB (the process's memory): 8 MiB. Reads come through the
#: mapping (MMAP_BYTES); replication at 4 M live indicators ran as fast with this as
#: with 64 MiB and no mapping, and the writer's resident memory went from 132 to 74 MiB
CACHE_KIB: Final = 8192
#: bytes of the database file SQLite maps (PRAGMA mmap_size): as much as this SQLite
#: allows (SQLITE_MAX_MMAP_SIZE, 2 GiB in common builds); a larger file reads the rest
#: through the cache
MMAP_BYTES: Final = 1 << 40
#: an indicator row's key: (tok, ep, author)
_KEY: Final = itemgetter(0, 1, 2)
#: rows ``indicators_recent`` holds before a merge starts (about 16 MiB of pages)
RECENT_LIMIT: Final = 262_144
#: token ranges a merge moves, one a commit (one a transaction): each a short pause
MERGE_RANGES: Final = 32


def _token_range(i: int) -> tuple[str, tuple[bytes, ...]]:
    """Range ``i`` of `MERGE_RANGES` equal slices of the token space, as SQL and its
    arguments (the first and the last are open-ended)."""
    step = 256 // MERGE_RANGES
    if i == 0:
        return "tok < ?", (bytes([step]),)
    if i + 1 == MERGE_RANGES:
        return "tok >= ?", (bytes([i * step]),)
    return "tok >= ? AND tok < ?", (bytes([i * step]), bytes([(i + 1) * step]))


class SqliteStore(AfterMatchStore):
    """The protocol's FeedStore in SQLite, plus what only a node keeps."""

    def __init__(self, path: str | Path | None, member_key: MemberKey | None = None) -> None:
        if path is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            _private_file(Path(path))
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        #: the database file (None: in memory)
        self.path = None if path is None else Path(path)
        if path is not None:
            self.db.enable_wal()
            # SQLite makes the WAL and SHM files with the database's mode; an older
            # database (made 0644) gets its companions tightened here as well
            for suffix in ("-wal", "-shm"):
                companion = Path(f"{path}{suffix}")
                if companion.exists():
                    companion.chmod(0o600)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # pages are read through a mapping of the file (the kernel's page cache, shared
        # and evictable) rather than copied into SQLite's own cache, which then holds
        # little more than the pages a transaction changes (see CACHE_KIB)
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        for m in MIGRATIONS.pending(self.db):
            log.info("database %s: applying migration %s", path or ":memory:", m.name)
        MIGRATIONS.apply(self.db)
        #: bumped by every API-key change made through this store: the key cache
        #: (node/keys.py) reloads when it moves
        self.api_keys_changed = 0
        #: called after each outermost unit of work commits (see :meth:`_unit`)
        self.commit_listeners: list[Callable[[], None]] = []
        #: codes of the values indicator rows repeat (members' ids, kinds, categories)
        self.codes = Codes()
        self._box: nacl.secret.SecretBox | None = None
        #: this member's id: an entry of its own sets ``own`` on the rows it adds
        self._me: bytes | None = None
        if member_key is not None:
            self._box = nacl.secret.SecretBox(_at_rest_key(member_key))
            self._me = member_key.id
        #: (tok, ep) -> own batch, from `put_own_values` to the `append` of the same
        #: unit of work (cleared when the outermost unit ends)
        self._own_pending: dict[tuple[bytes, int], int] = {}
        #: indicator rows written go to ``indicators_recent`` until it holds this many,
        #: then are merged into ``indicators`` (m010; `_maybe_merge`)
        self.recent_limit = RECENT_LIMIT
        #: rows written to ``indicators_recent`` (an upper bound: a row updated counts)
        self._recent_rows = self._count_recent()
        #: no row in ``indicators`` yet: nothing to copy up (`_copy_up`)
        self._main_empty = conn.execute("SELECT 1 FROM indicators LIMIT 1").fetchone() is None
        #: the next token range of a merge under way (None: none)
        self._merge_next: int | None = None
        #: units of work open (1: the outermost)
        self._depth = 0
        #: indicator rows of entries appended in this unit of work, not yet written
        #: (`_flush`): a gossip frame's rows go in as one sorted batch at its end
        self._deferred: list[tuple[Any, ...]] = []
        #: bumped by every `_flush` made inside a nested unit (see `_unit`)
        self._nested_flushes = 0
        #: a nested unit rolled back rows it did not make: the outermost may not commit
        self._poisoned = False

    def close(self) -> None:
        self.conn.close()

    # -- units of work -------------------------------------------------------

    @contextmanager
    def atomic(self, *, durable: bool = False) -> Iterator[None]:
        """One unit of work; ``durable`` commits with synchronous=FULL."""
        if durable and not self.conn.in_transaction:
            self.conn.execute("PRAGMA synchronous=FULL")
            try:
                with self._unit():
                    yield
            finally:
                self.conn.execute("PRAGMA synchronous=NORMAL")
        else:
            with self._unit():
                yield

    @contextmanager
    def _unit(self) -> Iterator[None]:
        """``db.atomic()``, then, once the outermost unit has committed, the commit
        listeners (the node's verdict summaries follow every commit: node/core.py)."""
        outer = not self.conn.in_transaction
        mark, flushes = len(self._deferred), self._nested_flushes
        self._depth += 1
        try:
            with self.db.atomic():
                yield
                if outer:
                    self._flush()
                    if self._poisoned:
                        raise StoreError(
                            "a unit of work inside this one rolled back indicator rows it"
                            " had not made; nothing of this one is kept"
                        )
        except BaseException:
            self.codes.forget()  # a code made in what rolled back is gone with it
            if outer:
                self._own_pending.clear()
                self._deferred.clear()
                self._poisoned = False
            elif flushes != self._nested_flushes and mark:
                # rows deferred before this unit were written inside it and are rolled
                # back with it: the outermost unit must not commit without them
                self._poisoned = True
            else:
                del self._deferred[mark:]  # the rows this unit deferred go with it
            raise
        finally:
            self._depth -= 1
        if outer:
            self._own_pending.clear()
            for listener in self.commit_listeners:
                listener()
            self._maybe_merge()

    _UPSERT: Final = (
        "INSERT INTO indicators_recent (tok, ep, author, kind, cat, sev, exp,"
        " first_ts, last_ts, own, retracted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
        " ON CONFLICT (tok, ep, author) DO UPDATE SET kind = excluded.kind,"
        " cat = excluded.cat, sev = excluded.sev, exp = excluded.exp,"
        " first_ts = CASE WHEN retracted OR exp <= excluded.last_ts"
        " THEN excluded.first_ts ELSE first_ts END,"
        " last_ts = excluded.last_ts, own = COALESCE(excluded.own, own),"
        " retracted = 0"
    )

    def _flush(self) -> None:
        """Write the deferred indicator rows: all of them in key order (a B-tree page
        written once for the whole batch), the rows of one key in the order they came
        (the last one wins, as op by op). Every read of the indicator tables through
        this store, and every write other than an add, calls this first. The module's
        readers that take a connection (`current_rows`, `count_live`, and
        node/summaries.py's) do not: they run after commits or in units of their own,
        never inside a unit that appended entries; one that did would call this first."""
        rows = self._deferred
        if not rows:
            return
        self._deferred = []
        if self._depth > 1:
            self._nested_flushes += 1
        rows.sort(key=_KEY)  # stable: one key's rows keep their order
        self._copy_up([r[:3] for r in rows])
        self.conn.executemany(self._UPSERT, rows)

    # -- FeedStore -------------------------------------------------------------

    def head(self, log: MemberId) -> Head | None:
        row = self.conn.execute(
            "SELECT seq, hash, ts, cv FROM feeds WHERE log = ?", (log,)
        ).fetchone()
        return None if row is None else Head(*row)

    def heads(self) -> dict[MemberId, Head]:
        return {
            MemberId(r[0]): Head(*r[1:])
            for r in self.conn.execute("SELECT log, seq, hash, ts, cv FROM feeds")
        }

    def entry(self, log: MemberId, seq: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT raw, z FROM entries WHERE log = ? AND seq = ?", (log, seq)
        ).fetchone()
        return None if row is None else _entry_raw(*row)

    def entries_after(self, log: MemberId, seq: int, limit: int) -> list[bytes]:
        return [
            _entry_raw(*r)
            for r in self.conn.execute(
                "SELECT raw, z FROM entries WHERE log = ? AND seq > ? ORDER BY seq LIMIT ?",
                (log, seq, limit),
            )
        ]

    def append(self, entry: Entry) -> None:
        """Append ``entry`` and its rows. Appended directly inside an outer unit of work
        (a gossip frame, `Node.accept_entries`, a report), its added rows are deferred to
        the end of that unit (`_flush`); an entry that does more than add writes the rows
        deferred before it first, outside its own savepoint."""
        defer = self._depth == 1 and all(type(op) is AddOp for op in entry.ops)
        if not defer:
            self._flush()
        with self._unit():
            c = self.conn
            c.execute(
                "INSERT INTO entries (log, seq, hash, raw, z) VALUES (?, ?, ?, ?, 1)",
                (entry.log, entry.seq, entry.hash, zlib.compress(entry.raw, 1)),
            )
            c.execute(
                "INSERT OR REPLACE INTO feeds (log, seq, hash, ts, cv) VALUES (?, ?, ?, ?, ?)",
                (entry.log, entry.seq, entry.hash, entry.ts, entry.cv),
            )
            if not defer:  # sightings, disputes, appeals, decisions first, as before
                after = [
                    op
                    for op in entry.ops
                    if not isinstance(op, AddOp)
                    and not (isinstance(op, RetractOp) and op.of is None)
                ]
                if after:
                    self._append_after_match(entry, after)  # node/aftermatch_store.py
            adds = []
            ts = entry.ts
            code = self.codes.code
            author = code(c, entry.log)
            named: dict[str, int] = {}
            # this member's own entry: each add's row points at the batch its raw
            # value was sealed in (put_own_values, earlier in this unit of work)
            own = self._own_pending if entry.log == self._me else {}
            for op in entry.ops:
                if isinstance(op, AddOp):
                    kind = named.get(op.kind)
                    if kind is None:
                        kind = named[op.kind] = code(c, op.kind)
                    cat = named.get(op.cat)
                    if cat is None:
                        cat = named[op.cat] = code(c, op.cat)
                    adds.append(
                        (
                            op.tok,
                            op.ep,
                            author,
                            kind,
                            cat,
                            op.sev,
                            op.exp,
                            ts,
                            ts,
                            own.get((op.tok, op.ep)) if own else None,
                        )
                    )
                elif isinstance(op, RetractOp) and op.of is None:
                    # in the entry's order: the adds before it first, those after it after
                    self._recent_rows += len(adds) + 1
                    self._deferred.extend(adds)
                    adds = []
                    self._flush()
                    self._copy_up([(op.tok, op.ep, author)])
                    c.execute(
                        "UPDATE indicators_recent SET retracted = 1, last_ts = ?"
                        " WHERE tok = ? AND ep = ? AND author = ?",
                        (ts, op.tok, op.ep, author),
                    )
            if adds:
                self._recent_rows += len(adds)
                self._deferred.extend(adds)
                if not defer:
                    self._flush()

    def _copy_up(self, keys: Sequence[tuple[bytes, int, int]]) -> None:
        """Copy each key's row from ``indicators`` into ``indicators_recent`` unless it is
        there already, so that an upsert or a retraction there starts from the key's
        current state (a read of the large table, no write to it)."""
        if self._main_empty:
            return
        self.conn.executemany(
            f"INSERT OR IGNORE INTO indicators_recent ({ROW_COLS}) SELECT {ROW_COLS}"
            " FROM indicators WHERE tok = ? AND ep = ? AND author = ?",
            keys,
        )

    # -- merging recent rows into the large table (m010) -----------------------

    def _maybe_merge(self) -> None:
        """After each outermost commit: merge the next token range of a merge under way,
        or start one when ``indicators_recent`` has grown past `recent_limit` rows."""
        if self._merge_next is None:
            if self._recent_rows < self.recent_limit:
                return
            self._recent_rows = self._count_recent()
            if self._recent_rows < self.recent_limit:
                return
            self._merge_next = 0
        try:
            self.merge_recent(self._merge_next, self._merge_next + 1)
        except sqlite3.Error as e:  # the commit before stands; the rows stay where they are
            log.warning("merging recent indicator rows failed (%s); trying again later", e)
            self._merge_next = None
            return
        self._merge_next += 1
        if self._merge_next >= MERGE_RANGES:
            self._merge_next = None
            self._recent_rows = self._count_recent()

    def _count_recent(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM indicators_recent").fetchone()[0])

    def merge_all_recent(self) -> int:
        """Merge every row of ``indicators_recent`` now (a node's start: the full scans
        that follow, the first base file and its Bloom filter, then read one table in
        SQL alone, not two merged in Python). Returns the rows moved."""
        self._flush()
        if self.conn.execute("SELECT 1 FROM indicators_recent LIMIT 1").fetchone() is None:
            return 0
        moved = self.merge_recent()
        self._recent_rows = 0
        self._merge_next = None
        return moved

    def merge_recent(self, first: int = 0, end: int = MERGE_RANGES) -> int:
        """Move the rows of ``indicators_recent`` in token ranges ``first`` .. ``end`` - 1 (of
        `MERGE_RANGES`) into ``indicators``, a range a transaction, in key order: rows
        of one range land on neighbouring pages, so a page takes many rows at once.
        Readers see each key's state unchanged throughout (`current_rows`). Returns the
        rows moved."""
        self._flush()
        moved = 0
        for i in range(first, end):
            where, args = _token_range(i)
            with self.db.atomic():
                cur = self.conn.execute(
                    f"INSERT INTO indicators ({ROW_COLS}) SELECT {ROW_COLS}"
                    f" FROM indicators_recent WHERE {where}"
                    " ORDER BY tok, ep, author"
                    " ON CONFLICT (tok, ep, author) DO UPDATE SET kind = excluded.kind,"
                    " cat = excluded.cat, sev = excluded.sev, exp = excluded.exp,"
                    " first_ts = excluded.first_ts, last_ts = excluded.last_ts,"
                    " retracted = excluded.retracted, own = excluded.own",
                    args,
                )
                moved += max(0, cur.rowcount)
                self.conn.execute(f"DELETE FROM indicators_recent WHERE {where}", args)
            if moved:
                self._main_empty = False
        return moved

    def added(self, author: MemberId, tok: bytes, ep: int) -> bool:
        self._flush()
        code = self.codes.known(self.conn, author)
        if code is None:
            return False
        key = (tok, ep, code)
        where = "tok = ? AND ep = ? AND author = ?"
        return any(
            self.conn.execute(f"SELECT 1 FROM {table} WHERE {where}", key).fetchone() is not None
            for table in ("indicators_recent", "indicators")
        )

    def indicators(self, tok: bytes) -> list[IndicatorState]:
        self._flush()
        values = self.codes.values(self.conn)
        rows = [state_row(r, values) for r in current_rows(self.conn, "tok = ?", (tok,))]
        rows.sort(key=report_order)
        return rows

    def indicators_many(self, toks: Sequence[bytes]) -> dict[bytes, list[IndicatorState]]:
        self._flush()
        values = self.codes.values(self.conn)
        out: dict[bytes, list[IndicatorState]] = {}
        for chunk in chunks(toks):
            q = ",".join("?" * len(chunk))
            for r in current_rows(self.conn, f"tok IN ({q})", chunk):
                out.setdefault(bytes(r[0]), []).append(state_row(r, values))
        for rows in out.values():
            rows.sort(key=report_order)
        return out

    def live_count(self, now: int) -> int:
        self._flush()
        return _count_live(self.conn, now)

    def all_indicators(self) -> Iterable[IndicatorState]:
        self._flush()
        values = self.codes.values(self.conn)
        return [state_row(r, values) for r in current_rows(self.conn, ordered=True)]

    def hold(self, entry: Entry) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO held (hash, log, seq, raw) VALUES (?, ?, ?, ?)",
            (entry.hash, entry.log, entry.seq, entry.raw),
        )

    def held(self, log: MemberId) -> list[Entry]:
        return [
            decode_entry(bytes(r[0]))
            for r in self.conn.execute("SELECT raw FROM held WHERE log = ? ORDER BY seq", (log,))
        ]

    def held_count(self, log: MemberId) -> int:
        return int(
            self.conn.execute("SELECT COUNT(*) FROM held WHERE log = ?", (log,)).fetchone()[0]
        )

    def unhold(self, entry: Entry) -> None:
        self.conn.execute("DELETE FROM held WHERE hash = ?", (entry.hash,))

    def held_logs(self) -> list[MemberId]:
        return [MemberId(r[0]) for r in self.conn.execute("SELECT DISTINCT log FROM held")]

    def is_frozen(self, log: MemberId) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM fork_proofs WHERE log = ?", (log,)).fetchone()
            is not None
        )

    def add_fork_proof(self, proof: ForkProof) -> bool:
        with self.db.atomic():
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO fork_proofs (log, seq, raw) VALUES (?, ?, ?)",
                (proof.log, proof.seq, proof.encode()),
            )
            if cur.rowcount:
                self.conn.execute("DELETE FROM held WHERE log = ?", (proof.log,))
            return cur.rowcount > 0

    def fork_proofs(self) -> list[ForkProof]:
        return [
            decode_fork_proof(bytes(r[0])) for r in self.conn.execute("SELECT raw FROM fork_proofs")
        ]

    def put_charter(self, version: int, raw: bytes) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO charters (version, hash, raw) VALUES (?, ?, ?)",
            (version, hashlib.blake2b(raw, digest_size=32).digest(), raw),
        )

    def charters(self) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute("SELECT raw FROM charters ORDER BY version")]

    def put_grant(self, grant: Grant) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO grants (hash, issuer, recipient, cv, ts, raw)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (grant.hash, grant.issuer, grant.to, grant.cv, grant.ts, grant.raw),
        )
        return cur.rowcount > 0

    def grants(self) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute("SELECT raw FROM grants ORDER BY rowid")]

    def put_proposal(self, pid: str, raw: bytes) -> None:
        self.conn.execute(
            "INSERT INTO proposals (id, raw, created, status) VALUES (?, ?, 0, 'pending')"
            " ON CONFLICT (id) DO UPDATE SET raw = excluded.raw",
            (pid, raw),
        )

    def proposals(self) -> list[bytes]:
        return [bytes(r[0]) for r in self.conn.execute("SELECT raw FROM proposals ORDER BY rowid")]

    # -- secrets at rest ---------------------------------------------------------

    def reseal(self, new_key: MemberKey) -> int:
        """Seal everything sealed at rest (epoch keys, own raw values, pending keys, any
        other ``sealed`` column) under ``new_key`` instead, in one durable transaction,
        and use it from now on (a member adopting a new key). Returns the rows resealed."""
        old = self._sealer()
        new = nacl.secret.SecretBox(_at_rest_key(new_key))
        count = 0
        with self.atomic(durable=True):
            for table in self.db.table_names():
                if "sealed" not in self.db[table].columns_dict:
                    continue
                for (blob,) in self.conn.execute(f"SELECT sealed FROM [{table}]").fetchall():
                    fresh = bytes(new.encrypt(old.decrypt(blob)))
                    self.conn.execute(
                        f"UPDATE [{table}] SET sealed = ? WHERE sealed = ?", (fresh, blob)
                    )
                    count += 1
        self._box = new
        return count

    def _sealer(self) -> nacl.secret.SecretBox:
        if self._box is None:
            raise StoreError("this store was opened without the member key")
        return self._box

    def seal(self, data: bytes) -> bytes:
        """``data`` sealed with the at-rest key, for a ``sealed`` column (node/alerts.py
        keeps watched values so); :meth:`reseal` reseals every such column."""
        return bytes(self._sealer().encrypt(data))

    def unseal(self, sealed: bytes) -> bytes:
        return bytes(self._sealer().decrypt(sealed))

    def put_epoch_key(self, ep: int, key: bytes) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO key_epochs (ep, sealed) VALUES (?, ?)",
            (ep, bytes(self._sealer().encrypt(key))),
        )

    def epoch_keys(self) -> dict[int, bytes]:
        box = self._sealer()
        out = {}
        for ep, sealed in self.conn.execute("SELECT ep, sealed FROM key_epochs ORDER BY ep"):
            try:
                out[ep] = box.decrypt(sealed)
            except nacl.exceptions.CryptoError:
                raise StoreError("epoch keys do not open with this member key") from None
        return out

    def put_pending_key(self, pid: str, ep: int, key: bytes) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO pending_keys (pid, ep, sealed) VALUES (?, ?, ?)",
            (pid, ep, bytes(self._sealer().encrypt(key))),
        )

    def take_pending_key(self, pid: str) -> tuple[int, bytes] | None:
        """The key made for proposal ``pid``, removed from the pending table."""
        row = self.conn.execute(
            "SELECT ep, sealed FROM pending_keys WHERE pid = ?", (pid,)
        ).fetchone()
        if row is None:
            return None
        self.conn.execute("DELETE FROM pending_keys WHERE pid = ?", (pid,))
        return int(row[0]), self._sealer().decrypt(row[1])

    def put_own_values(self, rows: Iterable[tuple[bytes, int, str, str]]) -> None:
        """Keep this member's own raw values (tok, ep, kind, canonical), sealed: one
        ``own_batches`` row an epoch, appended (m009).

        Call it before the entry that reports them is appended, in the same unit of
        work: `append` then sets each of that entry's rows' ``own`` to its batch, which
        is how `own_value` and `own_live_reports` find a token's value. Values put
        outside such a unit are kept, and found by `own_values` alone."""
        box = self._sealer()
        by_ep: dict[int, list[tuple[bytes, str, str]]] = {}
        for tok, ep, kind, value in rows:
            by_ep.setdefault(ep, []).append((bytes(tok), kind, value))
        with self._unit():
            for ep, items in by_ep.items():
                cur = self.conn.execute(
                    "INSERT INTO own_batches (ep, sealed) VALUES (?, ?)",
                    (ep, bytes(box.encrypt(cbor2.dumps(items)))),
                )
                batch = int(cur.lastrowid or 0)
                for tok, _, _ in items:
                    self._own_pending[(tok, ep)] = batch

    def own_batch(self, batch: int) -> dict[bytes, tuple[str, str]]:
        """The values sealed in one ``own_batches`` row: tok -> (kind, canonical)."""
        row = self.conn.execute("SELECT sealed FROM own_batches WHERE id = ?", (batch,)).fetchone()
        if row is None:
            return {}
        return {
            bytes(tok): (str(kind), str(value))
            for tok, kind, value in cbor2.loads(self._sealer().decrypt(row[0]))
        }

    def own_values(self, ep: int) -> Iterator[tuple[bytes, str, str]]:
        """Every raw value this member kept under ``ep``: (tok, kind, canonical); a
        token reported more than once is listed once, with its latest batch."""
        box = self._sealer()
        seen: set[bytes] = set()
        batches = [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM own_batches WHERE ep = ? ORDER BY id DESC", (ep,)
            )
        ]
        for batch in batches:
            for tok, (kind, value) in self.own_batch(batch).items():
                if tok not in seen:
                    seen.add(tok)
                    yield tok, kind, value
        for tok, kind, sealed in self.conn.execute(  # written before m009
            "SELECT tok, kind, sealed FROM own_values WHERE ep = ?", (ep,)
        ):
            if bytes(tok) not in seen:
                yield bytes(tok), kind, box.decrypt(sealed).decode()

    # -- API keys and audit ----------------------------------------------------

    def add_api_key(self, secret: str, name: str, scopes: Iterable[str], now: int) -> None:
        self.api_keys_changed += 1
        self.conn.execute(
            "INSERT OR REPLACE INTO api_keys (hash, name, scopes, created) VALUES (?, ?, ?, ?)",
            (_api_key_hash(secret), name, ",".join(sorted(scopes)), now),
        )

    def api_key_scopes(self, secret: str) -> frozenset[str] | None:
        row = self.conn.execute(
            "SELECT scopes FROM api_keys WHERE hash = ? AND revoked IS NULL",
            (_api_key_hash(secret),),
        ).fetchone()
        return None if row is None else frozenset(row[0].split(","))

    def api_key_rows(self) -> list[tuple[bytes, str, str, int, int | None, int | None]]:
        """Every API key: (hash, name, scopes, created, last_used, revoked)."""
        return [
            (bytes(r[0]), r[1], r[2], r[3], r[4], r[5])
            for r in self.conn.execute(
                "SELECT hash, name, scopes, created, last_used, revoked FROM api_keys"
                " ORDER BY created"
            )
        ]

    def insert_api_key(self, h: bytes, name: str, scopes: str, now: int) -> None:
        self.api_keys_changed += 1
        self.conn.execute(
            "INSERT INTO api_keys (hash, name, scopes, created) VALUES (?, ?, ?, ?)",
            (h, name, scopes, now),
        )

    def revoke_api_key(self, name: str, now: int) -> int:
        self.api_keys_changed += 1
        cur = self.conn.execute(
            "UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL", (now, name)
        )
        return cur.rowcount

    def touch_api_keys(self, used: dict[bytes, int]) -> None:
        self.conn.executemany(
            "UPDATE api_keys SET last_used = MAX(COALESCE(last_used, 0), ?) WHERE hash = ?",
            [(ts, h) for h, ts in used.items()],
        )

    def audit(self, ts: int, actor: str, action: str, detail: str) -> None:
        """Append an audit row, chained to the one before (:mod:`node.audit`). ``actor``
        is the acting API key's name (:func:`node.audit.current_actor`); ``detail``
        holds tokens and refs only (:func:`node.audit.detail`)."""
        with self.db.atomic():
            last = self.conn.execute(
                "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1"
            ).fetchone()
            rid = 1 if last is None else int(last[0]) + 1
            prev = GENESIS if last is None or last[1] is None else bytes(last[1])
            h = row_hash(prev, rid, ts, actor, action, detail)
            self.conn.execute(
                "INSERT INTO audit (id, ts, actor, action, detail, prev, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rid, ts, actor, action, detail, prev, h),
            )

    def audit_rows(
        self, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, int, str, str, str, bytes, bytes]]:
        """Audit rows with id > ``after``, oldest first: (id, ts, actor, action, detail,
        prev, hash)."""
        return [
            (r[0], r[1], r[2], r[3], r[4], bytes(r[5] or b""), bytes(r[6] or b""))
            for r in self.conn.execute(
                "SELECT id, ts, actor, action, detail, prev, hash FROM audit WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (after, limit),
            )
        ]

    def audit_prev(self, rid: int) -> bytes | None:
        """The stored hash of row ``rid`` (None: no such row)."""
        row = self.conn.execute("SELECT hash FROM audit WHERE id = ?", (rid,)).fetchone()
        return None if row is None else bytes(row[0] or b"")

    def own_live_reports(
        self, author: bytes, now: int, after: bytes = b"", limit: int = 1000
    ) -> list[tuple[bytes, int, str, str, int, int, int, str | None]]:
        """This member's live reports with their sealed raw value, by token:
        (tok, ep, kind, category, severity, first_ts, exp, canonical value or None)."""
        self._flush()
        box = self._box
        out: list[tuple[bytes, int, str, str, int, int, int, str | None]] = []
        code = self.codes.known(self.conn, author)
        if code is None:
            return out
        values = self.codes.values(self.conn)
        # a page's tokens are spread over many batches: each is opened once a page
        batches: dict[int, dict[bytes, tuple[str, str]]] = {}
        rows = current_rows(
            self.conn, "author = ? AND tok > ?", (code, after), live_at=now, ordered=True
        )
        for r in itertools.islice(rows, limit):
            tok, ep, kind, cat, sev, first_ts, exp, batch = (
                r[0],
                r[1],
                r[3],
                r[4],
                r[5],
                r[7],
                r[6],
                r[10],
            )
            legacy = self.conn.execute(  # written before m009
                "SELECT sealed FROM own_values WHERE tok = ? AND ep = ?", (tok, ep)
            ).fetchone()
            sealed = None if legacy is None else legacy[0]
            value = None
            if box is not None and batch is not None:
                if batch not in batches:
                    batches[batch] = self.own_batch(batch)
                found = batches[batch].get(bytes(tok))
                value = None if found is None else found[1]
            elif box is not None and sealed is not None:  # written before m009
                value = box.decrypt(sealed).decode()
            kind_name, cat_name = values[kind], values[cat]
            assert isinstance(kind_name, str) and isinstance(cat_name, str)
            out.append((bytes(tok), ep, kind_name, cat_name, sev, first_ts, exp, value))
        return out


def _private_file(path: Path) -> None:
    """Create ``path`` (if new) or tighten it to mode 0600: the database holds sealed
    keys and sealed raw values, for the node's user alone."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    path.chmod(0o600)


def _api_key_hash(secret: str) -> bytes:
    return hashlib.blake2b(secret.encode(), digest_size=32, person=b"rm-api-key").digest()


def _at_rest_key(member_key: MemberKey) -> bytes:
    return hashlib.blake2b(member_key.seed(), digest_size=32, person=b"rm-at-rest-v1").digest()
