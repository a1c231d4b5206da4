"""The confidence formula's properties, for every input hypothesis finds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.confidence import confidence
from contracts.policy import DAY_MS

severity = st.integers(1, 5)
count = st.integers(0, 60)
age = st.integers(0, 20 * 365 * DAY_MS)
half_life = st.integers(1, 6 * 365).map(lambda d: d * DAY_MS)


@st.composite
def verdicts(draw: st.DrawFn) -> dict[str, int]:
    return {
        "severity": draw(severity),
        "reporters": draw(st.integers(1, 60)),
        "sightings": draw(count),
        "disputes": draw(count),
        "age_ms": draw(age),
        "half_life_ms": draw(half_life),
    }


@given(v=verdicts())
def test_in_range(v: dict[str, int]) -> None:
    assert 0 <= confidence(**v) <= 100


@given(v=verdicts(), which=st.sampled_from(["reporters", "sightings"]), more=st.integers(1, 5))
def test_corroboration_never_lowers_it(v: dict[str, int], which: str, more: int) -> None:
    assert confidence(**{**v, which: v[which] + more}) >= confidence(**v)


@given(v=verdicts(), more=st.integers(1, 5))
def test_a_dispute_never_raises_it(v: dict[str, int], more: int) -> None:
    assert confidence(**{**v, "disputes": v["disputes"] + more}) <= confidence(**v)


@given(v=verdicts(), later=st.integers(1, 10 * 365 * DAY_MS))
def test_age_never_raises_it(v: dict[str, int], later: int) -> None:
    assert confidence(**{**v, "age_ms": v["age_ms"] + later}) <= confidence(**v)


@given(v=verdicts())
def test_severity_never_lowers_it(v: dict[str, int]) -> None:
    if v["severity"] < 5:
        assert confidence(**{**v, "severity": v["severity"] + 1}) >= confidence(**v)


def test_worked_values() -> None:
    h = 365 * DAY_MS
    assert confidence(severity=5, reporters=1, half_life_ms=h) == 85
    assert confidence(severity=3, reporters=1, half_life_ms=h) == 65
    assert confidence(severity=3, reporters=2, half_life_ms=h) == 88  # 1 - 0.35^2 = .8775
    # one dispute against one reporter halves it; one half-life of silence halves it
    assert confidence(severity=5, reporters=1, disputes=1, half_life_ms=h) == 43  # 42.5, rounded up
    assert confidence(severity=5, reporters=1, age_ms=h, half_life_ms=h) == 43
    # a sighting counts for half a reporter
    assert confidence(severity=3, reporters=1, sightings=1, half_life_ms=h) == 76  # 1 - .35 * .675
    assert confidence(severity=3, reporters=0, half_life_ms=h) == 0
    # a few seconds of age do not cost a point
    assert confidence(severity=4, reporters=1, age_ms=60_000, half_life_ms=h) == 75


def test_bad_inputs_are_refused() -> None:
    for bad in ({"severity": 0}, {"severity": 6}, {"disputes": -1}, {"half_life_ms": 0}):
        with pytest.raises(ValueError):
            confidence(**{"severity": 3, "reporters": 1, "half_life_ms": DAY_MS, **bad})
