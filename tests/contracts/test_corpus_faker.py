"""Faker's realistic identifiers: 10 000 per kind over five locales are accepted (issue 18).

At least 99.9 % of the values that are valid by construction must be
accepted, with the canonical form worked out independently where that is
possible; every other value is a named exception (``faker_corpus.EXCEPTIONS``)
and is refused by the rule the exception names. The figures are in
docs/canonical-forms.md (``python tests/faker_corpus.py`` prints them).
"""

from __future__ import annotations

import pathlib
from collections import Counter

import pytest
from faker_corpus import EXCEPTIONS, KIND_ORDER, LOCALES, Sample, corpus, figures, outcome

from contracts.indicators import canonical

ROOT = pathlib.Path(__file__).resolve().parents[2]
PER_KIND = 10_000


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return corpus(PER_KIND)


def test_corpus_shape(samples: list[Sample]) -> None:
    per_kind = Counter(s.kind for s in samples)
    assert per_kind == dict.fromkeys(KIND_ORDER, PER_KIND)
    per_cell = Counter((s.kind, s.locale) for s in samples)
    assert set(per_cell.values()) == {PER_KIND // len(LOCALES)}
    # The corpus is what it claims to be: written the ways platforms write them.
    raws = [s.raw for s in samples]
    assert any(r.startswith("CN:") and len(r) == 18 for r in raws)  # 15-digit IDs
    assert any(r.startswith("IMEI:") for r in raws)  # MEIDs in the IMEI field
    assert any(s.kind == "email" and not s.raw.isascii() for s in samples)
    assert any(s.kind == "bank_card" and " " in s.raw for s in samples)


@pytest.mark.parametrize("kind", KIND_ORDER)
def test_valid_by_construction_are_accepted(samples: list[Sample], kind: str) -> None:
    valid = [s for s in samples if s.kind == kind and s.exception is None]
    assert len(valid) >= 0.2 * PER_KIND, "too few valid samples to measure anything"
    refused: list[tuple[Sample, str]] = []
    for s in valid:
        canon, rule = outcome(s)
        if rule is not None:
            refused.append((s, rule))
            continue
        assert canon is not None
        if s.expected is not None:
            assert canon == s.expected, s
        assert canonical(kind, canon, region=s.region) == canon, s
    assert len(refused) <= 0.001 * len(valid), refused[:10]


@pytest.mark.parametrize("kind", KIND_ORDER)
def test_exceptions_are_refused_by_their_named_rule(samples: list[Sample], kind: str) -> None:
    for s in samples:
        if s.kind != kind or s.exception is None:
            continue
        rules, why = EXCEPTIONS[s.exception]
        _, rule = outcome(s)
        assert rule in rules, (s, rule, why)


def test_documented_figures_name_every_exception() -> None:
    doc = (ROOT / "docs" / "canonical-forms.md").read_text(encoding="utf-8")
    for name in EXCEPTIONS:
        assert f"`{name}`" in doc, name


def test_figures_count_every_sample() -> None:
    small = corpus(per_kind=50)
    cells = figures(small)
    assert sum(c.tried for c in cells.values()) == len(small)
    for c in cells.values():
        assert c.accepted + sum(c.refused.values()) == c.tried
