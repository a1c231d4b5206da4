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
from functools import lru_cache
from typing import Any

from contracts.errors import DecodeError, PolicyViolation
from contracts.indicators import KINDS
from contracts.taxonomy import (
    APPEAL_DECISIONS,
    CATEGORIES,
    DISPUTE_REASONS,
    check_category,
    check_reason,
    check_severity,
)
from contracts.warninglists import DEFAULT_LIST, WarningList, check_additions

__all__ = [
    "DAY_MS",
    "DEFAULT_DECAY_DAYS",
    "DEFAULT_MAX_TTL_DAYS",
    "DEFAULT_URGENT_CATEGORIES",
    "DataPolicy",
    "GossipSettings",
]

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

#: Categories whose reports a node offers to every reachable peer at once, not at
#: the next gossip round (DESIGN §14): money in flight is intercepted in seconds.
DEFAULT_URGENT_CATEGORIES: frozenset[str] = frozenset(
    {"telecom_fraud", "money_mule", "account_takeover", "phishing"}
)

#: Default confidence half-life per category, in days (contracts.confidence):
#: how long a verdict nobody reports or sees again keeps half its confidence.
DEFAULT_DECAY_DAYS: dict[str, int] = {
    **{c: 365 for c in CATEGORIES},
    "promotion_abuse": 60,
    "device_risk": 90,
    "multi_lending": 180,
    "other": 180,
}

#: Policy fields added after the first charters; an older charter without them
#: decodes with these defaults (so its encoding, and hash, never change).
_AFTER_MATCH_FIELDS = frozenset(
    {
        "appeal_days",
        "suspend_overdue",
        "decay_days",
        "warning_list",
        "max_disputes_per_day",
        "max_appeals_per_day",
    }
)


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
    #: days a reporter has to answer a data subject's appeal (CIFAS: 8 weeks)
    appeal_days: int = 56
    #: whether a report with an overdue appeal stops counting in verdicts
    suspend_overdue: bool = False
    #: confidence half-life per category, in days
    decay_days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DECAY_DAYS))
    #: warning-list entries added to the shipped list: {kind: (entry, ...)}
    warning_list: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: quotas bounding abuse: dispute and appeal ops per member in any 24 hours
    max_disputes_per_day: int = 1000
    max_appeals_per_day: int = 100
    #: categories whose reports are offered to every reachable peer at once (DESIGN §14)
    urgent_categories: frozenset[str] = DEFAULT_URGENT_CATEGORIES

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
        for c in self.urgent_categories:
            check_category(c)
        if self.max_ops < 1 or self.max_entry_bytes < 1024 or self.clock_skew_ms < 0:
            raise PolicyViolation("bad_policy", "policy limits out of range")
        for c in self.categories:
            half = self.decay_days.get(c)
            if not isinstance(half, int) or isinstance(half, bool) or half <= 0:
                raise PolicyViolation("bad_policy", f"policy has no positive decay_days for {c!r}")
        for name in ("appeal_days", "max_disputes_per_day", "max_appeals_per_day"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise PolicyViolation("bad_policy", f"policy {name} must be a positive integer")
        object.__setattr__(self, "warning_list", check_additions(self.warning_list))

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

    def max_signal_ms(self) -> int:
        """The longest a sighting or dispute may live: the longest category TTL."""
        return max(self.max_ttl_days[c] for c in self.categories) * DAY_MS

    def check_signal(self, *, kind: object, exp: object, ts: int, why: object = None) -> None:
        """Decide a ``seen`` op (``why`` None) or a ``dispute`` op published at ``ts``."""
        self.check_kind(kind)
        if why is not None and why not in DISPUTE_REASONS:
            raise PolicyViolation(
                "unknown_reason",
                f"unknown dispute reason {why!r}; expected one of {', '.join(DISPUTE_REASONS)}",
            )
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= ts:
            raise PolicyViolation("bad_expiry", "expiry must be an integer time after the entry's")
        if exp - ts > self.max_signal_ms():
            raise PolicyViolation(
                "ttl_too_long", "a sighting or dispute may not outlive the longest report TTL"
            )

    def check_decision(self, decision: object) -> None:
        if decision not in APPEAL_DECISIONS:
            raise PolicyViolation(
                "unknown_decision", f"an appeal decision is one of {', '.join(APPEAL_DECISIONS)}"
            )

    def warnings(self) -> WarningList:
        """The shipped warning list with this policy's additions."""
        return _warnings(tuple(sorted(self.warning_list.items())))

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
            "appeal_days": self.appeal_days,
            "suspend_overdue": self.suspend_overdue,
            "decay_days": {c: self.decay_days[c] for c in sorted(self.categories)},
            "warning_list": {k: list(v) for k, v in sorted(self.warning_list.items())},
            "max_disputes_per_day": self.max_disputes_per_day,
            "max_appeals_per_day": self.max_appeals_per_day,
            "urgent_categories": sorted(self.urgent_categories),
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
        d = _expect_map(m, "policy", keys, optional=_AFTER_MATCH_FIELDS | {"urgent_categories"})
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
        after = _after_match_fields(d)
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
                **after,
                # a charter made before urgent categories existed takes the default
                urgent_categories=frozenset(_str_list(d, "urgent_categories"))
                if "urgent_categories" in d
                else DEFAULT_URGENT_CATEGORIES,
            )
        except PolicyViolation as e:
            raise DecodeError(f"invalid policy: {e.message}") from None


@lru_cache(maxsize=64)
def _warnings(additions: tuple[tuple[str, tuple[str, ...]], ...]) -> WarningList:
    if not additions:
        return DEFAULT_LIST
    return DEFAULT_LIST.merged(WarningList.from_entries(dict(additions), "charter"))


def _after_match_fields(d: Mapping[str, Any]) -> dict[str, Any]:
    """The optional policy fields of DESIGN §15 present in ``d``, checked for type."""
    out: dict[str, Any] = {}
    for k in ("appeal_days", "max_disputes_per_day", "max_appeals_per_day"):
        if k in d:
            out[k] = _pos_int(d, k, "policy")
    if "suspend_overdue" in d:
        if not isinstance(d["suspend_overdue"], bool):
            raise DecodeError("policy.suspend_overdue must be a boolean")
        out["suspend_overdue"] = d["suspend_overdue"]
    if "decay_days" in d:
        dd = d["decay_days"]
        if not isinstance(dd, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in dd.items()
        ):
            raise DecodeError("policy.decay_days must map category names to integer days")
        out["decay_days"] = dict(dd)
    if "warning_list" in d:
        wl = d["warning_list"]
        if not isinstance(wl, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in wl.items()
        ):
            raise DecodeError("policy.warning_list must map kinds to lists of text entries")
        out["warning_list"] = {k: tuple(v) for k, v in wl.items()}
    return out


def _expect_map(
    m: object, where: str, keys: set[str], *, optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(m, dict):
        raise DecodeError(f"{where} must be a map")
    missing = keys - m.keys()
    if missing:
        raise DecodeError(f"{where} is missing {', '.join(sorted(missing))}")
    extra = set(m.keys()) - keys - optional
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
