"""Confidence in a verdict, 0-100 (DESIGN §15), as in MISP's decaying models.

::

    p          = (35 + 10 * severity) / 100            a reporter is right (0.45 .. 0.85)
    q          = p / 2                                  a sighting is right
    belief     = 1 - (1 - p) ** min(reporters, 20) * (1 - q) ** min(sightings, 20)
    support    = reporters + sightings / 2
    agreement  = support / (support + disputes)
    decay      = H / (H + age)                          H: the category's half-life
    confidence = round(100 * belief * agreement * decay)      (halves round up)

``severity`` is the verdict's highest severity, ``reporters``, ``sightings``
and ``disputes`` count distinct members, ``age`` is the time since the latest
report or sighting, and ``H`` the longest ``decay_days`` of the verdict's
categories in the charter's policy: a verdict loses half its confidence when
nobody has reported or seen the value for ``H``, two thirds after ``2 H``.

Reporters and sightings are independent witnesses (a noisy-or); disputes
weigh against their support one for one. The arithmetic is exact (rationals),
so the properties the tests check hold to the last unit: corroboration (one
more reporter or sighting) never lowers the confidence, a dispute never raises
it, and age never raises it.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

from contracts.taxonomy import SEVERITY_MAX, SEVERITY_MIN

__all__ = ["WITNESS_CAP", "confidence", "confidence_at", "decaying"]

#: Reporters and sightings beyond this many add nothing to the belief (it is 1
#: to within a part in 10^5 long before), which keeps the arithmetic small.
WITNESS_CAP = 20


@lru_cache(maxsize=4096)
def _belief_agreement(severity: int, reporters: int, sightings: int, disputes: int) -> Fraction:
    p = Fraction(35 + 10 * severity, 100)
    q = p / 2
    doubt = (1 - p) ** min(reporters, WITNESS_CAP) * (1 - q) ** min(sightings, WITNESS_CAP)
    support2 = 2 * reporters + sightings  # twice the support, to stay in integers
    return (1 - doubt) * Fraction(support2, support2 + 2 * disputes)


def confidence(
    *,
    severity: int,
    reporters: int,
    sightings: int = 0,
    disputes: int = 0,
    age_ms: int = 0,
    half_life_ms: int,
) -> int:
    """The confidence (0-100) of a verdict; 0 without a reporter."""
    return confidence_at(
        decaying(
            severity=severity,
            reporters=reporters,
            sightings=sightings,
            disputes=disputes,
            half_life_ms=half_life_ms,
        ),
        age_ms,
    )


def decaying(
    *, severity: int, reporters: int, sightings: int = 0, disputes: int = 0, half_life_ms: int
) -> tuple[int, int, int]:
    """Everything of :func:`confidence` but the age, checked and reduced to integers
    (numerator, denominator, half-life): :func:`confidence_at` finishes it for any age.
    A verdict asked about again and again computes this once."""
    if reporters < 1:
        return 0, 1, 1
    if not SEVERITY_MIN <= severity <= SEVERITY_MAX:
        raise ValueError(f"severity is {SEVERITY_MIN}..{SEVERITY_MAX}")
    if sightings < 0 or disputes < 0 or half_life_ms < 1:
        raise ValueError("counts are non-negative and the half-life positive")
    ba = _belief_agreement(severity, reporters, sightings, disputes)
    return 200 * ba.numerator * half_life_ms, 2 * ba.denominator, half_life_ms


def confidence_at(parts: tuple[int, int, int], age_ms: int) -> int:
    """:func:`confidence` from :func:`decaying`'s parts at an age."""
    num, den2, half_life_ms = parts
    if num == 0:
        return 0
    den = den2 * (half_life_ms + max(0, age_ms))
    return (num + den // 2) // den  # round half up, exactly
