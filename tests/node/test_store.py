"""SqliteStore implements the protocol's storage interface and keeps secrets sealed."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import StoreError
from contracts.policy import DAY_MS
from node.store import CACHE_KIB, MIGRATIONS, SqliteStore, current_rows
from node.summaries import _all_summaries, summaries_of
from protocol.charter_chain import CharterChain, sign_charter
from protocol.entries import AddOp, Entry, RetractOp, build_entry
from protocol.feeds import Feeds
from protocol.governance import genesis, member
from protocol.keys import MemberKey
from protocol.store import FeedStore, IndicatorState, MemoryStore

T0 = 1_700_000_000_000


@pytest.fixture
def fresh_store() -> SqliteStore:
    return SqliteStore(None, MemberKey.from_seed(bytes(32)))


def consortium() -> tuple[MemberKey, bytes]:
    key = MemberKey.from_seed(random.Random(3).randbytes(32))
    g = genesis("c", [member(key.id, "a", "", admin=True)], T0)
    return key, sign_charter(g, [key])


def test_is_a_feed_store(fresh_store: SqliteStore) -> None:
    assert isinstance(fresh_store, FeedStore)


def test_same_outcomes_as_memory_store(fresh_store: SqliteStore) -> None:
    """A mixed sequence (gap, duplicate, retract, fork) gives the same result in both stores."""
    key, genesis = consortium()
    tok = [bytes([i]) * 16 for i in range(5)]
    exp = T0 + DAY_MS

    def add(i: int) -> AddOp:
        return AddOp(tok[i], "phone", 1, "telecom_fraud", 2, exp)

    e1 = build_entry(key, seq=1, prev=None, ts=T0, cv=1, ops=[add(0), add(1)])
    e2 = build_entry(
        key, seq=2, prev=e1.hash, ts=T0, cv=1, ops=[RetractOp(tok[0], "phone", 1, "resolved")]
    )
    e3 = build_entry(key, seq=3, prev=e2.hash, ts=T0, cv=1, ops=[add(2)])
    e3b = build_entry(key, seq=3, prev=e2.hash, ts=T0, cv=1, ops=[add(3)])
    bad = build_entry(
        key, seq=4, prev=e3.hash, ts=T0, cv=1, ops=[RetractOp(tok[4], "phone", 1, "resolved")]
    )
    seq = [e3.raw, e1.raw, e1.raw, e2.raw, bad.raw, e3b.raw, e3.raw]
    outcomes = []
    for store in (MemoryStore(), fresh_store):
        feeds = Feeds(store, CharterChain(genesis))
        got = [
            (o.status, o.reason, [e.seq for e in o.accepted])
            for o in (feeds.offer(raw, T0) for raw in seq)
        ]
        states = sorted((s.tok, s.retracted) for t in tok for s in store.indicators(t))
        outcomes.append((got, states, store.is_frozen(key.id), store.head(key.id)))
    assert outcomes[0] == outcomes[1]
    got, states, frozen, head = outcomes[1]
    assert [g[0] for g in got] == [
        "held",
        "accepted",
        "duplicate",
        "accepted",
        "rejected",
        "fork",
        "rejected",
    ]
    assert got[3][2] == [2, 3]  # e2 unblocked the held e3
    assert frozen and head is not None and head.seq == 3
    assert states == [(tok[0], True), (tok[1], False), (tok[2], False)]


def test_epoch_keys_and_raw_values_are_sealed_at_rest(tmp_path: Path) -> None:
    key = MemberKey.from_seed(bytes(range(32)))
    path = tmp_path / "s.db"
    store = SqliteStore(path, key)
    secret = bytes(range(100, 132))
    store.put_epoch_key(1, secret)
    store.put_own_values([(b"t" * 16, 1, "phone", "+8613800138000")])
    assert store.epoch_keys() == {1: secret}
    assert list(store.own_values(1)) == [(b"t" * 16, "phone", "+8613800138000")]
    # a batch is sealed in one row, each batch under a nonce of its own
    batch = [(bytes([i]) * 16, 2, "phone", f"+86138001380{i:02d}") for i in range(50)]
    store.put_own_values(batch)
    nonces = {bytes(r[0])[:24] for r in store.conn.execute("SELECT sealed FROM own_batches")}
    assert len(nonces) == 2
    assert sorted(store.own_values(2)) == sorted((t, k, v) for t, _, k, v in batch)
    store.close()
    for f in tmp_path.iterdir():
        data = f.read_bytes()
        assert secret not in data and b"+8613800138000" not in data and b"8613800138000" not in data
    with pytest.raises(StoreError):
        SqliteStore(path, MemberKey.from_seed(bytes(32))).epoch_keys()
    with pytest.raises(StoreError):
        SqliteStore(path).epoch_keys()


def test_a_file_store_reads_through_a_mapping_with_a_small_page_cache(tmp_path: Path) -> None:
    """The writer's memory: SQLite reads the database through a mapping of the file (the
    kernel's page cache), and its own cache stays at CACHE_KIB."""
    s = SqliteStore(tmp_path / "s.db")
    try:
        assert s.conn.execute("PRAGMA mmap_size").fetchone()[0] >= 1 << 30
        assert s.conn.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    finally:
        s.close()


def test_migrations_are_safe_to_rerun(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    s = SqliteStore(path)
    assert MIGRATIONS.pending(s.db) == []
    assert {
        "entries",
        "indicators",
        "charters",
        "key_epochs",
        "grants",
        "proposals",
        "fork_proofs",
        "peers",
        "audit",
        "own_values",
        "api_keys",
        "held",
        "feeds",
    } <= set(s.db.table_names())
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()


def test_failed_unit_of_work_rolls_back(fresh_store: SqliteStore) -> None:
    with pytest.raises(RuntimeError), fresh_store.atomic(durable=True):
        fresh_store.audit(1, "me", "x", "y")
        raise RuntimeError("boom")
    assert fresh_store.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
    assert fresh_store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL


def test_api_keys_stored_hashed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SqliteStore(path)
    s.add_api_key("rm_secret_value", "cli", ["query"], 0)
    assert s.api_key_scopes("rm_secret_value") == {"query"}
    assert s.api_key_scopes("rm_other") is None
    s.close()
    raw = sqlite3.connect(path).execute("SELECT hash FROM api_keys").fetchone()[0]
    assert b"rm_secret_value" not in raw and b"rm_secret_value" not in path.read_bytes()


def test_indicator_rows_migrate_to_codes_and_read_back_the_same(tmp_path: Path) -> None:
    """A database from before m007 (author ids and names in every row) opens with every
    row intact, now held as codes, and is half the size a row."""
    path = tmp_path / "old.db"
    s = SqliteStore(path)
    s.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        """
        DROP TABLE indicators; DROP TABLE codes;
        DELETE FROM _sqlite_migrations
            WHERE name IN ('m007_compact_indicators', 'm009_own_batches');
        CREATE TABLE indicators (
            tok BLOB NOT NULL, ep INTEGER NOT NULL, author BLOB NOT NULL, kind TEXT NOT NULL,
            cat TEXT NOT NULL, sev INTEGER NOT NULL, exp INTEGER NOT NULL,
            first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, retracted INTEGER NOT NULL,
            PRIMARY KEY (tok, ep, author)) WITHOUT ROWID;
        """
    )
    rng = random.Random(7)
    authors = [rng.randbytes(32) for _ in range(3)]
    rows = [
        (
            rng.randbytes(16),
            1 + i % 2,
            authors[i % 3],
            ("device", "phone")[i % 2],
            ("device_risk", "account_takeover")[i % 2],
            1 + i % 5,
            T0 + i,
            T0 - i,
            T0,
            i % 7 == 0,
        )
        for i in range(300)
    ]
    conn.executemany("INSERT INTO indicators VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    s = SqliteStore(path)
    assert MIGRATIONS.pending(s.db) == []
    assert s.conn.execute("SELECT typeof(author), typeof(kind) FROM indicators").fetchone() == (
        "integer",
        "integer",
    )
    for tok, ep, author, kind, cat, sev, exp, first, last, retracted in rows:
        (state,) = [x for x in s.indicators(tok) if x.ep == ep]
        assert (state.author, state.kind, state.cat, state.sev, state.exp) == (
            author,
            kind,
            cat,
            sev,
            exp,
        )
        assert (state.first_ts, state.last_ts, state.retracted) == (first, last, retracted)
        assert s.added(MemberKey.from_seed(bytes(32)).id, tok, ep) is False
    s.close()


def test_a_code_made_in_a_unit_that_rolls_back_is_forgotten(tmp_path: Path) -> None:
    """A new author's code is made inside the transaction that first uses it: when that
    transaction rolls back, the store must not keep the code (another value would take
    its number, and rows would point to the wrong one)."""
    key, _ = consortium()
    s = SqliteStore(tmp_path / "s.db", key)
    other = MemberKey.from_seed(bytes([9]) * 32)
    tok = bytes(range(16))

    def first_entry(author: MemberKey, kind: str, cat: str) -> Entry:
        return build_entry(
            author, seq=1, prev=None, ts=T0, cv=1, ops=[AddOp(tok, kind, 1, cat, 3, T0 + DAY_MS)]
        )

    e1 = first_entry(other, "device", "device_risk")
    with pytest.raises(RuntimeError), s.atomic():
        s.append(e1)
        raise RuntimeError("boom")
    assert s.conn.execute("SELECT COUNT(*) FROM codes").fetchone()[0] == 0
    # a different value now takes the freed number; the first author's rows still read back
    e2 = first_entry(key, "phone", "account_takeover")
    with s.atomic():
        s.append(e2)
        s.append(e1)
    got = {(x.author, x.kind, x.cat) for x in s.indicators(tok)}
    assert got == {(key.id, "phone", "account_takeover"), (other.id, "device", "device_risk")}
    s.close()


def test_entries_are_kept_compressed_and_served_byte_for_byte(tmp_path: Path) -> None:
    """An entry is stored compressed (a fifth of its size for device ops) and read back as
    the exact signed bytes; a row from before compression reads back as it was."""
    key, _ = consortium()
    s = SqliteStore(tmp_path / "s.db", key)
    rng = random.Random(5)
    ops = [
        AddOp(rng.randbytes(16), "device", 1, "device_risk", 3, T0 + DAY_MS) for _ in range(1000)
    ]
    e1 = build_entry(key, seq=1, prev=None, ts=T0, cv=1, ops=ops)
    e2 = build_entry(key, seq=2, prev=e1.hash, ts=T0, cv=1, ops=ops[:10])
    with s.atomic():
        s.append(e1)
    stored = s.conn.execute("SELECT length(raw), z FROM entries WHERE seq = 1").fetchone()
    assert stored[1] == 1 and stored[0] < len(e1.raw) / 3
    # as a row written before m008 would be: the signed bytes themselves, z = 0
    s.conn.execute(
        "INSERT INTO entries (log, seq, hash, raw) VALUES (?, ?, ?, ?)",
        (e2.log, e2.seq, e2.hash, e2.raw),
    )
    assert s.entry(key.id, 1) == e1.raw and s.entry(key.id, 2) == e2.raw
    assert s.entries_after(key.id, 0, 10) == [e1.raw, e2.raw]
    s.close()


def own_entry(key: MemberKey, seq: int, prev: bytes | None, toks: list[bytes]) -> Entry:
    ops = [AddOp(t, "phone", 1, "telecom_fraud", 3, T0 + DAY_MS) for t in toks]
    return build_entry(key, seq=seq, prev=prev, ts=T0, cv=1, ops=ops)


@pytest.mark.parametrize("merged", [False, True])
def test_own_values_are_found_by_token_through_the_rows_that_report_them(
    tmp_path: Path, merged: bool
) -> None:
    """A published entry's raw values are sealed as one batch; the member's own rows point
    at it, so each value is found by its token (cases, appeals, the reports list), and the
    same token reported by another member carries no pointer; whether the rows are still
    in ``indicators_recent`` or merged into ``indicators``."""
    key, _ = consortium()
    other = MemberKey.from_seed(bytes([9]) * 32)
    s = SqliteStore(tmp_path / "s.db", key)
    toks = [bytes([i]) * 16 for i in range(20)]
    values = [f"+8613800138{i:03d}" for i in range(20)]
    with s.atomic(durable=True):
        s.put_own_values([(t, 1, "phone", v) for t, v in zip(toks, values, strict=True)])
        s.append(own_entry(key, 1, None, toks))
    with s.atomic():
        s.append(own_entry(other, 1, None, toks[:5]))
    if merged:
        assert s.merge_recent() == 25
    assert s.conn.execute("SELECT COUNT(*) FROM own_batches").fetchone()[0] == 1
    pointers = {r[2]: r[10] for r in current_rows(s.conn, "tok = ?", (toks[0],))}
    assert sorted(pointers.values(), key=lambda v: v is None) == [1, None]
    for t, v in zip(toks, values, strict=True):
        assert s.own_value(t, 1) == ("phone", v)
        assert s.own_value(t, 2) is None
    assert s.own_value(b"x" * 16, 1) is None
    listed = s.own_live_reports(key.id, T0, b"", 100)
    assert [(r[0], r[7]) for r in listed] == sorted(zip(toks, values, strict=True))
    # reported again in a later entry: the rows point at the newer batch, listed once
    e1 = s.head(key.id)
    assert e1 is not None
    with s.atomic(durable=True):
        s.put_own_values([(toks[0], 1, "phone", values[0])])
        s.append(own_entry(key, 2, e1.hash, toks[:1]))
    assert [r[10] for r in current_rows(s.conn, "tok = ? AND own IS NOT NULL", (toks[0],))] == [2]
    assert sorted(s.own_values(1)) == sorted(
        (t, "phone", v) for t, v in zip(toks, values, strict=True)
    )
    s.close()


def test_own_values_of_a_unit_that_rolls_back_are_gone_and_point_nowhere(tmp_path: Path) -> None:
    key, _ = consortium()
    s = SqliteStore(tmp_path / "s.db", key)
    toks = [bytes([i]) * 16 for i in range(3)]
    with pytest.raises(RuntimeError), s.atomic(durable=True):
        s.put_own_values([(t, 1, "phone", f"+861380013800{i}") for i, t in enumerate(toks)])
        raise RuntimeError("boom")
    assert s.conn.execute("SELECT COUNT(*) FROM own_batches").fetchone()[0] == 0
    # the next own entry, with no values put in its unit, points at no batch
    with s.atomic():
        s.append(own_entry(key, 1, None, toks))
    assert list(current_rows(s.conn, "own IS NOT NULL")) == []
    assert s.own_value(toks[0], 1) is None
    s.close()


def test_own_values_written_before_batches_are_still_read(tmp_path: Path) -> None:
    """A database from before m009 holds a sealed row a value in ``own_values``: they
    are still listed, found by token, and open cases on them."""
    key, _ = consortium()
    s = SqliteStore(tmp_path / "s.db", key)
    toks = [bytes([i]) * 16 for i in range(4)]
    with s.atomic():
        s.append(own_entry(key, 1, None, toks))
    for i, t in enumerate(toks):  # as the store wrote them before m009
        s.conn.execute(
            "INSERT INTO own_values (tok, ep, kind, sealed) VALUES (?, 1, 'phone', ?)",
            (t, s.seal(f"+861380013800{i}".encode())),
        )
    assert s.own_value(toks[2], 1) == ("phone", "+8613800138002")
    old = [(t, "phone", f"+861380013800{i}") for i, t in enumerate(toks)]
    assert sorted(s.own_values(1)) == old
    listed = s.own_live_reports(key.id, T0, b"", 100)
    assert [r[7] for r in listed] == [f"+861380013800{i}" for i in range(4)]
    s.close()


_POOL = [bytes([(i * 37) % 256]) + bytes([i]) * 15 for i in range(12)]


@settings(max_examples=120, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["add", "add", "own", "retract", "merge"]),
            st.lists(st.integers(0, len(_POOL) - 1), min_size=1, max_size=5),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_rows_read_the_same_wherever_the_merges_of_recent_rows_fall(
    steps: list[tuple[str, list[int], int]],
) -> None:
    """Indicator rows are written to ``indicators_recent`` and merged into ``indicators``
    a token range at a time (m010). Whatever ranges are merged when, every read gives
    what a store that never merges gives: each key's current row, its liveness, its
    author's earlier add, the own value behind it, the summaries."""
    key, _ = consortium()
    other = MemberKey.from_seed(bytes([9]) * 32)
    plain = SqliteStore(None, key)
    plain.recent_limit = 10**9
    merging = SqliteStore(None, key)
    merging.recent_limit = 1  # a merge goes on after every commit, a range at a time
    heads: dict[bytes, Entry | None] = {key.id: None, other.id: None}
    now = T0
    for what, idx, extra in steps:
        now += DAY_MS
        if what == "merge":
            merging.merge_recent(extra, extra + 20)
            continue
        author = key if what == "own" else other if extra % 2 else key
        prev = heads[author.id]
        toks = [_POOL[i] for i in idx]
        ops: list[AddOp | RetractOp] = (
            [RetractOp(t, "device", 1, "false_positive") for t in toks]
            if what == "retract"
            else [
                AddOp(t, "device", 1, "device_risk", 1 + extra, now + (1 + extra) * DAY_MS)
                for t in toks
            ]
        )
        entry = build_entry(
            author,
            seq=1 if prev is None else prev.seq + 1,
            prev=None if prev is None else prev.hash,
            ts=now,
            cv=1,
            ops=ops,
        )
        heads[author.id] = entry
        for s in (plain, merging):
            with s.atomic():
                if what == "own":
                    s.put_own_values(
                        [(t, 1, "device", f"fp:{t.hex()}") for t in dict.fromkeys(toks)]
                    )
                s.append(entry)
    at = now - 2 * DAY_MS  # some rows live, some expired

    def rows(s: SqliteStore) -> list[IndicatorState]:
        return sorted(s.all_indicators(), key=lambda x: (x.tok, x.ep, x.author))

    assert rows(merging) == rows(plain)
    for t in _POOL:
        assert merging.indicators(t) == plain.indicators(t)
        assert merging.own_value(t, 1) == plain.own_value(t, 1)
        for who in (key, other):
            assert merging.added(who.id, t, 1) == plain.added(who.id, t, 1)
    assert merging.indicators_many(_POOL) == plain.indicators_many(_POOL)
    assert merging.live_count(at) == plain.live_count(at)
    assert merging.own_live_reports(key.id, at, b"", 5) == plain.own_live_reports(
        key.id, at, b"", 5
    )
    assert summaries_of(merging.conn, _POOL, at) == summaries_of(plain.conn, _POOL, at)
    assert list(_all_summaries(merging.conn, at, merging.codes.values(merging.conn))) == list(
        _all_summaries(plain.conn, at, plain.codes.values(plain.conn))
    )
    merging.merge_recent()
    assert merging.conn.execute("SELECT COUNT(*) FROM indicators_recent").fetchone() == (0,)
    assert rows(merging) == rows(plain)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["add", "retract"]), st.integers(0, 3), st.integers(1, 5)),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 8),
)
def test_a_frame_writes_its_rows_at_its_end_with_the_outcome_of_one_by_one(
    entries: list[list[tuple[str, int, int]]], frame: int
) -> None:
    """Rows of entries appended inside one unit of work (a gossip frame) are written at its
    end as one batch; adds, re-adds and retractions of the same token across the frame's
    entries (and within one) end as they do applied one by one in the reference store."""
    key, charter = consortium()
    tok = [bytes([i + 1]) * 16 for i in range(4)]
    raws, prev = [], None
    for seq, ops in enumerate(entries, start=1):
        built = [
            AddOp(tok[t], "phone", 1, "telecom_fraud", sev, T0 + sev * DAY_MS)
            if what == "add"
            else RetractOp(tok[t], "phone", 1, "resolved")
            for what, t, sev in ops
        ]
        e = build_entry(key, seq=seq, prev=prev, ts=T0 + seq, cv=1, ops=built)
        raws.append(e.raw)
        prev = e.hash
    outcomes = []
    for store in (MemoryStore(), SqliteStore(None, key)):
        feeds = Feeds(store, CharterChain(charter))
        got = []
        for i in range(0, len(raws), frame):
            if isinstance(store, SqliteStore):
                with store.atomic():
                    got += [feeds.offer(raw, T0).status for raw in raws[i : i + frame]]
            else:
                got += [feeds.offer(raw, T0).status for raw in raws[i : i + frame]]
        states = sorted(
            (s.tok, s.sev, s.exp, s.first_ts, s.last_ts, s.retracted)
            for t in tok
            for s in store.indicators(t)
        )
        outcomes.append((got, states, store.head(key.id)))
    assert outcomes[0] == outcomes[1]


def test_a_nested_unit_that_rolls_back_rows_of_the_frame_stops_its_commit(tmp_path: Path) -> None:
    """A read inside a nested unit writes the frame's deferred rows there; if that unit
    then rolls back, those rows are gone from the transaction, so the frame refuses to
    commit (nothing of it is kept) rather than commit without them."""
    key, charter = consortium()
    store = SqliteStore(tmp_path / "s.db", key)
    feeds = Feeds(store, CharterChain(charter))
    e1 = build_entry(
        key,
        seq=1,
        prev=None,
        ts=T0,
        cv=1,
        ops=[AddOp(b"t" * 16, "phone", 1, "telecom_fraud", 2, T0 + DAY_MS)],
    )
    with pytest.raises(StoreError, match="rolled back"), store.atomic():
        assert feeds.offer(e1.raw, T0).status == "accepted"
        with pytest.raises(RuntimeError), store.atomic():
            assert [s.tok for s in store.indicators(b"t" * 16)] == [b"t" * 16]
            raise RuntimeError("this unit fails")
    assert store.head(key.id) is None and store.indicators(b"t" * 16) == []
    # and the store goes on: the same entry, in a unit of its own, is kept
    with store.atomic():
        assert feeds.offer(e1.raw, T0).status == "accepted"
    assert [s.sev for s in store.indicators(b"t" * 16)] == [2]
