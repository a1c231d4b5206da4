"""Live mode: the same scenario on K real nodes, each `riskmesh serve` in its own process.

The consortium is founded as README "Running a consortium" says (``init``
each, ``charter genesis`` at the first with the others' join requests,
``charter sign`` by every other founding admin, ``charter install``
everywhere — the functions behind those commands), then every node is served
(``riskmesh serve``) on loopback with its
gossip settings from the scenario (``RISKMESH_GOSSIP_*`` environment
overrides). Reports go to random nodes' local APIs (``POST /v1/reports``) at
the scenario's pace; every node's ``GET /v1/status`` is polled, and an entry
counts as delivered to a node at the first poll that shows that node's head
of the author's feed at or past the entry's seq. Delivery figures come out in
the same shape as the simulator's, in seconds and in rounds of the configured
interval; they are wall-clock measurements, so they vary from run to run (the
poll interval bounds their resolution). Then every node answers a query for
every reported value and for never-reported ones.

The processes are run by :class:`node.localnet.LocalNet` (as for `riskmesh
demo`) and talked to with :class:`node.client.LocalClient`. Waiting is always
for a condition, with a deadline.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from contracts.errors import LiveError
from node.client import ClientError
from node.localnet import LocalNet, LocalNode, open_for_reports, wait_until
from sim.figures import (
    DESIGN_ROUNDS_99,
    SHARES,
    push_only_rounds,
    push_pull_async_rounds,
    push_pull_rounds,
    reach_time,
    summarize,
)
from sim.ledger import synthetic_value
from sim.scenario import LatencySpec, Scenario

__all__ = ["LiveError", "counterpart_scenario", "run_live", "simulate_counterpart"]

READY_DEADLINE_S = 30.0
POLL_S = 0.02


@contextmanager
def _consortium(sc: Scenario, root: Path, log: Callable[[str], None]) -> Iterator[list[LocalNode]]:
    """K founders, a genesis signed by the scenario's admins, every node served."""
    k = sc.live.nodes
    names = [f"m{i:04d}" for i in range(k)]
    env = {
        "RISKMESH_GOSSIP_INTERVAL_S": str(sc.live.interval_ms / 1000.0),
        "RISKMESH_GOSSIP_FANOUT": str(min(sc.gossip.fanout, k - 1)),
        "RISKMESH_GOSSIP_TIMEOUT_S": str(sc.network.http_timeout_ms / 1000.0),
        "RISKMESH_GOSSIP_FRAME_BYTES": str(sc.gossip.frame_bytes),
        "RISKMESH_LOG_LEVEL": "warning",
    }
    with LocalNet(root, names, env=env) as net:
        net.found(sc.name, names, names[: min(sc.members.admins, k)])
        net.start(deadline_s=READY_DEADLINE_S)
        log(f"started {k} nodes (`riskmesh serve`) on loopback; waiting for their key grants")
        wait_until(
            "every node to hold the epoch key (key grants travel by gossip)",
            lambda: all(open_for_reports(net.status(n)) for n in names),
            READY_DEADLINE_S,
        )
        yield [net[n] for n in names]


def _status(node: LocalNode) -> dict[str, Any] | None:
    try:
        return node.client.status()
    except ClientError:
        return None


def run_live(
    sc: Scenario,
    out: Path,
    *,
    log: Callable[[str], None] | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Run the scenario's live part; write report.md, figures.json and a plot into ``out``."""
    say = log or (lambda _m: None)
    out.mkdir(parents=True, exist_ok=True)
    interval_s = sc.live.interval_ms / 1000.0
    with (
        tempfile.TemporaryDirectory(prefix="riskmesh-live-") as tmp,
        _consortium(sc, Path(tmp), say) as nodes,
    ):
        t_start = time.monotonic()
        entries, values = _publish_and_watch(sc, nodes)
        elapsed = time.monotonic() - t_start
        say(f"{len(entries)} entries published; every node queried for every value")
        checks = _query_checks(nodes, values)
        traffic = sum(
            p.get("bytes_sent", 0) for n in nodes for p in (_status(n) or {}).get("peers", [])
        )
        names = [n.name for n in nodes]
    figures = _live_figures(sc, names, entries, checks, elapsed, traffic, interval_s)
    figures["simulated_counterpart"] = simulate_counterpart(sc)
    from sim.report import write_live_report

    write_live_report(figures, out, command=command)
    return figures


def _publish_and_watch(
    sc: Scenario, nodes: list[LocalNode]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Report at random nodes at the scenario's pace; poll every node's heads meanwhile."""
    lv = sc.live
    w = sc.workload
    rng = random.Random(f"{sc.seed}:live")
    entries: list[dict[str, Any]] = []
    values: list[tuple[str, str]] = []
    next_report = time.monotonic()
    deadline = next_report + lv.deadline_s
    while True:
        if len(entries) < lv.reports and time.monotonic() >= next_report:
            author = rng.choice(nodes)
            items = []
            for _ in range(rng.randint(*w.ops_per_entry)):
                kind = rng.choice(w.kinds)
                value = synthetic_value(kind, len(values))
                values.append((kind, value))
                items.append(
                    {
                        "kind": kind,
                        "value": value,
                        "category": "telecom_fraud",
                        "severity": rng.randint(1, 5),
                        "ttl_days": w.ttl_days,
                    }
                )
            try:
                body = author.client.report(items)
            except ClientError as err:
                raise LiveError(f"report to {author.name} refused: {err.one_line()}") from None
            t_pub = time.monotonic()
            entries.append(
                {
                    "author": author.name,
                    "seq": body["entry"]["seq"],
                    "t": t_pub,
                    "held": {author.name: t_pub},
                }
            )
            next_report = t_pub + lv.report_every_ms / 1000.0
        for n in nodes:
            st = _status(n)
            if st is None:
                continue
            t = time.monotonic()
            heads = {m["name"]: (m.get("head") or {}).get("seq", 0) for m in st["members"]}
            for rec in entries:
                if n.name not in rec["held"] and heads.get(rec["author"], 0) >= rec["seq"]:
                    rec["held"][n.name] = t
        everywhere = all(len(rec["held"]) == len(nodes) for rec in entries)
        if (len(entries) == lv.reports and everywhere) or time.monotonic() > deadline:
            return entries, values
        time.sleep(POLL_S)


def _query_checks(nodes: list[LocalNode], values: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every node answers every reported value, and 2 000 never-reported phone numbers."""
    present = [{"kind": k, "value": v} for k, v in values]
    absent = [
        {"kind": "phone", "value": synthetic_value("phone", 50_000_000 + i)} for i in range(2_000)
    ]
    checks = []
    for n in nodes:
        try:
            answers = n.client.query(present)
            absent_answers = n.client.query(absent)
        except ClientError as e:
            raise LiveError(f"query at {n.name} refused: {e.one_line()}") from None
        checks.append(
            {
                "node": n.name,
                "reported": len(present),
                "matched": sum(1 for r in answers if r.get("match")),
                "absent": len(absent),
                "false_matches": sum(1 for r in absent_answers if r.get("match")),
                "index": (_status(n) or {}).get("index"),
            }
        )
    return checks


def counterpart_scenario(sc: Scenario) -> Scenario:
    """The live run as a simulation: K nodes, the live interval, loopback-like latency,
    the same number and pace of reports; no faults, misbehaviour or governance."""
    lv = sc.live
    stop = lv.reports * max(lv.report_every_ms, 1) / 1000.0
    return sc.replace(
        name=f"{sc.name}-live-counterpart",
        duration_s=stop + 20.0,
        members={"count": lv.nodes, "admins": min(sc.members.admins, lv.nodes)},
        gossip={"interval_ms": lv.interval_ms, "fanout": min(sc.gossip.fanout, lv.nodes - 1)},
        network={"latency": LatencySpec(dist="fixed", value_ms=1.0), "loss": 0.0},
        workload={
            "reports_per_s": 1000.0 / max(lv.report_every_ms, 1),
            "retractions_per_s": 0.0,
            "start_s": 0.0,
            "stop_s": stop,
        },
        queries={"every_s": 0.0, "final_nodes": 0, "final_absent": 2_000},
        faults=(),
        byzantine=(),
        governance=(),
    )


def simulate_counterpart(sc: Scenario) -> dict[str, Any]:
    """Delivery figures of :func:`counterpart_scenario`, simulated (seeded, deterministic)."""
    from sim.figures import compute_figures
    from sim.runner import Simulation

    f = compute_figures(Simulation(counterpart_scenario(sc)).run())
    return {"delivery": f["delivery"], "expectation": f["expectation"]}


def _live_figures(
    sc: Scenario,
    names: list[str],
    entries: list[dict[str, Any]],
    checks: list[dict[str, Any]],
    elapsed: float,
    traffic: int,
    interval_s: float,
) -> dict[str, Any]:
    k = len(names)
    delivery: dict[str, Any] = {"entries": len(entries), "nodes": k}
    for key, share in SHARES.items():
        secs = []
        for e in entries:
            times = sorted(t - e["t"] for t in e["held"].values())
            t = reach_time(times, k, share)
            if t is not None:
                secs.append(max(0.0, t))
        delivery[f"to_{key}_percent"] = {
            "seconds": summarize(secs, len(entries)),
            "rounds": summarize([s / interval_s for s in secs], len(entries)),
            "cdf_rounds": [round(s / interval_s, 3) for s in sorted(secs)],
        }
    return {
        "mode": "live",
        "scenario": sc.to_json(),
        "run": {
            "nodes": k,
            "interval_s": interval_s,
            "wall_seconds": round(elapsed, 3),
            "rounds": round(elapsed / interval_s, 3),
            "poll_s": POLL_S,
        },
        "delivery": delivery,
        "expectation": {
            "nodes": k,
            "fanout": min(sc.gossip.fanout, k - 1),
            "push_only_log2_n_plus_ln_n": round(push_only_rounds(k), 3),
            "push_pull_mean_field_rounds_99": round(
                push_pull_rounds(k, min(sc.gossip.fanout, k - 1)), 3
            ),
            "push_pull_async_mean_field_rounds_99": round(
                push_pull_async_rounds(k, min(sc.gossip.fanout, k - 1)), 3
            ),
            "design_budget_rounds_99_at_1000_nodes_fanout_3": DESIGN_ROUNDS_99,
        },
        "traffic": {
            "engine_bytes_sent": traffic,
            "bytes_per_node_per_round": round(traffic / (k * elapsed / interval_s), 1)
            if elapsed
            else 0.0,
        },
        "queries": checks,
    }
