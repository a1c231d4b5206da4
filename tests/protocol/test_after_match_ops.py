"""Sightings, disputes, appeals and decisions in feeds; sealed appeal items by gossip;
warning-listed tokens refused (DESIGN §15)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from gossip_harness import Net, decode, with_extra
from protocol_world import T0, World, make_world

from contracts.errors import AppealItemRejected, PolicyViolation
from contracts.policy import DAY_MS
from protocol import codec
from protocol.appeals import (
    case_key,
    decode_case,
    decode_note,
    make_case,
    make_note,
    new_appeal_id,
    open_case,
    open_note,
)
from protocol.charter_chain import CharterChain
from protocol.entries import (
    AddOp,
    AppealDecidedOp,
    AppealOp,
    DisputeOp,
    Op,
    RetractOp,
    SeenOp,
    decode_entry,
)
from protocol.feeds import ACCEPTED, HELD, REJECTED, Feeds
from protocol.gossip import AppealItemArrived, Refused
from protocol.listed import WarningTokens
from protocol.store import MemoryStore
from protocol.tokens import EpochKeys

PHONE = "+8613800138000"
AID = "00112233445566aa"


def seen(w: World, value: str = PHONE, *, days: int = 30, ep: int = 1) -> SeenOp:
    return SeenOp(w.tok(value, "phone", ep), "phone", ep, T0 + days * DAY_MS)


def dispute(w: World, why: str = "false_positive", value: str = PHONE, ep: int = 1) -> DisputeOp:
    return DisputeOp(w.tok(value, "phone", ep), "phone", ep, T0 + 30 * DAY_MS, why)


def appeal(w: World, appeal_id: str = AID, value: str = PHONE, ep: int = 1) -> AppealOp:
    return AppealOp(w.tok(value, "phone", ep), "phone", ep, appeal_id)


class Feed:
    """One member's feed, offered entry by entry to ``world.feeds``."""

    def __init__(self, w: World, who: str) -> None:
        self.w, self.who, self.seq, self.prev = w, who, 0, None
        self.ts = T0

    def offer(self, ops: list[Op], *, ts: int | None = None) -> str:
        e = self.w.entry(self.who, self.seq + 1, self.prev, ops, ts=ts or self.ts)
        o = self.w.feeds.offer(e.raw, ts or self.ts)
        if o.status == ACCEPTED:
            self.seq, self.prev = e.seq, e.hash
            return ACCEPTED
        return o.status if o.reason is None else o.reason


# -- encoding ----------------------------------------------------------------------------


def test_new_ops_round_trip_and_old_encodings_are_unchanged() -> None:
    w = make_world()
    ops: list[Op] = [
        w.add(),
        w.retract(),
        seen(w),
        dispute(w, "wrong_category"),
        appeal(w),
        AppealDecidedOp(AID, "rejected"),
        RetractOp(w.tok(PHONE), "phone", 1, "other", "seen"),
    ]
    e = w.entry("A", 1, None, ops)
    assert decode_entry(e.raw).ops == tuple(ops)
    # a retract without `of` is encoded exactly as before the field existed
    assert w.retract().to_map() == {
        "op": "retract",
        "tok": w.tok(PHONE),
        "kind": "phone",
        "ep": 1,
        "why": "false_positive",
    }


@pytest.mark.parametrize(
    "op",
    [
        {"op": "seen", "tok": bytes(16), "kind": "phone", "ep": 1},  # no exp
        {"op": "seen", "tok": bytes(16), "kind": "phone", "ep": 1, "exp": 1, "why": "x"},
        {"op": "dispute", "tok": bytes(16), "kind": "phone", "ep": 1, "exp": 1, "why": 3},
        {"op": "appeal", "tok": bytes(16), "kind": "phone", "ep": 1, "id": "XYZ"},
        {"op": "appeal", "tok": bytes(16), "kind": "phone", "ep": 1, "id": AID.upper()},
        {"op": "appeal", "tok": bytes(15), "kind": "phone", "ep": 1, "id": AID},
        {"op": "appeal_decided", "id": AID, "decision": 1},
        {"op": "appeal_decided", "id": AID, "decision": "upheld", "tok": bytes(16)},
        {"op": "retract", "tok": bytes(16), "kind": "phone", "ep": 1, "why": "x", "of": "add"},
    ],
)
def test_strict_decoding_of_the_new_ops(op: dict[str, object]) -> None:
    from contracts.errors import EntryRejected
    from protocol.cose import sign1

    w = make_world()
    payload = {"v": 1, "log": w.keys["A"].id, "seq": 1, "prev": None, "ts": T0, "cv": 1}
    raw = sign1(codec.dumps({**payload, "ops": [op]}), w.keys["A"])
    with pytest.raises(EntryRejected) as e:
        decode_entry(raw)
    assert e.value.reason == "decode"


# -- the validation order ------------------------------------------------------------------


def test_sightings_disputes_appeals_and_decisions_are_accepted_and_kept() -> None:
    w = make_world()
    a, b, c, d = (Feed(w, n) for n in "ABCD")
    assert a.offer([w.add()]) == ACCEPTED
    assert b.offer([seen(w)]) == ACCEPTED
    assert c.offer([dispute(w, "legitimate_customer")]) == ACCEPTED
    assert d.offer([appeal(w)]) == ACCEPTED
    assert a.offer([AppealDecidedOp(AID, "rejected")]) == ACCEPTED
    tok = w.tok(PHONE)
    sig = {(s.author, s.what, s.why) for s in w.store.signals(tok)}
    assert sig == {
        (w.keys["B"].id, "seen", None),
        (w.keys["C"].id, "dispute", "legitimate_customer"),
    }
    [ap] = w.store.appeals(tok)
    assert (ap.id, ap.author, ap.withdrawn) == (AID, w.keys["D"].id, False)
    assert w.store.appeal(AID) == [ap]
    [dec] = w.store.decisions(AID)
    assert (dec.author, dec.decision) == (w.keys["A"].id, "rejected")
    # the report itself is untouched by all of this
    [rep] = w.store.indicators(tok)
    assert rep.author == w.keys["A"].id and not rep.retracted


def test_policy_refusals_of_the_new_ops() -> None:
    w = make_world()
    a = Feed(w, "A")
    longest = max(w.genesis.policy.max_ttl_days.values())
    assert a.offer([dispute(w, "because")]) == "policy"
    assert a.offer([seen(w, days=longest + 1)]) == "policy"
    assert a.offer([SeenOp(w.tok(PHONE), "phone", 1, T0)]) == "policy"  # exp not after ts
    assert a.offer([AppealDecidedOp(AID, "maybe")]) == "policy"
    assert a.offer([SeenOp(w.tok(PHONE), "fax", 1, T0 + DAY_MS)]) == "policy"
    assert a.offer([AppealOp(w.tok(PHONE), "phone", 9, AID)]) == "unknown_epoch"
    assert a.offer([seen(w, days=longest)]) == ACCEPTED


def test_retracting_a_sighting_dispute_or_appeal_only_by_its_author() -> None:
    w = make_world()
    a, b = Feed(w, "A"), Feed(w, "B")
    tok = w.tok(PHONE)
    assert a.offer([w.add()]) == ACCEPTED
    un_seen = RetractOp(tok, "phone", 1, "other", "seen")
    assert b.offer([un_seen]) == "retract_unknown"
    assert b.offer([seen(w), dispute(w)]) == ACCEPTED
    assert a.offer([un_seen]) == "retract_unknown"  # A never saw it
    assert b.offer([RetractOp(tok, "phone", 1, "other", "appeal")]) == "retract_unknown"
    assert b.offer([un_seen, RetractOp(tok, "phone", 1, "resolved", "dispute")]) == ACCEPTED
    assert all(s.retracted for s in w.store.signals(tok))
    # a report is still retracted only by a plain retract, and a sighting's retract
    # leaves B's (absent) report alone
    assert not w.store.indicators(tok)[0].retracted
    # seen and its retraction in one entry
    assert (
        b.offer(
            [
                seen(w, "+8613900000000"),
                RetractOp(w.tok("+8613900000000"), "phone", 1, "other", "seen"),
            ]
        )
        == ACCEPTED
    )
    # an appeal withdrawn by its appellant
    assert b.offer([appeal(w)]) == ACCEPTED
    assert b.offer([RetractOp(tok, "phone", 1, "resolved", "appeal")]) == ACCEPTED
    assert [x.withdrawn for x in w.store.appeals(tok)] == [True]


def test_an_appeal_id_used_by_two_members_is_held_for_both_whatever_came_first() -> None:
    held = []
    for first, second in ("BC", "CB"):
        w = make_world()
        x, y = Feed(w, first), Feed(w, second)
        assert x.offer([appeal(w)]) == ACCEPTED
        assert y.offer([appeal(w)]) == ACCEPTED
        held.append(sorted((a.id, a.author) for a in w.store.appeals(w.tok(PHONE))))
        assert w.store.recent_signals(w.keys["C"].id, "appeal", T0 - 1) == 1
    assert held[0] == held[1] and len(held[0]) == 2


def test_dispute_and_appeal_quotas_per_24_hours() -> None:
    w = make_world()
    policy = replace(w.genesis.policy, max_disputes_per_day=3, max_appeals_per_day=2)
    store = MemoryStore()
    from protocol_world import next_charter

    _, raw2 = next_charter(w, "ABC", policy=policy, ts=T0 - DAY_MS // 2)
    chain = CharterChain(w.genesis_raw)
    chain.append(raw2)
    w.feeds = Feeds(store, chain)
    w.store = store
    b = Feed(w, "B")

    def e(ops: list[Op], ts: int) -> str:
        ent = w.entry("B", b.seq + 1, b.prev, ops, ts=ts, cv=2)
        o = w.feeds.offer(ent.raw, ts)
        if o.status == ACCEPTED:
            b.seq, b.prev = ent.seq, ent.hash
        return o.status if o.reason is None else o.reason

    vals = [f"+86139000000{i:02d}" for i in range(10)]
    assert e([dispute(w, value=v) for v in vals[:2]], T0) == ACCEPTED
    assert e([dispute(w, value=v) for v in vals[2:4]], T0 + 1000) == "over_quota"
    assert e([dispute(w, value=vals[2])], T0 + 1000) == ACCEPTED  # 3 in 24 h: the limit
    assert e([dispute(w, value=vals[3])], T0 + DAY_MS - 1) == "over_quota"
    assert e([dispute(w, value=vals[3])], T0 + DAY_MS + 1000) == ACCEPTED  # the first two aged out
    assert (
        e([appeal(w, f"{i:016x}", value=v) for i, v in enumerate(vals[:3])], T0 + DAY_MS + 2000)
        == "over_quota"
    )
    assert (
        e([appeal(w, f"{i:016x}", value=v) for i, v in enumerate(vals[:2])], T0 + DAY_MS + 2000)
        == ACCEPTED
    )
    # sightings have no quota
    assert e([seen(w, v) for v in vals], T0 + DAY_MS + 3000) == ACCEPTED


# -- warning-listed values ------------------------------------------------------------------


def listed_world() -> tuple[World, EpochKeys]:
    w = make_world()
    keys = EpochKeys({1: w.epoch_keys[1]})  # this node holds epoch 1 only, for now
    w.feeds.listed = WarningTokens(keys)
    return w, keys


def test_an_entry_adding_a_warning_listed_value_is_refused() -> None:
    w, _ = listed_world()
    a = Feed(w, "A")
    listed = AddOp(
        w.tok("4111111111111111", "bank_card"), "bank_card", 1, "card_cashout", 3, T0 + DAY_MS
    )
    resolver = AddOp(w.tok("8.8.8.8", "ip"), "ip", 1, "phishing", 3, T0 + DAY_MS)
    assert a.offer([w.add(), listed]) == "warning_listed"
    assert a.offer([resolver]) == "warning_listed"
    assert w.feeds.stats.rejected["warning_listed"] == 2
    assert w.store.head(w.keys["A"].id) is None  # nothing of it was taken
    # a range or a domain is no token: 10.0.0.1 or an address at example.com pass here
    # (they are refused where the raw value is reported)
    private = AddOp(w.tok("10.0.0.1", "ip"), "ip", 1, "phishing", 3, T0 + DAY_MS)
    assert a.offer([w.add(), private]) == ACCEPTED
    # seen, dispute, appeal of a listed token are not adds: nothing to refuse
    b = Feed(w, "B")
    assert b.offer([SeenOp(listed.tok, "bank_card", 1, T0 + DAY_MS)]) == ACCEPTED
    # own publishing is refused the same way, as a policy violation
    with pytest.raises(PolicyViolation) as e:
        w.feeds.publish(w.keys["C"], [listed], T0)
    assert e.value.reason == "warning_listed"


def test_the_charters_additions_are_refused_too() -> None:
    from protocol_world import next_charter

    w, _ = listed_world()
    policy = replace(w.genesis.policy, warning_list={"phone": ("+8613800138000",)})
    _, raw2 = next_charter(w, "ABC", policy=policy, ts=T0 - DAY_MS // 2)
    w.chain.append(raw2)
    e1 = w.entry("A", 1, None, [w.add()], cv=1, ts=T0 - DAY_MS // 2)  # version 1: not listed
    assert w.feeds.offer(e1.raw, T0).status == ACCEPTED
    e2 = w.entry("A", 2, e1.hash, [w.add()], cv=2)
    assert w.feeds.offer(e2.raw, T0).reason == "warning_listed"


def test_an_entry_under_an_epoch_without_a_key_here_waits_for_the_key() -> None:
    w = make_world()
    keys = EpochKeys()  # a newcomer whose key grant has not arrived yet
    w.feeds.listed = WarningTokens(keys)
    e1 = w.entry("A", 1, None, [w.add()])
    bad = AddOp(w.tok("8.8.8.8", "ip"), "ip", 1, "phishing", 3, T0 + DAY_MS)
    e2 = w.entry("A", 2, e1.hash, [bad])
    o1 = w.feeds.offer(e1.raw, T0)
    assert (o1.status, o1.held_for) == (HELD, "key")
    assert w.feeds.offer(e2.raw, T0).status == HELD  # behind the gap
    assert w.store.head(w.keys["A"].id) is None
    assert w.feeds.retry_held(T0)[0].held_for == "key"  # still no key: still waiting
    keys.add(1, w.epoch_keys[1])
    results = w.feeds.retry_held(T0)
    assert [(r.status, r.reason) for r in results] == [
        (ACCEPTED, None),
        (REJECTED, "warning_listed"),
    ]
    assert w.store.head(w.keys["A"].id).seq == 1  # type: ignore[union-attr]


# -- sealed appeal items ----------------------------------------------------------------------


def test_a_case_opens_only_with_the_value_and_names_only_the_appellant() -> None:
    w = make_world()
    k = case_key(w.epoch_keys[1], "phone", PHONE)
    raw = make_case(
        w.keys["B"],
        appeal_id=AID,
        tok=w.tok(PHONE),
        kind="phone",
        ep=1,
        ts=T0,
        key=k,
        case_ref="B-2024-17",
        grounds="the number was ported to my client in May",
    )
    case = decode_case(raw)
    assert case.appellant == w.keys["B"].id and case.id == AID
    assert open_case(case, k) == ("B-2024-17", "the number was ported to my client in May")
    # another value's key (a member that does not hold the value) opens nothing
    with pytest.raises(AppealItemRejected):
        open_case(case, case_key(w.epoch_keys[1], "phone", "+8613900000000"))
    with pytest.raises(AppealItemRejected):
        open_case(case, case_key(w.epoch_keys[2], "phone", PHONE))  # another epoch's
    # no member id but the appellant's (the signer) is in the item
    for who in "ACD":
        assert w.keys[who].id not in raw
    assert b"B-2024-17" not in raw and b"ported" not in raw
    # a tampered item fails its signature
    with pytest.raises(AppealItemRejected):
        decode_case(raw[:-1] + bytes([raw[-1] ^ 1]))


def test_a_note_opens_only_at_the_appellant_and_proves_a_holder_of_the_value() -> None:
    w = make_world()
    k = case_key(w.epoch_keys[1], "phone", PHONE)
    raw = make_note(
        appeal_id=AID, to=w.keys["B"].id, ts=T0, decision="rejected", note="two chargebacks", key=k
    )
    note = decode_note(raw)
    assert open_note(note, w.keys["B"], k) == ("rejected", "two chargebacks")
    with pytest.raises(AppealItemRejected) as e:
        open_note(note, w.keys["C"], k)
    assert e.value.reason == "not_openable"
    # a note forged by someone without the value fails its tag at the appellant
    forged = decode_note(
        make_note(
            appeal_id=AID,
            to=w.keys["B"].id,
            ts=T0,
            decision="upheld",
            note="",
            key=case_key(w.epoch_keys[1], "phone", "+8613900000000"),
        )
    )
    with pytest.raises(AppealItemRejected):
        open_note(forged, w.keys["B"], k)
    # the note is unsigned and names no member but the appellant
    for who in "ACD":
        assert w.keys[who].id not in raw
    assert b"chargebacks" not in raw


def test_appeal_ids_are_random_hex() -> None:
    assert new_appeal_id(bytes(range(8))) == "0001020304050607"
    with pytest.raises(ValueError):
        new_appeal_id(b"short")


def test_appeal_items_travel_to_every_node_and_bad_ones_count_against_the_sender() -> None:
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    k = case_key(w.epoch_keys[1], "phone", PHONE)
    case = make_case(
        w.keys["B"],
        appeal_id=AID,
        tok=w.tok(PHONE),
        kind="phone",
        ep=1,
        ts=T0,
        key=k,
        case_ref="r",
        grounds="g",
    )
    note = make_note(appeal_id=AID, to=w.keys["B"].id, ts=T0, decision="rejected", note="n", key=k)
    net.engine("B").add_appeal_item("a", case)
    net.engine("A").add_appeal_item("n", note)
    for _ in range(3):
        net.round()
    for name, node in net.nodes.items():
        held = sorted(node.store.appeal_items())
        assert held == sorted([("a", case), ("n", note)]), name
        got = sorted(ev.kind for ev in node.of(AppealItemArrived))
        assert got == {"A": ["a"], "B": ["n"]}.get(name, ["a", "n"]), name

    # an outsider's case, or garbage, injected by D counts against D
    outsider = make_case(
        w.keys["X"],
        appeal_id="ffffffffffffffff",
        tok=w.tok(PHONE),
        kind="phone",
        ep=1,
        ts=T0,
        key=k,
        case_ref="r",
        grounds="g",
    )
    injected: list[bool] = []

    def inject(src: str, dst: str, data: bytes) -> bytes:
        if src == "D" and dst == "A" and not injected and decode(data)["t"] == "h":
            injected.append(True)
            return with_extra(data, it=[("a", outsider), ("n", b"\xa0")])
        return data

    net.tamper = inject
    for _ in range(3):
        net.round()
    assert injected
    a = net["A"]
    st = a.engine.peer_stats()[w.keys["D"].id]
    assert st.invalid_reasons == {"not_member": 1, "bad_appeal_item": 1}
    assert {(r.what, r.reason) for r in a.of(Refused)} == {
        ("appeal_item", "not_member"),
        ("appeal_item", "bad_appeal_item"),
    }
    assert len(a.store.appeal_items()) == 2


def test_a_restarted_engine_relays_the_items_it_holds() -> None:
    w = make_world()
    net = Net(w, "AB", fanout=1)
    k = case_key(w.epoch_keys[1], "phone", PHONE)
    case = make_case(
        w.keys["A"],
        appeal_id=AID,
        tok=w.tok(PHONE),
        kind="phone",
        ep=1,
        ts=T0,
        key=k,
        case_ref="r",
        grounds="g",
    )
    net.engine("A").add_appeal_item("a", case)
    engine = net.restart("A", 99)
    assert engine.item_count() == 1


def test_cases_per_appeal_are_capped_without_blaming_the_relay() -> None:
    from protocol.gossip import MAX_CASES_PER_APPEAL

    w = make_world()
    net = Net(w, "AB", fanout=1)
    k = case_key(w.epoch_keys[1], "phone", PHONE)
    cases = [
        make_case(
            w.keys["B"],
            appeal_id=AID,
            tok=w.tok(f"+86139000{i:05d}"),
            kind="phone",
            ep=1,
            ts=T0,
            key=k,
            case_ref="r",
            grounds="g",
        )
        for i in range(MAX_CASES_PER_APPEAL + 3)
    ]
    for c in cases:
        net.engine("B").store.put_appeal_item("a", AID, c)  # held beyond the cap by B
        net.engine("B")._add_item("a", c)
    for _ in range(3):
        net.round()
    assert len(net["A"].store.appeal_items()) == MAX_CASES_PER_APPEAL
    assert net.engine("A").peer_stats()[w.keys["B"].id].invalid == 0
