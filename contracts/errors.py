"""The riskmesh error tree.

Every error riskmesh raises on purpose is one of these::

    RiskmeshError
    ├── InvalidValue              a raw identifier that does not fit its kind
    ├── PolicyViolation           against the charter's data policy
    ├── CharterRejected           a charter version that may not follow its predecessor
    ├── ProtocolError
    │   ├── LocalProtocolError    we were asked to do something wrong
    │   └── RemoteProtocolError   a peer sent something wrong
    │       ├── DecodeError       bytes that are not strict canonical CBOR of the right shape
    │       ├── SignatureError    a COSE signature that does not verify
    │       └── EntryRejected     a feed entry refused by the validation order (has a ``reason``)
    └── StoreError                the store could not do what was asked

Errors carry a short machine-readable ``code`` (used by the HTTP API and the
metrics) and a human message. No error message ever contains a key or a raw
identifier that the caller did not already hold.
"""

from __future__ import annotations

__all__ = [
    "CharterRejected",
    "DecodeError",
    "EntryRejected",
    "InvalidValue",
    "LocalProtocolError",
    "PolicyViolation",
    "ProtocolError",
    "RemoteProtocolError",
    "RiskmeshError",
    "SignatureError",
    "StoreError",
]


class RiskmeshError(Exception):
    """Base of every error riskmesh raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidValue(RiskmeshError):
    """A raw identifier that does not fit its kind.

    ``kind`` names the indicator kind and ``rule`` the rule that was broken
    (e.g. ``"luhn"``, ``"e164"``). The message never repeats the raw value.
    """

    code = "invalid_value"

    def __init__(self, kind: str, rule: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.rule = rule


class PolicyViolation(RiskmeshError):
    """Something the charter's data policy does not allow."""

    code = "policy_violation"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class CharterRejected(RiskmeshError):
    """A charter version that may not follow its predecessor (``reason`` says why)."""

    code = "charter_rejected"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProtocolError(RiskmeshError):
    code = "protocol_error"


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow."""

    code = "local_protocol_error"


class RemoteProtocolError(ProtocolError):
    """A peer (or a stored object from one) sent something wrong."""

    code = "remote_protocol_error"


class DecodeError(RemoteProtocolError):
    """Bytes that are not strict canonical CBOR, or not of the expected shape."""

    code = "decode_error"


class SignatureError(RemoteProtocolError):
    """A signature that does not verify, or a signed object built wrongly."""

    code = "bad_signature"


class EntryRejected(RemoteProtocolError):
    """A feed entry refused by the validation order of DESIGN §6.

    ``reason`` is one of :data:`protocol.entries.REJECT_REASONS`.
    """

    code = "entry_rejected"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StoreError(RiskmeshError):
    code = "store_error"
