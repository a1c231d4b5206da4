"""Feed entries: signed, chained batches of ops (DESIGN §6, §15).

::

    entry payload = {"v": 1, "log": author, "seq": n, "prev": hash | null,
                     "ts": ms, "cv": charter version, "ops": [op, ...]}
    op = {"op": "add", "tok", "kind", "ep", "cat", "sev", "exp", "ref"?}
       | {"op": "retract", "tok", "kind", "ep", "why", "of"?: "seen" | "dispute" | "appeal"}
       | {"op": "seen", "tok", "kind", "ep", "exp"}                  corroboration
       | {"op": "dispute", "tok", "kind", "ep", "exp", "why"}         disagreement
       | {"op": "appeal", "tok", "kind", "ep", "id"}                  a data subject's appeal
       | {"op": "appeal_decided", "id", "decision"}                   by a reporter

A retract without ``of`` withdraws the author's report (``add``) of the token;
with ``of`` it withdraws the author's sighting, dispute or appeal of it. An
appeal ``id`` is 16 lower-case hex digits.

An entry is a COSE_Sign1 over the encoded payload, signed by the author. This
module builds and decodes entries (shape only); the validation order that
decides whether a node accepts one lives in :mod:`protocol.feeds`.

Ops are named tuples rather than dataclasses: a replicated entry carries up to
a thousand of them and they are built on the replication hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from contracts.errors import DecodeError, EntryRejected, SignatureError
from protocol import codec
from protocol.cose import Signed1, decode_sign1, sign1, verify_signed1
from protocol.keys import MemberId, MemberKey
from protocol.tokens import TOKEN_BYTES

__all__ = [
    "ENTRY_FORMAT",
    "HARD_MAX_ENTRY_BYTES",
    "MAX_REF_CHARS",
    "REJECT_REASONS",
    "RETRACTABLE",
    "AddOp",
    "AppealDecidedOp",
    "AppealOp",
    "DisputeOp",
    "Entry",
    "Op",
    "RetractOp",
    "SeenOp",
    "TokenOp",
    "build_entry",
    "decode_entry",
    "is_appeal_id",
]

ENTRY_FORMAT = 1
#: No entry is ever larger than this, whatever a charter's policy says.
HARD_MAX_ENTRY_BYTES = 4 * 1024 * 1024
MAX_REF_CHARS = 64

#: Every reason a node refuses an entry, in validation order.
REJECT_REASONS: tuple[str, ...] = (
    "too_large",
    "decode",
    "frozen",
    "not_member",
    "revoked",
    "bad_signature",
    "bad_prev",
    "ts_before_head",
    "ts_future",
    "cv_decreased",
    "cv_stale",
    "too_many_ops",
    "policy",
    "unknown_epoch",
    "warning_listed",
    "retract_unknown",
    "over_quota",
    "held_full",
)

#: What a retract's ``of`` may name besides the report itself.
RETRACTABLE = frozenset({"seen", "dispute", "appeal"})


class AddOp(NamedTuple):
    tok: bytes
    kind: str
    ep: int
    cat: str
    sev: int
    exp: int
    ref: str | None = None

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "op": "add",
            "tok": self.tok,
            "kind": self.kind,
            "ep": self.ep,
            "cat": self.cat,
            "sev": self.sev,
            "exp": self.exp,
        }
        if self.ref is not None:
            m["ref"] = self.ref
        return m


class RetractOp(NamedTuple):
    tok: bytes
    kind: str
    ep: int
    why: str
    #: None: the report (add); else "seen", "dispute" or "appeal"
    of: str | None = None

    def to_map(self) -> dict[str, Any]:
        m = {"op": "retract", "tok": self.tok, "kind": self.kind, "ep": self.ep, "why": self.why}
        if self.of is not None:
            m["of"] = self.of
        return m


class SeenOp(NamedTuple):
    """A sighting, "we saw this in fraud too": corroboration of a token by its author."""

    tok: bytes
    kind: str
    ep: int
    exp: int

    def to_map(self) -> dict[str, Any]:
        return {"op": "seen", "tok": self.tok, "kind": self.kind, "ep": self.ep, "exp": self.exp}


class DisputeOp(NamedTuple):
    """A dispute, "our evidence says otherwise", with a reason (taxonomy.DISPUTE_REASONS)."""

    tok: bytes
    kind: str
    ep: int
    exp: int
    why: str

    def to_map(self) -> dict[str, Any]:
        return {
            "op": "dispute",
            "tok": self.tok,
            "kind": self.kind,
            "ep": self.ep,
            "exp": self.exp,
            "why": self.why,
        }


class AppealOp(NamedTuple):
    """A data subject's appeal against the reports of a token is open (filed by its author)."""

    tok: bytes
    kind: str
    ep: int
    id: str

    def to_map(self) -> dict[str, Any]:
        return {"op": "appeal", "tok": self.tok, "kind": self.kind, "ep": self.ep, "id": self.id}


class AppealDecidedOp(NamedTuple):
    """A reporter's decision on appeal ``id``: ``upheld`` or ``rejected``."""

    id: str
    decision: str

    def to_map(self) -> dict[str, Any]:
        return {"op": "appeal_decided", "id": self.id, "decision": self.decision}


#: Ops about one token under one epoch.
TokenOp = AddOp | RetractOp | SeenOp | DisputeOp | AppealOp
Op = AddOp | RetractOp | SeenOp | DisputeOp | AppealOp | AppealDecidedOp

APPEAL_ID_CHARS = 16
_HEX = frozenset("0123456789abcdef")


def is_appeal_id(v: object) -> bool:
    """Whether ``v`` is an appeal id: 16 lower-case hex digits."""
    return isinstance(v, str) and len(v) == APPEAL_ID_CHARS and set(v) <= _HEX


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    raw: bytes  # the COSE_Sign1 bytes, exactly as signed and stored
    hash: bytes  # BLAKE2b-256 of raw
    log: MemberId
    seq: int
    prev: bytes | None
    ts: int
    cv: int
    ops: tuple[Op, ...]
    signed: Signed1

    def verify_signature(self) -> None:
        """Raise EntryRejected("bad_signature") unless the author's signature verifies."""
        try:
            verify_signed1(self.signed)
        except (DecodeError, SignatureError):
            raise EntryRejected("bad_signature", "entry signature does not verify") from None

    def __repr__(self) -> str:
        return f"Entry(log={self.log.hex()[:8]}, seq={self.seq}, ops={len(self.ops)})"


def build_entry(
    key: MemberKey, *, seq: int, prev: bytes | None, ts: int, cv: int, ops: Sequence[Op]
) -> Entry:
    payload = {
        "v": ENTRY_FORMAT,
        "log": key.id,
        "seq": seq,
        "prev": prev,
        "ts": ts,
        "cv": cv,
        "ops": [op.to_map() for op in ops],
    }
    raw = sign1(codec.dumps(payload), key)
    # built here from the ops given, not decoded again: the payload is our own encoding
    # of exactly these ops (tests/protocol/test_feeds.py checks the two agree)
    return Entry(
        raw=raw,
        hash=codec.obj_hash(raw),
        log=MemberId(key.id),
        seq=seq,
        prev=prev,
        ts=ts,
        cv=cv,
        ops=tuple(ops),
        signed=decode_sign1(raw, max_bytes=HARD_MAX_ENTRY_BYTES),
    )


_ADD_KEYS = frozenset({"op", "tok", "kind", "ep", "cat", "sev", "exp"})
_ADD_KEYS_REF = _ADD_KEYS | {"ref"}
_RETRACT_KEYS = frozenset({"op", "tok", "kind", "ep", "why"})
_RETRACT_KEYS_OF = _RETRACT_KEYS | {"of"}
_SEEN_KEYS = frozenset({"op", "tok", "kind", "ep", "exp"})
_DISPUTE_KEYS = _SEEN_KEYS | {"why"}
_APPEAL_KEYS = frozenset({"op", "tok", "kind", "ep", "id"})
_DECIDED_KEYS = frozenset({"op", "id", "decision"})
_ENTRY_KEYS = frozenset({"v", "log", "seq", "prev", "ts", "cv", "ops"})


def _is_int(v: object) -> bool:
    return type(v) is int


def decode_entry(raw: bytes, *, max_bytes: int = HARD_MAX_ENTRY_BYTES) -> Entry:
    """Decode an entry's shape (no signature or chain check).

    Raises EntryRejected with reason ``too_large`` or ``decode``.
    """
    if not isinstance(raw, bytes | bytearray):
        raise EntryRejected("decode", "an entry is bytes")
    if len(raw) > min(max_bytes, HARD_MAX_ENTRY_BYTES):
        raise EntryRejected(
            "too_large", f"entry of {len(raw)} bytes is over the limit of {max_bytes}"
        )
    raw = bytes(raw)
    try:
        signed = decode_sign1(raw, max_bytes=HARD_MAX_ENTRY_BYTES)
        p = codec.loads(signed.payload, max_bytes=HARD_MAX_ENTRY_BYTES)
        return _entry_from_payload(raw, signed, p)
    except DecodeError as e:
        raise EntryRejected("decode", f"malformed entry: {e.message}") from None


def _entry_from_payload(raw: bytes, signed: Signed1, p: Any) -> Entry:
    if not isinstance(p, dict) or p.keys() != _ENTRY_KEYS:
        raise DecodeError("entry payload must be a map of exactly v, log, seq, prev, ts, cv, ops")
    if p["v"] != ENTRY_FORMAT:
        raise DecodeError(f"unsupported entry format v={p['v']!r}")
    log, seq, prev, ts, cv, ops = p["log"], p["seq"], p["prev"], p["ts"], p["cv"], p["ops"]
    if not isinstance(log, bytes) or len(log) != 32:
        raise DecodeError("entry log must be a 32-byte member id")
    if log != signed.kid:
        raise DecodeError("entry log is not the key that signed it")
    if not _is_int(seq) or seq < 1:
        raise DecodeError("entry seq must be an integer >= 1")
    if seq == 1:
        if prev is not None:
            raise DecodeError("entry 1 of a feed has prev null")
    elif not isinstance(prev, bytes) or len(prev) != 32:
        raise DecodeError("entry prev must be the 32-byte hash of the entry before")
    if not _is_int(ts) or ts < 0:
        raise DecodeError("entry ts must be a non-negative integer (ms)")
    if not _is_int(cv) or cv < 1:
        raise DecodeError("entry cv must be a charter version >= 1")
    if not isinstance(ops, list) or not ops:
        raise DecodeError("entry ops must be a non-empty list")
    out: list[Op] = []
    for i, o in enumerate(ops):
        out.append(_decode_op(i, o))
    return Entry(
        raw=raw,
        hash=codec.obj_hash(raw),
        log=MemberId(log),
        seq=seq,
        prev=prev,
        ts=ts,
        cv=cv,
        ops=tuple(out),
        signed=signed,
    )


def _decode_op(i: int, o: Any) -> Op:
    if not isinstance(o, dict):
        raise DecodeError(f"op {i} is not a map")
    tag = o.get("op")
    keys = o.keys()
    if tag == "add":
        if keys != _ADD_KEYS and keys != _ADD_KEYS_REF:
            raise DecodeError(f"op {i}: an add op has exactly tok, kind, ep, cat, sev, exp, ref?")
        ref = o.get("ref")
        if ref is not None and (not isinstance(ref, str) or len(ref) > MAX_REF_CHARS):
            raise DecodeError(f"op {i}: ref must be text of at most {MAX_REF_CHARS} characters")
        if not (isinstance(o["cat"], str) and _is_int(o["sev"]) and _is_int(o["exp"])):
            raise DecodeError(f"op {i}: cat is text, sev and exp are integers")
        op: TokenOp = AddOp(o["tok"], o["kind"], o["ep"], o["cat"], o["sev"], o["exp"], ref)
    elif tag == "retract":
        if keys != _RETRACT_KEYS and keys != _RETRACT_KEYS_OF:
            raise DecodeError(f"op {i}: a retract op has exactly tok, kind, ep, why, of?")
        of = o.get("of")
        if of is not None and of not in RETRACTABLE:
            raise DecodeError(f"op {i}: of names seen, dispute or appeal")
        op = RetractOp(o["tok"], o["kind"], o["ep"], o["why"], of)
        if not isinstance(op.why, str):
            raise DecodeError(f"op {i}: why is text")
    elif tag == "seen":
        if keys != _SEEN_KEYS:
            raise DecodeError(f"op {i}: a seen op has exactly tok, kind, ep, exp")
        if not _is_int(o["exp"]):
            raise DecodeError(f"op {i}: exp is an integer")
        op = SeenOp(o["tok"], o["kind"], o["ep"], o["exp"])
    elif tag == "dispute":
        if keys != _DISPUTE_KEYS:
            raise DecodeError(f"op {i}: a dispute op has exactly tok, kind, ep, exp, why")
        if not (_is_int(o["exp"]) and isinstance(o["why"], str)):
            raise DecodeError(f"op {i}: exp is an integer and why is text")
        op = DisputeOp(o["tok"], o["kind"], o["ep"], o["exp"], o["why"])
    elif tag == "appeal":
        if keys != _APPEAL_KEYS:
            raise DecodeError(f"op {i}: an appeal op has exactly tok, kind, ep, id")
        if not is_appeal_id(o["id"]):
            raise DecodeError(f"op {i}: an appeal id is {APPEAL_ID_CHARS} lower-case hex digits")
        op = AppealOp(o["tok"], o["kind"], o["ep"], o["id"])
    elif tag == "appeal_decided":
        if keys != _DECIDED_KEYS:
            raise DecodeError(f"op {i}: an appeal_decided op has exactly id, decision")
        if not is_appeal_id(o["id"]) or not isinstance(o["decision"], str):
            raise DecodeError(f"op {i}: id is an appeal id and decision is text")
        return AppealDecidedOp(o["id"], o["decision"])
    else:
        raise DecodeError(f"op {i}: unknown op {tag!r}")
    if not isinstance(op.tok, bytes) or len(op.tok) != TOKEN_BYTES:
        raise DecodeError(f"op {i}: tok must be {TOKEN_BYTES} bytes")
    if not isinstance(op.kind, str) or not _is_int(op.ep) or op.ep < 1:
        raise DecodeError(f"op {i}: kind is text and ep an integer >= 1")
    return op
