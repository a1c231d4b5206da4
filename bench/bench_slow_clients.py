"""Slow clients on the peer port do not stop local queries (issue: hostile peers).

One real node (`riskmesh serve`, founded through the CLI by ``node.localnet``).
First, local single-item queries alone (the baseline, same run); then the same
queries while ``--slow`` connections (1 100 by default, above the common default
limit of 1 024 open files) hold the peer port, each having sent only part of a
request — half of them a partial head, half a whole head and a partial body —
and trickling a byte now and then. Reported: the local queries' p50 and p99
beside the baseline, how many peer connections the node had closed by the end
(header and body timeouts, connection cap), and how many lines the node logged.

    python bench/bench_slow_clients.py [--slow 1100] [--queries 400]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from benchlib import figure, percentile, print_figures

from node.localnet import LocalNet, LocalNode


def raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def query_latencies(node: LocalNode, n: int) -> list[float]:
    """Single-item GET queries one after another over one keep-alive connection (ms)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", node.api_port)
    out = []
    for i in range(n):
        path = f"/v1/query/device/fp:slow-{i % 50}"
        req = (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {node.token}\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        out.append((time.perf_counter() - t0) * 1000)
        assert head.startswith(b"HTTP/1.1 200"), head[:40]
    writer.close()
    return out


async def hold(port: int, i: int, closed: list[int], stop: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closed.append(i)  # refused at once: counted as closed
        return
    if i % 2:
        writer.write(b"POST /v1/gossip HTTP/1.1\r\nHost: x\r\nContent-Len")
    else:
        writer.write(b"POST /v1/gossip HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\nab")
    try:
        while not stop.is_set():
            await writer.drain()
            try:
                async with asyncio.timeout(1.0):
                    if await reader.read(1024) == b"":
                        closed.append(i)
                        break
            except TimeoutError:
                writer.write(b"x")  # trickle
    except (ConnectionError, OSError):
        closed.append(i)
    finally:
        writer.close()


async def measure(node: LocalNode, slow: int, queries: int) -> dict[str, float]:
    base = sorted(await query_latencies(node, queries))
    stop = asyncio.Event()
    closed: list[int] = []
    holders = [asyncio.create_task(hold(node.peer_port, i, closed, stop)) for i in range(slow)]
    await asyncio.sleep(1.0)  # let them all connect and send their part
    under = sorted(await query_latencies(node, queries))
    # wait (bounded) for the timeouts to close the slow connections
    deadline = time.monotonic() + 60
    while len(closed) < slow and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*holders, return_exceptions=True)
    return {
        "base_p50": percentile(base, 50),
        "base_p99": percentile(base, 99),
        "p50": percentile(under, 50),
        "p99": percentile(under, 99),
        "closed": float(len(closed)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slow", type=int, default=1100)
    ap.add_argument("--queries", type=int, default=400)
    args = ap.parse_args()
    raise_nofile(args.slow + 256)
    env = {"RISKMESH_HTTP_HEADER_TIMEOUT_S": "10", "RISKMESH_HTTP_BODY_TIMEOUT_S": "10"}
    with tempfile.TemporaryDirectory() as tmp, LocalNet(Path(tmp), ["solo"], env=env) as net:
        net.found("bench", founders=["solo"], admins=["solo"])
        net.start("solo")
        node = net["solo"]
        t0 = time.perf_counter()
        r = asyncio.run(measure(node, args.slow, args.queries))
        took = time.perf_counter() - t0
        log_lines = len(net.log("solo", None).splitlines())
    print(
        f"local GET /v1/query/...   alone           p50 {r['base_p50']:6.2f} ms  "
        f"p99 {r['base_p99']:6.2f} ms"
    )
    print(
        f"local GET /v1/query/...   {args.slow} slow peers  p50 {r['p50']:6.2f} ms  "
        f"p99 {r['p99']:6.2f} ms  (budget p99 < 100 ms)"
    )
    print(
        f"slow peer connections closed by the node: {int(r['closed'])} of {args.slow}; "
        f"node log: {log_lines} lines; {took:.0f} s"
    )
    print_figures(
        "bench_slow_clients",
        {"slow": args.slow, "queries": args.queries},
        [
            figure(
                f"local single-item query p99 while {args.slow} slow connections hold the "
                "peer port",
                r["p99"],
                "ms",
                baselines=[("the same queries with no slow connection", r["base_p99"])],
                budget=("<", 100.0),
                also=("every slow connection closed by the node", r["closed"] >= args.slow),
            )
        ],
    )


if __name__ == "__main__":
    main()
