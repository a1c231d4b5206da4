"""Misbehaving members act through real signed data; each is detected; honest answers hold."""

from __future__ import annotations

from typing import Any

import pytest
from simkit import simulate, simulate_open, small

from contracts.policy import DAY_MS, GossipSettings
from protocol.entries import AddOp
from protocol.feeds import Feeds
from protocol.store import MemoryStore
from sim.consortium import T0, Consortium
from sim.engines import forge_entry

MIX = """
[[byzantine]]
role = "forger"

[[byzantine]]
role = "equivocator"

[[byzantine]]
role = "policy_violator"

[[byzantine]]
role = "replayer"
per_message = 3

[[byzantine]]
role = "withholder"
"""


@pytest.fixture(scope="module")
def mix() -> tuple[Any, dict[str, Any]]:
    run, _, f = simulate_open(small(MIX, duration_s=60.0, workload={"stop_s": 45.0}))
    return run, f


def _member(f: dict[str, Any], role: str) -> dict[str, Any]:
    [m] = [m for m in f["misbehaviour"]["members"] if m["role"] == role]
    return m


def test_every_behaviour_is_detected(mix: tuple[Any, dict[str, Any]]) -> None:
    _, f = mix
    m = f["misbehaviour"]
    assert len(m["members"]) == 5
    assert m["all_detected"], [(x["role"], x["detected"]) for x in m["members"]]
    for x in m["members"]:
        assert x["bad_items_sent"] > 0, x["role"]  # each really misbehaved
        assert x["first_detected_s"] is not None, x["role"]


def test_how_each_was_detected(mix: tuple[Any, dict[str, Any]]) -> None:
    _, f = mix
    forger = _member(f, "forger")
    assert set(forger["entries_refused_by_reason"]) == {"bad_signature"}
    assert forger["honest_nodes_that_quarantined"] > 0
    violator = _member(f, "policy_violator")
    assert set(violator["entries_refused_by_reason"]) == {"policy"}
    assert violator["honest_nodes_that_quarantined"] > 0
    eq = _member(f, "equivocator")
    assert eq["honest_nodes_with_feed_frozen"] == eq["honest_nodes_at_end"]  # every honest node
    assert eq["fork_proofs_found_or_received"] > 0
    rep = _member(f, "replayer")
    assert rep["stale_duplicates"] >= 3 and rep["entries_refused_by_reason"] == {}
    wh = _member(f, "withholder")
    assert wh["others_entries_relayed"] == 0
    assert wh["starved_exchanges"] > wh["fed_exchanges"]


def test_no_false_alarm_against_an_honest_member(mix: tuple[Any, dict[str, Any]]) -> None:
    _, f = mix
    assert f["misbehaviour"]["false_alarms"] == {
        "honest_peers_with_refused_entries": 0,
        "honest_peers_quarantined": 0,
        "honest_peers_with_stale_duplicates": 0,
        "honest_peers_suspected_of_withholding": 0,
        "honest_feeds_frozen": 0,
        "max_starved_exchanges_of_an_honest_peer": 0,
    }


def test_no_honest_node_s_answers_change(mix: tuple[Any, dict[str, Any]]) -> None:
    run, f = mix
    m = f["misbehaviour"]
    assert m["unknown_entries_accepted_by_honest_nodes"] == 0  # nothing forged got in
    assert m["planted_identifiers_held_by_honest_nodes"] == 0  # nothing framed
    fin = f["queries"]["final"]
    honest = sum(1 for n in run.fleet if n.honest)
    assert fin["honest_nodes"] == honest
    assert fin["answers"] == honest * f["run"]["identifiers_in_ground_truth"] > 0
    assert f["run"]["identifiers_in_ground_truth"] == len(run.ledger.values())
    assert fin["disagree"] == 0 and fin["agree_with_ground_truth"] == fin["answers"]
    # the replayer re-sent retracted adds, and they stayed retracted
    assert run.workload.retracted_adds
    assert f["delivery"]["to_100_percent"]["rounds"]["undelivered"] == 0


def test_detection_is_not_vacuous_without_misbehaviour() -> None:
    _, f = simulate(small())
    m = f["misbehaviour"]
    assert m["members"] == [] and m["all_detected"]
    assert all(v == 0 for v in m["false_alarms"].values())


def test_a_forged_entry_carries_a_bad_signature() -> None:
    cons = Consortium.build(seed=1, founders=4, admins=1, later=0, gossip=GossipSettings())
    feeds = Feeds(MemoryStore(), cons.fresh_chain())
    victim, forger = cons.keys[1], cons.keys[2]
    op = AddOp(b"\x01" * 16, "phone", 1, "telecom_fraud", 5, T0 + DAY_MS)
    raw = forge_entry(forger, victim.id, seq=1, prev=None, ts=T0, cv=1, ops=[op])
    offer = feeds.offer(raw, T0)
    assert (offer.status, offer.reason) == ("rejected", "bad_signature")
    # the same payload signed by the victim itself is accepted: only the signature was wrong
    good = forge_entry(victim, victim.id, seq=1, prev=None, ts=T0, cv=1, ops=[op])
    assert feeds.offer(good, T0).status == "accepted"
