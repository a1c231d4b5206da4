"""The charter chain: each version checked against its predecessor, signatures verified."""

from __future__ import annotations

import cbor2
import pytest
from protocol_world import World, next_charter

from contracts.errors import CharterRejected
from protocol import codec
from protocol.charter_chain import CharterChain, decode_charter, sign_charter
from protocol.cose import add_signature


def test_genesis_installs_and_anchors(world: World) -> None:
    assert world.chain.current.version == 1
    assert world.chain.anchor == codec.obj_hash(world.genesis_raw)
    assert world.chain.current.admins() == {world.keys[n].id for n in "ABC"}


def test_genesis_missing_an_admin_signature(world: World) -> None:
    raw = sign_charter(world.genesis, [world.keys["A"], world.keys["B"]])
    with pytest.raises(CharterRejected) as e:
        CharterChain(raw)
    assert e.value.reason == "genesis_unsigned"
    # ...and the last founder's `charter sign` completes it
    CharterChain(add_signature(raw, world.keys["C"]))


def test_genesis_wrong_anchor(world: World) -> None:
    with pytest.raises(CharterRejected) as e:
        CharterChain(world.genesis_raw, anchor=b"\x00" * 32)
    assert e.value.reason == "wrong_anchor"


def test_quorum_met_and_idempotent(world: World) -> None:
    _, raw = next_charter(world, "AB")
    assert world.chain.append(raw) is True
    assert world.chain.append(raw) is False
    assert world.chain.current.version == 2


def test_quorum_one_short(world: World) -> None:
    _, raw = next_charter(world, "A")
    with pytest.raises(CharterRejected) as e:
        world.chain.append(raw)
    assert e.value.reason == "quorum_not_met"
    assert world.chain.current.version == 1


def test_outsider_signatures_do_not_count(world: World) -> None:
    _, raw = next_charter(world, "ADX")
    with pytest.raises(CharterRejected) as e:
        world.chain.append(raw)
    assert e.value.reason == "quorum_not_met"


def test_forged_signature(world: World) -> None:
    _, raw = next_charter(world, "AB")
    tagged = codec.loads(raw)
    body = list(tagged.value)
    sig = list(body[3][1])
    sig[2] = bytes(64)  # B's signature replaced by zeros
    body[3] = [body[3][0], sig]
    forged = cbor2.dumps(cbor2.CBORTag(98, body), canonical=True)
    with pytest.raises(CharterRejected) as e:
        world.chain.append(forged)
    assert e.value.reason == "bad_signature"


def test_duplicate_signer_refused_in_encoding(world: World) -> None:
    _, raw = next_charter(world, "AB")
    tagged = codec.loads(raw)
    body = list(tagged.value)
    body[3] = [body[3][0], body[3][0]]  # A's signature twice
    dup = cbor2.dumps(cbor2.CBORTag(98, body), canonical=True)
    with pytest.raises(CharterRejected) as e:
        world.chain.append(dup)
    assert e.value.reason == "malformed"


def test_version_skipped(world: World) -> None:
    v2, _ = next_charter(world, "AB")
    v3 = v2.evolve(prev=codec.obj_hash(b"whatever"), ts=v2.ts + 1)
    with pytest.raises(CharterRejected) as e:
        world.chain.append(sign_charter(v3, [world.keys["A"], world.keys["B"]]))
    assert e.value.reason == "wrong_version"


def test_wrong_prev(world: World) -> None:
    v2 = world.genesis.evolve(prev=b"\x01" * 32, ts=world.genesis.ts + 1)
    with pytest.raises(CharterRejected) as e:
        world.chain.append(sign_charter(v2, [world.keys["A"], world.keys["B"]]))
    assert e.value.reason == "wrong_prev"


def test_conflicting_version(world: World) -> None:
    _, raw2 = next_charter(world, "AB")
    _, raw2b = next_charter(world, "BC", ts=world.genesis.ts + 7)
    world.chain.append(raw2)
    with pytest.raises(CharterRejected) as e:
        world.chain.append(raw2b)
    assert e.value.reason == "conflicting_version"


def test_newcomer_checks_every_link(world: World) -> None:
    raws = [world.genesis_raw]
    for _ in range(4):
        _, raw = next_charter(world, "AB")
        world.chain.append(raw)
        raws.append(raw)
    good = CharterChain.from_raws(raws, anchor=world.chain.anchor)
    assert good.current.version == 5
    # one bad link in the middle: version 3 signed by one admin only
    v3 = world.chain.get(3)
    assert v3 is not None
    bad3 = sign_charter(v3, [world.keys["A"]])
    with pytest.raises(CharterRejected) as e:
        CharterChain.from_raws([*raws[:2], bad3, *raws[3:]], anchor=world.chain.anchor)
    assert e.value.reason == "quorum_not_met"
    assert "after version 2" in e.value.message
    # a chain from another genesis is refused at the anchor
    with pytest.raises(CharterRejected):
        CharterChain.from_raws(raws, anchor=codec.obj_hash(b"another"))


def test_decode_charter_refuses_garbage() -> None:
    for junk in (b"", b"\xa0", cbor2.dumps(cbor2.CBORTag(98, [b"\xa0", {}, b"x", []]))):
        with pytest.raises(CharterRejected):
            decode_charter(junk)
