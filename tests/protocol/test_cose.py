from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import DecodeError, LocalProtocolError, SignatureError
from protocol.codec import dumps, loads
from protocol.cose import (
    ALG_EDDSA,
    HDR_ALG,
    HDR_KID,
    TAG_SIGN,
    TAG_SIGN1,
    Signed1,
    SignedMulti,
    add_signature,
    decode_sign1,
    sign1,
    sign_multi,
    verify1,
    verify_multi,
    verify_signed1,
)
from protocol.keys import MemberKey, short_id

ALICE = MemberKey.from_seed(b"\x01" * 32)
BOB = MemberKey.from_seed(b"\x02" * 32)
CAROL = MemberKey.from_seed(b"\x03" * 32)
MALLORY = MemberKey.from_seed(b"\x04" * 32)
KEYS = [ALICE, BOB, CAROL]


def protected_for(key: MemberKey) -> bytes:
    return cbor2.dumps({1: -8, 4: key.id}, canonical=True)


def bit_flips(data: bytes) -> list[bytes]:
    out = []
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        out.append(bytes(flipped))
    return out


def rebuild(data: bytes, change: Callable[[list[Any]], Any]) -> bytes:
    """Decode a COSE object leniently, let ``change`` edit its array, re-encode canonically."""
    tag = cbor2.loads(data)
    value = [list(v) if isinstance(v, tuple) else v for v in tag.value]
    replaced = change(value)
    return cbor2.dumps(
        replaced if replaced is not None else cbor2.CBORTag(tag.tag, value), canonical=True
    )


# --------------------------------------------------------------------------- COSE_Sign1


def test_sign1_round_trip() -> None:
    data = sign1(b"payload", ALICE)
    s = verify1(data)
    assert s == Signed1(
        kid=ALICE.id, payload=b"payload", protected=protected_for(ALICE), signature=s.signature
    )
    assert decode_sign1(data) == s
    verify_signed1(s)
    # from an already decoded tag, e.g. nested in a larger object
    assert verify1(loads(dumps([loads(data)]))[0]) == s
    assert sign1(b"payload", ALICE) == data  # Ed25519 is deterministic


def test_sign1_layout() -> None:
    data = sign1(b"hello", ALICE)
    tag = cbor2.loads(data)
    assert tag.tag == TAG_SIGN1 == 18
    protected, unprotected, payload, signature = tag.value
    assert protected == protected_for(ALICE)
    assert cbor2.loads(protected) == {HDR_ALG: ALG_EDDSA, HDR_KID: ALICE.id}
    assert dict(unprotected) == {}
    assert payload == b"hello"
    assert len(signature) == 64
    assert data == cbor2.dumps(tag, canonical=True)


def test_sign1_sig_structure_by_hand() -> None:
    payload = b"independent check"
    data = sign1(payload, BOB)
    _, _, _, signature = cbor2.loads(data).value
    protected = cbor2.dumps({1: -8, 4: BOB.id}, canonical=True)
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    # RFC 9052 section 4.4 layout: array(4), tstr "Signature1", bstr, bstr h'', bstr
    assert sig_structure.startswith(b"\x84\x6aSignature1\x58")
    nacl.signing.VerifyKey(BOB.id).verify(sig_structure, signature)


@settings(max_examples=25)
@given(st.binary(max_size=300))
def test_sign1_any_payload(payload: bytes) -> None:
    assert verify1(sign1(payload, CAROL)).payload == payload


def test_sign1_every_bit_flip_fails() -> None:
    data = sign1(b"short", ALICE)
    kinds = set()
    for flipped in bit_flips(data):
        with pytest.raises((SignatureError, DecodeError)) as info:
            verify1(flipped)
        kinds.add(type(info.value))
    assert kinds == {SignatureError, DecodeError}


def test_sign1_forged_signature_and_wrong_signer() -> None:
    data = sign1(b"p", ALICE)
    forged = rebuild(data, lambda v: v.__setitem__(3, MALLORY.sign(b"p")))
    with pytest.raises(SignatureError, match=short_id(ALICE.id)):
        verify1(forged)
    assert decode_sign1(forged).kid == ALICE.id  # decode alone does not check
    # kid swapped to Mallory but signature from Alice
    swapped = rebuild(data, lambda v: v.__setitem__(0, protected_for(MALLORY)))
    with pytest.raises(SignatureError):
        verify1(swapped)
    s = decode_sign1(data)
    with pytest.raises(SignatureError):
        verify_signed1(
            Signed1(kid=s.kid, payload=b"q", protected=s.protected, signature=s.signature)
        )


def _header(h: object) -> bytes:
    return cbor2.dumps(h, canonical=True)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda v: cbor2.CBORTag(98, v), "expected CBOR tag 18, got tag 98"),
        (lambda v: cbor2.CBORTag(1000, v), "tag 1000 not allowed"),
        (lambda v: v, "expected CBOR tag 18, got list"),
        (lambda v: cbor2.CBORTag(18, v[:3]), "4 elements"),
        (lambda v: cbor2.CBORTag(18, [*v, b""]), "4 elements"),
        (lambda v: cbor2.CBORTag(18, {"a": 1}), "must be an array"),
        (lambda v: v.__setitem__(0, _header({1: -7, 4: ALICE.id})), "unsupported alg"),
        (lambda v: v.__setitem__(0, _header({1: "EdDSA", 4: ALICE.id})), "unsupported alg"),
        (lambda v: v.__setitem__(0, _header({4: ALICE.id})), "missing alg"),
        (lambda v: v.__setitem__(0, _header({1: -8})), "missing kid"),
        (lambda v: v.__setitem__(0, _header({1: -8, 4: ALICE.id, 3: 0})), "unknown labels"),
        (lambda v: v.__setitem__(0, _header({"alg": -8})), "missing alg"),
        (lambda v: v.__setitem__(0, _header({1: -8, 4: ALICE.id[:31]})), "kid.*32 bytes"),
        (lambda v: v.__setitem__(0, _header({1: -8, 4: bytes(32)})), "kid.*valid Ed25519"),
        (lambda v: v.__setitem__(0, _header([1, -8])), "must be a map"),
        (lambda v: v.__setitem__(0, b""), "protected header: empty"),
        (lambda v: v.__setitem__(0, {1: -8, 4: ALICE.id}), "must be a byte string"),
        (
            lambda v: v.__setitem__(0, b"\xa2\x04\x58\x20" + ALICE.id + b"\x01\x27"),
            "protected header: not canonical",
        ),
        (lambda v: v.__setitem__(1, {4: ALICE.id}), "unprotected header must be an empty map"),
        (lambda v: v.__setitem__(1, []), "unprotected header must be an empty map"),
        (lambda v: v.__setitem__(2, None), "payload must be a byte string"),
        (lambda v: v.__setitem__(2, "text"), "payload must be a byte string"),
        (lambda v: v.__setitem__(3, b"\x00" * 63), "64 bytes"),
        (lambda v: v.__setitem__(3, None), "signature must be a byte string"),
    ],
)
def test_sign1_refused(change: Callable[[list[Any]], Any], match: str) -> None:
    data = rebuild(sign1(b"p", ALICE), change)
    with pytest.raises(DecodeError, match=match):
        decode_sign1(data)
    with pytest.raises(DecodeError, match=match):
        verify1(data)


def test_sign1_refuses_non_canonical_outer_encoding() -> None:
    data = sign1(b"p", ALICE)
    tag = cbor2.loads(data)
    # same content, payload length written with a needless extra byte
    loose = b"\xd2\x84" + cbor2.dumps(tag.value[0]) + b"\xa0\x58\x01p" + cbor2.dumps(tag.value[3])
    with pytest.raises(DecodeError, match="not canonical"):
        verify1(loose)
    with pytest.raises(DecodeError, match="trailing"):
        verify1(data + b"\x00")
    with pytest.raises(DecodeError, match="too large"):
        verify1(data, max_bytes=len(data) - 1)


def test_sign1_refuses_non_bytes_payload() -> None:
    with pytest.raises(LocalProtocolError):
        sign1("text", ALICE)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- COSE_Sign


def test_sign_multi_round_trip_and_canonical_order() -> None:
    data = sign_multi(b"charter", KEYS)
    m = verify_multi(data)
    assert m == SignedMulti(payload=b"charter", signers=tuple(sorted(k.id for k in KEYS)))
    assert sign_multi(b"charter", list(reversed(KEYS))) == data
    assert sign_multi(b"charter", [*KEYS, ALICE, BOB]) == data  # each signer once
    assert verify_multi(loads(data)) == m


def test_sign_multi_layout() -> None:
    data = sign_multi(b"p", [CAROL, ALICE])
    tag = cbor2.loads(data)
    assert tag.tag == TAG_SIGN == 98
    body_protected, unprotected, payload, signatures = tag.value
    assert body_protected == b"\xa0"
    assert dict(unprotected) == {}
    assert payload == b"p"
    kids = [cbor2.loads(s[0])[4] for s in signatures]
    assert kids == sorted([CAROL.id, ALICE.id])
    for s in signatures:
        assert len(s) == 3 and dict(s[1]) == {} and len(s[2]) == 64


def test_sign_multi_sig_structure_by_hand() -> None:
    payload = b"independent check"
    data = sign_multi(payload, KEYS)
    body_protected, _, _, signatures = cbor2.loads(data).value
    for sign_protected, _, signature in signatures:
        kid = cbor2.loads(sign_protected)[4]
        assert sign_protected == cbor2.dumps({1: -8, 4: kid}, canonical=True)
        sig_structure = cbor2.dumps(["Signature", body_protected, sign_protected, b"", payload])
        assert sig_structure.startswith(b"\x85\x69Signature\x41\xa0")
        nacl.signing.VerifyKey(kid).verify(sig_structure, signature)


def test_add_signature() -> None:
    one = sign_multi(b"p", [BOB])
    two = add_signature(one, CAROL)
    three = add_signature(two, ALICE)
    assert three == sign_multi(b"p", KEYS)
    assert add_signature(three, BOB) == three  # idempotent for the same kid
    assert add_signature(add_signature(three, ALICE), ALICE) == three
    assert verify_multi(three).signers == tuple(sorted(k.id for k in KEYS))


def test_add_signature_verifies_existing() -> None:
    data = sign_multi(b"p", [ALICE, BOB])

    def forge(v: list[Any]) -> None:
        sigs = [list(s) for s in v[3]]
        sigs[0][2] = MALLORY.sign(b"whatever")
        v[3] = sigs

    forged = rebuild(data, forge)
    with pytest.raises(SignatureError):
        add_signature(forged, CAROL)


def test_one_forged_signature_names_the_signer() -> None:
    data = sign_multi(b"p", KEYS)
    order = sorted(KEYS, key=lambda k: k.id)

    def forge(v: list[Any]) -> None:
        sigs = [list(s) for s in v[3]]
        sigs[1][2] = MALLORY.sign(b"p")
        v[3] = sigs

    with pytest.raises(SignatureError, match=short_id(order[1].id)):
        verify_multi(rebuild(data, forge))


def test_signature_for_another_payload_fails() -> None:
    a = cbor2.loads(sign_multi(b"a", [ALICE]))
    b = cbor2.loads(sign_multi(b"b", [ALICE]))
    mixed = cbor2.dumps(cbor2.CBORTag(98, [*a.value[:3], b.value[3]]), canonical=True)
    with pytest.raises(SignatureError):
        verify_multi(mixed)


def test_sign1_signature_does_not_work_as_sign_signature() -> None:
    s1 = decode_sign1(sign1(b"p", ALICE))
    data = cbor2.dumps(
        cbor2.CBORTag(98, [b"\xa0", {}, b"p", [[s1.protected, {}, s1.signature]]]), canonical=True
    )
    with pytest.raises(SignatureError):
        verify_multi(data)


def _sigs(change: Callable[[list[list[Any]]], Any]) -> Callable[[list[Any]], None]:
    def edit(v: list[Any]) -> None:
        sigs = [list(s) for s in v[3]]
        result = change(sigs)
        v[3] = sigs if result is None else result

    return edit


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda v: cbor2.CBORTag(18, v), "expected CBOR tag 98, got tag 18"),
        (lambda v: cbor2.CBORTag(98, v[:3]), "4 elements"),
        (lambda v: v.__setitem__(0, b""), "body protected header"),
        (lambda v: v.__setitem__(0, _header({1: -8})), "body protected header"),
        (lambda v: v.__setitem__(1, {1: -8}), "unprotected header must be an empty map"),
        (lambda v: v.__setitem__(2, None), "payload must be a byte string"),
        (lambda v: v.__setitem__(3, []), "no signatures"),
        (lambda v: v.__setitem__(3, {}), "signatures must be an array"),
        (_sigs(lambda s: [*s, s[0]]), "more than once"),
        (_sigs(lambda s: [s[0], s[0]]), "more than once"),
        (_sigs(lambda s: list(reversed(s))), "not sorted"),
        (_sigs(lambda s: [s[1], s[0], s[2]]), "not sorted"),
        (_sigs(lambda s: [s[0][:2], *s[1:]]), "3 elements"),
        (_sigs(lambda s: [b"x", *s[1:]]), "3 elements"),
        (_sigs(lambda s: s[0].__setitem__(0, _header({1: -7, 4: s[0][0][-32:]}))), "alg"),
        (_sigs(lambda s: s[0].__setitem__(0, _header({1: -8}))), "missing kid"),
        (_sigs(lambda s: s[0].__setitem__(1, {"x": 1})), "unprotected"),
        (_sigs(lambda s: s[0].__setitem__(2, b"\x00" * 65)), "64 bytes"),
    ],
)
def test_sign_multi_refused(change: Callable[[list[Any]], Any], match: str) -> None:
    data = rebuild(sign_multi(b"p", KEYS), change)
    with pytest.raises(DecodeError, match=match):
        verify_multi(data)
    with pytest.raises(DecodeError, match=match):
        add_signature(data, MALLORY)


def test_sign_multi_every_bit_flip_fails() -> None:
    data = sign_multi(b"x", [ALICE, BOB])
    kinds = set()
    for flipped in bit_flips(data):
        with pytest.raises((SignatureError, DecodeError)) as info:
            verify_multi(flipped)
        kinds.add(type(info.value))
    assert kinds == {SignatureError, DecodeError}


def test_sign_multi_needs_keys_and_bytes() -> None:
    with pytest.raises(LocalProtocolError):
        sign_multi(b"p", [])
    with pytest.raises(LocalProtocolError):
        sign_multi("p", [ALICE])  # type: ignore[arg-type]


def test_decode_refuses_random_bytes_cleanly() -> None:
    for data in [b"", b"\x00", b"\xd2", b"\xd2\x80", b"\xd8\x62\x84", "str"]:
        with pytest.raises(DecodeError):
            verify1(data)  # type: ignore[arg-type]
        with pytest.raises(DecodeError):
            verify_multi(data)  # type: ignore[arg-type]
