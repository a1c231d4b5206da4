"""The audit trail: who did what on this node, hash-chained.

Every local action (reports, retractions, sightings, disputes, appeals and
their decisions, admin actions, API-key changes) is one row of the store's
``audit`` table, written by :meth:`node.store.SqliteStore.audit` in the same
transaction as the action itself. A row holds tokens and refs only, never a
raw identifier.

**Who acted.** The local API's middleware sets :data:`ACTOR` to the name of
the API key behind the request (:func:`acting`) for as long as the handler
runs; :class:`~node.core.Node` and whatever else writes an audit row passes
:func:`current_actor` as the actor. Outside a request (the CLI working on a
stopped node, maintenance) the actor is ``"local"``.

**The chain.** Each row stores the hash of the row before it (``prev``) and
its own hash (``hash``): BLAKE2b-256, personalised, over ``prev`` and the
row's id, time, actor, action and detail. Editing any field of a past row,
deleting or reordering rows breaks the chain at that row, which
:func:`verify_chain` (``riskmesh audit --verify``) names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTOR",
    "GENESIS",
    "AuditRow",
    "acting",
    "current_actor",
    "detail",
    "row_hash",
    "verify_chain",
]

#: The name of the API key acting in the current request (``"local"`` outside one).
ACTOR: ContextVar[str] = ContextVar("riskmesh_actor", default="local")

#: The ``prev`` of the first row.
GENESIS = bytes(32)


def current_actor() -> str:
    return ACTOR.get()


@contextmanager
def acting(name: str) -> Iterator[None]:
    """Run the block on behalf of the API key ``name``."""
    token = ACTOR.set(name)
    try:
        yield
    finally:
        ACTOR.reset(token)


def detail(**fields: Any) -> str:
    """An audit row's detail: compact JSON of tokens, refs, ids and counts (never a
    raw identifier); bytes are written as hex."""
    return json.dumps(
        {k: _plain(v) for k, v in fields.items() if v is not None},
        separators=(",", ":"),
        sort_keys=True,
    )


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def row_hash(prev: bytes, rid: int, ts: int, actor: str, action: str, text: str) -> bytes:
    body = json.dumps([rid, ts, actor, action, text], separators=(",", ":")).encode()
    return hashlib.blake2b(prev + body, digest_size=32, person=b"rm-audit-v1").digest()


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    ts: int
    actor: str
    action: str
    detail: str
    prev: bytes
    hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "actor": self.actor,
            "action": self.action,
            "detail": self.detail,
            "prev": self.prev.hex(),
            "hash": self.hash.hex(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AuditRow:
        return cls(
            int(d["id"]),
            int(d["ts"]),
            str(d["actor"]),
            str(d["action"]),
            str(d["detail"]),
            bytes.fromhex(d["prev"]),
            bytes.fromhex(d["hash"]),
        )


def verify_chain(rows: Iterable[AuditRow], prev: bytes = GENESIS) -> tuple[int, int | None]:
    """Check rows in id order from the start of the chain (or from ``prev``):
    ``(rows checked, id of the first broken row or None)``."""
    n = 0
    for r in rows:
        expected = row_hash(prev, r.id, r.ts, r.actor, r.action, r.detail)
        if r.prev != prev or r.hash != expected:
            return n, r.id
        prev = r.hash
        n += 1
    return n, None
