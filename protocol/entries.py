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

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, NamedTuple

from contracts.errors import DecodeError, EntryRejected, SignatureError
from protocol import codec
from protocol.cose import Signed1, decode_sign1, sign1, verify_signed1
from protocol.keys import MemberId, MemberKey, check_member_id
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
        # in canonical key order (shorter encoded keys first, then bytewise), so that
        # encoding does not have to copy the map to reorder it
        if self.ref is None:
            return {
                "ep": self.ep,
                "op": "add",
                "cat": self.cat,
                "exp": self.exp,
                "sev": self.sev,
                "tok": self.tok,
                "kind": self.kind,
            }
        return {
            "ep": self.ep,
            "op": "add",
            "cat": self.cat,
            "exp": self.exp,
            "ref": self.ref,
            "sev": self.sev,
            "tok": self.tok,
            "kind": self.kind,
        }


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

    Raises EntryRejected with reason ``too_large`` or ``decode``. An entry in
    the one encoding :func:`build_entry` writes is decoded by
    :func:`decode_entry_lean`; anything else by :func:`decode_entry_generic`,
    which decides (the answer is the same either way).
    """
    raw = _check_size(raw, max_bytes)
    entry = decode_entry_lean(raw)
    if entry is not None:
        return entry
    return _decode_generic(raw)


def decode_entry_generic(raw: bytes, *, max_bytes: int = HARD_MAX_ENTRY_BYTES) -> Entry:
    """:func:`decode_entry` by the generic strict decoder alone (codec.loads, then the shape)."""
    return _decode_generic(_check_size(raw, max_bytes))


def _check_size(raw: object, max_bytes: int) -> bytes:
    if not isinstance(raw, bytes | bytearray):
        raise EntryRejected("decode", "an entry is bytes")
    if len(raw) > min(max_bytes, HARD_MAX_ENTRY_BYTES):
        raise EntryRejected(
            "too_large", f"entry of {len(raw)} bytes is over the limit of {max_bytes}"
        )
    return bytes(raw)


def _decode_generic(raw: bytes) -> Entry:
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
        if of is not None and (not isinstance(of, str) or of not in RETRACTABLE):
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


# --------------------------------------------------------------------------- the lean decoder
#
# decode_entry_lean reads the one encoding build_entry writes without the generic
# walk, proving as it goes that the bytes are the canonical encoding of an entry
# of the right shape -- so that codec.loads and _entry_from_payload would accept
# them and give the same Entry. Anything else, also what the generic decoder
# accepts but build_entry never writes ("v": true), it leaves to
# decode_entry_generic, which then decides (and words every refusal).
#
# * The COSE_Sign1 envelope is compared byte for byte with the only canonical
#   envelope a valid entry can have (the kid checked as check_member_id does).
# * The payload map's fields other than ops are matched by two patterns that
#   admit only the shortest encoding of each integer and length, the keys in
#   canonical order, "v": 1, and a prev of null or 32 bytes.
# * The ops: an op is decoded alone by cbor2 with loads' own options
#   (codec.decode_only), every value checked for its exact type, its keys for
#   the exact set in canonical order, and re-encoded (codec.encode_only): its
#   bytes must be that encoding. Its bytes then serve as a template: a later op
#   whose bytes are the same but for the token's 16 bytes is the same op with
#   that token (a batch of reports of one kind, category, severity and expiry
#   is one template). Many distinct ops in one entry: the whole payload is
#   decoded by cbor2 in one call instead, and checked the same way (every
#   value's type, every map's key order, the re-encoding).

# COSE_Sign1 as sign1 writes it: tag 18, an array of 4, the protected header
# bstr(38) = canonical {1: -8, 4: bstr(32) kid}; then the kid, the empty unprotected
# map, the payload bstr, and bstr(64) the signature.
_SIGN1_HEAD = bytes.fromhex("d2845826a20127045820")
_PROTECTED_AT = 4
_KID_AT = len(_SIGN1_HEAD)
_UNPROTECTED_AT = _KID_AT + 32
_EMPTY_MAP = 0xA0
_PAYLOAD_HEAD_AT = _UNPROTECTED_AT + 1
_SIGNATURE_HEAD = b"\x58\x40"
_SIGNATURE_BYTES = 64
_LEAN_MIN_BYTES = _PAYLOAD_HEAD_AT + 1 + len(_SIGNATURE_HEAD) + _SIGNATURE_BYTES

# The shortest encoding of an unsigned integer (major type 0), and of the head of a
# non-empty array (major type 4, at most 2**32 - 1 items: more cannot fit in 4 MiB).
_UINT = (
    rb"(?:[\x00-\x17]|\x18[\x18-\xff]|\x19[\x01-\xff].|\x1a(?:[\x01-\xff].|\x00[\x01-\xff])..|"
    rb"\x1b(?:[\x01-\xff]...|\x00[\x01-\xff]..|\x00\x00[\x01-\xff].|\x00\x00\x00[\x01-\xff])....)"
)
_ARRAY = rb"(?:[\x81-\x97]|\x98[\x18-\xff]|\x99[\x01-\xff].|\x9a(?:[\x01-\xff].|\x00[\x01-\xff])..)"
# The payload map in canonical key order (v, cv, ts, log, ops, seq, prev): up to the
# ops array's head, and after the ops.
_PAYLOAD_HEAD = re.compile(
    rb"\xa7\x61v\x01\x62cv(" + _UINT + rb")\x62ts(" + _UINT + rb")\x63log\x58\x20(.{32})"
    rb"\x63ops(" + _ARRAY + rb")",
    re.DOTALL,
)
_PAYLOAD_TAIL = re.compile(rb"\x63seq(" + _UINT + rb")\x64prev(\xf6|\x58\x20.{32})", re.DOTALL)
_NULL = b"\xf6"


def _head_value(encoded: bytes) -> int:
    """The argument of a (shortest-form) CBOR head."""
    if len(encoded) == 1:
        return encoded[0] & 0x1F
    return int.from_bytes(encoded[1:], "big")


def _canonical_order(keys: frozenset[str]) -> tuple[str, ...]:
    """Text keys in canonical CBOR order: by the length of their encoding, then bytewise."""
    return tuple(sorted(keys, key=lambda k: (len(k.encode()), k.encode())))


_ENTRY_ORDER = _canonical_order(_ENTRY_KEYS)


def _token_fields(tok: object, kind: object, ep: object) -> bool:
    """Whether an op's token, kind and epoch have the types and bounds every op has."""
    return (
        type(tok) is bytes
        and len(tok) == TOKEN_BYTES
        and type(kind) is str
        and type(ep) is int
        and ep >= 1
    )


def _lean_add(o: dict[str, Any]) -> Op | None:
    tok, kind, ep, cat, sev, exp = o["tok"], o["kind"], o["ep"], o["cat"], o["sev"], o["exp"]
    ref = o.get("ref")
    if ref is not None and (type(ref) is not str or len(ref) > MAX_REF_CHARS):
        return None
    if not (
        o["op"] == "add"
        and _token_fields(tok, kind, ep)
        and type(cat) is str
        and type(sev) is int
        and type(exp) is int
    ):
        return None
    return AddOp(tok, kind, ep, cat, sev, exp, ref)


def _lean_retract(o: dict[str, Any]) -> Op | None:
    tok, kind, ep, why = o["tok"], o["kind"], o["ep"], o["why"]
    of = o.get("of")
    if of is not None and (type(of) is not str or of not in RETRACTABLE):
        return None
    if not (o["op"] == "retract" and _token_fields(tok, kind, ep) and type(why) is str):
        return None
    return RetractOp(tok, kind, ep, why, of)


def _lean_seen(o: dict[str, Any]) -> Op | None:
    tok, kind, ep, exp = o["tok"], o["kind"], o["ep"], o["exp"]
    if not (o["op"] == "seen" and _token_fields(tok, kind, ep) and type(exp) is int):
        return None
    return SeenOp(tok, kind, ep, exp)


def _lean_dispute(o: dict[str, Any]) -> Op | None:
    tok, kind, ep, exp, why = o["tok"], o["kind"], o["ep"], o["exp"], o["why"]
    if not (
        o["op"] == "dispute"
        and _token_fields(tok, kind, ep)
        and type(exp) is int
        and type(why) is str
    ):
        return None
    return DisputeOp(tok, kind, ep, exp, why)


def _lean_appeal(o: dict[str, Any]) -> Op | None:
    tok, kind, ep, appeal_id = o["tok"], o["kind"], o["ep"], o["id"]
    if not (
        o["op"] == "appeal"
        and _token_fields(tok, kind, ep)
        and type(appeal_id) is str
        and is_appeal_id(appeal_id)
    ):
        return None
    return AppealOp(tok, kind, ep, appeal_id)


def _lean_decided(o: dict[str, Any]) -> Op | None:
    appeal_id, decision = o["id"], o["decision"]
    if not (
        o["op"] == "appeal_decided"
        and type(appeal_id) is str
        and is_appeal_id(appeal_id)
        and type(decision) is str
    ):
        return None
    return AppealDecidedOp(appeal_id, decision)


# the keys of an op, in canonical order -> its lean decoder
_LEAN_OPS: dict[tuple[str, ...], Callable[[dict[str, Any]], Op | None]] = {
    _canonical_order(_ADD_KEYS): _lean_add,
    _canonical_order(_ADD_KEYS_REF): _lean_add,
    _canonical_order(_RETRACT_KEYS): _lean_retract,
    _canonical_order(_RETRACT_KEYS_OF): _lean_retract,
    _canonical_order(_SEEN_KEYS): _lean_seen,
    _canonical_order(_DISPUTE_KEYS): _lean_dispute,
    _canonical_order(_APPEAL_KEYS): _lean_appeal,
    _canonical_order(_DECIDED_KEYS): _lean_decided,
}


@dataclass(frozen=True, slots=True)
class _Template:
    """The bytes of one op but for its token's 16 bytes: ``prefix`` + token + ``suffix``.

    An op without a token (appeal_decided) is all ``prefix``, ``tok_at`` -1.
    """

    prefix: bytes
    suffix: bytes
    tok_at: int
    size: int
    op: Op

    def run(self, payload: bytes, pos: int, most: int) -> list[bytes]:
        """The tokens of the ops (at most ``most``) from ``pos`` on that are this template's.

        (For an op without a token, an empty token each.)
        """
        startswith = payload.startswith
        prefix, size, tok_at = self.prefix, self.size, self.tok_at
        if tok_at < 0:
            n = 0
            while n < most and startswith(prefix, pos + n * size):
                n += 1
            return [b""] * n
        suffix, suffix_at = self.suffix, tok_at + TOKEN_BYTES
        toks: list[bytes] = []
        while len(toks) < min(most, 4):  # the first few one by one
            if not (startswith(prefix, pos) and startswith(suffix, pos + suffix_at)):
                return toks
            toks.append(payload[pos + tok_at : pos + suffix_at])
            pos += size
        between = suffix + prefix
        chunk = 8
        while len(toks) < most:
            # the next ops, as many as chunk, in one comparison: their bytes must be
            # prefix + token + suffix each, the tokens taken where this template has them
            k = min(chunk, most - len(toks))
            first = pos + tok_at
            ks = [payload[i : i + TOKEN_BYTES] for i in range(first, first + k * size, size)]
            if startswith(prefix + between.join(ks) + suffix, pos):
                toks += ks
                pos += k * size
                chunk *= 2
                continue
            for tok in ks:  # one of them is not: take those before it
                if not (startswith(prefix, pos) and startswith(suffix, pos + suffix_at)):
                    break
                toks.append(tok)
                pos += size
            break
        return toks

    def ops(self, toks: list[bytes]) -> Iterable[Op]:
        """This template's op with each of ``toks`` in turn (:meth:`run` found them)."""
        op = self.op
        n = len(toks)
        if self.tok_at < 0:
            return [op] * n  # an appeal_decided op is immutable: the same op again
        # the op's fields with each token, made by tuple.__new__ (a NamedTuple is one)
        fields = zip(toks, *(repeat(f, n) for f in op[1:]), strict=False)
        new: Callable[[type[Op], Iterable[Any]], Op] = tuple.__new__
        return map(new, repeat(type(op), n), fields)


def _template(o: dict[str, Any], op: Op, encoded: bytes) -> _Template | None:
    if isinstance(op, AppealDecidedOp):
        return _Template(prefix=encoded, suffix=b"", tok_at=-1, size=len(encoded), op=op)
    keys = tuple(o)
    after = keys[keys.index("tok") + 1 :]
    suffix = b"".join(codec.encode_only(k) + codec.encode_only(o[k]) for k in after)
    tok_at = len(encoded) - len(suffix) - TOKEN_BYTES
    prefix = encoded[:tok_at]
    if not prefix.endswith(b"\x63tok\x50") or encoded[tok_at : tok_at + TOKEN_BYTES] != op[0]:
        return None  # pragma: no cover - the token is where canonical order puts it
    return _Template(prefix=prefix, suffix=suffix, tok_at=tok_at, size=len(encoded), op=op)


# Member ids already checked by check_member_id (a pure function; the check of the
# Ed25519 point is most of the cost of decoding a short entry).
_AUTHORS_CACHED = 4096
_authors: dict[bytes, MemberId] = {}

# An entry counts as too varied for templates (and its payload is decoded whole) past
# this many distinct ops, or when, past this many runs of one template, its runs are
# shorter than this on average.
_MAX_TEMPLATES = 8
_MIN_RUNS = 8
_MIN_RUN_LENGTH = 4


class _TooVaried(Exception):
    """The ops of the entry have too many distinct templates: decode the payload whole."""


def _one_op(payload: bytes, view: memoryview, pos: int) -> tuple[Op, bytes, dict[str, Any]] | None:
    """The op encoded at ``pos``, checked as the comment above says, and its bytes."""
    try:
        o = codec.decode_only(view[pos:])
    except DecodeError:
        return None
    if type(o) is not dict:
        return None
    decode = _LEAN_OPS.get(tuple(o))
    op = None if decode is None else decode(o)
    if op is None:
        return None
    encoded = codec.encode_only(o)
    if not payload.startswith(encoded, pos):
        return None  # an integer or a length not in its shortest form
    return op, encoded, o


def _ops_by_template(payload: bytes, pos: int, count: int) -> tuple[list[Op], int] | None:
    """``count`` ops from ``pos`` on, and the position after them; None: cannot say.

    Raises _TooVaried when the ops are too varied for templates (see above).
    """
    view = memoryview(payload)
    out: list[Op] = []
    templates: list[_Template] = []  # most recently used first
    left = count
    runs = 0
    while left:
        runs += 1
        if runs > _MIN_RUNS and runs * _MIN_RUN_LENGTH > len(out):
            raise _TooVaried  # runs too short to be worth it
        for i, t in enumerate(templates):
            toks = t.run(payload, pos, left)
            if toks:
                out.extend(t.ops(toks))
                pos += len(toks) * t.size
                left -= len(toks)
                if i:
                    templates.insert(0, templates.pop(i))
                break
        else:
            if len(templates) >= _MAX_TEMPLATES:
                raise _TooVaried
            found = _one_op(payload, view, pos)
            if found is None:
                return None
            op, encoded, o = found
            out.append(op)
            pos += len(encoded)
            left -= 1
            t_new = _template(o, op, encoded) if left else None
            if t_new is not None:
                templates.insert(0, t_new)
    return out, pos


def _payload_whole(payload: bytes) -> tuple[list[Op], int, bytes | None] | None:
    """The ops, seq and prev of the payload decoded in one cbor2 call; None: cannot say.

    (Its v, cv, ts and log are those _PAYLOAD_HEAD read: the re-encoding shows
    the payload is canonical, so those bytes encode these values.)
    """
    try:
        p = codec.decode_only(payload)
    except DecodeError:
        return None
    if type(p) is not dict or tuple(p) != _ENTRY_ORDER:
        return None
    ops, seq, prev = p["ops"], p["seq"], p["prev"]
    if type(ops) is not list or not _is_int(seq):
        return None
    if prev is not None and (type(prev) is not bytes or len(prev) != 32):
        return None
    out: list[Op] = []
    lean_ops = _LEAN_OPS
    for o in ops:
        if type(o) is not dict:
            return None
        decode = lean_ops.get(tuple(o))
        if decode is None:
            return None
        op = decode(o)
        if op is None:
            return None
        out.append(op)
    if codec.encode_only(p) != payload:
        return None  # an integer or a length not in its shortest form
    return out, seq, prev


def decode_entry_lean(raw: bytes) -> Entry | None:
    """The entry ``raw`` is, if it is one in the encoding :func:`build_entry` writes.

    None where this decoder cannot say: then :func:`decode_entry_generic`
    decides, and it accepts every entry this one accepts, as the same Entry.
    ``raw`` is bytes within the size limit (:func:`decode_entry` checked).
    """
    n = len(raw)
    if n < _LEAN_MIN_BYTES or not raw.startswith(_SIGN1_HEAD) or raw[_UNPROTECTED_AT] != _EMPTY_MAP:
        return None
    # the payload's byte string head, in its shortest form
    head = raw[_PAYLOAD_HEAD_AT]
    at = _PAYLOAD_HEAD_AT + 1
    if 0x40 <= head <= 0x57:
        size = head - 0x40
    elif head == 0x58:
        size = raw[at]
        at += 1
        if size < 24:
            return None
    elif head == 0x59:
        size = int.from_bytes(raw[at : at + 2], "big")
        at += 2
        if size < 0x100:
            return None
    elif head == 0x5A:
        size = int.from_bytes(raw[at : at + 4], "big")
        at += 4
        if size < 0x10000:
            return None
    else:
        return None  # 8-byte lengths are over the size limit
    end = at + size
    if end + len(_SIGNATURE_HEAD) + _SIGNATURE_BYTES != n or not raw.startswith(
        _SIGNATURE_HEAD, end
    ):
        return None
    kid = raw[_KID_AT:_UNPROTECTED_AT]
    author = _authors.get(kid)
    if author is None:
        try:
            author = check_member_id(kid)
        except DecodeError:
            return None
        if len(_authors) >= _AUTHORS_CACHED:
            _authors.clear()
        _authors[kid] = author
    payload = raw[at:end]
    fields = _PAYLOAD_HEAD.match(payload)
    if fields is None or fields.group(3) != kid:
        return None
    cv, ts = _head_value(fields.group(1)), _head_value(fields.group(2))
    seq: int
    prev: bytes | None
    try:
        found = _ops_by_template(payload, fields.end(), _head_value(fields.group(4)))
        if found is None:
            return None
        ops, pos = found
        tail = _PAYLOAD_TAIL.fullmatch(payload, pos)
        if tail is None:
            return None
        seq = _head_value(tail.group(1))
        prev = None if tail.group(2) == _NULL else tail.group(2)[2:]
    except _TooVaried:
        whole = _payload_whole(payload)
        if whole is None:
            return None
        ops, seq, prev = whole
    if cv < 1 or seq < 1 or (prev is None) != (seq == 1):
        return None
    return Entry(
        raw=raw,
        hash=codec.obj_hash(raw),
        log=author,
        seq=seq,
        prev=prev,
        ts=ts,
        cv=cv,
        ops=tuple(ops),
        signed=Signed1(
            kid=author,
            payload=payload,
            protected=raw[_PROTECTED_AT:_UNPROTECTED_AT],
            signature=raw[end + len(_SIGNATURE_HEAD) :],
        ),
    )
