"""Bloom index benchmark: membership checks/s and bytes per live indicator.

Loads 1,000,000 random 16-byte tokens (what keyed BLAKE2b tokens look like to
the filter) and asks about 1,000,000 more, half present and half absent, in
batches of 10,000. Every figure is printed beside a plain Python ``set`` of the
same tokens, measured in the same run, so the ratio holds on a noisy machine.

    python bench/bench_index.py [--tokens 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from collections.abc import Callable, Sequence

from bloom_filter2 import BloomFilter  # type: ignore[import-untyped]

from node.index import TokenIndex

BATCH = 10_000


def best_rate(fn: Callable[[], object], units: int, repeats: int) -> float:
    """Units per second of ``fn``, best of ``repeats`` runs."""
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = max(best, units / (time.perf_counter() - t))
    return best


def batched(tokens: Sequence[bytes]) -> list[Sequence[bytes]]:
    return [tokens[i : i + BATCH] for i in range(0, len(tokens), BATCH)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=1_000_000, help="live tokens loaded")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (best is kept)")
    args = ap.parse_args()
    n, reps = args.tokens, args.repeats
    started = time.perf_counter()
    rng = random.Random(1)
    live = [rng.randbytes(16) for _ in range(n)]
    absent = [rng.randbytes(16) for _ in range(n - n // 2)]
    query = live[: n // 2] + absent
    rng.shuffle(query)
    batches = batched(query)
    print(f"python {platform.python_version()} on {platform.machine()}, {n:,} live tokens")

    t = time.perf_counter()
    index = TokenIndex.build(live, len(live))
    build_s = time.perf_counter() - t
    live_set = set(live)

    def many() -> None:
        for b in batches:
            index.contains_many(b)

    def many_absent() -> None:
        for b in batched(absent):
            index.contains_many(b)

    sample = query[: max(BATCH, n // 5)]  # per-item paths are slower: time a fifth
    slow_sample = query[:20_000]

    r_set = best_rate(lambda: [[t in live_set for t in b] for b in batches], len(query), reps)
    r_many = best_rate(many, len(query), reps)
    r_many_absent = best_rate(many_absent, len(absent), reps)
    r_in = best_rate(lambda: [t in index for t in sample], len(sample), reps)
    r_lib_ours = best_rate(lambda: [t in index.bloom for t in slow_sample], len(slow_sample), 1)

    t = time.perf_counter()
    default = BloomFilter(max_elements=index.capacity, error_rate=index.error_rate)
    for tok in live:
        default.add(tok)
    default_build_s = time.perf_counter() - t
    r_default = best_rate(lambda: [t in default for t in slow_sample], len(slow_sample), 1)

    hits = sum(sum(index.contains_many(b)) for b in batches)
    fpr = (hits - n // 2) / len(absent)
    bpi = index.memory_bytes() / index.count
    lib_words = default.backend.array_
    lib_bpi = len(lib_words) * lib_words.itemsize / index.count

    def line(name: str, r: float) -> None:
        print(f"  {name:<52} {r:>12,.0f} checks/s   {r / r_set:6.3f} x set")

    print(f"membership, batches of {BATCH:,}, half present half absent:")
    line("set baseline  [t in s for t in batch]", r_set)
    line("TokenIndex.contains_many", r_many)
    line("TokenIndex.contains_many, all absent", r_many_absent)
    line("TokenIndex per-item `in`", r_in)
    line("bloom-filter2 own `in`, our probe", r_lib_ours)
    line("bloom-filter2 own `in`, its default probe", r_default)
    print(f"  budget >= 1,000,000 checks/s for the whole query path; measured FPR {fpr:.4%}")
    print(
        f"index: capacity {index.capacity:,}, {index.num_bits:,} bits, {index.num_probes} probes,"
        f" {index.memory_bytes():,} bytes"
    )
    print(f"  bytes per live indicator at {n:,}: {bpi:.2f} (budget <= 4)")
    print(f"  bloom-filter2's own array('L') for this filter: {lib_bpi:.2f} bytes per indicator")
    print(
        f"  build: {build_s:.2f} s ours, {default_build_s:.2f} s bloom-filter2 default probe;"
        f" whole run {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
