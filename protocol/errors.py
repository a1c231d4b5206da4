"""The error tree (defined in :mod:`contracts.errors`, re-exported here)."""

from contracts.errors import (
    CharterRejected,
    DecodeError,
    EntryRejected,
    InvalidValue,
    LocalProtocolError,
    PolicyViolation,
    ProtocolError,
    RemoteProtocolError,
    RiskmeshError,
    SignatureError,
    StoreError,
)

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
