"""Gossip benchmark: catch-up of a fresh node, and the bytes of an idle exchange.

1. ``--ops`` ops (default 1 000 000, in entries of 1000 ops) published by one
   member into a node store (SQLite, as a node keeps it); then a freshly
   started node syncs them from that one peer through the real engines and
   the real sealed envelopes (in process: no sockets). Printed: seconds,
   ops/s, bytes on the wire, messages — beside two baselines from the same
   run: SQLite alone storing the same raw entries (no checks), and the same
   entries accepted by ``Feeds.offer`` straight from a list (every check, no
   gossip). The fresh node is a ``Node``, so each accepted entry is also
   added to its Bloom index, as on a running node (replicate = verify, commit,
   index).
2. The bytes of one idle exchange (both nodes in sync) at 10 and 100 members,
   engine messages and sealed envelopes, against DESIGN §13 (< 300 bytes
   whatever the member count). The HTTP request and response around each
   sealed envelope on a real peer link are not counted here.

    python bench/bench_gossip.py [--ops 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from benchlib import figure, print_figures

from contracts.policy import DAY_MS
from node.core import Node
from node.store import SqliteStore
from protocol.charter_chain import CharterChain, sign_charter
from protocol.entries import AddOp, Entry, build_entry
from protocol.feeds import Feeds
from protocol.gossip import GossipEngine, Send
from protocol.governance import genesis, member
from protocol.keys import MemberId, MemberKey
from protocol.sealed import Opener, Sealer
from protocol.store import MemoryStore

T0 = 1_700_000_000_000
OPS_PER_ENTRY = 1000


def consortium(n: int, rng: random.Random) -> tuple[list[MemberKey], bytes]:
    keys = [MemberKey.from_seed(rng.randbytes(32)) for _ in range(n)]
    members = [member(k.id, f"m{i}", f"http://m{i}.test", admin=i == 0) for i, k in enumerate(keys)]
    return keys, sign_charter(genesis("bench", members, T0 - DAY_MS), [keys[0]])


def make_entries(key: MemberKey, n_entries: int, ops: int, rng: random.Random) -> list[Entry]:
    out: list[Entry] = []
    prev = None
    for seq in range(1, n_entries + 1):
        e = build_entry(
            key,
            seq=seq,
            prev=prev,
            ts=T0,
            cv=1,
            ops=[
                AddOp(rng.randbytes(16), "device", 1, "device_risk", 3, T0 + 30 * DAY_MS)
                for _ in range(ops)
            ],
        )
        out.append(e)
        prev = e.hash
    return out


class Link:
    """Two engines joined by sealed envelopes, as the node's HTTP transport joins them."""

    def __init__(
        self,
        a: tuple[MemberKey, GossipEngine],
        b: tuple[MemberKey, GossipEngine],
        stores: dict[bytes, SqliteStore] | None = None,
    ):
        self.sides = {a[0].id: a, b[0].id: b}
        #: member id -> its store: each message is taken in one unit of work of its
        #: receiver's, as ``Node.receive`` takes it (a gossip frame a transaction)
        self.stores = stores or {}
        self.sealers = {a[0].id: Sealer(a[0]), b[0].id: Sealer(b[0])}
        self.openers = {
            k.id: Opener(k, is_member=lambda _m: True, skew_ms=300_000, max_bytes=64 << 20)
            for k, _ in (a, b)
        }
        self.engine_bytes = 0
        self.wire_bytes = 0
        self.messages = 0

    def converse(self, sender: bytes, send: Send, now: int) -> list[tuple[bytes, Send]]:
        """One conversation to its end; returns follow-ups the engines started."""
        src, dst, data = sender, send.peer, send.data
        while data is not None:
            self.messages += 1
            self.engine_bytes += len(data)
            sealed = self.sealers[src].seal(dst, data, now)
            self.wire_bytes += len(sealed)
            frm, plain = self.openers[dst].open(sealed, now)
            with self._unit(dst):
                answer = self.sides[dst][1].receive(frm, plain, now)
            if answer is None:
                break
            self.messages += 1
            self.engine_bytes += len(answer)
            sealed = self.sealers[dst].seal_response(src, answer, now)
            self.wire_bytes += len(sealed)
            opened = self.sealers[src].open_response(dst, sealed, now, 300_000)
            with self._unit(src):
                data = self.sides[src][1].receive(dst, opened, now)
            # the initiator keeps the conversation; the responder only answers
        follow: list[tuple[bytes, Send]] = []
        for k, e in self.sides.values():
            follow += [(k.id, ev) for ev in e.events() if isinstance(ev, Send)]
        return follow

    def _unit(self, member: bytes) -> contextlib.AbstractContextManager[None]:
        store = self.stores.get(member)
        return contextlib.nullcontext() if store is None else store.atomic()

    def exchange(self, initiator: bytes, now: int) -> None:
        e = self.sides[initiator][1]
        other = next(k for k in self.sides if k != initiator)
        e.start_exchange(MemberId(other), now)
        pending = [(initiator, ev) for ev in e.events() if isinstance(ev, Send)]
        while pending:
            src, send = pending.pop(0)
            pending += self.converse(src, send, now)


def catch_up(n_ops: int, rng: random.Random) -> dict[str, float]:
    keys, genesis = consortium(2, rng)
    a, b = keys
    n_entries = max(1, n_ops // OPS_PER_ENTRY)
    t = time.perf_counter()
    entries = make_entries(a, n_entries, OPS_PER_ENTRY, rng)
    build_s = time.perf_counter() - t
    ops = n_entries * OPS_PER_ENTRY
    raw_bytes = sum(len(e.raw) for e in entries)
    with tempfile.TemporaryDirectory() as tmp:
        # baseline 1: SQLite alone, the raw entries in one table, no checks
        db = sqlite3.connect(str(Path(tmp) / "plain.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE e (seq INTEGER PRIMARY KEY, raw BLOB)")
        t = time.perf_counter()
        db.execute("BEGIN")
        db.executemany("INSERT INTO e VALUES (?, ?)", ((e.seq, e.raw) for e in entries))
        db.execute("COMMIT")
        sqlite_s = time.perf_counter() - t
        db.close()

        # the source node's store, filled the way a node fills it
        src_store = SqliteStore(Path(tmp) / "a.db", a)
        src_feeds = Feeds(src_store, CharterChain(genesis))
        src_store.put_charter(1, genesis)
        t = time.perf_counter()
        for i in range(0, len(entries), 10):
            with src_store.atomic():
                for e in entries[i : i + 10]:
                    src_feeds.offer_entry(e, T0)
        offer_s = time.perf_counter() - t
        assert src_store.head(a.id) is not None and src_store.head(a.id).seq == n_entries  # type: ignore[union-attr]

        # a fresh node B syncs from A alone; its core indexes what it accepts
        dst_store = SqliteStore(Path(tmp) / "b.db", b)
        dst = Node(dst_store, b)
        # the consortium key it would hold by now (a grant): without one a node holds
        # entries back until it can check them against the warning lists' tokens
        dst.install_charter(genesis, {1: rng.randbytes(32)})
        dst_feeds = dst.feeds
        assert dst_feeds is not None
        ea = GossipEngine(a, src_feeds, rng=random.Random(1), now=T0, fanout=1)
        eb = GossipEngine(b, dst_feeds, rng=random.Random(2), now=T0, fanout=1)
        # each message in a unit of work of its receiver's, as Node.receive takes it
        link = Link((a, ea), (b, eb), {a.id: src_store, b.id: dst_store})
        t = time.perf_counter()
        rounds = 0
        while True:
            rounds += 1
            link.exchange(b.id, T0 + rounds)
            head = dst_store.head(a.id)
            if head is not None and head.seq == n_entries:
                break
            if rounds > 10 * n_entries:
                raise SystemExit("catch-up did not finish")
        sync_s = time.perf_counter() - t
        got = dst_store.live_count(T0)
        assert got == ops, (got, ops)
        assert dst.index.count == ops, (dst.index.count, ops)
        src_store.close()
        dst_store.close()

    print(f"catch-up: {ops:,} ops in {n_entries:,} entries ({raw_bytes / ops:.1f} bytes/op)")
    print(f"  built and signed the entries in {build_s:.1f} s (not counted)")
    print(f"  baseline SQLite alone, raw entries, no checks: {sqlite_s:7.2f} s")
    print(
        f"  baseline Feeds.offer from a list (every check): {offer_s:7.2f} s  "
        f"{ops / offer_s:10,.0f} ops/s"
    )
    print(
        f"  gossip, fresh node from one peer:               {sync_s:7.2f} s  "
        f"{ops / sync_s:10,.0f} ops/s  ({sync_s / offer_s:.2f}x the offer baseline)"
    )
    print(
        f"  bytes: {link.engine_bytes:,} in engine messages, {link.wire_bytes:,} sealed "
        f"({link.wire_bytes / raw_bytes:.3f}x the raw entries), {link.messages} messages, "
        f"{rounds} initiated exchange(s)"
    )
    return {
        "ops": ops,
        "sync_s": sync_s,
        "offer_s": offer_s,
        "sqlite_s": sqlite_s,
        "wire_bytes": link.wire_bytes,
        "raw_bytes": raw_bytes,
    }


def idle_bytes(n_members: int, rng: random.Random) -> tuple[int, int, int]:
    keys, genesis = consortium(n_members, rng)
    a, b = keys[0], keys[1]
    stores = [MemoryStore(), MemoryStore()]
    feeds = [Feeds(s, CharterChain(genesis)) for s in stores]
    for k in keys:  # every member has published one entry; both nodes hold all
        [e] = make_entries(k, 1, 1, rng)
        for f in feeds:
            f.offer_entry(e, T0)
    ea = GossipEngine(a, feeds[0], rng=random.Random(1), now=T0, fanout=1)
    eb = GossipEngine(b, feeds[1], rng=random.Random(2), now=T0, fanout=1)
    link = Link((a, ea), (b, eb))
    for i in range(3):  # first contacts carry full heads; then deltas
        link.exchange(a.id, T0 + i)
        link.exchange(b.id, T0 + i)
    link.engine_bytes = link.wire_bytes = link.messages = 0
    link.exchange(a.id, T0 + 10)
    return link.engine_bytes, link.wire_bytes, link.messages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ops", type=int, default=1_000_000, help="ops to replicate")
    args = ap.parse_args()
    rng = random.Random(1)
    print(
        f"machine: {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    c = catch_up(args.ops, rng)
    print("idle exchange (both in sync), budget < 300 bytes whatever the member count:")
    ops = int(c["ops"])
    figures = [
        figure(
            f"gossip catch-up, {ops:,} ops to a fresh node from one peer",
            ops / c["sync_s"],
            "ops/s",
            baselines=[
                ("Feeds.offer from a list, every check", ops / c["offer_s"]),
                ("SQLite alone, raw entries, no checks", ops / c["sqlite_s"]),
            ],
            budget=(">=", 150_000),
            note=f"{c['sync_s']:.1f} s; budget: DESIGN's catch-up of 1 M ops from one peer; "
            f"{c['wire_bytes'] / c['raw_bytes']:.3f}x the raw entry bytes on the wire",
        )
    ]
    for n in (10, 100):
        eng, wire, msgs = idle_bytes(n, rng)
        print(
            f"  {n:4d} members: {eng} bytes in engine messages, "
            f"{wire} bytes sealed, {msgs} messages"
        )
        figures.append(
            figure(
                f"idle gossip exchange, {n} members (sealed envelopes)",
                wire,
                "bytes",
                baselines=[("engine messages before sealing", eng)],
                budget=("<", 300),
                note=f"{msgs} messages; HTTP framing not counted",
            )
        )
    print_figures("bench_gossip", {"ops": args.ops, "ops_per_entry": OPS_PER_ENTRY}, figures)


if __name__ == "__main__":
    main()
