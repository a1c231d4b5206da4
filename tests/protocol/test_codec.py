from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import DecodeError, LocalProtocolError
from protocol.codec import DEFAULT_MAX_BYTES, MAX_DEPTH, dumps, loads, obj_hash

ints64 = st.integers(min_value=-(2**64), max_value=2**64 - 1)
scalars = st.one_of(ints64, st.binary(max_size=40), st.text(max_size=20), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
        st.dictionaries(ints64, children, max_size=4),
    ),
    max_leaves=30,
)


def nested(depth: int) -> bytes:
    return b"\x81" * depth + b"\x00"


def refused(data: Any, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        loads(data)


# --------------------------------------------------------------------------- round trip


@given(values)
def test_round_trip(value: Any) -> None:
    encoded = dumps(value)
    assert loads(encoded) == value
    assert dumps(loads(encoded)) == encoded


@given(values)
def test_output_is_cbor2_canonical(value: Any) -> None:
    assert dumps(value) == cbor2.dumps(value, canonical=True)


def test_canonical_output_is_stable() -> None:
    a = {"b": 1, "a": [b"x", "y", None, True, False, -1], "aa": {"z": 0, "c": 2**64 - 1}}
    b = {"aa": {"c": 2**64 - 1, "z": 0}, "a": [b"x", "y", None, True, False, -1], "b": 1}
    assert dumps(a) == dumps(b)
    # length-first key order (RFC 7049 canonical), as cbor2 canonical=True does it
    assert dumps({"b": 1, "a": 2, "aa": 3}).hex() == "a3" + "616102" + "616201" + "62616103"
    assert dumps(1) == b"\x01"
    assert dumps(-(2**64)) == b"\x3b" + b"\xff" * 8
    assert dumps(()) == dumps([]) == b"\x80"


@given(values)
def test_dumps_does_not_change_its_input(value: Any) -> None:
    before = repr(value)
    dumps({"z": value, "a": [value, (value,)], "t": cbor2.CBORTag(18, [value])})
    assert repr(value) == before


def test_unordered_maps_inside_tuples_and_tags() -> None:
    inner = {"bb": 1, "a": {"d": 1, "c": 2}}
    value = (cbor2.CBORTag(98, [inner, (inner,)]), {4: b"", 1: -8, -1: 0, 24: 1})
    expected = cbor2.dumps(value, canonical=True)
    assert dumps(value) == expected
    assert list(inner) == ["bb", "a"]  # the caller's map is not re-ordered
    assert dumps(loads(expected)) == expected


def test_str_and_int_subclasses_encode_as_plain_values() -> None:
    import enum

    class Kind(enum.StrEnum):
        CARD = "card"

    class Level(enum.IntEnum):
        HIGH = 3

    assert dumps({Kind.CARD: Level.HIGH, "a": [Kind.CARD]}) == dumps({"card": 3, "a": ["card"]})


def test_int_keyed_map_round_trip() -> None:
    header = {4: b"k" * 32, 1: -8}
    encoded = dumps(header)
    assert encoded[:3] == b"\xa2\x01\x27"
    assert loads(encoded) == header


def test_cose_tags_round_trip_as_lists() -> None:
    value = {"s": cbor2.CBORTag(18, [b"\xa0", {}, b"p", [1, {"a": [2]}]])}
    encoded = dumps(value)
    decoded = loads(encoded)
    tag = decoded["s"]
    assert isinstance(tag, cbor2.CBORTag)
    assert tag.tag == 18
    assert tag.value == [b"\xa0", {}, b"p", [1, {"a": [2]}]]
    assert type(tag.value) is list and type(tag.value[1]) is dict
    assert type(tag.value[3][1]["a"]) is list
    assert loads(dumps(cbor2.CBORTag(98, []))) == cbor2.CBORTag(98, [])


def test_obj_hash() -> None:
    import hashlib

    data = dumps({"a": 1})
    assert obj_hash(data) == hashlib.blake2b(data, digest_size=32).digest()
    assert len(obj_hash(b"")) == 32


# --------------------------------------------------------------------------- dumps refusals


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (1.0, "float"),
        ([0.5], "float"),
        ({1, 2}, "set"),
        (frozenset(), "frozenset"),
        (datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC), "datetime"),
        (datetime.date(2024, 1, 1), "date"),
        (decimal.Decimal(1), "Decimal"),
        (uuid.UUID(int=0), "UUID"),
        (cbor2.CBORTag(1, 0), "tag 1"),
        (cbor2.CBORTag(2, b"\x01"), "tag 2"),
        ({1: "a", "b": 2}, "mixes"),
        ({b"k": 1}, "not text"),
        ({True: 1}, "not text"),
        ({None: 1}, "not text"),
        (2**64, "range"),
        (-(2**64) - 1, "range"),
        ({2**64: 1}, "range"),
        ({"a": 2**64}, "range"),
        ({"a": -(2**64) - 1}, "range"),
        (cbor2.undefined, "type"),
        (object(), "type"),
    ],
)
def test_dumps_refuses(obj: object, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        dumps(obj)


def test_dumps_refuses_too_deep() -> None:
    ok: Any = 0
    for _ in range(MAX_DEPTH):
        ok = [ok]
    assert loads(dumps(ok)) == ok
    with pytest.raises(LocalProtocolError, match="deeper"):
        dumps([ok])
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(LocalProtocolError, match="deeper"):
        dumps(loop)


# --------------------------------------------------------------------------- loads refusals


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x18\x01", "not canonical"),  # 1 with a 1-byte argument
        (b"\x19\x00\x01", "not canonical"),
        (b"\x58\x01a", "not canonical"),  # short bstr with a long length
        (b"\xa2\x61b\x01\x61a\x02", "not canonical"),  # unsorted text keys
        (b"\xa2\x62aa\x01\x61b\x02", "not canonical"),  # not length-first
        (b"\xa2\x04\x01\x01\x02", "not canonical"),  # unsorted int keys
        (b"\xa2\x61a\x01\x61a\x02", "duplicate map key"),
        (b"\xa2\x01\x01\x01\x02", "duplicate map key"),
        (b"\x9f\x01\xff", "indefinite"),
        (b"\xbf\x61a\x01\xff", "indefinite"),
        (b"\x5f\x41a\xff", "indefinite"),
        (b"\x7f\x61a\xff", "indefinite"),
        (b"\x82\x01", "truncated"),
        (b"\x62a", "truncated"),
        (b"\x1b\x00", "truncated"),
        (b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff", "truncated"),
        (b"\x9b\x7f\xff\xff\xff\xff\xff\xff\xff", "truncated"),
        (b"\x01\x02", "trailing bytes"),
        (b"\x80\x80", "trailing bytes"),
        (b"\xa0\xff", "trailing bytes"),
        (b"\xf9\x3c\x00", "float"),
        (b"\xfa\x3f\x80\x00\x00", "float"),
        (b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00", "float"),
        (b"\x81\xf9\x7e\x00", "float"),  # NaN inside an array
        (b"\xc0\x74" + b"2013-03-21T20:04:00Z", "tag 0 not allowed"),
        (b"\xc1\x1a\x51\x4b\x67\xb0", "tag 1 not allowed"),
        (b"\xc2\x49\x01" + b"\x00" * 8, "tag 2 not allowed"),
        (b"\xc2\x41\x01", "tag 2 not allowed"),  # a small bignum
        (b"\xc3\x49\x01" + b"\x00" * 8, "tag 3 not allowed"),
        (b"\xc4\x82\x21\x19\x6a\xb3", "tag 4 not allowed"),  # decimal fraction
        (b"\xd8\x1c\x81\x01", "tag 28 not allowed"),  # shareable
        (b"\xd8\x1d\x00", "tag 29 not allowed"),  # shared reference
        (b"\xd8\x25\x50" + b"\x00" * 16, "tag 37 not allowed"),  # UUID
        (b"\xd9\x01\x02\x81\x01", "tag 258 not allowed"),  # set
        (b"\xd9\x03\xe8\x01", "tag 1000 not allowed"),
        (b"\xd9\xd9\xf7\x01", "tag 55799 not allowed"),  # self-described CBOR
        (b"\x81\xd8\x63\x80", "tag 99 not allowed"),
        (b"\xa1\x61a\xc1\x00", "tag 1 not allowed"),
        (b"\xf7", "simple value"),  # undefined
        (b"\xf0", "simple value"),
        (b"\xf8\x20", "simple value"),
        (b"\x61\xff", "UTF-8"),
        (b"\xa1\x41k\x01", "not text"),  # bytes key
        (b"\xa1\x80\x01", "not text"),  # array key
        (b"\xa1\xf5\x01", "not text"),  # bool key
        (b"\xa1\xf6\x01", "not text"),  # null key
        (b"\xa2\x01\x02\x61a\x03", "mixes text and integer"),
        (b"", "empty"),
        (nested(MAX_DEPTH + 1), "too deep"),
        (nested(100), "too deep"),
        (b"\xd2" * (MAX_DEPTH + 1) + b"\x00", "too deep"),
        (b"\xa1\x61a" * (MAX_DEPTH + 1) + b"\x00", "too deep"),
    ],
)
def test_loads_refuses(data: bytes, match: str) -> None:
    refused(data, match)


@pytest.mark.parametrize("data", ["\x01", None, 1, [b"\x01"]])
def test_loads_refuses_non_bytes(data: Any) -> None:
    refused(data, "expected bytes")


def test_loads_accepts_bytes_like() -> None:
    assert loads(bytearray(b"\x82\x01\x02")) == [1, 2]  # type: ignore[arg-type]
    assert loads(memoryview(b"\x01")) == 1  # type: ignore[arg-type]


def test_depth_limit_is_inclusive() -> None:
    assert loads(nested(MAX_DEPTH)) is not None
    assert loads(b"\xd2" * MAX_DEPTH + b"\x00") is not None


def test_oversized_checked_before_decoding() -> None:
    # Garbage that would fail decoding: the size check must come first.
    data = b"\xff" * 11
    refused_msg = "too large: 11 bytes > limit 10"
    with pytest.raises(DecodeError, match=refused_msg):
        loads(data, max_bytes=10)
    assert loads(dumps(b"x" * 5), max_bytes=6) == b"x" * 5
    big = dumps(b"\x00" * DEFAULT_MAX_BYTES)
    with pytest.raises(DecodeError, match="too large"):
        loads(big)


def test_64_bit_range_at_the_edges() -> None:
    assert loads(b"\x1b" + b"\xff" * 8) == 2**64 - 1
    assert loads(b"\x3b" + b"\xff" * 8) == -(2**64)


def test_error_messages_do_not_quote_data() -> None:
    secret = "very-secret-value"
    data = b"\xa2" + dumps(secret) + b"\x01" + dumps(secret) + b"\x02"
    with pytest.raises(DecodeError) as info:
        loads(data)
    assert secret not in str(info.value)


# --------------------------------------------------------------------------- properties


@settings(max_examples=60)
@given(values.filter(lambda v: isinstance(v, (list, dict))))
def test_every_proper_prefix_is_refused(value: Any) -> None:
    encoded = dumps(value)
    for end in range(len(encoded)):
        with pytest.raises(DecodeError):
            loads(encoded[:end])


@given(values, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_refused(value: Any, extra: bytes) -> None:
    with pytest.raises(DecodeError):
        loads(dumps(value) + extra)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_decode_error(data: bytes) -> None:
    try:
        value = loads(data)
    except DecodeError:
        return
    assert dumps(value) == data


@settings(max_examples=200)
@given(values, st.data())
def test_mutated_encodings_decode_or_decode_error(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(dumps(value))
    i = data.draw(st.integers(0, len(encoded) - 1))
    encoded[i] = data.draw(st.integers(0, 255))
    try:
        decoded = loads(bytes(encoded))
    except DecodeError:
        return
    assert dumps(decoded) == bytes(encoded)


@pytest.mark.parametrize("ref", [None, "case-1"])
def test_an_add_op_map_is_built_in_canonical_order(ref: str | None) -> None:
    """AddOp.to_map lists its keys in canonical order, so that encoding an entry
    does not copy every op's map to reorder it; the bytes are cbor2's canonical ones."""
    from protocol.codec import _canonical_order
    from protocol.entries import AddOp

    m = AddOp(bytes(16), "device", 1, "device_risk", 3, 2**40, ref).to_map()
    assert _canonical_order(m) is None
    assert dumps(m) == cbor2.dumps(m, canonical=True)
    assert loads(dumps(m)) == m
