"""Query benchmark: in-process checks/s and HTTP batched items/s, beside baselines.

Loads N live indicators into a real node store (published through the feed,
1000 ops per entry), then measures, in the same run:

- in-process, already-canonical values: the Bloom batch path alone, and the
  full verdict path (tokens for every live epoch, Bloom, SQLite confirmation
  of positives, aggregation) — half the queried values present, half absent;
- canonicalisation per kind, timed apart;
- HTTP: POST /v1/query batches of 10 000 over loopback, server and client in
  this one process (bench_http.py measures a served node from another process);
- baselines: a Python ``set`` of the tokens, SQLite alone (primary-key lookups
  of the same tokens), and Redis: a private ``redis-server`` (unix socket, no
  persistence) holding the live tokens (hex strings), asked SMISMEMBER with the
  same 10 000 tokens a command by redis-py with the hiredis parser, pipelined
  (skipped, and said so, without ``redis-server``, redis-py or hiredis;
  bench_http also drives it with ``redis-benchmark``, the C client).

    python bench/bench_query.py [--n 200000] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from benchlib import PrivateRedis, build_node, figure, print_figures, rate, redis_py_smismember

from contracts.indicators import canonical
from node.localnet import free_port

T0 = 1_700_000_000_000
BATCH = 10_000
REDIS_LABEL = f"SMISMEMBER {BATCH:,} a command, hiredis"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000, help="live indicators loaded")
    ap.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = ap.parse_args()
    s = args.seconds
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        core, present, absent = build_node(Path(tmp) / "node", args.n, T0)
        load_s = time.perf_counter() - t
        from node.core import Node

        assert isinstance(core, Node)
        tk = core.epoch_keys.tokenizer(1)
        values = rng.sample(present, BATCH // 2) + rng.sample(absent, BATCH // 2)
        rng.shuffle(values)
        items = [{"kind": "phone", "value": v} for v in values]
        toks = tk.tokens(("phone", v) for v in values)
        all_toks = set(tk.tokens(("phone", v) for v in present))

        r_set = rate(lambda: len([x in all_toks for x in toks]), s)
        conn = sqlite3.connect(Path(tmp) / "node" / "riskmesh.db")

        def sqlite_alone() -> int:
            cur = conn.cursor()
            for x in toks:
                cur.execute("SELECT 1 FROM indicators WHERE tok = ?", (x,)).fetchone()
            return len(toks)

        r_sql = rate(sqlite_alone, s)
        r_bloom = rate(lambda: len(core.index.contains_many(toks)), s)
        r_tok = rate(lambda: len(tk.tokens(("phone", v) for v in values)), s)
        r_full = rate(lambda: len(core.query(items, T0, canonical_input=True)), s)
        clean = [{"kind": "phone", "value": v} for v in rng.sample(absent, BATCH)]
        r_clean = rate(lambda: len(core.query(clean, T0, canonical_input=True)), s)
        r_full_canon = rate(lambda: len(core.query(items, T0)), s)
        results = core.query(items, T0, canonical_input=True)
        matches = sum(1 for r in results if r["match"])
        assert matches == BATCH // 2, matches

        canon_rates = {}
        samples = {
            "phone": "+86 138 0013 8000",
            "email": " Alice.Smith@Example.COM ",
            "bank_card": "4111 1111 1111 1111",
            "id_number": "CN:11010519491231002X",
            "merchant": "uscc:91350100M000100Y43",
            "device": "imei:49-015420-323751-8",
            "account": "iban:GB82 WEST 1234 5698 7654 32",
            "ip": "2001:DB8::0:1",
        }
        for kind, v in samples.items():
            canon_rates[kind] = rate(
                lambda kind=kind, v=v: sum(1 for _ in range(2000) if canonical(kind, v)), s / 4
            )

        http = asyncio.run(http_rate(core, items, s))
        redis = redis_rate(Path(tmp), sorted(all_toks), toks, s)
        # the base file's filter: the index's part that grows with the live count
        base = core.index.base
        bpi = base.memory_bytes() / max(1, base.count) if base is not None else float("nan")
        own = core.index.own_memory_bytes()

    print(
        f"# bench_query on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores; {args.n:,} live indicators "
        f"(loaded in {load_s:.1f} s), batches of {BATCH:,}, half present"
    )
    print(f"baseline  python set membership        {r_set:>14,.0f} checks/s")
    print(f"baseline  SQLite alone (PK lookups)    {r_sql:>14,.0f} checks/s")
    if isinstance(redis, str):
        print(f"baseline  Redis SMISMEMBER (hiredis)   skipped: {redis}")
    else:
        print(
            f"baseline  Redis SMISMEMBER (hiredis) {redis:>14,.0f} checks/s "
            f"({BATCH:,} a command, pipelined)"
        )
    print(
        f"bloom     batch path (contains_many)   {r_bloom:>14,.0f} checks/s "
        f"({r_bloom / r_set:.2f}x set)"
    )
    print(f"tokens    keyed BLAKE2b per value      {r_tok:>14,.0f} tokens/s")
    print(
        f"verdict   full path, canonical input   {r_full:>14,.0f} checks/s "
        f"({r_full / r_set:.2f}x set, {r_full / r_sql:.1f}x SQLite)  budget >= 1,000,000"
    )
    print(
        f"verdict   full path, all absent        {r_clean:>14,.0f} checks/s "
        f"(clean traffic: no positives to confirm)"
    )
    print(f"verdict   full path, raw phone input   {r_full_canon:>14,.0f} checks/s")
    print(f"http      POST /v1/query batched       {http:>14,.0f} items/s  budget >= 300,000")
    print(
        f"index     bytes per live indicator     {bpi:>14.2f}  budget <= 4 "
        f"(the base file's filter, mapped; {own / 2**20:.1f} MiB of the process's own besides)"
    )
    print("canonicalisation per kind (values/s):")
    for kind, r in canon_rates.items():
        print(f"  {kind:<10} {r:>12,.0f}")

    base = [("Python set of the tokens", r_set), ("SQLite alone, PK lookups", r_sql)]
    base.append(
        (f"Redis {REDIS_LABEL} ({redis})", None)
        if isinstance(redis, str)
        else (f"Redis {REDIS_LABEL}", redis)
    )
    slowest = min(canon_rates, key=canon_rates.__getitem__)
    at = f"{args.n / 1e6:g} M" if args.n >= 1_000_000 else f"{args.n:,}"
    print_figures(
        "bench_query",
        {"n": args.n, "seconds": s, "batch": BATCH},
        [
            figure(
                f"query in-process, canonical input, half present ({at} live)",
                r_full,
                "checks/s",
                baselines=base,
                budget=(">=", 1_000_000),
                note="whole verdict path: tokens, one search of the summary file, verdicts of "
                "the matches from their summaries",
            ),
            figure(
                f"query in-process, canonical input, all absent ({at} live)",
                r_clean,
                "checks/s",
                baselines=base[:1],
                budget=(">=", 1_000_000),
                note="clean traffic: no match to build a verdict for",
            ),
            figure(
                "query in-process, raw phone input (canonicalised)",
                r_full_canon,
                "checks/s",
                baselines=base[:1],
                note="phonenumbers parsing included",
            ),
            figure(
                f"Bloom stage alone (contains_many, {at} live)",
                r_bloom,
                "checks/s",
                baselines=base,
            ),
            figure(
                f"canonicalisation, slowest kind ({slowest})",
                canon_rates[slowest],
                "values/s",
                note=", ".join(f"{k} {r:,.0f}" for k, r in canon_rates.items()),
            ),
            figure(
                "HTTP POST /v1/query batched, server in the client's process",
                http,
                "items/s",
                baselines=[("the same batches in-process, no HTTP", r_full)],
                budget=(">=", 300_000),
                note="one process, one core for both; a served node: bench_http",
            ),
        ],
    )


async def http_rate(core: object, items: list[dict[str, str]], seconds: float) -> float:
    import aiohttp
    from aiohttp import web

    from node.config import load_config
    from node.core import Node
    from node.server import create_app

    assert isinstance(core, Node)
    home = core.store.conn.execute("PRAGMA database_list").fetchone()[2]
    home_dir = Path(home).parent
    config = load_config(home_dir, env={})
    app = create_app(config, node=core, clock=lambda: T0, jobs=False)
    app.on_cleanup.clear()  # the store stays open for the rest of the benchmark
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    token = (home_dir / "api-token").read_text().strip()
    body = {"items": items, "canonical": True}
    url = f"http://127.0.0.1:{port}/v1/query"
    best = 0.0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.post(url, json=body) as r:
            assert r.status == 200
            await r.read()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            async with session.post(url, json=body) as r:
                await r.read()
            best = max(best, len(items) / (time.perf_counter() - t))
    await runner.cleanup()
    return best


def redis_rate(tmp: Path, members: list[bytes], toks: list[bytes], seconds: float) -> float | str:
    """Checks/s of SMISMEMBER with the ``toks`` (one command of BATCH), from redis-py with
    the hiredis parser, pipelined, against a private redis-server holding ``members``
    (as hex strings, as bench_http has them); or why it was skipped."""
    server = PrivateRedis(tmp / "redis")
    why = server.start()
    if why is not None:
        return why
    try:
        server.sadd([m.hex().encode() for m in members])
        got = redis_py_smismember(server, [[t.hex().encode() for t in toks]], seconds)
    finally:
        server.stop()
    if isinstance(got, str):
        return got
    checks, _, found = got
    live = set(members)
    assert found == sum(1 for t in toks if t in live), found
    return checks


if __name__ == "__main__":
    main()
