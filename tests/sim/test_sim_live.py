"""Live mode: real `riskmesh serve` processes on loopback, the same delivery figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIVE = """
name = "live-small"
[members]
count = 20
admins = 2
[workload]
ops_per_entry = [1, 5]
[live]
nodes = 3
interval_ms = 300
reports = 5
report_every_ms = 300
deadline_s = 60
"""


def test_live_mode_reports_delivery_from_real_nodes(tmp_path: Path) -> None:
    scenario = tmp_path / "live.toml"
    scenario.write_text(LIVE)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["sim", "run", str(scenario), "--live", "--out", str(out)])
    assert res.exit_code == 0, res.output
    f = json.loads((out / "figures.json").read_text())
    assert f["mode"] == "live" and f["run"]["nodes"] == 3
    d = f["delivery"]
    assert d["entries"] == 5
    assert d["to_100_percent"]["seconds"]["undelivered"] == 0
    assert d["to_100_percent"]["seconds"]["max"] < 30
    for c in f["queries"]:  # every node matches every reported value, nothing else
        assert c["matched"] == c["reported"] > 0
        assert c["false_matches"] == 0
        assert c["index"]["count"] >= c["reported"]
    sim = f["simulated_counterpart"]["delivery"]
    assert sim["nodes"] == 3 and sim["to_100_percent"]["rounds"]["undelivered"] == 0
    report = (out / "report.md").read_text()
    assert "3 real nodes" in report and "simulated: rounds median" in report
    assert (out / "delivery_cdf.png").read_bytes().startswith(b"\x89PNG")
