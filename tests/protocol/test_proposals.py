"""Charter proposals travel by gossip, gather signatures and become the next version."""

from __future__ import annotations

import pytest
from gossip_harness import Net
from protocol_world import T0, make_world

from contracts.charter import EpochInfo
from contracts.policy import DAY_MS
from protocol.charter_chain import sign_charter
from protocol.cose import add_signature, merge_signatures, sign_multi, verify_multi
from protocol.gossip import CharterAdvanced, KeysGranted, ProposalUpdated
from protocol.grants import make_grant
from protocol.keys import MemberKey
from protocol.proposals import (
    EFFECTIVE_AFTER_MS,
    ProposalBook,
    ProposalRejected,
    proposal_id,
)
from protocol.store import MemoryStore


def test_merge_signatures_is_the_union() -> None:
    keys = [MemberKey.from_seed(bytes([i]) * 32) for i in range(3)]
    a = sign_multi(b"payload", keys[:1])
    b = sign_multi(b"payload", keys[1:])
    merged = merge_signatures(a, b)
    assert set(verify_multi(merged).signers) == {k.id for k in keys}
    assert merge_signatures(merged, a) == merged
    with pytest.raises(Exception, match="different payloads"):
        merge_signatures(a, sign_multi(b"other", keys[:1]))


def book_for(net: Net, name: str) -> ProposalBook:
    return net[name].engine.proposals


def test_one_signature_is_not_enough_two_of_three_admins_are() -> None:
    w = make_world()
    net = Net(w, "ABCD")
    a = book_for(net, "A")
    new_x = w.member("X", roles=("publisher", "reader"))
    draft = a.draft(net.now, members=(*w.chain.current.members, new_x))
    assert draft.ts == net.now + EFFECTIVE_AFTER_MS
    offer = net["A"].engine.propose(draft, net.now)
    assert offer.status == "new" and offer.proposal is not None
    pid = offer.proposal.id
    for _ in range(3):
        net.round()
    # every engine holds the proposal, pending; nobody moved on
    for name, node in net.nodes.items():
        p = node.engine.proposals.get(pid)
        assert p is not None and p.signers == {w.keys["A"].id}, name
        assert node.feeds.chain.current.version == 1, name
    # D is no admin: its signature is refused
    with pytest.raises(ProposalRejected) as e:
        book_for(net, "D").sign(pid, w.keys["D"], net.now)
    assert e.value.reason == "not_admin"
    # B signs: the quorum (2 of A, B, C) is met at B, and version 2 spreads
    signed = net["B"].engine.sign_proposal(pid, net.now)
    assert signed.status == "final"
    assert net["B"].feeds.chain.current.version == 2
    for _ in range(4):
        net.round()
    for name, node in net.nodes.items():
        chain = node.feeds.chain
        assert chain.current.version == 2, name
        assert chain.current.is_active(w.keys["X"].id), name
        assert any(isinstance(ev, CharterAdvanced) and ev.version == 2 for ev in node.events)
        assert node.engine.proposals.pending() == []


def test_a_proposal_with_a_forged_signature_is_refused_and_counted() -> None:
    w = make_world()
    net = Net(w, "AB")
    a = book_for(net, "A")
    draft = a.draft(net.now, quorum=3)
    good = sign_charter(draft, [w.keys["A"]])
    forged = bytearray(good)
    forged[-5] ^= 0x01
    with pytest.raises(ProposalRejected):
        a.offer(bytes(forged), net.now)
    # relayed by A's engine as an item: B refuses it and counts it against A
    net["A"].engine._add_item("p", bytes(forged))
    net.round()
    st = net["B"].engine.peer_stats()[w.keys["A"].id]
    assert st.invalid_reasons.get("bad_signature") == 1
    assert book_for(net, "B").pending() == []


def test_proposals_that_cannot_follow_are_refused() -> None:
    w = make_world()
    book = ProposalBook(MemoryStore(), w.chain)
    cur = w.chain.current_version
    wrong_prev = cur.charter.evolve(prev=b"\x00" * 32, ts=T0 + DAY_MS)
    with pytest.raises(ProposalRejected) as e:
        book.offer(sign_charter(wrong_prev, [w.keys["A"]]), T0)
    assert e.value.reason == "wrong_prev"
    renamed = cur.charter.evolve(prev=cur.hash, ts=T0 + DAY_MS, consortium="other")
    with pytest.raises(ProposalRejected) as e:
        book.offer(sign_charter(renamed, [w.keys["A"]]), T0)
    assert e.value.reason == "consortium_changed"
    by_outsider = cur.charter.evolve(prev=cur.hash, ts=T0 + DAY_MS, quorum=1)
    with pytest.raises(ProposalRejected) as e:
        book.offer(sign_charter(by_outsider, [w.keys["X"]]), T0)
    assert e.value.reason == "not_admin"
    # a version two ahead waits; version 1 again is stale
    ahead = cur.charter.evolve(prev=b"\x01" * 32, ts=T0 + DAY_MS).evolve(prev=b"\x01" * 32)
    assert book.offer(sign_charter(ahead, [w.keys["A"]]), T0).status == "waiting"
    assert book.offer(w.genesis_raw, T0).status == "stale"


def test_signing_after_the_effective_time_is_refused() -> None:
    w = make_world()
    book = ProposalBook(MemoryStore(), w.chain)
    offer = book.propose(book.draft(T0, quorum=3), w.keys["A"], T0)
    assert offer.proposal is not None
    with pytest.raises(ProposalRejected) as e:
        book.sign(offer.proposal.id, w.keys["B"], T0 + EFFECTIVE_AFTER_MS + 1)
    assert e.value.reason == "expired"


def test_same_proposal_signed_apart_merges_into_the_quorum() -> None:
    w = make_world()
    net = Net(w, "ABC")
    draft = book_for(net, "A").draft(net.now, quorum=3)
    raw_a = sign_charter(draft, [w.keys["A"]])
    raw_b = add_signature(sign_charter(draft, [w.keys["C"]]), w.keys["C"])
    assert proposal_id(raw_a) == proposal_id(raw_b)
    net["A"].engine.add_proposal(raw_a, net.now)
    net["C"].engine.add_proposal(raw_b, net.now)
    for _ in range(4):
        net.round()
    for name, node in net.nodes.items():
        assert node.feeds.chain.current.version == 2, name
        assert node.feeds.chain.current.quorum == 3
        assert node.engine.proposals.pending() == []
    # the engine where both halves met made version 2 from the merged signatures
    finals = [
        ev
        for node in net.nodes.values()
        for ev in node.events
        if isinstance(ev, ProposalUpdated) and ev.status == "final"
    ]
    assert finals


def test_a_newcomer_syncs_the_chain_from_genesis_and_opens_its_grant() -> None:
    w = make_world()
    net = Net(w, "ABX")  # X runs a node with only the genesis as trust anchor
    for i in range(3):
        net.publish("A", [w.add(f"+86138000000{i:02d}")])
    x_member = w.member("X", roles=("publisher", "reader"))
    a = book_for(net, "A")
    draft = a.draft(net.now, members=(*w.chain.current.members, x_member))
    raw = sign_charter(draft, [w.keys["A"], w.keys["B"]])
    assert net["A"].engine.add_proposal(raw, net.now).status == "final"
    grant = make_grant(w.keys["A"], w.keys["X"].id, {1: w.epoch_keys[1]}, cv=2, ts=net.now)
    net["A"].engine.add_grant(grant)
    for _ in range(6):
        net.round()
    x = net["X"]
    assert x.feeds.chain.current.version == 2
    assert x.feeds.chain.anchor == net["A"].feeds.chain.anchor
    assert x.store.head(w.keys["A"].id) is not None and x.store.head(w.keys["A"].id).seq == 3  # type: ignore[union-attr]
    [granted] = [ev for ev in x.events if isinstance(ev, KeysGranted)]
    assert granted.keys == {1: w.epoch_keys[1]}
    assert not any(isinstance(ev, KeysGranted) for n in "AB" for ev in net[n].events)


def test_epochs_added_by_a_rotation_proposal() -> None:
    w = make_world()
    book = ProposalBook(MemoryStore(), w.chain)
    cur = w.chain.current
    draft = book.draft(T0, epochs=(*cur.epochs, EpochInfo(ep=2, since=T0 + EFFECTIVE_AFTER_MS)))
    offer = book.offer(sign_charter(draft, [w.keys["A"], w.keys["C"]]), T0)
    assert offer.status == "final"
    assert offer.proposal is not None and offer.proposal.charter.current_epoch() == 2
