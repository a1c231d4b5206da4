"""`riskmesh sim`: the simulator's commands (click). Thin: parse, call, print."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from contracts.errors import RiskmeshError

__all__ = ["SCENARIOS_DIR", "resolve_scenario", "sim"]

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"


def resolve_scenario(name: str) -> Path:
    """A scenario file: a path, or the name of one shipped in sim/scenarios/."""
    p = Path(name)
    if p.is_file():
        return p
    shipped = SCENARIOS_DIR / (name if name.endswith(".toml") else f"{name}.toml")
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(x.stem for x in SCENARIOS_DIR.glob("*.toml")))
    raise click.BadParameter(f"no file {name!r} and no shipped scenario of that name ({known})")


@click.group()
def sim() -> None:
    """Run many real protocol engines on a virtual clock, or a few real nodes on loopback."""


@sim.command("run")
@click.argument("scenario")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for report.md, figures.json and the plots [default: sim-out/NAME].",
)
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@click.option(
    "--live",
    is_flag=True,
    help="Start the scenario's [live] node count as real `riskmesh serve` processes on "
    "loopback instead of simulating.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(scenario: str, out: Path | None, seed: int | None, live: bool, quiet: bool) -> None:
    """Run a scenario (a TOML file, or the name of one in sim/scenarios/) and write its report.

    The same scenario and seed give the same figures.json, byte for byte.
    SCENARIO is a path or a shipped name: baseline-100, thousand, partition-heal,
    churn, byzantine-mix, onboarding-load, alerts, after-match.

    \b
    Example:
        riskmesh sim run baseline-100 --out ./sim-baseline
        riskmesh sim run sim/scenarios/byzantine-mix.toml --out ./byz --seed 7
        riskmesh sim run baseline-100 --live --out ./sim-live
    """
    from sim.scenario import ScenarioError, load_scenario

    path = resolve_scenario(scenario)
    try:
        sc = load_scenario(path, seed=seed)
    except ScenarioError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(2)
    out = out or Path("sim-out") / (sc.name + ("-live" if live else ""))
    command = (
        f"riskmesh sim run {scenario}"
        + (f" --seed {seed}" if seed is not None else "")
        + (" --live" if live else "")
    )
    try:
        if live:
            _run_live(sc, out, quiet=quiet, command=command)
        else:
            _run_sim(sc, out, quiet=quiet, command=command)
    except RiskmeshError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(1)


def _run_sim(sc: object, out: Path, *, quiet: bool, command: str) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sim.figures import compute_figures
    from sim.report import write_report
    from sim.runner import Simulation
    from sim.scenario import Scenario

    assert isinstance(sc, Scenario)
    console = Console(stderr=True)
    started = time.perf_counter()
    with Progress(
        TextColumn(f"[bold]{sc.name}[/] seed {sc.seed}"),
        BarColumn(),
        TextColumn("{task.fields[virtual]:>7.1f} s virtual"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as progress:
        task = progress.add_task("run", total=1.0, virtual=0.0)

        def tick(share: float) -> None:
            progress.update(task, completed=share, virtual=share * sc.duration_s)

        figures = compute_figures(Simulation(sc, progress=tick).run())
    wall = time.perf_counter() - started
    write_report(figures, out, wall_s=wall, command=command)
    d99 = figures["delivery"]["to_99_percent"]["rounds"]
    e = figures["expectation"]
    click.echo(
        f"{sc.name}: {figures['run']['nodes_started']} nodes, {figures['delivery']['entries']} "
        f"entries; 99 % of nodes reached in a median {d99['median']} rounds (max {d99['max']}); "
        f"push-pull expectation {e['push_pull_mean_field_rounds_99']}, push only "
        f"{e['push_only_log2_n_plus_ln_n']}"
    )
    m = figures["misbehaviour"]
    if m["members"]:
        click.echo(
            "misbehaviour: "
            + ", ".join(
                f"{x['role']} {'detected' if x['detected'] else 'NOT detected'}"
                for x in m["members"]
            )
        )
    al = figures.get("alerts")
    if al:
        u, o = al["latency"]["urgent"], al["latency"]["other"]
        click.echo(
            f"alerts: {al['raised']} at {al['watching_nodes']} watching nodes; urgent p50 "
            f"{u['ms']['p50']} ms, p99 {u['ms']['p99']} ms; other p50 {o['rounds']['p50']} "
            f"rounds, p99 {o['rounds']['p99']} rounds"
        )
    am = figures.get("after_match")
    if am:
        for x in am["abusers"]:
            click.echo(
                f"{x['role']}: {x['ops_published_within_quota']} {x['op']} ops within its "
                f"quota of {x['quota_per_day']}, {x['ops_over_quota']} over it, refused "
                f"{x['over_quota_refusals_by_honest_nodes']} times by honest nodes"
            )
    fin = figures["queries"]["final"]
    fp = figures["queries"]["false_positive_rate"]
    click.echo(
        f"queries: {fin['agree_with_ground_truth']}/{fin['answers']} answers equal to the "
        "ground truth; "
        f"Bloom FP measured {fp['measured']:.6f}, expected {fp['expected_at_fill']:.6f}, "
        f"configured {fp['configured']}"
    )
    click.echo(f"wall time {wall:.1f} s; report in {out / 'report.md'}")


def _run_live(sc: object, out: Path, *, quiet: bool, command: str) -> None:
    from sim.live import run_live
    from sim.scenario import Scenario

    assert isinstance(sc, Scenario)
    figures = run_live(sc, out, log=None if quiet else click.echo, command=command)
    d = figures["delivery"]
    click.echo(
        f"{sc.name} live: {figures['run']['nodes']} real nodes, {d['entries']} entries; 99 % of "
        f"nodes reached in a median {d['to_99_percent']['rounds']['median']} rounds "
        f"({d['to_99_percent']['seconds']['median']} s); report in {out / 'report.md'}"
    )
