"""Watchlists, recent queries and alerts (DESIGN §14) on real in-process nodes.

Every test runs real Nodes over SQLite with gossip carried message by message
(tests/node/alertkit.py) and a clock that moves only when told, and checks
what a member's platform would see: the alerts, their order and fields, and
that what lapses is gone from the database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alertkit import HOUR_MS, Mesh

from contracts.errors import DecodeError, NotReady, RequestRefused
from contracts.policy import DAY_MS, DEFAULT_URGENT_CATEGORIES, DataPolicy
from node.alerts import Alerts
from node.config import SETTINGS, ConfigError, load_config
from protocol.gossip import Send
from protocol.keys import member_id_text

PHONE = "+8613800138000"
OTHER = "+8613912345678"


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    m = Mesh(tmp_path, "abc")
    yield m
    m.close()


def watch(m: Mesh, name: str, value: str, **kw: object) -> dict[str, object]:
    return m[name].alerts.watch([{"kind": "phone", "value": value, **kw}], m.clock())


# -- watches ---------------------------------------------------------------------------


def test_a_watch_answers_the_current_verdict_a_retro_hunt(mesh: Mesh) -> None:
    mesh.report("b", "138 0013 8000", "telecom_fraud", severity=4)
    mesh.sync("b", "a")
    got = mesh["a"].alerts.watch(
        [
            {"kind": "phone", "value": "13800138000", "ref": "case-1"},
            {"kind": "phone", "value": OTHER},
        ],
        mesh.clock(),
    )
    assert got["watching"] == 2
    hit, miss = got["results"]
    assert hit["match"] is True and hit["reporters"] == 1 and hit["max_severity"] == 4
    assert hit["categories"] == ["telecom_fraud"] and hit["reported_by"] == ["b"]
    assert miss == {"match": False, "kind": "phone"}
    # adding a watch raises no alert: the answer is the retro-hunt
    assert mesh.alerts("a") == []


def test_an_urgent_report_elsewhere_alerts_the_watching_node(mesh: Mesh) -> None:
    watch(mesh, "a", "138 0013 8000", ref="case-7")
    mesh.clock.advance(1_000)
    r = mesh.report("b", PHONE, "money_mule", severity=5)
    made = mesh.clock()
    # the report is offered to every reachable peer at once: sends are waiting now,
    # before any gossip round
    assert mesh.flush() >= 2
    mesh.clock.advance(40)
    [alert] = mesh.alerts("a")
    assert alert["id"] == 1
    assert alert["event"] == "reported" and alert["source"] == "watch"
    assert alert["kind"] == "phone" and alert["value"] == PHONE and alert["ref"] == "case-7"
    assert alert["entry"] == {
        "log": member_id_text(mesh.id("b")),
        "seq": r.entry.seq,
        "hash": r.entry.hash.hex(),
    }
    v = alert["verdict"]
    assert v["match"] is True and v["categories"] == ["money_mule"] and v["max_severity"] == 5
    # the verdict is what a query answers at that time (confidence and all)
    query = mesh["a"].query([{"kind": "phone", "value": PHONE}], made, record=False)
    assert v == query[0]
    assert alert["latency_ms"] == mesh.clock() - made - 40 == 0  # carried at the same instant
    assert alert["at"].endswith("Z")
    # nobody else watches it
    assert mesh.alerts("b") == [] and mesh.alerts("c") == []


def test_a_retraction_alerts_so_a_hold_can_be_released(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE, ref="hold-1")
    mesh.report("b", PHONE)
    mesh.flush()
    mesh.retract("b", PHONE)
    mesh.flush()
    first, second = mesh.alerts("a")
    assert (first["event"], second["event"]) == ("reported", "retracted")
    assert second["id"] > first["id"] and second["ref"] == "hold-1"
    assert second["verdict"] == {"match": False, "kind": "phone"}


def test_a_second_reporter_alerts_again_and_a_retraction_leaves_the_other(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE)
    mesh.report("b", PHONE)
    mesh.flush()
    mesh.report("c", PHONE, "telecom_fraud")
    mesh.flush()
    mesh.retract("b", PHONE)
    mesh.flush()
    events = [(a["event"], a["verdict"].get("reporters")) for a in mesh.alerts("a")]
    assert events == [("reported", 1), ("reported", 2), ("retracted", 1)]


def test_this_members_own_report_alerts_its_own_watch(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE, ref="own")
    mesh.report("a", PHONE)
    [alert] = mesh.alerts("a")
    assert alert["entry"]["log"] == member_id_text(mesh.id("a")) and alert["ref"] == "own"


def test_a_re_report_while_live_is_not_news(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE)
    mesh.report("b", PHONE, severity=2)
    mesh.flush()
    mesh.clock.advance(60_000)
    mesh.report("b", PHONE, severity=5)  # the same reporter again, still live
    mesh.flush()
    assert [a["event"] for a in mesh.alerts("a")] == ["reported"]


def test_non_urgent_reports_wait_for_a_round_and_still_alert(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE)
    mesh.report("b", PHONE, "promotion_abuse", ttl_days=30)
    assert mesh.flush() == 0  # nothing offered early
    assert mesh.alerts("a") == []
    mesh.sync("b", "a")  # a gossip round
    [alert] = mesh.alerts("a")
    assert alert["verdict"]["categories"] == ["promotion_abuse"]


def test_urgent_push_is_rate_limited_and_the_rest_follows_on_the_timer(mesh: Mesh) -> None:
    mesh.step_ms = 0
    mesh.report("b", PHONE)
    assert {s.peer for s in mesh["b"].take_sends()} == {mesh.id("a"), mesh.id("c")}
    mesh.clock.advance(10)
    mesh.report("b", OTHER)
    assert mesh["b"].take_sends() == []  # within the gap
    due = mesh["b"].timer()
    assert due is not None and due <= mesh.clock() + 100
    mesh.clock.now = due
    mesh["b"].handle_timer(due)
    assert len([s for s in mesh["b"].take_sends() if isinstance(s, Send)]) == 2


def test_unwatch_stops_alerts_by_ref_or_all(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE, ref="x")
    watch(mesh, "a", PHONE, ref="y")
    watch(mesh, "a", OTHER)
    now = mesh.clock()
    got = mesh["a"].alerts.unwatch([{"kind": "phone", "value": PHONE, "ref": "x"}], now)
    assert got == {"removed": 1, "recent_queries": 0}
    mesh.report("b", PHONE)
    mesh.flush()
    assert [a["ref"] for a in mesh.alerts("a")] == ["y"]
    got = mesh["a"].alerts.unwatch([{"kind": "phone", "value": "13912345678"}], now)
    assert got["removed"] == 1
    mesh.report("b", OTHER)
    mesh.flush()
    assert len(mesh.alerts("a")) == 1


def test_the_watch_list_shows_counts_and_refs_never_values(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE, ref="case-1", ttl_days=7)
    watch(mesh, "a", OTHER)
    mesh["a"].alerts.watch([{"kind": "email", "value": "Mule@Example.com"}], mesh.clock())
    view = mesh["a"].alerts.watches(mesh.clock())
    assert view["watching"] == 3 and view["by_kind"] == {"email": 1, "phone": 2}
    assert [w["ref"] for w in view["watches"]] == ["case-1", None, None]
    text = json.dumps(view)
    for secret in (PHONE, OTHER, "13800138000", "mule@example.com"):
        assert secret not in text
    # a watch lapses after its ttl
    mesh.clock.advance(8 * DAY_MS)
    assert mesh["a"].alerts.watches(mesh.clock())["watching"] == 2


def test_bad_watch_items_are_refused_whole_with_a_reason_each(mesh: Mesh) -> None:
    alerts = mesh["a"].alerts
    bad = [
        {"kind": "phone", "value": PHONE},
        {"kind": "phone", "value": "12"},
        {"kind": "fax", "value": "1"},
        {"kind": "phone", "value": PHONE, "ttl_days": 0},
        {"kind": "phone", "value": PHONE, "ref": "x" * 65},
        {"kind": "phone", "value": PHONE, "colour": "red"},
        "phone",
        {"kind": "phone"},
    ]
    with pytest.raises(RequestRefused) as e:
        alerts.watch(bad, mesh.clock())
    assert e.value.reason == "invalid_items"
    assert e.value.items is not None
    codes = [(i["index"], i["code"]) for i in e.value.items]
    assert codes == [
        (1, "invalid_value"),
        (2, "unknown_kind"),
        (3, "bad_ttl"),
        (4, "bad_ref"),
        (5, "unknown_field"),
        (6, "bad_item"),
        (7, "missing_field"),
    ], codes
    assert alerts.watches(mesh.clock())["watching"] == 0
    with pytest.raises(RequestRefused) as e:
        alerts.watch([], mesh.clock())
    assert e.value.reason == "empty_batch"
    with pytest.raises(RequestRefused) as e:
        alerts.watch([{"kind": "phone", "value": PHONE}] * 3, mesh.clock(), max_batch=2)
    assert e.value.reason == "batch_too_large"


def test_a_node_without_a_key_cannot_watch(tmp_path: Path) -> None:
    m = Mesh(tmp_path, "a")
    try:
        node = m["a"]
        node.epoch_keys._keys.clear()  # as if no grant had come yet
        with pytest.raises(NotReady):
            node.alerts.watch([{"kind": "phone", "value": PHONE}], m.clock())
    finally:
        m.close()


# -- recent queries ----------------------------------------------------------------------


def test_a_value_queried_an_hour_ago_alerts_when_reported_later(mesh: Mesh) -> None:
    [r] = mesh["a"].query(
        [{"kind": "phone", "value": "138 0013 8000", "ref": "txn-9"}], mesh.clock()
    )
    assert r["match"] is False
    mesh["a"].alerts.upkeep(mesh.clock())  # the upkeep stores it (sealed)
    mesh.clock.advance(HOUR_MS)
    mesh.report("b", PHONE)
    mesh.flush()
    [alert] = mesh.alerts("a")
    assert alert["source"] == "recent_query" and alert["ref"] == "txn-9"
    assert alert["value"] == PHONE and alert["event"] == "reported"


def test_a_query_alerts_even_before_the_upkeep_stores_it(mesh: Mesh) -> None:
    mesh["a"].query([{"kind": "phone", "value": PHONE}], mesh.clock())
    mesh.report("b", PHONE)
    mesh.flush()
    [alert] = mesh.alerts("a")
    assert alert["source"] == "recent_query" and alert["ref"] is None


def test_a_watch_and_a_query_of_the_same_value_and_ref_alert_once(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE, ref="case-1")
    node = mesh["a"]
    node.query([{"kind": "phone", "value": PHONE, "ref": "case-1"}], mesh.clock())
    node.query([{"kind": "phone", "value": PHONE, "ref": "case-2"}], mesh.clock())
    node.query([{"kind": "phone", "value": PHONE, "ref": "case-2"}], mesh.clock())  # again
    mesh.report("b", PHONE)
    mesh.flush()
    got = sorted((a["ref"], a["source"]) for a in mesh.alerts("a"))
    assert got == [("case-1", "watch"), ("case-2", "recent_query")]


def test_queries_lapse_after_the_window_and_their_values_are_deleted(mesh: Mesh) -> None:
    node = mesh["a"]
    node.query([{"kind": "phone", "value": PHONE, "ref": "old"}], mesh.clock())
    node.alerts.upkeep(mesh.clock())
    db = sqlite3.connect(load_config(mesh.root / "a", env={}).db_path)
    assert db.execute("SELECT COUNT(*) FROM recent_batches").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM recent_tokens").fetchone()[0] == 1
    mesh.clock.advance(72 * HOUR_MS + 1)
    mesh.report("b", PHONE)
    mesh.flush()
    assert mesh.alerts("a") == []  # lapsed: not watched any more
    node.alerts.upkeep(mesh.clock())  # prunes the sealed values
    node.alerts.purge_lapsed_tokens(mesh.clock())  # and every slice of tokens
    assert db.execute("SELECT COUNT(*) FROM recent_batches").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM recent_tokens").fetchone()[0] == 0
    assert node.alerts.recent_count() == 0
    db.close()


def test_recent_queries_can_be_turned_off(tmp_path: Path) -> None:
    m = Mesh(tmp_path, "ab", recent_query_hours=0)
    try:
        m["a"].query([{"kind": "phone", "value": PHONE}], m.clock())
        m.report("b", PHONE)
        m.flush()
        assert m.alerts("a") == []
        assert m["a"].alerts.recent_count() == 0
    finally:
        m.close()


def test_a_bad_query_ref_is_refused_for_its_item_only(mesh: Mesh) -> None:
    results = mesh["a"].query(
        [{"kind": "phone", "value": PHONE, "ref": 7}, {"kind": "phone", "value": OTHER}],
        mesh.clock(),
    )
    assert results[0]["error"]["code"] == "bad_ref"
    assert results[1]["match"] is False
    assert mesh["a"].alerts.recent_count() == 1


def test_unwatch_also_stops_watching_recent_queries(mesh: Mesh) -> None:
    mesh["a"].query([{"kind": "phone", "value": PHONE, "ref": "q"}], mesh.clock())
    got = mesh["a"].alerts.unwatch([{"kind": "phone", "value": PHONE}], mesh.clock())
    assert got == {"removed": 0, "recent_queries": 1}
    mesh.report("b", PHONE)
    mesh.flush()
    assert mesh.alerts("a") == []


# -- key rotation ----------------------------------------------------------------------


def test_after_a_key_rotation_watches_still_match_and_republishing_is_not_news(
    mesh: Mesh,
) -> None:
    watch(mesh, "a", PHONE, ref="w")
    mesh["a"].query([{"kind": "phone", "value": OTHER, "ref": "q"}], mesh.clock())
    mesh.report("b", PHONE)
    mesh.flush()
    assert len(mesh.alerts("a")) == 1
    mesh.clock.advance(1_000)
    mesh["a"].propose_rotate_key(mesh.clock())  # a is the only admin: final at once
    for _ in range(3):
        mesh.clock.advance(2_000)
        mesh.sync("a", "b")
        mesh.sync("a", "c")
        mesh.sync("b", "a")
    assert 2 in mesh["b"].epoch_keys and 2 in mesh["a"].epoch_keys
    # b republished its report under epoch 2: a holds it, and raised nothing for it
    assert len(mesh.alerts("a")) == 1
    # a new report is made under epoch 2 only: the watch and the query match it
    mesh.report("c", OTHER)
    mesh.flush()
    new = mesh.alerts("a", after=1)
    assert [(a["ref"], a["source"]) for a in new] == [("q", "recent_query")]


# -- the alert log -------------------------------------------------------------------------


def test_alerts_survive_a_restart_and_ids_only_grow(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE)
    mesh.report("b", PHONE)
    mesh.flush()
    before = mesh.alerts("a")
    mesh["a"].alerts.set_cursor("webhook", before[-1]["id"])
    node = mesh.reopen("a")
    assert mesh.alerts("a") == before
    assert node.alerts.cursor("webhook") == before[-1]["id"]
    mesh.retract("b", PHONE)
    mesh.flush()
    ids = [a["id"] for a in mesh.alerts("a")]
    assert ids == sorted(ids) and len(set(ids)) == 2


def test_old_alerts_are_pruned_after_the_retention(tmp_path: Path) -> None:
    m = Mesh(tmp_path, "ab", retention_days=2)
    try:
        watch(m, "a", PHONE)
        m.report("b", PHONE)
        m.flush()
        m.clock.advance(DAY_MS)
        m.retract("b", PHONE)
        m.flush()
        assert len(m.alerts("a")) == 2
        m.clock.advance(DAY_MS + 1)
        m["a"].alerts.upkeep(m.clock())
        [kept] = m.alerts("a")
        assert kept["event"] == "retracted" and m["a"].alerts.last_id() == 2
    finally:
        m.close()


def test_status_and_metrics_count_alerts(mesh: Mesh) -> None:
    watch(mesh, "a", PHONE)
    mesh["a"].query([{"kind": "phone", "value": OTHER}], mesh.clock())
    mesh.report("b", PHONE)
    mesh.flush()
    st = mesh["a"].status(mesh.clock())["alerts"]
    assert st["watches"] == 1 and st["recent_queries"] == 1
    assert st["last_id"] == 1 and st["raised"] == 1 and st["retained"] == 1
    assert st["webhook"]["target"] is None and st["webhook"]["delivered"] == 0
    text = mesh.metrics["a"].render().decode()
    assert 'riskmesh_alerts_total{event="reported",source="watch"} 1.0' in text
    assert "riskmesh_alert_latency_seconds_count 1.0" in text


def test_the_store_holds_no_raw_watched_value(mesh: Mesh) -> None:
    watch(mesh, "a", "138 0013 8000", ref="case")
    mesh["a"].query([{"kind": "phone", "value": "139 1234 5678"}], mesh.clock())
    mesh.report("b", PHONE)
    mesh.flush()
    mesh["a"].alerts.upkeep(mesh.clock())
    mesh.close()
    for p in (mesh.root / "a").rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for secret in (PHONE, "13800138000", OTHER, "13912345678", "0013 8000"):
                assert secret.encode() not in data, (p.name, secret)
    mesh.nodes.clear()


def test_alerts_repr_and_urgent_decision(mesh: Mesh) -> None:
    alerts: Alerts = mesh["a"].alerts
    assert "Alerts(" in repr(alerts)
    policy = DataPolicy()
    assert policy.urgent_categories == DEFAULT_URGENT_CATEGORIES
    assert {"telecom_fraud", "money_mule", "account_takeover", "phishing"} == set(
        policy.urgent_categories
    )


# -- policy and settings ---------------------------------------------------------------------


def test_an_old_charter_without_urgent_categories_decodes_with_the_default() -> None:
    m = DataPolicy().to_map()
    assert m["urgent_categories"] == sorted(DEFAULT_URGENT_CATEGORIES)
    del m["urgent_categories"]
    assert DataPolicy.from_map(m).urgent_categories == DEFAULT_URGENT_CATEGORIES
    m["urgent_categories"] = ["phishing"]
    assert DataPolicy.from_map(m).urgent_categories == frozenset({"phishing"})
    m["urgent_categories"] = ["rudeness"]
    with pytest.raises(DecodeError, match=r"rudeness|category"):
        DataPolicy.from_map(m)


def test_alert_settings_are_checked_and_the_secret_never_shown(tmp_path: Path) -> None:
    names = {s.name for s in SETTINGS}
    assert {
        "alerts.recent_query_hours",
        "alerts.retention_days",
        "alerts.webhook_url",
        "alerts.webhook_secret",
    } <= names
    home = tmp_path / "h"
    home.mkdir()
    secret = "s3cr3t-hook-key-zq"
    env = {
        "RISKMESH_ALERTS_WEBHOOK_URL": "http://127.0.0.1:9/hook?token=abc",
        "RISKMESH_ALERTS_WEBHOOK_SECRET": secret,
    }
    config = load_config(home, env=env)
    assert config["alerts.webhook_secret"] == secret
    assert secret not in repr(config) and "<secret>" in repr(config)
    with pytest.raises(ConfigError, match=r"needs alerts\.webhook_secret"):
        load_config(home, env={"RISKMESH_ALERTS_WEBHOOK_URL": "http://127.0.0.1:9/"})
    with pytest.raises(ConfigError, match="http"):
        load_config(home, env={**env, "RISKMESH_ALERTS_WEBHOOK_URL": "ftp://x/"})
    with pytest.raises(ConfigError, match="recent_query_hours"):
        load_config(home, env={"RISKMESH_ALERTS_RECENT_QUERY_HOURS": "-1"})
    (home / "config.toml").write_text("[alerts]\nwebhook_secret = 12345\n")
    with pytest.raises(ConfigError) as e:
        load_config(home, env={})
    assert "12345" not in str(e.value)


def test_withdrawing_a_sighting_is_no_retraction_of_the_report(mesh: Mesh) -> None:
    """A retract op naming ``of`` (a sighting, dispute or appeal) leaves the report
    alone: it raises no ``retracted`` alert while another member still reports."""
    watch(mesh, "a", PHONE)
    mesh.report("b", PHONE)
    mesh.flush()
    mesh.retract("b", PHONE)
    mesh.flush()
    mesh.report("c", PHONE, "telecom_fraud")
    mesh.flush()
    mesh.clock.advance(mesh.step_ms)
    mesh["b"].after_match.sightings([{"kind": "phone", "value": PHONE}], mesh.clock())
    mesh.flush()
    mesh.clock.advance(mesh.step_ms)
    item = {"kind": "phone", "value": PHONE, "reason": "other", "of": "seen"}
    mesh["b"].retract([item], mesh.clock())
    mesh.flush()
    events = [(a["event"], a["verdict"].get("reporters")) for a in mesh.alerts("a")]
    assert events == [("reported", 1), ("retracted", None), ("reported", 1)], events
