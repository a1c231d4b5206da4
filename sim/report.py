"""Writing a run's output: ``figures.json``, ``report.md`` and PNG plots (matplotlib, Agg).

``figures.json`` holds every figure (see :mod:`sim.figures`) and is the same,
byte for byte, for the same scenario and seed. ``report.md`` states the
figures in prose and tables, with the wall-clock time of the run (which is not
in ``figures.json``: it varies from machine to machine), and links the plots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sim.figures import Figures, dumps_figures, push_pull_async_share, push_pull_curve

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["OPTIONAL_PLOTS", "PLOTS", "write_live_report", "write_report"]

PLOTS = ("delivery_cdf.png", "spread.png", "traffic.png", "backlog.png", "queries.png")
#: plots a run has when its scenario asks for their part
OPTIONAL_PLOTS = ("misbehaviour.png", "alerts.png")


def _fmt(v: object, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        s = f"{v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2e}"
        return s + unit
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return f"{v}{unit}"


def _bytes(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(x) for x in r) + " |")
    return "\n".join(out) + "\n"


# -- plots ---------------------------------------------------------------------------------


def _plots(f: Figures, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    name = f["scenario"]["name"]
    d = f["delivery"]
    e = f["expectation"]

    # 1. CDF of delivery times, in rounds
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, label in (("50", "50 % of nodes"), ("99", "99 % of nodes"), ("100", "100 % of nodes")):
        xs = d[f"to_{k}_percent"]["cdf_rounds"]
        if xs:
            n = d["entries"]
            ax.step(xs, [(i + 1) / n for i in range(len(xs))], where="post", label=label)
    for key, ls, label in (
        ("push_pull_async_mean_field_rounds_99", "-.", "push-pull, asynchronous, 99 %"),
        ("push_pull_mean_field_rounds_99", "--", "push-pull, synchronous rounds, 99 %"),
        ("push_only_log2_n_plus_ln_n", ":", "push only, log2 N + ln N"),
    ):
        ax.axvline(e[key], color="grey", ls=ls, lw=1, label=f"{label} ({e[key]:.1f})")
    ax.set_xlabel("rounds after publication")
    ax.set_ylabel("share of entries delivered")
    ax.set_title(f"{name}: delivery time of each entry ({e['nodes']} nodes)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "delivery_cdf.png", dpi=110)
    plt.close(fig)
    made.append("delivery_cdf.png")

    # 2. mean spread curve against the mean-field expectation
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sp = d["spread"]
    if sp["rounds"]:
        ax.plot(sp["rounds"], sp["mean_share_holding"], label="measured (mean over entries)")
        r = int(max(sp["rounds"])) + 1
        n = max(2, e["nodes"])
        curve = push_pull_curve(n, e["fanout"], r)
        ax.plot(
            range(r + 1),
            curve,
            ls="--",
            color="grey",
            label=f"push-pull, synchronous rounds, fanout {e['fanout']}",
        )
        xs = [i / 20 for i in range(20 * r + 1)]
        ax.plot(
            xs,
            [push_pull_async_share(n, e["fanout"], x) for x in xs],
            ls="-.",
            color="grey",
            label=f"push-pull, asynchronous, fanout {e['fanout']}",
        )
    ax.axhline(0.99, color="red", lw=0.6, ls=":")
    ax.set_xlabel("rounds after publication")
    ax.set_ylabel("share of nodes holding the entry")
    ax.set_title(f"{name}: epidemic spread")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "spread.png", dpi=110)
    plt.close(fig)
    made.append("spread.png")

    # 3. traffic per node per round
    series = f["traffic"]["series"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ts = [s["t_s"] for s in series]
    ax.plot(ts, [s["bytes_per_node_per_round"] for s in series], color="tab:blue")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("bytes sent per node per round", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(ts, [s["messages_per_node_per_round"] for s in series], color="tab:orange")
    ax2.set_ylabel("messages sent per node per round", color="tab:orange")
    _shade(ax, f)
    ax.set_title(f"{name}: gossip traffic")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "traffic.png", dpi=110)
    plt.close(fig)
    made.append("traffic.png")

    # 4. backlog
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bl = f["backlog"]
    ax.plot([b["t_s"] for b in bl], [b["missing_entries"] for b in bl])
    _shade(ax, f)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("entries missing, summed over honest nodes")
    ax.set_title(f"{name}: backlog")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "backlog.png", dpi=110)
    plt.close(fig)
    made.append("backlog.png")

    # 5. queries: agreement during the run, and the false-positive rate
    q = f["queries"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [2, 1]})
    dr = q["during_run"]
    if dr:
        a1.scatter(
            [c["t_s"] for c in dr],
            [c["agree_with_ground_truth"] / max(1, c["answers"]) for c in dr],
            s=12,
        )
    a1.set_ylim(-0.02, 1.02)
    a1.set_xlabel("virtual time (s)")
    a1.set_ylabel("answers equal to ground truth")
    a1.set_title("query checks during the run")
    a1.grid(alpha=0.3)
    fp = q["false_positive_rate"]
    vals = [fp["configured"], fp["expected_at_fill"], fp["measured"]]
    a2.bar(
        ["configured", "expected\nat fill", "measured"],
        vals,
        color=["grey", "tab:blue", "tab:green"],
    )
    if fp["measured"] > 0:
        low = min(fp["tolerance"], 0.99 * fp["measured"])
        a2.errorbar(
            [2],
            [fp["measured"]],
            yerr=[[low], [fp["tolerance"]]],
            fmt="none",
            color="black",
            capsize=4,
        )
    a2.set_yscale("log")
    a2.set_title(f"Bloom false positives\n({fp['absent_probes']:,} absent probes)")
    fig.tight_layout()
    fig.savefig(out / "queries.png", dpi=110)
    plt.close(fig)
    made.append("queries.png")

    # 6. misbehaviour
    members = f["misbehaviour"]["members"]
    if members:
        fig, ax = plt.subplots(figsize=(8, 4.2))
        labels = [f"{m['role']}\n{m['node']}" for m in members]
        series_ = {
            "honest nodes that refused its entries": [
                m["honest_nodes_that_refused"] for m in members
            ],
            "honest nodes that quarantined it": [
                m["honest_nodes_that_quarantined"] for m in members
            ],
            "honest nodes with its feed frozen": [
                m["honest_nodes_with_feed_frozen"] for m in members
            ],
            "stale duplicates received from it": [m["stale_duplicates"] for m in members],
            "starved exchanges with it": [m["starved_exchanges"] for m in members],
        }
        width = 0.16
        for i, (lab, vals_) in enumerate(series_.items()):
            ax.bar([x + (i - 2) * width for x in range(len(members))], vals_, width, label=lab)
        ax.set_xticks(range(len(members)), labels, fontsize=8)
        ax.set_yscale("symlog", linthresh=10)
        ax.set_title(f"{name}: misbehaviour detected")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(out / "misbehaviour.png", dpi=110)
        plt.close(fig)
        made.append("misbehaviour.png")

    # 7. alert latency at watching nodes
    al = f.get("alerts")
    if al:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        interval_s = f["scenario"]["gossip"]["interval_ms"] / 1000.0
        for key, label in (("urgent", "urgent categories"), ("other", "other categories")):
            xs = [x / 1000.0 for x in al["latency"][key]["cdf_ms"]]
            if xs:
                ax.step(
                    xs,
                    [(i + 1) / len(xs) for i in range(len(xs))],
                    where="post",
                    label=f"{label} ({len(xs):,} alerts)",
                )
        ax.axvline(1.0, color="red", lw=0.8, ls=":", label="DESIGN §13: urgent p99 < 1 s")
        ax.axvline(interval_s, color="grey", lw=0.8, ls="--", label="one gossip interval")
        ax.set_xlabel("seconds from the entry's time to the alert")
        ax.set_ylabel("share of alerts")
        push = "urgent entries pushed at once" if al["push_urgent"] else "no eager push"
        ax.set_title(f"{name}: alert latency at {al['watching_nodes']} watching nodes ({push})")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "alerts.png", dpi=110)
        plt.close(fig)
        made.append("alerts.png")
    return made


def _shade(ax: Axes, f: Figures) -> None:
    for p in f["faults"]["partitions"]:
        ax.axvspan(p["at_s"], p["heal_s"] or f["run"]["virtual_seconds"], color="red", alpha=0.08)


# -- report.md -------------------------------------------------------------------------------------


def write_report(
    figures: Figures, out: Path, *, wall_s: float | None = None, command: str = ""
) -> list[Path]:
    """Write figures.json, the plots and report.md into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(dumps_figures(figures))
    plots = _plots(figures, out)
    (out / "report.md").write_text(render_markdown(figures, plots, wall_s=wall_s, command=command))
    return [out / "figures.json", out / "report.md", *(out / p for p in plots)]


def render_markdown(f: Figures, plots: Sequence[str], *, wall_s: float | None, command: str) -> str:
    sc = f["scenario"]
    run = f["run"]
    d = f["delivery"]
    e = f["expectation"]
    t = f["traffic"]
    lines: list[str] = []
    add = lines.append
    add(f"# Simulation report: {sc['name']}\n")
    if sc["description"]:
        add(sc["description"].strip() + "\n")
    head = (
        f"Seed {sc['seed']}; {run['nodes_started']:,} nodes started "
        f"({run['honest_nodes_at_end']:,} honest and up at the end); "
        f"{run['virtual_seconds']:,.0f} s of virtual time = {run['rounds']:,.1f} gossip rounds "
        f"of {sc['gossip']['interval_ms']} ms, fanout {sc['gossip']['fanout']}; "
        f"{run['entries_published']:,} entries ({run['ops_published']:,} ops) published; "
        f"{run['events']:,} events simulated."
    )
    if wall_s is not None:
        head += (
            f" Wall-clock time of the run on this machine: **{wall_s:,.1f} s** "
            "(not in figures.json)."
        )
    add(head + "\n")
    if command:
        add(f"Reproduce: `{command}`\n")

    add("## Delivery\n")
    add(
        f"Time from publication until an entry is held (accepted after every check) by 50 %, "
        f"99 % and 100 % of the {d['nodes']:,} honest nodes up at the end, over "
        f"{d['entries']:,} entries.\n"
    )
    rows = []
    for k in ("50", "99", "100"):
        s, r = d[f"to_{k}_percent"]["seconds"], d[f"to_{k}_percent"]["rounds"]
        rows.append(
            [
                f"{k} %",
                r["median"],
                r["p90"],
                r["max"],
                s["median"],
                s["p90"],
                s["max"],
                r["undelivered"],
            ]
        )
    add(
        _table(
            [
                "nodes reached",
                "rounds median",
                "rounds p90",
                "rounds max",
                "s median",
                "s p90",
                "s max",
                "not reached",
            ],
            rows,
        )
    )
    r99 = d["to_99_percent"]["rounds"]
    add(
        f"**Delivery to 99 % of nodes: median {_fmt(r99['median'])} rounds, p90 "
        f"{_fmt(r99['p90'])}, max {_fmt(r99['max'])}.**\n\n"
        f"Expectation for N = {e['nodes']:,} and fanout {e['fanout']}, computed here:\n\n"
        f"- push gossip alone (one random peer per round): log2 N + ln N = "
        f"**{e['push_only_log2_n_plus_ln_n']:.1f}** rounds;\n"
        f"- push-pull in lock-step rounds (mean-field u' = u·u^f·e^(−f(1−u)) from one holder, "
        f"u the share still lacking the entry): 99 % after "
        f"**{e['push_pull_mean_field_rounds_99']:.1f}** rounds;\n"
        f"- push-pull with each node running its rounds at its own jittered times, as the "
        f"engines do, so an entry can hop several times within one round (logistic "
        f"dI/dt = 2f·I·(N−I)/N per round): 99 % after "
        f"**{e['push_pull_async_mean_field_rounds_99']:.1f}** rounds;\n"
        f"- DESIGN §13 budget: {e['design_budget_rounds_99_at_1000_nodes_fanout_3']} rounds to "
        f"99 % of 1 000 nodes at fanout 3.\n\n"
        f"Measured rounds count from the moment of publication, so they include the wait for "
        f"the first exchange that carries the entry, and each exchange's round trips.\n"
    )
    for p in ("delivery_cdf.png", "spread.png"):
        if p in plots:
            add(f"![{p}]({p})\n")

    add("## Traffic\n")
    idle = t["idle"]
    add(
        f"Engine messages (the CBOR of each hello, reply, push and ack; the sealed envelope and "
        f"HTTP add a fixed overhead per message that is not counted here): "
        f"**{_bytes(t['bytes_per_node_per_round'])} bytes and "
        f"{_fmt(t['messages_per_node_per_round'])} "
        f"messages sent per node per round** on average over the run "
        f"({_bytes(t['bytes_per_exchange'])} bytes per completed exchange; the busiest node "
        f"sent {_bytes(t['per_node_bytes_per_round']['max'])} bytes per round, the median node "
        f"{_bytes(t['per_node_bytes_per_round']['median'])}). Once the reports had stopped and "
        f"every node held every entry ({idle['samples']} samples): "
        f"{_bytes(idle['bytes_per_node_per_round'])} bytes per node per round, "
        f"{_bytes(idle['bytes_per_exchange'])} bytes per exchange.\n"
    )
    if "traffic.png" in plots:
        add("![traffic.png](traffic.png)\n")
    peak = max((b["missing_entries"] for b in f["backlog"]), default=0)
    last = f["backlog"][-1]["missing_entries"] if f["backlog"] else 0
    add("## Backlog\n")
    add(
        f"Entries published but not yet held, summed over the honest nodes that are up, sampled "
        f"every round: peak {peak:,}, at the end {last:,}.\n"
    )
    if "backlog.png" in plots:
        add("![backlog.png](backlog.png)\n")

    fa = f["faults"]
    if fa["timeline"] or fa["catch_up"]:
        add("## Faults\n")
        if fa["timeline"]:
            add(_table(["t (s)", "event"], [[x["t_s"], x["event"]] for x in fa["timeline"]]))
        for p in fa["partitions"]:
            ah = p["rounds_after_heal_to_100_percent"] or {}
            add(
                f"Partition at {p['at_s']} s into groups of {p['group_sizes']}, healed at "
                f"{p['heal_s']} s: {p['entries_published_during']} entries published meanwhile "
                f"reached at most {_fmt(p['max_share_reached_before_heal'])} of the nodes before "
                f"the heal (mean {_fmt(p['mean_share_reached_before_heal'])}), with "
                f"{p['deliveries_across_the_partition_before_heal']} deliveries across the "
                f"partition; after the heal they reached every node in a median "
                f"{_fmt(ah.get('median'))} rounds (max {_fmt(ah.get('max'))}); "
                f"{p['not_delivered_to_all_by_the_end']} never reached every node.\n"
            )
        if fa["catch_up"]:
            done = [
                c["caught_up_after_s"] for c in fa["catch_up"] if c["caught_up_after_s"] is not None
            ]
            add(
                f"Catch-up (restarted nodes and newcomers until they hold every entry published "
                f"before they came up): {len(done)} of {len(fa['catch_up'])} caught up"
                + (
                    f", median {sorted(done)[len(done) // 2]:.1f} s, max {max(done):.1f} s"
                    if done
                    else ""
                )
                + ".\n"
            )
            add(
                _table(
                    ["node", "why", "at (s)", "entries to catch up", "caught up after (s)"],
                    [
                        [
                            c["node"],
                            c["why"],
                            c["at_s"],
                            c["entries_to_catch_up"],
                            c["caught_up_after_s"],
                        ]
                        for c in fa["catch_up"][:30]
                    ],
                )
            )
            if len(fa["catch_up"]) > 30:
                add(f"(and {len(fa['catch_up']) - 30} more in figures.json)\n")

    g = f["governance"]
    if g["changes"]:
        add("## Onboarding and removal\n")
        add(
            "Each change is drafted by `protocol.governance` (one member per charter version, "
            "as `riskmesh admin propose` does), proposed by an admin node's engine and gossiped "
            "as a proposal; the admins whose turn it is sign it when their node receives it, "
            "and the node that first holds a quorum of signatures appends the version, which "
            "then spreads by gossip. Admin nodes seal the epoch keys a change calls for "
            "(`plan_grants`): every live epoch to a newcomer, and a removal's new epoch to every "
            "remaining member; newcomers start from the genesis alone, and after a rotation "
            "every member republishes its live reports under the new epoch.\n"
        )
        add(
            _table(
                [
                    "version",
                    "change",
                    "proposed (s)",
                    "final (s)",
                    "50 % (rounds)",
                    "99 % (rounds)",
                    "100 % (rounds)",
                ],
                [
                    [
                        v["version"],
                        "; ".join(v["changes"]),
                        v["proposed_s"],
                        v["made_s"],
                        v["to_50_percent_rounds"],
                        v["to_99_percent_rounds"],
                        v["to_100_percent_rounds"],
                    ]
                    for v in g["versions"]
                ],
            )
        )
        for c in g["changes"]:
            versions = ", ".join(str(v) for v in c["versions"]) or "none final"
            if c["kind"] == "onboard":
                add(
                    f"- {c['t_s']} s, versions {versions}: onboarded {', '.join(c['members'])}. "
                    + "; ".join(
                        f"{n['node']} had the charter after {_fmt(n['charter_after_s'])} s and its "
                        f"keys after {_fmt(n['keys_after_s'])} s (epochs "
                        f"{', '.join(str(e) for e in n['epochs_held_at_end'])} at the end)"
                        for n in c["newcomers"]
                    )
                    + ".\n"
                )
            else:
                rot = "; ".join(
                    f"epoch {r['epoch']} (version {r['version']}): its key reached 99 % of the "
                    f"nodes after {_fmt(r['key']['to_99_percent_rounds'])} rounds, "
                    f"{r['republished_ops']} live reports republished under it in "
                    f"{r['republished_entries']} entries"
                    for r in c["key_rotations"]
                )
                add(
                    f"- {c['t_s']} s, versions {versions}: removed {', '.join(c['members'])} "
                    f"(until_seq {c['until_seq']}), each with a key rotation: {rot or '—'}. "
                    f"Their entries past until_seq were refused "
                    f"{c['entries_refused_as_revoked']} times; "
                    f"{c['entries_past_until_held_by_honest_nodes']} copies of such entries are "
                    "held by honest nodes that accepted them before the removal reached them.\n"
                )

    m = f["misbehaviour"]
    if m["members"]:
        add("## Misbehaviour\n")
        rows = []
        for x in m["members"]:
            rows.append(
                [
                    x["node"],
                    x["role"],
                    "yes" if x["detected"] else "**NO**",
                    x["first_detected_s"],
                    ", ".join(f"{k} {v}" for k, v in x["entries_refused_by_reason"].items()) or "—",
                    x["honest_nodes_that_quarantined"],
                    x["honest_nodes_with_feed_frozen"],
                    x["stale_duplicates"],
                    f"{x['starved_exchanges']}/{x['fed_exchanges']}",
                ]
            )
        add(
            _table(
                [
                    "node",
                    "role",
                    "detected",
                    "first (s)",
                    "entries refused",
                    "quarantined by",
                    "feed frozen at",
                    "stale duplicates",
                    "starved/fed exchanges",
                ],
                rows,
            )
        )
        fa_ = m["false_alarms"]
        add(
            "How each is detected: forger — `bad_signature` refusals (engine `Refused` events, "
            "quarantine); policy violator — `policy` refusals; equivocator — fork proofs "
            "(`ForkDetected`, feed frozen); replayer — duplicates of entries the receiver had "
            "held for longer than two HTTP timeouts (stale duplicates); withholder — exchanges we "
            "started after which the peer's own heads showed entries we lack but it sent none "
            "(starved), in at least half of its exchanges"
            + (
                "; disputer and appeal spammer — `over_quota` refusals of the entries past the "
                "policy's quota that they sign anyway"
                if any(x["role"] in ("disputer", "appeal_spammer") for x in m["members"])
                else ""
            )
            + ".\n\n"
            f"False alarms against honest members: {fa_['honest_peers_with_refused_entries']} with "
            f"refused entries, {fa_['honest_peers_quarantined']} quarantined, "
            f"{fa_['honest_peers_with_stale_duplicates']} with stale duplicates, "
            f"{fa_['honest_peers_suspected_of_withholding']} suspected of withholding "
            "(most starved "
            f"exchanges with one honest peer: {fa_['max_starved_exchanges_of_an_honest_peer']}), "
            f"{fa_['honest_feeds_frozen']} honest feeds frozen. Entries no member published "
            "that an "
            f"honest node accepted: {m['unknown_entries_accepted_by_honest_nodes']}; identifiers "
            f"the forger and violator tried to plant, held by honest nodes: "
            f"{m['planted_identifiers_held_by_honest_nodes']}.\n"
        )
        for x in m["members"]:
            tk = x.get("its_tokens")
            if tk:
                add(
                    f"Tokens reported by the equivocator {x['node']} (both branches): "
                    f"{tk['tokens']}; matched at some honest node: "
                    f"{tk['matched_by_some_honest_node']}; answered differently by different "
                    f"honest nodes: {tk['answered_differently_by_honest_nodes']}. Its feed is "
                    f"frozen everywhere, but what a node accepted before the fork proof reached "
                    f"it stays and counts in that node's verdicts, so these answers depend on "
                    f"arrival order (they are left out of the ground-truth comparison).\n"
                )
        if "misbehaviour.png" in plots:
            add("![misbehaviour.png](misbehaviour.png)\n")

    if f.get("alerts"):
        _alerts_md(f, plots, add)
    if f.get("after_match"):
        _after_match_md(f, add)

    q = f["queries"]
    fin = q["final"]
    fp = q["false_positive_rate"]
    add("## Queries against ground truth\n")
    add(
        f"Each check queries a node as its platforms would — the Bloom index "
        f"(`node.index.TokenIndex`, built from the node's live tokens at the configured error "
        f"rate and headroom) first, the exact store second — and compares each answer (reporters, "
        f"categories, maximum severity, expiry) with the ground truth from what was published. "
        f"During the run {len(q['during_run'])} checks; answers that were not yet current are "
        f"entries still on their way.\n\n"
        f"At the end, {fin['honest_nodes']:,} honest nodes answered {fin['answers']:,} queries: "
        f"**{fin['agree_with_ground_truth']:,} equal to the ground truth, {fin['disagree']:,} "
        f"not** ({fin['nodes_with_a_disagreement']} nodes with a disagreement"
        + (
            f"; {fin['explained_by_removal_race']} explained by the removal race"
            if fin["explained_by_removal_race"]
            else ""
        )
        + f"). Bloom false negatives: {fin['bloom_false_negatives']}; false matches after the "
        f"exact check: {fin['false_matches_after_exact_check']}.\n\n"
        f"False-positive rate of the Bloom stage over {fp['absent_probes']:,} never-reported "
        f"tokens at {fp['nodes_probed']} nodes: **measured {fp['measured']:.6f}** "
        f"({fp['bloom_positives']:,} positives), configured {fp['configured']} (the rate at "
        f"capacity), expected {fp['expected_at_fill']:.6f} at the actual fill "
        f"({fp['mean_live_tokens']:,.0f} live tokens in an index sized for "
        f"{fp['mean_capacity']:,.0f}, headroom {fp['headroom']}). "
        f"Tolerance: ±{fp['tolerance']:.6f} "
        f"(three binomial standard deviations plus 10 % of the expected rate): "
        f"{'within' if fp['within_tolerance_of_expected'] else '**outside**'} tolerance of the "
        f"expected rate, {'not above' if fp['at_most_configured'] else '**above**'} the configured "
        f"one.\n"
    )
    if "queries.png" in plots:
        add("![queries.png](queries.png)\n")
    return "\n".join(lines)


def _alerts_md(f: Figures, plots: Sequence[str], add: Callable[[str], None]) -> None:
    al = f["alerts"]
    lat = al["latency"]
    add("## Alerts at watching nodes\n")
    add(
        f"{al['watching_nodes']} nodes watch: {al['watches']:,} (node, identifier) watches set "
        f"before the identifier's first report, and {al['values_queried']:,} values their "
        f"platforms queried ({al['values_queried_before_anyone_reported_them']:,} of them "
        f"before anyone reported them), each watched for {al['recent_query_s']:,.0f} s after "
        f"the query. A watching node raises an alert when an entry it accepts adds a live "
        f"report on a watched value or retracts one, exactly as node/alerts.py decides. "
        f"Urgent categories: {', '.join(al['urgent_categories'])}; "
        + (
            f"an entry reporting or retracting in one of them is offered to every reachable peer "
            f"at once (`GossipEngine.push_now`, as the node does; "
            f"{f['run'].get('entries_pushed_as_urgent', 0):,} entries pushed).\n"
            if al["push_urgent"]
            else "no eager push in this run (`gossip.push_urgent = false`).\n"
        )
    )
    events = ", ".join(f"{v:,} {k}" for k, v in al["by_event"].items())
    sources = ", ".join(f"{v:,} from {k}" for k, v in al["by_source"].items())
    add(
        f"Alerts raised: {al['raised']:,} ({events}; {sources}); "
        f"{al['at_the_entry_author_s_own_node']:,} of them at the author's own node "
        f"(latency 0, left out below); on entries no member published: "
        f"{al['on_entries_no_member_published']}; raised twice: {al['raised_twice']}.\n"
    )
    rows = []
    for key, label in (
        ("urgent", "urgent categories"),
        ("other", "other categories"),
        ("urgent_reported", "urgent, `reported` only"),
        ("other_reported", "other, `reported` only"),
    ):
        x = lat[key]
        ms, r = x["ms"], x["rounds"]
        rows.append(
            [label, x["alerts"], ms["p50"], ms["p90"], ms["p99"], ms["max"], r["p50"], r["p99"]]
        )
    add(
        _table(
            [
                "alerts on",
                "alerts",
                "ms p50",
                "ms p90",
                "ms p99",
                "ms max",
                "rounds p50",
                "rounds p99",
            ],
            rows,
        )
    )
    u = lat["urgent"]["ms"]
    add(
        f"**Report-to-alert latency: urgent p50 {_fmt(u['p50'])} ms, p99 {_fmt(u['p99'])} ms; "
        f"other p50 {_fmt(lat['other']['rounds']['p50'])} rounds, p99 "
        f"{_fmt(lat['other']['rounds']['p99'])} rounds** (DESIGN §13: urgent p99 under 1 s "
        f"at a 2 s interval). Latency runs from the entry's `ts` to the moment the watching "
        f"node accepts it, in virtual time: the network's latency is in it, a node's own "
        f"processing time is not.\n"
    )
    if "alerts.png" in plots:
        add("![alerts.png](alerts.png)\n")


def _after_match_md(f: Figures, add: Callable[[str], None]) -> None:
    am = f["after_match"]
    add("## Sightings, disputes and appeals\n")
    ops = am["honest_ops_published"]
    refused = am["honest_requests_refused_by_their_own_node"]
    add(
        "Honest members published "
        + ", ".join(f"{v:,} {k}" for k, v in ops.items())
        + " ops"
        + (
            "; their own nodes refused " + ", ".join(f"{v:,} ({k})" for k, v in refused.items())
            if refused
            else ""
        )
        + ". `upheld` and `rejected` count reporters' decisions, `retracted_on_appeal` the "
        "reports an upheld appeal retracted.\n"
    )
    if am["abusers"]:
        add(
            _table(
                [
                    "node",
                    "role",
                    "quota / day",
                    "tokens seen",
                    "ops tried",
                    "published within quota",
                    "over quota",
                    "over-quota entries sent",
                    "refused by honest nodes",
                    "quarantined by",
                    "most held by an honest node",
                    "sealed cases sent",
                ],
                [
                    [
                        x["node"],
                        x["role"],
                        x["quota_per_day"],
                        x["tokens_seen"],
                        x["ops_attempted"],
                        x["ops_published_within_quota"],
                        x["ops_over_quota"],
                        x["over_quota_entries_sent"],
                        x["over_quota_refusals_by_honest_nodes"],
                        x["honest_nodes_that_quarantined"],
                        x["most_ops_held_by_an_honest_node"],
                        x["sealed_cases_sent"],
                    ]
                    for x in am["abusers"]
                ],
            )
        )
        within = all(x["held_within_quota"] for x in am["abusers"])
        add(
            "What fits the quota goes through the abuser's own feed as valid entries; the "
            "rest its own node would refuse, so it signs it anyway and sends it, and every "
            f"honest node refuses it (`over_quota`). **The quotas bound the abuse: "
            f"{'every' if within else 'NOT every'} honest node holds at most the quota of "
            f"each abuser's ops.**\n"
        )
    ap = am["appeals"]
    rows = []
    for key, label in (
        ("honest", "honest appeals"),
        ("spam_within_quota", "spammer's, within quota"),
        ("spam_over_quota", "spammer's, over quota"),
    ):
        x = ap[key]
        rows.append(
            [
                label,
                x["appeals"],
                x["cases_opened_by_reporters"],
                x["decisions"],
                x["upheld"],
                x["rejected"],
                x["median_s_from_case_to_decision"],
            ]
        )
    add(
        _table(
            [
                "appeals",
                "filed",
                "cases opened by reporters",
                "decisions",
                "upheld",
                "rejected",
                "median s to decide",
            ],
            rows,
        )
    )
    orphan = ap["sealed_cases_of_over_quota_appeals_held"]
    add(
        f"No honest node holds the op of an over-quota appeal "
        f"({ap['honest_nodes_holding_an_over_quota_appeal_op']} do), but the sealed cases of "
        f"those appeals travel anyway: {orphan['honest_nodes_holding_some']} honest nodes hold "
        f"some, up to {orphan['max_per_honest_node']:,} each, and reporters open and answer "
        f"them like any other (the spammer's grounds are always rejected here). Nothing in "
        f"the protocol ties a case item to an appeal op its feed holds, so the quota bounds "
        f"the public appeal ops but not the cases, the reporters' work, or the gossip traffic "
        f"of relaying them (every case and note item is offered to every peer).\n"
    )
    v = am["verdicts"]
    gt = am["ground_truth_at_end"]
    add(
        f"Verdicts at the end: {v['answers_equal_to_ground_truth']:,} of {v['answers']:,} "
        f"answers equal to the ground truth (match, reporters, categories, severity, expiry); "
        f"of the {v['matching_answers_compared']:,} matching ones, "
        f"**{v['sightings_disputes_appeal_as_ground_truth']:,} count the sightings, disputes "
        f"and open appeals of the ground truth, {v['differ']:,} do not** (computed by the "
        f"node's own `VerdictContext`). In the ground truth at the end, of "
        f"{gt['matching']:,} matching identifiers {gt['with_sightings']:,} have a sighting, "
        f"{gt['with_disputes']:,} a dispute and {gt['under_appeal']:,} are under appeal "
        f"({gt['under_spam_appeal']:,} with one of the spammer's appeals among theirs).\n"
    )


# -- live mode ------------------------------------------------------------------------------------


def write_live_report(f: Figures, out: Path, *, command: str = "") -> list[Path]:
    """Write a live run's figures.json, its delivery plot and report.md into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(dumps_figures(f))
    d, e, run = f["delivery"], f["expectation"], f["run"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k in ("50", "99", "100"):
        xs = d[f"to_{k}_percent"]["cdf_rounds"]
        if xs:
            ax.step(
                xs,
                [(i + 1) / d["entries"] for i in range(len(xs))],
                where="post",
                label=f"{k} % of nodes",
            )
    ax.set_xlabel(f"rounds of {run['interval_s']} s after publication (wall clock)")
    ax.set_ylabel("share of entries delivered")
    ax.set_title(f"{f['scenario']['name']} live: {run['nodes']} real nodes on loopback")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "delivery_cdf.png", dpi=110)
    plt.close(fig)
    lines = [f"# Live report: {f['scenario']['name']}\n"]
    lines.append(
        f"{run['nodes']} real nodes (`riskmesh serve`, one process each) on loopback, founded "
        f"as README describes, gossip interval {run['interval_s']} s, fanout {e['fanout']}; "
        f"{d['entries']} entries reported through the nodes' local APIs over "
        f"{run['wall_seconds']:.1f} s of wall-clock time. Delivery is read from every node's "
        f"`GET /v1/status` feed heads, polled every {run['poll_s'] * 1000:.0f} ms.\n"
    )
    if command:
        lines.append(f"Reproduce: `{command}` (wall-clock figures vary from run to run)\n")
    rows = []
    sim_d = (f.get("simulated_counterpart") or {}).get("delivery")
    for k in ("50", "99", "100"):
        s, r = d[f"to_{k}_percent"]["seconds"], d[f"to_{k}_percent"]["rounds"]
        row = [f"{k} %", r["median"], r["max"], s["median"], s["max"], r["undelivered"]]
        if sim_d:
            sr = sim_d[f"to_{k}_percent"]["rounds"]
            row += [sr["median"], sr["max"]]
        rows.append(row)
    head = ["nodes reached", "rounds median", "rounds max", "s median", "s max", "not reached"]
    if sim_d:
        head += ["simulated: rounds median", "simulated: rounds max"]
    lines.append(_table(head, rows))
    if sim_d:
        lines.append(
            f"The simulated columns run the same consortium size, interval, fanout and pace "
            f"of reports in the simulator ({sim_d['entries']} entries, 1 ms links): the real "
            f"engines on a virtual clock, for comparison with the real processes.\n"
        )
    lines.append(
        f"Expectation for N = {e['nodes']}: push alone log2 N + ln N = "
        f"{e['push_only_log2_n_plus_ln_n']:.1f} rounds; push-pull with fanout {e['fanout']}: "
        f"{e['push_pull_mean_field_rounds_99']:.1f} rounds in lock-step rounds, "
        f"{e['push_pull_async_mean_field_rounds_99']:.1f} asynchronously.\n"
    )
    lines.append(
        f"Traffic: {f['traffic']['engine_bytes_sent']:,} bytes of engine messages sent in all, "
        f"{f['traffic']['bytes_per_node_per_round']:,.0f} bytes per node per round.\n"
    )
    lines.append(
        _table(
            ["node", "reported values matched", "never-reported values matched"],
            [
                [
                    c["node"],
                    f"{c['matched']}/{c['reported']}",
                    f"{c['false_matches']}/{c['absent']}",
                ]
                for c in f["queries"]
            ],
        )
    )
    lines.append("![delivery_cdf.png](delivery_cdf.png)\n")
    (out / "report.md").write_text("\n".join(lines))
    return [out / "figures.json", out / "report.md", out / "delivery_cdf.png"]
