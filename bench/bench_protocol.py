"""Protocol core benchmark: tokens, entry signing and verification, bytes per op.

Every figure is printed beside a plain ``hashlib.sha256`` baseline measured in
the same run, so the ratio holds on a noisy machine.

    python bench/bench_protocol.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import random

from benchlib import figure, print_figures, rate

from contracts.policy import DAY_MS
from protocol.charter_chain import CharterChain, sign_charter
from protocol.entries import AddOp, build_entry, decode_entry
from protocol.feeds import Feeds
from protocol.governance import genesis, member
from protocol.keys import MemberKey
from protocol.store import MemoryStore
from protocol.tokens import Tokenizer

T0 = 1_700_000_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = ap.parse_args()
    s = args.seconds
    rng = random.Random(1)
    values = [f"+86138{rng.randrange(10**8):08d}" for _ in range(10_000)]
    data = [f"phone\x00{v}".encode() for v in values]

    sha = rate(lambda: sum(1 for d in data if hashlib.sha256(d).digest()), s)
    tk = Tokenizer(1, rng.randbytes(32))
    tok_rate = rate(lambda: len(tk.tokens(("phone", v) for v in values)), s)

    key = MemberKey.from_seed(rng.randbytes(32))
    genesis_raw = sign_charter(genesis("bench", [member(key.id, "a", "", admin=True)], T0), [key])
    toks = tk.tokens(("phone", v) for v in values)

    def ops(n: int) -> list[AddOp]:
        return [
            AddOp(toks[i % len(toks)], "phone", 1, "telecom_fraud", 3, T0 + 30 * DAY_MS)
            for i in range(n)
        ]

    rows = []
    for n_ops in (1, 1000):
        o = ops(n_ops)
        batch = max(1, 2000 // n_ops)
        sign = rate(
            lambda o=o, b=batch: sum(
                1 for i in range(b) if build_entry(key, seq=1, prev=None, ts=T0, cv=1, ops=o)
            ),
            s,
        )
        entries = []
        prev = None
        for i in range(1, 2 * batch + 2):
            e = build_entry(key, seq=i, prev=prev, ts=T0, cv=1, ops=o)
            entries.append(e.raw)
            prev = e.hash

        def verify(entries: list[bytes] = entries, b: int = batch) -> int:
            for raw in entries[:b]:
                decode_entry(raw).verify_signature()
            return b

        def accept(entries: list[bytes] = entries, b: int = batch) -> int:
            feeds = Feeds(MemoryStore(), CharterChain(genesis_raw))
            for raw in entries[:b]:
                assert feeds.offer(raw, T0).status == "accepted"
            return b

        v = rate(verify, s)
        acc = rate(accept, s)
        size = len(entries[0])
        rows.append((n_ops, sign, v, acc, size))

    print(
        f"# bench_protocol on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}"
    )
    print(f"baseline  sha256 of the same inputs      {sha:>14,.0f} hashes/s")
    print(
        f"tokens    keyed BLAKE2b-128              {tok_rate:>14,.0f} tokens/s "
        f"({tok_rate / sha:.2f}x sha256)"
    )
    for n_ops, sign, v, acc, size in rows:
        print(
            f"entry {n_ops:>4}-op  sign (build+sign)       {sign:>14,.1f} entries/s "
            f"= {sign * n_ops:>12,.0f} ops/s"
        )
        print(
            f"entry {n_ops:>4}-op  verify (decode+sig)     {v:>14,.1f} entries/s "
            f"= {v * n_ops:>12,.0f} ops/s"
        )
        print(
            f"entry {n_ops:>4}-op  accept (full validation) {acc:>13,.1f} entries/s "
            f"= {acc * n_ops:>12,.0f} ops/s  (in-memory store)"
        )
        print(f"entry {n_ops:>4}-op  size {size:>8,} bytes = {size / n_ops:,.1f} bytes/op")
    print(f"ratio     1000-op verify ops/s vs sha256 hashes/s: {rows[1][2] * 1000 / sha:.3f}")
    _, sign_k, verify_k, accept_k, size_k = rows[1]
    base = "sha256 of the same inputs"
    print_figures(
        "bench_protocol",
        {"seconds": s},
        [
            figure(
                "tokens (keyed BLAKE2b-128)",
                tok_rate,
                "tokens/s",
                baselines=[(base, sha, "hashes/s")],
            ),
            figure(
                "entry sign, 1000-op entries (stage of publish)",
                sign_k * 1000,
                "ops/s",
                baselines=[(base, sha, "hashes/s")],
                note="no commit, no canonicalisation; whole publish path: bench_publish",
            ),
            figure(
                "entry verify, 1000-op entries (stage of replicate)",
                verify_k * 1000,
                "ops/s",
                baselines=[(base, sha, "hashes/s")],
            ),
            figure(
                "entry accept, 1000-op entries, in-memory store",
                accept_k * 1000,
                "ops/s",
                baselines=[(base, sha, "hashes/s")],
                note="full validation, no SQLite; whole replicate path: bench_publish",
            ),
            figure("entry size, 1000-op entries", size_k / 1000, "bytes/op"),
        ],
    )


if __name__ == "__main__":
    main()
