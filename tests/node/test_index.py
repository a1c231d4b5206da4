"""The in-memory Bloom index of live tokens (node/index.py)."""

from __future__ import annotations

import math
import random
import struct

import pytest
from bloom_filter2 import BloomFilter  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from node.index import (
    MIN_CAPACITY,
    IndexStatistics,
    LiveIndex,
    TokenIndex,
    _Lanes,
    token_probes,
)

TOKENS = st.binary(min_size=16, max_size=16)


def random_tokens(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(16) for _ in range(n)]


# -- no false negatives, and every path agrees --------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    tokens=st.lists(TOKENS, max_size=300),
    capacity=st.integers(min_value=1, max_value=5000),
    one_by_one=st.integers(min_value=0, max_value=300),
)
def test_no_false_negatives(tokens: list[bytes], capacity: int, one_by_one: int) -> None:
    index = TokenIndex(capacity)
    for t in tokens[:one_by_one]:
        index.add(t)
    index.add_many(tokens[one_by_one:])
    assert index.count == len(tokens)
    assert all(t in index for t in tokens)
    assert index.contains_many(tokens) == [True] * len(tokens)
    assert all(t in index.bloom for t in tokens)  # bloom-filter2's own __contains__


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    capacity=st.sampled_from([1, 100, 1024, 5000]),
    present=st.integers(min_value=0, max_value=3000),
    absent=st.integers(min_value=0, max_value=400),
)
def test_contains_many_agrees_with_contains(
    seed: int, capacity: int, present: int, absent: int
) -> None:
    # often overfull, so that plenty of the absent tokens are false positives too
    rng = random.Random(seed)
    stored = random_tokens(rng, present)
    index = TokenIndex(capacity)
    index.add_many(stored)
    query = stored[: absent // 2] + random_tokens(rng, absent)
    rng.shuffle(query)
    expected = [t in index for t in query]
    assert index.contains_many(query) == expected
    assert [t in index.bloom for t in query] == expected


def test_large_batches_agree_with_contains() -> None:
    """Batches past one lane chunk (4096), of an exact chunk, and of an odd tail."""
    rng = random.Random(7)
    stored = random_tokens(rng, 30_000)
    index = TokenIndex.build(stored, 20_000)  # filled past capacity / 2: some false positives
    query = stored[:6000] + random_tokens(rng, 6289)
    rng.shuffle(query)
    expected = [t in index for t in query]
    assert 6000 < sum(expected) < 6100
    assert index.contains_many(query) == expected
    assert index.contains_many(query[:4096]) == expected[:4096]
    assert index.contains_many(query[:49]) == expected[:49]
    assert index.contains_many([]) == []


def test_small_batches_agree_with_contains() -> None:
    rng = random.Random(10)
    index = TokenIndex(1024)
    index.add_many(random_tokens(rng, 2000))  # overfull: most absent tokens pass some probes
    for n in (1, 2, 30, 47, 48, 49):
        query = random_tokens(rng, n)
        assert index.contains_many(query) == [t in index for t in query]


def test_batch_narrowing_to_one_token() -> None:
    rng = random.Random(9)
    index = TokenIndex(1024)
    token = rng.randbytes(16)
    index.add(token)
    batch = random_tokens(rng, 70)
    batch[33] = token
    assert index.contains_many(batch) == [i == 33 for i in range(70)]


def test_eight_byte_lanes_agree() -> None:
    """Filters past 2**31 bits use 8-byte lanes; the arithmetic is the same at any size."""
    rng = random.Random(8)
    stored = random_tokens(rng, 5000)
    index = TokenIndex(4000)
    index.add_many(stored)
    query = stored[:2500] + random_tokens(rng, 2500)
    expected = [t in index for t in query]
    index._lanes = _Lanes(index.num_bits, lane=8)
    assert index.contains_many(query) == expected
    wide = TokenIndex(4000)
    wide._lanes = _Lanes(wide.num_bits, lane=8)
    wide.add_many(stored)
    assert bytes(wide.bloom.backend.array_) == bytes(index.bloom.backend.array_)
    with pytest.raises(ValueError):
        _Lanes(2**40, lane=4)


# -- the probe is ours, and bloom-filter2 uses it -------------------------------------


def test_probe_positions_come_from_the_token() -> None:
    token = bytes.fromhex("00112233445566778899aabbccddeeff")
    index = TokenIndex(1024)
    m, k = index.num_bits, index.num_probes
    assert index.bloom.probe_bitnoer is token_probes
    assert (m, k) == (index.bloom.num_bits_m, index.bloom.num_probes_k) == (14723, 10)

    h1, h2 = struct.unpack("<QQ", token)  # first 8 bytes, last 8 bytes, little-endian
    h2 |= 1
    expected = [(h1 + i * h2) % m for i in range(k)]
    assert (h1, h2) == (0x7766554433221100, 0xFFEEDDCCBBAA9989)
    assert token_probes(index.bloom, token) == expected

    index.add(token)
    backend = index.bloom.backend
    set_bits = [b for b in range(m) if backend.is_set(b)]
    assert set_bits == sorted(set(expected))


def test_library_add_and_ours_set_the_same_bits() -> None:
    rng = random.Random(3)
    tokens = random_tokens(rng, 2000)
    ours = TokenIndex(5000)
    for t in tokens[:100]:
        ours.add(t)
    ours.add_many(tokens[100:])
    theirs = BloomFilter(max_elements=5000, error_rate=0.001, probe_bitnoer=token_probes)
    for t in tokens:
        theirs.add(t)
    assert theirs.num_bits_m == ours.num_bits
    assert list(theirs.backend.array_) == list(ours.bloom.backend.array_)
    # and bloom-filter2's own add on our filter lands where our reads look
    extra = rng.randbytes(16)
    ours.bloom.add(extra)
    assert extra in ours
    assert ours.contains_many([extra] * 60) == [True] * 60


def test_default_probe_is_not_ours() -> None:
    token = bytes(range(16))
    default = BloomFilter(max_elements=1024, error_rate=0.001)
    index = TokenIndex(1024)
    assert list(default.probe_bitnoer(default, token)) != token_probes(index.bloom, token)


# -- accuracy -------------------------------------------------------------------------


def measured_fpr(index: TokenIndex, rng: random.Random, n: int = 200_000) -> float:
    absent = random_tokens(rng, n)
    return sum(index.contains_many(absent)) / n


def test_false_positive_rate_at_half_and_full_capacity() -> None:
    rng = random.Random(2024)
    live = random_tokens(rng, 50_000)
    index = TokenIndex.build(live, len(live))  # capacity 100_000: the normal 2x headroom
    assert index.capacity == 100_000
    assert measured_fpr(index, rng) <= 0.001 * 1.5
    assert index.statistics().expected_fpr < 1e-5

    index.add_many(random_tokens(rng, 50_000))  # now exactly at capacity
    assert not index.needs_rebuild()
    assert index.statistics().expected_fpr == pytest.approx(0.001, rel=0.05)
    # configured 0.1 %; 200_000 samples put the count near 200 +- 14
    fpr = measured_fpr(index, rng)
    assert 0.0005 <= fpr <= 0.002


# -- sizing and filling ---------------------------------------------------------------


def test_needs_rebuild_flips_when_it_fills() -> None:
    rng = random.Random(5)
    index = TokenIndex(1024)
    index.add_many(random_tokens(rng, 1000))
    for t in random_tokens(rng, 24):
        assert not index.needs_rebuild()
        index.add(t)
    assert index.count == index.capacity == 1024
    assert not index.needs_rebuild()
    index.add(rng.randbytes(16))
    assert index.needs_rebuild()
    assert index.count == 1025


def test_build_sizes_from_the_count() -> None:
    rng = random.Random(6)
    assert TokenIndex.build([], 0).capacity == MIN_CAPACITY
    assert TokenIndex.build([], 100).capacity == MIN_CAPACITY

    tokens = random_tokens(rng, 10_000)
    index = TokenIndex.build(iter(tokens), len(tokens))
    assert index.capacity == 20_000
    assert index.count == 10_000
    assert not index.needs_rebuild()
    assert TokenIndex.build([], 10_000, headroom=1.5).capacity == 15_000

    m = math.ceil(-20_000 * math.log(0.001) / math.log(2) ** 2)
    assert index.num_bits == m
    assert index.num_probes == 10
    assert index.memory_bytes() == 4 * math.ceil(m / 32)
    stats = index.statistics()
    assert isinstance(stats, IndexStatistics)
    assert (stats.capacity, stats.count, stats.num_bits, stats.num_probes) == (
        20_000,
        10_000,
        m,
        10,
    )
    assert stats.memory_bytes == index.memory_bytes()
    assert stats.expected_fpr < 0.001
    with pytest.raises(AttributeError):
        stats.count = 0  # type: ignore[misc]

    assert index.error_rate == 0.001
    assert repr(index) == f"TokenIndex(capacity=20000, count=10000, num_bits={m}, num_probes=10)"

    loose = TokenIndex.build([], 10_000, error_rate=0.01)
    assert loose.num_bits < m and loose.num_probes == 7


def test_bit_array_is_packed() -> None:
    index = TokenIndex(100_000)
    array_ = index.bloom.backend.array_
    assert array_.itemsize == 4  # not bloom-filter2's 8-byte "L" per 32 bits
    assert index.memory_bytes() == len(array_) * 4 == 4 * math.ceil(index.num_bits / 32)
    assert index.memory_bytes() / index.capacity < 1.8  # 14.4 bits per token at 0.1 %


@pytest.mark.parametrize(
    "kwargs",
    [{"capacity": 0}, {"capacity": 10, "error_rate": 0.0}, {"capacity": 10, "error_rate": 1.0}],
)
def test_bad_sizes_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TokenIndex(**kwargs)  # type: ignore[arg-type]


def test_bad_build_arguments_refused() -> None:
    with pytest.raises(ValueError):
        TokenIndex.build([], -1)
    with pytest.raises(ValueError):
        TokenIndex.build([], 10, headroom=0.5)


# -- bad tokens -----------------------------------------------------------------------


BAD = [b"", b"x" * 15, b"x" * 17, b"x" * 32, "x" * 16, 16, None]


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_bad_token_refused(bad: object) -> None:
    index = TokenIndex(1024)
    with pytest.raises(ValueError, match="16 bytes"):
        index.add(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="16 bytes"):
        _ = bad in index  # type: ignore[operator]
    with pytest.raises(ValueError, match="16 bytes"):
        index.contains_many([bytes(16), bad])  # type: ignore[list-item]
    good = random_tokens(random.Random(1), 99)
    with pytest.raises(ValueError, match="16 bytes"):
        index.contains_many([*good, bad])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="16 bytes"):
        index.add_many([*good, bad])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="16 bytes"):
        index.bloom.add(bad)
    assert index.count == 0
    assert index.contains_many(good) == [False] * 99  # the refused batch left no bits


def test_lengths_that_sum_right_are_still_refused() -> None:
    index = TokenIndex(1024)
    batch = [bytes(16)] * 60 + [b"x" * 15, b"x" * 17]
    with pytest.raises(ValueError, match="got 15"):
        index.contains_many(batch)


def test_bytearray_tokens_accepted() -> None:
    index = TokenIndex(1024)
    token = bytearray(range(16))
    index.add(token)  # type: ignore[arg-type]
    assert bytes(token) in index
    assert index.contains_many([token] * 50) == [True] * 50  # type: ignore[list-item]


# -- views of a base file's filter, and the live index over them -----------------------


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.lists(TOKENS, max_size=9000),
    others=st.lists(TOKENS, max_size=200),
    capacity=st.integers(min_value=1, max_value=20_000),
)
def test_joined_adds_and_views_answer_as_the_index_itself(
    tokens: list[bytes], others: list[bytes], capacity: int
) -> None:
    """`add_joined` (how a base file's builder fills its filter) sets the bits `add_many`
    sets; a `view` of those bits answers every token as the index does."""
    index = TokenIndex(capacity)
    index.add_many(tokens)
    joined = TokenIndex(capacity)
    joined.add_joined(b"".join(tokens))
    assert bytes(joined.bit_bytes()) == bytes(index.bit_bytes())
    view = TokenIndex.view(
        bytes(index.bit_bytes()),
        num_bits=index.num_bits,
        num_probes=index.num_probes,
        capacity=index.capacity,
        count=index.count,
    )
    asked = tokens + others
    assert view.contains_many(asked) == index.contains_many(asked)
    assert [t in view for t in asked[:50]] == [t in index for t in asked[:50]]
    assert view.statistics() == index.statistics()


def test_a_view_refuses_adds_and_a_wrong_size() -> None:
    index = TokenIndex(5000)
    bits = bytes(index.bit_bytes())
    view = TokenIndex.view(
        bits, num_bits=index.num_bits, num_probes=index.num_probes, capacity=5000, count=0
    )
    for add in (view.add, lambda t: view.add_many([t]), view.add_joined):
        with pytest.raises(ValueError, match="read-only"):
            add(bytes(16))
    with pytest.raises(ValueError, match="not that of an index"):
        TokenIndex.view(bits[:-4], num_bits=index.num_bits, num_probes=7, capacity=5000, count=0)
    with pytest.raises(ValueError, match="multiple of 16"):
        TokenIndex(5000).add_joined(bytes(17))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["add", "mark", "base"]), st.integers(1, 40)), max_size=30)
)
def test_a_live_index_never_loses_a_token_across_marks_and_bases(
    steps: list[tuple[str, int]],
) -> None:
    """Adds, marks (a base file starts being built) and switches to the base of a mark
    (bases arrive in the order of their marks; one may be skipped): every token added
    is in the index; the filters a base covers are dropped."""
    rng = random.Random(len(steps))
    live = LiveIndex(since_capacity=64)
    added: list[bytes] = []
    marks: list[tuple[int, int]] = []  # (seq, tokens added before the mark)
    seq = 0
    for what, n in steps:
        if what == "add":
            toks = random_tokens(rng, n)
            live.add_many(toks) if n % 2 else [live.add(t) for t in toks]
            added += toks
            seq += 1
        elif what == "mark":
            live.mark(seq)
            marks.append((seq, len(added)))
        elif marks:
            # bases arrive in the order their builds started (one build at a time)
            mark, upto = marks[n % len(marks)]
            marks = [m for m in marks if m[0] > mark]
            # the builder reads the store after the mark: it may hold later adds too
            held = added[: rng.randint(upto, len(added))]
            base = TokenIndex.build(held, len(held), headroom=1.0)
            live.set_base(base, mark)
            assert all(m > mark for m, _ in live.older)
        assert live.contains_many(added) == [True] * len(added)
        assert all(t in live for t in added[-5:])
    stats = live.statistics()
    assert stats.count == live.count >= live.recent.count
    assert live.own_memory_bytes() <= live.memory_bytes() == stats.memory_bytes
