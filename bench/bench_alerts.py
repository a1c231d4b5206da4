"""Alert latency: a report at one node -> an alert at the watching nodes (DESIGN §13, §14).

Four real nodes (``node.localnet.LocalNet``, each ``riskmesh serve`` in its own
process) gossip every ``--interval`` seconds (2 by default). Every node watches
every value; reports rotate over the four nodes, one every ``--gap`` seconds,
and each raises an alert at the three other nodes. The figure is the alert's
own ``latency_ms``: from the entry's time (when the reporting node signed it)
to the alert at the watching node, both on this machine's clock.

Urgent reports (``money_mule``, offered to every peer at once) and non-urgent
ones (``promotion_abuse``, carried by the gossip rounds) are measured apart;
the non-urgent ones are the baseline measured in the same run — what the rounds
alone give — and are also given in rounds (latency / interval).

    python bench/bench_alerts.py [--urgent 200] [--normal 60] [--interval 2] [--gap 0.1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import build_node, figure, percentile, print_figures

from node.localnet import LocalNet, http_call, wait_until

NAMES = "ABCD"


def open_for_reports(node: Any) -> bool:
    code, st = node.call("GET", "/v1/status")
    return code == 200 and bool(st["epochs"]) and not st.get("syncing", False)


def report(node: Any, value: str, category: str) -> float:
    """Report one value at ``node``; the seconds the API call took."""
    item: dict[str, Any] = {"kind": "account", "value": value, "category": category}
    if category == "promotion_abuse":
        item["ttl_days"] = 30
    t = time.perf_counter()
    code, body = node.call("POST", "/v1/reports", {"items": [item]})
    took = time.perf_counter() - t
    if code != 201:
        raise SystemExit(f"report at {node.name} answered {code}: {body}")
    return took


def run_phase(
    net: LocalNet, ids: dict[str, str], values: list[str], category: str, gap: float
) -> tuple[list[int], list[float]]:
    """Report ``values`` round-robin over the nodes; (alert latencies in ms, report
    call times in s). Each node's alert cursor is reset to its last id first."""
    start = {n: net[n].call("GET", "/v1/status")[1]["alerts"]["last_id"] for n in NAMES}
    calls = []
    by = {n: 0 for n in NAMES}
    for i, v in enumerate(values):
        reporter = NAMES[i % len(NAMES)]
        by[reporter] += 1
        calls.append(report(net[reporter], v, category))
        time.sleep(gap)  # the workload's pace, not a wait for a result
    want = {n: len(values) - by[n] for n in NAMES}
    alerts = []
    for name in NAMES:
        node = net[name]
        after, got = start[name], []
        deadline = time.monotonic() + 120
        while len(got) < want[name]:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: {len(got)} of {want[name]} alerts after 120 s")
            code, page = http_call(
                node.base,
                node.token,
                "GET",
                f"/v1/alerts?after={after}&limit=1000&wait=10",
                timeout=30,
            )
            assert code == 200, page
            after = page["next"]
            got += [a for a in page["alerts"] if a["entry"]["log"] != ids[name]]
        alerts += got
    wanted = set(values)
    return sorted(a["latency_ms"] for a in alerts if a["value"] in wanted), sorted(calls)


def recording_cost(seconds: float) -> tuple[float, float]:
    """In-process query rates (canonical phones, all absent, 200 000 live) without and
    with recent queries recorded — stored and sealed, as the upkeep does — over values
    never queried before; (without, with) in checks/s."""
    t0 = 1_700_000_000_000
    with tempfile.TemporaryDirectory() as tmp:
        core, _, _ = build_node(Path(tmp) / "node", 200_000, t0)
        counter = iter(range(10**9))

        def batch() -> list[dict[str, str]]:
            base = next(counter) * 10_000
            return [{"kind": "phone", "value": f"+86139{base + i:08d}"} for i in range(10_000)]

        def run(record: bool) -> float:
            best = 0.0
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                items = batch()
                t = time.perf_counter()
                core.query(items, t0, canonical_input=True, record=record)
                with core.store.atomic():
                    core.alerts.flush()
                best = max(best, len(items) / (time.perf_counter() - t))
            return best

        run(False)
        without, with_ = run(False), run(True)
        core.close()
    return without, with_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--urgent", type=int, default=200, help="urgent reports (money_mule)")
    ap.add_argument("--normal", type=int, default=60, help="non-urgent reports (promotion_abuse)")
    ap.add_argument("--interval", type=float, default=2.0, help="gossip.interval_s")
    ap.add_argument("--gap", type=float, default=0.1, help="seconds between two reports")
    ap.add_argument("--seconds", type=float, default=2.0, help="per in-process query rate")
    args = ap.parse_args()
    q_without, q_with = recording_cost(args.seconds)
    env = {
        "RISKMESH_GOSSIP_INTERVAL_S": str(args.interval),
        "RISKMESH_GOSSIP_TIMEOUT_S": "5",
        "RISKMESH_LOG_LEVEL": "warning",
    }
    urgent = [f"alipay:bench_u{i:05d}" for i in range(args.urgent)]
    normal = [f"alipay:bench_n{i:05d}" for i in range(args.normal)]
    with tempfile.TemporaryDirectory() as tmp, LocalNet(Path(tmp), NAMES, env=env) as net:
        net.found("bench-alerts", NAMES, NAMES[:1])
        net.start()
        wait_until(
            "every node to take reports", lambda: all(open_for_reports(net[n]) for n in NAMES), 60
        )
        ids = {n: net.status(n)["member"]["id"] for n in NAMES}
        items = [{"kind": "account", "value": v} for v in urgent + normal]
        for n in NAMES:
            code, body = net[n].call("POST", "/v1/watches", {"items": items}, timeout=60)
            assert code == 201, body
        t0 = time.perf_counter()
        u_lat, u_calls = run_phase(net, ids, urgent, "money_mule", args.gap)
        n_lat, _ = run_phase(net, ids, normal, "promotion_abuse", args.gap)
        took = time.perf_counter() - t0
    iv_ms = args.interval * 1000
    u50, u99, umax = percentile(u_lat, 50), percentile(u_lat, 99), u_lat[-1]
    n50, n99 = percentile(n_lat, 50), percentile(n_lat, 99)
    c50 = percentile(u_calls, 50) * 1000
    print(
        f"# bench_alerts on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores; 4 real nodes, "
        f"gossip.interval_s={args.interval:g}; every node watches every value; "
        f"{args.urgent} urgent and {args.normal} non-urgent reports round-robin, one every "
        f"{args.gap:g} s; {took:.0f} s"
    )
    print(
        f"urgent      report -> alert at a watching node   p50 {u50:7.0f} ms   p99 {u99:7.0f} ms"
        f"   max {umax:6.0f} ms   ({len(u_lat)} alerts)  budget p99 < 1000 ms"
    )
    print(
        f"non-urgent  report -> alert (gossip rounds)      p50 {n50:7.0f} ms   p99 {n99:7.0f} ms"
        f"   = {n50 / iv_ms:.2f} / {n99 / iv_ms:.2f} rounds   ({len(n_lat)} alerts)"
    )
    print(f"baseline    POST /v1/reports (durable commit)   p50 {c50:7.1f} ms")
    print(
        f"recording   query in-process, all absent, new values: {q_with:,.0f} checks/s with "
        f"recent queries stored, {q_without:,.0f} without ({q_with / q_without:.2f}x)"
    )
    params = {
        "urgent": args.urgent,
        "normal": args.normal,
        "interval_s": args.interval,
        "gap_s": args.gap,
        "seconds": args.seconds,
    }
    base = [("non-urgent reports, gossip rounds only", n99, "ms p99")]
    print_figures(
        "bench_alerts",
        params,
        [
            figure(
                "alert latency p99, urgent report -> watching node (4 nodes, 2 s rounds)",
                u99,
                "ms",
                baselines=base,
                budget=("<", 1000.0),
                note=f"p50 {u50:.0f} ms, max {umax:.0f} ms, {len(u_lat)} alerts",
            ),
            figure(
                "alert latency p50, urgent report -> watching node",
                u50,
                "ms",
                baselines=[("non-urgent reports, gossip rounds only", n50, "ms p50")],
            ),
            figure(
                "alert latency, non-urgent report (gossip rounds)",
                n99 / iv_ms,
                "rounds p99",
                note=f"p50 {n50 / iv_ms:.2f} rounds ({n50:.0f} ms), p99 {n99:.0f} ms, "
                f"{len(n_lat)} alerts",
            ),
            figure(
                "query in-process with recent queries recorded (all absent, new values)",
                q_with,
                "checks/s",
                baselines=[("the same queries, not recorded", q_without)],
                note="recording = kept in memory, then sealed and stored by the upkeep "
                "(its cost included); alerts.recent_query_hours=0 turns it off",
            ),
        ],
    )


if __name__ == "__main__":
    main()
