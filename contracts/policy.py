"""The consortium's data policy, carried in the charter.

The policy says which indicator kinds and fraud categories may be shared, how
long a report may live per category, how big an entry may be, whether a
verdict names its reporters or only counts them, what clock skew is tolerated,
what happens to the reports of a removed member, and the default gossip
settings. :meth:`DataPolicy.check_add` and :meth:`DataPolicy.check_retract`
decide a single op; every node reaches the same verdict from the same policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.errors import DecodeError, PolicyViolation
from contracts.indicators import KINDS
from contracts.taxonomy import CATEGORIES, check_category, check_reason, check_severity

__all__ = ["DAY_MS", "DEFAULT_MAX_TTL_DAYS", "DataPolicy", "GossipSettings"]

DAY_MS = 86_400_000

#: Default maximum time to live per category, in days. CIFAS keeps markers up
#: to six years; fast-moving abuse (promotions, devices) ages out sooner.
DEFAULT_MAX_TTL_DAYS: dict[str, int] = {
    **{c: 6 * 365 for c in CATEGORIES},
    "promotion_abuse": 180,
    "device_risk": 365,
    "multi_lending": 2 * 365,
    "other": 365,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipSettings:
    """Default gossip settings a node starts from (node config may override)."""

    interval_ms: int = 2_000
    fanout: int = 3
    frame_bytes: int = 1_048_576

    def to_map(self) -> dict[str, Any]:
        return {
            "interval_ms": self.interval_ms,
            "fanout": self.fanout,
            "frame_bytes": self.frame_bytes,
        }

    @classmethod
    def from_map(cls, m: object) -> GossipSettings:
        d = _expect_map(m, "policy.gossip", {"interval_ms", "fanout", "frame_bytes"})
        return cls(
            interval_ms=_pos_int(d, "interval_ms", "policy.gossip"),
            fanout=_pos_int(d, "fanout", "policy.gossip"),
            frame_bytes=_pos_int(d, "frame_bytes", "policy.gossip"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DataPolicy:
    kinds: frozenset[str] = frozenset(KINDS)
    categories: frozenset[str] = frozenset(CATEGORIES)
    max_ttl_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_TTL_DAYS))
    max_ops: int = 1000
    max_entry_bytes: int = 256 * 1024
    disclose_reporters: bool = True
    clock_skew_ms: int = 300_000
    keep_reports_of_removed: bool = True
    gossip: GossipSettings = field(default_factory=GossipSettings)

    def __post_init__(self) -> None:
        unknown_kinds = self.kinds - KINDS
        if unknown_kinds:
            raise PolicyViolation(
                "bad_policy", f"policy names unknown kinds {sorted(unknown_kinds)}"
            )
        for c in self.categories:
            check_category(c)
        for c in self.categories:
            ttl = self.max_ttl_days.get(c)
            if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
                raise PolicyViolation("bad_policy", f"policy has no positive max TTL for {c!r}")
        if self.max_ops < 1 or self.max_entry_bytes < 1024 or self.clock_skew_ms < 0:
            raise PolicyViolation("bad_policy", "policy limits out of range")

    # -- decisions ---------------------------------------------------------

    def max_ttl_ms(self, category: str) -> int:
        return self.max_ttl_days[category] * DAY_MS

    def check_kind(self, kind: object) -> str:
        if not isinstance(kind, str) or kind not in self.kinds:
            raise PolicyViolation(
                "kind_not_allowed", f"indicator kind {kind!r} is not allowed by the policy"
            )
        return kind

    def check_add(
        self, *, kind: object, category: object, severity: object, exp: object, ts: int
    ) -> None:
        """Decide one add op published at ``ts``; raise PolicyViolation if it breaks the policy."""
        self.check_kind(kind)
        check_category(category)
        if category not in self.categories:
            raise PolicyViolation(
                "category_not_allowed", f"category {category!r} is not allowed by the policy"
            )
        check_severity(severity)
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise PolicyViolation("bad_expiry", "expiry must be an integer time in ms")
        if exp <= ts:
            raise PolicyViolation("bad_expiry", "expiry must be after the entry's time")
        assert isinstance(category, str)
        if exp - ts > self.max_ttl_ms(category):
            raise PolicyViolation(
                "ttl_too_long",
                f"time to live over the policy maximum of {self.max_ttl_days[category]} days "
                f"for {category}",
            )

    def check_retract(self, *, kind: object, reason: object) -> None:
        self.check_kind(kind)
        check_reason(reason)

    def check_op_count(self, n: int) -> None:
        if n < 1:
            raise PolicyViolation("no_ops", "an entry carries at least one op")
        if n > self.max_ops:
            raise PolicyViolation(
                "too_many_ops", f"{n} ops in one entry; the policy allows {self.max_ops}"
            )

    # -- encoding ----------------------------------------------------------

    def to_map(self) -> dict[str, Any]:
        return {
            "kinds": sorted(self.kinds),
            "categories": sorted(self.categories),
            "max_ttl_days": {c: self.max_ttl_days[c] for c in sorted(self.categories)},
            "max_ops": self.max_ops,
            "max_entry_bytes": self.max_entry_bytes,
            "disclose_reporters": self.disclose_reporters,
            "clock_skew_ms": self.clock_skew_ms,
            "keep_reports_of_removed": self.keep_reports_of_removed,
            "gossip": self.gossip.to_map(),
        }

    @classmethod
    def from_map(cls, m: object) -> DataPolicy:
        keys = {
            "kinds",
            "categories",
            "max_ttl_days",
            "max_ops",
            "max_entry_bytes",
            "disclose_reporters",
            "clock_skew_ms",
            "keep_reports_of_removed",
            "gossip",
        }
        d = _expect_map(m, "policy", keys)
        kinds = _str_list(d, "kinds")
        cats = _str_list(d, "categories")
        ttl = d["max_ttl_days"]
        if not isinstance(ttl, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in ttl.items()
        ):
            raise DecodeError("policy.max_ttl_days must map category names to integer days")
        for flag in ("disclose_reporters", "keep_reports_of_removed"):
            if not isinstance(d[flag], bool):
                raise DecodeError(f"policy.{flag} must be a boolean")
        try:
            return cls(
                kinds=frozenset(kinds),
                categories=frozenset(cats),
                max_ttl_days=dict(ttl),
                max_ops=_pos_int(d, "max_ops", "policy"),
                max_entry_bytes=_pos_int(d, "max_entry_bytes", "policy"),
                disclose_reporters=d["disclose_reporters"],
                clock_skew_ms=_nonneg_int(d, "clock_skew_ms", "policy"),
                keep_reports_of_removed=d["keep_reports_of_removed"],
                gossip=GossipSettings.from_map(d["gossip"]),
            )
        except PolicyViolation as e:
            raise DecodeError(f"invalid policy: {e.message}") from None


def _expect_map(m: object, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(m, dict):
        raise DecodeError(f"{where} must be a map")
    missing = keys - m.keys()
    if missing:
        raise DecodeError(f"{where} is missing {', '.join(sorted(missing))}")
    extra = set(m.keys()) - keys
    if extra:
        raise DecodeError(f"{where} has unknown fields {sorted(map(str, extra))}")
    return m


def _pos_int(d: Mapping[str, Any], k: str, where: str) -> int:
    v = d[k]
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise DecodeError(f"{where}.{k} must be a positive integer")
    return v


def _nonneg_int(d: Mapping[str, Any], k: str, where: str) -> int:
    v = d[k]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise DecodeError(f"{where}.{k} must be a non-negative integer")
    return v


def _str_list(d: Mapping[str, Any], k: str) -> list[str]:
    v = d[k]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or len(set(v)) != len(v):
        raise DecodeError(f"policy.{k} must be a list of distinct strings")
    return v
