"""The simulator: real protocol engines on a virtual clock over a faulty network.

``Simulation(load_scenario(path)).run()`` runs a scenario and returns its
:class:`RunRecord`; ``compute_figures`` turns the record into figures;
``write_report`` writes report.md, figures.json and the plots. ``riskmesh sim
run`` does all three (see docs/simulator.md).
"""

from sim.figures import compute_figures, dumps_figures
from sim.record import RunRecord
from sim.report import write_report
from sim.runner import Simulation
from sim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = [
    "RunRecord",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "compute_figures",
    "dumps_figures",
    "load_scenario",
    "parse_scenario",
    "write_report",
]
