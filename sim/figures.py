"""The figures of a run, computed from its :class:`~sim.record.RunRecord` alone.

Everything here is a pure function of the run's record, which is a pure
function of the scenario and its seed: the same seed gives the same figures,
byte for byte, once written with :func:`dumps_figures`. Nothing measured on the
wall clock goes in (the report states the wall time apart).

Figures are plain JSON data (:data:`Figures`): nested dicts, lists, numbers
and strings, read by :mod:`sim.report` and written to ``figures.json``.

Rounds are virtual time divided by the gossip interval (each engine starts a
round every interval, jittered between 0.5 and 1.5 intervals).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from statistics import median
from typing import Any

from contracts.policy import DEFAULT_URGENT_CATEGORIES
from protocol.gossip import SUSPICIOUS_REASONS
from sim.observe import STARVED_MIN, STARVED_SHARE
from sim.record import Alert, NodeRecord, Observations, RunRecord

__all__ = [
    "DESIGN_ROUNDS_99",
    "SHARES",
    "Figures",
    "compute_figures",
    "dumps_figures",
    "fp_tolerance",
    "percentiles",
    "push_only_rounds",
    "push_pull_async_rounds",
    "push_pull_async_share",
    "push_pull_curve",
    "push_pull_rounds",
    "reach_time",
    "summarize",
]

#: DESIGN §13: an entry reaches 99 % of 1 000 nodes within 8 rounds at fanout 3.
DESIGN_ROUNDS_99 = 8

#: A run's figures: JSON data (nested dicts and lists of numbers and strings).
Figures = dict[str, Any]


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def dumps_figures(figures: Figures) -> str:
    return json.dumps(figures, indent=1, sort_keys=True) + "\n"


# -- epidemic expectations -------------------------------------------------------------


def push_only_rounds(n: int) -> float:
    """Rounds for push gossip (one random peer per round) to reach everyone: log2 N + ln N."""
    return math.log2(n) + math.log(n)


def push_pull_curve(n: int, fanout: int, rounds: int) -> list[float]:
    """Mean-field informed fraction after each round of push-pull with ``fanout`` peers.

    A node still lacks the entry after a round only if none of the ``fanout``
    peers it contacts holds it (pull: u^f) and no holder contacts it (push:
    each of the (1-u)N holders picks it with probability f/(N-1), so about
    e^(-f(1-u))): u' = u * u^f * e^(-f(1-u)), from u = 1 - 1/N.
    """
    u = 1.0 - 1.0 / n
    out = [1.0 - u]
    for _ in range(rounds):
        u = u * u**fanout * math.exp(-fanout * (1.0 - u) * n / max(1, n - 1))
        out.append(1.0 - u)
    return out


def push_pull_rounds(n: int, fanout: int, share: float = 0.99) -> float:
    """Rounds (interpolated) until the mean-field push-pull curve reaches ``share``."""
    curve = push_pull_curve(n, fanout, 200)
    for i in range(1, len(curve)):
        if curve[i] >= share:
            lo, hi = curve[i - 1], curve[i]
            return i - 1 + (share - lo) / (hi - lo)
    return math.inf


def push_pull_async_share(n: int, fanout: int, rounds: float) -> float:
    """Informed share after ``rounds`` of asynchronous push-pull (mean field, continuous time).

    Every node starts ``fanout`` exchanges per round at its own times, and an
    exchange carries entries both ways, so a node lacking the entry gets it at
    rate f*I/N (it contacts a holder) plus f*I/N (a holder contacts it):
    dI/dt = 2f I (N - I)/N, a logistic curve from one holder.
    """
    return 1.0 / (1.0 + (n - 1) * math.exp(-2.0 * fanout * rounds))


def push_pull_async_rounds(n: int, fanout: int, share: float = 0.99) -> float:
    """Rounds until :func:`push_pull_async_share` reaches ``share``."""
    return math.log((n - 1) * share / (1.0 - share)) / (2.0 * fanout)


def fp_tolerance(p: float, n: int) -> float:
    """Allowed |measured - expected| false-positive rate over ``n`` probes: three binomial
    standard deviations, plus 10 % of p for the Bloom formula being an approximation."""
    if n <= 0:
        return math.inf
    return 3.0 * math.sqrt(max(p, 1e-12) * (1.0 - p) / n) + 0.1 * p


# -- helpers ----------------------------------------------------------------------------------


def summarize(values: Sequence[float], total: int) -> dict[str, int | float | None]:
    v = sorted(values)
    if not v:
        return {
            "delivered": 0,
            "undelivered": total,
            "mean": None,
            "median": None,
            "p90": None,
            "max": None,
        }
    return {
        "delivered": len(v),
        "undelivered": total - len(v),
        "mean": _r(sum(v) / len(v)),
        "median": _r(v[(len(v) - 1) // 2]),
        "p90": _r(v[min(len(v) - 1, math.ceil(0.9 * len(v)) - 1)]),
        "max": _r(v[-1]),
    }


def percentiles(values: Sequence[float]) -> dict[str, int | float | None]:
    """p50, p90, p99 (nearest rank), max and mean of ``values``."""
    v = sorted(values)
    if not v:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    n = len(v)

    def rank(p: float) -> float:
        return _r(v[max(0, math.ceil(p * n) - 1)])

    return {
        "p50": rank(0.5),
        "p90": rank(0.9),
        "p99": rank(0.99),
        "max": _r(v[-1]),
        "mean": _r(sum(v) / n),
    }


def _spread_times(held: Mapping[int, float], t0: float, targets: Sequence[int]) -> list[float]:
    return sorted(held[n] - t0 for n in targets if n in held)


SHARES = {"50": 0.5, "99": 0.99, "100": 1.0}


def reach_time(times: Sequence[float], total: int, share: float) -> float | None:
    k = max(1, math.ceil(share * total - 1e-9))
    return times[k - 1] if len(times) >= k else None


# -- the figures --------------------------------------------------------------------------------


def _current(rec: RunRecord) -> list[NodeRecord]:
    """Honest nodes up and not removed at the end: the targets of delivery."""
    return [n for n in rec.nodes if n.honest and n.started and n.current]


def compute_figures(rec: RunRecord) -> Figures:
    sc = rec.scenario
    interval = float(sc.gossip.interval_ms)
    targets_all = [n.idx for n in _current(rec)]
    n_targets = len(targets_all)
    delivery = _delivery(rec, targets_all, interval)
    obs = rec.observations
    out: Figures = {
        "scenario": sc.to_json(),
        "run": {
            "nodes_started": sum(1 for n in rec.nodes if n.started),
            "honest_nodes_at_end": n_targets,
            "virtual_seconds": _r(rec.end_ms / 1000.0, 3),
            "rounds": _r(rec.end_ms / interval, 3),
            "events": rec.events,
            "entries_published": sum(1 for r in rec.entries if not r.twin),
            "ops_published": sum(r.ops for r in rec.entries if not r.twin),
            "identifiers_in_ground_truth": rec.identifiers_in_truth,
            "tokens_in_ground_truth": rec.tokens_in_truth,
            "exchanges_completed": obs.exchanges,
            "exchange_failures": obs.failures,
            "entries_lost_with_their_author_s_state": rec.lost_entries,
        },
        "delivery": delivery,
        "expectation": {
            "nodes": n_targets,
            "fanout": sc.gossip.fanout,
            "push_only_log2_n_plus_ln_n": _r(push_only_rounds(max(2, n_targets)), 3),
            "push_pull_mean_field_rounds_99": _r(
                push_pull_rounds(max(2, n_targets), sc.gossip.fanout), 3
            ),
            "push_pull_async_mean_field_rounds_99": _r(
                push_pull_async_rounds(max(2, n_targets), sc.gossip.fanout), 3
            ),
            "design_budget_rounds_99_at_1000_nodes_fanout_3": DESIGN_ROUNDS_99,
        },
        "traffic": _traffic(rec, interval),
        "backlog": [{"t_s": s.t_s, "missing_entries": s.backlog} for s in rec.samples],
        "misbehaviour": _misbehaviour(rec),
        "queries": _queries(rec),
        "governance": _governance(rec, interval),
        "faults": _faults(rec, interval),
    }
    # parts a scenario has only if it asks for them (the others' figures stay as they were)
    if sc.gossip.push_urgent:
        out["run"]["entries_pushed_as_urgent"] = rec.pushed
    if rec.alerts is not None:
        out["alerts"] = _alerts(rec, interval)
    if rec.after_match is not None:
        out["after_match"] = _after_match(rec)
    return out


def _delivery(rec: RunRecord, targets_all: list[int], interval: float) -> Figures:
    joined = {n.idx: n.joined_at for n in rec.nodes}
    per: dict[str, list[float]] = {k: [] for k in SHARES}
    grid_step = 0.25
    grid_n = 0
    curves: list[list[float]] = []
    counted = 0
    for r in rec.entries:
        if not r.valid or r.twin:
            continue
        targets = [i for i in targets_all if joined[i] <= r.t]
        if not targets:
            continue
        counted += 1
        times = _spread_times(r.held, r.t, targets)
        for k, share in SHARES.items():
            t = reach_time(times, len(targets), share)
            if t is not None:
                per[k].append(t)
        curves.append([x / interval for x in times] + [len(targets)])  # total last
        if times:
            grid_n = max(grid_n, math.ceil(times[-1] / interval / grid_step) + 1)
    grid = [i * grid_step for i in range(min(grid_n, 400) + 1)]
    spread = []
    for g in grid:
        acc = 0.0
        for c in curves:
            total = c[-1]
            acc += bisect_right(c, g, 0, len(c) - 1) / total
        spread.append(_r(acc / len(curves)) if curves else 0.0)
    out: Figures = {"entries": counted, "nodes": len(targets_all)}
    for k in SHARES:
        secs = [t / 1000.0 for t in per[k]]
        rounds = [t / interval for t in per[k]]
        out[f"to_{k}_percent"] = {
            "seconds": summarize(secs, counted),
            "rounds": summarize(rounds, counted),
            "cdf_rounds": [_r(x, 3) for x in sorted(rounds)],
        }
    out["spread"] = {"rounds": grid, "mean_share_holding": spread}
    return out


def _traffic(rec: RunRecord, interval: float) -> Figures:
    series = []
    node_rounds = 0.0
    total_bytes = total_msgs = total_ex = 0
    rounds = rec.sample_ms / interval
    for s in rec.samples:
        up = s.nodes_up
        node_rounds += up * rounds
        total_bytes += s.bytes
        total_msgs += s.messages
        total_ex += s.exchanges
        series.append(
            {
                "t_s": s.t_s,
                "bytes_per_node_per_round": _r(s.bytes / max(1, up) / rounds, 1),
                "messages_per_node_per_round": _r(s.messages / max(1, up) / rounds, 3),
                "exchanges": s.exchanges,
            }
        )
    # idle: after the reports stop, once every honest node holds every entry
    idle = [s for s in rec.samples if s.t_s * 1000.0 > rec.stop_reports_ms and s.backlog == 0]
    idle_bytes = sum(s.bytes for s in idle)
    idle_ex = sum(s.exchanges for s in idle)
    idle_nr = sum(s.nodes_up * rec.sample_ms / interval for s in idle)
    per_node = sorted(n.bytes_sent for n in rec.nodes if n.started)
    run_rounds = rec.end_ms / interval
    return {
        "bytes_per_node_per_round": _r(total_bytes / node_rounds, 1) if node_rounds else 0.0,
        "messages_per_node_per_round": _r(total_msgs / node_rounds, 3) if node_rounds else 0.0,
        "bytes_per_exchange": _r(total_bytes / total_ex, 1) if total_ex else 0.0,
        "idle": {
            "samples": len(idle),
            "bytes_per_node_per_round": _r(idle_bytes / idle_nr, 1) if idle_nr else None,
            "bytes_per_exchange": _r(idle_bytes / idle_ex, 1) if idle_ex else None,
        },
        "per_node_bytes_per_round": {
            "median": _r(per_node[len(per_node) // 2] / run_rounds, 1) if per_node else 0.0,
            "max": _r(per_node[-1] / run_rounds, 1) if per_node else 0.0,
        },
        "series": series,
    }


def _withholding(obs: Observations, p: int) -> bool:
    starved = obs.starved.get(p, 0)
    fed = obs.fed.get(p, 0)
    return starved >= STARVED_MIN and starved / (starved + fed) >= STARVED_SHARE


def _misbehaviour(rec: RunRecord) -> Figures:
    obs = rec.observations
    honest_end = [n for n in rec.nodes if n.current]
    members: list[Figures] = []
    for n in rec.nodes:
        if n.honest:
            continue
        p = n.idx
        refusals = dict(sorted(obs.refusals.get(p, {}).items()))
        forks = obs.forks_seen.get(p, {})
        frozen = sum(1 for h in honest_end if p in h.frozen_feeds)
        stale = obs.stale_duplicates.get(p, 0)
        rules = {
            "forger": refusals.get("bad_signature", 0) > 0,
            "policy_violator": refusals.get("policy", 0) > 0,
            "equivocator": frozen > 0,
            "replayer": stale >= STARVED_MIN,
            "withholder": _withholding(obs, p),
            "disputer": refusals.get("over_quota", 0) > 0,
            "appeal_spammer": refusals.get("over_quota", 0) > 0,
        }
        members.append(
            {
                "node": n.name,
                "role": n.role,
                "detected": rules[n.role],
                "first_detected_s": _r(obs.first_detected[p] / 1000.0, 3)
                if p in obs.first_detected
                else None,
                "bad_items_sent": n.bad_items_sent,
                "entries_refused_by_reason": refusals,
                "honest_nodes_that_refused": len(obs.refused_by.get(p, ())),
                "messages_refused_by_reason": dict(sorted(obs.message_refusals.get(p, {}).items())),
                "honest_nodes_that_quarantined": len(obs.quarantined_by.get(p, ())),
                "fork_proofs_found_or_received": len(forks),
                "honest_nodes_with_feed_frozen": frozen,
                "honest_nodes_at_end": len(honest_end),
                "stale_duplicates": stale,
                "honest_nodes_that_got_stale_duplicates": len(obs.stale_by.get(p, ())),
                "starved_exchanges": obs.starved.get(p, 0),
                "fed_exchanges": obs.fed.get(p, 0),
                "others_entries_relayed": obs.relayed.get(p, 0),
                "its_tokens": rec.queries.forked_tokens.get(p),
            }
        )
    honest_ids = [n.idx for n in rec.nodes if n.honest]
    honest_set = frozenset(honest_ids)
    suspicious = {
        p: sum(c for r, c in obs.refusals.get(p, {}).items() if r in SUSPICIOUS_REASONS)
        for p in honest_ids
    }
    false = {
        "honest_peers_with_refused_entries": sum(1 for v in suspicious.values() if v),
        "honest_peers_quarantined": sum(1 for p in honest_ids if obs.quarantined_by.get(p)),
        "honest_peers_with_stale_duplicates": sum(
            1 for p in honest_ids if obs.stale_duplicates.get(p, 0)
        ),
        "honest_peers_suspected_of_withholding": sum(1 for p in honest_ids if _withholding(obs, p)),
        "honest_feeds_frozen": sum(len(h.frozen_feeds & honest_set) for h in honest_end),
        "max_starved_exchanges_of_an_honest_peer": max(
            (obs.starved.get(p, 0) for p in honest_ids), default=0
        ),
    }
    return {
        "members": members,
        "all_detected": all(m["detected"] for m in members),
        "false_alarms": false,
        "unknown_entries_accepted_by_honest_nodes": obs.unknown_accepted,
        "planted_identifiers_held_by_honest_nodes": rec.queries.planted,
    }


def _queries(rec: RunRecord) -> Figures:
    q = rec.scenario.queries
    checks = rec.queries.checks
    mid = [c for c in checks if not c.final]
    final = [c for c in checks if c.final]
    probed = [c for c in final if c.absent] or [c for c in checks if c.absent]
    absent = sum(c.absent for c in probed)
    positives = sum(c.bloom_positives for c in probed)
    measured = positives / absent if absent else 0.0
    expected = sum(c.expected_fpr * c.absent for c in probed) / absent if absent else 0.0
    textbook = sum(c.textbook_fpr * c.absent for c in probed) / absent if absent else 0.0
    tol = fp_tolerance(expected, absent)
    tol_conf = fp_tolerance(q.error_rate, absent)
    return {
        "during_run": [
            {
                "t_s": _r(c.t / 1000.0, 3),
                "node": rec.nodes[c.node].name,
                "answers": c.present,
                "agree_with_ground_truth": c.agree,
                "not_yet_current": c.disagree + c.removal_race,
            }
            for c in mid
        ],
        "final": {
            "honest_nodes": len(final),
            "answers": sum(c.present for c in final),
            "agree_with_ground_truth": sum(c.agree for c in final),
            "disagree": sum(c.disagree for c in final),
            "nodes_with_a_disagreement": sum(1 for c in final if c.disagree),
            "explained_by_removal_race": sum(c.removal_race for c in final),
            "bloom_false_negatives": sum(c.bloom_false_negatives for c in checks),
            "false_matches_after_exact_check": sum(c.false_matches for c in checks),
        },
        "false_positive_rate": {
            "configured": q.error_rate,
            "headroom": q.headroom,
            "expected_at_fill": _r(expected, 8),
            "textbook_at_fill": _r(textbook, 8),
            "measured": _r(measured, 8),
            "absent_probes": absent,
            "bloom_positives": positives,
            "nodes_probed": len(probed),
            "mean_live_tokens": _r(sum(c.live_tokens for c in probed) / len(probed), 1)
            if probed
            else 0,
            "mean_capacity": _r(sum(c.capacity for c in probed) / len(probed), 1) if probed else 0,
            "tolerance": _r(tol, 8),
            "within_tolerance_of_expected": abs(measured - expected) <= tol,
            "at_most_configured": measured <= q.error_rate + tol_conf,
        },
    }


def _share_times(
    at: Mapping[int, float], t0: float, targets: list[int], interval: float
) -> Figures:
    times = _spread_times(at, t0, targets)
    out: Figures = {}
    for k, share in SHARES.items():
        t = reach_time(times, len(targets), share)
        out[f"to_{k}_percent_s"] = None if t is None else _r(t / 1000.0, 3)
        out[f"to_{k}_percent_rounds"] = None if t is None else _r(t / interval, 3)
    return out


def _governance(rec: RunRecord, interval: float) -> Figures:
    g = rec.governance
    nodes = rec.nodes
    current = _current(rec)
    targets = [n.idx for n in current]
    current_ids = frozenset(targets)
    made = {v.version: v for v in g.versions}
    versions = []
    for v in g.versions:
        tg = [i for i in targets if nodes[i].joined_at <= v.final_t]  # not later newcomers
        versions.append(
            {
                "version": v.version,
                "changes": list(v.changes),
                "proposed_by": nodes[v.proposer].name,
                "proposed_s": _r(v.proposed_t / 1000.0, 3),
                "made_s": _r(v.final_t / 1000.0, 3),
                "signatures_after_s": _r((v.final_t - v.proposed_t) / 1000.0, 3),
                "signers": [nodes[i].name for i in v.signers],
                **_share_times(v.held, v.final_t, tg, interval),
            }
        )
    changes = []
    for c in g.changes:
        d: Figures = {
            "kind": c.kind,
            "t_s": _r(c.t / 1000.0, 3),
            "members": [nodes[i].name for i in c.members],
            "versions": list(c.versions),
        }
        if c.kind == "onboard":
            d["newcomers"] = [
                {
                    "node": nodes[i].name,
                    "version": v,
                    "keys_after_s": _r((g.first_keys_at[i] - nodes[i].joined_at) / 1000.0, 3)
                    if i in g.first_keys_at
                    else None,
                    "charter_after_s": _r((made[v].held[i] - nodes[i].joined_at) / 1000.0, 3)
                    if i in made[v].held
                    else None,
                    "epochs_held_at_end": list(nodes[i].epochs),
                }
                for i, v in zip(c.members, c.versions, strict=False)
            ]
        else:
            until = c.until_seq
            d["until_seq"] = {nodes[i].name: u for i, u in until.items()}
            d["entries_past_until_held_by_honest_nodes"] = sum(
                len(r.held_at_end & current_ids)
                for r in rec.entries
                if r.author in until and r.seq > until[r.author]
            )
            d["entries_refused_as_revoked"] = sum(n.refused_as_revoked for n in current)
            rotations = []
            for version in c.versions:
                ep = made[version].new_epoch
                if ep is None:
                    continue
                t0 = made[version].final_t
                tg = [i for i in targets if nodes[i].joined_at <= t0]
                entries, ops = g.republished.get(ep, (0, 0))
                rotations.append(
                    {
                        "epoch": ep,
                        "version": version,
                        "key": _share_times(g.keys_at.get(ep, {}), t0, tg, interval),
                        "nodes_holding_the_key_at_end": sum(1 for i in tg if ep in nodes[i].epochs),
                        "republished_entries": entries,
                        "republished_ops": ops,
                    }
                )
            d["key_rotations"] = rotations
        changes.append(d)
    return {"versions": versions, "changes": changes}


def _faults(rec: RunRecord, interval: float) -> Figures:
    targets = [n.idx for n in _current(rec)]
    joined = {n.idx: n.joined_at for n in rec.nodes}
    parts = []
    for p in rec.faults.partitions:
        at, heal = p.at_s * 1000.0, p.heal_s * 1000.0 if p.heal_s is not None else None
        groups = p.groups
        during = [
            r
            for r in rec.entries
            if r.valid and not r.twin and at <= r.t < (heal if heal is not None else rec.end_ms)
        ]
        before_heal_share = []
        cross = 0
        after_heal: list[float] = []
        undelivered = 0
        for r in during:
            tg = [i for i in targets if joined[i] <= r.t]
            g = groups.get(r.author, 0)
            reached = [i for i in tg if i in r.held and (heal is None or r.held[i] < heal)]
            before_heal_share.append(len(reached) / len(tg))
            cross += sum(1 for i in reached if groups.get(i, 0) != g)
            if heal is not None:
                times = _spread_times(r.held, heal, tg)
                t = reach_time([max(0.0, x) for x in times], len(tg), 1.0)
                if t is None:
                    undelivered += 1
                else:
                    after_heal.append(t / interval)
        parts.append(
            {
                "at_s": p.at_s,
                "heal_s": p.heal_s,
                "group_sizes": list(p.sizes),
                "entries_published_during": len(during),
                "max_share_reached_before_heal": _r(max(before_heal_share), 4)
                if before_heal_share
                else None,
                "mean_share_reached_before_heal": _r(
                    sum(before_heal_share) / len(before_heal_share), 4
                )
                if before_heal_share
                else None,
                "deliveries_across_the_partition_before_heal": cross,
                "rounds_after_heal_to_100_percent": summarize(after_heal, len(during))
                if heal is not None
                else None,
                "not_delivered_to_all_by_the_end": undelivered,
            }
        )
    catch = []
    for c in rec.observations.catch_up:
        catch.append(
            {
                "node": rec.nodes[c.node].name,
                "why": c.why,
                "at_s": c.t_s,
                "entries_to_catch_up": c.target,
                "caught_up_after_s": None if c.done_s is None else _r(c.done_s - c.t_s, 3),
            }
        )
    return {
        "timeline": [{"t_s": t, "event": e} for t, e in rec.faults.timeline],
        "partitions": parts,
        "catch_up": catch,
    }


def _latency(alerts: Sequence[Alert], interval: float, *, cdf: bool = False) -> Figures:
    ms = sorted(float(a.latency_ms) for a in alerts)
    out: Figures = {
        "alerts": len(alerts),
        "ms": percentiles(ms),
        "rounds": percentiles([x / interval for x in ms]),
    }
    if cdf:
        out["cdf_ms"] = [int(x) for x in ms]
    return out


def _alerts(rec: RunRecord, interval: float) -> Figures:
    """Alerts at watching nodes (DESIGN §14): how many, and the latency from the
    entry's time to the alert, urgent categories apart from the others."""
    a = rec.alerts
    assert a is not None
    sc = rec.scenario
    urgent = sc.policy.urgent_categories
    alerts = a.alerts
    own = [x for x in alerts if x.author == x.node]
    others = [x for x in alerts if x.author != x.node]
    keys = Counter((x.node, x.value, x.author, x.seq, x.event) for x in alerts)
    return {
        "watching_nodes": len(a.watchers),
        "watches": a.watches,
        "values_queried": a.recent_queries,
        "values_queried_before_anyone_reported_them": a.queried_ahead,
        "recent_query_s": sc.alerts.recent_query_s,
        "urgent_categories": sorted(DEFAULT_URGENT_CATEGORIES if urgent is None else urgent),
        "push_urgent": sc.gossip.push_urgent,
        "raised": len(alerts),
        "at_the_entry_author_s_own_node": len(own),
        "by_event": dict(sorted(Counter(x.event for x in alerts).items())),
        "by_source": dict(sorted(Counter(x.source for x in alerts).items())),
        "on_entries_no_member_published": sum(1 for x in alerts if not x.published),
        "raised_twice": sum(n - 1 for n in keys.values() if n > 1),
        "latency": {
            "urgent": _latency([x for x in others if x.urgent], interval, cdf=True),
            "other": _latency([x for x in others if not x.urgent], interval, cdf=True),
            "urgent_reported": _latency(
                [x for x in others if x.urgent and x.event == "reported"], interval
            ),
            "other_reported": _latency(
                [x for x in others if not x.urgent and x.event == "reported"], interval
            ),
        },
    }


def _after_match(rec: RunRecord) -> Figures:
    """Sightings, disputes and appeals (DESIGN §15): what honest members published,
    what the abusers tried and what the quotas let through, and whether honest
    nodes' verdicts stayed right."""
    am = rec.after_match
    assert am is not None
    obs = rec.observations
    nodes = rec.nodes
    final = [c for c in rec.queries.checks if c.final]
    abusers = []
    for x in am.abusers:
        n = nodes[x.node]
        abusers.append(
            {
                "node": n.name,
                "role": x.role,
                "op": x.what,
                "quota_per_day": x.quota,
                "tokens_seen": x.tokens_seen,
                "ops_attempted": x.attempted,
                "ops_published_within_quota": x.accepted_own,
                "ops_over_quota": x.over_quota,
                "over_quota_entries_sent": n.bad_items_sent,
                "over_quota_refusals_by_honest_nodes": obs.refusals.get(x.node, {}).get(
                    "over_quota", 0
                ),
                "honest_nodes_that_refused": len(obs.refused_by.get(x.node, ())),
                "honest_nodes_that_quarantined": len(obs.quarantined_by.get(x.node, ())),
                "most_ops_held_by_an_honest_node": x.max_held_by_an_honest_node,
                "held_within_quota": x.max_held_by_an_honest_node <= x.quota,
                "sealed_cases_sent": x.cases_made,
            }
        )
    appeals = am.appeals
    honest = [a for a in appeals if not a.spam]
    spam_ok = [a for a in appeals if a.spam and a.op_published]
    spam_over = [a for a in appeals if a.spam and not a.op_published]

    def part(group: Sequence[Any]) -> Figures:
        decided = [t for a in group for t, _ in a.decided.values()]
        waits = [
            (a.decided[r][0] - a.opened[r]) / 1000.0
            for a in group
            for r in a.decided
            if r in a.opened
        ]
        return {
            "appeals": len(group),
            "cases_opened_by_reporters": sum(len(a.opened) for a in group),
            "decisions": len(decided),
            "upheld": sum(1 for a in group for _, d in a.decided.values() if d == "upheld"),
            "rejected": sum(1 for a in group for _, d in a.decided.values() if d == "rejected"),
            "median_s_from_case_to_decision": _r(median(waits), 3) if waits else None,
        }

    orphan = am.orphan_cases_held
    return {
        "honest_ops_published": dict(am.honest_ops),
        "honest_requests_refused_by_their_own_node": dict(am.honest_refused),
        "abusers": abusers,
        "appeals": {
            "honest": part(honest),
            "spam_within_quota": part(spam_ok),
            "spam_over_quota": part(spam_over),
            "sealed_cases_of_over_quota_appeals_held": {
                "max_per_honest_node": max(orphan.values(), default=0),
                "honest_nodes_holding_some": sum(1 for v in orphan.values() if v),
            },
            "honest_nodes_holding_an_over_quota_appeal_op": am.orphan_ops_held,
        },
        "verdicts": {
            "matching_answers_compared": sum(c.extras_agree + c.extras_disagree for c in final),
            "sightings_disputes_appeal_as_ground_truth": sum(c.extras_agree for c in final),
            "differ": sum(c.extras_disagree for c in final),
            "answers_equal_to_ground_truth": sum(c.agree for c in final),
            "answers": sum(c.present for c in final),
        },
        "ground_truth_at_end": dict(am.truth),
    }
