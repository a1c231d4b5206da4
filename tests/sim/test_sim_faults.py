"""Faults: a partition delays delivery and healing restores it; crashes and churn catch up."""

from __future__ import annotations

from simkit import simulate, small

from sim.scenario import LatencySpec

PARTITION = """
[[faults]]
kind = "partition"
at_s = 6
heal_s = 26
groups = [0.5, 0.5]
"""


def test_a_partition_delays_delivery_and_healing_restores_it() -> None:
    run, f = simulate(small(PARTITION))
    [p] = f["faults"]["partitions"]
    assert p["group_sizes"] == [15, 15]
    assert p["entries_published_during"] >= 10
    # nothing crossed while it stood: each entry stayed on its author's side
    assert p["deliveries_across_the_partition_before_heal"] == 0
    assert p["max_share_reached_before_heal"] <= 0.5
    # and on its side it did spread (the half is not cut off from itself)
    assert p["mean_share_reached_before_heal"] > 0.4
    # after the heal every entry reached every node, within a few rounds
    assert p["not_delivered_to_all_by_the_end"] == 0
    after = p["rounds_after_heal_to_100_percent"]
    assert after["undelivered"] == 0 and after["max"] < 5
    # the final answers of every node equal the ground truth
    assert f["queries"]["final"]["disagree"] == 0

    # every entry published while it stood reached its last node only after the heal ...
    heal_ms, at_ms = 26_000, 6_000
    during = [r for r in run.entries if r.valid and at_ms <= r.t < heal_ms]
    assert len(during) == p["entries_published_during"]
    assert all(max(r.held.values()) >= heal_ms for r in during)
    # ... whereas without the partition the same workload reaches everyone within rounds
    _, g = simulate(small())
    assert g["delivery"]["to_100_percent"]["rounds"]["max"] < 5


def test_crashed_nodes_catch_up_with_state_kept_or_lost() -> None:
    _, f = simulate(
        small(
            """
[[faults]]
kind = "crash"
at_s = 5
restart_s = 20
nodes = 3
state = "kept"

[[faults]]
kind = "crash"
at_s = 6
restart_s = 22
nodes = 3
state = "lost"
"""
        )
    )
    catch = f["faults"]["catch_up"]
    assert (
        sorted(c["why"] for c in catch) == ["restart, state kept"] * 3 + ["restart, state lost"] * 3
    )
    assert all(c["caught_up_after_s"] is not None and c["caught_up_after_s"] < 15 for c in catch)
    lost = [c for c in catch if c["why"] == "restart, state lost"]
    assert all(c["entries_to_catch_up"] > 0 for c in lost)
    assert f["queries"]["final"]["disagree"] == 0
    assert f["delivery"]["to_100_percent"]["rounds"]["undelivered"] == 0


def test_churn_loss_and_slow_links_still_deliver_everything() -> None:
    churn = """
[[faults]]
kind = "churn"
from_s = 2
to_s = 28
per_min = 20
down_s = [2, 6]
lost_state = 0.5

[[faults]]
kind = "slow_links"
from_s = 0
nodes = 0.2
extra_latency_ms = 400
bandwidth_kbps = 128
"""
    latency = LatencySpec(dist="uniform", min_ms=10, max_ms=200)
    _, f = simulate(small(churn, network={"latency": latency, "jitter": 0.3, "loss": 0.02}))
    assert f["run"]["exchange_failures"] > 0  # faults did happen
    assert len(f["faults"]["catch_up"]) >= 5
    assert f["delivery"]["to_100_percent"]["rounds"]["undelivered"] == 0
    assert f["queries"]["final"]["disagree"] == 0
