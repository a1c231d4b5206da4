"""Onboarding and removal mid-run, by the node's own rules.

Every change is drafted by protocol.governance (one member per charter version),
proposed and signed through the admins' engines (ProposalBook), and gossiped;
key grants follow plan_grants; a removal rotates the key and members republish.
"""

from __future__ import annotations

from typing import Any

import pytest
from simkit import simulate, simulate_open, small

from protocol.entries import AddOp, Op
from sim.runner import Simulation

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


def is_add(op: Op) -> bool:
    return isinstance(op, AddOp)


@pytest.fixture(scope="module")
def run() -> tuple[Simulation, dict[str, Any]]:
    sim, _, f = simulate_open(small(CHANGES, workload={"reports_per_s": 2.0}))
    return sim, f


def test_one_version_per_member_each_reaching_every_node(
    run: tuple[Simulation, dict[str, Any]],
) -> None:
    sim, f = run
    versions = f["governance"]["versions"]
    # three newcomers, then two removals: one charter version each, in turn
    assert [v["version"] for v in versions] == [2, 3, 4, 5, 6]
    assert [len(v["changes"]) for v in versions] == [1, 1, 1, 2, 2]  # a removal also rotates
    assert all(v["to_100_percent_rounds"] is not None for v in versions)
    assert all(v["to_100_percent_rounds"] < 6 for v in versions)
    for n in sim.fleet:
        if n.up and n.removed_at is None:  # the removed are no longer talked to
            assert n.chain is not None and n.chain.current.version == 6, n.name


def test_proposals_are_signed_by_a_quorum_of_admins_through_their_engines(
    run: tuple[Simulation, dict[str, Any]],
) -> None:
    sim, f = run
    admins = {n.name for n in sim.fleet if n.admin}
    for v in f["governance"]["versions"]:
        assert len(v["signers"]) == 2 and set(v["signers"]) <= admins  # majority of 3
        assert v["proposed_by"] in v["signers"]
        assert v["signatures_after_s"] > 0  # the proposal travelled by gossip to be signed
    # each admin node's proposal book holds every proposal, with the signatures it saw
    book = sim.fleet[0].engine.proposals  # type: ignore[union-attr]
    assert sorted(p.charter.version for p in book.all()) == [2, 3, 4, 5, 6]


def test_newcomers_get_charter_and_every_live_key_by_gossip_and_catch_up(
    run: tuple[Simulation, dict[str, Any]],
) -> None:
    sim, f = run
    [onboard] = [c for c in f["governance"]["changes"] if c["kind"] == "onboard"]
    assert len(onboard["newcomers"]) == 3 and onboard["versions"] == [2, 3, 4]
    for n in onboard["newcomers"]:
        assert n["charter_after_s"] is not None and n["keys_after_s"] is not None
        # onboarded before the rotations, they get the new epochs like every member
        assert n["epochs_held_at_end"] == [1, 2, 3]
    catch = [c for c in f["faults"]["catch_up"] if c["why"] == "newcomer"]
    assert len(catch) == 3 and all(c["caught_up_after_s"] is not None for c in catch)
    assert all(c["entries_to_catch_up"] > 0 for c in catch)
    # newcomers started from the genesis alone, yet publish and are heard everywhere
    newcomers = {n.idx for n in sim.fleet if not n.founder}
    theirs = [r for r in sim.ledger.entries if r.author in newcomers and r.valid]
    assert theirs
    honest = [n.idx for n in sim.fleet if n.honest and n.up and n.removed_at is None]
    assert all(set(honest) <= set(r.held) for r in theirs)


def test_removal_revokes_everywhere_and_rotates_the_key(
    run: tuple[Simulation, dict[str, Any]],
) -> None:
    sim, f = run
    [remove] = [c for c in f["governance"]["changes"] if c["kind"] == "remove"]
    assert len(remove["members"]) == 2 and remove["versions"] == [5, 6]
    gone = [n for n in sim.fleet if n.removed_at is not None]
    for n in sim.fleet:
        if n.up and n.removed_at is None:
            assert n.chain is not None
            for g in gone:
                assert not n.chain.current.is_active(g.key.id)
                assert n.chain.revoked_until(g.key.id) == remove["until_seq"][g.name]
            # every remaining member holds the keys of the epochs the removals opened
            assert sorted(n.keys) == [1, 2, 3], n.name
    for g in gone:  # the removed never get them: their tokens cannot match new reports
        assert sorted(g.keys) == [1]
    rotations = remove["key_rotations"]
    assert [r["epoch"] for r in rotations] == [2, 3]
    for r in rotations:
        assert r["key"]["to_100_percent_rounds"] is not None
        assert r["nodes_holding_the_key_at_end"] == f["run"]["honest_nodes_at_end"]
        assert r["republished_ops"] > 0  # members republished their live reports
    # once every node has the last version and key, reports are made under its epoch
    settled = max(sim.governance.keys_at[3].values())
    late = [op.ep for r in sim.ledger.entries if r.t > settled for op in r.ops if is_add(op)]
    assert late and set(late) == {3}
    # no honest node keeps any entry of theirs past until_seq
    assert remove["entries_past_until_held_by_honest_nodes"] == 0
    # and every answer, over every live epoch's token, equals the ground truth
    fin = f["queries"]["final"]
    assert fin["disagree"] == 0 and fin["agree_with_ground_truth"] == fin["answers"]
    assert f["delivery"]["to_100_percent"]["rounds"]["undelivered"] == 0


def test_a_newcomer_after_a_rotation_gets_every_live_epoch() -> None:
    _, f = simulate(
        small(
            """
[[governance]]
kind = "remove"
at_s = 6
count = 1

[[governance]]
kind = "onboard"
at_s = 16
count = 1
"""
        )
    )
    [_, onboard] = f["governance"]["changes"]
    [newcomer] = onboard["newcomers"]
    assert newcomer["epochs_held_at_end"] == [1, 2]  # plan_grants: every live epoch
    assert f["queries"]["final"]["disagree"] == 0


@pytest.mark.xfail(
    strict=True,
    reason="protocol: a charter version's hash covers its signatures, so two admins "
    "completing a quorum of one proposal at once fork the charter (docs/simulator.md)",
)
def test_every_admin_signing_what_it_receives_keeps_one_charter() -> None:
    sim = Simulation(small(CHANGES, workload={"reports_per_s": 2.0}))
    sim.governance.in_turn = False  # every admin signs, not just a quorum in turn
    sim.run()
    versions = {n.chain.current_version.hash for n in sim.fleet.current() if n.chain}
    assert len(versions) == 1
