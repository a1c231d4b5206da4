"""Onboarding and removal mid-run: charter versions and key grants travel by gossip."""

from __future__ import annotations

from typing import Any

import pytest
from simkit import simulate, small

CHANGES = """
[[governance]]
kind = "onboard"
at_s = 8
count = 3

[[governance]]
kind = "remove"
at_s = 20
count = 2
"""


@pytest.fixture(scope="module")
def run() -> tuple[Any, dict[str, Any]]:
    return simulate(small(CHANGES, workload={"reports_per_s": 2.0}))


def test_each_version_reaches_every_node(run: tuple[Any, dict[str, Any]]) -> None:
    sim, f = run
    versions = f["governance"]["versions"]
    assert [v["version"] for v in versions] == [2, 3]
    assert all(v["to_100_percent_rounds"] is not None for v in versions)
    assert all(v["to_100_percent_rounds"] < 6 for v in versions)
    for n in sim.nodes:
        if n.up and n.removed_at is None:  # the removed are no longer talked to
            assert n.chain.current.version == 3, n.name


def test_newcomers_get_charter_and_key_by_gossip_and_catch_up(
    run: tuple[Any, dict[str, Any]],
) -> None:
    sim, f = run
    [onboard] = [c for c in f["governance"]["changes"] if c["kind"] == "onboard"]
    assert len(onboard["newcomers"]) == 3
    for n in onboard["newcomers"]:
        assert n["charter_after_s"] is not None and n["keys_after_s"] is not None
    catch = [c for c in f["faults"]["catch_up"] if c["why"] == "newcomer"]
    assert len(catch) == 3 and all(c["caught_up_after_s"] is not None for c in catch)
    assert all(c["entries_to_catch_up"] > 0 for c in catch)
    # newcomers started from the genesis alone, yet publish and are heard everywhere
    newcomers = {n.idx for n in sim.nodes if not n.founder}
    theirs = [r for r in sim.ledger.entries if r.author in newcomers and r.valid]
    assert theirs
    honest = [n.idx for n in sim.nodes if n.honest and n.up and n.removed_at is None]
    assert all(set(honest) <= set(r.held) for r in theirs)


def test_removed_members_are_revoked_everywhere(run: tuple[Any, dict[str, Any]]) -> None:
    sim, f = run
    [remove] = [c for c in f["governance"]["changes"] if c["kind"] == "remove"]
    assert len(remove["members"]) == 2
    gone = [n for n in sim.nodes if n.removed_at is not None]
    for n in sim.nodes:
        if n.up and n.removed_at is None:
            for g in gone:
                assert not n.chain.current.is_active(g.key.id)
                assert n.chain.revoked_until(g.key.id) == remove["until_seq"][g.name]
    # no honest node keeps any entry of theirs past until_seq
    assert remove["entries_past_until_held_by_honest_nodes"] == 0
    fin = f["queries"]["final"]
    assert fin["disagree"] == 0 and fin["agree_with_ground_truth"] == fin["answers"]
