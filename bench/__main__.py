"""Run every benchmark and write docs/benchmarks.md.

Each benchmark runs as its own subprocess (``sys.executable bench/<script>.py
ARGS``, with this checkout first on ``PYTHONPATH``); its output is shown as it
comes and kept, and its last line, ``FIGURES {json}``, gives the figures of the
summary table. Around each one the runner reads /proc/loadavg and how much CPU
the rest of the machine used, so a reader can judge a figure taken on a busy
machine.

    python -m bench                        # full sizes (~35 min on 2 cores), docs/benchmarks.md
    python -m bench --quick                # small sizes, a smoke test; writes to a temp file
    python -m bench --only bench_http      # some of them (by script name)
    python -m bench --out PATH
    python -m bench --apart bench_scale=scale.log   # its output from a run of its own

``--apart SCRIPT=FILE`` takes a benchmark's figures and output from FILE, the
standard output of ``python bench/SCRIPT.py`` with its full-size arguments run
on its own on this machine (bench_scale at 20 M takes longer than all the others
together), instead of running it again; the report says so beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
FIGURES_PREFIX = "FIGURES "
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
GIT_STATUS = ("git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=all")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bench:
    script: str
    what: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout_s: float


BENCHES: tuple[Bench, ...] = (
    Bench(
        script="bench_protocol.py",
        what="protocol core: tokens/s, entry sign, verify and accept rates, bytes per op",
        full=("--seconds", "1.0"),
        quick=("--seconds", "0.1"),
        timeout_s=300,
    ),
    Bench(
        script="bench_publish.py",
        what="publish (Node.report, and POST /v1/reports to a served node driven by wrk) and "
        "replicate (Node.accept_entries, a gossip frame a transaction) into SQLite",
        full=("--reports", "100000", "--http-seconds", "10"),
        quick=("--reports", "3000", "--http-seconds", "2"),
        timeout_s=600,
    ),
    Bench(
        script="bench_query.py",
        what="query in-process (the verdict path over the summaries, canonicalisation per "
        "kind), HTTP batch in one process; set, SQLite and Redis SMISMEMBER baselines",
        full=("--n", "1000000", "--seconds", "1.0"),
        quick=("--n", "20000", "--seconds", "0.1"),
        timeout_s=900,
    ),
    Bench(
        script="bench_http.py",
        what="a served node (writer + serving processes) driven by wrk: HTTP batches at three "
        "mixes, single items closed-loop and paced; bare aiohttp and Redis SMISMEMBER baselines",
        full=("--n", "200000", "--seconds", "5", "--batch-seconds", "5"),
        quick=("--n", "5000", "--seconds", "1", "--batch-seconds", "0.5", "--rates", "500"),
        timeout_s=900,
    ),
    Bench(
        script="bench_index.py",
        what="Bloom index at 1 M live indicators: bytes per indicator, checks/s",
        full=("--tokens", "1000000", "--repeats", "3"),
        quick=("--tokens", "100000", "--repeats", "1"),
        timeout_s=600,
    ),
    Bench(
        script="bench_index.py",
        what="Bloom index at 10 M live indicators: bytes per indicator, checks/s",
        full=("--tokens", "10000000", "--repeats", "2"),
        quick=("--tokens", "200000", "--repeats", "1"),
        timeout_s=900,
    ),
    Bench(
        script="bench_alerts.py",
        what="alert latency across four real nodes at 2 s rounds: urgent reports "
        "(pushed at once) and non-urgent ones (gossip rounds)",
        full=("--urgent", "200", "--normal", "60"),
        quick=("--urgent", "20", "--normal", "8"),
        timeout_s=600,
    ),
    Bench(
        script="bench_slow_clients.py",
        what="local single-item queries while 1 100 slow connections hold the peer port",
        full=("--slow", "1100", "--queries", "400"),
        quick=("--slow", "200", "--queries", "50"),
        timeout_s=300,
    ),
    Bench(
        script="bench_maintenance.py",
        what="single-item latency on a served node idle, during a summary base rebuild at "
        "10 M live and during a catch-up of 1 M ops",
        full=(),
        quick=("--quick",),
        timeout_s=1800,
    ),
    Bench(
        script="bench_scale.py",
        what="a node at 20 M live indicators through the real store: replication, disk, "
        "memory, start-up, queries and a rebuild, extrapolated to 100 M",
        full=("--n", "20000000"),
        quick=("--n", "20000"),
        timeout_s=3600,
    ),
    Bench(
        script="bench_gossip.py",
        what="gossip: catch-up of a fresh node from one peer, idle exchange bytes",
        full=("--ops", "1000000"),
        quick=("--ops", "20000"),
        timeout_s=900,
    ),
)

NOT_MEASURED = (
    "Gossip reach (an entry at 99 % of 1 000 nodes within 8 rounds at fanout 3) is a "
    "property of the protocol on a virtual clock; the simulator in `sim/` measures it, "
    "not these benchmarks.",
    "The index is measured at 1 M and 10 M live indicators, not at the 100 M a node is "
    "meant to hold (generating 100 M tokens as Python objects takes longer than this run "
    "allows). Bytes per indicator depend only on the sizing rule (bench_index: 2x headroom "
    "at the configured error rate; a node's base file filter is sized for exactly its "
    "tokens, half that), not on N: they are the same at 1 M and 10 M.",
    "Idle exchange bytes count the sealed envelopes; the HTTP request and response that "
    "carry them between two real nodes add their headers on top.",
)


# -- the machine and its load -------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({os_name})"
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} ({usable} usable by this process)",
        "RAM": ram,
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": os_name,
        "code": code_version(),
    }


def code_version() -> str:
    """The commit measured, and whether contracts/, protocol/ or node/ had uncommitted
    changes (read-only git calls; ``--no-optional-locks`` so nothing is written)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            [*GIT_STATUS, "--", "contracts", "protocol", "node"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    if dirty:
        n = len(dirty.splitlines())
        return f"commit {head} plus uncommitted changes to {n} file(s) in contracts/protocol/node"
    return f"commit {head}, no uncommitted changes in contracts/protocol/node"


def loadavg() -> tuple[float, float, float] | None:
    try:
        a, b, c = Path("/proc/loadavg").read_text().split()[:3]
        return float(a), float(b), float(c)
    except (OSError, ValueError):
        return None


def busy_cpu_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (user, nice, system, irq, softirq,
    steal), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# -- running one benchmark -----------------------------------------------------------


@dataclass
class Run:
    bench: Bench
    args: tuple[str, ...]
    output: list[str] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    returncode: int | None = None
    timed_out: bool = False
    wall_s: float = 0.0
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None
    own_cpu_s: float = 0.0
    others_cores: float | None = None
    #: run on its own, not by this runner: where its output was read from, and when
    apart: str | None = None

    @property
    def command(self) -> str:
        return shlex.join(["python", f"bench/{self.bench.script}", *self.args])

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and bool(self.figures)


def run_one(bench: Bench, args: tuple[str, ...], label: str) -> Run:
    run = Run(bench, args)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    run.load_before = loadavg()
    print(f"{label} {run.command}  (load average {fmt_load(run.load_before)})", flush=True)
    busy0, own0, t0 = busy_cpu_seconds(), children_cpu_seconds(), time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / bench.script), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout stops its servers too
    )

    def stop() -> None:
        run.timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(bench.timeout_s, stop)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(FIGURES_PREFIX):
                data = json.loads(line[len(FIGURES_PREFIX) :])
                run.figures, run.params = data["figures"], data.get("params", {})
                print(f"    ({len(run.figures)} figures collected)", flush=True)
                continue
            run.output.append(line)
            print("    " + line, flush=True)
        run.returncode = proc.wait()
    finally:
        timer.cancel()
    run.wall_s = time.perf_counter() - t0
    run.own_cpu_s = children_cpu_seconds() - own0
    busy1 = busy_cpu_seconds()
    if busy0 is not None and busy1 is not None and run.wall_s > 0:
        run.others_cores = max(0.0, (busy1 - busy0 - run.own_cpu_s) / run.wall_s)
    run.load_after = loadavg()
    state = "ok" if run.ok else ("TIMED OUT" if run.timed_out else f"FAILED ({run.returncode})")
    print(
        f"    -> {state} in {run.wall_s:.0f} s; load average after {fmt_load(run.load_after)}; "
        f"other processes used {fmt_cores(run.others_cores)} meanwhile",
        flush=True,
    )
    return run


def run_apart(bench: Bench, path: Path) -> Run:
    """A benchmark's run made on its own (see ``--apart``), from its standard output."""
    run = Run(bench, bench.full)
    for line in path.read_text().splitlines():
        if line.startswith(FIGURES_PREFIX):
            data = json.loads(line[len(FIGURES_PREFIX) :])
            run.figures, run.params = data["figures"], data.get("params", {})
            continue
        run.output.append(line)
        if line.startswith("whole run ") and line.endswith(" s"):
            with contextlib.suppress(ValueError):
                run.wall_s = float(line.split()[2])
    run.returncode = 0 if run.figures else 1
    ended = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    run.apart = f"run on its own, ended {ended:%Y-%m-%d %H:%M} UTC (output from {path.name})"
    print(f"    {bench.script}: {run.apart}; {len(run.figures)} figures", flush=True)
    return run


# -- the report ------------------------------------------------------------------------


def fmt_load(load: tuple[float, float, float] | None) -> str:
    return "n/a" if load is None else " / ".join(f"{x:.2f}" for x in load)


def fmt_cores(cores: float | None) -> str:
    return "n/a" if cores is None else f"{cores:.2f} cores"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if unit == "ms" or abs(value) < 10:
        text = f"{value:,.2f}"
    elif abs(value) < 1000 and value != int(value):
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.0f}"
    return f"{text} {unit}"


OPS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


def fmt_budget(f: dict[str, Any]) -> str:
    if f["budget_op"] is None:
        return "—"
    text = f"{OPS[f['budget_op']]} {fmt_value(f['budget'], f['unit'])}"
    if f.get("also"):
        text += f", and {f['also']['what']}"
    return text


def fmt_met(f: dict[str, Any]) -> str:
    if f["met"] is None:
        return "—" if f["budget_op"] is None else "not measured"
    if f["met"]:
        return "yes"
    reasons = []
    op_held = (
        f["value"] is not None
        and {
            ">=": f["value"] >= f["budget"],
            ">": f["value"] > f["budget"],
            "<=": f["value"] <= f["budget"],
            "<": f["value"] < f["budget"],
        }[f["budget_op"]]
    )
    if not op_held and f["ratio"] is not None:
        r = f["ratio"]
        reasons.append(f"{r:.2f}x the budget" if r < 10 else f"{r:,.0f}x the budget")
    also = f.get("also")
    if also and not also["held"]:
        reasons.append(f"and not {also['what']}" if reasons else f"not {also['what']}")
    return "**no** (" + "; ".join(reasons) + ")"


def fmt_baselines(f: dict[str, Any]) -> str:
    parts = []
    for b in f["baselines"]:
        if b["value"] is None:
            parts.append(f"{b['what']}: not measured")
        else:
            ratio = ""
            if f["value"] and b["value"] and b["unit"] == f["unit"]:
                ratio = f" ({f['value'] / b['value']:.2f}x)"
            parts.append(f"{b['what']}: {fmt_value(b['value'], b['unit'])}{ratio}")
    return "<br>".join(parts) if parts else "—"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(
    runs: list[Run], info: dict[str, str], started: dt.datetime, wall_s: float, quick: bool
) -> str:
    out: list[str] = ["# Benchmarks", ""]
    if quick:
        out += [
            "> **Quick run (`python -m bench --quick`): smoke-test sizes. These figures are "
            "not the project's figures; run `python -m bench` for those.**",
            "",
        ]
    out += [
        f"Written by `python -m bench{' --quick' if quick else ''}` on "
        f"{started:%Y-%m-%d %H:%M} UTC; the whole run took {wall_s / 60:.1f} min. "
        "Every figure below was measured in that run on the machine described here, "
        "each beside a baseline measured in the same run (DESIGN §13); nothing is "
        "typed in by hand. To measure again, see [Rerunning](#rerunning).",
        "",
        *[
            f"`{run.bench.script}` was {run.apart}: its figures come from that run, on "
            "this machine, with the arguments shown (`python -m bench --apart`)."
            for run in runs
            if run.apart
        ],
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {k} | {cell(v)} |" for k, v in info.items()]
    out += [
        "",
        "## Summary",
        "",
        "“met?” compares the measured value with the budget of DESIGN §13; where it is "
        "not met, the ratio measured/budget is given. Figures without a budget are "
        "stages of a budgeted path or context for one. Ratios in the baseline column are "
        "measured/baseline.",
        "",
        "| figure | measured | baseline in the same run | budget (DESIGN §13) | met? | notes |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        if not run.ok:
            state = "timed out" if run.timed_out else f"exited with {run.returncode}"
            out.append(
                f"| `{run.bench.script}` {cell(' '.join(run.args))} | **failed**: {state}, "
                "see its output below | | | | |"
            )
        for f in run.figures:
            out.append(
                f"| {cell(f['name'])} | {fmt_value(f['value'], f['unit'])} | "
                f"{cell(fmt_baselines(f))} | {cell(fmt_budget(f))} | {fmt_met(f)} | "
                f"{cell(f.get('note', ''))} |"
            )
    budgeted = [f for run in runs for f in run.figures if f["budget_op"] is not None]
    met = [f for f in budgeted if f["met"]]
    missed = [f["name"] for f in budgeted if f["met"] is False]
    out += ["", f"**{len(met)} of {len(budgeted)} budgeted figures met.**"]
    if missed:
        out += ["Not met: " + "; ".join(missed) + "."]
    out += [
        "",
        "### Not measured here",
        "",
        *[f"- {line}" for line in NOT_MEASURED],
        "",
        "## Load during the run",
        "",
        "The benchmarks share the machine with whatever else runs on it (here, possibly "
        "other engineers' simulator runs and tests). Load averages are 1/5/15-minute "
        "figures from /proc/loadavg; “other processes” is the CPU the rest of the machine "
        "used while the benchmark ran (busy time in /proc/stat minus the benchmark's own), "
        f"in cores out of {os.cpu_count()}. Read throughput figures taken while others "
        "used a core as lower bounds.",
        "",
        "| benchmark | wall time | load before | load after | own CPU | other processes |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.apart:
            out.append(f"| `{run.command}` | {run.wall_s:.0f} s | {run.apart} | | | |")
            continue
        out.append(
            f"| `{run.command}` | {run.wall_s:.0f} s | {fmt_load(run.load_before)} | "
            f"{fmt_load(run.load_after)} | {run.own_cpu_s:.0f} CPU s | "
            f"{fmt_cores(run.others_cores)} |"
        )
    out += ["", "## Full output", ""]
    for run in runs:
        when = (
            f"{run.wall_s:.0f} s, {run.apart}"
            if run.apart
            else f"{run.wall_s:.0f} s, load average {fmt_load(run.load_before)} "
            f"before and {fmt_load(run.load_after)} after; other processes used "
            f"{fmt_cores(run.others_cores)}"
        )
        out += [
            f"### `{run.command}`",
            "",
            f"{run.bench.what}. {when}. (The closing `FIGURES` JSON line is left out.)",
            "",
            "```text",
            *run.output,
            "```",
            "",
        ]
    full = " ".join(f"`python bench/{b.script} {shlex.join(b.full)}`" for b in BENCHES)
    out += [
        "## Rerunning",
        "",
        "From the repository root, with the project installed (`pip install -e '.[test]'`):",
        "",
        "```sh",
        "python -m bench              # all at full size; rewrites docs/benchmarks.md",
        "python -m bench --quick      # small sizes, a smoke test (writes to a temp file)",
        "python -m bench --only bench_http --out /tmp/http.md   # some of them",
        "python bench/bench_query.py --help                      # any one alone",
        "```",
        "",
        "bench_http drives the node with `wrk` (Debian package `wrk`) and takes its Redis "
        "baseline from `redis-benchmark` and from redis-py with the hiredis parser; "
        "bench_query's Redis baseline needs `redis-server` and the bench extra "
        "(`pip install -e '.[bench]'`: redis, hiredis). Without them those baselines are "
        "reported as skipped. For stable "
        "figures, run on an otherwise idle machine. The full run uses these sizes: "
        f"{full}.",
        "",
    ]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument(
        "--out",
        type=Path,
        help=f"where to write the report (default {DEFAULT_OUT.relative_to(ROOT)}; "
        "with --quick, a temp file)",
    )
    ap.add_argument(
        "--only", nargs="+", metavar="SCRIPT", help="run only these (e.g. bench_http bench_index)"
    )
    ap.add_argument(
        "--apart",
        nargs="+",
        default=[],
        metavar="SCRIPT=FILE",
        help="take SCRIPT's figures from FILE, its output of a full-size run on its own",
    )
    args = ap.parse_args()
    apart: dict[str, Path] = {}
    for spec in args.apart:
        name, sep, file = spec.partition("=")
        if not sep or not Path(file).is_file():
            ap.error(f"--apart takes SCRIPT=FILE with an existing FILE, got {spec!r}")
        apart[name.removesuffix(".py")] = Path(file)
    out = args.out
    if out is None:
        out = (
            Path(tempfile.gettempdir()) / "riskmesh-benchmarks-quick.md"
            if args.quick
            else DEFAULT_OUT
        )
    chosen = [
        b
        for b in BENCHES
        if not args.only
        or any(b.script.removesuffix(".py") == o.removesuffix(".py") for o in args.only)
    ]
    if not chosen:
        ap.error(
            f"no benchmark named {args.only}; they are " + ", ".join(b.script for b in BENCHES)
        )
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    info = machine()
    print(f"riskmesh benchmarks{' (quick)' if args.quick else ''}, {len(chosen)} to run")
    for k, v in info.items():
        print(f"  {k}: {v}")
    runs = []
    for i, bench in enumerate(chosen, 1):
        given = apart.get(bench.script.removesuffix(".py"))
        if given is not None:
            runs.append(run_apart(bench, given))
            continue
        runs.append(
            run_one(bench, bench.quick if args.quick else bench.full, f"[{i}/{len(chosen)}]")
        )
    wall = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(runs, info, started, wall, args.quick))
    failed = [r.command for r in runs if not r.ok]
    print(f"wrote {out} after {wall / 60:.1f} min")
    if failed:
        print("failed: " + "; ".join(failed), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
