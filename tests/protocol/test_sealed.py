"""The sealed envelope around peer traffic (DESIGN §8): node/envelope.py."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable
from functools import partial
from typing import Any

import cbor2
import nacl.public
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import LocalProtocolError, RemoteProtocolError
from protocol.codec import dumps, loads
from protocol.keys import MemberKey
from protocol.sealed import (
    NONCE_BYTES,
    REASONS,
    EnvelopeError,
    Opener,
    Sealer,
    _refused,
    open_response,
    seal,
    seal_response,
)

T0 = 1_700_000_000_000
SKEW = 30_000
MAX_BYTES = 64 * 1024

SEED_A = bytes([0xA1]) * 32
SEED_B = bytes([0xB2]) * 32
SEED_C = bytes([0xC3]) * 32  # a member that is not party to the exchange
SEED_X = bytes([0x5E]) * 32  # not a member
A = MemberKey.from_seed(SEED_A)
B = MemberKey.from_seed(SEED_B)
C = MemberKey.from_seed(SEED_C)
X = MemberKey.from_seed(SEED_X)
MEMBERS = frozenset({A.id, B.id, C.id})
SEEDS = (SEED_A, SEED_B, SEED_C, SEED_X)

SECRET = b"indicator batch: 6b3f9a token payload"


def counter_rng() -> Callable[[int], bytes]:
    """Deterministic, never-repeating random bytes."""
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


def opener(key: MemberKey = B, **kw: Any) -> Opener:
    args: dict[str, Any] = {
        "is_member": MEMBERS.__contains__,
        "skew_ms": SKEW,
        "max_bytes": MAX_BYTES,
        "random_bytes": counter_rng(),
    }
    args.update(kw)
    return Opener(key, **args)


def refused(reason: str, call: Callable[[], object]) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as info:
        call()
    err = info.value
    assert err.reason == reason, (err.reason, str(err))
    assert reason in REASONS
    assert isinstance(err, RemoteProtocolError)
    assert_no_secrets(str(err))
    assert_no_secrets(repr(err))
    return err


def assert_no_secrets(text: str) -> None:
    lowered = text.lower()
    for secret in (SECRET, *SEEDS):
        assert secret.hex() not in lowered
    assert SECRET.decode() not in text
    for key in (A, B, C, X):
        assert bytes(key.x25519_private()).hex() not in lowered


def edit(body: bytes, **changes: Any) -> bytes:
    value = loads(body)
    for name, new in changes.items():
        if new is None:
            del value[name]
        else:
            value[name] = new
    return dumps(value)


# --------------------------------------------------------------------------- round trips


def test_request_and_response_round_trip() -> None:
    rng = counter_rng()
    body = seal(A, B.id, SECRET, T0, rng)
    assert SECRET not in body
    fields = loads(body)
    assert set(fields) == {"from", "to", "ts", "nonce", "box"}
    assert fields["from"] == A.id and fields["to"] == B.id and fields["ts"] == T0
    assert len(fields["nonce"]) == NONCE_BYTES
    assert fields["nonce"][:8] == T0.to_bytes(8, "big")
    # the box is exactly a PyNaCl Box from A to B under that nonce
    box = nacl.public.Box(B.x25519_private(), A.x25519_public())
    assert box.decrypt(fields["box"], fields["nonce"]) == SECRET

    server = opener()
    sender, plaintext = server.open(body, T0 + 5)
    assert sender == A.id and plaintext == SECRET

    answer = server.seal_response(sender, b"reply", T0 + 6)
    assert set(loads(answer)) == {"ts", "nonce", "box"}
    assert open_response(A, B.id, answer, T0 + 7, SKEW) == b"reply"
    # the module-level function gives the same kind of body
    answer2 = seal_response(B, A.id, b"reply 2", T0 + 6, rng)
    assert open_response(A, B.id, answer2, T0 + 7, SKEW) == b"reply 2"


def test_sealer_round_trip_and_box_cache() -> None:
    client = Sealer(A, random_bytes=counter_rng())
    server = opener()
    for i in range(3):
        sender, plaintext = server.open(client.seal(B.id, b"msg %d" % i, T0 + i), T0 + i)
        assert (sender, plaintext) == (A.id, b"msg %d" % i)
        answer = server.seal_response(sender, b"ok %d" % i, T0 + i)
        assert client.open_response(B.id, answer, T0 + i, SKEW) == b"ok %d" % i
    assert "peers=1" in repr(client)
    assert client.id == A.id and server.id == B.id
    # the opener's sealer shares its key: it can talk to A directly
    assert server.sealer.id == B.id


def test_empty_plaintext_and_bytearray() -> None:
    server = opener()
    rng = counter_rng()
    assert server.open(seal(A, B.id, b"", T0, rng), T0) == (A.id, b"")
    xy = seal(A, B.id, bytearray(b"xy"), T0, rng)  # type: ignore[arg-type]
    assert server.open(xy, T0) == (A.id, b"xy")


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=2048), delta=st.integers(-SKEW, SKEW))
def test_any_plaintext_round_trips(plaintext: bytes, delta: int) -> None:
    server = opener()
    body = seal(A, B.id, plaintext, T0 + delta)
    assert server.open(body, T0) == (A.id, plaintext)
    answer = server.seal_response(A.id, plaintext, T0)
    assert open_response(A, B.id, answer, T0 - delta, SKEW) == plaintext


# --------------------------------------------------------------------------- refusals


def test_too_large() -> None:
    server = opener(max_bytes=1024)
    body = seal(A, B.id, bytes(2000), T0, counter_rng())
    refused("too_large", lambda: server.open(body, T0))
    refused(
        "too_large",
        lambda: open_response(
            A, B.id, seal_response(B, A.id, bytes(2000), T0), T0, SKEW, max_bytes=1024
        ),
    )


def test_decode_refusals() -> None:
    server = opener()
    body = seal(A, B.id, SECRET, T0, counter_rng())
    fields = loads(body)
    bad = [
        body[:-1],  # truncated CBOR
        body + b"\x00",  # trailing bytes
        b"",
        b"\xff",
        dumps([1, 2, 3]),  # not a map
        dumps({**fields, "extra": 1}),  # extra field
        edit(body, box=None),  # missing field
        edit(body, ts=-1),
        edit(body, ts="now"),
        edit(body, ts=True),
        edit(body, nonce=fields["nonce"][:-1]),
        edit(body, box=b"short"),
        edit(body, box="text"),
        edit(body, **{"from": A.id[:-1]}),
        edit(body, to=B.id + b"\x00"),
        dumps({"from": A.id, "to": B.id, "ts": T0, "nonce": fields["nonce"], "box": 1}),
    ]
    for data in bad:
        refused("decode", partial(server.open, data, T0))
    # a non-canonical encoding of a valid envelope is refused too
    noncanonical = cbor2.dumps(dict(sorted(fields.items(), reverse=True)))
    assert noncanonical != body
    refused("decode", lambda: server.open(noncanonical, T0))
    assert server.live_nonces == 0
    # and the genuine body still opens
    assert server.open(body, T0) == (A.id, SECRET)


def test_response_decode_refusals() -> None:
    answer = seal_response(B, A.id, SECRET, T0, counter_rng())
    request = seal(B, A.id, SECRET, T0, counter_rng())
    for data in (answer[:-3], edit(answer, extra=b""), edit(answer, nonce=None), request):
        refused("decode", partial(open_response, A, B.id, data, T0, SKEW))


def test_wrong_recipient() -> None:
    server = opener()
    to_c = seal(A, C.id, SECRET, T0, counter_rng())
    refused("wrong_recipient", lambda: server.open(to_c, T0))
    # rewriting "to" does not help: the box is keyed to C
    refused("bad_box", lambda: server.open(edit(to_c, to=B.id), T0))


def test_not_member() -> None:
    server = opener()
    body = seal(X, B.id, SECRET, T0, counter_rng())
    assert refused("not_member", lambda: server.open(body, T0)).reason
    # a member removed later is refused at once
    members = set(MEMBERS)
    server2 = opener(is_member=members.__contains__)
    assert server2.open(seal(A, B.id, b"1", T0, counter_rng()), T0)[0] == A.id
    members.discard(A.id)
    refused("not_member", lambda: server2.open(seal(A, B.id, b"2", T0 + 1), T0 + 1))


def test_skew() -> None:
    server = opener()
    rng = counter_rng()
    old = seal(A, B.id, SECRET, T0 - SKEW - 1, rng)
    future = seal(A, B.id, SECRET, T0 + SKEW + 1, rng)
    assert refused("skew", lambda: server.open(old, T0)).reason
    refused("skew", lambda: server.open(future, T0))
    # the edges of the window are inside it
    assert server.open(seal(A, B.id, b"e1", T0 - SKEW, rng), T0)[1] == b"e1"
    assert server.open(seal(A, B.id, b"e2", T0 + SKEW, rng), T0)[1] == b"e2"


def test_response_skew() -> None:
    answer = seal_response(B, A.id, SECRET, T0, counter_rng())
    refused("skew", lambda: open_response(A, B.id, answer, T0 + SKEW + 1, SKEW))
    refused("skew", lambda: open_response(A, B.id, answer, T0 - SKEW - 1, SKEW))
    assert open_response(A, B.id, answer, T0 + SKEW, SKEW) == SECRET


def test_nonce_prefix_mismatch() -> None:
    server = opener()
    body = seal(A, B.id, SECRET, T0, counter_rng())
    # a fresh ts on an old box: the nonce no longer starts with it
    refused("bad_nonce", lambda: server.open(edit(body, ts=T0 + 1000), T0 + 1000))
    # and rewriting the nonce prefix too breaks the box
    nonce = loads(body)["nonce"]
    moved = edit(body, ts=T0 + 1000, nonce=(T0 + 1000).to_bytes(8, "big") + nonce[8:])
    refused("bad_box", lambda: server.open(moved, T0 + 1000))
    assert server.live_nonces == 0
    answer = seal_response(B, A.id, SECRET, T0, counter_rng())
    refused("bad_nonce", lambda: open_response(A, B.id, edit(answer, ts=T0 + 1), T0, SKEW))


def test_reflection_is_refused() -> None:
    """A Box between A and B has one key for both directions: the nonce marks which."""
    server = opener()
    request = seal(A, B.id, SECRET, T0, counter_rng())
    fields = loads(request)
    # A's own request bounced back to A as if it were B's response
    as_response = dumps({k: fields[k] for k in ("ts", "nonce", "box")})
    refused("bad_nonce", lambda: open_response(A, B.id, as_response, T0, SKEW))
    # B's response to A replayed to B as if it were a request from A
    answer = loads(server.seal_response(A.id, SECRET, T0))
    as_request = dumps({"from": A.id, "to": B.id, **answer})
    refused("bad_nonce", lambda: server.open(as_request, T0))


def test_replay() -> None:
    server = opener()
    body = seal(A, B.id, SECRET, T0, counter_rng())
    assert server.open(body, T0) == (A.id, SECRET)
    refused("replay", lambda: server.open(body, T0 + 10))
    assert server.live_nonces == 1
    # the same nonce from another sender is a different message
    nonce = loads(body)["nonce"]
    from_c = seal(C, B.id, b"from c", T0, lambda n: nonce[9:])
    assert loads(from_c)["nonce"] == nonce
    assert server.open(from_c, T0) == (C.id, b"from c")


def test_box_from_another_key_claiming_a_member() -> None:
    server = opener()
    # C seals to B but the body claims to be from A
    forged = edit(seal(C, B.id, SECRET, T0, counter_rng()), **{"from": A.id})
    assert refused("bad_box", lambda: server.open(forged, T0)).reason
    # a non-member sealing with its own key but claiming to be A
    forged_x = edit(seal(X, B.id, SECRET, T0, counter_rng()), **{"from": A.id})
    refused("bad_box", lambda: server.open(forged_x, T0))
    # a response from C where B's was expected
    answer = seal_response(C, A.id, SECRET, T0, counter_rng())
    refused("bad_box", lambda: open_response(A, B.id, answer, T0, SKEW))


def test_flipped_ciphertext_byte() -> None:
    server = opener()
    body = seal(A, B.id, SECRET, T0, counter_rng())
    box = bytearray(loads(body)["box"])
    for i in (0, len(box) // 2, len(box) - 1):
        tampered = bytearray(box)
        tampered[i] ^= 0x01
        refused("bad_box", partial(server.open, edit(body, box=bytes(tampered)), T0))
    answer = seal_response(B, A.id, SECRET, T0, counter_rng())
    abox = bytearray(loads(answer)["box"])
    abox[-1] ^= 0x80
    refused("bad_box", lambda: open_response(A, B.id, edit(answer, box=bytes(abox)), T0, SKEW))


def test_forged_box_does_not_poison_the_replay_cache() -> None:
    server = opener()
    genuine = seal(A, B.id, SECRET, T0, counter_rng())
    # an attacker who saw the nonce races the genuine message with garbage under it
    box = bytearray(loads(genuine)["box"])
    box[3] ^= 0xFF
    forged = edit(genuine, box=bytes(box))
    refused("bad_box", lambda: server.open(forged, T0))
    refused("bad_box", lambda: server.open(forged, T0))  # not "replay": nothing recorded
    assert server.live_nonces == 0
    assert server.open(genuine, T0 + 1) == (A.id, SECRET)
    refused("replay", lambda: server.open(genuine, T0 + 2))


def test_nonces_expire_after_the_window() -> None:
    server = opener()
    rng = counter_rng()
    body = seal(A, B.id, SECRET, T0, rng)
    server.open(body, T0)
    refused("replay", lambda: server.open(body, T0 + SKEW))
    assert server.live_nonces == 1
    # later messages keep the cache small: the old nonce is pruned ...
    t1 = T0 + 3 * SKEW
    server.open(seal(A, B.id, b"later", t1, rng), t1)
    assert server.live_nonces == 1
    # ... and its message is then refused for its age, not accepted again
    refused("skew", lambda: server.open(body, t1))
    # even if the clock steps back into the old window
    refused("skew", lambda: server.open(body, T0))


def test_busy_beyond_max_nonces() -> None:
    server = opener(max_nonces=2)
    rng = counter_rng()
    server.open(seal(A, B.id, b"1", T0, rng), T0)
    server.open(seal(A, B.id, b"2", T0, rng), T0)
    third = seal(A, B.id, b"3", T0, rng)
    assert refused("busy", lambda: server.open(third, T0)).reason
    # a replay is still reported as such; the cache frees up as the window moves
    refused("replay", lambda: server.open(seal(A, B.id, b"1", T0, counter_rng()), T0))
    later = T0 + 3 * SKEW
    assert server.open(seal(A, B.id, b"4", later, rng), later)[1] == b"4"


def test_error_messages_hold_no_secrets() -> None:
    """Every refusal above goes through refused(); here the worst cases once more."""
    server = opener()
    body = seal(A, B.id, SECRET, T0, counter_rng())
    errors: list[EnvelopeError] = []
    for data, now in (
        (edit(body, box=loads(body)["box"][:-1] + b"\x00"), T0),
        (edit(body, extra=SECRET), T0),
        (edit(body, ts=T0 + 5), T0),
        (body, T0 + 10 * SKEW),
        (body[: len(body) // 2], T0),
    ):
        with pytest.raises(EnvelopeError) as info:
            server.open(data, now)
        errors.append(info.value)
    for err in errors:
        assert_no_secrets(str(err))
        assert_no_secrets(repr(err.args))
        assert SECRET.hex() not in err.message


def test_reprs_hold_no_keys() -> None:
    server = opener()
    client = Sealer(A)
    server.open(client.seal(B.id, SECRET, T0), T0)
    for obj in (server, client, server.sealer):
        assert_no_secrets(repr(obj))
        assert_no_secrets(str(obj))
    assert repr(server).startswith("Opener(")
    with pytest.raises(TypeError):
        pickle.dumps(server)
    with pytest.raises(TypeError):
        pickle.dumps(client)


def test_local_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        seal(A, b"short", SECRET, T0)
    with pytest.raises(LocalProtocolError):
        seal(A, B.id, "text", T0)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        seal(A, B.id, SECRET, -1)
    with pytest.raises(LocalProtocolError):
        seal(A, B.id, SECRET, T0, lambda n: b"\x00")
    with pytest.raises(LocalProtocolError):
        open_response(A, B.id, b"", T0, -5)
    with pytest.raises(LocalProtocolError):
        Opener(B, is_member=MEMBERS.__contains__, skew_ms=SKEW, max_bytes=0)
    with pytest.raises(LocalProtocolError):
        _refused("no_such_reason", "x")
