"""Sealed key grants: an admin hands the epoch keys to one member.

A grant is a COSE_Sign1 signed by an admin over::

    {"v": 1, "to": member id, "cv": charter version, "ts": ms, "box": sealed}

where ``box`` is a NaCl sealed box to the recipient's X25519 key (derived
from its Ed25519 identity) holding ``{"keys": [{"ep", "key"}, ...]}``. Anyone
can check who issued a grant and to whom; only the recipient can open it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import nacl.exceptions
import nacl.public

from contracts.errors import DecodeError, GrantRejected, SignatureError
from protocol import codec
from protocol.charter_chain import CharterChain
from protocol.cose import sign1, verify1
from protocol.keys import MemberId, MemberKey, check_member_id, x25519_public
from protocol.tokens import EPOCH_KEY_BYTES

__all__ = ["Grant", "GrantRejected", "check_grant", "decode_grant", "make_grant", "open_grant"]

MAX_GRANT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    raw: bytes
    hash: bytes
    issuer: MemberId
    to: MemberId
    cv: int
    ts: int
    box: bytes

    def __repr__(self) -> str:
        return f"Grant(issuer={self.issuer.hex()[:8]}, to={self.to.hex()[:8]}, cv={self.cv})"


def make_grant(
    admin: MemberKey, to: bytes, keys: Mapping[int, bytes], *, cv: int, ts: int
) -> bytes:
    """Seal ``keys`` (epoch -> key) to member ``to`` and sign the grant as ``admin``."""
    inner = codec.dumps({"keys": [{"ep": ep, "key": keys[ep]} for ep in sorted(keys)]})
    box = nacl.public.SealedBox(nacl.public.PublicKey(x25519_public(to))).encrypt(inner)
    payload = codec.dumps({"v": 1, "to": to, "cv": cv, "ts": ts, "box": bytes(box)})
    return sign1(payload, admin)


def decode_grant(raw: bytes) -> Grant:
    """Check the issuer's signature and the grant's shape (not who may issue it)."""
    try:
        s = verify1(raw, max_bytes=MAX_GRANT_BYTES)
        p = codec.loads(s.payload, max_bytes=MAX_GRANT_BYTES)
    except (DecodeError, SignatureError) as e:
        raise GrantRejected(f"bad grant: {e.message}") from None
    if not isinstance(p, dict) or p.keys() != {"v", "to", "cv", "ts", "box"} or p["v"] != 1:
        raise GrantRejected("bad grant: payload must be a map of exactly v=1, to, cv, ts, box")
    try:
        to = check_member_id(p["to"])
    except DecodeError as e:
        raise GrantRejected(f"bad grant: {e.message}") from None
    if type(p["cv"]) is not int or type(p["ts"]) is not int or not isinstance(p["box"], bytes):
        raise GrantRejected("bad grant: cv and ts are integers and box is bytes")
    return Grant(
        raw=raw, hash=codec.obj_hash(raw), issuer=s.kid, to=to, cv=p["cv"], ts=p["ts"], box=p["box"]
    )


def check_grant(grant: Grant, chain: CharterChain) -> None:
    """Raise GrantRejected unless the issuer is an admin and the recipient a member under cv."""
    charter = chain.get(grant.cv)
    if charter is None:
        raise GrantRejected(f"grant cites unknown charter version {grant.cv}")
    if grant.issuer not in charter.admins():
        raise GrantRejected("grant issuer is not an admin under the charter it cites")
    if not charter.is_active(grant.to):
        raise GrantRejected("grant recipient is not an active member under the charter it cites")


def open_grant(grant: Grant, key: MemberKey) -> dict[int, bytes]:
    """Open a grant addressed to ``key``; return epoch -> key."""
    if grant.to != key.id:
        raise GrantRejected("this grant is addressed to another member")
    try:
        inner = nacl.public.SealedBox(key.x25519_private()).decrypt(grant.box)
    except nacl.exceptions.CryptoError:
        raise GrantRejected("grant box does not open with this member's key") from None
    try:
        m = codec.loads(inner)
    except DecodeError as e:
        raise GrantRejected(f"grant box content: {e.message}") from None
    if not isinstance(m, dict) or m.keys() != {"keys"} or not isinstance(m["keys"], list):
        raise GrantRejected("grant box must hold a map with a list of keys")
    out: dict[int, bytes] = {}
    for item in m["keys"]:
        if (
            not isinstance(item, dict)
            or item.keys() != {"ep", "key"}
            or type(item["ep"]) is not int
            or not isinstance(item["key"], bytes)
            or len(item["key"]) != EPOCH_KEY_BYTES
        ):
            raise GrantRejected("grant box key items are {ep: int, key: 32 bytes}")
        out[item["ep"]] = item["key"]
    return out
