"""Query answers against ground truth; the Bloom stage's measured vs configured FP rate."""

from __future__ import annotations

import math
import random

from simkit import simulate, small

from contracts.indicators import canonical
from contracts.warninglists import DEFAULT_LIST
from node.index import TokenIndex
from sim.figures import fp_tolerance
from sim.ledger import synthetic_value


def test_measured_false_positive_rate_is_within_tolerance_of_the_configured_one() -> None:
    """An index sized exactly for its live tokens (headroom 1) has the configured rate at
    that fill; 10 nodes x 100 000 never-reported tokens measure it."""
    _, f = simulate(
        small(
            workload={"ops_per_entry": (30, 60), "retractions_per_s": 0.0},
            queries={
                "error_rate": 0.001,
                "headroom": 1.0,
                "final_nodes": 10,
                "final_absent": 100_000,
            },
        )
    )
    fp = f["queries"]["false_positive_rate"]
    assert fp["absent_probes"] > 900_000
    assert fp["mean_live_tokens"] > 1024  # above the index's minimum capacity
    assert fp["mean_capacity"] == fp["mean_live_tokens"]  # headroom 1: sized for the fill
    tol = fp_tolerance(fp["configured"], fp["absent_probes"])
    assert abs(fp["measured"] - fp["configured"]) <= tol, fp
    assert fp["within_tolerance_of_expected"], fp
    # and the exact store refused every Bloom positive: no false *match*
    assert f["queries"]["final"]["false_matches_after_exact_check"] == 0
    assert f["queries"]["final"]["bloom_false_negatives"] == 0


def test_with_the_node_s_headroom_the_rate_stays_below_the_configured_one() -> None:
    _, f = simulate(small())
    fp = f["queries"]["false_positive_rate"]
    assert fp["headroom"] == 2.0
    assert fp["at_most_configured"] and fp["measured"] < fp["configured"]
    assert fp["within_tolerance_of_expected"], fp


def test_the_expected_rate_accounts_for_double_hashing() -> None:
    """The textbook formula misses the step-0 probes of double hashing, which dominate in
    small filters; TokenIndex.measured_fpr includes them and matches a measurement."""
    rng = random.Random(5)
    toks = [rng.randbytes(16) for _ in range(573)]
    index = TokenIndex.build(toks, len(toks), error_rate=0.001, headroom=2.0)
    probes = [rng.randbytes(16) for _ in range(1_000_000)]
    measured = sum(index.contains_many(probes)) / len(probes)
    expected = index.measured_fpr()
    assert abs(measured - expected) <= fp_tolerance(expected, len(probes))
    assert measured > 3 * index.expected_fpr()  # the textbook value is far off here


def test_answers_during_the_run_lag_and_at_the_end_agree() -> None:
    _, f = simulate(small())
    during = f["queries"]["during_run"]
    assert len(during) >= 6
    assert all(c["agree_with_ground_truth"] + c["not_yet_current"] == c["answers"] for c in during)
    fin = f["queries"]["final"]
    assert fin["honest_nodes"] == 30
    assert fin["agree_with_ground_truth"] == fin["answers"] > 0
    assert not math.isnan(f["queries"]["false_positive_rate"]["measured"])


def test_synthetic_identifiers_are_canonical_and_never_warning_listed() -> None:
    """Every kind the simulator reports: canonical, and reportable at a real node."""
    kinds = ("phone", "email", "device", "account", "ip", "merchant", "bank_card", "id_number")
    for kind in kinds:
        for n in (*range(2_000), 65_535, 1 << 20):
            value = canonical(kind, synthetic_value(kind, n), region="CN")
            assert DEFAULT_LIST.listed(kind, value) is None, (kind, value)
