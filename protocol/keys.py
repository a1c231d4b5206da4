"""Member identities and signing keys (Ed25519 via PyNaCl).

A member is identified by its Ed25519 public key (:data:`MemberId`, 32 bytes).
Its text form is lowercase unpadded base32 (52 characters); :func:`short_id`
(the first 8 characters) is what logs show.

:class:`MemberKey` holds a member's signing key. Its ``repr``/``str`` show only
the short id, and it refuses to be pickled, so the seed never leaks through
logging or serialisation by accident.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final, NewType, NoReturn

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from contracts.errors import DecodeError, LocalProtocolError, SignatureError

__all__ = [
    "MEMBER_ID_BYTES",
    "MEMBER_ID_TEXT_LEN",
    "SIGNATURE_BYTES",
    "MemberId",
    "MemberKey",
    "check_member_id",
    "member_id_text",
    "parse_member_id",
    "short_id",
    "verify_signature",
    "x25519_public",
]

MemberId = NewType("MemberId", bytes)

MEMBER_ID_BYTES: Final = 32
MEMBER_ID_TEXT_LEN: Final = 52
SIGNATURE_BYTES: Final = 64
SEED_BYTES: Final = 32
SHORT_ID_LEN: Final = 8

_B32_ALPHABET: Final = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_VERIFY_CACHE_MAX: Final = 4096
_verify_keys: dict[bytes, nacl.signing.VerifyKey] = {}


# --------------------------------------------------------------------------- identities


def member_id_text(mid: bytes) -> str:
    """Lowercase unpadded base32 of a 32-byte member id (52 characters)."""
    if not isinstance(mid, bytes) or len(mid) != MEMBER_ID_BYTES:
        raise LocalProtocolError("a member id is 32 bytes")
    return base64.b32encode(mid).decode("ascii").rstrip("=").lower()


def short_id(mid: bytes) -> str:
    """The first 8 characters of the text form, for logs."""
    return member_id_text(mid)[:SHORT_ID_LEN]


def parse_member_id(text: str) -> MemberId:
    """Inverse of :func:`member_id_text`; DecodeError unless ``text`` is exactly that form.

    Only the canonical form is accepted: lowercase, no padding, no whitespace,
    and unused trailing bits zero, so every member has exactly one text form.
    The id must also be a valid Ed25519 public key.
    """
    if not isinstance(text, str):
        raise DecodeError("member id text must be a string")
    if len(text) != MEMBER_ID_TEXT_LEN:
        raise DecodeError(
            f"member id text must be {MEMBER_ID_TEXT_LEN} characters, got {len(text)}"
        )
    if not _B32_ALPHABET.issuperset(text):
        raise DecodeError("member id text must be lowercase base32 (a-z, 2-7)")
    try:
        raw = base64.b32decode(text.upper() + "====")
    except (binascii.Error, ValueError):  # pragma: no cover - alphabet checked above
        raise DecodeError("member id text is not valid base32") from None
    if len(raw) != MEMBER_ID_BYTES or member_id_text(raw) != text:
        raise DecodeError("member id text is not the canonical form of 32 bytes")
    return check_member_id(raw)


def check_member_id(value: object) -> MemberId:
    """``value`` as a MemberId: 32 bytes encoding a valid Ed25519 point, else DecodeError."""
    if not isinstance(value, bytes):
        raise DecodeError(f"member id must be bytes, got {type(value).__name__}")
    if len(value) != MEMBER_ID_BYTES:
        raise DecodeError(f"member id must be 32 bytes, got {len(value)}")
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(value):
        raise DecodeError("member id is not a valid Ed25519 public key")
    return MemberId(bytes(value))


# --------------------------------------------------------------------------- verification


def _verify_key(mid: bytes) -> nacl.signing.VerifyKey:
    vk = _verify_keys.get(mid)
    if vk is None:
        vk = nacl.signing.VerifyKey(mid)
        if len(_verify_keys) >= _VERIFY_CACHE_MAX:
            # Bounded: drop the oldest entry (dicts keep insertion order).
            _verify_keys.pop(next(iter(_verify_keys), b""), None)
        _verify_keys[bytes(mid)] = vk
    return vk


def verify_signature(mid: bytes, message: bytes, signature: bytes) -> None:
    """Check a detached Ed25519 signature by member ``mid``; SignatureError if it fails."""
    if not isinstance(mid, bytes) or len(mid) != MEMBER_ID_BYTES:
        raise SignatureError("signer id is not 32 bytes")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise SignatureError(f"signature by {short_id(mid)} is not {SIGNATURE_BYTES} bytes")
    if not isinstance(message, bytes):
        raise SignatureError("signed message must be bytes")
    try:
        _verify_key(mid).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise SignatureError(f"signature by {short_id(mid)} does not verify") from None


def x25519_public(mid: bytes) -> bytes:
    """The X25519 public key derived from member ``mid`` (for sealed boxes / Box)."""
    if not isinstance(mid, bytes) or len(mid) != MEMBER_ID_BYTES:
        raise DecodeError("member id must be 32 bytes")
    try:
        out: bytes = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(mid)
    except Exception:
        raise DecodeError("member id cannot be converted to an X25519 key") from None
    return out


# --------------------------------------------------------------------------- signing key


class MemberKey:
    """A member's Ed25519 signing key. Never shows its seed in repr/str; not picklable."""

    __slots__ = ("_id", "_signing_key")

    _signing_key: nacl.signing.SigningKey
    _id: MemberId

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        if not isinstance(signing_key, nacl.signing.SigningKey):
            raise LocalProtocolError("MemberKey needs a nacl.signing.SigningKey")
        self._signing_key = signing_key
        self._id = MemberId(bytes(signing_key.verify_key))

    @classmethod
    def generate(cls) -> MemberKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> MemberKey:
        """The key for a 32-byte seed (RFC 8032 "secret key")."""
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise LocalProtocolError(f"a member key seed is {SEED_BYTES} bytes")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def id(self) -> MemberId:
        return self._id

    def seed(self) -> bytes:
        """The 32-byte seed, for the node to store in its key file. Handle with care."""
        return bytes(self._signing_key)

    def sign(self, message: bytes) -> bytes:
        """Raw 64-byte detached Ed25519 signature of ``message``."""
        if not isinstance(message, bytes):
            raise LocalProtocolError("can only sign bytes")
        signature: bytes = self._signing_key.sign(message).signature
        return signature

    def x25519_private(self) -> nacl.public.PrivateKey:
        # SigningKey.to_curve25519_private_key = crypto_sign_ed25519_sk_to_curve25519
        return self._signing_key.to_curve25519_private_key()

    def x25519_public(self) -> nacl.public.PublicKey:
        return nacl.public.PublicKey(x25519_public(self._id))

    def __repr__(self) -> str:
        return f"MemberKey({short_id(self._id)})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemberKey):
            return NotImplemented
        return self._id == other._id

    def __hash__(self) -> int:
        return hash((MemberKey, self._id))

    # A MemberKey is immutable: copies may share it, and it is never serialised.
    def __copy__(self) -> MemberKey:
        return self

    def __deepcopy__(self, memo: object) -> MemberKey:
        return self

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("MemberKey cannot be pickled (it holds a secret seed)")

    def __getstate__(self) -> NoReturn:
        raise TypeError("MemberKey cannot be pickled (it holds a secret seed)")
