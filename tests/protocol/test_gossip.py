"""The gossip engine (protocol.gossip), driven through the in-memory harness.

Every test runs real engines over real stores and checks what an operator
would: the same heads and the same indicator state everywhere, bytes on the
wire, what was refused and counted, who is backed off or quarantined.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from gossip_harness import (
    EnginePair,
    Msg,
    Net,
    decode,
    encode,
    make_consortium,
    with_extra,
    without_entries,
)
from protocol_world import T0, World, make_world, next_charter

from protocol.entries import Entry, decode_entry
from protocol.gossip import (
    QUARANTINE_AFTER,
    QUARANTINE_MS,
    CharterAdvanced,
    EntriesAccepted,
    ExchangeCompleted,
    ForkDetected,
    GossipEngine,
    GossipError,
    KeysGranted,
    PeerFailed,
    PeerQuarantined,
    Refused,
)
from protocol.grants import GrantRejected, make_grant
from protocol.store import MemoryStore

# -- helpers ---------------------------------------------------------------------------


def phone(i: int) -> str:
    return f"+86138{i:08d}"


def state(store: MemoryStore) -> list[Any]:
    """Every reporter's word on every token, in a fixed order."""
    return sorted(store.all_indicators(), key=lambda s: (s.author, s.tok, s.ep))


def snapshot(store: MemoryStore) -> tuple[Any, ...]:
    return (
        store.heads(),
        state(store),
        {log: [e.hash for e in store.held(log)] for log in store.held_logs()},
        sorted(p.encode() for p in store.fork_proofs()),
        sorted(store.grants()),
        store.charters(),
    )


def verdicts(net: Net, toks: list[bytes]) -> dict[str, list[list[Any]]]:
    """What each node would answer about each token (sorted by reporter)."""
    return {
        name: [sorted(node.store.indicators(t), key=lambda s: s.author) for t in toks]
        for name, node in net.nodes.items()
    }


def heads_of(entries: list[Entry]) -> dict[bytes, tuple[int, bytes]]:
    out: dict[bytes, tuple[int, bytes]] = {}
    for e in entries:
        if e.seq > out.get(e.log, (0, b""))[0]:
            out[e.log] = (e.seq, e.hash)
    return out


def kinds(msgs: list[Msg]) -> list[str]:
    return [m.kind for m in msgs]


def entry_seq(raw: bytes) -> tuple[bytes, int]:
    e = decode_entry(raw)
    return e.log, e.seq


def publish_some(net: Net, name: str, n: int, base: int) -> list[Entry]:
    w = net.world
    return [net.publish(name, [w.add(phone(base + i), ts=net.now)]) for i in range(n)]


# -- 1. convergence --------------------------------------------------------------------------


def test_two_engines_converge_in_one_exchange() -> None:
    w = make_consortium("AB")
    pair = EnginePair(w)
    a = publish_some(pair, "A", 5, 100)
    b = publish_some(pair, "B", 2, 200)
    b.append(pair.publish("B", [w.retract(phone(200))]))
    assert not pair.converged()

    msgs = pair.exchange("A")

    assert kinds(msgs) == ["h", "r", "p", "a"]
    assert pair.converged()
    want = heads_of(a + b)
    for name in "AB":
        assert pair.engine(name).heads() == want
        assert {log: (h.seq, h.hash) for log, h in pair[name].store.heads().items()} == want
        for e in a + b:
            assert pair[name].store.entry(e.log, e.seq) == e.raw
    assert state(pair["A"].store) == state(pair["B"].store)
    [b_word] = pair["A"].store.indicators(w.tok(phone(200)))
    assert b_word.author == w.keys["B"].id and b_word.retracted
    # what each side reports about the exchange
    assert pair["A"].of(ExchangeCompleted) == [ExchangeCompleted(pair.id("B"), True, 3, 5)]
    assert pair["B"].of(ExchangeCompleted) == [ExchangeCompleted(pair.id("A"), False, 5, 3)]
    [got] = pair["B"].of(EntriesAccepted)
    assert got.peer == pair.id("A") and [e.hash for e in got.entries] == [e.hash for e in a]
    # lag is as last told: B told its heads before A's push; the next exchange updates it
    assert pair.engine("A").peer_lag(pair.id("B")) == (0, 5)
    pair.exchange("B", step_ms=1_000)
    assert pair.engine("A").peer_lag(pair.id("B")) == (0, 0)
    assert pair.engine("B").peer_lag(pair.id("A")) == (0, 0)


def test_six_engines_converge_on_every_feed() -> None:
    names = "ABCDEF"
    w = make_consortium(names)
    net = Net(w, names, fanout=2)
    published: list[Entry] = []
    for i, name in enumerate(names):
        published += publish_some(net, name, 3, 100 * i)
    # a retract and a token reported by two members
    published.append(net.publish("C", [w.retract(phone(200))]))
    published.append(net.publish("E", [w.add(phone(0), cat="phishing", sev=5, ts=net.now)]))

    net.run_until_converged(max_rounds=10)

    want = heads_of(published)
    assert len(want) == 6
    toks = [w.tok(phone(100 * i + j)) for i in range(6) for j in range(3)]
    v = verdicts(net, toks)
    for name, node in net.nodes.items():
        assert node.engine.heads() == want, name
        assert {log: (h.seq, h.hash) for log, h in node.store.heads().items()} == want
        assert v[name] == v["A"], name
        assert state(node.store) == state(net["A"].store)
    assert [s.retracted for s in net["F"].store.indicators(w.tok(phone(200)))] == [True]
    both = net["F"].store.indicators(w.tok(phone(0)))
    assert {(s.author, s.cat) for s in both} == {
        (w.keys["A"].id, "telecom_fraud"),
        (w.keys["E"].id, "phishing"),
    }

    # later entries travel the same way
    more = [net.publish("F", [w.add(phone(900), ts=net.now)])]
    more.append(net.publish("B", [w.retract(phone(100))]))
    net.run_until_converged(max_rounds=10)
    want = heads_of(published + more)
    for node in net.nodes.values():
        assert node.engine.heads() == want
        assert [s.retracted for s in node.store.indicators(w.tok(phone(100)))] == [True]
        assert len(node.store.indicators(w.tok(phone(900)))) == 1


# -- 2. idle exchanges ----------------------------------------------------------------------


def idle_exchange(n_members: int) -> tuple[list[Msg], int]:
    """The messages of one idle exchange between two synced engines, and the first sync size."""
    names = [f"M{i:02d}" for i in range(n_members)]
    w = make_consortium(names)
    pair = EnginePair(w, names[0], names[1])
    feeds = pair[names[0]].feeds
    for i, n in enumerate(names):  # one entry in every member's feed, all held by M00
        assert feeds.offer(w.entry(n, 1, None, [w.add(phone(i))]).raw, pair.now).status == (
            "accepted"
        )
    first = pair.exchange(names[0], step_ms=1_000)
    first_bytes = sum(len(m.data) for m in first)
    pair.sync()
    for _ in range(2):
        pair.exchange(names[0], step_ms=1_000)
        pair.exchange(names[1], step_ms=1_000)
    assert len(pair[names[1]].engine.heads()) == n_members
    return pair.exchange(names[0], step_ms=1_000), first_bytes


def test_idle_exchange_is_small_and_independent_of_member_count() -> None:
    small, small_first = idle_exchange(3)
    big, big_first = idle_exchange(50)
    for msgs in (small, big):
        assert kinds(msgs) == ["h", "r"]
        for m in msgs:
            assert not m.msg.keys() & {"hd", "f", "it", "rs", "ch", "en", "m"}, m.msg
        assert sum(len(m.data) for m in msgs) < 300
    assert [len(m.data) for m in small] == [len(m.data) for m in big]
    # the measure can tell: the first exchange carried every head and entry
    assert big_first > 50 * 100 > small_first


# -- 3. catch-up in frames --------------------------------------------------------------------


def test_catch_up_in_several_frames() -> None:
    w = make_consortium("AB")
    frame = 4_096
    pair = EnginePair(w, frame_bytes=frame)
    a = publish_some(pair, "A", 300, 0)
    b = publish_some(pair, "B", 120, 1_000)

    msgs = pair.exchange("B")

    flagged = [m for m in msgs if m.msg.get("m")]
    assert len(flagged) >= 4
    assert {m.src for m in flagged} == {"A", "B"}  # both had to send in several frames
    assert kinds(msgs).count("h") >= 4  # follow-up exchanges started at once
    for m in msgs:
        en = m.msg.get("en", [])
        assert sum(len(r) for r in en) <= frame or len(en) == 1
    # nothing was sent twice
    sent = [entry_seq(r) for m in msgs for r in m.msg.get("en", [])]
    assert len(sent) == len(set(sent)) == 420
    assert pair.converged()
    for name in "AB":
        store = pair[name].store
        for e in a + b:
            assert store.entry(e.log, e.seq) == e.raw
    assert pair["B"].feeds.stats.duplicates == 0
    assert state(pair["A"].store) == state(pair["B"].store)


# -- 4. gaps ---------------------------------------------------------------------------------


def test_gap_is_held_then_filled() -> None:
    w = make_consortium("AB")
    pair = EnginePair(w)
    a = publish_some(pair, "A", 5, 0)
    a_log = pair.id("A")
    dropped = []

    def drop_first(src: str, dst: str, data: bytes) -> bytes:
        if src == "A" and not dropped and decode(data).get("en"):
            dropped.append(True)
            return without_entries(data, lambda raw: entry_seq(raw) == (a_log, 1))
        return data

    pair.tamper = drop_first
    pair.exchange("B")
    assert dropped
    store = pair["B"].store
    assert store.head(a_log) is None
    assert store.held_count(a_log) == 4
    assert [e.seq for e in store.held(a_log)] == [2, 3, 4, 5]
    assert not pair["B"].of(EntriesAccepted)
    assert pair.engine("B").heads() == {}

    pair.exchange("B", step_ms=1_000)

    head = store.head(a_log)
    assert head is not None and head.seq == 5 and head.hash == a[-1].hash
    assert store.held_count(a_log) == 0
    accepted = [e.seq for ev in pair["B"].of(EntriesAccepted) for e in ev.entries]
    assert accepted == [1, 2, 3, 4, 5]
    assert pair.converged()
    assert len(state(store)) == 5
    # a gap is no one's fault
    assert pair.engine("B").peer_stats()[a_log].invalid == 0


# -- 5. bad data relayed by a peer ---------------------------------------------------------------


def relay_world() -> tuple[World, EnginePair]:
    """A and B gossip; B also holds C's feed (C itself is unreachable)."""
    w = make_consortium("ABC")
    pair = EnginePair(w)
    publish_some(pair, "A", 2, 0)
    publish_some(pair, "B", 2, 100)
    prev = None
    for i in range(2):
        c = w.entry("C", i + 1, prev, [w.add(phone(200 + i))], ts=T0)
        assert pair["B"].feeds.offer(c.raw, pair.now).status == "accepted"
        prev = c.hash
    pair.sync()
    pair.exchange("B", step_ms=1_000)
    return w, pair


def bad_entry(w: World, pair: EnginePair, case: str) -> bytes:
    c_head = pair["B"].store.head(w.keys["C"].id)
    assert c_head is not None

    def c3(op: Any) -> bytes:
        return w.entry("C", 3, c_head.hash, [op], ts=pair.now).raw

    if case == "bad_signature":
        raw = bytearray(c3(w.add(phone(300))))
        raw[-1] ^= 0x01  # the last byte of the Ed25519 signature
        return bytes(raw)
    if case == "not_member":
        return w.entry("X", 1, None, [w.add(phone(300))], ts=pair.now).raw
    if case == "unknown_category":
        return c3(w.add(phone(300))._replace(cat="jaywalking"))
    if case == "ttl_over_maximum":
        max_days = w.genesis.policy.max_ttl_days["telecom_fraud"]
        return c3(w.add(phone(300), ttl_days=max_days + 1, ts=pair.now))
    if case == "replay":
        raw = pair["B"].store.entry(w.keys["C"].id, 1)
        assert raw is not None
        return raw
    raise AssertionError(case)


class Injector:
    """Adds ``raw`` to the next ``times`` replies or pushes B sends A."""

    def __init__(self, raw: bytes, times: int = 1) -> None:
        self.raw = raw
        self.left = times

    def __call__(self, src: str, dst: str, data: bytes) -> bytes:
        if src == "B" and dst == "A" and self.left and decode(data)["t"] in ("r", "p"):
            self.left -= 1
            return with_extra(data, en=[self.raw])
        return data


SUSPICIOUS = {
    "bad_signature": "bad_signature",
    "not_member": "not_member",
    "unknown_category": "policy",
    "ttl_over_maximum": "policy",
}


@pytest.mark.parametrize("case", [*SUSPICIOUS, "replay"])
def test_bad_entry_relayed_by_a_peer_is_refused_and_counted(case: str) -> None:
    w, pair = relay_world()
    _, control = relay_world()
    raw = bad_entry(w, pair, case)
    before = pair["A"].feeds.stats
    dup_before, rejected_before = before.duplicates, dict(before.rejected)

    pair.tamper = Injector(raw)
    pair.exchange("A", step_ms=1_000)
    assert pair.tamper.left == 0  # type: ignore[attr-defined]
    control.exchange("A", step_ms=1_000)

    a = pair["A"]
    st = a.engine.peer_stats()[pair.id("B")]
    refused = a.of(Refused)
    if case == "replay":
        assert a.feeds.stats.duplicates == dup_before + 1
        assert a.feeds.stats.rejected == rejected_before
        assert st.invalid == 0 and st.invalid_reasons == {}
        assert refused == []
    else:
        reason = SUSPICIOUS[case]
        assert a.feeds.stats.rejected == {**rejected_before, reason: 1}
        assert st.invalid == 1
        assert st.invalid_reasons == {reason: 1}
        assert [(r.peer, r.what, r.reason) for r in refused] == [(pair.id("B"), "entry", reason)]
        assert not a.of(PeerQuarantined)
    # no verdict changed, anywhere
    for name in "AB":
        assert snapshot(pair[name].store) == snapshot(control[name].store), name
        assert not pair[name].store.indicators(w.tok(phone(300)))
    # and B is still a peer in good standing
    assert pair.exchange("A", step_ms=1_000)[0].kind == "h"
    assert pair.converged()


def test_peer_relaying_invalid_data_is_quarantined() -> None:
    w, pair = relay_world()
    _, control = relay_world()
    raw = bad_entry(w, pair, "bad_signature")
    hello_from_b = next(m.data for m in reversed(pair.messages()) if m.kind == "h" and m.src == "B")
    pair.tamper = Injector(raw, times=QUARANTINE_AFTER)
    a, b_id = pair["A"], pair.id("B")

    for i in range(QUARANTINE_AFTER):
        assert not a.of(PeerQuarantined)
        pair.exchange("A", step_ms=1_000)
        control.exchange("A", step_ms=1_000)
        assert a.engine.peer_stats()[b_id].invalid == i + 1

    [q] = a.of(PeerQuarantined)
    assert q.peer == b_id and q.until == pair.now + QUARANTINE_MS
    st = a.engine.peer_stats()[b_id]
    assert st.invalid_reasons == {"bad_signature": QUARANTINE_AFTER}
    assert a.feeds.stats.rejected == {"bad_signature": QUARANTINE_AFTER}
    # its messages are refused whole, and nothing changes
    before = snapshot(a.store)
    with pytest.raises(GossipError) as exc:
        a.engine.receive(b_id, hello_from_b, pair.now + 1)
    assert exc.value.reason == "quarantined"
    assert snapshot(a.store) == before
    # it is not contacted
    pair.now += 1_000
    assert b_id not in a.engine.start_round(pair.now)
    assert "B" not in pair.start("A")
    # no verdict changed
    for name in "AB":
        assert snapshot(pair[name].store) == snapshot(control[name].store), name
    # once the quarantine is over it is a peer again
    pair.tamper = None
    pair.now += QUARANTINE_MS
    assert "B" in pair.start("A")


# -- 6. equivocation --------------------------------------------------------------------------


def test_equivocation_is_detected_and_frozen_everywhere() -> None:
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    d1 = w.entry("D", 1, None, [w.add(phone(1))], ts=T0)
    d1b = w.entry("D", 1, None, [w.add(phone(2))], ts=T0)
    assert net["A"].feeds.offer(d1.raw, net.now).status == "accepted"
    assert net["B"].feeds.offer(d1b.raw, net.now).status == "accepted"
    publish_some(net, "C", 2, 10)
    d_log = w.keys["D"].id

    for _ in range(4):
        net.round()

    for name, node in net.nodes.items():
        assert node.store.is_frozen(d_log), name
        [proof] = node.store.fork_proofs()
        assert proof.log == d_log and proof.seq == 1
        assert {proof.a, proof.b} == {d1.raw, d1b.raw}
        forks = node.of(ForkDetected)
        assert [(f.proof.log, f.proof.seq) for f in forks] == [(d_log, 1)], name
        assert node.engine.item_count() == 1
        # honest relays are never blamed for a fork
        assert all(st.invalid == 0 for st in node.engine.peer_stats().values()), name
        # a later entry of the frozen feed is refused
        d2 = w.entry("D", 2, d1.hash, [w.add(phone(3))], ts=T0)
        assert node.feeds.offer(d2.raw, net.now).reason == "frozen"
    # the honest feed still converged
    c_head = net["C"].engine.heads()[w.keys["C"].id]
    assert all(n.engine.heads()[w.keys["C"].id] == c_head for n in net.nodes.values())


def test_fork_proof_spreads_to_every_engine() -> None:
    """A fork one engine finds (a relay shows it the sibling entry) freezes the feed everywhere."""
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    d1 = w.entry("D", 1, None, [w.add(phone(1))], ts=T0)
    d1b = w.entry("D", 1, None, [w.add(phone(2))], ts=T0)
    assert net["A"].feeds.offer(d1.raw, net.now).status == "accepted"
    net.run_until_converged(max_rounds=5)
    d_log = w.keys["D"].id
    injected = []

    def reveal(src: str, dst: str, data: bytes) -> bytes:
        if (src, dst) == ("B", "C") and not injected and decode(data)["t"] in ("r", "p"):
            injected.append(True)
            return with_extra(data, en=[d1b.raw])
        return data

    net.tamper = reveal
    for _ in range(3):
        net.round()

    assert injected
    [found] = net["C"].of(ForkDetected)
    assert found.peer is None  # found by C itself
    for name, node in net.nodes.items():
        assert node.store.is_frozen(d_log), name
        [proof] = node.store.fork_proofs()
        assert (proof.log, proof.seq) == (d_log, 1) and {proof.a, proof.b} == {d1.raw, d1b.raw}
        [ev] = node.of(ForkDetected)
        assert ev.proof == proof
        if name != "C":
            assert ev.peer is not None and ev.peer != w.keys[name].id
        assert node.engine.item_count() == 1
        # showing a fork is no offence
        assert all(st.invalid == 0 for st in node.engine.peer_stats().values()), name
        d2 = w.entry("D", 2, d1.hash, [w.add(phone(3))], ts=T0)
        assert node.feeds.offer(d2.raw, net.now).reason == "frozen"


def test_fork_found_outside_gossip_is_gossiped() -> None:
    """forks.py: a node that finds a fork "stores it, freezes the feed ... and gossips the proof",
    also when the sibling entry came in by another path (``Feeds.offer``, as the node's
    ``accept_entry`` does)."""
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    d1 = w.entry("D", 1, None, [w.add(phone(1))], ts=T0)
    d1b = w.entry("D", 1, None, [w.add(phone(2))], ts=T0)
    assert net["A"].feeds.offer(d1.raw, net.now).status == "accepted"
    assert net["A"].feeds.offer(d1b.raw, net.now).status == "fork"
    d_log = w.keys["D"].id

    for _ in range(3):
        net.round()

    for name, node in net.nodes.items():
        assert node.store.is_frozen(d_log), name
        assert node.engine.item_count() == 1, name
        if name != "A":
            assert len(node.of(ForkDetected)) == 1, name


@pytest.mark.parametrize("branch", ["equal_length", "longer_branch"])
def test_equivocation_between_two_engines_holding_one_branch_each(branch: str) -> None:
    """Each engine holds a different entry for C's seq 1; nobody else can reveal the fork."""
    w = make_consortium("ABC")
    pair = EnginePair(w)
    c1 = w.entry("C", 1, None, [w.add(phone(1))], ts=T0)
    c1b = w.entry("C", 1, None, [w.add(phone(2))], ts=T0)
    branch_a = [c1]
    if branch == "longer_branch":
        branch_a.append(w.entry("C", 2, c1.hash, [w.add(phone(3))], ts=T0))
    for e in branch_a:
        assert pair["A"].feeds.offer(e.raw, pair.now).status == "accepted"
    assert pair["B"].feeds.offer(c1b.raw, pair.now).status == "accepted"
    c_log = w.keys["C"].id

    for i in range(4):
        pair.exchange("AB"[i % 2], step_ms=1_000)

    for name in "AB":
        node = pair[name]
        assert node.store.is_frozen(c_log), name
        [proof] = node.store.fork_proofs()
        assert {proof.a, proof.b} == {c1.raw, c1b.raw}
        assert len(node.of(ForkDetected)) == 1, name
        assert all(st.invalid == 0 for st in node.engine.peer_stats().values()), (
            name,
            {k.hex()[:8]: v.invalid_reasons for k, v in node.engine.peer_stats().items()},
        )


# -- 7. charter versions ------------------------------------------------------------------------


def test_charter_version_travels_and_releases_held_entries() -> None:
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    publish_some(net, "B", 2, 0)
    net.run_until_converged(max_rounds=5)
    _, raw = next_charter(w, "AB")
    a = net["A"]
    assert a.feeds.chain.append(raw)
    a.store.put_charter(2, raw)
    a_entry = net.publish("A", [w.add(phone(50), ts=net.now)])
    assert a_entry.cv == 2
    # an entry citing version 2 reaches C before the charter does: it waits
    d1 = w.entry("D", 1, None, [w.add(phone(60), ts=net.now)], ts=net.now, cv=2)
    offer = net["C"].feeds.offer(d1.raw, net.now)
    assert offer.status == "held" and offer.held_for == "charter"
    assert net["C"].store.held_count(d1.log) == 1

    net.run_until_converged(max_rounds=5)
    for _ in range(2):  # let everyone hear about version 2 and D's entry
        net.round()

    for name, node in net.nodes.items():
        chain = node.feeds.chain
        assert len(chain) == 2, name
        assert chain.current_version.raw == raw
        assert node.store.charters()[-1] == raw
        adv = node.of(CharterAdvanced)
        assert adv == ([] if name == "A" else [CharterAdvanced(2)]), name
        for e in (a_entry, d1):
            assert node.store.entry(e.log, e.seq) == e.raw, name
        assert node.store.held_count(d1.log) == 0
    released = [
        e.hash for ev in net["C"].of(EntriesAccepted) if ev.peer is None for e in ev.entries
    ]
    assert released == [d1.hash]
    assert net.converged()


# -- 8. key grants ---------------------------------------------------------------------------------


def test_key_grant_travels_and_only_the_recipient_opens_it() -> None:
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    key = bytes(range(32))
    raw = make_grant(w.keys["A"], w.keys["D"].id, {1: key}, cv=1, ts=T0)
    grant = net.engine("A").add_grant(raw)

    for _ in range(3):
        net.round()

    for name, node in net.nodes.items():
        assert node.store.grants() == [raw], name
        assert node.engine.item_count() == 1
        granted = node.of(KeysGranted)
        if name == "D":
            [g] = granted
            assert g.grant.hash == grant.hash and g.grant.to == w.keys["D"].id
            assert g.keys == {1: key}
        else:
            assert granted == [], name


def test_grant_forged_by_non_admin_is_refused_and_counted() -> None:
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    forged = make_grant(w.keys["D"], w.keys["C"].id, {1: bytes(32)}, cv=1, ts=T0)
    with pytest.raises(GrantRejected):
        net.engine("D").add_grant(forged)
    injected = []

    def inject(src: str, dst: str, data: bytes) -> bytes:
        if src == "D" and dst == "A" and not injected and decode(data)["t"] == "h":
            injected.append(True)
            return with_extra(data, it=[("g", forged)])
        return data

    net.tamper = inject
    for _ in range(3):
        net.round()

    assert injected
    a = net["A"]
    st = a.engine.peer_stats()[w.keys["D"].id]
    assert st.invalid == 1 and st.invalid_reasons == {"bad_grant": 1}
    assert [(r.peer, r.what, r.reason) for r in a.of(Refused)] == [
        (w.keys["D"].id, "grant", "bad_grant")
    ]
    for name, node in net.nodes.items():
        assert node.store.grants() == [], name
        assert node.engine.item_count() == 0
        assert not node.of(KeysGranted)


# -- 9. failures -----------------------------------------------------------------------------------


def test_peer_down_backs_off_and_syncs_when_back() -> None:
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    a, c_id = net["A"], w.keys["C"].id
    net.down.add("C")
    delays = []
    for n in range(1, 4):
        net.round(step_ms=0 if n == 1 else a.engine.peer_stats()[c_id].backoff_until - net.now)
        assert "C" in net.chosen["A"]
        failed = [f for f in a.of(PeerFailed) if f.peer == c_id]
        assert [f.failures for f in failed] == list(range(1, n + 1))
        st = a.engine.peer_stats()[c_id]
        assert st.consecutive_failures == n and st.backoff_until == failed[-1].backoff_until
        delays.append(st.backoff_until - net.now)
        # while it backs off, it is skipped
        mark = len(net.sent)
        net.round(step_ms=1)
        assert "C" not in net.chosen["A"]
        assert not [m for m in net.messages(mark) if m.src == "A" and m.dst == "C"]
    assert 0 < delays[0] < delays[1] < delays[2]

    c_entries = publish_some(net, "C", 3, 0)  # published while cut off
    b_entries = publish_some(net, "B", 3, 100)
    net.down.discard("C")
    net.now = max(
        n.engine.peer_stats()[c_id].backoff_until for n in net.nodes.values() if n.name != "C"
    )
    net.run_until_converged(max_rounds=5)

    for node in net.nodes.values():
        for e in c_entries + b_entries:
            assert node.store.entry(e.log, e.seq) == e.raw
    st = a.engine.peer_stats()[c_id]
    assert st.consecutive_failures == 0 and st.backoff_until == 0
    assert st.failures == 3 and st.last_success == net.now


def test_restarted_engine_resynchronises() -> None:
    w = make_world()
    net = Net(w, "ABCD", fanout=3)
    for i, name in enumerate("ABCD"):
        publish_some(net, name, 2, 10 * i)
    net.run_until_converged(max_rounds=5)
    net.round()
    publish_some(net, "A", 2, 100)  # A's store moves on before the restart

    engine = net.restart("A", rng_seed=4242)
    assert len(net["A"].feeds.listeners) == 1
    assert engine.heads() == {log: (h.seq, h.hash) for log, h in net["A"].store.heads().items()}

    # B still believes it told A everything; A has no view of B: full heads again
    mark = len(net.sent)
    net.now += 1_000
    net.start("B")
    msgs = [m for m in net.messages(mark) if {m.src, m.dst} == {"A", "B"}]
    hello, reply = msgs[0], msgs[1]
    assert (hello.src, hello.kind, reply.kind) == ("B", "h", "r")
    assert "f" not in hello.msg
    assert reply.msg.get("rs") is True and reply.msg.get("f") is True
    assert len(reply.msg["hd"]) == 4
    follow = [m for m in msgs[2:] if m.kind == "h" and m.src == "B"]
    assert follow and follow[0].msg.get("f") is True
    assert len(follow[0].msg["hd"]) == 4

    more = publish_some(net, "A", 1, 200) + publish_some(net, "D", 1, 300)
    net.run_until_converged(max_rounds=5)
    for node in net.nodes.values():
        assert state(node.store) == state(net["A"].store)
        for e in more:
            assert node.store.entry(e.log, e.seq) == e.raw
    assert engine.heads() == net.engine("B").heads()


def test_digest_mismatch_asks_for_full_heads() -> None:
    w = make_consortium("ABC")
    pair = EnginePair(w)
    pair.sync()
    publish_some(pair, "A", 1, 0)
    publish_some(pair, "B", 1, 10)
    publish_some(pair, "A", 1, 20)
    # the heads delta of A's next hello loses a head on the way
    cut = []

    def lose_head(src: str, dst: str, data: bytes) -> bytes:
        msg = decode(data)
        if src == "A" and msg["t"] == "h" and msg.get("hd") and not cut:
            cut.append(msg["hd"].pop())
            if not msg["hd"]:
                del msg["hd"]
            return encode(msg)
        return data

    pair.tamper = lose_head
    msgs = pair.exchange("A", step_ms=1_000)
    assert cut
    reply = next(m for m in msgs if m.kind == "r")
    assert reply.msg.get("rs") is True
    follow = [m for m in msgs if m.kind == "h"][1:]
    assert follow and follow[0].msg.get("f") is True
    assert pair.converged()
    assert state(pair["A"].store) == state(pair["B"].store)


def test_unanswered_exchange_times_out() -> None:
    w = make_consortium("AB")
    pair = EnginePair(w)
    a, b_id = pair.engine("A"), pair.id("B")
    now = pair.now + 1_000
    assert a.start_round(now) == [b_id]
    [send] = list(a.events())  # the hello is lost: no answer, no error from the transport
    assert send.peer == b_id
    deadline = now + a.timeout_ms
    assert a.get_timer() <= deadline
    a.handle_timer(deadline - 1)
    assert not [e for e in a.events() if isinstance(e, PeerFailed)]
    assert a.start_round(deadline - 1) == []  # still waiting for B: not contacted twice
    list(a.events())
    a.handle_timer(deadline)
    failed = [e for e in a.events() if isinstance(e, PeerFailed)]
    assert [(f.peer, f.failures) for f in failed] == [(b_id, 1)]
    st = a.peer_stats()[b_id]
    assert st.failures == 1 and st.backoff_until == failed[0].backoff_until > deadline
    assert a.start_round(st.backoff_until) == [b_id]


# -- 10. malformed messages --------------------------------------------------------------------


def synced_pair() -> tuple[EnginePair, bytes, bytes]:
    """A synced pair, a hello and a (spent) reply B once sent A."""
    w = make_consortium("AB")
    pair = EnginePair(w)
    publish_some(pair, "A", 2, 0)
    publish_some(pair, "B", 2, 10)
    pair.sync()
    pair.exchange("A", step_ms=1_000)
    pair.exchange("B", step_ms=1_000)
    msgs = pair.messages()
    hello = next(m.data for m in reversed(msgs) if m.src == "B" and m.kind == "h")
    reply = next(m.data for m in reversed(msgs) if m.src == "B" and m.kind == "r")
    return pair, hello, reply


def patched(data: bytes, **changes: Any) -> bytes:
    msg = decode(data)
    msg.update(changes)
    return encode(msg)


MALFORMED: dict[str, Any] = {
    "truncated": lambda h: h[:-3],
    "trailing_bytes": lambda h: h + b"\x00",
    "not_a_map": lambda h: encode([1, 2, 3]),
    "unknown_kind": lambda h: patched(h, t="z"),
    "kind_not_text": lambda h: patched(h, t=["h"]),
    "kind_a_map": lambda h: patched(h, t={"h": 1}),
    "unknown_field": lambda h: patched(h, zz=1),
    "entries_in_hello": lambda h: patched(h, en=[b"x"]),
    "x_not_int": lambda h: patched(h, x="1"),
    "c_wrong_shape": lambda h: patched(h, c=[1]),
    "c_short_hash": lambda h: patched(h, c=[1, b"\x00" * 31]),
    "dg_short": lambda h: patched(h, dg=b"\x00" * 15),
    "hd_not_list": lambda h: patched(h, hd=b"\x00"),
    "hd_bad_item": lambda h: patched(h, hd=[[b"\x00" * 32, 0, b"\x00" * 32]]),
    "f_not_true": lambda h: patched(h, f=False),
    "it_bad_kind": lambda h: patched(h, it=[["q", b""]]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_message_is_refused_whole(case: str) -> None:
    pair, hello, _ = synced_pair()
    a, b_id = pair["A"], pair.id("B")
    data = MALFORMED[case](hello)
    before = snapshot(a.store), a.engine.heads(), a.engine.digest(), a.engine.item_count()

    with pytest.raises(GossipError) as exc:
        a.engine.receive(b_id, data, pair.now + 1)

    assert exc.value.reason == "decode"
    assert (snapshot(a.store), a.engine.heads(), a.engine.digest(), a.engine.item_count()) == (
        before
    )
    st = a.engine.peer_stats()[b_id]
    assert st.invalid == 1 and st.invalid_reasons == {"decode": 1}
    assert [(r.peer, r.what, r.reason) for r in a.of(Refused) + list(a.engine.events())] == [
        (b_id, "message", "decode")
    ]


@pytest.mark.parametrize("sender", ["X", "A"])
def test_message_from_non_member_is_refused(sender: str) -> None:
    pair, hello, _ = synced_pair()
    a = pair["A"]
    before = snapshot(a.store), a.engine.heads()
    with pytest.raises(GossipError) as exc:
        a.engine.receive(pair.id(sender), hello, pair.now + 1)
    assert exc.value.reason == "not_member"
    assert (snapshot(a.store), a.engine.heads()) == before
    assert pair.id(sender) not in a.engine.peer_stats()


@pytest.mark.parametrize("kind", ["reply", "ack"])
def test_answer_to_no_exchange_is_refused(kind: str) -> None:
    pair, _, reply = synced_pair()
    a, b_id = pair["A"], pair.id("B")
    data = reply if kind == "reply" else encode({"t": "a", "x": 12345})
    before = snapshot(a.store), a.engine.heads(), a.engine.digest()
    with pytest.raises(GossipError) as exc:
        a.engine.receive(b_id, data, pair.now + 1)
    assert exc.value.reason == "unexpected"
    assert (snapshot(a.store), a.engine.heads(), a.engine.digest()) == before


# -- 11. determinism ------------------------------------------------------------------------------


def scripted_run(seed: int) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    w = make_world()
    net = Net(w, "ABCD", seed=seed, fanout=2, frame_bytes=2_048)
    for i, name in enumerate("ABCD"):
        publish_some(net, name, 5, 10 * i)
    net.round()
    net.down.add("B")
    net.round()
    publish_some(net, "C", 40, 1_000)
    net.down.clear()
    net.run_until_converged(max_rounds=20)
    events = [repr(ev) for node in net.nodes.values() for ev in node.events]
    return net.sent, events


def test_same_seeds_same_messages() -> None:
    sent1, events1 = scripted_run(7)
    sent2, events2 = scripted_run(7)
    assert len(sent1) > 50
    assert sent1 == sent2
    assert events1 == events2
    sent3, _ = scripted_run(8)
    assert sent3 != sent1


# -- idle at scale: pairs that meet for the first time ------------------------------------------


def _same_feeds(names: list[str], missing: int = 0) -> tuple[World, EnginePair]:
    """A and B already hold one entry of each of ``names``' feeds (B lacks ``missing``)."""
    w = make_consortium(names)
    pair = EnginePair(w, a=names[0], b=names[1])
    for i, who in enumerate(names):
        e = w.entry(who, 1, None, [w.add(f"+8613800{i:06d}")], ts=pair.now)
        assert pair[names[0]].feeds.offer(e.raw, pair.now).status == "accepted"
        if i >= missing:
            assert pair[names[1]].feeds.offer(e.raw, pair.now).status == "accepted"
    for name in names[:2]:  # engines start over stores filled outside gossip
        pair.restart(name, rng_seed=len(name))
    return w, pair


def test_a_first_exchange_between_nodes_in_sync_is_idle_whatever_the_member_count() -> None:
    names = [f"M{i:02d}" for i in range(60)]
    _, pair = _same_feeds(names)
    msgs = pair.exchange("M00")
    assert kinds(msgs) == ["h", "r"]
    for m in msgs:
        assert not m.msg.keys() & {"hd", "f", "rs", "en"}, m.msg
    assert sum(len(m.data) for m in msgs) < 300
    assert pair.converged()


def test_a_first_exchange_between_nodes_out_of_sync_asks_for_heads_and_converges() -> None:
    names = [f"M{i:02d}" for i in range(60)]
    w, pair = _same_feeds(names, missing=5)
    msgs = pair.exchange("M00")
    # the digests differ: B asks for A's full heads, A sends them in a follow-up
    assert msgs[1].kind == "r" and msgs[1].msg.get("rs")
    assert any(m.src == "M00" and m.kind == "h" and m.msg.get("f") for m in msgs[2:])
    assert pair.converged()
    for i in range(5):
        assert pair["M01"].store.head(w.keys[names[i]].id) is not None


# -- 12. public hooks: what the engine knows of a peer, what it offers one ------------------------


def test_peer_view_shows_the_peer_s_heads_digest_and_stats_read_only() -> None:
    w = make_consortium("AB")
    pair = EnginePair(w)
    a, b = pair.engine("A"), pair.engine("B")
    assert a.peer_view(pair.id("B")) is None  # never exchanged
    publish_some(pair, "A", 3, 100)
    publish_some(pair, "B", 2, 200)
    pair.exchange("A")
    view = a.peer_view(pair.id("B"))
    assert view is not None
    # B told its heads before A's push: its own feed only, and not yet in sync with A
    assert view.heads is not None and dict(view.heads) == {pair.id("B"): b.heads()[pair.id("B")]}
    assert not view.in_sync
    assert view.charter_version == 1
    assert view.stats.exchanges == 1 and view.stats.entries_received == 2
    assert view.stats.entries_sent == 3

    pair.exchange("B", step_ms=1_000)  # now each has told the other every head
    view = a.peer_view(pair.id("B"))
    assert view is not None and view.heads is not None
    assert dict(view.heads) == b.heads() == a.heads()
    assert view.in_sync and view.digest == b.digest() == a.digest()
    # read-only: the heads cannot be changed through the view, the stats are a copy
    with pytest.raises(TypeError):
        view.heads[pair.id("A")] = (99, b"x" * 32)  # type: ignore[index]
    view.stats.exchanges = 1_000
    view.stats.invalid_reasons["x"] = 1
    st = a.peer_stats()[pair.id("B")]
    assert st.exchanges == 2 and st.invalid_reasons == {}


class _Offers(GossipEngine):
    """Records every call of the hook; drops the entries of one feed, adds some raw bytes."""

    def __init__(
        self, *args: Any, drop: bytes | None = None, extra: bytes | None = None, **kw: Any
    ):
        super().__init__(*args, **kw)
        self.drop = drop
        self.extra = extra
        self.calls: list[tuple[bytes, int, int, bool]] = []

    def outgoing_entries(
        self, peer: Any, entries: list[bytes], more: bool, now: int
    ) -> tuple[list[bytes], bool]:
        self.calls.append((peer, now, len(entries), more))
        out = [raw for raw in entries if decode_entry(raw).log != self.drop]
        if self.extra is not None:
            out.append(self.extra)
        return out, more


def _with_engine(pair: EnginePair, name: str, **kw: Any) -> _Offers:
    node = pair[name]
    node.feeds.listeners.clear()
    node.feeds.fork_listeners.clear()
    engine = _Offers(
        pair.world.keys[name], node.feeds, rng=random.Random(5), now=pair.now, fanout=1, **kw
    )
    node.engine = engine
    return engine


def test_the_outgoing_entries_hook_decides_what_a_peer_is_offered() -> None:
    w = make_consortium("ABC")
    pair = EnginePair(w, "A", "B")
    c = w.keys["C"]
    # A holds entries of its own feed and of C's; its hook holds back C's
    publish_some(pair, "A", 2, 100)
    c_entry = w.entry("C", 1, None, [w.add(phone(300))], ts=pair.now)
    assert pair["A"].feeds.offer(c_entry.raw, pair.now).status == "accepted"
    a = _with_engine(pair, "A", drop=c.id)
    for i in range(4):  # never converges: A's heads keep showing C's feed
        pair.exchange("AB"[i % 2], step_ms=1_000)
    assert not pair.converged()
    b_store = pair["B"].store
    assert b_store.head(pair.id("A")) is not None and b_store.head(pair.id("A")).seq == 2
    assert b_store.head(c.id) is None  # withheld
    assert a.calls and all(peer == pair.id("B") for peer, _, _, _ in a.calls)
    assert all(T0 <= now <= pair.now for _, now, _, _ in a.calls)
    assert any(n == 3 for _, _, n, _ in a.calls)  # offered all three; sent two


def test_what_the_hook_adds_is_checked_by_the_receiver_like_any_entry() -> None:
    w = make_consortium("ABC")
    pair = EnginePair(w, "A", "B")
    # an entry of C's feed with a signature that does not verify: what a forger slips in
    forged = bytearray(w.entry("C", 1, None, [w.add(phone(300))], ts=pair.now).raw)
    forged[-1] ^= 0x01  # the last byte of the Ed25519 signature
    _with_engine(pair, "A", extra=bytes(forged))
    pair.exchange("B")
    assert pair["B"].store.head(w.keys["C"].id) is None
    [refused] = pair["B"].of(Refused)
    assert (refused.peer, refused.reason) == (pair.id("A"), "bad_signature")
    assert pair.engine("B").peer_stats()[pair.id("A")].invalid == 1


def test_the_default_hook_offers_the_entries_unchanged() -> None:
    w = make_consortium("AB")
    pair = EnginePair(w)
    entries = publish_some(pair, "A", 2, 100)
    a = pair.engine("A")
    assert a.outgoing_entries(pair.id("B"), [e.raw for e in entries], True, T0) == (
        [e.raw for e in entries],
        True,
    )


def test_a_node_alone_keeps_nothing_of_what_it_publishes() -> None:
    """An engine that publishes while no peer sends anything holds no growing list of
    its own entries (they once piled up until entries arrived from a peer)."""
    import tracemalloc

    w = make_world()
    net = Net(w, "AB")
    publish_some(net, "A", 50, 1000)  # warm up
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    publish_some(net, "A", 1000, 2000)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(
        s.size_diff
        for s in after.compare_to(before, "filename")
        if s.traceback[0].filename.endswith(("gossip.py", "entries.py"))
    )
    # what stays is the engine's fixed bookkeeping, not 1000 entries (~200 B each)
    assert grown < 100 * 1024, grown  # it was ~165 KiB
