"""The store's part for sightings, disputes, appeals and decisions (DESIGN §15).

:class:`AfterMatchStore` is mixed into :class:`node.store.SqliteStore`: the
FeedStore methods of :mod:`protocol.store` for the new ops, the sealed
appeal items the gossip engine relays, and what only this member keeps —
the appeals it filed, the cases it opened as a reporter and the decision
notes it received, their text sealed at rest like its own raw values. The
tables are made by the migration ``m004_after_match`` (:data:`SCHEMA`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import nacl.secret

from contracts.errors import AppealItemRejected
from protocol import codec
from protocol.appeals import CASE, decode_case
from protocol.entries import AppealDecidedOp, AppealOp, DisputeOp, Entry, Op, RetractOp, SeenOp
from protocol.keys import MemberId
from protocol.store import AppealState, Decision, SignalState

__all__ = ["SCHEMA", "AfterMatchStore", "InboundAppeal", "OutboundAppeal"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    tok BLOB NOT NULL, ep INTEGER NOT NULL, author BLOB NOT NULL, what TEXT NOT NULL,
    why TEXT, exp INTEGER NOT NULL, ts INTEGER NOT NULL, retracted INTEGER NOT NULL,
    PRIMARY KEY (tok, ep, author, what)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS signals_author ON signals (author, what, ts);
CREATE TABLE IF NOT EXISTS appeals (
    id TEXT NOT NULL, tok BLOB NOT NULL, ep INTEGER NOT NULL, author BLOB NOT NULL,
    kind TEXT NOT NULL, ts INTEGER NOT NULL, withdrawn INTEGER NOT NULL,
    PRIMARY KEY (id, tok, ep, author)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS appeals_tok ON appeals (tok);
CREATE INDEX IF NOT EXISTS appeals_author ON appeals (author, ts);
CREATE TABLE IF NOT EXISTS appeal_decisions (
    id TEXT NOT NULL, author BLOB NOT NULL, decision TEXT NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (id, author)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS appeal_items (
    hash BLOB PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL, tok BLOB, ep INTEGER,
    raw BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS appeal_items_id ON appeal_items (id, kind);
CREATE INDEX IF NOT EXISTS appeal_items_tok ON appeal_items (tok, ep);
CREATE TABLE IF NOT EXISTS appeals_out (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, filed INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS appeals_in (
    hash BLOB PRIMARY KEY, id TEXT NOT NULL, appellant BLOB NOT NULL, tok BLOB NOT NULL,
    ep INTEGER NOT NULL, kind TEXT NOT NULL, filed INTEGER NOT NULL, received INTEGER NOT NULL,
    sealed BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS appeals_in_id ON appeals_in (id);
CREATE TABLE IF NOT EXISTS appeal_notes (
    hash BLOB PRIMARY KEY, id TEXT NOT NULL, received INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS appeal_notes_id ON appeal_notes (id);
"""

SIGNAL_COLS = "tok, ep, author, what, why, exp, ts, retracted"
APPEAL_COLS = "id, tok, ep, author, kind, ts, withdrawn"


def signal_row(r: Sequence[Any]) -> SignalState:
    return SignalState(
        tok=bytes(r[0]),
        ep=r[1],
        author=MemberId(bytes(r[2])),
        what=r[3],
        why=r[4],
        exp=r[5],
        ts=r[6],
        retracted=bool(r[7]),
    )


def appeal_row(r: Sequence[Any]) -> AppealState:
    return AppealState(
        id=r[0],
        tok=bytes(r[1]),
        ep=r[2],
        author=MemberId(bytes(r[3])),
        kind=r[4],
        ts=r[5],
        withdrawn=bool(r[6]),
    )


class OutboundAppeal(NamedTuple):
    """An appeal this member filed: the value (canonical), what it said, the epochs."""

    id: str
    kind: str
    filed: int
    value: str
    case_ref: str
    grounds: str
    epochs: tuple[int, ...]


class InboundAppeal(NamedTuple):
    """A case this member opened as a reporter of the value."""

    id: str
    appellant: MemberId
    tok: bytes
    ep: int
    kind: str
    filed: int
    received: int
    case_ref: str
    grounds: str


class AfterMatchStore:
    """Mixed into :class:`node.store.SqliteStore` (which provides ``conn`` and the sealer)."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:  # provided by SqliteStore

        def _sealer(self) -> nacl.secret.SecretBox: ...

        def own_batch(self, batch: int) -> dict[bytes, tuple[str, str]]: ...

        def _flush(self) -> None: ...

    # -- applying an entry's ops (inside SqliteStore.append's unit of work) -------------------

    def _append_after_match(self, entry: Entry, ops: Iterable[Op]) -> None:
        c, log, ts = self.conn, entry.log, entry.ts
        for op in ops:
            if isinstance(op, SeenOp | DisputeOp):
                what = "seen" if isinstance(op, SeenOp) else "dispute"
                why = op.why if isinstance(op, DisputeOp) else None
                c.execute(
                    f"INSERT OR REPLACE INTO signals ({SIGNAL_COLS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                    (op.tok, op.ep, log, what, why, op.exp, ts),
                )
            elif isinstance(op, AppealOp):
                c.execute(
                    f"INSERT OR REPLACE INTO appeals ({APPEAL_COLS}) VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (op.id, op.tok, op.ep, log, op.kind, ts),
                )
            elif isinstance(op, AppealDecidedOp):
                c.execute(
                    "INSERT OR REPLACE INTO appeal_decisions (id, author, decision, ts)"
                    " VALUES (?, ?, ?, ?)",
                    (op.id, log, op.decision, ts),
                )
            elif isinstance(op, RetractOp) and op.of == "appeal":
                c.execute(
                    "UPDATE appeals SET withdrawn = 1 WHERE tok = ? AND ep = ? AND author = ?",
                    (op.tok, op.ep, log),
                )
            elif isinstance(op, RetractOp) and op.of is not None:
                c.execute(
                    "UPDATE signals SET retracted = 1"
                    " WHERE tok = ? AND ep = ? AND author = ? AND what = ?",
                    (op.tok, op.ep, log, op.of),
                )

    # -- FeedStore -------------------------------------------------------------------------

    def signals(self, tok: bytes) -> list[SignalState]:
        return [
            signal_row(r)
            for r in self.conn.execute(f"SELECT {SIGNAL_COLS} FROM signals WHERE tok = ?", (tok,))
        ]

    def appeals(self, tok: bytes) -> list[AppealState]:
        return [
            appeal_row(r)
            for r in self.conn.execute(
                f"SELECT {APPEAL_COLS} FROM appeals WHERE tok = ? ORDER BY ts, id", (tok,)
            )
        ]

    def appeal(self, appeal_id: str) -> list[AppealState]:
        return [
            appeal_row(r)
            for r in self.conn.execute(
                f"SELECT {APPEAL_COLS} FROM appeals WHERE id = ?", (appeal_id,)
            )
        ]

    def decisions(self, appeal_id: str) -> list[Decision]:
        return [
            Decision(id=r[0], author=MemberId(bytes(r[1])), decision=r[2], ts=r[3])
            for r in self.conn.execute(
                "SELECT id, author, decision, ts FROM appeal_decisions WHERE id = ?", (appeal_id,)
            )
        ]

    def signaled(self, author: MemberId, tok: bytes, ep: int, what: str) -> bool:
        if what == "appeal":
            q = "SELECT 1 FROM appeals WHERE tok = ? AND ep = ? AND author = ?"
            args: tuple[Any, ...] = (tok, ep, author)
        else:
            q = "SELECT 1 FROM signals WHERE tok = ? AND ep = ? AND author = ? AND what = ?"
            args = (tok, ep, author, what)
        return self.conn.execute(q, args).fetchone() is not None

    def recent_signals(self, author: MemberId, what: str, since: int) -> int:
        if what == "appeal":
            row = self.conn.execute(
                "SELECT COUNT(*) FROM appeals WHERE author = ? AND ts > ?", (author, since)
            ).fetchone()
        else:
            row = self.conn.execute(
                "SELECT COUNT(*) FROM signals WHERE author = ? AND what = ? AND ts > ?",
                (author, what, since),
            ).fetchone()
        return int(row[0])

    def put_appeal_item(self, kind: str, appeal_id: str, raw: bytes) -> bool:
        tok: bytes | None = None
        ep: int | None = None
        if kind == CASE:
            try:
                case = decode_case(raw)
                tok, ep = case.tok, case.ep
            except AppealItemRejected:  # checked by the engine before; kept as given
                pass
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO appeal_items (hash, kind, id, tok, ep, raw)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (codec.obj_hash(raw), kind, appeal_id, tok, ep, raw),
        )
        return cur.rowcount > 0

    def appeal_items(self) -> list[tuple[str, bytes]]:
        return [
            (r[0], bytes(r[1]))
            for r in self.conn.execute("SELECT kind, raw FROM appeal_items ORDER BY rowid")
        ]

    def appeal_item_count(self, kind: str, appeal_id: str) -> int:
        row = self.conn.execute(
            "SELECT COUNT(*) FROM appeal_items WHERE id = ? AND kind = ?", (appeal_id, kind)
        ).fetchone()
        return int(row[0])

    # -- for verdicts: many tokens at once ------------------------------------------------------

    def signals_many(self, toks: Sequence[bytes]) -> dict[bytes, list[SignalState]]:
        out: dict[bytes, list[SignalState]] = {}
        for chunk in _chunks(toks):
            q = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f"SELECT {SIGNAL_COLS} FROM signals WHERE tok IN ({q})", chunk
            ):
                s = signal_row(r)
                out.setdefault(s.tok, []).append(s)
        return out

    def appeals_many(self, toks: Sequence[bytes]) -> dict[bytes, list[AppealState]]:
        out: dict[bytes, list[AppealState]] = {}
        for chunk in _chunks(toks):
            q = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f"SELECT {APPEAL_COLS} FROM appeals WHERE tok IN ({q})", chunk
            ):
                a = appeal_row(r)
                out.setdefault(a.tok, []).append(a)
        return out

    def decisions_many(self, ids: Iterable[str]) -> dict[str, list[Decision]]:
        out: dict[str, list[Decision]] = {}
        for chunk in _chunks(sorted(set(ids))):
            q = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f"SELECT id, author, decision, ts FROM appeal_decisions WHERE id IN ({q})", chunk
            ):
                d = Decision(id=r[0], author=MemberId(bytes(r[1])), decision=r[2], ts=r[3])
                out.setdefault(d.id, []).append(d)
        return out

    # -- this member's own side ------------------------------------------------------------------

    def own_value(self, tok: bytes, ep: int) -> tuple[str, str] | None:
        """(kind, canonical value) this member reported as ``tok`` under ``ep``, if it did."""
        self._flush()
        for table in ("indicators_recent", "indicators"):  # the current row first (m010)
            row = self.conn.execute(
                f"SELECT own FROM {table} WHERE tok = ? AND ep = ? AND own IS NOT NULL", (tok, ep)
            ).fetchone()
            if row is not None:
                return self.own_batch(row[0]).get(tok)
        row = self.conn.execute(  # written before m009 (node/store.py)
            "SELECT kind, sealed FROM own_values WHERE tok = ? AND ep = ?", (tok, ep)
        ).fetchone()
        if row is None:
            return None
        return str(row[0]), self._sealer().decrypt(row[1]).decode()

    def unopened_cases(self) -> list[bytes]:
        """Case items on a token this member reported, not opened here yet."""
        self._flush()
        return [
            bytes(r[0])
            for r in self.conn.execute(
                "SELECT a.raw FROM appeal_items a"
                " LEFT JOIN appeals_in i ON i.hash = a.hash"
                " WHERE a.kind = ? AND i.hash IS NULL AND (EXISTS (SELECT 1 FROM indicators x"
                " WHERE x.tok = a.tok AND x.ep = a.ep AND x.own IS NOT NULL)"
                " OR EXISTS (SELECT 1 FROM indicators_recent x"
                " WHERE x.tok = a.tok AND x.ep = a.ep AND x.own IS NOT NULL)"
                " OR EXISTS (SELECT 1 FROM own_values o WHERE o.tok = a.tok AND o.ep = a.ep))"
                " ORDER BY a.rowid",
                (CASE,),
            )
        ]

    def put_appeal_out(self, a: OutboundAppeal) -> None:
        sealed = self._seal(
            {
                "value": a.value,
                "case_ref": a.case_ref,
                "grounds": a.grounds,
                "epochs": list(a.epochs),
            }
        )
        self.conn.execute(
            "INSERT INTO appeals_out (id, kind, filed, sealed) VALUES (?, ?, ?, ?)",
            (a.id, a.kind, a.filed, sealed),
        )

    def appeals_out(self, appeal_id: str | None = None) -> list[OutboundAppeal]:
        q = "SELECT id, kind, filed, sealed FROM appeals_out"
        args: tuple[Any, ...] = ()
        if appeal_id is not None:
            q += " WHERE id = ?"
            args = (appeal_id,)
        out = []
        for aid, kind, filed, sealed in self.conn.execute(q + " ORDER BY filed, id", args):
            m = self._open(sealed)
            out.append(
                OutboundAppeal(
                    aid, kind, filed, m["value"], m["case_ref"], m["grounds"], tuple(m["epochs"])
                )
            )
        return out

    def put_appeal_in(self, case_hash: bytes, a: InboundAppeal) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO appeals_in (hash, id, appellant, tok, ep, kind, filed,"
            " received, sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case_hash,
                a.id,
                a.appellant,
                a.tok,
                a.ep,
                a.kind,
                a.filed,
                a.received,
                self._seal({"case_ref": a.case_ref, "grounds": a.grounds}),
            ),
        )

    def appeals_in(self, appeal_id: str | None = None) -> list[InboundAppeal]:
        q = "SELECT id, appellant, tok, ep, kind, filed, received, sealed FROM appeals_in"
        args: tuple[Any, ...] = ()
        if appeal_id is not None:
            q += " WHERE id = ?"
            args = (appeal_id,)
        out = []
        for aid, who, tok, ep, kind, filed, received, sealed in self.conn.execute(
            q + " ORDER BY filed, id, ep", args
        ):
            m = self._open(sealed)
            out.append(
                InboundAppeal(
                    aid,
                    MemberId(bytes(who)),
                    bytes(tok),
                    ep,
                    kind,
                    filed,
                    received,
                    m["case_ref"],
                    m["grounds"],
                )
            )
        return out

    def put_appeal_note(
        self, note_hash: bytes, appeal_id: str, received: int, decision: str, note: str
    ) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO appeal_notes (hash, id, received, sealed) VALUES (?, ?, ?, ?)",
            (note_hash, appeal_id, received, self._seal({"decision": decision, "note": note})),
        )
        return cur.rowcount > 0

    def appeal_notes(self, appeal_id: str) -> list[tuple[int, str, str]]:
        """(received, decision, note) of the notes on an appeal this member filed."""
        out = []
        for received, sealed in self.conn.execute(
            "SELECT received, sealed FROM appeal_notes WHERE id = ? ORDER BY received, rowid",
            (appeal_id,),
        ):
            m = self._open(sealed)
            out.append((int(received), str(m["decision"]), str(m["note"])))
        return out

    def _seal(self, m: dict[str, Any]) -> bytes:
        return bytes(self._sealer().encrypt(codec.dumps(m)))

    def _open(self, sealed: bytes) -> dict[str, Any]:
        m = codec.loads(self._sealer().decrypt(bytes(sealed)))
        assert isinstance(m, dict)
        return m


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
