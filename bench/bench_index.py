"""Bloom index benchmark: membership checks/s and bytes per live indicator.

Loads N random 16-byte tokens (what keyed BLAKE2b tokens look like to the
filter; default 1,000,000) and asks about N more, half present and half
absent, in batches of 10,000. Every figure is printed beside a plain Python
``set`` of the same tokens, measured in the same run, so the ratio holds on a
noisy machine.

Memory is reported two ways: the bit array's size (``memory_bytes()``, the
figure held to the budget) and, as a cross-check, how much the process's
resident set grew across the build (the bit array plus the batch path's lane
constants, about 0.5 MB whatever N; tracemalloc would say the same more
exactly but makes the build ten times slower).

bloom-filter2's own default probe costs about 10 µs a token to build, so that
comparison filter is only built when N <= ``--lib-max`` (default 2,000,000).

    python bench/bench_index.py [--tokens 1000000] [--repeats 3] [--lib-max 2000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from array import array
from collections.abc import Callable, Sequence

from benchlib import figure, print_figures
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


def rss_bytes() -> int:
    """This process's resident set size, from /proc (0 where there is no /proc)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def batched(tokens: Sequence[bytes]) -> list[Sequence[bytes]]:
    return [tokens[i : i + BATCH] for i in range(0, len(tokens), BATCH)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=1_000_000, help="live tokens loaded")
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (best is kept)")
    ap.add_argument(
        "--lib-max",
        type=int,
        default=2_000_000,
        help="largest N for which bloom-filter2's default-probe filter is also built",
    )
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

    rss_before = rss_bytes()
    t = time.perf_counter()
    index = TokenIndex.build(live, len(live))
    build_s = time.perf_counter() - t
    rss_growth = rss_bytes() - rss_before
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

    r_default: float | None = None
    default_build_s: float | None = None
    if n <= args.lib_max:
        t = time.perf_counter()
        default = BloomFilter(max_elements=index.capacity, error_rate=index.error_rate)
        for tok in live:
            default.add(tok)
        default_build_s = time.perf_counter() - t
        r_default = best_rate(lambda: [t in default for t in slow_sample], len(slow_sample), 1)

    hits = sum(sum(index.contains_many(b)) for b in batches)
    fpr = (hits - n // 2) / len(absent)
    bpi = index.memory_bytes() / index.count
    # what bloom-filter2's own backend would hold for this filter: array('L') per 32 bits
    lib_bpi = index.bloom.backend.num_words * array("L").itemsize / index.count

    def line(name: str, r: float) -> None:
        print(f"  {name:<52} {r:>12,.0f} checks/s   {r / r_set:6.3f} x set")

    print(f"membership, batches of {BATCH:,}, half present half absent:")
    line("set baseline  [t in s for t in batch]", r_set)
    line("TokenIndex.contains_many", r_many)
    line("TokenIndex.contains_many, all absent", r_many_absent)
    line("TokenIndex per-item `in`", r_in)
    line("bloom-filter2 own `in`, our probe", r_lib_ours)
    if r_default is None:
        print(f"  bloom-filter2 own `in`, its default probe: not built ({n:,} > --lib-max)")
    else:
        line("bloom-filter2 own `in`, its default probe", r_default)
    print(f"  budget >= 1,000,000 checks/s for the whole query path; measured FPR {fpr:.4%}")
    print(
        f"index: capacity {index.capacity:,}, {index.num_bits:,} bits, {index.num_probes} probes,"
        f" {index.memory_bytes():,} bytes"
    )
    print(f"  bytes per live indicator at {n:,}: {bpi:.2f} (budget <= 4)")
    print(
        f"  resident set grew {rss_growth:,} bytes across the build "
        f"({rss_growth / n:.2f} per indicator)"
    )
    print(f"  bloom-filter2's own array('L') for this filter: {lib_bpi:.2f} bytes per indicator")
    lib_build = "not built" if default_build_s is None else f"{default_build_s:.2f} s"
    print(
        f"  build: {build_s:.2f} s ours, {lib_build} bloom-filter2 default probe;"
        f" whole run {time.perf_counter() - started:.0f} s"
    )
    at = f"{n / 1e6:g} M" if n >= 1_000_000 else f"{n:,}"
    set_base = "Python set, same tokens"
    print_figures(
        "bench_index",
        {"tokens": n, "repeats": reps, "batch": BATCH},
        [
            figure(
                f"index RAM per live indicator at {at}",
                bpi,
                "bytes",
                baselines=[("bloom-filter2's own array('L') for the same filter", lib_bpi)],
                budget=("<=", 4.0),
                note=f"the bit array; the process's RSS grew {rss_growth / n:.2f} bytes "
                "per indicator across the build",
            ),
            figure(
                f"Bloom batch path (contains_many) at {at}, half present",
                r_many,
                "checks/s",
                baselines=[(set_base, r_set)],
                note="the Bloom stage alone; the whole query path is in bench_query",
            ),
            figure(
                f"Bloom per-item `in` at {at}",
                r_in,
                "checks/s",
                baselines=[
                    ("bloom-filter2's own `in`, our probe", r_lib_ours),
                    (
                        "bloom-filter2's own `in`, its default probe"
                        + ("" if r_default is not None else " (not built at this N)"),
                        r_default,
                    ),
                ],
            ),
        ],
    )


if __name__ == "__main__":
    main()
