"""Sealed appeal items: a data subject's case for the reporters, a decision note back.

A member whose customer appeals publishes an ``appeal`` op on the token in its
own feed (public: every node shows the report as under appeal). What the
customer wrote travels apart, sealed, as a gossip item like a key grant — but
addressed **by value, not by member**: the appellant's node never needs to
know, and never computes, who the reporters are.

**The case key.** Whoever knows an identifier's canonical value and holds the
consortium's epoch key can compute::

    case_key = BLAKE2b(digest_size=32, key=K[ep], person="rm-appeal-v1",
                       data=kind NUL canonical)

The appellant knows the value (its customer's); a reporter knows it (it keeps
its own reported values, sealed, to republish them after a key rotation).
A member that neither reported nor otherwise holds the value has only the
token, from which the key cannot be derived.

**Case item** (kind ``a``): a COSE_Sign1 by the appellant over::

    {"v": 1, "id": appeal id, "tok", "kind", "ep", "ts", "box"}

``box`` is a SecretBox under the case key holding ``{"case_ref", "grounds"}``.
Every node relays it; a node whose member has a live report of ``tok`` opens
it with the case key made from its own sealed copy of the value, and lists
the appeal as inbound. No member id but the appellant's is in it.

**Note item** (kind ``n``): the decision note for the appellant, a plain
(unsigned) map::

    {"v": 1, "id": appeal id, "to": appellant, "ts", "box"}

``box`` is a sealed box (an anonymous sender) to the appellant's X25519 key
holding ``{"decision", "note", "tag"}``, where ``tag`` is a keyed BLAKE2b
under the case key of ``[id, decision, note]``: the appellant knows a note
came from someone who holds the value (a reporter), and the note names no
reporter. The public ``appeal_decided`` op in the reporter's own feed is what
every node counts; the note only carries the words.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import nacl.exceptions
import nacl.public
import nacl.secret

from contracts.errors import AppealItemRejected, DecodeError, SignatureError
from contracts.taxonomy import APPEAL_DECISIONS
from protocol import codec
from protocol.cose import sign1, verify1
from protocol.entries import is_appeal_id
from protocol.keys import MemberId, MemberKey, check_member_id, x25519_public
from protocol.tokens import EPOCH_KEY_BYTES, TOKEN_BYTES

__all__ = [
    "CASE",
    "MAX_CASE_ITEM_BYTES",
    "MAX_CASE_REF_CHARS",
    "MAX_GROUNDS_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_NOTE_ITEM_BYTES",
    "NOTE",
    "AppealCase",
    "AppealNote",
    "case_key",
    "decode_case",
    "decode_note",
    "make_case",
    "make_note",
    "new_appeal_id",
    "open_case",
    "open_note",
]

#: The gossip item kinds.
CASE = "a"
NOTE = "n"

MAX_CASE_REF_CHARS = 64
MAX_GROUNDS_CHARS = 4000
MAX_NOTE_CHARS = 2000
MAX_CASE_ITEM_BYTES = 24 * 1024
MAX_NOTE_ITEM_BYTES = 12 * 1024

_PERSON = b"rm-appeal-v1"
_TAG_PERSON = b"rm-appeal-tag1"


def case_key(epoch_key: bytes, kind: str, canonical: str) -> bytes:
    """The key that seals an appeal on the value ``canonical`` of ``kind`` under an epoch."""
    if len(epoch_key) != EPOCH_KEY_BYTES:
        raise ValueError("an epoch key is 32 bytes")
    return hashlib.blake2b(
        f"{kind}\x00{canonical}".encode(), digest_size=32, key=epoch_key, person=_PERSON
    ).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class AppealCase:
    raw: bytes
    hash: bytes
    appellant: MemberId
    id: str
    tok: bytes
    kind: str
    ep: int
    ts: int
    box: bytes

    def __repr__(self) -> str:
        return f"AppealCase(id={self.id}, ep={self.ep})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppealNote:
    raw: bytes
    hash: bytes
    id: str
    to: MemberId
    ts: int
    box: bytes

    def __repr__(self) -> str:
        return f"AppealNote(id={self.id})"


def _text(v: object, limit: int, what: str) -> str:
    if not isinstance(v, str) or len(v) > limit:
        raise AppealItemRejected("bad_appeal_item", f"{what} is text of at most {limit} characters")
    return v


def make_case(
    appellant: MemberKey,
    *,
    appeal_id: str,
    tok: bytes,
    kind: str,
    ep: int,
    ts: int,
    key: bytes,
    case_ref: str,
    grounds: str,
) -> bytes:
    """Seal ``case_ref`` and ``grounds`` under the case ``key`` and sign the item."""
    _text(case_ref, MAX_CASE_REF_CHARS, "case_ref")
    _text(grounds, MAX_GROUNDS_CHARS, "grounds")
    inner = codec.dumps({"case_ref": case_ref, "grounds": grounds})
    box = bytes(nacl.secret.SecretBox(key).encrypt(inner))
    payload = {"v": 1, "id": appeal_id, "tok": tok, "kind": kind, "ep": ep, "ts": ts, "box": box}
    return sign1(codec.dumps(payload), appellant)


def decode_case(raw: bytes) -> AppealCase:
    """Check a case item's signature and shape (not whether its signer may appeal)."""
    if not isinstance(raw, bytes) or len(raw) > MAX_CASE_ITEM_BYTES:
        raise AppealItemRejected("bad_appeal_item", "an appeal case item is at most 24 KiB")
    try:
        s = verify1(raw, max_bytes=MAX_CASE_ITEM_BYTES)
        p = codec.loads(s.payload, max_bytes=MAX_CASE_ITEM_BYTES)
    except (DecodeError, SignatureError) as e:
        raise AppealItemRejected("bad_appeal_item", f"bad appeal case: {e.message}") from None
    if not isinstance(p, dict) or p.keys() != {"v", "id", "tok", "kind", "ep", "ts", "box"}:
        raise AppealItemRejected(
            "bad_appeal_item", "an appeal case is a map of exactly v, id, tok, kind, ep, ts, box"
        )
    if (
        p["v"] != 1
        or not is_appeal_id(p["id"])
        or not isinstance(p["tok"], bytes)
        or len(p["tok"]) != TOKEN_BYTES
        or not isinstance(p["kind"], str)
        or type(p["ep"]) is not int
        or p["ep"] < 1
        or type(p["ts"]) is not int
        or not isinstance(p["box"], bytes)
    ):
        raise AppealItemRejected("bad_appeal_item", "an appeal case's fields have the wrong types")
    return AppealCase(
        raw=raw,
        hash=codec.obj_hash(raw),
        appellant=s.kid,
        id=p["id"],
        tok=p["tok"],
        kind=p["kind"],
        ep=p["ep"],
        ts=p["ts"],
        box=p["box"],
    )


def open_case(case: AppealCase, key: bytes) -> tuple[str, str]:
    """``(case_ref, grounds)`` of a case, opened with the case key of its value."""
    try:
        inner = nacl.secret.SecretBox(key).decrypt(case.box)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise AppealItemRejected("not_openable", "the case does not open with this key") from None
    try:
        m = codec.loads(inner)
    except DecodeError as e:
        raise AppealItemRejected("bad_appeal_item", f"appeal case box: {e.message}") from None
    if not isinstance(m, dict) or m.keys() != {"case_ref", "grounds"}:
        raise AppealItemRejected("bad_appeal_item", "an appeal case box holds case_ref, grounds")
    return (
        _text(m["case_ref"], MAX_CASE_REF_CHARS, "case_ref"),
        _text(m["grounds"], MAX_GROUNDS_CHARS, "grounds"),
    )


def _tag(key: bytes, appeal_id: str, decision: str, note: str) -> bytes:
    return hashlib.blake2b(
        codec.dumps([appeal_id, decision, note]), digest_size=32, key=key, person=_TAG_PERSON
    ).digest()


def make_note(*, appeal_id: str, to: bytes, ts: int, decision: str, note: str, key: bytes) -> bytes:
    """Seal a decision and its note to the appellant ``to``; ``key`` is the case key."""
    if decision not in APPEAL_DECISIONS:
        raise AppealItemRejected("bad_appeal_item", "a decision is upheld or rejected")
    _text(note, MAX_NOTE_CHARS, "note")
    inner = codec.dumps(
        {"decision": decision, "note": note, "tag": _tag(key, appeal_id, decision, note)}
    )
    box = nacl.public.SealedBox(nacl.public.PublicKey(x25519_public(to))).encrypt(inner)
    return codec.dumps({"v": 1, "id": appeal_id, "to": to, "ts": ts, "box": bytes(box)})


def decode_note(raw: bytes) -> AppealNote:
    """Check a note item's shape (it is unsigned: the tag inside authenticates it)."""
    if not isinstance(raw, bytes) or len(raw) > MAX_NOTE_ITEM_BYTES:
        raise AppealItemRejected("bad_appeal_item", "an appeal note item is at most 12 KiB")
    try:
        p = codec.loads(raw, max_bytes=MAX_NOTE_ITEM_BYTES)
    except DecodeError as e:
        raise AppealItemRejected("bad_appeal_item", f"bad appeal note: {e.message}") from None
    if not isinstance(p, dict) or p.keys() != {"v", "id", "to", "ts", "box"} or p["v"] != 1:
        raise AppealItemRejected(
            "bad_appeal_item", "an appeal note is a map of exactly v=1, id, to, ts, box"
        )
    try:
        to = check_member_id(p["to"])
    except DecodeError as e:
        raise AppealItemRejected("bad_appeal_item", f"appeal note: {e.message}") from None
    if not is_appeal_id(p["id"]) or type(p["ts"]) is not int or not isinstance(p["box"], bytes):
        raise AppealItemRejected("bad_appeal_item", "an appeal note's fields have the wrong types")
    return AppealNote(
        raw=raw, hash=codec.obj_hash(raw), id=p["id"], to=to, ts=p["ts"], box=p["box"]
    )


def open_note(note: AppealNote, me: MemberKey, key: bytes) -> tuple[str, str]:
    """``(decision, note)`` of a note addressed to ``me``, checked with the case ``key``."""
    if note.to != me.id:
        raise AppealItemRejected("not_openable", "this note is addressed to another member")
    try:
        inner = nacl.public.SealedBox(me.x25519_private()).decrypt(note.box)
        m = codec.loads(inner)
    except (nacl.exceptions.CryptoError, DecodeError):
        raise AppealItemRejected("bad_appeal_item", "the note does not open") from None
    if not isinstance(m, dict) or m.keys() != {"decision", "note", "tag"}:
        raise AppealItemRejected("bad_appeal_item", "a note box holds decision, note, tag")
    decision = m["decision"]
    text = _text(m["note"], MAX_NOTE_CHARS, "note")
    if decision not in APPEAL_DECISIONS or not isinstance(m["tag"], bytes):
        raise AppealItemRejected("bad_appeal_item", "a note's decision or tag is malformed")
    if not hmac.compare_digest(m["tag"], _tag(key, note.id, decision, text)):
        raise AppealItemRejected(
            "bad_appeal_item", "the note's tag does not check: not from a holder of the value"
        )
    return decision, text


def new_appeal_id(random_bytes: bytes) -> str:
    """An appeal id from 8 random bytes (the caller supplies the randomness)."""
    if len(random_bytes) != 8:
        raise ValueError("an appeal id is made from 8 random bytes")
    return random_bytes.hex()
