"""Verdict summaries: what the query path reads instead of SQLite (DESIGN §9).

Every token that has a report (or a sighting, dispute or appeal) gets a
**summary**: the rows a verdict is computed from, and nothing else. They are
the non-retracted, unexpired report rows (reporter, epoch, kind, category,
severity, expiry, first and last reported), the token's sightings and
disputes, its appeals and the decisions on them. A verdict is computed from a
summary by the very code that computed it from SQLite rows before
(`node.verdicts`), so verdicts are the same at every instant: expiry is
applied at query time (``live(now)``), never baked in.

**Two layers.**

* A **base file**, written once and never changed (``HOME/summaries/base-N``),
  mapped by every process that answers queries. Layout (little-endian
  header, big-endian keys so that byte order is numeric order)::

      header   magic "RMVSUM03", count u64, seq u64, blob_bytes u64, table_bytes u64,
               bloom_bytes u64, num_bits u64, num_probes u64, capacity u64, error_rate f64
      blobs    the summaries back to back (see below)
      hi       count x u8   first 8 bytes of each token, ascending
      lo       count x u8   last 8 bytes
      offsets  (count + 1) x <u8   blob i is blobs[offsets[i]:offsets[i + 1]]
      table    marshal {code: value}: the database's codes (node.store.Codes)
      (zeros to a multiple of 8 bytes)
      bloom    the Bloom filter of every token in the file (node.index.TokenIndex,
               sized for exactly count tokens, `TokenIndex.bit_bytes`)

  The filter is the bulk of the writer's Bloom index (`node.index.LiveIndex`):
  built with the file, by the process that builds it, and mapped read-only, so
  it takes no memory of the writer's own.

  A summary is a **record** when it is the common case, one report and no
  sighting, dispute or appeal: a tag byte (0: first and last reported at the
  same instant, 1: not), then epoch <u4, the author's, kind's and category's
  codes <u2 each, severity u1, expiry and first reported <i8 (and last
  reported <i8 for tag 1): 28 or 36 bytes where `encode` takes about 115 (it
  spells out the author's 32-byte id and both names). Any other summary is
  `encode`'s marshal form (which never starts with byte 0 or 1);
  `BaseFile.blob` gives every summary in that form.

  Tokens are sorted, so a batch is looked up with one `numpy.searchsorted`
  over ``hi`` (then ``lo`` compared; equal ``hi`` prefixes, one in 2**64, are
  handled by a short scan). A base file carries the **seq** of the last
  change it is known to include.
* An **overlay** in memory: token -> (seq, summary, or None when the token
  has nothing any more) for every change since the base (`Changes`: 64 dicts
  by a token's first byte, each change one ``bytes``, out of the garbage
  collector's sight). Changes are full
  replacements, so applying one twice, or one the base already holds, is
  harmless: that is what lets a new base be built from SQLite while changes
  keep arriving (`Summaries.set_base` keeps only the overlay newer than the
  base's seq).

The writer makes a change for each token a commit touched (`SummaryChanges`),
reading the token's rows back from SQLite; it applies the change to its own
overlay and sends it to the serving processes (`node.workers`).

Summaries are marshal-encoded: they are written and read only by this node's
own processes, in its private home (0700) or over its private socket, never
taken from a peer or a client.
"""

from __future__ import annotations

import contextlib
import marshal
import mmap
import os
import sqlite3
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from node.aftermatch_store import APPEAL_COLS, SIGNAL_COLS, appeal_row, signal_row
from node.index import MIN_CAPACITY, TokenIndex
from node.store import Codes, chunks, current_rows, report_order, state_row
from protocol.keys import MemberId
from protocol.store import AppealState, Decision, IndicatorState, SignalState

__all__ = [
    "BaseFile",
    "Summaries",
    "Summary",
    "build_base",
    "decode",
    "encode",
    "encode_add",
    "summaries_of",
]

MAGIC: Final = b"RMVSUM03"
_HEADER: Final = struct.Struct("<8sQQQQQQQQd")
"""magic, count, seq, blob_bytes, table_bytes, then the filter's bloom_bytes, num_bits,
num_probes, capacity and error rate (all 0 when the file has no filter)."""
_RECORD: Final = struct.Struct("<BIHHHBqq")
"""A one-report summary reported once (tag 0); tag 1 is followed by last reported <i8."""
_LAST: Final = struct.Struct("<q")
_KEYS: Final = np.dtype(">u8")
"""A token's halves as numbers: big-endian, so that numeric order is byte order."""
_STORED: Final = np.dtype("<u8")
"""The halves as the file keeps them: native on the hosts we run on (numpy searches a
non-native array by converting all of it first)."""
_SCALAR: Final = 4
"""Batches this small are looked up token by token (numpy's set-up costs more)."""


@dataclass(frozen=True, slots=True)
class Summary:
    """The rows one token's verdict is computed from."""

    reports: tuple[IndicatorState, ...]
    signals: tuple[SignalState, ...]
    appeals: tuple[AppealState, ...]
    decisions: Mapping[str, tuple[Decision, ...]]


def encode(
    tok: bytes,
    reports: Sequence[IndicatorState],
    signals: Sequence[SignalState] = (),
    appeals: Sequence[AppealState] = (),
    decisions: Iterable[Decision] = (),
) -> bytes:
    """One token's summary as bytes (the token itself is the key, not stored)."""
    return marshal.dumps(
        (
            tuple(
                (s.ep, bytes(s.author), s.kind, s.cat, s.sev, s.exp, s.first_ts, s.last_ts)
                for s in reports
            ),
            tuple(
                (g.ep, bytes(g.author), g.what, g.why, g.exp, g.ts, g.retracted) for g in signals
            ),
            tuple((a.id, a.ep, bytes(a.author), a.kind, a.ts, a.withdrawn) for a in appeals),
            tuple((d.id, bytes(d.author), d.decision, d.ts) for d in decisions),
        )
    )


def encode_add(ep: int, author: bytes, kind: str, cat: str, sev: int, exp: int, ts: int) -> bytes:
    """The summary of a token whose one row is a report just added at ``ts`` (as `encode`
    would write it from that row)."""
    return marshal.dumps((((ep, bytes(author), kind, cat, sev, exp, ts, ts),), (), (), ()))


def decode(tok: bytes, blob: bytes) -> Summary:
    reports, signals, appeals, decisions = marshal.loads(blob)
    decided: dict[str, list[Decision]] = {}
    for did, author, decision, ts in decisions:
        decided.setdefault(did, []).append(
            Decision(id=did, author=MemberId(author), decision=decision, ts=ts)
        )
    return Summary(
        tuple(
            IndicatorState(
                tok=tok,
                ep=ep,
                author=MemberId(author),
                kind=kind,
                cat=cat,
                sev=sev,
                exp=exp,
                first_ts=first,
                last_ts=last,
                retracted=False,
            )
            for ep, author, kind, cat, sev, exp, first, last in reports
        ),
        tuple(
            SignalState(
                tok=tok,
                ep=ep,
                author=MemberId(author),
                what=what,
                why=why,
                exp=exp,
                ts=ts,
                retracted=bool(retracted),
            )
            for ep, author, what, why, exp, ts, retracted in signals
        ),
        tuple(
            AppealState(
                id=aid,
                tok=tok,
                ep=ep,
                author=MemberId(author),
                kind=kind,
                ts=ts,
                withdrawn=bool(withdrawn),
            )
            for aid, ep, author, kind, ts, withdrawn in appeals
        ),
        {k: tuple(v) for k, v in decided.items()},
    )


# -- reading the rows back from SQLite ------------------------------------------------------


def _decisions(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, list[Decision]]:
    out: dict[str, list[Decision]] = {}
    for chunk in chunks(sorted(set(ids))):
        q = ",".join("?" * len(chunk))
        for r in conn.execute(
            f"SELECT id, author, decision, ts FROM appeal_decisions WHERE id IN ({q})", chunk
        ):
            out.setdefault(r[0], []).append(
                Decision(id=r[0], author=MemberId(bytes(r[1])), decision=r[2], ts=r[3])
            )
    return out


def summaries_of(
    conn: sqlite3.Connection, toks: Iterable[bytes], now: int
) -> dict[bytes, bytes | None]:
    """The current summary of each of ``toks`` (None: nothing to answer from)."""
    wanted = sorted(set(toks))
    values = Codes.read(conn).values(conn)
    reports: dict[bytes, list[IndicatorState]] = {}
    signals: dict[bytes, list[SignalState]] = {}
    appeals: dict[bytes, list[AppealState]] = {}
    for chunk in chunks(wanted):
        q = ",".join("?" * len(chunk))
        for r in current_rows(conn, f"tok IN ({q})", chunk, live_at=now):
            reports.setdefault(bytes(r[0]), []).append(state_row(r, values))
        for r in conn.execute(
            f"SELECT {SIGNAL_COLS} FROM signals WHERE tok IN ({q}) ORDER BY tok, ep, author, what",
            chunk,
        ):
            signals.setdefault(bytes(r[0]), []).append(signal_row(r))
        for r in conn.execute(
            f"SELECT {APPEAL_COLS} FROM appeals WHERE tok IN ({q}) ORDER BY tok, id, ep, author",
            chunk,
        ):
            appeals.setdefault(bytes(r[1]), []).append(appeal_row(r))
    decided = _decisions(conn, (a.id for rows in appeals.values() for a in rows))
    out: dict[bytes, bytes | None] = {}
    for t in wanted:
        rep, sig, app = reports.get(t, []), signals.get(t, ()), appeals.get(t, ())
        rep.sort(key=report_order)
        if not (rep or sig or app):
            out[t] = None
            continue
        ds = [d for aid in sorted({a.id for a in app}) for d in decided.get(aid, ())]
        out[t] = encode(t, rep, sig, app, ds)
    return out


def appeal_tokens(conn: sqlite3.Connection, ids: Iterable[str]) -> set[bytes]:
    """The tokens the appeals ``ids`` are about (a decision changes their summaries)."""
    out: set[bytes] = set()
    for chunk in chunks(sorted(set(ids))):
        q = ",".join("?" * len(chunk))
        out.update(
            bytes(r[0]) for r in conn.execute(f"SELECT tok FROM appeals WHERE id IN ({q})", chunk)
        )
    return out


def _all_summaries(
    conn: sqlite3.Connection, now: int, values: Mapping[int, Any]
) -> Iterator[tuple[bytes, bytes]]:
    """Every token's summary, in token order, from one read transaction of ``conn``;
    ``values``: the codes' meaning, read in that transaction (records keep the codes)."""
    signals: dict[bytes, list[SignalState]] = {}
    for r in conn.execute(f"SELECT {SIGNAL_COLS} FROM signals ORDER BY tok, ep, author, what"):
        signals.setdefault(bytes(r[0]), []).append(signal_row(r))
    appeals: dict[bytes, list[AppealState]] = {}
    for r in conn.execute(f"SELECT {APPEAL_COLS} FROM appeals ORDER BY tok, id, ep, author"):
        appeals.setdefault(bytes(r[1]), []).append(appeal_row(r))
    decided = _decisions(conn, (a.id for rows in appeals.values() for a in rows))
    extra = sorted(set(signals) | set(appeals))
    rows = current_rows(conn, live_at=now, ordered=True)
    dumps, pack, last = marshal.dumps, _RECORD.pack, _LAST.pack
    k = 0
    for raw_tok, group in groupby(rows, key=lambda r: r[0]):
        tok = bytes(raw_tok)
        while k < len(extra) and extra[k] < tok:  # tokens with signals or appeals only
            t = extra[k]
            yield t, _with_extra(t, [], signals, appeals, decided)
            k += 1
        if k < len(extra) and extra[k] == tok:
            k += 1
            reports = sorted((state_row(r, values) for r in group), key=report_order)
            yield tok, _with_extra(tok, reports, signals, appeals, decided)
        else:
            # the common case, written out: no sightings, disputes or appeals
            group_rows = list(group)
            if len(group_rows) == 1:
                r = group_rows[0]
                try:  # a record (see the module's docstring)
                    if r[7] == r[8]:
                        yield tok, pack(0, r[1], r[2], r[3], r[4], r[5], r[6], r[7])
                    else:
                        yield tok, pack(1, r[1], r[2], r[3], r[4], r[5], r[6], r[7]) + last(r[8])
                    continue
                except struct.error:  # a field out of the record's range: spelled out
                    pass
            # the rows as `encode` writes them, in `report_order` (epoch, then author)
            spelled = [
                (r[1], values[r[2]], values[r[3]], values[r[4]], r[5], r[6], r[7], r[8])
                for r in group_rows
            ]
            spelled.sort()
            yield tok, dumps((tuple(spelled), (), (), ()))
    for t in extra[k:]:
        yield t, _with_extra(t, [], signals, appeals, decided)


def _with_extra(
    tok: bytes,
    reports: list[IndicatorState],
    signals: Mapping[bytes, list[SignalState]],
    appeals: Mapping[bytes, list[AppealState]],
    decided: Mapping[str, list[Decision]],
) -> bytes:
    app = appeals.get(tok, [])
    ds = [d for aid in sorted({a.id for a in app}) for d in decided.get(aid, ())]
    return encode(tok, reports, signals.get(tok, []), app, ds)


def build_base(
    conn: sqlite3.Connection, out: BinaryIO, now: int, seq: int, *, error_rate: float = 0.001
) -> int:
    """Write a base file of every summary ``conn`` holds to ``out``, with the Bloom filter
    of its tokens at ``error_rate``; the token count."""
    toks = bytearray()
    offsets = [0]
    out.write(_HEADER.pack(MAGIC, 0, seq, 0, 0, 0, 0, 0, 0, 0.0))
    pos = 0
    conn.execute("BEGIN")
    try:
        values = Codes.read(conn).values(conn)
        table = marshal.dumps(values)  # what the records' codes mean
        for tok, blob in _all_summaries(conn, now, values):
            toks += tok
            out.write(blob)
            pos += len(blob)
            offsets.append(pos)
    finally:
        conn.execute("COMMIT")
    n = len(offsets) - 1
    keys = np.frombuffer(bytes(toks), dtype=_KEYS).reshape(n, 2) if n else np.zeros((0, 2), _KEYS)
    out.write(keys[:, 0].astype(_STORED).tobytes())
    out.write(keys[:, 1].astype(_STORED).tobytes())
    del keys
    out.write(np.asarray(offsets, dtype="<u8").tobytes())
    del offsets
    out.write(table)
    at = _HEADER.size + pos + 24 * n + 8 + len(table)
    out.write(bytes(-at % 8))
    bloom = TokenIndex(max(MIN_CAPACITY, n), error_rate)
    bloom.add_joined(toks)
    del toks
    bits = bloom.bit_bytes()
    out.write(bits)
    out.seek(0)
    out.write(
        _HEADER.pack(
            MAGIC,
            n,
            seq,
            pos,
            len(table),
            len(bits),
            bloom.num_bits,
            bloom.num_probes,
            bloom.capacity,
            bloom.error_rate,
        )
    )
    return n


def build_base_file(
    db_path: str, path: str, now: int, seq: int, *, error_rate: float = 0.001
) -> int:
    """`build_base` from the database at ``db_path`` (read only) into ``path``, atomically
    (written beside it, then renamed). Runs in a process of its own (see node/server.py)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
    tmp = f"{path}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w+b") as f:
            n = build_base(conn, f, now, seq, error_rate=error_rate)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return n
    finally:
        conn.close()


class BaseFile:
    """A base file, mapped read-only (or held in memory)."""

    def __init__(self, buf: bytes | mmap.mmap, *, path: str | None = None) -> None:
        self.path = path
        self._buf = buf
        if len(buf) < _HEADER.size:
            raise ValueError("summary file is truncated")
        magic, n, seq, blob_bytes, table_bytes, bloom_bytes, m, k, capacity, error_rate = (
            _HEADER.unpack_from(buf, 0)
        )
        if magic != MAGIC:
            raise ValueError("not a summary file")
        self.count: int = n
        self.seq: int = seq
        start = _HEADER.size + blob_bytes
        need = start + 16 * n + 8 * (n + 1) + table_bytes
        if len(buf) < need:
            raise ValueError("summary file is truncated")
        table_at = need - table_bytes
        self._values: dict[int, Any] = (
            marshal.loads(bytes(buf[table_at:need])) if table_bytes else {}
        )
        #: the Bloom filter of this file's tokens (None: a file made without one)
        self.bloom: TokenIndex | None = None
        if bloom_bytes:
            bloom_at = need + (-need % 8)
            if len(buf) < bloom_at + bloom_bytes:
                raise ValueError("summary file is truncated")
            self.bloom = TokenIndex.view(
                memoryview(buf)[bloom_at : bloom_at + bloom_bytes],
                num_bits=m,
                num_probes=k,
                capacity=capacity,
                count=n,
                error_rate=error_rate,
            )
        self._blobs = memoryview(buf)[_HEADER.size : start]
        self.hi = np.frombuffer(buf, dtype=_STORED, count=n, offset=start)
        self.lo = np.frombuffer(buf, dtype=_STORED, count=n, offset=start + 8 * n)
        self.offsets = np.frombuffer(buf, dtype="<u8", count=n + 1, offset=start + 16 * n)
        # the same offsets as Python ints one at a time, without numpy's scalar boxing
        off_at = start + 16 * n
        self._off: Any = (
            memoryview(buf)[off_at : off_at + 8 * (n + 1)].cast("B").cast("Q")
            if sys.byteorder == "little"
            else self.offsets.astype("=u8")  # a big-endian host reads a native copy
        )

    @classmethod
    def empty(cls, seq: int = 0) -> BaseFile:
        return cls(_HEADER.pack(MAGIC, 0, seq, 0, 0, 0, 0, 0, 0, 0.0) + bytes(8))

    @classmethod
    def open(cls, path: str | Path) -> BaseFile:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
        return cls(buf, path=str(path))

    @classmethod
    def from_connection(
        cls, conn: sqlite3.Connection, now: int, seq: int, *, error_rate: float = 0.001
    ) -> BaseFile:
        """Built in memory (a store with no file of its own, as in tests)."""
        import io

        out = io.BytesIO()
        build_base(conn, out, now, seq, error_rate=error_rate)
        return cls(out.getvalue())

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The index of each of ``keys`` (an (n, 2) array of token halves) in this file,
        else -1."""
        n = self.count
        if n == 0 or len(keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        keys = keys.astype(_STORED)
        qhi = keys[:, 0]
        order = np.argsort(qhi, kind="stable")
        idx = np.empty(len(keys), dtype=np.int64)
        idx[order] = np.searchsorted(self.hi, qhi[order])
        safe = np.minimum(idx, n - 1)
        same_hi = (idx < n) & (self.hi[safe] == qhi)
        found = same_hi & (self.lo[safe] == keys[:, 1])
        out = np.where(found, idx, -1)
        # equal first halves (about one pair in 2**64 / count): scan the run
        for j in np.flatnonzero(same_hi & ~found).tolist():
            i, h, lo = int(idx[j]) + 1, self.hi[int(idx[j])], keys[j, 1]
            while i < n and self.hi[i] == h:
                if self.lo[i] == lo:
                    out[j] = i
                    break
                i += 1
        return out

    def blob(self, i: int) -> bytes:
        """Summary ``i`` in `encode`'s form."""
        off = self._off
        b = bytes(self._blobs[off[i] : off[i + 1]])
        tag = b[0]
        if tag > 1:
            return b
        ep, author, kind, cat, sev, exp, first = _RECORD.unpack_from(b)[1:]
        last = _LAST.unpack_from(b, _RECORD.size)[0] if tag else first
        v = self._values
        return marshal.dumps(
            (((ep, v[author], v[kind], v[cat], sev, exp, first, last),), (), (), ())
        )

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(token, summary) of every token, in order (tests and tools)."""
        for i in range(self.count):
            tok = int(self.hi[i]).to_bytes(8, "big") + int(self.lo[i]).to_bytes(8, "big")
            yield tok, self.blob(i)

    def close(self) -> None:
        if self.bloom is not None:
            self.bloom.release()
        self._blobs.release()
        if isinstance(self._off, memoryview):
            self._off.release()
        buf = self._buf
        del self.hi, self.lo, self.offsets
        if isinstance(buf, mmap.mmap):
            # a reader still holding a view keeps the mapping; it goes with the view
            with contextlib.suppress(BufferError):
                buf.close()


#: the dicts an overlay generation is spread over, by a token's first byte (a power of 2)
SHARDS: Final = 64
_MASK: Final = SHARDS - 1

Change = tuple[int, bytes | None]


def _packed(seq: int, blob: bytes | None) -> bytes:
    """A change as the overlay holds it: seq (u8, big-endian: byte order is numeric
    order), 1 and the summary, or 0 when the token has nothing any more."""
    return seq.to_bytes(8, "big") + (b"\x00" if blob is None else b"\x01" + blob)


def _unpacked(v: bytes) -> Change:
    return int.from_bytes(v[:8], "big"), (v[9:] if v[8] else None)


class Changes(MutableMapping[bytes, Change]):
    """token -> (seq, summary): one generation of the overlay, in `SHARDS` dicts by the
    token's first byte (tokens are never empty), each change one ``bytes`` (`_packed`).

    One dict would pause whoever holds it each time it grows past a power of two (it
    copies every entry: 30 ms at 700 000 entries), and freeing it whole is a pause of
    its size too. Spread over 64, each of those is a 64th, and a generation can be freed
    a shard at a time (`Summaries.set_base`'s ``release``) between two queries.

    A change is one ``bytes``, not a (seq, summary) tuple, so that the garbage collector
    never looks at the overlay: a dict of bytes is not one it tracks, where a dict of
    tuples is, and each of its full collections went over every entry (50 to 70 ms at
    a million, measured in a serving process during a catch-up)."""

    __slots__ = ("shards",)

    def __init__(self, items: Iterable[tuple[bytes, Change]] = ()) -> None:
        self.shards: list[dict[bytes, bytes]] = [{} for _ in range(SHARDS)]
        for tok, (seq, blob) in items:
            self.shards[tok[0] & _MASK][tok] = _packed(seq, blob)

    def __getitem__(self, tok: bytes) -> Change:
        return _unpacked(self.shards[tok[0] & _MASK][tok])

    def get(self, tok: bytes, default: Any = None) -> Any:
        v = self.shards[tok[0] & _MASK].get(tok)
        return default if v is None else _unpacked(v)

    def __setitem__(self, tok: bytes, change: Change) -> None:
        self.shards[tok[0] & _MASK][tok] = _packed(*change)

    def __delitem__(self, tok: bytes) -> None:
        del self.shards[tok[0] & _MASK][tok]

    def __contains__(self, tok: object) -> bool:
        return isinstance(tok, bytes) and bool(tok) and tok in self.shards[tok[0] & _MASK]

    def __len__(self) -> int:
        return sum(map(len, self.shards))

    def __bool__(self) -> bool:
        return any(self.shards)

    def __iter__(self) -> Iterator[bytes]:
        for shard in self.shards:
            yield from shard

    def items(self) -> Iterator[tuple[bytes, Change]]:  # type: ignore[override]
        for shard in self.shards:
            for tok, v in shard.items():
                yield tok, _unpacked(v)

    def values(self) -> Iterator[Change]:  # type: ignore[override]
        for shard in self.shards:
            yield from map(_unpacked, shard.values())

    def merge(self, other: Changes) -> None:
        """Add ``other``'s changes, its winning where both have a token."""
        for mine, theirs in zip(self.shards, other.shards, strict=True):
            mine.update(theirs)

    def newer_than(self, seq: int) -> Changes:
        """The changes after ``seq`` (a pass over every one)."""
        after = seq.to_bytes(8, "big")
        out = Changes()
        for i, shard in enumerate(self.shards):
            out.shards[i] = {t: v for t, v in shard.items() if v[:8] > after}
        return out

    def first_seq(self) -> int:
        """The smallest seq of a change held (0: none)."""
        return min(
            (int.from_bytes(v[:8], "big") for s in self.shards for v in s.values()), default=0
        )

    def __repr__(self) -> str:
        return f"Changes({len(self)} tokens)"


class Summaries:
    """A base file and the overlay of changes since: answers "what is this token's summary?".

    The overlay has two generations. When a new base file starts being built
    (:meth:`mark`), the changes so far become the older generation: the new file
    will hold all of them, so switching to it (:meth:`set_base`) drops that
    generation whole, without a pass over it (which, on a serving process's event
    loop, would be a pause the size of the overlay)."""

    def __init__(self, base: BaseFile | None = None) -> None:
        self.base = base if base is not None else BaseFile.empty()
        #: the changes since the last :meth:`mark` (or since the base)
        self.overlay = Changes()
        #: the changes before the last :meth:`mark`, until the base built from then arrives
        self.older = Changes()
        #: the seq of the last change applied (or of the base, if later)
        self.seq = self.base.seq
        self._marked = -1
        self._front_min = 0

    def apply(self, seq: int, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply one commit's changes (full replacements: idempotent)."""
        ov = self.overlay
        if not ov:
            self._front_min = seq
        shards = ov.shards
        head = seq.to_bytes(8, "big")
        live, gone = head + b"\x01", head + b"\x00"
        for tok, blob in changes.items():
            shards[tok[0] & _MASK][tok] = gone if blob is None else live + blob
        if seq > self.seq:
            self.seq = seq

    def mark(self, seq: int) -> None:
        """A base file holding every change up to ``seq`` at least is being built."""
        if self.older:  # a build started before the last one ended (rare): keep both
            self.older.merge(self.overlay)
        else:
            self.older = self.overlay
        self.overlay = Changes()
        self._marked = seq

    def set_base(
        self, base: BaseFile, release: Callable[[Changes], None] | None = None
    ) -> BaseFile:
        """Switch to a new base; keep the changes newer than it. Returns the old base.

        ``release``, if given, is handed the changes the new base makes unneeded, to free
        them in pieces (a serving process: between queries); otherwise they go now."""
        old, self.base = self.base, base
        dropped: list[Changes] = []
        if self.older:
            dropped.append(self.older)
            self.older = Changes() if base.seq >= self._marked else self.older.newer_than(base.seq)
        if self.overlay and self._front_min <= base.seq:
            dropped.append(self.overlay)
            self.overlay = self.overlay.newer_than(base.seq)
            self._front_min = self.overlay.first_seq()
        self.seq = max(self.seq, base.seq)
        if release is not None:
            for changes in dropped:
                release(changes)
        return old

    def changes(self) -> dict[bytes, Change]:
        """Every change on top of the base, both generations, the newer winning."""
        out = dict(self.older.items())
        out.update(self.overlay.items())
        return out

    def lookup(self, toks: Sequence[bytes]) -> list[bytes | None]:
        """Each token's summary, or None."""
        n = len(toks)
        out: list[bytes | None] = [None] * n
        if n == 0:
            return out
        base = self.base
        if base.count and n <= _SCALAR:
            hi, lo, count = base.hi, base.lo, base.count
            for j, t in enumerate(toks):
                h = int.from_bytes(t[:8], "big")
                i = int(np.searchsorted(hi, np.uint64(h)))
                while i < count and int(hi[i]) == h:
                    if int(lo[i]) == int.from_bytes(t[8:], "big"):
                        out[j] = base.blob(i)
                        break
                    i += 1
        elif base.count:
            keys = np.frombuffer(b"".join(toks), dtype=_KEYS).reshape(n, 2)
            idx = base.find(keys)
            blob = base.blob
            for j in np.flatnonzero(idx >= 0).tolist():
                out[j] = blob(int(idx[j]))
        ov, older = self.overlay.shards, self.older.shards
        if self.older:
            for j, t in enumerate(toks):
                i = t[0] & _MASK
                v = ov[i].get(t) or older[i].get(t)
                if v is not None:
                    out[j] = v[9:] if v[8] else None
        elif self.overlay:
            for j, t in enumerate(toks):
                v = ov[t[0] & _MASK].get(t)
                if v is not None:
                    out[j] = v[9:] if v[8] else None
        return out

    def count(self) -> int:
        """Tokens with a summary (the base's, corrected by the overlay)."""
        changes = self.changes()
        if not changes:
            return self.base.count
        toks = list(changes)
        in_base = [b is not None for b in self._base_only(toks)]
        now_has = [v[1] is not None for v in changes.values()]
        return self.base.count + sum(now_has) - sum(in_base)

    def _base_only(self, toks: Sequence[bytes]) -> list[bytes | None]:
        n = len(toks)
        if not n or not self.base.count:
            return [None] * n
        keys = np.frombuffer(b"".join(toks), dtype=_KEYS).reshape(n, 2)
        idx = self.base.find(keys)
        return [self.base.blob(int(i)) if i >= 0 else None for i in idx.tolist()]
