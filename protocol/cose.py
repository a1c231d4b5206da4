"""COSE_Sign1 and COSE_Sign (RFC 9052) over Ed25519, built on :mod:`protocol.codec`.

Only one shape of each is produced and accepted:

COSE_Sign1 (tag 18)::

    [protected = bstr(canonical {1: -8, 4: kid}), unprotected = {}, payload: bstr, sig: bstr]
    ToBeSigned = ["Signature1", protected, h'', payload]

COSE_Sign (tag 98)::

    [body_protected = h'a0' (canonical {}), unprotected = {}, payload: bstr,
     [[sign_protected = bstr(canonical {1: -8, 4: kid}), {}, sig: bstr], ...]]
    ToBeSigned = ["Signature", body_protected, sign_protected, h'', payload]

The signatures of a COSE_Sign are sorted by kid bytes, each kid at most once,
and there is at least one. Everything is canonical CBOR, so one signed object
has exactly one encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final

from cbor2 import CBORTag

from contracts.errors import DecodeError, LocalProtocolError, SignatureError
from protocol.codec import DEFAULT_MAX_BYTES, dumps, loads
from protocol.keys import (
    SIGNATURE_BYTES,
    MemberId,
    MemberKey,
    check_member_id,
    short_id,
    verify_signature,
)

__all__ = [
    "ALG_EDDSA",
    "HDR_ALG",
    "HDR_KID",
    "TAG_SIGN",
    "TAG_SIGN1",
    "Signed1",
    "SignedMulti",
    "add_signature",
    "decode_sign1",
    "merge_signatures",
    "sign1",
    "sign_multi",
    "verify1",
    "verify_multi",
    "verify_signed1",
]

ALG_EDDSA: Final = -8
HDR_ALG: Final = 1
HDR_KID: Final = 4
TAG_SIGN1: Final = 18
TAG_SIGN: Final = 98

_CONTEXT_SIGN1: Final = "Signature1"
_CONTEXT_SIGN: Final = "Signature"
_EXTERNAL_AAD: Final = b""
_EMPTY_PROTECTED: Final = dumps({})  # b"\xa0"


@dataclass(frozen=True, slots=True, kw_only=True)
class Signed1:
    """A decoded COSE_Sign1: who signed (``kid``), what, and the bytes needed to re-verify."""

    kid: MemberId
    payload: bytes
    protected: bytes
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedMulti:
    """A verified COSE_Sign: the payload and its signers, in encoded (kid) order."""

    payload: bytes
    signers: tuple[MemberId, ...]


@dataclass(frozen=True, slots=True)
class _Signature:
    kid: MemberId
    protected: bytes
    signature: bytes


# --------------------------------------------------------------------------- helpers


def _protected_header(kid: MemberId) -> bytes:
    return dumps({HDR_ALG: ALG_EDDSA, HDR_KID: kid})


def _sig_structure1(protected: bytes, payload: bytes) -> bytes:
    return dumps([_CONTEXT_SIGN1, protected, _EXTERNAL_AAD, payload])


def _sig_structure(body_protected: bytes, sign_protected: bytes, payload: bytes) -> bytes:
    return dumps([_CONTEXT_SIGN, body_protected, sign_protected, _EXTERNAL_AAD, payload])


def _check_payload(payload: object) -> bytes:
    if not isinstance(payload, bytes):
        raise LocalProtocolError(f"COSE payload must be bytes, got {type(payload).__name__}")
    return payload


def _as_tag(data: bytes | CBORTag, tag: int, name: str, max_bytes: int) -> list[Any]:
    """The contents of a COSE tag, from bytes (strictly decoded) or a decoded CBORTag.

    A CBORTag is taken as already decoded (e.g. by :func:`protocol.codec.loads` as part
    of a larger object), so ``max_bytes`` does not apply to it.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        obj: object = loads(bytes(data), max_bytes=max_bytes)
    else:
        obj = data
    if not isinstance(obj, CBORTag):
        raise DecodeError(f"{name}: expected CBOR tag {tag}, got {type(obj).__name__}")
    if obj.tag != tag:
        raise DecodeError(f"{name}: expected CBOR tag {tag}, got tag {obj.tag}")
    value = obj.value
    if not isinstance(value, (list, tuple)):
        raise DecodeError(f"{name}: tag content must be an array")
    if len(value) != 4:
        raise DecodeError(f"{name}: array must have 4 elements, got {len(value)}")
    return list(value)


def _parse_protected(protected: object, where: str) -> MemberId:
    """Check a protected header bstr is canonical {1: -8, 4: kid}; return the kid."""
    if not isinstance(protected, bytes):
        raise DecodeError(f"{where}: protected header must be a byte string")
    try:
        header = loads(protected)
    except DecodeError as exc:
        raise DecodeError(f"{where}: protected header: {exc.message}") from None
    if not isinstance(header, dict):
        raise DecodeError(f"{where}: protected header must be a map")
    if HDR_ALG not in header:
        raise DecodeError(f"{where}: protected header is missing alg")
    alg = header[HDR_ALG]
    if type(alg) is not int or alg != ALG_EDDSA:
        raise DecodeError(f"{where}: unsupported alg (only EdDSA, -8)")
    if HDR_KID not in header:
        raise DecodeError(f"{where}: protected header is missing kid")
    if len(header) != 2:
        raise DecodeError(f"{where}: protected header has unknown labels")
    try:
        return check_member_id(header[HDR_KID])
    except DecodeError as exc:
        raise DecodeError(f"{where}: kid: {exc.message}") from None


def _check_unprotected(unprotected: object, where: str) -> None:
    if not isinstance(unprotected, dict) or unprotected:
        raise DecodeError(f"{where}: unprotected header must be an empty map")


def _check_signature_bytes(signature: object, where: str) -> bytes:
    if not isinstance(signature, bytes):
        raise DecodeError(f"{where}: signature must be a byte string")
    if len(signature) != SIGNATURE_BYTES:
        raise DecodeError(f"{where}: signature must be {SIGNATURE_BYTES} bytes")
    return signature


def _check_payload_bytes(payload: object, where: str) -> bytes:
    if not isinstance(payload, bytes):
        raise DecodeError(f"{where}: payload must be a byte string (no detached payloads)")
    return payload


# --------------------------------------------------------------------------- COSE_Sign1


def sign1(payload: bytes, key: MemberKey) -> bytes:
    """Encode ``payload`` as a COSE_Sign1 signed by ``key``."""
    payload = _check_payload(payload)
    protected = _protected_header(key.id)
    signature = key.sign(_sig_structure1(protected, payload))
    return dumps(CBORTag(TAG_SIGN1, [protected, {}, payload, signature]))


def decode_sign1(data: bytes | CBORTag, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Signed1:
    """Decode a COSE_Sign1 and check its shape; does NOT check the signature."""
    where = "COSE_Sign1"
    protected, unprotected, payload, signature = _as_tag(data, TAG_SIGN1, where, max_bytes)
    kid = _parse_protected(protected, where)
    _check_unprotected(unprotected, where)
    return Signed1(
        kid=kid,
        payload=_check_payload_bytes(payload, where),
        protected=protected,
        signature=_check_signature_bytes(signature, where),
    )


def verify_signed1(s: Signed1) -> None:
    """Check the signature of a decoded COSE_Sign1; SignatureError if it does not verify."""
    verify_signature(s.kid, _sig_structure1(s.protected, s.payload), s.signature)


def verify1(data: bytes | CBORTag, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Signed1:
    """Decode a COSE_Sign1 and verify its signature."""
    s = decode_sign1(data, max_bytes=max_bytes)
    verify_signed1(s)
    return s


# --------------------------------------------------------------------------- COSE_Sign


def _encode_multi(payload: bytes, signatures: Sequence[_Signature]) -> bytes:
    ordered = sorted(signatures, key=lambda s: s.kid)
    return dumps(
        CBORTag(
            TAG_SIGN,
            [
                _EMPTY_PROTECTED,
                {},
                payload,
                [[s.protected, {}, s.signature] for s in ordered],
            ],
        )
    )


def _new_signature(payload: bytes, key: MemberKey) -> _Signature:
    protected = _protected_header(key.id)
    signature = key.sign(_sig_structure(_EMPTY_PROTECTED, protected, payload))
    return _Signature(kid=key.id, protected=protected, signature=signature)


def _decode_multi(data: bytes | CBORTag, max_bytes: int) -> tuple[bytes, list[_Signature]]:
    where = "COSE_Sign"
    body_protected, unprotected, payload, signatures = _as_tag(data, TAG_SIGN, where, max_bytes)
    if body_protected != _EMPTY_PROTECTED:
        raise DecodeError(f"{where}: body protected header must be the empty map h'a0'")
    _check_unprotected(unprotected, where)
    payload = _check_payload_bytes(payload, where)
    if not isinstance(signatures, (list, tuple)):
        raise DecodeError(f"{where}: signatures must be an array")
    if not signatures:
        raise DecodeError(f"{where}: no signatures")
    out: list[_Signature] = []
    for i, item in enumerate(signatures):
        at = f"{where} signature {i}"
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise DecodeError(f"{at}: must be an array of 3 elements")
        protected, sig_unprotected, signature = item
        kid = _parse_protected(protected, at)
        _check_unprotected(sig_unprotected, at)
        out.append(
            _Signature(
                kid=kid, protected=protected, signature=_check_signature_bytes(signature, at)
            )
        )
    kids = [s.kid for s in out]
    if len(set(kids)) != len(kids):
        raise DecodeError(f"{where}: the same signer appears more than once")
    if any(a > b for a, b in pairwise(kids)):
        raise DecodeError(f"{where}: signatures are not sorted by kid")
    return payload, out


def _verify_all(payload: bytes, signatures: Sequence[_Signature]) -> None:
    for s in signatures:
        try:
            verify_signature(
                s.kid, _sig_structure(_EMPTY_PROTECTED, s.protected, payload), s.signature
            )
        except SignatureError:
            raise SignatureError(
                f"COSE_Sign: signature by {short_id(s.kid)} does not verify"
            ) from None


def sign_multi(payload: bytes, keys: Sequence[MemberKey]) -> bytes:
    """Encode ``payload`` as a COSE_Sign signed by every key (each signer once)."""
    payload = _check_payload(payload)
    if not keys:
        raise LocalProtocolError("COSE_Sign needs at least one signing key")
    by_kid: dict[MemberId, MemberKey] = {}
    for key in keys:
        by_kid.setdefault(key.id, key)
    return _encode_multi(payload, [_new_signature(payload, k) for k in by_kid.values()])


def verify_multi(data: bytes | CBORTag, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SignedMulti:
    """Decode a COSE_Sign and verify every signature on it."""
    payload, signatures = _decode_multi(data, max_bytes)
    _verify_all(payload, signatures)
    return SignedMulti(payload=payload, signers=tuple(s.kid for s in signatures))


def add_signature(data: bytes, key: MemberKey) -> bytes:
    """Verify a COSE_Sign, then add ``key``'s signature (unchanged if it already signed)."""
    payload, signatures = _decode_multi(data, DEFAULT_MAX_BYTES)
    _verify_all(payload, signatures)
    if any(s.kid == key.id for s in signatures):
        return bytes(data)
    return _encode_multi(payload, [*signatures, _new_signature(payload, key)])


def merge_signatures(a: bytes, b: bytes) -> bytes:
    """One COSE_Sign with every signature of ``a`` and ``b`` (same payload, all verified).

    Raises DecodeError if the payloads differ, SignatureError if any signature
    fails to verify.
    """
    payload_a, sigs_a = _decode_multi(a, DEFAULT_MAX_BYTES)
    payload_b, sigs_b = _decode_multi(b, DEFAULT_MAX_BYTES)
    if payload_a != payload_b:
        raise DecodeError("COSE_Sign: cannot merge signatures over different payloads")
    _verify_all(payload_a, sigs_a)
    _verify_all(payload_b, sigs_b)
    by_kid = {s.kid: s for s in sigs_a}
    for s in sigs_b:
        by_kid.setdefault(s.kid, s)
    if len(by_kid) == len(sigs_a):
        return bytes(a)
    return _encode_multi(payload_a, list(by_kid.values()))
