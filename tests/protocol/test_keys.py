from __future__ import annotations

import base64
import copy
import pickle

import nacl.bindings
import nacl.public
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import DecodeError, LocalProtocolError, SignatureError
from protocol.keys import (
    MemberKey,
    check_member_id,
    member_id_text,
    parse_member_id,
    short_id,
    verify_signature,
    x25519_public,
)

# RFC 8032 section 7.1, TEST 1
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
    "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

seeds = st.binary(min_size=32, max_size=32)


def test_rfc8032_test1() -> None:
    key = MemberKey.from_seed(RFC_SEED)
    assert key.id == RFC_PUBLIC
    assert key.seed() == RFC_SEED
    signature = key.sign(b"")
    assert signature == RFC_SIGNATURE
    verify_signature(RFC_PUBLIC, b"", RFC_SIGNATURE)


def test_verify_refuses_bad_signatures() -> None:
    key = MemberKey.from_seed(RFC_SEED)
    other = MemberKey.from_seed(bytes(32))
    sig = key.sign(b"message")
    verify_signature(key.id, b"message", sig)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(key.id, b"messagE", sig)
    with pytest.raises(SignatureError, match=short_id(other.id)):
        verify_signature(other.id, b"message", sig)
    with pytest.raises(SignatureError):
        verify_signature(key.id, b"message", sig[:-1])
    with pytest.raises(SignatureError):
        verify_signature(key.id, b"message", sig + b"\x00")
    with pytest.raises(SignatureError):
        verify_signature(key.id[:31], b"message", sig)
    with pytest.raises(SignatureError):
        verify_signature(key.id, "message", sig)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        verify_signature(bytes(32), b"message", sig)  # small-order point
    for i in range(len(sig) * 8):
        flipped = bytearray(sig)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(SignatureError):
            verify_signature(key.id, b"message", bytes(flipped))


def test_verify_key_cache_is_bounded() -> None:
    from protocol import keys

    message = b"m"
    signer = MemberKey.from_seed(RFC_SEED)
    sig = signer.sign(message)
    for i in range(keys._VERIFY_CACHE_MAX + 10):
        with pytest.raises(SignatureError):
            verify_signature(i.to_bytes(32, "big"), message, sig)
    assert len(keys._verify_keys) <= keys._VERIFY_CACHE_MAX
    verify_signature(signer.id, message, sig)


# --------------------------------------------------------------------------- text form


def test_text_form() -> None:
    text = member_id_text(RFC_PUBLIC)
    assert len(text) == 52
    assert text == base64.b32encode(RFC_PUBLIC).decode().rstrip("=").lower()
    assert parse_member_id(text) == RFC_PUBLIC
    assert short_id(RFC_PUBLIC) == text[:8]


@settings(max_examples=50)
@given(seeds)
def test_text_round_trip(seed: bytes) -> None:
    mid = MemberKey.from_seed(seed).id
    text = member_id_text(mid)
    assert len(text) == 52
    assert text == text.lower() and "=" not in text
    assert parse_member_id(text) == mid


def _last_char_variant(text: str) -> str:
    # The last base32 character carries 1 data bit + 4 padding bits; set a padding bit.
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    value = alphabet.index(text[-1])
    return text[:-1] + alphabet[value ^ 0b00001]


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("", "52 characters"),
        ("a" * 51, "52 characters"),
        ("a" * 53, "52 characters"),
        (member_id_text(RFC_PUBLIC) + "====", "52 characters"),
        (member_id_text(RFC_PUBLIC).upper(), "lowercase base32"),
        (member_id_text(RFC_PUBLIC)[:-1] + "1", "lowercase base32"),
        (member_id_text(RFC_PUBLIC)[:-1] + "8", "lowercase base32"),
        (member_id_text(RFC_PUBLIC)[:-1] + " ", "lowercase base32"),
        (member_id_text(RFC_PUBLIC)[:-1] + "é", "lowercase base32"),
        (_last_char_variant(member_id_text(RFC_PUBLIC)), "canonical"),
        (member_id_text(bytes(32)), "valid Ed25519"),  # small-order point
    ],
)
def test_bad_text_refused(bad: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        parse_member_id(bad)


def test_parse_refuses_non_text() -> None:
    with pytest.raises(DecodeError):
        parse_member_id(RFC_PUBLIC)  # type: ignore[arg-type]


def test_member_id_text_refuses_wrong_length() -> None:
    with pytest.raises(LocalProtocolError):
        member_id_text(b"\x00" * 31)


def test_check_member_id() -> None:
    assert check_member_id(RFC_PUBLIC) == RFC_PUBLIC
    for bad in [RFC_PUBLIC[:31], RFC_PUBLIC + b"\x00", "x" * 32, None, bytearray(RFC_PUBLIC)]:
        with pytest.raises(DecodeError):
            check_member_id(bad)
    # small-order / non-canonical encodings are not valid identities
    with pytest.raises(DecodeError, match="valid Ed25519"):
        check_member_id(bytes(32))
    with pytest.raises(DecodeError, match="valid Ed25519"):
        check_member_id(b"\x01" + bytes(31))  # the identity point
    with pytest.raises(DecodeError, match="valid Ed25519"):
        check_member_id(b"\xff" * 32)


# --------------------------------------------------------------------------- secrets stay secret


def _secret_forms(seed: bytes) -> list[str]:
    return [
        seed.hex(),
        seed.hex().upper(),
        base64.b32encode(seed).decode().rstrip("=").lower(),
        base64.b32encode(seed).decode().rstrip("="),
        base64.b64encode(seed).decode(),
        repr(seed),
        str(seed),
    ]


def test_repr_and_str_never_show_the_seed() -> None:
    key = MemberKey.from_seed(RFC_SEED)
    assert repr(key) == f"MemberKey({short_id(key.id)})"
    assert str(key) == repr(key)
    shown = repr(key) + str(key) + f"{key}" + f"{key!r}" + repr([key]) + repr({"k": key})
    for form in _secret_forms(RFC_SEED):
        assert form not in shown
    assert not hasattr(key, "__dict__")


def test_pickle_is_refused_and_copies_share() -> None:
    key = MemberKey.from_seed(RFC_SEED)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(key, protocol=protocol)
    with pytest.raises(TypeError):
        pickle.dumps([key])
    assert copy.copy(key) is key
    assert copy.deepcopy({"k": key})["k"] is key


def test_from_seed_errors_do_not_show_the_seed() -> None:
    for bad in [RFC_SEED[:31], RFC_SEED + b"\x00"]:
        with pytest.raises(LocalProtocolError) as info:
            MemberKey.from_seed(bad)
        for form in _secret_forms(bad) + _secret_forms(RFC_SEED):
            assert form not in str(info.value)
    with pytest.raises(LocalProtocolError):
        MemberKey.from_seed(RFC_SEED.hex())  # type: ignore[arg-type]


def test_generate_and_equality() -> None:
    a = MemberKey.generate()
    b = MemberKey.generate()
    assert a.id != b.id
    assert a == MemberKey.from_seed(a.seed())
    assert hash(a) == hash(MemberKey.from_seed(a.seed()))
    assert a != b
    assert len(a.sign(b"x")) == 64
    verify_signature(a.id, b"x", a.sign(b"x"))


def test_sign_refuses_non_bytes() -> None:
    with pytest.raises(LocalProtocolError):
        MemberKey.generate().sign("text")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- X25519


@settings(max_examples=20)
@given(seeds)
def test_x25519_derivation_agrees(seed: bytes) -> None:
    key = MemberKey.from_seed(seed)
    public = x25519_public(key.id)
    assert len(public) == 32
    assert bytes(key.x25519_public()) == public
    assert bytes(key.x25519_private().public_key) == public
    expected = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(
        nacl.signing.SigningKey(seed)._signing_key
    )
    assert bytes(key.x25519_private()) == expected


def test_box_between_members_works_both_ways() -> None:
    alice = MemberKey.from_seed(b"a" * 32)
    bob = MemberKey.from_seed(b"b" * 32)
    to_bob = nacl.public.Box(alice.x25519_private(), nacl.public.PublicKey(x25519_public(bob.id)))
    from_alice = nacl.public.Box(bob.x25519_private(), alice.x25519_public())
    nonce = bytes(24)
    assert from_alice.decrypt(to_bob.encrypt(b"hello bob", nonce)) == b"hello bob"
    assert to_bob.decrypt(from_alice.encrypt(b"hello alice", nonce)) == b"hello alice"
    sealed = nacl.public.SealedBox(bob.x25519_public()).encrypt(b"sealed")
    assert nacl.public.SealedBox(bob.x25519_private()).decrypt(sealed) == b"sealed"


def test_x25519_public_refuses_bad_ids() -> None:
    with pytest.raises(DecodeError):
        x25519_public(b"\x00" * 31)
    with pytest.raises(DecodeError):
        x25519_public(bytes(32))  # small order: libsodium refuses to convert
