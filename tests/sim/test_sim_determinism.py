"""A run is reproducible from its seed: same seed, same figures.json, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simkit import SMALL, simulate, small

from sim.figures import dumps_figures

#: a little of everything that draws random numbers: misbehaviour, churn with
#: lost state, loss, slow links, a partition, onboarding and removal, watches and
#: queries at watching nodes, a disputer and an appeal spammer (whose appeals
#: reporters open and decide)
BUSY = """
[[byzantine]]
role = "forger"

[[byzantine]]
role = "replayer"

[[byzantine]]
role = "disputer"
reports_per_min = 20

[[byzantine]]
role = "appeal_spammer"
reports_per_min = 20

[policy]
max_disputes_per_day = 30
max_appeals_per_day = 5

[appeals]
decide_s = [1, 5]

[alerts]
watchers = 0.3
watch_share = 0.2
queries_per_s = 1
recent_query_s = 30

[[faults]]
kind = "churn"
from_s = 5
to_s = 30
per_min = 12
down_s = [2, 8]
lost_state = 0.5

[[faults]]
kind = "slow_links"
from_s = 0
nodes = 0.2
extra_latency_ms = 150
bandwidth_kbps = 256

[[faults]]
kind = "loss"
from_s = 10
to_s = 20
loss = 0.05

[[faults]]
kind = "partition"
at_s = 12
heal_s = 18

[[governance]]
kind = "onboard"
at_s = 8
count = 2

[[governance]]
kind = "remove"
at_s = 22
count = 1
"""


def test_same_seed_same_figures_byte_for_byte() -> None:
    a = dumps_figures(simulate(small(BUSY))[1])
    b = dumps_figures(simulate(small(BUSY))[1])
    assert a == b


def test_another_seed_other_figures() -> None:
    a = dumps_figures(simulate(small(BUSY))[1])
    c = dumps_figures(simulate(small(BUSY, seed=4))[1])
    assert a != c


def test_the_cli_in_another_process_with_another_hash_seed_agrees(tmp_path: Path) -> None:
    """figures.json does not depend on the process (set and dict order, hash randomisation)."""
    scenario = tmp_path / "busy.toml"
    scenario.write_text(SMALL + BUSY)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMESH_")}
    env["PYTHONHASHSEED"] = "12345"
    cmd = [sys.executable, "-c", "from node.cli import main; main()", "sim", "run"]
    cmd += [str(scenario), "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "figures.json").read_text() == dumps_figures(simulate(small(BUSY))[1])
