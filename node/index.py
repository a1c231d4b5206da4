"""The in-memory Bloom index of live tokens (DESIGN §9, §13).

A node answers "is this token live?" in two stages: this index first, the exact
SQLite store second. The index is a `bloom_filter2.BloomFilter` with our own
probe function, sized from the live count with headroom, so almost every absent
token (the common case) is answered without touching the store.

**The probe is ours.** bloom-filter2 lets the caller replace how a key becomes
bit numbers: `BloomFilter(..., probe_bitnoer=f)` calls ``f(filter, key)`` from
its own ``add`` and ``__contains__`` and uses the bit numbers it yields. Tokens
are already uniformly random (keyed BLAKE2b), so `token_probes` takes the bits
straight from the token by Kirsch–Mitzenmacher double hashing::

    h1 = int.from_bytes(token[:8], "little")
    h2 = int.from_bytes(token[8:], "little") | 1          # odd
    position_i = (h1 + i * h2) % num_bits                 # i = 0 .. num_probes - 1

The filter stays a real `BloomFilter`: its own ``add`` and ``in`` work (the
tests check they agree bit for bit with the fast paths here).

**Storage.** bloom-filter2's ``Array_backend`` keeps 32 bits in each element
of an ``array.array("L")``, which is 8 bytes wide on 64-bit Linux and macOS, so
half of the memory is zeros. Right after construction we give the backend a
packed array instead: a ``bytearray`` viewed as 4-byte words (``memoryview``
cast to ``"I"``). The backend's own ``set``/``is_set`` are unchanged (they
index words), the fast paths read the same memory byte by byte (bit p is bit
p & 7 of byte p >> 3 on a little-endian host), and the bit array costs
``num_bits / 8`` bytes, rounded up to a word: about 1.8 bytes per token of
capacity at 0.1 %, 3.6 per live token with the default 2x headroom.

**Fast paths.** ``in`` and `TokenIndex.add` compute the positions from the
token once and index the bit array directly. `TokenIndex.contains_many` and
`TokenIndex.add_many` work up to 4096 tokens at a time with lane arithmetic on
big Python ints (SWAR, see `_Lanes`): every token's h1 mod m and h2 mod m come
out of a few whole-batch multiplications, each probe's positions for the whole
batch out of a few more, and the bytes holding the bits are gathered with one
``operator.itemgetter`` call (``add_many`` ORs them in with one numpy
``bitwise_or.at`` a probe), so the per-bit work runs in C with no per-bit
Python method call. Tokens leave the batch once a probe misses (absent tokens
usually miss on the first).

**Threads.** Reads (``in``, ``contains_many``) never block and never see a
torn state: bits only ever go from 0 to 1 and each store is a single element
store under the GIL, so a reader running beside a writer can at worst miss a
token whose ``add`` has not finished. Writers (``add``, ``add_many``) must be
serialised by the caller (two concurrent read-modify-writes of one word can
lose a bit). A rebuild never mutates a live index: build a new one with
`TokenIndex.build` (in any thread), add whatever became live while it was being
built, then swap the reference the readers use (a single attribute store).
Readers still holding the old index finish on it; it is dropped with its last
reference.
"""

from __future__ import annotations

import array
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, islice
from operator import index as as_index
from operator import itemgetter, not_
from typing import Any, Final, Literal

import numpy as np
from bloom_filter2 import BloomFilter  # type: ignore[import-untyped]

from protocol.tokens import TOKEN_BYTES

__all__ = [
    "MIN_CAPACITY",
    "SINCE_CAPACITY",
    "IndexStatistics",
    "LiveIndex",
    "TokenIndex",
    "token_probes",
]

MIN_CAPACITY: Final = 1024
"""`TokenIndex.build` never sizes an index for fewer tokens than this."""

_M64: Final = (1 << 64) - 1
_CHUNK: Final = 4096
"""Tokens per lane batch: large enough to amortise the per-batch Python work."""
_SCALAR_BELOW: Final = 48
"""Batches smaller than this go token by token (the lane set-up costs more)."""
_LITTLE: Final = sys.byteorder == "little"
"""The byte view of the word array (bit p in byte p >> 3) holds on little-endian hosts."""

_LaneCode = Literal["I", "Q"]
_LANE_CODE: Final[dict[int, _LaneCode]] = {4: "I", 8: "Q"}
assert array.array("I").itemsize == 4 and array.array("Q").itemsize == 8
_BIT_OF_BYTE: Final = bytes(1 << (v & 7) for v in range(256))
"""Low byte of a bit position -> the mask of that bit within its byte."""
_IS_ZERO: Final = bytes([1]) + bytes(255)
"""Translation table: 0 -> 1, anything else -> 0."""


_TOKEN_TYPES: Final = (bytes, bytearray)


def _bad_token(token: object) -> ValueError:
    if isinstance(token, _TOKEN_TYPES):
        return ValueError(f"a token is {TOKEN_BYTES} bytes, got {len(token)}")
    return ValueError(f"a token is {TOKEN_BYTES} bytes (bytes), got {type(token).__name__}")


def _checked(token: bytes) -> bytes:
    if not isinstance(token, _TOKEN_TYPES) or len(token) != TOKEN_BYTES:
        raise _bad_token(token)
    return token


def _joined(tokens: Sequence[bytes]) -> bytes:
    """All the tokens back to back, or `ValueError` naming the first bad one."""
    try:
        joined = b"".join(tokens)
        # every len() >= 16 and a total of exactly 16 per token: all are 16 bytes
        # (a buffer's len() never exceeds its byte length)
        if len(joined) == TOKEN_BYTES * len(tokens) and min(map(len, tokens)) == TOKEN_BYTES:
            return joined
    except TypeError:
        pass
    for t in tokens:
        if not isinstance(t, _TOKEN_TYPES) or len(t) != TOKEN_BYTES:
            raise _bad_token(t)
    raise ValueError(f"tokens must be {TOKEN_BYTES}-byte bytes objects")  # pragma: no cover


def token_probes(bloom: Any, key: bytes) -> list[int]:
    """Bit numbers of ``key`` in ``bloom``: bloom-filter2's ``probe_bitnoer`` hook.

    Kirsch–Mitzenmacher double hashing on the token's own bits (see the module
    docstring); ``bloom`` supplies ``num_bits_m`` and ``num_probes_k``.
    """
    x = int.from_bytes(_checked(key), "little")
    m: int = bloom.num_bits_m
    h1 = x & _M64
    h2 = (x >> 64) | 1
    return [(h1 + i * h2) % m for i in range(bloom.num_probes_k)]


@dataclass(frozen=True, slots=True)
class IndexStatistics:
    """A snapshot of a `TokenIndex`'s size and expected accuracy."""

    capacity: int
    count: int
    num_bits: int
    num_probes: int
    memory_bytes: int
    expected_fpr: float


class _Lanes:
    """Constants for the lane-parallel probe of one filter size (``m`` bits).

    Stage 1 reads the joined tokens as one little-endian int, so each token is
    a 16-byte lane ``h1 | h2 << 64``; it moves h1 and h2 | 1 into 16-byte lanes
    of their own (h1 lanes low, h2 lanes high) and reduces them mod m: with
    r = floor(2**64 / m), q = (h * r) >> 64 is floor(h / m) or one less (and
    h * r < 2**128 fits the lane), so h - q * m < 2m and one conditional
    subtract finishes. Stage 2 packs the residues into ``lane``-byte lanes
    (values < 2m must fit) and steps each position p to (p + step) mod m the
    same way: p + step >= m exactly when p + step + (2**bitlen(m) - m) has bit
    bitlen(m) set.
    """

    __slots__ = (
        "bm",
        "code",
        "idx_mask",
        "kk",
        "kk16",
        "lane",
        "lo64",
        "odd",
        "ones",
        "ones16",
        "r",
    )

    def __init__(self, m: int, lane: int | None = None) -> None:
        bm = m.bit_length()
        if lane is None:
            lane = 4 if bm + 1 <= 32 else 8
        if lane not in _LANE_CODE or 8 * lane < bm + 1:
            raise ValueError(f"lane of {lane} bytes cannot hold positions < 2 * {m}")
        self.bm = bm
        self.lane = lane
        self.code = _LANE_CODE[lane]
        self.r = (1 << 64) // m
        self.lo64 = _repeat(_M64, 16, 2 * _CHUNK)
        self.ones16 = _repeat(1, 16, 2 * _CHUNK)
        self.odd = _repeat(1, 16, _CHUNK)
        self.kk16 = _repeat((1 << bm) - m, 16, 2 * _CHUNK)
        self.ones = _repeat(1, lane, _CHUNK)
        self.kk = _repeat((1 << bm) - m, lane, _CHUNK)
        self.idx_mask = _repeat((1 << (8 * lane - 3)) - 1, lane, _CHUNK)


@lru_cache(maxsize=4)
def _lanes_for(m: int) -> _Lanes:
    """Shared between indexes of one size (a rebuild at the same capacity reuses them)."""
    return _Lanes(m)


def _repeat(value: int, width: int, n: int) -> int:
    """An int holding ``value`` in each of ``n`` lanes of ``width`` bytes."""
    return int.from_bytes(value.to_bytes(width, "little") * n, "little")


def _compress_lanes(v: int, size: int, keep: bytes, code: _LaneCode) -> int:
    """The lanes of ``v`` (``size`` bytes in all) whose ``keep`` byte is non-zero."""
    kept = array.array(code, compress(memoryview(v.to_bytes(size, "little")).cast(code), keep))
    return int.from_bytes(kept.tobytes(), "little")


class TokenIndex:
    """A Bloom filter of live tokens: may answer a false positive, never a false negative.

    ``capacity`` is the number of tokens at which the false-positive rate
    reaches ``error_rate``; past it the index "fills" (`needs_rebuild`).
    """

    __slots__ = (
        "_bits",
        "_bloom",
        "_capacity",
        "_count",
        "_error_rate",
        "_k",
        "_lanes",
        "_low_mask",
        "_m",
        "_readonly",
        "_shift",
        "_words",
    )

    def __init__(self, capacity: int = MIN_CAPACITY, error_rate: float = 0.001) -> None:
        capacity = as_index(capacity)
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if not 0.0 < error_rate < 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {error_rate}")
        bloom = BloomFilter(
            max_elements=capacity, error_rate=error_rate, probe_bitnoer=token_probes
        )
        backend = bloom.backend
        # Array_backend allocates array("L"): 8 bytes per 32-bit word on LP64. Repack.
        raw = bytearray(4 * backend.num_words)
        words = memoryview(raw).cast("I")
        backend.array_ = words
        self._bloom = bloom
        self._words = words
        self._capacity = capacity
        self._error_rate = float(error_rate)
        self._count = 0
        self._m: int = bloom.num_bits_m
        self._k: int = bloom.num_probes_k
        self._lanes: _Lanes | None = None
        self._readonly = False
        self._bits: Any
        if _LITTLE:
            self._bits, self._shift, self._low_mask = raw, 3, 7
        else:  # pragma: no cover - big-endian hosts take the word path
            self._bits, self._shift, self._low_mask = words, 5, 31

    @classmethod
    def view(
        cls,
        buf: Any,
        *,
        num_bits: int,
        num_probes: int,
        capacity: int,
        count: int,
        error_rate: float = 0.001,
    ) -> TokenIndex:
        """A read-only index over ``buf``, the bit array `bit_bytes` gave, with that
        index's `num_bits`, `num_probes`, `capacity`, `count` and `error_rate` (a base
        file's mapped section: its pages are the file's, shared, and the kernel's to
        evict). It answers as the index it was taken from; `add` and `add_many` refuse."""
        bits = memoryview(buf).cast("B")
        m, k = as_index(num_bits), as_index(num_probes)
        if m < 1 or k < 1 or len(bits) != 4 * -(-m // 32):
            raise ValueError(
                f"a bit array of {len(bits)} bytes is not that of an index of {m} bits"
            )
        index = cls.__new__(cls)
        index._bloom = None
        index._capacity = as_index(capacity)
        index._count = as_index(count)
        index._error_rate = float(error_rate)
        index._m, index._k = m, k
        index._lanes = None
        index._readonly = True
        if _LITTLE:
            index._bits = bits.toreadonly()
            index._words = index._bits.cast("I")
            index._shift, index._low_mask = 3, 7
        else:  # pragma: no cover - big-endian hosts: a native copy of the words
            words = array.array("I", bytes(bits))
            words.byteswap()
            index._words = index._bits = memoryview(words).toreadonly()
            index._shift, index._low_mask = 5, 31
        return index

    def bit_bytes(self) -> memoryview:
        """The bit array (bit p is bit p & 7 of byte p >> 3), for `view` to read back."""
        if _LITTLE:
            return memoryview(self._bits).cast("B")
        words = array.array("I", self._words)  # pragma: no cover - big-endian hosts
        words.byteswap()  # pragma: no cover
        return memoryview(words).cast("B")  # pragma: no cover

    def release(self) -> None:
        """Let go of a view's buffer (its base file is being unmapped): it answers no more."""
        if self._readonly:
            for v in (self._words, self._bits):
                if isinstance(v, memoryview):
                    v.release()

    @classmethod
    def build(
        cls,
        tokens: Iterable[bytes],
        count: int,
        *,
        error_rate: float = 0.001,
        headroom: float = 2.0,
    ) -> TokenIndex:
        """A new index holding ``tokens``, sized for ``count`` live tokens times ``headroom``.

        Pass only the live tokens: expired and retracted ones drop out of the
        index simply by not being passed. The result is a fresh object; see the
        module docstring for swapping it in while readers run.
        """
        count = as_index(count)
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if not headroom >= 1.0:
            raise ValueError(f"headroom must be at least 1, got {headroom}")
        index = cls(max(MIN_CAPACITY, math.ceil(headroom * count)), error_rate)
        index.add_many(tokens)
        return index

    # -- writes ------------------------------------------------------------------

    def add(self, token: bytes) -> None:
        """Add one token (16 bytes). Writers must not run concurrently."""
        self._writable()
        x = int.from_bytes(_checked(token), "little")
        m = self._m
        p = (x & _M64) % m
        step = ((x >> 64) | 1) % m
        words = self._words
        for _ in range(self._k):
            words[p >> 5] |= 1 << (p & 31)
            p = (p + step) % m
        self._count += 1

    def add_many(self, tokens: Iterable[bytes]) -> None:
        """Add tokens in batches. A batch with a bad token is refused whole (`ValueError`)."""
        self._writable()
        it = iter(tokens)
        while chunk := list(islice(it, _CHUNK)):
            joined = _joined(chunk)
            if len(chunk) < _SCALAR_BELOW or not _LITTLE:
                for t in chunk:
                    self.add(t)
                continue
            self._add_joined(joined, len(chunk))

    def add_joined(self, joined: bytes | bytearray | memoryview) -> None:
        """Add the tokens of ``joined``, 16-byte tokens back to back (as a base file's
        builder holds them): the bits `add_many` would set, without a bytes object a token."""
        self._writable()
        view = memoryview(joined).cast("B")
        if len(view) % TOKEN_BYTES:
            raise ValueError(f"joined tokens must be a multiple of {TOKEN_BYTES} bytes")
        step = TOKEN_BYTES * _CHUNK
        for start in range(0, len(view), step):
            chunk = bytes(view[start : start + step])
            n = len(chunk) // TOKEN_BYTES
            if n < _SCALAR_BELOW or not _LITTLE:
                for j in range(n):
                    self.add(chunk[TOKEN_BYTES * j : TOKEN_BYTES * (j + 1)])
            else:
                self._add_joined(chunk, n)

    def _add_joined(self, joined: bytes, n: int) -> None:
        # numpy ORs each probe's bytes into the bit array in one call (a token's
        # bits may share a byte with another's: ``ufunc.at`` applies each in turn)
        bits = np.frombuffer(self._bits, dtype=np.uint8)
        for idx, masks in self._probe_batches(joined, n):
            np.bitwise_or.at(bits, idx, masks)
        self._count += n

    def _writable(self) -> None:
        if self._readonly:
            raise ValueError("this index is a read-only view (a base file's): add to a new one")

    # -- reads -------------------------------------------------------------------

    def __contains__(self, token: bytes) -> bool:
        if not isinstance(token, _TOKEN_TYPES) or len(token) != TOKEN_BYTES:
            raise _bad_token(token)
        x = int.from_bytes(token, "little")
        m = self._m
        p = (x & _M64) % m
        step = ((x >> 64) | 1) % m
        bits, shift, low = self._bits, self._shift, self._low_mask
        for _ in range(self._k):
            if not bits[p >> shift] >> (p & low) & 1:
                return False
            p = (p + step) % m
        return True

    def contains_many(self, tokens: Sequence[bytes]) -> list[bool]:
        """``[t in self for t in tokens]``, a batch at a time."""
        n = len(tokens)
        if n < _SCALAR_BELOW or not _LITTLE:
            return self._contains_each(tokens)
        if n <= _CHUNK:
            return self._scan(_joined(tokens), n)
        out: list[bool] = []
        for start in range(0, n, _CHUNK):
            chunk = tokens[start : start + _CHUNK]
            out += self._scan(_joined(chunk), len(chunk))
        return out

    def _contains_each(self, tokens: Sequence[bytes]) -> list[bool]:
        out: list[bool] = []
        append = out.append
        m, mask64, probes = self._m, _M64, range(1, self._k)
        bits, shift, low = self._bits, self._shift, self._low_mask
        types, size = _TOKEN_TYPES, TOKEN_BYTES
        for token in tokens:
            if not isinstance(token, types) or len(token) != size:
                raise _bad_token(token)
            x = int.from_bytes(token, "little")
            p = (x & mask64) % m
            if not bits[p >> shift] >> (p & low) & 1:
                append(False)
                continue
            step = ((x >> 64) | 1) % m
            for _ in probes:
                p = (p + step) % m
                if not bits[p >> shift] >> (p & low) & 1:
                    append(False)
                    break
            else:
                append(True)
        return out

    # -- lane arithmetic ---------------------------------------------------------

    def _lane_constants(self) -> _Lanes:
        lanes = self._lanes
        if lanes is None:
            lanes = self._lanes = _lanes_for(self._m)
        return lanes

    def _start(self, joined: bytes, n: int) -> tuple[int, int]:
        """Lane ints of (h1 mod m) and ((h2 | 1) mod m) for ``n`` joined tokens."""
        c = self._lane_constants()
        m = self._m
        half = 128 * n
        odd, kk16 = c.odd, c.kk16
        if n != _CHUNK:
            odd &= (1 << half) - 1
            kk16 &= (1 << (2 * half)) - 1
        x = int.from_bytes(joined, "little")
        lo, ones = c.lo64, c.ones16
        y = (x & lo) | (((x >> 64) & lo) | odd) << half
        y -= ((y * c.r >> 64) & lo) * m
        y -= ((y + kk16) >> c.bm & ones) * m
        wide = memoryview(y.to_bytes(32 * n, "little")).cast(c.code)
        y = int.from_bytes(wide[:: 16 // c.lane].tobytes(), "little")
        low = 8 * c.lane * n
        return y & ((1 << low) - 1), y >> low

    def _probe_batches(
        self, joined: bytes, n: int
    ) -> Iterator[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
        """Per probe: the byte index and the bit mask of every token's bit."""
        c = self._lane_constants()
        m, bm, lane, code = self._m, c.bm, c.lane, c.code
        size = n * lane
        kk = c.kk if n == _CHUNK else c.kk & ((1 << (8 * size)) - 1)
        ones, idx_mask = c.ones, c.idx_mask
        p, step = self._start(joined, n)
        for i in range(self._k):
            if i:
                p += step
                p -= ((p + kk) >> bm & ones) * m
            idx = np.frombuffer(((p >> 3) & idx_mask).to_bytes(size, "little"), dtype=code)
            masks = p.to_bytes(size, "little")[::lane].translate(_BIT_OF_BYTE)
            yield idx, np.frombuffer(masks, dtype=np.uint8)

    def _scan(self, joined: bytes, n: int) -> list[bool]:
        """Membership of ``n`` joined tokens, dropping tokens from the batch as they miss."""
        c = self._lane_constants()
        m, k, bm, lane, code = self._m, self._k, c.bm, c.lane, c.code
        bits = self._bits
        ones, idx_mask = c.ones, c.idx_mask
        live = n
        size = n * lane
        kk = c.kk if n == _CHUNK else c.kk & ((1 << (8 * size)) - 1)
        p, step = self._start(joined, n)
        where: list[int] | None = None  # original positions of the live lanes
        fails = 0  # per live token, a non-zero byte once one of its bits is clear
        for i in range(k):
            if i:
                p += step
                p -= ((p + kk) >> bm & ones) * m
            idx = memoryview(((p >> 3) & idx_mask).to_bytes(size, "little")).cast(code)
            got = itemgetter(*idx.tolist())(bits)
            want = int.from_bytes(
                p.to_bytes(size, "little")[::lane].translate(_BIT_OF_BYTE), "little"
            )
            got_int = int.from_bytes(bytes(got) if live > 1 else bytes((got,)), "little")
            fails |= (got_int & want) ^ want
            left = k - 1 - i
            if not left:
                break
            fail_bytes = fails.to_bytes(live, "little")
            alive = fail_bytes.count(0)
            if not alive:
                return [False] * n
            # drop the misses when the probes they would save outweigh the copying
            if 4 * left * (live - alive) >= 9 * live:
                keep = fail_bytes.translate(_IS_ZERO)
                p = _compress_lanes(p, size, keep, code)
                step = _compress_lanes(step, size, keep, code)
                where = list(compress(range(n) if where is None else where, keep))
                live = alive
                size = live * lane
                kk &= (1 << (8 * size)) - 1
                fails = 0
        fail_bytes = fails.to_bytes(live, "little")
        if where is None:
            return list(map(not_, fail_bytes))
        out = [False] * n
        for j in compress(where, fail_bytes.translate(_IS_ZERO)):
            out[j] = True
        return out

    # -- size and state ----------------------------------------------------------

    def needs_rebuild(self) -> bool:
        """True once more tokens were added since the build than it was sized for."""
        return self._count > self._capacity

    @property
    def capacity(self) -> int:
        """Tokens the index was sized for (at ``error_rate``)."""
        return self._capacity

    @property
    def count(self) -> int:
        """Adds since the build (a token added twice counts twice)."""
        return self._count

    @property
    def num_bits(self) -> int:
        return self._m

    @property
    def num_probes(self) -> int:
        return self._k

    @property
    def error_rate(self) -> float:
        """The false-positive rate the index was sized for, at ``capacity`` tokens."""
        return self._error_rate

    @property
    def bloom(self) -> Any:
        """The underlying ``bloom_filter2.BloomFilter`` (its ``add`` and ``in`` use our
        probe); None for a `view`."""
        return self._bloom

    def memory_bytes(self) -> int:
        """Bytes of the bit array."""
        return len(self._words) * self._words.itemsize

    def expected_fpr(self) -> float:
        """(1 - e^(-k n / m))^k for the current count."""
        return (1.0 - math.exp(-self._k * self._count / self._m)) ** self._k

    def fill_ratio(self) -> float:
        """The share of the bit array's bits that are set, counted (a scan of the array)."""
        return int.from_bytes(self._words.tobytes(), "little").bit_count() / self._m

    def measured_fpr(self) -> float:
        """The false-positive rate of the index as it stands, from the bits actually set.

        `expected_fpr` is the textbook (1 - e^(-kn/m))^k, which assumes k
        independent positions. The probe takes them by double hashing,
        position_i = h1 + i*h2 (mod m): with probability 1/m the step h2 is
        0 (mod m) and all k probes read one bit (a false positive with
        probability f, the share of bits set), and a stored token with the
        same step whose start is j steps away shares k - |j| of the positions
        (n/m^2 per j). So::

            fpr = f^k + (f - f^k)/m + n/m^2 * (1 + 2 f/(1 - f))

        with f from `fill_ratio` (a scan of the array: call it for figures, not
        per query). The extra terms matter only for small filters (a few 10^-5
        at `MIN_CAPACITY` tokens), not at production sizes.
        """
        m, k, n = self._m, self._k, self._count
        f = self.fill_ratio()
        return f**k + (f - f**k) / m + n / (m * m) * (1.0 + 2.0 * f / max(1e-9, 1.0 - f))

    def statistics(self) -> IndexStatistics:
        return IndexStatistics(
            capacity=self._capacity,
            count=self._count,
            num_bits=self._m,
            num_probes=self._k,
            memory_bytes=self.memory_bytes(),
            expected_fpr=self.expected_fpr(),
        )

    def __repr__(self) -> str:
        return (
            f"TokenIndex(capacity={self._capacity}, count={self._count}, "
            f"num_bits={self._m}, num_probes={self._k})"
        )


SINCE_CAPACITY: Final = 1 << 20
"""Tokens `LiveIndex`'s filter of recent adds is sized for (1.8 MiB at 0.1 %): more than
a served node adds between two base files (``serve.summary_overlay`` changes start a
new one); once it fills, the node builds a new base file (node/server.py)."""


class LiveIndex:
    """The Bloom index of a node's live tokens: its base file's filter, and filters of
    the tokens added since (DESIGN §9).

    A base file (node/summaries.py) carries a filter of every token it holds, built
    with it and mapped read-only: the bulk of the index costs no memory of the
    process's own (the kernel may evict its pages, as any file's). Tokens added
    after the base was started go into a small filter in memory, ``recent``.

    Generations, as the summaries' overlay has them: when a new base file starts
    being built (:meth:`mark`), ``recent`` joins the older filters and a fresh one
    takes the adds. The new base holds every token added before the mark, so
    switching to it (:meth:`set_base`) drops the older filters whose mark it covers.
    A token is in the index if any filter has it: a false positive is possible
    (0.1 % a filter, about the sum over the filters), a false negative is not.

    Marks happen between units of work (the writer's event loop runs each unit of
    work whole), so a token added before a mark was committed before it too.
    """

    __slots__ = ("base", "error_rate", "older", "recent", "since_capacity")

    def __init__(
        self,
        base: TokenIndex | None = None,
        *,
        error_rate: float = 0.001,
        since_capacity: int = SINCE_CAPACITY,
    ) -> None:
        #: the base file's filter (None: no base file, or an empty one)
        self.base = base
        self.error_rate = error_rate
        self.since_capacity = since_capacity
        #: (mark, filter) of the adds before each mark whose base has not arrived
        self.older: list[tuple[int, TokenIndex]] = []
        #: the adds since the last mark
        self.recent = TokenIndex(since_capacity, error_rate)

    def add(self, token: bytes) -> None:
        self.recent.add(token)

    def add_many(self, tokens: Iterable[bytes]) -> None:
        self.recent.add_many(tokens)

    def mark(self, seq: int) -> None:
        """A base file holding every token added so far is being built (``seq``: the
        summaries' change number it will hold at least)."""
        self.older.append((seq, self.recent))
        self.recent = TokenIndex(self.since_capacity, self.error_rate)

    def set_base(self, base: TokenIndex | None, seq: int) -> None:
        """Switch to a new base file's filter (``seq``: the change number that file
        holds): the older filters it covers are dropped."""
        self.base = base
        self.older = [(mark, f) for mark, f in self.older if mark > seq]

    def _filters(self) -> list[TokenIndex]:
        """Every filter, the newest first."""
        out = [self.recent, *(f for _, f in reversed(self.older))]
        if self.base is not None:
            out.append(self.base)
        return out

    def _asked(self) -> list[TokenIndex]:
        """The filters a lookup asks: the empty ones have nothing to answer."""
        return [f for f in self._filters() if f.count]

    def __contains__(self, token: bytes) -> bool:
        return any(token in f for f in self._asked())

    def contains_many(self, tokens: Sequence[bytes]) -> list[bool]:
        """``[t in self for t in tokens]``: each filter asked for the tokens still missing."""
        filters = self._asked()
        if not filters:
            return [False] * len(tokens)
        out = filters[0].contains_many(tokens)
        for f in filters[1:]:
            missing = [j for j, hit in enumerate(out) if not hit]
            if not missing:
                break
            for j, hit in zip(missing, f.contains_many([tokens[j] for j in missing]), strict=True):
                out[j] = hit
        return out

    def needs_rebuild(self) -> bool:
        """True once the recent adds outgrow their filter (a new base file is due)."""
        return self.recent.needs_rebuild()

    @property
    def count(self) -> int:
        """Tokens the filters were given (the base's, and each add since)."""
        return sum(f.count for f in self._filters())

    @property
    def capacity(self) -> int:
        return sum(f.capacity for f in self._filters())

    def memory_bytes(self) -> int:
        """Bytes of every bit array, the base file's mapped one included."""
        return sum(f.memory_bytes() for f in self._filters())

    def own_memory_bytes(self) -> int:
        """Bytes of the bit arrays in the process's own memory (not the base file's)."""
        return sum(f.memory_bytes() for f in self._filters() if f is not self.base)

    def expected_fpr(self) -> float:
        """The chance an absent token passes some filter: 1 - prod(1 - fpr)."""
        miss = 1.0
        for f in self._filters():
            miss *= 1.0 - f.expected_fpr()
        return 1.0 - miss

    def statistics(self) -> IndexStatistics:
        filters = self._filters()
        return IndexStatistics(
            capacity=self.capacity,
            count=self.count,
            num_bits=sum(f.num_bits for f in filters),
            num_probes=max(f.num_probes for f in filters),
            memory_bytes=self.memory_bytes(),
            expected_fpr=self.expected_fpr(),
        )

    def __repr__(self) -> str:
        return f"LiveIndex(base={self.base!r}, older={len(self.older)}, recent={self.recent!r})"
