"""The consortium's rules as code: indicator kinds, taxonomy, data policy, charter.

Pure functions and frozen values; no I/O, no clock, no randomness.
"""

from contracts.charter import (
    Charter,
    EpochInfo,
    Member,
    check_genesis,
    check_successor,
    quorum_size,
)
from contracts.errors import (
    CharterRejected,
    InvalidValue,
    PolicyViolation,
    RiskmeshError,
)
from contracts.indicators import KINDS, Kind, canonical, parse_kind
from contracts.policy import DataPolicy, GossipSettings
from contracts.taxonomy import CATEGORIES, RETRACT_REASONS, SEVERITY_MAX, SEVERITY_MIN

__all__ = [
    "CATEGORIES",
    "KINDS",
    "RETRACT_REASONS",
    "SEVERITY_MAX",
    "SEVERITY_MIN",
    "Charter",
    "CharterRejected",
    "DataPolicy",
    "EpochInfo",
    "GossipSettings",
    "InvalidValue",
    "Kind",
    "Member",
    "PolicyViolation",
    "RiskmeshError",
    "canonical",
    "check_genesis",
    "check_successor",
    "parse_kind",
    "quorum_size",
]
