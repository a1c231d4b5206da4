"""Sightings, disputes and appeals in the simulator: honest verdicts stay right, and the
policy's quotas bound a member that disputes everything and one that appeals in bulk."""

from __future__ import annotations

from typing import Any

import pytest
from simkit import simulate, simulate_open, small

from contracts.policy import DAY_MS
from protocol.entries import AddOp, AppealDecidedOp, AppealOp, DisputeOp, RetractOp, SeenOp
from protocol.tokens import EpochKeys
from sim.clock import T0
from sim.ledger import Extras, Ledger, Verdict

ABUSE = """
[policy]
max_disputes_per_day = 40
max_appeals_per_day = 8

[appeals]
decide_s = [2, 10]
upheld = 0.5

[[byzantine]]
role = "disputer"
reports_per_min = 12

[[byzantine]]
role = "appeal_spammer"
reports_per_min = 12
"""


@pytest.fixture(scope="module")
def abuse() -> tuple[Any, dict[str, Any]]:
    sc = small(
        ABUSE,
        duration_s=60.0,
        workload={
            "stop_s": 45.0,
            "sightings_per_s": 0.5,
            "disputes_per_s": 0.3,
            "appeals_per_s": 0.2,
        },
    )
    run, _, f = simulate_open(sc)
    return run, f


def _abuser(f: dict[str, Any], role: str) -> dict[str, Any]:
    [x] = [x for x in f["after_match"]["abusers"] if x["role"] == role]
    return x


@pytest.mark.parametrize(("role", "quota"), [("disputer", 40), ("appeal_spammer", 8)])
def test_the_quota_bounds_what_honest_nodes_take(
    abuse: tuple[Any, dict[str, Any]], role: str, quota: int
) -> None:
    _, f = abuse
    x = _abuser(f, role)
    assert x["quota_per_day"] == quota
    # it went after far more than its quota, and its own feeds took exactly the quota
    assert x["ops_attempted"] > 3 * quota
    assert x["ops_published_within_quota"] == quota
    assert x["ops_over_quota"] == x["ops_attempted"] - quota
    # the rest it signed anyway and sent; every honest node that got it refused it
    assert x["over_quota_entries_sent"] > 0
    assert x["over_quota_refusals_by_honest_nodes"] > 0
    assert x["honest_nodes_that_refused"] > 0 and x["honest_nodes_that_quarantined"] > 0
    assert x["most_ops_held_by_an_honest_node"] == quota and x["held_within_quota"]


def test_both_abusers_are_detected_and_nothing_else_is_refused(
    abuse: tuple[Any, dict[str, Any]],
) -> None:
    _, f = abuse
    m = f["misbehaviour"]
    assert m["all_detected"] and len(m["members"]) == 2
    for x in m["members"]:
        assert set(x["entries_refused_by_reason"]) == {"over_quota"}, x
    alarms = m["false_alarms"]
    assert all(v == 0 for k, v in alarms.items() if not k.startswith("max_starved"))
    assert m["unknown_entries_accepted_by_honest_nodes"] == 0
    assert f["after_match"]["appeals"]["honest_nodes_holding_an_over_quota_appeal_op"] == 0


def test_honest_verdicts_stay_right(abuse: tuple[Any, dict[str, Any]]) -> None:
    run, f = abuse
    fin = f["queries"]["final"]
    honest = sum(1 for n in run.fleet if n.honest)
    assert fin["answers"] == honest * f["run"]["identifiers_in_ground_truth"] > 0
    assert fin["disagree"] == 0 and fin["agree_with_ground_truth"] == fin["answers"]
    v = f["after_match"]["verdicts"]
    assert v["matching_answers_compared"] > 0 and v["differ"] == 0
    assert v["sightings_disputes_appeal_as_ground_truth"] == v["matching_answers_compared"]
    gt = f["after_match"]["ground_truth_at_end"]
    assert gt["with_disputes"] > 0 and gt["with_sightings"] > 0


def test_honest_members_see_dispute_appeal_and_reporters_decide(
    abuse: tuple[Any, dict[str, Any]],
) -> None:
    _, f = abuse
    ops = f["after_match"]["honest_ops_published"]
    assert ops["seen"] > 0 and ops["dispute"] > 0 and ops["appeal"] > 0
    ap = f["after_match"]["appeals"]
    honest = ap["honest"]
    assert honest["appeals"] > 0 and honest["cases_opened_by_reporters"] > 0
    assert honest["decisions"] == honest["upheld"] + honest["rejected"] > 0
    assert ops["retracted_on_appeal"] >= honest["upheld"] > 0
    for key in ("spam_within_quota", "spam_over_quota"):
        assert ap[key]["upheld"] == 0  # boilerplate grounds are rejected
    assert ap["spam_within_quota"]["appeals"] == 8


def test_the_report_states_the_quota_figures(abuse: tuple[Any, dict[str, Any]]) -> None:
    from sim.report import render_markdown

    _, f = abuse
    md = render_markdown(f, [], wall_s=None, command="")
    assert "## Sightings, disputes and appeals" in md
    assert "The quotas bound the abuse: every honest node" in md


def test_a_retraction_naming_of_does_not_retract_the_report() -> None:
    keys = EpochKeys({1: bytes(32)})
    ledger = Ledger(keys, [b"a" * 32, b"b" * 32])
    value = ledger.new_value("phone")
    tok = ledger.token(value, 1)
    now = T0
    exp = T0 + DAY_MS
    ledger.record(b"h1", 0, 1, 0.0, (AddOp(tok, "phone", 1, "money_mule", 4, exp),))
    truth = Verdict((b"a" * 32,), ("money_mule",), 4, exp)
    assert ledger.truth(value, now) == truth
    # member 1 sees and disputes it, member 0 (the reporter) "sees" it as well; then each
    # withdraws its sighting or dispute: the report stands
    seen, dispute = SeenOp(tok, "phone", 1, exp), DisputeOp(tok, "phone", 1, exp, "other")
    ledger.record(b"h2", 1, 1, 1.0, (seen, dispute))
    ledger.record(b"h3", 0, 2, 2.0, (SeenOp(tok, "phone", 1, exp),))
    assert ledger.extras(value, now) == Extras(sightings=2, disputes=1, under_appeal=False)
    ledger.record(b"h4", 0, 3, 3.0, (RetractOp(tok, "phone", 1, "other", "seen"),))
    ledger.record(b"h5", 1, 2, 4.0, (RetractOp(tok, "phone", 1, "other", "dispute"),))
    assert ledger.truth(value, now) == truth
    assert ledger.extras(value, now) == Extras(sightings=1, disputes=0, under_appeal=False)
    # an appeal is open until the reporter decides it, or it is withdrawn
    ledger.record(b"h6", 1, 3, 5.0, (AppealOp(tok, "phone", 1, "0123456789abcdef"),))
    assert ledger.extras(value, now) == Extras(1, 0, True)
    ledger.record(b"h7", 1, 4, 6.0, (RetractOp(tok, "phone", 1, "other", "appeal"),))
    assert ledger.truth(value, now) == truth
    assert ledger.extras(value, now) == Extras(1, 0, False)
    ledger.record(b"h8", 1, 5, 7.0, (AppealOp(tok, "phone", 1, "fedcba9876543210"),))
    ledger.record(b"h9", 0, 4, 8.0, (AppealDecidedOp("fedcba9876543210", "rejected"),))
    assert ledger.extras(value, now) == Extras(1, 0, False)
    # the reporter's own retraction (no of) does retract it
    ledger.record(b"h10", 0, 5, 9.0, (RetractOp(tok, "phone", 1, "appeal_upheld"),))
    assert ledger.truth(value, now) is None and ledger.extras(value, now) is None


def test_without_after_match_the_figures_have_no_such_part() -> None:
    _, f = simulate(small(duration_s=20.0, workload={"stop_s": 15.0}))
    assert "after_match" not in f and "alerts" not in f
