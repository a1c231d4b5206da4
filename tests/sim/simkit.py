"""Small scenarios for the simulator's tests: tens of nodes, tens of virtual seconds."""

from __future__ import annotations

from typing import Any

from sim.figures import Figures, compute_figures
from sim.record import RunRecord
from sim.runner import Simulation
from sim.scenario import Scenario, parse_scenario

SMALL = """
name = "small"
seed = 3
duration_s = 40

[members]
count = 30
admins = 3

[gossip]
interval_ms = 2000
fanout = 3

[network]
latency = { dist = "lognormal", median_ms = 30, sigma = 0.5 }

[workload]
reports_per_s = 1.0
ops_per_entry = [1, 8]
retractions_per_s = 0.2
stop_s = 30

[queries]
every_s = 10
nodes = 2
present = 50
absent = 500
final_nodes = 3
final_absent = 2000
"""


def small(extra: str = "", **changes: Any) -> Scenario:
    """The small scenario with TOML ``extra`` appended and ``changes`` applied."""
    sc = parse_scenario(SMALL + extra)
    return sc.replace(**changes) if changes else sc


def simulate(sc: Scenario) -> tuple[RunRecord, Figures]:
    """Run ``sc``; its record and figures."""
    record = Simulation(sc).run()
    return record, compute_figures(record)


def simulate_open(sc: Scenario) -> tuple[Simulation, RunRecord, Figures]:
    """Run ``sc``; the simulation too, for tests that look inside the nodes."""
    run = Simulation(sc)
    record = run.run()
    return run, record, compute_figures(record)
