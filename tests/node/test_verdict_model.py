"""Node's verdicts against a brute-force model of one member's reports.

Random sequences of reports, retractions, clock advances and index rebuilds
run against a Node over an in-memory SqliteStore and against a plain
dictionary model; after every step the verdict for every spelling of every
pool value must be what the model says.

Model (one member, one epoch): a value's state is the member's last report of
it — a re-report replaces category, severity and expiry — plus a retracted
flag. It is live while reported, not retracted since, and ``now < exp``. A
retraction of a value with no live report of this member is refused whole
(422, ``not_reported`` for each such item) — an expired report included.
``first_reported`` is only checked to be no later than ``last_reported``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts.errors import RequestRefused as RequestError
from contracts.indicators import canonical
from contracts.policy import DAY_MS
from node.api import status_of
from node.core import Node as Node
from node.core import rfc3339
from node.store import SqliteStore
from protocol.charter_chain import sign_charter
from protocol.governance import genesis, member
from protocol.keys import MemberKey

T0 = 1_700_000_000_000
MEMBER_NAME = "model-bank"
KEY = MemberKey.from_seed(bytes([7]) * 32)
EPOCH_KEY = bytes(range(32))

# (kind, spellings): every spelling of one entry canonicalises to the same value.
POOL: list[tuple[str, list[str]]] = [
    ("phone", ["+86 138 0013 8000", "13800138000", "008613800138000"]),
    ("phone", ["139 1234 5678", "+86 139 1234 5678"]),
    ("phone", ["+1 (650) 253-0000", "+16502530000"]),
    ("email", [" Alice.Smith@Example.COM ", "alice.smith@example.com"]),
    ("email", ["bob@example.org", "BOB@Example.org"]),
    ("email", ["mallory@example.net"]),
    ("bank_card", ["4111 1111 1111 1111", "4111-1111-1111-1111"]),
    ("bank_card", ["5500 0000 0000 0004", "5500000000000004"]),
]
CANON = [canonical(kind, spellings[0]) for kind, spellings in POOL]
CATEGORIES = ["telecom_fraud", "money_mule", "phishing", "card_cashout"]
REASONS = ["false_positive", "appeal_upheld", "resolved", "duplicate", "other"]


def test_pool_spellings_agree() -> None:
    assert len(set(zip([k for k, _ in POOL], CANON, strict=True))) == len(POOL)
    for (kind, spellings), canon in zip(POOL, CANON, strict=True):
        assert {canonical(kind, s) for s in spellings} == {canon}


def make_core() -> Node:
    charter = genesis(
        "model-consortium", [member(KEY.id, MEMBER_NAME, "http://127.0.0.1:1/peer", admin=True)], T0
    )
    core = Node(SqliteStore(None, KEY), KEY)
    core.install_charter(sign_charter(charter, [KEY]), {1: EPOCH_KEY})
    core.rebuild_index(T0)
    return core


# -- the model ----------------------------------------------------------------------


@dataclass
class Report:
    cat: str
    sev: int
    exp: int
    last_ts: int
    retracted: bool = False

    def live(self, now: int) -> bool:
        return not self.retracted and now < self.exp


class Model:
    def __init__(self) -> None:
        self.reports: dict[int, Report] = {}

    def live(self, idx: int, now: int) -> bool:
        r = self.reports.get(idx)
        return r is not None and r.live(now)

    def verdict(self, idx: int, now: int) -> dict[str, Any]:
        kind = POOL[idx][0]
        r = self.reports.get(idx)
        if r is None or not r.live(now):
            return {"match": False, "kind": kind}
        return {
            "match": True,
            "kind": kind,
            "reporters": 1,
            "categories": [r.cat],
            "max_severity": r.sev,
            "last_reported": rfc3339(r.last_ts),
            "expires": rfc3339(r.exp),
            "reported_by": [MEMBER_NAME],
        }


# -- the operations -------------------------------------------------------------------

pool_index = st.integers(0, len(POOL) - 1)


@st.composite
def spelled(draw: st.DrawFn, idx: int) -> str:
    return draw(st.sampled_from(POOL[idx][1]))


@st.composite
def report_op(draw: st.DrawFn) -> tuple[Any, ...]:
    idxs = draw(st.lists(pool_index, min_size=1, max_size=3, unique=True))
    items = []
    for idx in idxs:
        items.append(
            (
                idx,
                draw(spelled(idx)),
                draw(st.sampled_from(CATEGORIES)),
                draw(st.integers(1, 5)),
                draw(st.integers(1, 3)),
            )
        )
    return ("report", tuple(items))


@st.composite
def retract_op(draw: st.DrawFn) -> tuple[Any, ...]:
    idxs = draw(st.lists(pool_index, min_size=1, max_size=2, unique=True))
    return ("retract", tuple((i, draw(spelled(i)), draw(st.sampled_from(REASONS))) for i in idxs))


# A retraction aimed at a value this member has reported (resolved when it runs), so
# that retracting live, expired and already retracted reports all come up often.
retract_reported_op = st.tuples(
    st.just("retract_reported"),
    st.integers(0, len(POOL) - 1),
    st.integers(0, 2),
    st.sampled_from(REASONS),
)
advance_op = st.tuples(
    st.just("advance"),
    st.one_of(st.integers(0, 3).map(lambda d: d * DAY_MS), st.integers(1, DAY_MS)),
)
rebuild_op = st.just(("rebuild",))
ops_strategy = st.lists(
    st.one_of(report_op(), report_op(), retract_op(), retract_reported_op, advance_op, rebuild_op),
    min_size=4,
    max_size=30,
)


def check_verdicts(core: Node, model: Model, now: int) -> None:
    items = [(idx, {"kind": kind, "value": s}) for idx, (kind, ss) in enumerate(POOL) for s in ss]
    got = core.query([it for _, it in items], now)
    assert len(got) == len(items)
    for (idx, item), verdict in zip(items, got, strict=True):
        expected = model.verdict(idx, now)
        actual = dict(verdict)
        first = actual.pop("first_reported", None)
        assert actual == expected, (item, now)
        if expected["match"]:
            assert first is not None and first <= actual["last_reported"]
        else:
            assert first is None

    canon = [{"kind": kind, "value": c} for (kind, _), c in zip(POOL, CANON, strict=True)]
    got = core.query(canon, now, canonical_input=True)
    for idx, verdict in enumerate(got):
        actual = dict(verdict)
        actual.pop("first_reported", None)
        assert actual == model.verdict(idx, now), (canon[idx], now)


def run(ops: list[tuple[Any, ...]]) -> None:
    core = make_core()
    model = Model()
    now = T0 + 1
    try:
        check_verdicts(core, model, now)
        for op in ops:
            if op[0] == "retract_reported":
                if not model.reports:
                    continue
                i = sorted(model.reports)[op[1] % len(model.reports)]
                spellings = POOL[i][1]
                op = ("retract", ((i, spellings[op[2] % len(spellings)], op[3]),))
            if op[0] == "advance":
                now += op[1]
            elif op[0] == "rebuild":
                core.rebuild_index(now)
            elif op[0] == "report":
                items = [
                    {"kind": POOL[i][0], "value": v, "category": c, "severity": sev, "ttl_days": t}
                    for i, v, c, sev, t in op[1]
                ]
                result = core.report(items, now)
                assert result.accepted == len(items)
                for i, _, c, sev, t in op[1]:
                    model.reports[i] = Report(cat=c, sev=sev, exp=now + t * DAY_MS, last_ts=now)
            else:
                assert op[0] == "retract"
                items = [{"kind": POOL[i][0], "value": v, "reason": r} for i, v, r in op[1]]
                refused = [pos for pos, (i, _, _) in enumerate(op[1]) if not model.live(i, now)]
                if refused:
                    with pytest.raises(RequestError) as exc:
                        core.retract(items, now)
                    assert status_of(exc.value) == 422
                    assert exc.value.reason == "invalid_items"
                    assert exc.value.items is not None
                    assert [e["index"] for e in exc.value.items] == refused
                    assert {e["code"] for e in exc.value.items} == {"not_reported"}
                else:
                    result = core.retract(items, now)
                    assert result.accepted == len(items)
                    for i, _, _ in op[1]:
                        model.reports[i].retracted = True
            check_verdicts(core, model, now)
    finally:
        core.store.close()


@settings(max_examples=60, deadline=None)
@given(ops=ops_strategy)
@example(  # a re-report replaces category, severity and expiry; the old ones do not linger
    ops=[
        ("report", ((0, "13800138000", "telecom_fraud", 5, 4),)),
        ("advance", DAY_MS),
        ("report", ((0, "+86 138 0013 8000", "phishing", 2, 1),)),
        ("advance", DAY_MS - 1),
        ("advance", 1),  # exactly at the new expiry: no longer live
    ]
)
@example(  # retract, re-report, retract twice (second refused)
    ops=[
        (
            "report",
            (
                (3, "alice.smith@example.com", "money_mule", 3, 2),
                (6, "4111 1111 1111 1111", "card_cashout", 4, 3),
            ),
        ),
        ("retract", ((3, " Alice.Smith@Example.COM ", "false_positive"),)),
        ("rebuild",),
        ("report", ((3, "alice.smith@example.com", "phishing", 1, 1),)),
        (
            "retract",
            ((3, "alice.smith@example.com", "resolved"), (5, "mallory@example.net", "other")),
        ),
        ("retract", ((3, "alice.smith@example.com", "resolved"),)),
        ("retract", ((3, "alice.smith@example.com", "resolved"),)),
    ]
)
def test_verdicts_match_brute_force_model(ops: list[tuple[Any, ...]]) -> None:
    run(ops)


def test_retract_of_expired_report_is_refused() -> None:
    core = make_core()
    try:
        now = T0 + 1
        core.report(
            [{"kind": "phone", "value": "13800138000", "category": "telecom_fraud", "ttl_days": 1}],
            now,
        )
        now += DAY_MS
        assert core.query([{"kind": "phone", "value": "13800138000"}], now)[0]["match"] is False
        with pytest.raises(RequestError) as exc:
            core.retract([{"kind": "phone", "value": "13800138000", "reason": "resolved"}], now)
        assert status_of(exc.value) == 422
        assert exc.value.items is not None
        assert exc.value.items[0]["code"] == "not_reported"
    finally:
        core.store.close()


def test_re_report_after_expiry_starts_a_new_first_reported() -> None:
    core = make_core()
    try:
        item = {"kind": "phone", "value": "13800138000", "category": "telecom_fraud", "ttl_days": 1}
        core.report([item], T0 + 1)
        later = T0 + 1 + 3 * DAY_MS
        core.report([item], later)
        [v] = core.query([{"kind": "phone", "value": "13800138000"}], later)
        assert v["match"] and v["first_reported"] == v["last_reported"]
    finally:
        core.store.close()
