"""Scenario files: every shipped one loads; mistakes are refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
from simkit import SMALL

from sim.cli import SCENARIOS_DIR
from sim.scenario import (
    ByzantineSpec,
    Churn,
    Partition,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

SHIPPED = sorted(SCENARIOS_DIR.glob("*.toml"))


def test_the_issue_s_scenarios_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    assert {
        "baseline-100",
        "thousand",
        "partition-heal",
        "churn",
        "byzantine-mix",
        "onboarding-load",
        "alerts",
        "after-match",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.description
    assert sc.report_stop_s < sc.duration_s


def test_sizes_of_the_shipped_scenarios() -> None:
    assert load_scenario(SCENARIOS_DIR / "thousand.toml").members.count == 1000
    assert load_scenario(SCENARIOS_DIR / "baseline-100.toml").members.count == 100
    byz = load_scenario(SCENARIOS_DIR / "byzantine-mix.toml")
    assert sorted(b.role for b in byz.byzantine) == [
        "equivocator",
        "forger",
        "policy_violator",
        "replayer",
        "withholder",
    ]
    part = load_scenario(SCENARIOS_DIR / "partition-heal.toml")
    assert any(isinstance(f, Partition) and f.heal_s for f in part.faults)
    assert any(isinstance(f, Churn) for f in load_scenario(SCENARIOS_DIR / "churn.toml").faults)
    onb = load_scenario(SCENARIOS_DIR / "onboarding-load.toml")
    assert {g.kind for g in onb.governance} == {"onboard", "remove"}
    alerts = load_scenario(SCENARIOS_DIR / "alerts.toml")
    assert alerts.gossip.push_urgent and alerts.alerts.watchers > 0
    am = load_scenario(SCENARIOS_DIR / "after-match.toml")
    assert sorted(b.role for b in am.byzantine) == ["appeal_spammer", "disputer"]
    assert am.policy.max_disputes_per_day < 1000 and am.workload.disputes_per_s > 0
    # new work is off where a scenario does not ask for it: the 1 000-node run is unchanged
    big = load_scenario(SCENARIOS_DIR / "thousand.toml")
    assert not big.gossip.push_urgent and big.alerts.watchers == 0
    assert big.workload.sightings_per_s == big.workload.appeals_per_s == 0


def test_after_match_alerts_and_policy_keys() -> None:
    sc = parse_scenario(
        SMALL
        + '[policy]\nmax_disputes_per_day = 5\nurgent_categories = ["phishing"]\n'
        + "[appeals]\ndecide_s = [1, 2]\nupheld = 0.25\n"
        + "[alerts]\nwatchers = 0.5\nwatch_share = 0.1\n"
        + '[[byzantine]]\nrole = "appeal_spammer"\n'
    )
    assert sc.policy.max_disputes_per_day == 5 and sc.policy.max_appeals_per_day == 100
    assert sc.policy.urgent_categories == ("phishing",)
    assert sc.appeals.decide_s == (1.0, 2.0) and sc.appeals.upheld == 0.25
    assert sc.alerts.watchers == 0.5 and sc.alerts.watch_share == 0.1
    assert not sc.gossip.push_urgent and not sc.workload.one_category_per_entry


def test_seed_override() -> None:
    assert load_scenario(SHIPPED[0], seed=99).seed == 99


def test_defaults_and_values() -> None:
    sc = parse_scenario(SMALL + '[[byzantine]]\nrole = "forger"\nper_message = 4\n')
    assert sc.members.count == 30 and sc.gossip.fanout == 3
    assert sc.workload.ops_per_entry == (1, 8)
    assert sc.byzantine == (ByzantineSpec(role="forger", per_message=4),)
    assert sc.to_json()["members"] == {"count": 30, "admins": 3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nduraton_s = 5\n', "unknown key(s) duraton_s"),
        ("duration_s = 5\n", "name: every scenario has a name"),
        ('name = "x"\n[members]\ncount = 1\n', "members.count: must be an integer in [2"),
        ('name = "x"\n[members]\ncount = "ten"\n', "members.count"),
        ('name = "x"\n[members]\ncount = 5\nadmins = 6\n', "members.admins: more admins"),
        ('name = "x"\n[network]\nloss = 1.5\n', "network.loss: must be a number in [0.0, 0.99]"),
        (
            'name = "x"\n[network.latency]\ndist = "pareto"\n',
            "network.latency.dist: must be a string (one of fixed, uniform, lognormal)",
        ),
        ('name = "x"\n[workload]\nops_per_entry = [5, 2]\n', "workload.ops_per_entry"),
        ('name = "x"\n[workload]\nkinds = ["shoe"]\n', "workload.kinds"),
        (
            'name = "x"\n[[faults]]\nkind = "partition"\nat_s = 10\nheal_s = 5\n',
            "faults[0].heal_s: must be after at_s",
        ),
        ('name = "x"\n[[faults]]\nkind = "meteor"\n', "faults[0].kind"),
        ('name = "x"\n[[faults]]\nkind = "crash"\nat_s = 1\nnodes = 2.5\n', "faults[0].nodes"),
        ('name = "x"\n[[byzantine]]\nrole = "liar"\n', "byzantine[0].role"),
        (
            'name = "x"\n[members]\ncount = 4\nadmins = 3\n'
            '[[byzantine]]\nrole = "forger"\ncount = 2\n',
            "come from the non-admins; there are only 1",
        ),
        ('name = "x"\n[[governance]]\nkind = "merge"\n', "governance[0].kind"),
        ('name = "x"\nduration_s = 10\n[[governance]]\nkind = "onboard"\nat_s = 20\n', "within"),
        ('name = "x"\n[live]\nnodes = 40\n', "live.nodes"),
        ('name = "x"\n[[faults]]\nkind = "partition"\ncolour = 1\n', "unknown key(s) colour"),
        ('name = "x"\n[gossip]\npush_urgent = 1\n', "gossip.push_urgent: must be true or false"),
        ('name = "x"\n[policy]\nurgent_categories = ["spam"]\n', "policy.urgent_categories"),
        ('name = "x"\n[policy]\nmax_appeals_per_day = 0\n', "policy.max_appeals_per_day"),
        ('name = "x"\n[alerts]\nwatch_share = 2\n', "alerts.watch_share"),
        ('name = "x"\n[alerts]\nwatchers = 2.5\n', "alerts.watchers"),
        ('name = "x"\n[appeals]\ndecide_s = [9, 1]\n', "appeals.decide_s"),
        ("name = ", "not valid TOML"),
    ],
)
def test_mistakes_are_refused_with_the_key_named(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(text, where="bad.toml")
    assert message in e.value.message
    assert e.value.message.startswith("bad.toml")


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.toml"):
        load_scenario(tmp_path / "nope.toml")
