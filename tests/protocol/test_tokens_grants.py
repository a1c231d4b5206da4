from __future__ import annotations

import nacl.encoding
import nacl.hash
import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_world import World, next_charter

from contracts.charter import Member
from contracts.errors import LocalProtocolError
from protocol import codec
from protocol.cose import sign1
from protocol.grants import GrantRejected, check_grant, decode_grant, make_grant, open_grant
from protocol.keys import MemberKey
from protocol.tokens import EpochKeys, Tokenizer, token

KEY = bytes(range(32))


@given(kind=st.sampled_from(["phone", "email", "ip"]), value=st.text(max_size=40))
def test_token_is_keyed_blake2b_as_pynacl_computes_it(kind: str, value: str) -> None:
    expected = nacl.hash.blake2b(
        f"{kind}\x00{value}".encode(), digest_size=16, key=KEY, encoder=nacl.encoding.RawEncoder
    )
    assert token(KEY, kind, value) == expected
    assert Tokenizer(1, KEY).token(kind, value) == expected
    assert Tokenizer(1, KEY).tokens([(kind, value)]) == [expected]


def test_same_value_same_epoch_same_token_across_objects() -> None:
    a = EpochKeys({1: bytes(KEY)})
    b = EpochKeys({1: bytes(bytearray(KEY))})
    assert a.tokenizer(1).token("phone", "+8613800138000") == b.tokenizer(1).token(
        "phone", "+8613800138000"
    )


def test_different_epoch_different_token() -> None:
    k = EpochKeys({1: KEY, 2: bytes(32)})
    assert k.tokenizer(1).token("phone", "+8613800138000") != k.tokenizer(2).token(
        "phone", "+8613800138000"
    )


def test_kind_separates_tokens() -> None:
    assert token(KEY, "device", "fp:1") != token(KEY, "account", "fp:1")


def test_keys_never_in_repr() -> None:
    k = EpochKeys({1: KEY})
    for text in (repr(k), str(k), repr(k.tokenizer(1))):
        assert KEY.hex() not in text and "\\x00\\x01" not in text
    with pytest.raises(LocalProtocolError):
        k.add(1, bytes(32))
    with pytest.raises(LocalProtocolError):
        Tokenizer(1, b"short")
    with pytest.raises(LocalProtocolError):
        k.tokenizer(9)


def test_grant_round_trip(world: World) -> None:
    keys = {1: KEY, 2: bytes(32)}
    raw = make_grant(world.keys["A"], world.keys["D"].id, keys, cv=1, ts=5)
    g = decode_grant(raw)
    check_grant(g, world.chain)
    assert (g.issuer, g.to, g.cv) == (world.keys["A"].id, world.keys["D"].id, 1)
    assert open_grant(g, world.keys["D"]) == keys
    assert KEY not in raw  # sealed
    with pytest.raises(GrantRejected):
        open_grant(g, world.keys["B"])  # addressed to D


def test_grant_only_recipient_can_open(world: World) -> None:
    raw = make_grant(world.keys["A"], world.keys["D"].id, {1: KEY}, cv=1, ts=5)
    g = decode_grant(raw)
    # even claiming to be the recipient, another key cannot open the box
    other = MemberKey.generate()
    with pytest.raises(GrantRejected):
        open_grant(
            g.__class__(
                raw=g.raw, hash=g.hash, issuer=g.issuer, to=other.id, cv=g.cv, ts=g.ts, box=g.box
            ),
            other,
        )


def test_grant_by_non_admin_or_to_outsider(world: World) -> None:
    g = decode_grant(make_grant(world.keys["D"], world.keys["B"].id, {1: KEY}, cv=1, ts=5))
    with pytest.raises(GrantRejected, match="not an admin"):
        check_grant(g, world.chain)
    g = decode_grant(make_grant(world.keys["A"], world.keys["X"].id, {1: KEY}, cv=1, ts=5))
    with pytest.raises(GrantRejected, match="recipient"):
        check_grant(g, world.chain)
    g = decode_grant(make_grant(world.keys["A"], world.keys["B"].id, {1: KEY}, cv=9, ts=5))
    with pytest.raises(GrantRejected, match="unknown charter"):
        check_grant(g, world.chain)


def test_grant_after_admin_removed(world: World) -> None:
    members = tuple(
        world.member(n, roles=("publisher", "reader")) if n == "C" else world.member(n)
        for n in "ABCD"
    )
    _, raw = next_charter(world, "AB", members=members)
    world.chain.append(raw)
    g = decode_grant(make_grant(world.keys["C"], world.keys["D"].id, {1: KEY}, cv=2, ts=5))
    with pytest.raises(GrantRejected):
        check_grant(g, world.chain)
    assert isinstance(members[0], Member)


def test_grant_tampered_or_malformed(world: World) -> None:
    raw = bytearray(make_grant(world.keys["A"], world.keys["D"].id, {1: KEY}, cv=1, ts=5))
    raw[-1] ^= 1
    with pytest.raises(GrantRejected):
        decode_grant(bytes(raw))
    bad_payload = sign1(codec.dumps({"v": 1, "to": world.keys["D"].id}), world.keys["A"])
    with pytest.raises(GrantRejected):
        decode_grant(bad_payload)
