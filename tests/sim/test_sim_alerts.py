"""Alerts at watching nodes: report-to-alert latency, urgent reports pushed at once."""

from __future__ import annotations

import math
from typing import Any

import pytest
from simkit import simulate, simulate_open, small

from protocol.entries import RetractOp, SeenOp
from sim.workload import live_epochs

WATCH = """
[alerts]
watchers = 0.3
watch_share = 0.2
queries_per_s = 2
recent_query_s = 60
queried_ahead = 0.5
"""


def _alerting(push: bool) -> Any:
    return small(
        WATCH,
        duration_s=60.0,
        gossip={"push_urgent": push},
        workload={
            "stop_s": 45.0,
            "one_category_per_entry": True,
            "ops_per_entry": (1, 4),
            "retractions_per_s": 0.3,
        },
    )


@pytest.fixture(scope="module")
def pushed() -> tuple[Any, dict[str, Any]]:
    run, _, f = simulate_open(_alerting(True))
    return run, f


@pytest.fixture(scope="module")
def unpushed() -> dict[str, Any]:
    return simulate(_alerting(False))[1]


def test_watching_nodes_raise_alerts_from_watches_and_recent_queries(
    pushed: tuple[Any, dict[str, Any]],
) -> None:
    _, f = pushed
    al = f["alerts"]
    assert al["watching_nodes"] == 9  # 30 % of the 30 honest founders
    assert al["watches"] > 0 and al["values_queried_before_anyone_reported_them"] > 0
    assert al["by_event"]["reported"] > 0 and al["by_event"]["retracted"] > 0
    assert al["by_source"]["watch"] > 0 and al["by_source"]["recent_query"] > 0
    assert al["on_entries_no_member_published"] == 0
    assert al["raised_twice"] == 0
    lat = al["latency"]
    assert lat["urgent"]["alerts"] > 0 and lat["other"]["alerts"] > 0
    assert (
        lat["urgent"]["alerts"] + lat["other"]["alerts"] + al["at_the_entry_author_s_own_node"]
        == al["raised"]
    )


def test_urgent_reports_pushed_at_once_alert_within_a_second(
    pushed: tuple[Any, dict[str, Any]], unpushed: dict[str, Any]
) -> None:
    _, f = pushed
    lat = f["alerts"]["latency"]
    assert f["run"]["entries_pushed_as_urgent"] > 0
    assert lat["urgent"]["ms"]["p99"] < 1000  # DESIGN §13 (at a 2 s interval)
    assert lat["urgent"]["ms"]["p50"] < lat["other"]["ms"]["p50"] / 3
    # the others wait for rounds: around half a round typically, within a few
    assert 0.2 < lat["other"]["rounds"]["p50"] < 1.5
    # without the eager push, urgent alerts are no faster than the others
    slow = unpushed["alerts"]["latency"]
    assert "entries_pushed_as_urgent" not in unpushed["run"]
    assert slow["urgent"]["ms"]["p50"] > 3 * lat["urgent"]["ms"]["p50"]
    assert slow["urgent"]["ms"]["p50"] > slow["other"]["ms"]["p50"] / 2
    # the same watches and reports either way: the same alerts were raised
    assert unpushed["alerts"]["raised"] == f["alerts"]["raised"]


def test_the_report_states_alert_latency(pushed: tuple[Any, dict[str, Any]]) -> None:
    from sim.report import render_markdown

    _, f = pushed
    md = render_markdown(f, [], wall_s=None, command="")
    assert "## Alerts at watching nodes" in md and "Report-to-alert latency" in md


def test_a_withdrawn_sighting_raises_no_alert_and_a_retraction_does(
    pushed: tuple[Any, dict[str, Any]],
) -> None:
    """At a watching node: the node's own sighting of a watched value, and its withdrawal
    (a retract naming ``of``), raise nothing; its retraction of its own report does."""
    run, _ = pushed
    fleet, ledger, alerts, workload = run.fleet, run.ledger, run.alerts, run.workload
    now = run.clock.now_ms

    def mine_live(node: Any, value: int, ep: int) -> bool:
        tok = ledger.token(value, ep)
        return any(s.author == node.id and s.live(now) for s in node.store.indicators(tok))

    # a watcher with a live report of its own that another member also reports
    for w in alerts.watchers:
        node = fleet[w]
        if not (node.up and workload.can_publish(node)):
            continue
        eps = live_epochs(node)
        mine = [v for ep in eps for v in node.own_values.get(ep, {}) if mine_live(node, v, ep)]
        if mine:
            break
    else:
        pytest.skip("no watcher with a live report of its own")
    value = mine[0]
    alerts.watches[node.idx][value] = ("watch", math.inf)
    kind = ledger.kind_of[value]
    ep = eps[-1]
    tok = ledger.token(value, ep)
    before = len(alerts.alerts)
    workload.publish(node, [SeenOp(tok, kind, ep, now + 86_400_000)])
    workload.publish(node, [RetractOp(tok, kind, ep, "other", "seen")])
    assert len(alerts.alerts) == before
    assert ledger.truth(value, now, authors={node.idx}) is not None  # still reported
    ops: list[Any] = [
        RetractOp(ledger.token(value, e), kind, e, "resolved")
        for e in eps
        if mine_live(node, value, e)
    ]
    workload.publish(node, ops)
    assert [(a.node, a.value, a.event, a.latency_ms) for a in alerts.alerts[before:]] == [
        (node.idx, value, "retracted", 0)
    ]


def test_no_watchers_no_alerts() -> None:
    _, f = simulate(small(WATCH.replace("watchers = 0.3", "watchers = 0"), duration_s=20.0))
    assert "alerts" not in f
