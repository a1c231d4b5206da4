"""Verdict summaries (node/summaries.py): the base file, the overlay, the switch between.

The query path reads these instead of SQLite; a verdict must not depend on
whether a token's summary sits in the base file or in the overlay, nor on a
rebuild happening in between.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.policy import DAY_MS
from node.core import Node
from node.store import SqliteStore, current_rows
from node.summaries import BaseFile, Changes, Summaries, build_base_file, decode, encode
from protocol.charter_chain import sign_charter
from protocol.governance import genesis, member
from protocol.keys import MemberId, MemberKey
from protocol.store import IndicatorState

T0 = 1_700_000_000_000
KEY = MemberKey.from_seed(bytes([3]) * 32)
EPOCH_KEY = bytes(range(32))


def _node(path: Path | None = None, summary_dir: Path | None = None) -> Node:
    core = Node(SqliteStore(path, KEY), KEY, now=T0, summary_dir=summary_dir)
    charter = genesis("t", [member(KEY.id, "bank", "http://127.0.0.1:1/peer", admin=True)], T0)
    core.install_charter(sign_charter(charter, [KEY]), {1: EPOCH_KEY})
    core._synced = True  # no peer to exchange with here: the member reports at once
    return core


def _report(core: Node, values: list[str], now: int, **extra: object) -> None:
    items = [{"kind": "device", "value": v, "category": "device_risk", **extra} for v in values]
    core.report(items, now)


def _verdicts(core: Node, values: list[str], now: int) -> list[dict[str, object]]:
    items = [{"kind": "device", "value": v} for v in values]
    return core.query(items, now, record=False)


def _state(tok: bytes, **kw: object) -> IndicatorState:
    base: dict[str, object] = dict(
        tok=tok,
        ep=1,
        author=MemberId(bytes(32)),
        kind="device",
        cat="device_risk",
        sev=3,
        exp=T0 + DAY_MS,
        first_ts=T0,
        last_ts=T0,
        retracted=False,
    )
    base.update(kw)
    return IndicatorState(**base)  # type: ignore[arg-type]


def test_a_summary_decodes_to_the_rows_it_was_made_from() -> None:
    tok = os.urandom(16)
    rows = [_state(tok), _state(tok, author=MemberId(bytes([1]) * 32), sev=5, cat="other")]
    s = decode(tok, encode(tok, rows))
    assert list(s.reports) == rows
    assert s.signals == () and s.appeals == () and dict(s.decisions) == {}


def test_verdicts_are_the_same_from_the_overlay_and_after_a_rebuild(tmp_path: Path) -> None:
    core = _node(tmp_path / "db", tmp_path / "summaries")
    values = [f"fp:v{i}" for i in range(50)]
    _report(core, values[:30], T0)
    _report(core, values[:5], T0 + 1000, severity=5)  # re-reports: one row replaced
    core.retract(
        [{"kind": "device", "value": v, "reason": "false_positive"} for v in values[5:8]], T0 + 2000
    )
    from_overlay = _verdicts(core, values, T0 + 3000)
    assert len(core.summaries.overlay) > 0
    core.rebuild_summaries(T0 + 3000)
    assert not core.summaries.overlay
    assert core.summaries.base.count == 30 - 3  # retracted tokens have nothing to answer from
    assert _verdicts(core, values, T0 + 3000) == from_overlay
    assert [v["match"] for v in from_overlay] == [True] * 5 + [False] * 3 + [True] * 22 + [
        False
    ] * 20
    assert {v.get("max_severity") for v in from_overlay[:5]} == {5}
    # a base file survives a restart of the node (it is rebuilt from the store at start)
    core.close()
    again = Node(SqliteStore(tmp_path / "db", KEY), KEY, now=T0, summary_dir=tmp_path / "summaries")
    assert _verdicts(again, values, T0 + 3000) == from_overlay
    again.close()


def test_expiry_applies_at_query_time_whatever_the_layer() -> None:
    core = _node()
    _report(core, ["fp:short"], T0, ttl_days=1)
    assert _verdicts(core, ["fp:short"], T0 + DAY_MS - 1)[0]["match"] is True
    assert _verdicts(core, ["fp:short"], T0 + DAY_MS)[0]["match"] is False
    core.rebuild_summaries(T0)  # built while live: the row is in the base file
    assert core.summaries.base.count == 1
    assert _verdicts(core, ["fp:short"], T0 + DAY_MS)[0]["match"] is False
    core.rebuild_summaries(T0 + DAY_MS)  # built after: the row is gone
    assert core.summaries.base.count == 0


def test_a_base_file_is_found_exactly_and_its_layers_combine(tmp_path: Path) -> None:
    core = _node(tmp_path / "db")
    values = [f"fp:x{i}" for i in range(300)]
    _report(core, values, T0)
    out = tmp_path / "base"
    n = build_base_file(str(tmp_path / "db"), str(out), T0, 7)
    assert n == 300 and os.stat(out).st_mode & 0o777 == 0o600
    base = BaseFile.open(out)
    assert base.seq == 7 and base.count == 300
    toks = [tok for tok, _ in base.items()]
    assert toks == sorted(toks)
    s = Summaries(base)
    strangers = [os.urandom(16) for _ in range(300)]
    for batch in (toks[:3], toks, strangers, toks + strangers):
        got = s.lookup(batch)
        assert [g is not None for g in got] == [t in set(toks) for t in batch]
    # the overlay wins over the base; newer changes survive a switch to a new base
    s.apply(8, {toks[0]: None, strangers[0]: base.blob(1)})
    s.apply(9, {toks[1]: None})
    assert s.lookup([toks[0], strangers[0], toks[1]]) == [None, base.blob(1), None]
    assert s.count() == 300 - 2 + 1
    newer = BaseFile.from_connection(core.store.conn, T0, 8)
    s.set_base(newer)
    assert set(s.overlay) == {toks[1]}
    assert s.lookup([toks[1]]) == [None]


def test_a_base_file_carries_the_bloom_filter_of_its_tokens(tmp_path: Path) -> None:
    """The file's filter holds every token of the file, at the node's error rate and
    sized for exactly its tokens; a read-only view, answering as the filter it was
    built as (node/index.py), that takes no adds."""
    from node.index import TokenIndex

    core = _node(tmp_path / "db")
    for j in range(3):
        _report(core, [f"fp:x{j}-{i}" for i in range(1000)], T0)
    out = tmp_path / "base"
    build_base_file(str(tmp_path / "db"), str(out), T0, 3, error_rate=0.01)
    base = BaseFile.open(out)
    toks = [tok for tok, _ in base.items()]
    bloom = base.bloom
    assert bloom is not None and len(toks) == 3000
    assert (bloom.count, bloom.capacity, bloom.error_rate) == (3000, 3000, 0.01)
    assert bloom.contains_many(toks) == [True] * 3000 and all(t in bloom for t in toks)
    same = TokenIndex(3000, 0.01)
    same.add_many(toks)
    assert bytes(bloom.bit_bytes()) == bytes(same.bit_bytes())
    strangers = [os.urandom(16) for _ in range(20_000)]
    assert sum(bloom.contains_many(strangers)) < 20_000 * 0.01 * 2  # about 1 %
    with pytest.raises(ValueError, match="read-only"):
        bloom.add(strangers[0])
    # the filter's bytes are the file's: cut into, the file is refused
    with pytest.raises(ValueError, match="truncated"):
        BaseFile(out.read_bytes()[: -len(same.bit_bytes()) // 2])
    base.close()


def test_equal_first_halves_are_told_apart() -> None:
    """Tokens sharing their first 8 bytes (one pair in 2**64 / count) are found by the scan."""
    import io

    from node.summaries import build_base

    prefix = os.urandom(8)
    toks = sorted([prefix + os.urandom(8) for _ in range(5)] + [os.urandom(16) for _ in range(50)])
    rows = {t: encode(t, [_state(t, sev=1 + i % 5)]) for i, t in enumerate(toks)}

    class Fake:
        def execute(self, *_: object) -> list[object]:
            return []

    # build through the real writer, from (token, summary) pairs
    import node.summaries as summaries

    real = summaries._all_summaries
    summaries._all_summaries = lambda conn, now, values: iter(sorted(rows.items()))  # type: ignore[assignment]
    try:
        buf = io.BytesIO()
        build_base(Fake(), buf, T0, 0)  # type: ignore[arg-type]
    finally:
        summaries._all_summaries = real
    s = Summaries(BaseFile(buf.getvalue()))
    sibling = prefix + os.urandom(8)
    for batch in ([t] for t in toks), [toks], [[sibling]], [[*toks, sibling]]:
        for b in batch:
            assert s.lookup(b) == [rows.get(t) for t in b]


def test_a_truncated_or_foreign_file_is_refused(tmp_path: Path) -> None:
    core = _node(tmp_path / "db")
    _report(core, ["fp:a", "fp:b"], T0)
    out = tmp_path / "base"
    build_base_file(str(tmp_path / "db"), str(out), T0, 0)
    data = out.read_bytes()
    with pytest.raises(ValueError, match="truncated"):
        BaseFile(data[:-8])
    with pytest.raises(ValueError, match="not a summary file"):
        BaseFile(b"SQLite format 3\x00" + data[16:])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["report", "retract", "rebuild"]), st.integers(0, 9)),
        min_size=1,
        max_size=25,
    )
)
def test_any_interleaving_of_changes_and_rebuilds_answers_as_a_fresh_node(
    steps: list[tuple[str, int]],
) -> None:
    """After any sequence, the node answers exactly as a node opened afresh on the same
    store (whose summaries all come from one build)."""
    core = _node()
    now = T0
    values = [f"fp:h{i}" for i in range(10)]
    live: set[int] = set()
    for what, i in steps:
        now += 1000
        if what == "report":
            _report(core, [values[i]], now, severity=1 + random.Random(i).randrange(5))
            live.add(i)
        elif what == "retract" and i in live:
            core.retract([{"kind": "device", "value": values[i], "reason": "false_positive"}], now)
            live.discard(i)
        elif what == "rebuild":
            core.rebuild_summaries(now)
    _answers_as_a_fresh_node(core, values, live, now)


def _answers_as_a_fresh_node(core: Node, values: list[str], live: set[int], now: int) -> None:
    """``core`` matches exactly the ``live`` values, and answers every one of ``values``
    as it does after its summaries are replaced by one build from its store."""
    got = _verdicts(core, values, now)
    assert [v["match"] for v in got] == [i in live for i in range(len(values))]
    fresh = Summaries(BaseFile.from_connection(core.store.conn, now, 0))
    core.summaries.base, core.summaries.overlay, core.summaries.older = (
        fresh.base,
        Changes(),
        Changes(),
    )
    core.verdicts._cache.clear()
    assert _verdicts(core, values, now) == got


def test_a_base_built_since_a_mark_drops_the_older_changes_whole() -> None:
    tok = [os.urandom(16) for _ in range(4)]
    s = Summaries()
    s.apply(1, {tok[0]: b"a", tok[1]: b"b"})
    s.mark(1)  # a build from the store as of seq 1 (at least) starts
    s.apply(2, {tok[1]: None, tok[2]: b"c"})  # changes while it runs
    assert s.lookup(tok) == [b"a", None, b"c", None]
    assert s.changes() == {tok[0]: (1, b"a"), tok[1]: (2, None), tok[2]: (2, b"c")}
    import io

    from node.summaries import _HEADER, MAGIC

    # the new base file holds seq 1's state: tok 0 and tok 1
    buf = io.BytesIO()
    rows = sorted([(tok[0], b"a"), (tok[1], b"b")])
    buf.write(_HEADER.pack(MAGIC, 2, 1, 2, 0, 0, 0, 0, 0, 0.0) + b"".join(r[1] for r in rows))
    import numpy as np

    keys = np.frombuffer(b"".join(r[0] for r in rows), dtype=">u8").reshape(2, 2)
    buf.write(keys[:, 0].astype("<u8").tobytes() + keys[:, 1].astype("<u8").tobytes())
    buf.write(np.array([0, 1, 2], dtype="<u8").tobytes())
    s.set_base(BaseFile(buf.getvalue()))
    assert not s.older  # dropped whole, no pass over it
    assert s.lookup(tok) == [b"a", None, b"c", None]  # the newer change still wins


async def test_a_serving_process_lets_queries_in_between_the_pieces_of_a_commit(
    tmp_path: Path,
) -> None:
    """A gossip frame's commit can touch tens of thousands of tokens: the hub sends it in
    pieces (tests/node/test_workers.py), and a serving process that has several of them
    read already still lets queries run between them, counting the commit applied with
    its last piece."""
    import asyncio
    import marshal
    import struct

    from node.config import load_config
    from node.home import init_home
    from node.workers import DELTA_CHUNK, Worker

    home = tmp_path / "w"
    init_home(home, name="w", endpoint="http://w.test", api_listen="127.0.0.1:1")
    worker = Worker(load_config(home, env={}))
    n = 2 * DELTA_CHUNK + 17
    changes = tuple((os.urandom(16), bytes([i % 256])) for i in range(n))
    reader = asyncio.StreamReader()
    for pos, i in enumerate(range(0, n, DELTA_CHUNK), start=3):  # the hub's pieces
        data = marshal.dumps(("delta", pos, 9, changes[i : i + DELTA_CHUNK]))
        reader.feed_data(struct.pack(">I", len(data)) + data)
    reader.feed_eof()
    seen: list[int] = []

    async def watch() -> None:  # runs between the pieces
        while worker.applied < 5:
            seen.append(len(worker.summaries.overlay))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    import signal

    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the end of the stream stops it
    try:
        await worker._read(reader)
    finally:
        signal.signal(signal.SIGTERM, old)
    await watcher
    assert worker.applied == 5
    assert len(worker.summaries.overlay) == n
    assert worker.summaries.lookup([t for t, _ in changes]) == [b for _, b in changes]
    assert any(0 < k < n for k in seen), "queries ran between the pieces"


def test_a_one_report_summary_is_a_short_record_that_reads_back_exactly(tmp_path: Path) -> None:
    """In a base file, a token with one report and nothing else is a 28-byte record (36 if
    reported again later) instead of its spelled-out form; every summary reads back as
    the one SQLite gives, and a value out of a record's range is spelled out."""
    from protocol.entries import AddOp, build_entry

    core = _node(tmp_path / "db", tmp_path / "summaries")
    values = [f"fp:r{i}" for i in range(40)]
    _report(core, values, T0)
    _report(core, values[:10], T0 + 5_000, severity=5)  # reported again: first != last
    other = MemberKey.from_seed(bytes([4]) * 32)
    toks = sorted({(r[0],) for r in current_rows(core.store.conn)})
    shared = bytes(toks[0][0])
    far = os.urandom(16)
    entry = build_entry(
        other,
        seq=1,
        prev=None,
        ts=T0,
        cv=1,
        ops=[
            AddOp(shared, "device", 1, "device_risk", 2, T0 + DAY_MS),  # a second reporter
            AddOp(far, "device", 2**40, "device_risk", 2, T0 + DAY_MS),  # epoch beyond u4
        ],
    )
    with core.store.atomic():
        core.store.append(entry)
    base = BaseFile.from_connection(core.store.conn, T0 + 10_000, 1)
    from node.summaries import summaries_of

    every = [t for t, _ in base.items()]
    assert len(every) == 41
    want = summaries_of(core.store.conn, every, T0 + 10_000)
    sizes = {}
    for i, t in enumerate(every):
        assert decode(t, base.blob(i)) == decode(t, want[t] or b"")
        sizes[t] = int(base.offsets[i + 1] - base.offsets[i])
    assert sorted(sizes.values()).count(28) == 29  # reported once, one reporter
    assert sorted(sizes.values()).count(36) == 10  # reported twice
    assert sizes[shared] > 36 and sizes[far] > 36  # spelled out
    rows = decode(shared, base.blob(every.index(shared))).reports
    assert [r.author for r in rows] == sorted([KEY.id, other.id])


def test_a_restart_removes_the_summary_files_an_earlier_run_left(tmp_path: Path) -> None:
    """Each run builds its base file from the store: the one the last run was using, and
    a builder's unfinished file, are deleted at start (each is as large as the summaries
    of every live token), and the new one answers as the old did."""
    summaries = tmp_path / "summaries"
    core = _node(tmp_path / "db", summaries)
    _report(core, ["fp:kept-1", "fp:kept-2"], T0)
    core.rebuild_summaries(T0 + 1)
    before = _verdicts(core, ["fp:kept-1", "fp:none"], T0 + 2)
    core.close()
    (summaries / "base-9-9.tmp").write_bytes(b"half a file")
    left = sorted(p.name for p in summaries.iterdir())
    assert len(left) == 2
    again = Node(SqliteStore(tmp_path / "db", KEY), KEY, now=T0 + 3, summary_dir=summaries)
    now_there = sorted(p.name for p in summaries.iterdir())
    assert len(now_there) == 1 and not set(now_there) & set(left)
    assert _verdicts(again, ["fp:kept-1", "fp:none"], T0 + 2) == before
    again.close()


KEY_B = MemberKey.from_seed(bytes([4]) * 32)


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.sampled_from(["report", "report", "retract"]),
            st.lists(st.integers(0, 7), min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=12,
    ),
    cuts=st.lists(st.integers(1, 4), min_size=12, max_size=12),
)
def test_frames_of_entries_touching_the_same_tokens_answer_as_a_fresh_node(
    entries: list[tuple[str, list[int]]], cuts: list[int]
) -> None:
    """A replicating node takes a frame's entries in one unit of work: a token added by
    one entry and added again, or retracted, by a later one of the same frame (or twice
    in one entry) must end with the summary a node opened afresh on the store builds."""
    charter = genesis(
        "t",
        [
            member(KEY.id, "bank", "http://127.0.0.1:1/peer", admin=True),
            member(KEY_B.id, "pay", "http://127.0.0.1:2/peer", admin=True),
        ],
        T0,
    )
    raw = sign_charter(charter, [KEY, KEY_B])
    a = Node(SqliteStore(None, KEY), KEY, now=T0)
    a.install_charter(raw, {1: EPOCH_KEY})
    a._synced = True
    b = Node(SqliteStore(None, KEY_B), KEY_B, now=T0)
    b.install_charter(raw, {1: EPOCH_KEY})
    values = [f"fp:f{i}" for i in range(8)]
    live: set[int] = set()
    now = T0
    for what, idx in [("report", [0]), *entries]:
        now += 1000
        if what == "report":
            _report(a, [values[i] for i in idx], now, severity=1 + len(idx))
            live |= set(idx)
        else:
            gone = sorted({i for i in idx if i in live})
            if gone:
                items = [
                    {"kind": "device", "value": values[i], "reason": "false_positive"} for i in gone
                ]
                a.retract(items, now)
                live -= set(gone)
    head = a.store.head(a.key.id)
    assert head is not None
    raws = [a.store.entry(a.key.id, s) for s in range(1, head.seq + 1)]
    start = 0
    for cut in cuts:
        frame = [r for r in raws[start : start + cut] if r is not None]
        if frame:
            assert set(b.accept_entries(frame, now)) == {"accepted"}
        start += cut
    if start < len(raws):
        b.accept_entries([r for r in raws[start:] if r is not None], now)
    _answers_as_a_fresh_node(b, values, live, now)


def test_a_node_merges_the_recent_rows_when_it_starts(tmp_path: Path) -> None:
    """Rows still in ``indicators_recent`` at a start are merged first (the start's full
    scans then read one table), and the node answers as before."""
    core = _node(tmp_path / "db", tmp_path / "summaries")
    values = [f"fp:s{i}" for i in range(30)]
    _report(core, values, T0)
    before = _verdicts(core, values, T0 + 1000)
    count = "SELECT COUNT(*) FROM indicators_recent"
    assert core.store.conn.execute(count).fetchone() == (30,)
    core.close()
    again = Node(SqliteStore(tmp_path / "db", KEY), KEY, now=T0, summary_dir=tmp_path / "summaries")
    assert again.store.conn.execute(count).fetchone() == (0,)
    assert again.store.conn.execute("SELECT COUNT(*) FROM indicators").fetchone() == (30,)
    assert _verdicts(again, values, T0 + 1000) == before
    again.close()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "del"]),
            st.binary(min_size=1, max_size=3),
            st.integers(0, 9),
        ),
        max_size=60,
    )
)
def test_an_overlay_generation_holds_what_one_dict_holds(
    ops: list[tuple[str, bytes, int]],
) -> None:
    """The overlay's sharded generation answers get, membership, length, iteration and
    equality as one dict of the same changes does."""
    changes, model = Changes(), {}
    for what, tok, seq in ops:
        if what == "set":
            changes[tok] = model[tok] = (seq, tok)
        elif tok in model:
            del changes[tok], model[tok]
        assert len(changes) == len(model) and bool(changes) == bool(model)
    assert changes == model and dict(changes.items()) == model and sorted(changes) == sorted(model)
    for _, tok, _ in ops:
        assert changes.get(tok) == model.get(tok) and (tok in changes) == (tok in model)
    assert b"" not in changes
    newer = changes.newer_than(4)
    assert newer == {t: v for t, v in model.items() if v[0] > 4}


async def test_a_serving_process_frees_what_a_new_base_holds_a_shard_at_a_time(
    tmp_path: Path,
) -> None:
    """The changes a new base file makes unneeded are freed a shard at a time, with the
    event loop free between shards; the answers stay those of the new base and what is
    newer."""
    import asyncio

    from node.config import load_config
    from node.home import init_home
    from node.workers import Worker

    home = tmp_path / "w"
    init_home(home, name="w", endpoint="http://w.test", api_listen="127.0.0.1:1")
    worker = Worker(load_config(home, env={}))
    toks = [os.urandom(16) for _ in range(5000)]
    worker.apply(("delta", 1, 1, tuple((t, b"old") for t in toks)))
    worker.apply(("mark", 2, 1))
    worker.apply(("delta", 3, 2, ((toks[0], b"new"),)))
    older = worker.summaries.older
    assert len(older) == len(toks)
    worker.apply(("base", 4, None, 1))  # an empty base file (seq 1) for brevity
    assert len(worker._freeing) == 1 and not worker.summaries.older
    sizes = []
    while worker._freeing:
        sizes.append(len(older))
        await asyncio.sleep(0)
    assert len(older) == 0 and len(set(sizes)) > 10  # freed in many steps, not one
    assert worker.summaries.lookup(toks[:2]) == [b"new", None]


def test_the_garbage_collector_never_walks_the_overlay() -> None:
    """The overlay holds its changes as bytes in dicts the collector does not track: a
    full collection in a serving process costs nothing for a million changes (a dict of
    (seq, summary) tuples is tracked, and was walked whole by every full collection)."""
    import gc

    s = Summaries()
    toks = [os.urandom(16) for _ in range(3000)]
    for i in range(0, len(toks), 500):
        s.apply(i + 1, {t: (b"x" * 40 if j % 7 else None) for j, t in enumerate(toks[i : i + 500])})
    s.mark(s.seq)
    s.apply(s.seq + 1, {toks[0]: b"y"})
    gc.collect()
    for generation in (s.overlay, s.older):
        assert not any(gc.is_tracked(shard) for shard in generation.shards)
    assert s.lookup([toks[0], toks[1], toks[7]]) == [b"y", b"x" * 40, None]
