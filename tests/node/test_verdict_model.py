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

After the match (DESIGN §15): two other members, O1 and O2, publish signed
entries (offered to the node as a peer's would be) with sightings, disputes,
appeals, their retractions and withdrawals; the node's member decides the
appeals that reach it (the sealed case handed to it as gossip would). The
model adds, to a matching verdict: ``sightings`` and ``disputes`` (members
with a live one), ``under_appeal`` (an appeal neither withdrawn nor decided
by the reporter), ``appeal_overdue`` (one of those past ``appeal_days`` — 2
here — from the later of the appeal and the report's first time) and
``confidence`` (``contracts.confidence`` over severity, one reporter, the
counts, and the age since the latest report or live sighting). An upheld
decision retracts the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts.confidence import confidence
from contracts.errors import RequestRefused as RequestError
from contracts.indicators import canonical
from contracts.policy import DAY_MS, DataPolicy
from node.api import status_of
from node.core import Node as Node
from node.core import rfc3339
from node.store import SqliteStore
from protocol.appeals import case_key, make_case
from protocol.charter_chain import sign_charter
from protocol.entries import AppealOp, DisputeOp, Op, RetractOp, SeenOp, build_entry
from protocol.governance import genesis, member
from protocol.keys import MemberKey
from protocol.tokens import Tokenizer

T0 = 1_700_000_000_000
MEMBER_NAME = "model-bank"
KEY = MemberKey.from_seed(bytes([7]) * 32)
EPOCH_KEY = bytes(range(32))
#: the other members: they see, dispute and appeal, never report
OTHERS = {"O1": MemberKey.from_seed(bytes([8]) * 32), "O2": MemberKey.from_seed(bytes([9]) * 32)}
POLICY = DataPolicy(appeal_days=2)
TK = Tokenizer(1, EPOCH_KEY)
DISPUTE_WHY = ["false_positive", "legitimate_customer", "wrong_category", "other"]

# (kind, spellings): every spelling of one entry canonicalises to the same value.
POOL: list[tuple[str, list[str]]] = [
    ("phone", ["+86 138 0013 8000", "13800138000", "008613800138000"]),
    ("phone", ["139 1234 5678", "+86 139 1234 5678"]),
    ("phone", ["+1 (650) 253-0000", "+16502530000"]),
    ("email", [" Alice.Smith@Bank-Mail.CN ", "alice.smith@bank-mail.cn"]),
    ("email", ["bob@shop.example.cn", "BOB@Shop.Example.cn"]),
    ("email", ["mallory@mule.net"]),
    ("bank_card", ["4532 0151 1283 0366", "4532-0151-1283-0366"]),
    ("bank_card", ["5180 2466 9811 2042", "5180246698112042"]),
]
CANON = [canonical(kind, spellings[0]) for kind, spellings in POOL]
CATEGORIES = ["telecom_fraud", "money_mule", "phishing", "card_cashout"]
REASONS = ["false_positive", "appeal_upheld", "resolved", "duplicate", "other"]


def test_pool_spellings_agree() -> None:
    assert len(set(zip([k for k, _ in POOL], CANON, strict=True))) == len(POOL)
    for (kind, spellings), canon in zip(POOL, CANON, strict=True):
        assert {canonical(kind, s) for s in spellings} == {canon}


def make_core() -> Node:
    members = [member(KEY.id, MEMBER_NAME, "http://127.0.0.1:1/peer", admin=True)]
    members += [member(k.id, n, f"http://127.0.0.1:1/{n}") for n, k in OTHERS.items()]
    charter = genesis("model-consortium", members, T0, policy=POLICY)
    core = Node(SqliteStore(None, KEY), KEY)
    core.install_charter(sign_charter(charter, [KEY]), {1: EPOCH_KEY})
    core.rebuild_index(T0)
    core._synced = True  # no peer to exchange with here: the member reports at once
    return core


class Others:
    """The other members' feeds: entries signed and offered to the node."""

    def __init__(self, core: Node) -> None:
        self.core = core
        self.heads: dict[str, tuple[int, bytes | None]] = {n: (0, None) for n in OTHERS}

    def publish(self, who: str, ops: list[Op], now: int) -> None:
        seq, prev = self.heads[who]
        e = build_entry(OTHERS[who], seq=seq + 1, prev=prev, ts=now, cv=1, ops=ops)
        assert self.core.accept_entry(e.raw, now) == "accepted"
        self.heads[who] = (e.seq, e.hash)


# -- the model ----------------------------------------------------------------------


@dataclass
class Report:
    cat: str
    sev: int
    exp: int
    last_ts: int
    retracted: bool = False
    first_ts: int = 0

    def live(self, now: int) -> bool:
        return not self.retracted and now < self.exp


@dataclass
class Signal:
    exp: int
    ts: int
    retracted: bool = False

    def live(self, now: int) -> bool:
        return not self.retracted and now < self.exp


@dataclass
class Appeal:
    id: str
    who: str
    idx: int
    ts: int
    withdrawn: bool = False
    decision: str | None = None  # the member's


@dataclass
class Model:
    reports: dict[int, Report] = field(default_factory=dict)
    signals: dict[tuple[str, int, str], Signal] = field(default_factory=dict)
    appeals: list[Appeal] = field(default_factory=list)
    ever_reported: set[int] = field(default_factory=set)

    def report(self, idx: int, cat: str, sev: int, exp: int, now: int) -> None:
        old = self.reports.get(idx)
        first = old.first_ts if old is not None and old.live(now) else now
        self.reports[idx] = Report(cat=cat, sev=sev, exp=exp, last_ts=now, first_ts=first)
        self.ever_reported.add(idx)

    def after_match(self, idx: int, r: Report, now: int) -> dict[str, Any]:
        live = {
            (w, what): g for (w, i, what), g in self.signals.items() if i == idx and g.live(now)
        }
        seen = [g for (_, what), g in live.items() if what == "seen"]
        disputes = sum(1 for (_, what) in live if what == "dispute")
        latest = max([r.last_ts, *(g.ts for g in seen)])
        opened = [
            a for a in self.appeals if a.idx == idx and not a.withdrawn and a.decision is None
        ]
        span = POLICY.appeal_days * DAY_MS
        return {
            "sightings": len(seen),
            "disputes": disputes,
            "under_appeal": bool(opened),
            "appeal_overdue": any(now > max(a.ts, r.first_ts) + span for a in opened),
            "confidence": confidence(
                severity=r.sev,
                reporters=1,
                sightings=len(seen),
                disputes=disputes,
                age_ms=now - latest,
                half_life_ms=POLICY.decay_days[r.cat] * DAY_MS,
            ),
        }

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
            **self.after_match(idx, r, now),
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
who = st.sampled_from(sorted(OTHERS))
seen_op = st.tuples(st.just("seen"), who, pool_index, st.integers(1, 3))
dispute_op = st.tuples(st.just("dispute"), who, pool_index, st.sampled_from(DISPUTE_WHY))
unsignal_op = st.tuples(st.just("unsignal"), who, pool_index, st.sampled_from(["seen", "dispute"]))
appeal_op = st.tuples(st.just("appeal"), who, pool_index)
withdraw_op = st.tuples(st.just("withdraw"), who, pool_index)
decide_op = st.tuples(
    st.just("decide"), st.integers(0, 50), st.sampled_from(["upheld", "rejected"])
)
after_match_ops = st.one_of(seen_op, dispute_op, unsignal_op, appeal_op, withdraw_op, decide_op)
ops_strategy = st.lists(
    st.one_of(
        report_op(),
        report_op(),
        retract_op(),
        retract_reported_op,
        advance_op,
        rebuild_op,
        after_match_ops,
        after_match_ops,
    ),
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


def tok(idx: int) -> bytes:
    return TK.token(POOL[idx][0], CANON[idx])


def after_match_step(
    core: Node, others: Others, model: Model, op: tuple[Any, ...], now: int
) -> None:
    """One of O1's or O2's ops, or the member's decision on an appeal."""
    kind = op[0]
    if kind == "decide":
        todo = [a for a in model.appeals if a.decision is None and a.idx in model.ever_reported]
        if not todo:
            return
        a = todo[op[1] % len(todo)]
        view = core.after_match.decide(a.id, {"decision": op[2], "note": "model"}, now)
        r = model.reports.get(a.idx)
        live = r is not None and r.live(now)
        assert view["retracted"] == (1 if op[2] == "upheld" and live else 0)
        a.decision = op[2]
        if op[2] == "upheld" and r is not None and live:
            r.retracted = True
        return
    who, idx = op[1], op[2]
    k = POOL[idx][0]
    if kind == "seen":
        exp = now + op[3] * DAY_MS
        others.publish(who, [SeenOp(tok(idx), k, 1, exp)], now)
        model.signals[(who, idx, "seen")] = Signal(exp=exp, ts=now)
    elif kind == "dispute":
        exp = now + 2 * DAY_MS
        others.publish(who, [DisputeOp(tok(idx), k, 1, exp, op[3])], now)
        model.signals[(who, idx, "dispute")] = Signal(exp=exp, ts=now)
    elif kind == "unsignal":
        g = model.signals.get((who, idx, op[3]))
        if g is None:
            return
        others.publish(who, [RetractOp(tok(idx), k, 1, "other", op[3])], now)
        g.retracted = True
    elif kind == "appeal":
        aid = f"{len(model.appeals) + 1:016x}"
        others.publish(who, [AppealOp(tok(idx), k, 1, aid)], now)
        model.appeals.append(Appeal(aid, who, idx, now))
        case = make_case(
            OTHERS[who],
            appeal_id=aid,
            tok=tok(idx),
            kind=k,
            ep=1,
            ts=now,
            key=case_key(EPOCH_KEY, k, CANON[idx]),
            case_ref=f"case-{aid}",
            grounds="the model says so",
        )
        assert core.engine is not None
        core.engine.add_appeal_item("a", case)  # held and relayed, as gossip would
        core.after_match.on_item("a", case, now)  # and handed to the node
    else:
        assert kind == "withdraw"
        mine = [a for a in model.appeals if a.who == who and a.idx == idx]
        if not mine:
            return
        others.publish(who, [RetractOp(tok(idx), k, 1, "resolved", "appeal")], now)
        for a in mine:
            a.withdrawn = True


def run(ops: list[tuple[Any, ...]]) -> None:
    core = make_core()
    others = Others(core)
    model = Model()
    now = T0 + 1
    try:
        check_verdicts(core, model, now)
        for op in ops:
            if op[0] in ("seen", "dispute", "unsignal", "appeal", "withdraw", "decide"):
                now += 1
                after_match_step(core, others, model, op, now)
                check_verdicts(core, model, now)
                continue
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
                    model.report(i, c, sev, now + t * DAY_MS, now)
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
                (3, "alice.smith@bank-mail.cn", "money_mule", 3, 2),
                (6, "4532 0151 1283 0366", "card_cashout", 4, 3),
            ),
        ),
        ("retract", ((3, " Alice.Smith@Bank-Mail.CN ", "false_positive"),)),
        ("rebuild",),
        ("report", ((3, "alice.smith@bank-mail.cn", "phishing", 1, 1),)),
        (
            "retract",
            ((3, "alice.smith@bank-mail.cn", "resolved"), (5, "mallory@mule.net", "other")),
        ),
        ("retract", ((3, "alice.smith@bank-mail.cn", "resolved"),)),
        ("retract", ((3, "alice.smith@bank-mail.cn", "resolved"),)),
    ]
)
@example(  # sightings, disputes, an appeal past its deadline, decisions, withdrawals
    ops=[
        ("report", ((0, "13800138000", "telecom_fraud", 5, 3),)),
        ("seen", "O1", 0, 2),
        ("dispute", "O2", 0, "false_positive"),
        ("appeal", "O1", 0),
        ("advance", 2 * DAY_MS + 1),
        ("decide", 0, "rejected"),
        ("appeal", "O2", 0),
        ("withdraw", "O2", 0),
        ("unsignal", "O2", 0, "dispute"),
        ("appeal", "O1", 0),
        ("decide", 0, "upheld"),
        ("report", ((0, "13800138000", "telecom_fraud", 2, 1),)),
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
