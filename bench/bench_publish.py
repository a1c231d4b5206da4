"""Publish and replicate through a node core into SQLite, beside SQLite alone.

Two node homes, A and B, founded together (A's genesis names B; both install
it; B is given epoch 1's key as a grant would give it).

1. publish: A reports R indicators of one kind through ``Node.report``,
   1000 a call (the charter's most ops per entry): canonicalise, token, policy
   check, build and sign the entry, commit durably (``synchronous=FULL``).
   Measured for phone numbers (phonenumbers parsing, the slowest kind) and for
   device ids (``android:<hex>``); canonicalisation alone is timed apart.
2. replicate: B accepts A's entries through ``Node.accept_entries`` (decode,
   verify the signature, every feed check, commit, add to the Bloom index and
   the verdict summaries), as many at a time as one gossip frame carries (1 MiB,
   one transaction a frame, as ``Node.receive`` does): what a node does with
   the entries gossip brings. The gossip transport itself is in
   bench_gossip.py.

3. publish through the API: a served node (``riskmesh serve``, its writer and
   serving processes, one-member consortium) takes ``POST /v1/reports`` from
   wrk (bench/wrk/report.lua: each request 1000 device values never sent
   before), 8 connections at once, so the writer's group commit shares
   durable commits between requests; afterwards the store is checked to hold
   every acknowledged report. Needs wrk (Debian package ``wrk``).

Baselines from the same run: SQLite alone writing the same rows into tables of
the same shape (indicator rows with their author, kind and category coded, and
the entries' bytes compressed, as the node stores them; same pragmas), the
node's way (rows in key order, upserted; a transaction per entry, durable, when
publishing, per gossip frame when replicating; one database for both kinds,
as the node has one store, so the device rows go into a table that already
holds the phone rows on both sides), with no canonicalisation, no
crypto and no checks (the compression is done before the clock starts); and
the canonicalisation of the same values alone.

    python bench/bench_publish.py [--reports 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from benchlib import figure, print_figures

from contracts.indicators import canonical
from node.core import Node
from node.home import init_home, install_charter_file, make_genesis
from node.store import CACHE_KIB, MMAP_BYTES, SqliteStore
from protocol.entries import AddOp, decode_entry
from protocol.keys import MemberId, MemberKey

PER_ENTRY = 1000
CATEGORY = {"phone": "telecom_fraud", "device": "device_risk"}


def raw_values(kind: str, n: int, offset: int) -> list[str]:
    if kind == "phone":
        return [f"+86 138 {i // 10_000:04d} {i % 10_000:04d}" for i in range(offset, offset + n)]
    return [f"android:{i:016X}" for i in range(offset, offset + n)]


def open_core(home: Path) -> Node:
    key = MemberKey.from_seed((home / "keys" / "member.key").read_bytes())
    return Node(SqliteStore(home / "riskmesh.db", key), key)


def sqlite_alone(
    path: Path, rows: list[list[tuple[Any, ...]]], raws: list[bytes], full: bool, seq0: int = 0
) -> float:
    """Seconds for SQLite alone to write the same rows and raw entries into tables of
    the node's shape, the node's way: its pragmas (WAL, 64 MiB page cache), rows in key
    order, upserted as the node does, one transaction per entry when publishing
    (``full``: each is acknowledged durably) and per gossip frame when replicating.

    ``path`` is one database for every kind, as the node's store is: the second kind's
    rows go into a table that holds the first's (a larger B-tree, as the node's), its
    entries numbered on from ``seq0``."""
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # as the node's store
    db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS entries (log BLOB NOT NULL, seq INTEGER NOT NULL,
            raw BLOB NOT NULL, PRIMARY KEY (log, seq)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS indicators (
            tok BLOB NOT NULL, ep INTEGER NOT NULL, author INTEGER NOT NULL,
            kind INTEGER NOT NULL, cat INTEGER NOT NULL, sev INTEGER NOT NULL, exp INTEGER NOT NULL,
            first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, retracted INTEGER NOT NULL,
            PRIMARY KEY (tok, ep, author)) WITHOUT ROWID;
        """
    )
    per_unit = 1 if full else max(1, FRAME_BYTES // max(1, len(raws[0]) if raws else 1))
    stored = [zlib.compress(raw, 1) for raw in raws]  # as the node stores them (m008)
    t = time.perf_counter()
    for start in range(0, len(raws), per_unit):
        db.execute("BEGIN")
        for seq in range(start, min(start + per_unit, len(raws))):
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?)", (b"a" * 32, seq0 + seq + 1, stored[seq])
            )
            db.executemany(
                "INSERT INTO indicators VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
                " ON CONFLICT (tok, ep, author) DO UPDATE SET kind = excluded.kind,"
                " cat = excluded.cat, sev = excluded.sev, exp = excluded.exp,"
                " last_ts = excluded.last_ts, retracted = 0",
                sorted(rows[seq]),
            )
        db.execute("COMMIT")
    seconds = time.perf_counter() - t
    db.close()
    return seconds


#: the entries replicated in one transaction: as many as a gossip frame carries
FRAME_BYTES = 1 << 20


def publish_http(
    tmp: Path, seconds: float, connections: int, device: tuple[float, float]
) -> dict[str, Any]:
    """Reports through the API of a served node (``riskmesh serve``: the writer and its
    serving processes), driven by wrk: each request a batch of new device values
    (bench/wrk/report.lua), ``connections`` at a time, so that the writer's group commit
    shares durable commits between them. ``device``: this run's SQLite-alone baseline
    and in-process publish rate, for the figure's baselines."""
    from bench_http import run_wrk

    from node.localnet import LocalNode, free_port

    home = tmp / "served"
    api, peer = free_port(), free_port()
    init_home(
        home,
        name="p",
        endpoint="http://p.test",
        api_listen=f"127.0.0.1:{api}",
        peer_listen=f"127.0.0.1:{peer}",
    )
    make_genesis(home, "bench", [], home / "g.cbor")  # one member: it publishes at once
    install_charter_file(home, home / "g.cbor")
    node = LocalNode("riskmesh serve", home, api, peer, log_path=tmp / "served.log")
    node.start()
    assert node.proc is not None
    try:
        r = run_wrk(
            node.proc.pid,
            "report.lua",
            f"http://127.0.0.1:{api}",
            [str(home / "api-token"), str(PER_ENTRY)],
            connections=connections,
            threads=1,
            seconds=seconds,
        )
    finally:
        node.stop()
    core = open_core(home)
    stored = core.store.live_count(int(time.time() * 1000))
    core.store.close()
    if r.error_count:
        raise SystemExit(f"publish through the API: {r.errors} (see {tmp / 'served.log'})")
    rate = r.requests * PER_ENTRY / r.duration_s
    # every acknowledged report is in the store (and those of requests wrk cut off at
    # its end may be too): the rate counts acknowledged ones only
    assert stored >= r.requests * PER_ENTRY, (stored, r.requests)
    print(
        f"publish through the API (POST /v1/reports, {PER_ENTRY} new device values a "
        f"request, {connections} connections): {rate:,.0f} reports/s, p99 "
        f"{r.ms('p99'):.1f} ms a request; {stored:,} live indicators after"
    )
    base_pub, in_process = device
    return figure(
        f"publish through the API, device (POST /v1/reports, served node, {connections} "
        "connections)",
        rate,
        "reports/s",
        baselines=[
            ("SQLite alone, same rows, synchronous=FULL", base_pub, "rows/s"),
            ("Node.report in-process, same run", in_process, "reports/s"),
        ],
        budget=(">=", 100_000),
        note=f"{PER_ENTRY} new values a request (wrk, bench/wrk/report.lua); p99 "
        f"{r.ms('p99'):.0f} ms a request; acknowledged = durably committed",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reports", type=int, default=100_000, help="reports published per kind")
    ap.add_argument(
        "--http-seconds", type=float, default=10.0, help="seconds of publishing through the API"
    )
    ap.add_argument(
        "--http-connections", type=int, default=8, help="wrk connections publishing at once"
    )
    args = ap.parse_args()
    n = max(PER_ENTRY, args.reports // PER_ENTRY * PER_ENTRY)
    started = time.perf_counter()
    print(
        f"# bench_publish on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores; {n:,} reports per kind, "
        f"{PER_ENTRY} per entry"
    )
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        a_home, b_home = Path(tmp) / "a", Path(tmp) / "b"
        init_home(b_home, name="b", endpoint="http://b.test", api_listen="127.0.0.1:1")
        init_home(a_home, name="a", endpoint="http://a.test", api_listen="127.0.0.1:1")
        make_genesis(a_home, "bench", [str(b_home / "join-request.cbor")], a_home / "g.cbor")
        install_charter_file(a_home, a_home / "g.cbor")
        install_charter_file(b_home, a_home / "g.cbor")
        a = open_core(a_home)
        b_key = MemberKey.from_seed((b_home / "keys" / "member.key").read_bytes())
        b_store = SqliteStore(b_home / "riskmesh.db", b_key)
        b_store.put_epoch_key(1, a.store.epoch_keys()[1])  # as a grant would
        b = Node(b_store, b_key)
        now = int(time.time() * 1000)
        # a's first exchange (with b): a node takes its own reports only after one
        b.start_exchange(MemberId(a.key.id), now)
        for send in b.take_sends():
            msg: bytes | None = send.data
            speaker, hearer = b, a
            while msg is not None:
                msg = hearer.receive(MemberId(speaker.key.id), msg, now)
                speaker, hearer = hearer, speaker
        assert not a.syncing
        offset = 0
        for kind in ("phone", "device"):
            values = raw_values(kind, n, offset)
            offset += n
            sample = values[:20_000]
            t = time.perf_counter()
            for v in sample:
                canonical(kind, v)
            canon_rate = len(sample) / (time.perf_counter() - t)

            first_seq = (a.store.head(a.key.id).seq if a.store.head(a.key.id) else 0) + 1
            t = time.perf_counter()
            for i in range(0, n, PER_ENTRY):
                items = [
                    {"kind": kind, "value": v, "category": CATEGORY[kind], "ttl_days": 300}
                    for v in values[i : i + PER_ENTRY]
                ]
                a.report(items, now)
            publish_s = time.perf_counter() - t
            last_seq = first_seq + n // PER_ENTRY - 1
            raws = [a.store.entry(a.key.id, s) for s in range(first_seq, last_seq + 1)]
            assert all(r is not None for r in raws)
            entry_raws: list[bytes] = [r for r in raws if r is not None]
            rows = []
            for raw in entry_raws:
                e = decode_entry(raw)
                rows.append(
                    [
                        # as the node's store holds them: author, kind, category coded
                        (op.tok, op.ep, 1, 2, 3, op.sev, op.exp, e.ts, e.ts)
                        for op in e.ops
                        if isinstance(op, AddOp)
                    ]
                )
            base_pub_s = sqlite_alone(
                Path(tmp) / "alone-pub.db", rows, entry_raws, full=True, seq0=first_seq - 1
            )

            index_before = b.index.count
            t = time.perf_counter()
            frame: list[bytes] = []
            size = 0
            for raw in [*entry_raws, None]:
                if raw is None or (frame and size + len(raw) > FRAME_BYTES):
                    statuses = b.accept_entries(frame, now)
                    assert statuses == ["accepted"] * len(frame), statuses
                    frame, size = [], 0
                if raw is not None:
                    frame.append(raw)
                    size += len(raw)
            replicate_s = time.perf_counter() - t
            assert b.index.count - index_before == n
            base_rep_s = sqlite_alone(
                Path(tmp) / "alone-rep.db", rows, entry_raws, full=False, seq0=first_seq - 1
            )

            pub, rep = n / publish_s, n / replicate_s
            base_pub, base_rep = n / base_pub_s, n / base_rep_s
            base_device = (base_pub, pub)
            print(f"{kind}: {n:,} reports in {n // PER_ENTRY} entries")
            print(f"  canonicalisation alone                        {canon_rate:>12,.0f} values/s")
            print(f"  baseline SQLite alone, same rows, sync FULL   {base_pub:>12,.0f} rows/s")
            print(
                f"  publish   Node.report                     {pub:>12,.0f} reports/s "
                f"({publish_s:.2f} s; {pub / base_pub:.2f}x SQLite alone)  budget >= 100,000"
            )
            print(f"  baseline SQLite alone, same rows, sync NORMAL {base_rep:>12,.0f} rows/s")
            print(
                f"  replicate Node.accept_entries           {rep:>12,.0f} ops/s "
                f"({replicate_s:.2f} s; {rep / base_rep:.2f}x SQLite alone)  budget >= 200,000"
            )
            figures.append(
                figure(
                    f"publish (report: canonicalise, token, sign, commit), {kind}",
                    pub,
                    "reports/s",
                    baselines=[
                        ("SQLite alone, same rows, synchronous=FULL", base_pub, "rows/s"),
                        (f"canonicalisation alone, {kind}", canon_rate, "values/s"),
                    ],
                    budget=(">=", 100_000),
                    note=f"{n:,} reports, {PER_ENTRY} per entry, durable commits",
                )
            )
            figures.append(
                figure(
                    f"replicate (accept_entries, a frame a transaction: verify, commit, "
                    f"index), {kind} entries",
                    rep,
                    "ops/s",
                    baselines=[("SQLite alone, same rows, synchronous=NORMAL", base_rep, "rows/s")],
                    budget=(">=", 200_000),
                    note=f"{n:,} ops in {PER_ENTRY}-op entries; gossip transport not included",
                )
            )
        a.store.close()
        b.store.close()
        if args.http_seconds > 0 and shutil.which("wrk"):
            figures.append(
                publish_http(Path(tmp), args.http_seconds, args.http_connections, base_device)
            )
        else:
            print("publish through the API: skipped (needs wrk on PATH and --http-seconds > 0)")
    print(f"whole run {time.perf_counter() - started:.0f} s")
    print_figures("bench_publish", {"reports": n, "per_entry": PER_ENTRY}, figures)


if __name__ == "__main__":
    main()
