"""The validation order of DESIGN §6: each test breaks exactly one rule."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_world import T0, World, make_world, next_charter

from contracts.charter import EpochInfo
from contracts.errors import EntryRejected
from contracts.policy import DAY_MS, DataPolicy
from protocol import codec
from protocol.cose import sign1
from protocol.entries import REJECT_REASONS, AddOp, RetractOp, decode_entry
from protocol.feeds import MAX_HELD_PER_LOG
from protocol.forks import decode_fork_proof

NOW = T0 + 1000


def snapshot(w: World) -> tuple[object, ...]:
    s = w.store
    return (
        s.heads(),
        sorted((i.tok, i.ep, i.author, i.retracted) for i in s.all_indicators()),
        {log: [e.hash for e in s.held(log)] for log in s.held_logs()},
        s.fork_proofs(),
    )


def refused(w: World, raw: bytes, reason: str, now: int = NOW) -> None:
    before = snapshot(w)
    offer = w.feeds.offer(raw, now)
    assert offer.status == "rejected", offer
    assert offer.reason == reason, offer
    assert offer.reason in REJECT_REASONS
    assert offer.message
    assert snapshot(w) == before, "a refused entry changed the store"
    assert w.feeds.stats.rejected[reason] >= 1


def accept(w: World, raw: bytes, now: int = NOW) -> None:
    offer = w.feeds.offer(raw, now)
    assert offer.status == "accepted", offer


def test_valid_chain_is_accepted_and_indexed(world: World) -> None:
    entries = world.chain_of("A", 3)
    for e in entries:
        accept(world, e.raw)
    head = world.store.head(world.keys["A"].id)
    assert head is not None and head.seq == 3 and head.hash == entries[-1].hash
    states = world.store.indicators(world.tok("+8613800100002"))
    assert [(s.author, s.cat, s.retracted) for s in states] == [
        (world.keys["A"].id, "telecom_fraud", False)
    ]


def test_duplicate_is_not_applied_twice(world: World) -> None:
    e = world.chain_of("A", 1)[0]
    accept(world, e.raw)
    assert world.feeds.offer(e.raw, NOW).status == "duplicate"
    assert world.store.head(e.log).seq == 1  # type: ignore[union-attr]


# 1. size limit — checked before anything is decoded
def test_too_large(world: World) -> None:
    limit = world.chain.current.policy.max_entry_bytes
    refused(world, b"\xff" * (limit + 1), "too_large")


# 2. strict decode
@pytest.mark.parametrize("mangle", ["truncate", "trailing", "not_cbor", "non_canonical"])
def test_decode(world: World, mangle: str) -> None:
    raw = world.chain_of("A", 1)[0].raw
    bad = {
        "truncate": raw[:-3],
        "trailing": raw + b"\x00",
        "not_cbor": b"hello",
        "non_canonical": b"\xd8\x12" + raw[1:],  # tag 18 in a 2-byte head
    }[mangle]
    refused(world, bad, "decode")


@pytest.mark.parametrize("field", ["v", "log", "seq", "prev", "ts", "cv", "ops"])
def test_decode_missing_field(world: World, field: str) -> None:
    a = world.keys["A"]
    payload = {
        "v": 1,
        "log": a.id,
        "seq": 1,
        "prev": None,
        "ts": T0,
        "cv": 1,
        "ops": [world.add().to_map()],
    }
    del payload[field]
    refused(world, sign1(codec.dumps(payload), a), "decode")


def test_decode_log_not_signer(world: World) -> None:
    payload = {
        "v": 1,
        "log": world.keys["B"].id,
        "seq": 1,
        "prev": None,
        "ts": T0,
        "cv": 1,
        "ops": [world.add().to_map()],
    }
    refused(world, sign1(codec.dumps(payload), world.keys["A"]), "decode")


@pytest.mark.parametrize(
    "op_change",
    [
        {"tok": b"short"},
        {"op": "delete"},
        {"sev": "high"},
        {"ep": 0},
        {"ref": "x" * 65},
        {"extra": 1},
    ],
)
def test_decode_bad_op_shape(world: World, op_change: dict[str, object]) -> None:
    op = world.add().to_map()
    op.update(op_change)
    payload = {
        "v": 1,
        "log": world.keys["A"].id,
        "seq": 1,
        "prev": None,
        "ts": T0,
        "cv": 1,
        "ops": [op],
    }
    refused(world, sign1(codec.dumps(payload), world.keys["A"]), "decode")


# 3. author an active publisher under the cited charter version
def test_not_member_outsider(world: World) -> None:
    refused(world, world.chain_of("X", 1)[0].raw, "not_member")


def test_not_member_reader_only_or_suspended(world: World) -> None:
    members = tuple(
        world.member(n, roles=("reader",))
        if n == "D"
        else world.member(n, status="suspended")
        if n == "C"
        else world.member(n)
        for n in "ABCD"
    )
    _, raw = next_charter(world, "AB", members=members)
    world.chain.append(raw)
    for who in "CD":
        e = world.entry(who, 1, None, [world.add()], cv=2, ts=T0)
        refused(world, e.raw, "not_member")


def test_revoked_past_until_seq_whatever_cv(world: World) -> None:
    d = world.chain_of("D", 3)
    accept(world, d[0].raw)
    accept(world, d[1].raw)
    members = tuple(
        world.member(n, status="revoked", until_seq=2) if n == "D" else world.member(n)
        for n in "ABCD"
    )
    _, raw = next_charter(world, "AB", members=members, ts=T0 + 500)
    world.chain.append(raw)
    refused(world, d[2].raw, "revoked")  # cites cv 1, where D was still active


# 4. signature
def test_bad_signature(world: World) -> None:
    raw = bytearray(world.chain_of("A", 1)[0].raw)
    raw[-1] ^= 0x01  # the last byte of the Ed25519 signature
    refused(world, bytes(raw), "bad_signature")


def test_signature_by_other_member_key(world: World) -> None:
    good = world.chain_of("A", 1)[0]
    forged = sign1(good.signed.payload, world.keys["B"])  # B signs A's payload
    refused(world, forged, "decode")  # log != kid


# 5. seq and prev
def test_bad_prev(world: World) -> None:
    e1 = world.chain_of("A", 1)[0]
    accept(world, e1.raw)
    e2 = world.entry("A", 2, b"\x11" * 32, [world.add("+8613800138001")])
    refused(world, e2.raw, "bad_prev")


def test_first_entry_must_be_seq_one_or_it_waits(world: World) -> None:
    e = world.chain_of("A", 2)
    offer = world.feeds.offer(e[1].raw, NOW)
    assert offer.status == "held" and offer.held_for == "gap"
    assert world.store.head(world.keys["A"].id) is None


def test_gap_is_held_then_filled(world: World) -> None:
    es = world.chain_of("A", 6)
    accept(world, es[0].raw)
    for e in reversed(es[2:]):
        assert world.feeds.offer(e.raw, NOW).status == "held"
    assert world.store.head(world.keys["A"].id).seq == 1  # type: ignore[union-attr]
    offer = world.feeds.offer(es[1].raw, NOW)
    assert offer.status == "accepted"
    assert [e.seq for e in offer.accepted] == [2, 3, 4, 5, 6]
    assert world.store.head(world.keys["A"].id).hash == es[-1].hash  # type: ignore[union-attr]
    assert world.store.held_count(world.keys["A"].id) == 0


def test_held_gap_entry_with_bad_signature_is_refused_not_held(world: World) -> None:
    es = world.chain_of("A", 3)
    raw = bytearray(es[2].raw)
    raw[-1] ^= 1
    refused(world, bytes(raw), "bad_signature")


def test_held_limit(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("protocol.feeds.MAX_HELD_PER_LOG", 3)
    es = world.chain_of("A", 6)
    for e in es[1:4]:
        assert world.feeds.offer(e.raw, NOW).status == "held"
    refused(world, es[4].raw, "held_full")
    assert MAX_HELD_PER_LOG >= 1024


# 6. ts
def test_ts_before_head(world: World) -> None:
    e1 = world.entry("A", 1, None, [world.add()], ts=T0 + 10)
    accept(world, e1.raw)
    e2 = world.entry("A", 2, e1.hash, [world.add("+8613800138001")], ts=T0 + 9)
    refused(world, e2.raw, "ts_before_head")


def test_ts_future(world: World) -> None:
    skew = world.chain.current.policy.clock_skew_ms
    e = world.entry("A", 1, None, [world.add(ts=NOW + skew + 1)], ts=NOW + skew + 1)
    refused(world, e.raw, "ts_future")
    ok = world.entry("A", 1, None, [world.add(ts=NOW + skew)], ts=NOW + skew)
    accept(world, ok.raw)


# 7. cv
def test_cv_decreased(world: World) -> None:
    _, raw = next_charter(world, "AB", ts=T0)
    world.chain.append(raw)
    e1 = world.entry("A", 1, None, [world.add()], cv=2)
    accept(world, e1.raw)
    e2 = world.entry("A", 2, e1.hash, [world.add("+8613800138001")], cv=1)
    refused(world, e2.raw, "cv_decreased")


def test_cv_stale(world: World) -> None:
    skew = world.chain.current.policy.clock_skew_ms
    _, raw = next_charter(world, "AB", ts=T0 - 2 * skew)
    world.chain.append(raw)
    refused(world, world.entry("A", 1, None, [world.add()], cv=1, ts=T0).raw, "cv_stale")
    accept(world, world.entry("A", 1, None, [world.add()], cv=2, ts=T0).raw)


def test_unknown_charter_version_waits_then_applies(world: World) -> None:
    _, raw = next_charter(world, "AB", ts=T0)
    e1 = world.entry("A", 1, None, [world.add()], cv=2)
    e2 = world.entry("A", 2, e1.hash, [world.add("+8613800138001")], cv=2)
    assert world.feeds.offer(e2.raw, NOW).held_for == "charter"
    assert world.feeds.offer(e1.raw, NOW).held_for == "charter"
    world.chain.append(raw)
    results = world.feeds.retry_held(NOW)
    assert [r.status for r in results] == ["accepted", "accepted"]
    assert world.store.head(e1.log).seq == 2  # type: ignore[union-attr]


# 8. ops within policy
def test_too_many_ops(world: World) -> None:
    n = world.chain.current.policy.max_ops + 1
    ops = [world.add(f"+86138{i:08d}") for i in range(n)]
    refused(world, world.entry("A", 1, None, ops).raw, "too_many_ops")


@pytest.mark.parametrize(
    "change",
    [
        {"cat": "jaywalking"},
        {"sev": 0},
        {"sev": 6},
        {"kind": "shoe_size"},
    ],
)
def test_policy_op_fields(world: World, change: dict[str, object]) -> None:
    op = world.add()._replace(**change)
    refused(world, world.entry("A", 1, None, [world.add("+8613800138009"), op]).raw, "policy")


def test_policy_ttl_over_maximum(world: World) -> None:
    max_days = world.chain.current.policy.max_ttl_days["telecom_fraud"]
    refused(world, world.entry("A", 1, None, [world.add(ttl_days=max_days + 1)]).raw, "policy")
    accept(world, world.entry("A", 1, None, [world.add(ttl_days=max_days)]).raw)


@pytest.mark.parametrize("bad", ["ttl_over_maximum", "expiry_at_ts", "expiry_bool", "sev_bool"])
def test_policy_is_checked_on_every_op_of_a_kind_category_severity_already_allowed(
    world: World, bad: str
) -> None:
    """Adds sharing kind, category and severity are checked once for those and each for
    its expiry: a later op of an allowed triple with a bad expiry, or a severity that only
    compares equal (True == 1), is refused all the same."""
    max_ms = world.chain.current.policy.max_ttl_days["telecom_fraud"] * DAY_MS
    first = world.add("+8613800138001")._replace(sev=1)
    op = world.add("+8613800138002")._replace(sev=1)
    op = {
        "ttl_over_maximum": op._replace(exp=T0 + max_ms + 1),
        "expiry_at_ts": op._replace(exp=T0),
        "expiry_bool": op._replace(exp=True),
        "sev_bool": op._replace(sev=True),
    }[bad]
    before = snapshot(world)
    offer = world.feeds.offer(world.entry("A", 1, None, [first, op]).raw, NOW)
    assert offer.status == "rejected" and offer.reason in {"policy", "decode"}, offer
    assert snapshot(world) == before
    accept(world, world.entry("A", 1, None, [first, op._replace(exp=T0 + max_ms, sev=1)]).raw)


def test_policy_expiry_before_ts(world: World) -> None:
    op = world.add()._replace(exp=T0)
    refused(world, world.entry("A", 1, None, [op]).raw, "policy")


def test_policy_kind_or_category_not_allowed_by_this_charter(world: World) -> None:
    policy = DataPolicy(kinds=frozenset({"device"}), categories=frozenset({"device_risk"}))
    _, raw = next_charter(world, "AB", ts=T0, policy=policy)
    world.chain.append(raw)
    refused(world, world.entry("A", 1, None, [world.add()], cv=2).raw, "policy")
    ok = world.add("fp:abc", kind="device", cat="device_risk")
    accept(world, world.entry("A", 1, None, [ok], cv=2).raw)


def test_unknown_epoch(world: World) -> None:
    refused(world, world.entry("A", 1, None, [world.add(ep=2)]).raw, "unknown_epoch")
    _, raw = next_charter(
        world, "AB", ts=T0, epochs=(EpochInfo(ep=1, since=0), EpochInfo(ep=2, since=T0))
    )
    world.chain.append(raw)
    accept(world, world.entry("A", 1, None, [world.add(ep=2)], cv=2).raw)


def test_retract_needs_own_earlier_add(world: World) -> None:
    b1 = world.entry("B", 1, None, [world.add()])
    accept(world, b1.raw)
    # A retracting B's token: refused
    refused(world, world.entry("A", 1, None, [world.retract()]).raw, "retract_unknown")
    # B retracting its own: accepted, and the state says retracted
    accept(world, world.entry("B", 2, b1.hash, [world.retract()]).raw)
    [state] = world.store.indicators(world.tok("+8613800138000"))
    assert state.retracted and not state.live(NOW)


def test_retract_of_token_added_earlier_in_same_entry(world: World) -> None:
    accept(world, world.entry("A", 1, None, [world.add(), world.retract()]).raw)


def test_retract_bad_reason(world: World) -> None:
    e1 = world.entry("A", 1, None, [world.add()])
    accept(world, e1.raw)
    bad = RetractOp(world.tok("+8613800138000"), "phone", 1, "because")
    refused(world, world.entry("A", 2, e1.hash, [bad]).raw, "policy")


def test_entry_accepted_whole_or_not_at_all(world: World) -> None:
    good = [world.add(f"+86138001380{i:02d}") for i in range(10)]
    bad = good[3]._replace(cat="nope")
    refused(world, world.entry("A", 1, None, [*good[:3], bad, *good[4:]]).raw, "policy")
    assert all(not world.store.indicators(op.tok) for op in good)


# forks
def test_fork_detected_proved_and_frozen(world: World) -> None:
    e1 = world.entry("A", 1, None, [world.add()])
    e1b = world.entry("A", 1, None, [world.add("+8613800138077")])
    accept(world, e1.raw)
    offer = world.feeds.offer(e1b.raw, NOW)
    assert offer.status == "fork" and offer.fork is not None
    assert world.store.is_frozen(e1.log)
    # later entries of a frozen feed are refused
    refused(world, world.entry("A", 2, e1.hash, [world.add("+8613800138002")]).raw, "frozen")
    # the proof convinces a node that never saw either entry, and freezes the feed there
    other = world.fresh_feeds()
    proof = decode_fork_proof(offer.fork.encode())
    assert proof.log == e1.log and proof.seq == 1
    assert other.accept_fork_proof(proof)
    assert other.offer(e1.raw, NOW).reason == "frozen"


def test_fork_among_held_entries(world: World) -> None:
    es = world.chain_of("A", 2)
    alt = world.entry("A", 2, es[0].hash, [world.add("+8613800138099")])
    assert world.feeds.offer(es[1].raw, NOW).status == "held"
    assert world.feeds.offer(alt.raw, NOW).status == "fork"


@pytest.mark.parametrize("bad", ["same", "other_seq", "other_log", "forged", "order", "shape"])
def test_fork_proof_must_prove_a_fork(world: World, bad: str) -> None:
    from contracts.errors import DecodeError

    a1 = world.entry("A", 1, None, [world.add()])
    a1b = world.entry("A", 1, None, [world.add("+8613800138077")])
    a2 = world.entry("A", 2, a1.hash, [world.add("+8613800138002")])
    b1 = world.entry("B", 1, None, [world.add("+8613800138077")])
    x, y = sorted([a1, a1b], key=lambda e: e.hash)
    forged = bytearray(y.raw)
    forged[-1] ^= 1
    pair = {
        "same": (x.raw, x.raw),
        "other_seq": tuple(sorted([a1, a2], key=lambda e: e.hash)),
        "other_log": tuple(sorted([a1, b1], key=lambda e: e.hash)),
        "forged": (x.raw, bytes(forged)),
        "order": (y.raw, x.raw),
        "shape": None,
    }[bad]
    if bad == "shape":
        data = codec.dumps({"v": 1, "a": x.raw})
    else:
        p = [e if isinstance(e, bytes) else e.raw for e in pair]  # type: ignore[union-attr]
        data = codec.dumps({"v": 1, "a": p[0], "b": p[1]})
    with pytest.raises(DecodeError):
        decode_fork_proof(data)


def test_publish_builds_the_next_entry(world: World) -> None:
    a = world.keys["A"]
    e1 = world.feeds.publish(a, [world.add()], NOW)
    e2 = world.feeds.publish(a, [world.retract()], NOW - 5)  # clock went back: ts kept monotone
    assert (e1.seq, e2.seq, e2.prev, e2.ts) == (1, 2, e1.hash, e1.ts)
    other = world.fresh_feeds()
    assert other.offer(e1.raw, NOW).status == "accepted"
    assert other.offer(e2.raw, NOW).status == "accepted"


def test_publish_refuses_policy_breach_and_changes_nothing(world: World) -> None:
    from contracts.errors import PolicyViolation

    with pytest.raises(PolicyViolation):
        world.feeds.publish(world.keys["A"], [world.add(ttl_days=100_000)], NOW)
    assert world.store.head(world.keys["A"].id) is None


def test_every_reason_is_tested() -> None:
    import pathlib

    here = pathlib.Path(__file__)
    text = "".join(p.read_text() for p in sorted(here.parent.glob("test_*.py")))
    for reason in REJECT_REASONS:
        assert f'"{reason}"' in text, reason


def test_decoded_entry_round_trip(world: World) -> None:
    e = world.entry(
        "A",
        1,
        None,
        [
            world.add(),
            AddOp(world.tok("x@y.cn", "email"), "email", 1, "phishing", 5, T0 + DAY_MS, "case-7"),
        ],
    )
    d = decode_entry(e.raw)
    assert d.ops == e.ops and d.hash == e.hash and d.ops[1].ref == "case-7"


def test_two_worlds_same_seed_same_tokens() -> None:
    a, b = make_world(7), make_world(7)
    assert a.tok("+8613800138000") == b.tok("+8613800138000")
    assert a.tok("+8613800138000", ep=1) != a.tok("+8613800138000", ep=2)


def test_an_entry_built_here_is_the_entry_its_bytes_decode_to() -> None:
    """Feeds.publish takes the Entry build_entry makes without decoding its bytes
    again: for every kind of op, that Entry is exactly what decoding gives."""
    from protocol.entries import (
        AppealDecidedOp,
        AppealOp,
        DisputeOp,
        SeenOp,
        build_entry,
    )
    from protocol.keys import MemberKey

    key = MemberKey.from_seed(bytes(range(32)))
    tok = bytes(range(16))
    ops = [
        AddOp(tok, "phone", 1, "telecom_fraud", 3, T0 + DAY_MS),
        AddOp(tok, "email", 2, "phishing", 5, T0 + DAY_MS, "case-7 ü"),
        RetractOp(tok, "phone", 1, "false_positive"),
        RetractOp(tok, "phone", 1, "other", "seen"),
        SeenOp(tok, "phone", 1, T0 + DAY_MS),
        DisputeOp(tok, "phone", 1, T0 + DAY_MS, "legitimate_customer"),
        AppealOp(tok, "phone", 1, "0123456789abcdef"),
        AppealDecidedOp("0123456789abcdef", "upheld"),
    ]
    for seq, prev in ((1, None), (7, bytes(32))):
        built = build_entry(key, seq=seq, prev=prev, ts=T0, cv=3, ops=ops)
        assert built == decode_entry(built.raw)
        built.verify_signature()


# each field valid more often than not, so that whole entries often pass
_KINDS = ["phone"] * 4 + ["device", "bogus_kind"]
_CATS = ["telecom_fraud"] * 4 + ["device_risk", "bogus_cat"]
_EXPS = ["after", "max"] * 6 + ["before", "at", "over", "bool"]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(_KINDS),
            st.sampled_from(_CATS),
            st.sampled_from([1, 3, 5] * 4 + [0, 6, True]),
            st.sampled_from(_EXPS),
            st.sampled_from([1] * 12 + [2]),
            st.integers(0, 20),
        ),
        min_size=1,
        max_size=6,
    ),
    listed=st.sets(st.integers(0, 20), max_size=2),
    retract=st.booleans(),
)
def test_the_whole_entry_pass_for_adds_agrees_with_the_op_by_op_check(
    world: World, ops: list[tuple[str, str, int, str, int, int]], listed: set[int], retract: bool
) -> None:
    """`Feeds._adds_pass` (an entry of adds, checked a triple at a time) says an entry
    passes exactly when the op-by-op check accepts it: it never lets through what that
    check refuses, and it takes every all-add entry that check takes. (It once let a
    severity True through after a severity 1 of the same kind and category: a set of
    triples holds one of the two, as True == 1.)"""
    feeds = world.feeds
    charter = world.chain.current
    max_ms = {c: charter.policy.max_ttl_days.get(c, 1) * DAY_MS for c in _CATS}
    listed_toks = frozenset(world.tok(f"+86138001{i:05d}") for i in listed)
    feeds.listed = lambda ep, ch: listed_toks
    built: list[AddOp | RetractOp] = []
    for kind, cat, sev, exp_case, ep, v in ops:
        exp = {
            "before": T0 - 1,
            "at": T0,
            "after": T0 + 1,
            "max": T0 + max_ms[cat],
            "over": T0 + max_ms[cat] + 1,
            "bool": True,
        }[exp_case]
        tok = world.tok(f"+86138001{v:05d}")
        built.append(AddOp(tok, kind, ep, cat, sev, exp))
    if retract:
        built.append(RetractOp(built[0].tok, "phone", 1, "false_positive"))
    entry = world.entry("A", 1, None, built)
    try:
        feeds._check_ops(entry, charter)
        refused_by_ops = None
    except EntryRejected as e:
        refused_by_ops = e.reason
    fast = feeds._adds_pass(entry, charter)
    if refused_by_ops is not None:
        assert not fast, refused_by_ops
    else:
        assert fast == (not retract)
