"""After the match, on real Nodes over SQLite with gossip carried by hand: warning
lists, sightings and disputes, appeals routed by value, deadlines, audit rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.errors import GossipError, PolicyViolation, RequestRefused
from contracts.policy import DAY_MS
from contracts.warninglists import WarningList
from node.api import status_of
from node.audit import acting
from node.config import load_config
from node.core import Node
from node.home import init_home, install_charter_file, make_genesis
from node.metrics import Metrics
from node.store import SqliteStore
from protocol.entries import AddOp, build_entry
from protocol.keys import MemberId, MemberKey, member_id_text

PHONE = "+86 139 1234 5678"
OTHER = "+86 137 0000 1111"


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


class Trio:
    """Members a (the admin), b and c, each a Node over its own SQLite file."""

    def __init__(self, root: Path, *, policy: dict[str, Any] | None = None) -> None:
        self.root = root
        self.clock = Clock()
        names = "abc"
        for n in names:
            init_home(root / n, name=n, endpoint=f"http://{n}.test", api_listen="127.0.0.1:0")
        make_genesis(
            root / "a", "t", [str(root / n / "join-request.cbor") for n in "bc"], root / "g.cbor"
        )
        self.nodes: dict[str, Node] = {}
        self.metrics: dict[str, Metrics] = {}
        for n in names:
            install_charter_file(root / n, root / "g.cbor")
            key = MemberKey.from_seed((root / n / "keys" / "member.key").read_bytes())
            self.metrics[n] = Metrics()
            db = load_config(root / n, env={}).db_path
            self.nodes[n] = Node(
                SqliteStore(db, key), key, now=self.clock(), metrics=self.metrics[n]
            )
        self.by_id = {node.key.id: n for n, node in self.nodes.items()}
        self.sync_all()
        if policy:
            self.nodes["a"].propose_policy(policy, self.clock())
            self.sync_all()
            self.clock.advance(DAY_MS + 1)  # the new version is in force a day after
            self.sync_all()

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def id(self, name: str) -> MemberId:
        return MemberId(self.nodes[name].key.id)

    def flush(self) -> None:
        busy = True
        while busy:
            busy = False
            for name, node in list(self.nodes.items()):
                for send in node.take_sends():
                    busy = True
                    msg: bytes | None = send.data
                    a, b = name, self.by_id[send.peer]
                    while msg is not None:
                        try:
                            msg = self.nodes[b].receive(self.id(a), msg, self.clock())
                        except GossipError:  # refused as a whole: a failed exchange
                            self.nodes[a].connection_failed(self.id(b), self.clock())
                            break
                        a, b = b, a

    def sync_all(self) -> None:
        for _ in range(2):
            for a in self.nodes:
                for b in self.nodes:
                    if a != b:
                        self.nodes[a].start_exchange(self.id(b), self.clock())
                        self.flush()

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()

    # the calls a platform makes, each a second after the last
    def report(self, n: str, value: str = PHONE, **kw: Any) -> Any:
        item = {"kind": "phone", "value": value, "category": "telecom_fraud", "severity": 4, **kw}
        return self.nodes[n].report([item], self.clock.advance(1000))

    def query(self, n: str, value: str = PHONE, kind: str = "phone") -> dict[str, Any]:
        [v] = self.nodes[n].query([{"kind": kind, "value": value}], self.clock())
        return v


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Trio]:
    t = Trio(tmp_path, policy={"disclose_reporters": False})
    try:
        yield t
    finally:
        t.close()


def refused(fn: Any, *args: Any) -> RequestRefused:
    with pytest.raises(RequestRefused) as e:
        fn(*args)
    return e.value


# -- warning lists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("bank_card", "4111111111111111"),
        ("bank_card", "4111 1111 1111 1111"),
        ("ip", "8.8.8.8"),
        ("ip", "10.20.30.40"),
        ("email", "someone@example.com"),
        ("email", "SomeOne@Mail.Example.ORG"),
    ],
)
def test_reporting_a_warning_listed_value_is_refused(trio: Trio, kind: str, value: str) -> None:
    a = trio["a"]
    item = {"kind": kind, "value": value, "category": "phishing"}
    e = refused(a.report, [item], trio.clock())
    assert (e.reason, status_of(e)) == ("warning_listed", 422)
    assert e.items is not None and e.items[0]["code"] == "warning_listed"
    assert value not in e.message and value not in e.items[0]["message"]
    # mixed with another refusal, the batch is invalid_items, each item with its code
    e = refused(a.report, [item, {"kind": "phone", "value": "12", "category": "phishing"}], 0)
    assert e.reason == "invalid_items"
    assert e.items is not None
    assert [i["code"] for i in e.items] == ["warning_listed", "invalid_value"]


def test_a_nodes_own_list_refuses_its_own_reports(trio: Trio) -> None:
    a = trio["a"]
    a.after_match.local_list = WarningList.from_entries({"phone": ["+8613912345678"]}, "local")
    e = refused(trio.report, "a")
    assert e.reason == "warning_listed" and "this node" in (e.items or [{}])[0]["message"]
    trio.report("b")  # another node's list is its own business


def test_a_peers_entry_adding_a_listed_value_is_refused_and_counted(trio: Trio) -> None:
    c = trio["c"]
    # c's node is made to sign what no honest node publishes: the token of 8.8.8.8
    assert c.chain is not None and c.feeds is not None
    tok = c.epoch_keys.tokenizer(1).token("ip", "8.8.8.8")
    head = c.store.head(MemberId(c.key.id))
    exp = trio.clock() + DAY_MS
    bad = build_entry(
        c.key,
        seq=1 if head is None else head.seq + 1,
        prev=None if head is None else head.hash,
        ts=trio.clock(),
        cv=c.chain.current.version,
        ops=[AddOp(tok, "ip", 1, "phishing", 3, exp)],
    )
    with c.store.atomic():
        c.store.append(bad)  # past the checks, as a byzantine node would
        for listener in c.feeds.listeners:
            listener(bad)
    trio.sync_all()
    for n in "ab":
        assert trio[n].store.head(trio.id("c")) == head, n  # nothing of it was taken
        assert trio.query(n, "8.8.8.8", "ip")["match"] is False
        text = trio.metrics[n].render().decode()
        assert 'riskmesh_entries_total{outcome="warning_listed"}' in text, n
        line = next(ln for ln in text.splitlines() if 'outcome="warning_listed"' in ln)
        assert float(line.split()[-1]) >= 1.0


# -- sightings and disputes ---------------------------------------------------------------


def test_sightings_and_disputes_change_the_verdict_and_retracting_restores_it(trio: Trio) -> None:
    trio.report("a")
    trio.sync_all()
    before = trio.query("c")
    assert before["match"] and before["sightings"] == 0 and before["disputes"] == 0
    assert before["under_appeal"] is False and before["appeal_overdue"] is False
    item = {"kind": "phone", "value": "13912345678"}
    trio["b"].after_match.sightings([item], trio.clock.advance(1000))
    trio.sync_all()
    seen = trio.query("c")
    assert seen["sightings"] == 1 and seen["confidence"] > before["confidence"]
    trio["c"].after_match.disputes(
        [{**item, "reason": "legitimate_customer"}], trio.clock.advance(1000)
    )
    trio.sync_all()
    both = trio.query("a")
    assert both["sightings"] == 1 and both["disputes"] == 1
    assert both["confidence"] < seen["confidence"]
    # the existing fields are untouched by either
    fields = ("match", "kind", "reporters", "categories", "max_severity", "expires")
    assert {k: both[k] for k in fields} == {k: before[k] for k in fields}
    # each member withdraws its own
    trio["b"].retract([{**item, "reason": "other", "of": "seen"}], trio.clock.advance(1000))
    trio["c"].retract([{**item, "reason": "resolved", "of": "dispute"}], trio.clock.advance(1000))
    trio.sync_all()
    for n in "abc":
        assert trio.query(n) == before, n
    # a second retraction of the same finds nothing
    e = refused(trio["b"].retract, [{**item, "reason": "other", "of": "seen"}], trio.clock())
    assert e.items is not None and e.items[0]["code"] == "not_reported"


def test_sightings_and_disputes_refuse_what_they_cannot_say(trio: Trio) -> None:
    trio.report("a")
    trio.sync_all()
    b = trio["b"]
    now = trio.clock()

    def codes(fn: Any, items: list[dict[str, Any]]) -> list[str]:
        e = refused(fn, items, now)
        assert status_of(e) == 422
        return [i["code"] for i in e.items or []]

    unknown = {"kind": "phone", "value": OTHER}
    assert codes(b.after_match.sightings, [unknown]) == ["not_listed"]
    mine = {"kind": "phone", "value": PHONE}
    assert codes(trio["a"].after_match.sightings, [mine]) == ["not_listed"]  # its own report
    assert codes(b.after_match.disputes, [{**mine, "reason": "bored"}]) == ["bad_reason"]
    assert codes(b.after_match.disputes, [mine]) == ["bad_reason"]
    assert codes(b.after_match.sightings, [{**mine, "ttl_days": 0}]) == ["bad_ttl"]
    assert codes(b.after_match.sightings, [{**mine, "ttl_days": 99_999}]) == ["bad_ttl"]
    assert codes(b.after_match.sightings, [{**mine, "extra": 1}]) == ["unknown_field"]
    assert codes(b.after_match.sightings, [{"kind": "fax", "value": "1"}]) == ["unknown_kind"]
    e = refused(b.after_match.sightings, [], now)
    assert e.reason == "empty_batch"
    e = refused(trio["b"].retract, [{**mine, "reason": "other", "of": "everything"}], now)
    assert e.items is not None and e.items[0]["code"] == "bad_of"


def test_the_dispute_quota_bounds_a_member_that_disputes_everything(tmp_path: Path) -> None:
    t = Trio(tmp_path, policy={"max_disputes_per_day": 2})
    try:
        values = [f"+86 139 0000 00{i:02d}" for i in range(4)]
        t["a"].report(
            [{"kind": "phone", "value": v, "category": "money_mule"} for v in values],
            t.clock.advance(1000),
        )
        t.sync_all()
        items = [{"kind": "phone", "value": v, "reason": "false_positive"} for v in values]
        b = t["b"]
        b.after_match.disputes(items[:2], t.clock.advance(1000))
        with pytest.raises(PolicyViolation) as e:
            b.after_match.disputes(items[2:3], t.clock.advance(1000))
        assert (e.value.reason, status_of(e.value)) == ("over_quota", 429)
        t.clock.advance(DAY_MS)
        b.after_match.disputes(items[2:3], t.clock())
    finally:
        t.close()


# -- appeals ----------------------------------------------------------------------------------


def file(t: Trio, who: str = "b", value: str = PHONE, ref: str = "CASE-1") -> dict[str, Any]:
    body = {"kind": "phone", "value": value, "case_ref": ref, "grounds": "number ported in May"}
    return t[who].after_match.file_appeal(body, t.clock.advance(1000))


def test_an_appeal_reaches_the_reporter_by_value_and_the_appellant_learns_no_reporter(
    trio: Trio,
) -> None:
    trio.report("a")
    trio.sync_all()
    filed = file(trio)
    trio.sync_all()
    # A, the reporter, opened the case with its own copy of the value
    inbound = trio["a"].after_match.appeals(trio.clock())["inbound"]
    assert [(x["id"], x["case_ref"], x["grounds"], x["status"]) for x in inbound] == [
        (filed["id"], "CASE-1", "number ported in May", "open")
    ]
    assert inbound[0]["appellant"] == "b"
    # C, who does not hold the value, holds the sealed case but cannot open it
    assert trio["c"].after_match.appeals(trio.clock())["inbound"] == []
    assert any(k == "a" for k, _ in trio["c"].store.appeal_items())
    # every node shows the report under appeal
    for n in "abc":
        v = trio.query(n)
        assert v["under_appeal"] is True and v["appeal_overdue"] is False, n
        assert "reported_by" not in v
    # B's answers name no reporter
    a_id, a_name = member_id_text(trio["a"].key.id), "a"
    out = trio["b"].after_match.appeals(trio.clock())
    assert out["inbound"] == []
    [mine] = out["outbound"]
    assert mine["status"] == "open" and mine["pending"] == 1
    text = json.dumps([out, filed, trio.query("b")])
    assert (
        a_id not in text
        and a_id[:8] not in text
        and '"a"' not in text.replace('"kind": "phone"', "")
    ), text
    assert a_name not in {mine.get("appellant"), *mine.keys()}
    # nothing B sealed or stored for the appeal carries A's id
    a_raw_id = trio["a"].key.id
    for kind, raw in trio["b"].store.appeal_items():
        assert a_raw_id not in raw, kind
    # a second appeal on the same value while this one is open
    e = refused(file, trio)
    assert (e.reason, status_of(e)) == ("already_appealed", 409)


def test_upheld_retracts_everywhere_and_rejected_sends_the_note(trio: Trio) -> None:
    trio.report("a")
    trio.report("a", OTHER)
    trio.sync_all()
    first = file(trio)
    trio.sync_all()
    done = trio["a"].after_match.decide(
        first["id"], {"decision": "upheld", "note": "sorry"}, trio.clock.advance(1000)
    )
    assert done["retracted"] == 1
    trio.sync_all()
    for n in "abc":
        assert trio.query(n)["match"] is False, n
    second = file(trio, value=OTHER, ref="CASE-2")
    trio.sync_all()
    trio["a"].after_match.decide(
        second["id"], {"decision": "rejected", "note": "two chargebacks since"}, trio.clock()
    )
    trio.sync_all()
    for n in "abc":
        v = trio.query(n, OTHER)
        assert v["match"] is True and v["under_appeal"] is False, n
    outbound = {o["id"]: o for o in trio["b"].after_match.appeals(trio.clock())["outbound"]}
    assert outbound[second["id"]]["status"] == "decided"
    assert outbound[second["id"]]["rejected"] == 1
    assert [(x["decision"], x["note"]) for x in outbound[second["id"]]["notes"]] == [
        ("rejected", "two chargebacks since")
    ]
    assert [x["decision"] for x in outbound[first["id"]]["notes"]] == ["upheld"]
    # A's inbound list shows both decided; deciding again is refused
    inbound = {x["id"]: x["status"] for x in trio["a"].after_match.appeals(trio.clock())["inbound"]}
    assert inbound == {first["id"]: "upheld", second["id"]: "rejected"}
    e = refused(trio["a"].after_match.decide, second["id"], {"decision": "upheld"}, 0)
    assert (e.reason, status_of(e)) == ("already_decided", 409)
    # C never opened anything, and nobody but A can decide
    e = refused(trio["c"].after_match.decide, second["id"], {"decision": "upheld"}, 0)
    assert (e.reason, status_of(e)) == ("unknown_appeal", 404)
    for bad in (
        {"decision": "maybe"},
        {"decision": "upheld", "why": 1},
        {"decision": "rejected", "note": 5},
    ):
        assert status_of(refused(trio["a"].after_match.decide, first["id"], bad, 0)) == 400


def test_an_appeal_of_nothing_and_malformed_appeals_are_refused(trio: Trio) -> None:
    b = trio["b"].after_match
    now = trio.clock()
    base = {"kind": "phone", "value": PHONE, "case_ref": "X", "grounds": "g"}
    assert refused(b.file_appeal, base, now).reason == "not_listed"
    for change, code in [
        ({"case_ref": ""}, "bad_case_ref"),
        ({"case_ref": "x" * 65}, "bad_case_ref"),
        ({"grounds": ""}, "bad_grounds"),
        ({"grounds": 7}, "bad_grounds"),
        ({"extra": 1}, "unknown_field"),
        ({"kind": "fax"}, "unknown_kind"),
    ]:
        assert refused(b.file_appeal, {**base, **change}, now).reason == code
    assert refused(b.file_appeal, {"kind": "phone", "value": PHONE}, now).reason == "missing_field"


def test_an_unanswered_appeal_becomes_overdue_and_may_suspend_the_report(tmp_path: Path) -> None:
    t = Trio(tmp_path, policy={"appeal_days": 10, "suspend_overdue": True})
    try:
        t.report("a")
        t.report("c")
        t.sync_all()
        file(t)
        t.sync_all()
        # c answers in time, a does not
        [case] = t["c"].after_match.appeals(t.clock())["inbound"]
        t["c"].after_match.decide(case["id"], {"decision": "rejected"}, t.clock.advance(1000))
        t.sync_all()
        v = t.query("b")
        assert v["under_appeal"] and not v["appeal_overdue"] and v["reporters"] == 2
        t.clock.advance(10 * DAY_MS)
        t.sync_all()
        v = t.query("b")
        # a's report is suspended: c's rejected the appeal and still counts
        assert v["match"] and v["reporters"] == 1 and v["under_appeal"] is False
        [inbound] = t["a"].after_match.appeals(t.clock())["inbound"]
        assert inbound["overdue"] is True and inbound["status"] == "open"
        t["a"].after_match.decide(inbound["id"], {"decision": "rejected"}, t.clock.advance(1000))
        t.sync_all()
        assert t.query("b")["reporters"] == 2
    finally:
        t.close()


def test_an_appeal_withdrawn_by_its_appellant_stops_counting(trio: Trio) -> None:
    trio.report("a")
    trio.sync_all()
    file(trio)
    trio.sync_all()
    assert trio.query("c")["under_appeal"] is True
    trio["b"].retract(
        [{"kind": "phone", "value": PHONE, "reason": "resolved", "of": "appeal"}],
        trio.clock.advance(1000),
    )
    trio.sync_all()
    assert trio.query("c")["under_appeal"] is False
    [inbound] = trio["a"].after_match.appeals(trio.clock())["inbound"]
    assert inbound["status"] == "withdrawn"


def test_a_case_filed_before_the_report_is_opened_once_the_member_reports(trio: Trio) -> None:
    trio.report("c")
    trio.sync_all()
    filed = file(trio)
    trio.sync_all()
    assert trio["a"].after_match.appeals(trio.clock())["inbound"] == []
    trio.report("a")
    trio.sync_all()
    [inbound] = trio["a"].after_match.appeals(trio.clock())["inbound"]
    assert inbound["id"] == filed["id"]


def test_every_action_writes_an_audit_row_with_tokens_and_refs_only(trio: Trio) -> None:
    trio.report("a")
    trio.sync_all()
    item = {"kind": "phone", "value": PHONE}
    with acting("platform-b"):
        trio["b"].after_match.sightings([item], trio.clock.advance(1000))
        trio["b"].after_match.disputes([{**item, "reason": "other"}], trio.clock.advance(1000))
        filed = file(trio)
    trio.sync_all()
    with acting("analyst-a"):
        trio["a"].after_match.decide(filed["id"], {"decision": "rejected"}, trio.clock())
    rows_b = trio["b"].store.audit_rows()
    rows_a = trio["a"].store.audit_rows()
    b_actions = [(r[2], r[3]) for r in rows_b if r[3] in ("seen", "dispute", "appeal")]
    assert b_actions == [
        ("platform-b", "seen"),
        ("platform-b", "dispute"),
        ("platform-b", "appeal"),
    ]
    [dec] = [r for r in rows_a if r[3] == "appeal_decision"]
    assert dec[2] == "analyst-a"
    appeal_row = json.loads(next(r[4] for r in rows_b if r[3] == "appeal"))
    assert appeal_row["appeal"] == filed["id"] and appeal_row["ref"] == "CASE-1"
    everything = json.dumps([r[:5] for r in rows_a + rows_b])
    for raw in (PHONE, "13912345678", "+8613912345678", "ported"):
        assert raw not in everything


# -- the routes, against the OpenAPI document ------------------------------------------------


async def test_the_routes_answer_as_documented(tmp_path: Path, aiohttp_client: Any) -> None:
    from test_openapi import Exerciser, check_seen

    from node.api import create_api_app
    from node.openapi import openapi_document

    t = Trio(tmp_path, policy={"disclose_reporters": False})
    try:
        ex: dict[str, Any] = {}
        tok: dict[str, str] = {}
        for n in "abc":
            config = load_config(tmp_path / n, env={})
            app = create_api_app(t[n], config, t.metrics[n], clock=t.clock)
            ex[n] = Exerciser(await aiohttp_client(app))
            tok[n] = (tmp_path / n / "api-token").read_text().strip()
        rep, sig, dis, app_, dec, ret, q = (
            "/v1/reports",
            "/v1/sightings",
            "/v1/disputes",
            "/v1/appeals",
            "/v1/appeals/{id}/decision",
            "/v1/retractions",
            "/v1/query",
        )
        item = {"kind": "phone", "value": PHONE}
        report = {"items": [{**item, "category": "money_mule", "severity": 5}]}
        await ex["a"]("report", "POST", rep, rep, key=tok["a"], json_body=report, expect=201)
        listed = {
            "items": [{"kind": "bank_card", "value": "4111111111111111", "category": "other"}]
        }
        got = await ex["a"]("listed", "POST", rep, rep, key=tok["a"], json_body=listed, expect=422)
        assert got["error"]["code"] == "warning_listed"
        t.sync_all()
        body = {"items": [item]}
        await ex["b"]("seen", "POST", sig, sig, key=tok["b"], json_body=body, expect=201)
        body = {"items": [{**item, "reason": "wrong_category"}]}
        await ex["c"]("dispute", "POST", dis, dis, key=tok["c"], json_body=body, expect=201)
        appeal = {**item, "case_ref": "REF-9", "grounds": "this is my number since 2019"}
        filed = await ex["b"](
            "file", "POST", app_, app_, key=tok["b"], json_body=appeal, expect=201
        )
        again = await ex["b"](
            "file again", "POST", app_, app_, key=tok["b"], json_body=appeal, expect=409
        )
        assert again["error"]["code"] == "already_appealed"
        t.sync_all()
        v = (
            await ex["c"](
                "query", "POST", q, q, key=tok["c"], json_body={"items": [item]}, expect=200
            )
        )["results"][0]
        assert (v["sightings"], v["disputes"], v["under_appeal"]) == (1, 1, True)
        assert 0 <= v["confidence"] <= 100
        listing = await ex["a"]("list", "GET", app_, app_, key=tok["a"], expect=200)
        assert listing["inbound"][0]["grounds"] == "this is my number since 2019"
        url = dec.replace("{id}", filed["id"])
        decision = {"decision": "rejected", "note": "confirmed by two chargebacks"}
        got = await ex["a"](
            "decide", "POST", url, dec, key=tok["a"], json_body=decision, expect=201
        )
        assert got["retracted"] == 0
        await ex["a"](
            "decide again", "POST", url, dec, key=tok["a"], json_body=decision, expect=409
        )
        t.sync_all()
        mine = await ex["b"]("list b", "GET", app_, app_, key=tok["b"], expect=200)
        assert mine["outbound"][0]["notes"][0]["note"] == "confirmed by two chargebacks"
        body = {"items": [{**item, "reason": "other", "of": "seen"}]}
        await ex["b"]("unsee", "POST", ret, ret, key=tok["b"], json_body=body, expect=201)
        problems = check_seen(openapi_document(), [s for e in ex.values() for s in e.seen])
        assert not problems, "\n".join(problems)
    finally:
        t.close()


async def test_a_local_warning_list_from_the_setting(
    node_home: Path, aiohttp_client: Any, api_token: str
) -> None:
    from contracts.errors import ConfigError
    from node.aftermatch import read_local_list
    from node.server import create_app

    (node_home / "never.json").write_text(json.dumps({"merchant": ["pay:our-test-shop"]}))
    config = load_config(node_home, env={"RISKMESH_NODE_WARNING_LIST": "never.json"})
    client = await aiohttp_client(create_app(config, jobs=False))
    item = {"kind": "merchant", "value": "pay:our-test-shop", "category": "merchant_fraud"}
    resp = await client.post(
        "/v1/reports", json={"items": [item]}, headers={"Authorization": f"Bearer {api_token}"}
    )
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (422, "warning_listed")
    assert "this node" in body["error"]["items"][0]["message"]
    assert read_local_list(load_config(node_home, env={})) is None
    for bad in ("[1]", '{"ip": ["10.0.0.1/8"]}', "not json"):
        (node_home / "bad.json").write_text(bad)
        with pytest.raises(ConfigError, match=r"node\.warning_list"):
            read_local_list(load_config(node_home, env={"RISKMESH_NODE_WARNING_LIST": "bad.json"}))


def test_verdict_of_with_the_time_answers_as_the_query_does(trio: Trio) -> None:
    trio.report("a")
    trio.sync_all()
    trio["b"].after_match.sightings([{"kind": "phone", "value": PHONE}], trio.clock.advance(1000))
    file(trio, "c")
    trio.sync_all()
    a, now = trio["a"], trio.clock()
    toks = [
        a.epoch_keys.tokenizer(ep).token("phone", "+8613912345678") for ep in a.live_epochs(now)
    ]
    live = a.counted_reports(toks, now)
    assert a.verdict_of("phone", live, now=now, toks=toks) == trio.query("a")
    plain = a.verdict_of("phone", live)  # without the time: the report fields alone
    assert "confidence" not in plain and plain["reporters"] == 1


def test_a_case_without_its_appellants_appeal_op_is_never_answered(trio: Trio) -> None:
    """The quota on appeal ops must bound what reporters handle: a sealed case whose
    appellant published no appeal op (over quota, or never) is not opened."""
    from protocol.appeals import CASE, case_key, make_case

    trio.report("a")
    trio.sync_all()
    b = trio["b"]
    ep = max(b.epoch_keys)
    tok = b.epoch_keys.tokenizer(ep).token("phone", "+8613912345678")  # PHONE
    raw = make_case(
        b.key,
        appeal_id="f" * 16,
        tok=tok,
        kind="phone",
        ep=ep,
        ts=trio.clock(),
        key=case_key(b.epoch_keys[ep], "phone", "+8613912345678"),
        case_ref="NO-OP",
        grounds="never published",
    )
    trio["a"].after_match.on_item(CASE, raw, trio.clock())
    assert trio["a"].after_match.appeals(trio.clock())["inbound"] == []
    # a real appeal (its op in B's feed) is opened
    filed = file(trio)
    trio.sync_all()
    inbound = trio["a"].after_match.appeals(trio.clock())["inbound"]
    assert [x["id"] for x in inbound] == [filed["id"]]
