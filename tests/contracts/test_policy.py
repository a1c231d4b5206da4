from __future__ import annotations

import pytest

from contracts.errors import DecodeError, PolicyViolation
from contracts.policy import DAY_MS, DataPolicy
from contracts.taxonomy import CATEGORIES, RETRACT_REASONS

P = DataPolicy()
TS = 1_700_000_000_000


def test_defaults_cover_the_taxonomy() -> None:
    assert P.categories == frozenset(CATEGORIES) and len(CATEGORIES) == 16
    assert set(RETRACT_REASONS) == {
        "false_positive",
        "appeal_upheld",
        "resolved",
        "duplicate",
        "other",
    }
    assert all(P.max_ttl_days[c] > 0 for c in CATEGORIES)


def test_add_within_policy() -> None:
    P.check_add(kind="phone", category="telecom_fraud", severity=5, exp=TS + DAY_MS, ts=TS)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"kind": "height"}, "kind_not_allowed"),
        ({"category": "rudeness"}, "unknown_category"),
        ({"severity": 0}, "bad_severity"),
        ({"severity": 6}, "bad_severity"),
        ({"severity": True}, "bad_severity"),
        ({"exp": TS}, "bad_expiry"),
        ({"exp": TS + 6 * 365 * DAY_MS + 1}, "ttl_too_long"),
    ],
)
def test_add_refusals(change: dict[str, object], rule: str) -> None:
    args: dict[str, object] = {
        "kind": "phone",
        "category": "telecom_fraud",
        "severity": 3,
        "exp": TS + DAY_MS,
        "ts": TS,
    }
    args.update(change)
    with pytest.raises(PolicyViolation) as e:
        P.check_add(**args)  # type: ignore[arg-type]
    assert e.value.reason == rule


def test_per_category_ttl() -> None:
    with pytest.raises(PolicyViolation):
        P.check_add(
            kind="device", category="promotion_abuse", severity=1, exp=TS + 181 * DAY_MS, ts=TS
        )
    P.check_add(kind="device", category="promotion_abuse", severity=1, exp=TS + 180 * DAY_MS, ts=TS)


def test_category_outside_a_narrowed_policy() -> None:
    p = DataPolicy(categories=frozenset({"phishing"}))
    with pytest.raises(PolicyViolation) as e:
        p.check_add(kind="email", category="gambling", severity=1, exp=TS + 1, ts=TS)
    assert e.value.reason == "category_not_allowed"


def test_op_count() -> None:
    P.check_op_count(P.max_ops)
    for n in (0, P.max_ops + 1):
        with pytest.raises(PolicyViolation):
            P.check_op_count(n)


def test_retract_reason() -> None:
    P.check_retract(kind="ip", reason="appeal_upheld")
    with pytest.raises(PolicyViolation) as e:
        P.check_retract(kind="ip", reason="bored")
    assert e.value.reason == "unknown_reason"


def test_round_trip_and_strict_decode() -> None:
    assert DataPolicy.from_map(P.to_map()) == P
    for broken in (
        {"max_ops": 0},
        {"kinds": ["phone", "phone"]},
        {"gossip": {}},
        {"disclose_reporters": 1},
        {"max_ttl_days": {"phishing": "long"}},
        {"kinds": ["phone", "dna"]},
    ):
        m = P.to_map()
        m.update(broken)
        with pytest.raises(DecodeError):
            DataPolicy.from_map(m)
