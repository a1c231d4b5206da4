"""`riskmesh sim run`: help with an example, a report written, mistakes refused."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from simkit import SMALL

from node.cli import main
from sim.report import PLOTS


def test_sim_run_has_help_with_an_example() -> None:
    res = CliRunner().invoke(main, ["sim", "run", "--help"])
    assert res.exit_code == 0 and "Example:" in res.output
    res = CliRunner().invoke(main, ["sim", "--help"])
    assert res.exit_code == 0 and "run" in res.output


def test_sim_run_writes_report_figures_and_plots(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SMALL + '[[byzantine]]\nrole = "forger"\n')
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["sim", "run", str(scenario), "--out", str(out), "--seed", "8", "--quiet"]
    )
    assert res.exit_code == 0, res.output
    assert "99 % of nodes reached" in res.output and "forger detected" in res.output
    figures = json.loads((out / "figures.json").read_text())
    assert figures["scenario"]["seed"] == 8
    assert figures["delivery"]["entries"] > 0
    for plot in (*PLOTS, "misbehaviour.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG"), plot
    report = (out / "report.md").read_text()
    assert "# Simulation report: small" in report
    assert "Delivery to 99 % of nodes" in report and "log2 N + ln N" in report
    assert "Wall-clock time" in report
    for plot in PLOTS:
        assert f"]({plot})" in report


def test_a_bad_scenario_is_refused_with_its_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[members]\ncount = 1\n')
    res = CliRunner().invoke(main, ["sim", "run", str(bad), "--quiet"])
    assert res.exit_code == 2
    assert "bad.toml: members.count" in res.output
    res = CliRunner().invoke(main, ["sim", "run", "no-such-scenario"])
    assert res.exit_code != 0 and "baseline-100" in res.output  # lists the shipped ones
