"""HTTP benchmark of a served node, driven by ``wrk``: what a member's platforms feel.

Makes a node home (init_home, make_genesis, install_charter_file) holding N
live phone indicators, starts ``riskmesh serve`` for it (``node.localnet.LocalNode``,
default settings: scheduler, gossip service and access log all run) with
``serve.workers`` local-API worker processes (``--workers``, passed as
RISKMESH_SERVE_WORKERS), and drives it with ``wrk``, the C load generator, and
its Lua scripts in ``bench/wrk/`` — never a Python client. wrk and the servers
share this machine's cores (2 here) with each other and with whatever else
runs: the load average is worth reading beside the figures.

1. Batches: POST /v1/query, 10 000 canonical items a request
   (``{"canonical": true, "items": [{"kind": "phone", "value": ...}, ...]}``),
   ``--batch-connections`` requests in flight, for ``--batch-seconds`` each at
   three mixes: all absent, 1 % present, 50 % present. The bench writes a few
   request bodies per mix to files; ``wrk/batch.lua`` formats them once and
   sends them in rotation. Figures: items/s and requests/s, wrk's latency
   percentiles, and the server's CPU per item.
2. Single items: GET /v1/query/phone/{value}, canonical values, 1 % present,
   rotating through a file of 10 000 paths (``wrk/single.lua``):
   a. closed loop, ``--connections`` connections each sending its next request
      when its last is answered, for ``--seconds``: the most requests/s;
   b. paced at each rate of ``--rates`` (5 000 requests/s by default) for
      ``--seconds`` (``wrk/paced.lua``): every connection waits in ``delay()``
      for the next send slot of its wrk thread's schedule (slots threads/rate s
      apart), or sends at once if the slot has passed (the schedule catches up
      as connections come free). Percentiles are wrk's, from each request's
      actual send: a slot that passes while every connection waits for a
      response is sent late, and the wait for a free connection is not counted
      (coordinated omission; wrk2's corrected histogram is not used). So the
      p99 flatters a server that stalls; the achieved rate, held within 2 % of
      the target for the budget to count, shows a schedule that fell behind
      for good. The clock is CLOCK_MONOTONIC via LuaJIT's ffi; wrk's timers
      take whole milliseconds, so sends bunch at millisecond edges — a
      burstier load than a smooth one.
3. Server CPU: utime + stime of every process of the server's tree (the
   parent and all its descendants, from /proc), read while wrk runs (after a
   short ramp, before its end) and divided by the items answered meanwhile.

Baselines in the same run, with the same wrk scripts and request files:

- a bare aiohttp app (``bench/bare_app.py``: uvloop, orjson, SO_REUSEPORT)
  answering the same two routes from a Python ``set`` of the same canonical
  values, with as many worker processes as the node's serve.workers (one if
  this node has no such setting): the floor of aiohttp on this machine;
- Redis: a private ``redis-server`` (unix socket, ``--save "" --appendonly no``)
  holding the node's live tokens (hex strings of the 16-byte tokens, one
  member each), asked SMISMEMBER with the tokens of a 1 %-present batch,
  10 000 members a command, by ``redis-benchmark`` (the C client) and by
  redis-py with the hiredis parser, pipelined from this process. The budget is
  judged against the higher checks/s of the two and the lower CPU per check.

Budgets (DESIGN §13): batches of 10 000 canonical items, 1 % present: items/s
≥ 1.0x Redis SMISMEMBER checks/s, and server CPU per item ≤ 2x Redis's. Single
item, 1 % present: closed-loop requests/s ≥ 0.5x the bare app's; p99 < 2 ms at
5 000 requests/s, with the achieved rate within 2 % of 5 000 and no errors.

    python bench/bench_http.py [--n 200000] [--seconds 5] [--batch-seconds 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    PrivateRedis,
    build_node,
    cpu_used,
    figure,
    print_figures,
    process_name,
    process_tree,
    redis_benchmark_smismember,
    redis_py_smismember,
    tree_cpu_seconds,
)

from node.localnet import LocalNode, NetError, Served, free_port

HERE = Path(__file__).resolve().parent
WRK_DIR = HERE / "wrk"
KIND = "phone"
BATCH = 10_000
BODIES = 4
"""Request bodies per batch mix, sent in rotation."""
MIXES = (("all absent", 0.0), ("1% present", 0.01), ("50% present", 0.5))
BUDGET_MIX = "1% present"
SINGLE_PATHS = 10_000
SINGLE_PRESENT = 0.01
TARGET = 5000
TARGET_SLACK = 0.02
READY_S = 60.0
WORKERS_S = 30.0
REDIS_CLIENTS, REDIS_PIPELINE, REDIS_PY_DEPTH = 2, 4, 4


# -- wrk --------------------------------------------------------------------------------


@dataclass
class WrkResult:
    """One wrk run: its summary, and the server's CPU while it ran."""

    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    server_cpu: dict[int, float]
    """CPU seconds of each server process during the measured window."""
    window_s: float
    client_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def ms(self, key: str) -> float:
        return self.latency_us[key] / 1000

    def items_per_s(self, items: int) -> float | None:
        """Items answered per second; None if no request completed (each took longer
        than the run)."""
        return self.rps * items if self.requests else None

    @property
    def server_cores(self) -> float:
        return sum(self.server_cpu.values()) / self.window_s if self.window_s else 0.0

    @property
    def client_cores(self) -> float:
        return self.client_cpu_s / self.duration_s if self.duration_s else 0.0

    def cpu_us_per(self, items: int) -> float | None:
        """Server CPU µs per item answered (steady state); None if no request completed."""
        return self.server_cores / (self.rps * items) * 1e6 if self.rps else None


def fmt_us(us: float | None) -> str:
    return "n/a" if us is None else f"{us:,.3f}"


def settle(pid: int, idle_cores: float = 0.1, deadline_s: float = 30.0) -> float:
    """Until the server's tree is idle (under ``idle_cores`` for a quarter second), so that
    requests wrk abandoned when it stopped are not counted against the next run; the
    seconds it took."""
    t0 = time.monotonic()
    prev = sum(tree_cpu_seconds(pid).values())
    while time.monotonic() - t0 < deadline_s:
        time.sleep(0.25)
        cur = sum(tree_cpu_seconds(pid).values())
        if cur - prev < idle_cores * 0.25:
            break
        prev = cur
    return time.monotonic() - t0


def wrk_seconds(seconds: float) -> int:
    """wrk takes whole seconds."""
    return max(1, round(seconds))


def run_wrk(
    server_pid: int,
    script: str,
    url: str,
    args: list[str],
    *,
    connections: int,
    threads: int,
    seconds: float,
) -> WrkResult:
    """One wrk run of ``bench/wrk/<script>``; the server tree's CPU read while it runs."""
    secs = wrk_seconds(seconds)
    threads = min(threads, connections)
    argv = [shutil.which("wrk") or "wrk", "-t", str(threads), "-c", str(connections)]
    argv += ["-d", f"{secs}s", "--timeout", "10s", "-s", str(WRK_DIR / script), url, "--", *args]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # the window: after the connections are up and before wrk stops, so that requests
    # abandoned at the end (and their CPU) are not counted
    margin = min(0.5, secs * 0.15)
    time.sleep(margin)
    cpu0, t0 = tree_cpu_seconds(server_pid), time.perf_counter()
    time.sleep(secs - 2 * margin)
    cpu1, t1 = tree_cpu_seconds(server_pid), time.perf_counter()
    out, err = proc.communicate(timeout=secs + 60)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = out.decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(
            f"wrk failed ({proc.returncode}): {' '.join(argv[:12])} ...\n"
            f"{text[-2000:]}{err.decode(errors='replace')[-2000:]}"
        )
    data = json.loads(line[len("WRK_JSON ") :])
    settle(server_pid)
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors=data["errors"],
        latency_us=data["latency_us"],
        server_cpu=cpu_used(cpu0, cpu1),
        window_s=t1 - t0,
        client_cpu_s=(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
    )


# -- the servers ------------------------------------------------------------------------


@dataclass
class Files:
    """What the wrk scripts read, written once and sent to every server alike."""

    token: str
    bodies: dict[str, list[str]]
    expected: dict[str, list[int]]
    """Present values in each body, per mix."""
    paths: str
    present_path: str
    absent_path: str


@dataclass
class ServerResult:
    name: str
    processes: list[tuple[int, str]] = field(default_factory=list)
    listening: int = 0
    batch: dict[str, WrkResult] = field(default_factory=dict)
    closed: WrkResult | None = None
    paced: dict[float, WrkResult] = field(default_factory=dict)


def listening_pids(pids: list[int], port: int) -> list[int]:
    """Those of ``pids`` holding a socket that listens on TCP ``port`` (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in lines:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    holding = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    holding.append(pid)
                    break
            except OSError:
                continue
    return holding


def wait_listening(server: Served, want: int) -> int:
    """Until ``want`` processes of the server's tree listen on its port (all its workers
    up, so that SO_REUSEPORT spreads wrk's connections over all of them); how many do."""
    assert server.proc is not None
    end = time.monotonic() + WORKERS_S
    while True:
        n = len(listening_pids(process_tree(server.proc.pid), server.api_port))
        if n >= want or time.monotonic() > end:
            return n
        time.sleep(0.1)


def http(base: str, token: str, method: str, path: str, body: bytes | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def check_answers(server: Served, files: Files, token: str) -> None:
    """The server answers what the mixes hold, before anything is timed."""
    for mix, bodies in files.bodies.items():
        got = http(server.base, token, "POST", "/v1/query", Path(bodies[0]).read_bytes())
        matches = sum(1 for r in got["results"] if r.get("match"))
        if matches != files.expected[mix][0]:
            raise SystemExit(
                f"{server.name}: a {mix} batch matched {matches} items, "
                f"not the {files.expected[mix][0]} present"
            )
    for path, want in ((files.present_path, True), (files.absent_path, False)):
        got = http(server.base, token, "GET", path)
        if bool(got.get("match")) is not want:
            raise SystemExit(f"{server.name}: GET {path} answered {got!r}")


def measure(
    server: Served, files: Files, workers: int, args: argparse.Namespace, rates: list[float]
) -> ServerResult:
    """Start ``server``, run every wrk load against it, stop it."""
    result = ServerResult(server.name)
    try:
        server.start(READY_S)
    except NetError as e:
        server.stop()
        raise SystemExit(str(e)) from None
    try:
        assert server.proc is not None
        pid = server.proc.pid
        result.listening = wait_listening(server, workers)
        token = Path(files.token).read_text().strip()
        check_answers(server, files, token)
        tree = process_tree(pid)
        result.processes = [(p, process_name(p)) for p in tree]

        def wrk(script: str, extra: list[str], conns: int, seconds: float) -> WrkResult:
            return run_wrk(
                pid,
                script,
                server.base,
                [files.token, *extra],
                connections=conns,
                threads=args.wrk_threads,
                seconds=seconds,
            )

        wrk("single.lua", [files.paths], args.connections, 1)  # warm-up
        for mix, _ in MIXES:
            result.batch[mix] = wrk(
                "batch.lua", files.bodies[mix], args.batch_connections, args.batch_seconds
            )
        result.closed = wrk("single.lua", [files.paths], args.connections, args.seconds)
        threads = min(args.wrk_threads, args.connections)
        for rate in rates:
            extra = [files.paths, f"{rate:g}", str(threads), str(args.connections)]
            result.paced[rate] = wrk("paced.lua", extra, args.connections, args.seconds)
    finally:
        server.stop()
    return result


# -- Redis --------------------------------------------------------------------------------


@dataclass
class RedisResult:
    members: int = 0
    skipped: str = ""
    bench: tuple[float, float, dict[str, float]] | str = "not run"
    py: tuple[float, float, int] | str = "not run"


def measure_redis(
    directory: Path,
    live_tokens: list[bytes],
    batches: list[list[bytes]],
    expected: int,
    seconds: float,
) -> RedisResult:
    out = RedisResult(members=len(live_tokens))
    server = PrivateRedis(directory)
    why = server.start()
    if why is not None:
        out.skipped = why
        return out
    try:
        server.sadd(live_tokens)
        found = sum(server.command(b"SMISMEMBER", b"tokens", *batches[0]))
        if found != expected:
            raise SystemExit(f"Redis found {found} of a batch, not the {expected} present")
        out.bench = redis_benchmark_smismember(
            server, batches[0], seconds, clients=REDIS_CLIENTS, pipeline=REDIS_PIPELINE
        )
        out.py = redis_py_smismember(server, batches, seconds, depth=REDIS_PY_DEPTH)
    finally:
        server.stop()
    return out


# -- the run ------------------------------------------------------------------------------


def node_has_workers() -> bool:
    from node.config import SETTINGS

    return any(s.name == "serve.workers" for s in SETTINGS)


def write_files(
    tmp: Path, home: Path, present: list[str], rng: random.Random
) -> tuple[Files, dict[str, list[list[str]]]]:
    """Request bodies per mix, the single-item paths, the bare app's values file."""
    taken = set(present)

    def absent(k: int) -> list[str]:
        out: list[str] = []
        while len(out) < k:
            v = f"+86139{rng.randrange(10**8):08d}"
            if v not in taken:
                out.append(v)
        return out

    def sample(k: int) -> list[str]:
        return rng.sample(present, k) if k <= len(present) else rng.choices(present, k=k)

    (tmp / "bodies").mkdir()
    bodies: dict[str, list[str]] = {}
    expected: dict[str, list[int]] = {}
    values: dict[str, list[list[str]]] = {}
    for mix, frac in MIXES:
        bodies[mix], expected[mix], values[mix] = [], [], []
        for b in range(BODIES):
            k = round(BATCH * frac)
            batch = sample(k) + absent(BATCH - k)
            rng.shuffle(batch)
            body = {"canonical": True, "items": [{"kind": KIND, "value": v} for v in batch]}
            path = tmp / "bodies" / f"{mix.split()[0].replace('%', 'pc')}-{b}.json"
            path.write_text(json.dumps(body, separators=(",", ":")))
            bodies[mix].append(str(path))
            expected[mix].append(k)
            values[mix].append(batch)
    k = round(SINGLE_PATHS * SINGLE_PRESENT)
    singles = [(v, True) for v in sample(k)] + [(v, False) for v in absent(SINGLE_PATHS - k)]
    rng.shuffle(singles)

    def path_of(v: str) -> str:
        return f"/v1/query/{KIND}/{urllib.parse.quote(v, safe='')}"

    paths = tmp / "paths.txt"
    paths.write_text("".join(path_of(v) + "\n" for v, _ in singles))
    files = Files(
        token=str(home / "api-token"),
        bodies=bodies,
        expected=expected,
        paths=str(paths),
        present_path=path_of(next(v for v, p in singles if p)),
        absent_path=path_of(next(v for v, p in singles if not p)),
    )
    return files, values


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=200_000, help="live indicators loaded")
    ap.add_argument(
        "--seconds", type=float, default=5.0, help="seconds of each single-item run (whole s)"
    )
    ap.add_argument(
        "--batch-seconds", type=float, default=5.0, help="seconds of each batch mix (whole s)"
    )
    ap.add_argument("--rates", default=str(TARGET), help="paced requests/s, comma-separated")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="the node's serve.workers (0, its default: one per core), and as many bare "
        "app worker processes",
    )
    ap.add_argument("--connections", type=int, default=64, help="wrk connections, single items")
    ap.add_argument("--batch-connections", type=int, default=4, help="wrk connections, batches")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench_http needs wrk (the HTTP load generator) on PATH: apt install wrk")
    rates = sorted({float(r) for r in args.rates.split(",")} | {float(TARGET)})
    started = time.perf_counter()
    rng = random.Random(11)
    has_workers = node_has_workers()
    workers = (args.workers or os.cpu_count() or 1) if has_workers else 1
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "node"
        api_port, peer_port = free_port(), free_port()
        t = time.perf_counter()
        now = int(time.time() * 1000)
        core, present, _ = build_node(
            home,
            args.n,
            now,
            api_listen=f"127.0.0.1:{api_port}",
            peer_listen=f"127.0.0.1:{peer_port}",
        )
        load_s = time.perf_counter() - t
        files, mix_values = write_files(tmp, home, present, rng)
        tk = core.epoch_keys.tokenizer(1)
        live_tokens = [x.hex().encode() for x in tk.tokens((KIND, v) for v in present)]
        redis_batches = [
            [x.hex().encode() for x in tk.tokens((KIND, v) for v in batch)]
            for batch in mix_values[BUDGET_MIX]
        ]
        core.store.close()
        (tmp / "values.txt").write_text("\n".join(present) + "\n")

        from node.config import load_config

        log_level = load_config(home, env={})["log.level"]
        env = {"RISKMESH_SERVE_WORKERS": str(args.workers)} if has_workers else {}
        node = LocalNode(
            "riskmesh serve", home, api_port, peer_port, env=env, log_path=tmp / "node.log"
        )
        node_out = measure(node, files, workers, args, rates)
        base_port = free_port()
        bare_argv = [sys.executable, str(HERE / "bare_app.py"), "--port", str(base_port)]
        bare_argv += ["--values", str(tmp / "values.txt"), "--workers", str(workers)]
        bare = Served(
            "bare aiohttp + set", bare_argv, base_port, log_path=tmp / "bare.log", token="-"
        )
        bare_out = measure(bare, files, workers, args, rates)
        bare_log = (tmp / "bare.log").read_text(errors="replace")
        redis = measure_redis(
            tmp / "redis",
            live_tokens,
            redis_batches,
            files.expected[BUDGET_MIX][0],
            args.batch_seconds,
        )

    print(
        f"# bench_http on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores; {args.n:,} live {KIND} "
        f"indicators (loaded in {load_s:.1f} s); node log.level={log_level}; client wrk "
        f"({args.wrk_threads} thread), {args.batch_connections} connections for batches "
        f"of {BATCH:,}, {args.connections} for single items; "
        f"{wrk_seconds(args.batch_seconds)} s per batch mix, {wrk_seconds(args.seconds)} s "
        "per single-item run"
    )
    if has_workers:
        print(
            f"serve.workers={args.workers} ({workers} serving processes beside the writer); "
            "the bare app runs as many worker processes"
        )
    else:
        print(
            "this node has no serve.workers setting: it serves from one process, and the "
            "bare app runs one worker to match"
        )
    kinds = {line.split(": ", 1)[-1] for line in bare_log.splitlines() if "bare_app" in line}
    print(f"bare app workers: {'; '.join(sorted(kinds)) or 'no start line in its log'}")
    report_redis(redis)
    for out in (bare_out, node_out):
        report_server(out)
    print(f"whole run {time.perf_counter() - started:.0f} s")
    print_figures(
        "bench_http",
        {
            "n": args.n,
            "seconds": wrk_seconds(args.seconds),
            "batch_seconds": wrk_seconds(args.batch_seconds),
            "rates": rates,
            "workers": workers,
            "connections": args.connections,
            "batch_connections": args.batch_connections,
            "log_level": log_level,
        },
        figures(node_out, bare_out, redis, workers, has_workers),
    )


# -- the report --------------------------------------------------------------------------


def report_redis(redis: RedisResult) -> None:
    print(
        f"baseline: Redis SMISMEMBER, {BATCH:,} members a command (1% present), "
        f"{redis.members:,} members in the set:"
    )
    if redis.skipped:
        print(f"  skipped: {redis.skipped}")
        return
    if isinstance(redis.bench, str):
        print(f"  redis-benchmark (C)         skipped: {redis.bench}")
    else:
        checks, cpu, lat = redis.bench
        print(
            f"  redis-benchmark (C)      {checks:>14,.0f} checks/s  "
            f"redis-server {cpu * 1e6:.3f} µs CPU per check; per command p50 "
            f"{lat.get('p50', float('nan')):.2f} ms p99 {lat.get('p99', float('nan')):.2f} ms "
            f"({REDIS_CLIENTS} connections, {REDIS_PIPELINE} pipelined each)"
        )
    if isinstance(redis.py, str):
        print(f"  redis-py + hiredis          skipped: {redis.py}")
    else:
        checks, cpu, _ = redis.py
        print(
            f"  redis-py + hiredis       {checks:>14,.0f} checks/s  "
            f"redis-server {cpu * 1e6:.3f} µs CPU per check "
            f"(one connection, {REDIS_PY_DEPTH} commands a pipeline)"
        )


def report_server(out: ServerResult) -> None:
    print(f"{out.name}: {len(out.processes)} process(es), {out.listening} listening")
    for pid, name in out.processes:
        print(f"    pid {pid}: {name}")
    print(
        f"  POST /v1/query, {BATCH:,} canonical items:   items/s   req/s    p50 ms    p99 ms"
        "  server CPU  µs/item  client CPU  errors"
    )
    for mix, r in out.batch.items():
        print(
            f"    {mix:<12} {r.rps * BATCH:>22,.0f} {r.rps:7.1f} {r.ms('p50'):9.1f} "
            f"{r.ms('p99'):9.1f} {r.server_cores:10.2f} {fmt_us(r.cpu_us_per(BATCH)):>8}"
            f" {r.client_cores:11.2f} {r.error_count:7d}"
        )
    print(
        f"  GET /v1/query/{KIND}/{{value}}, 1% present:     req/s    p50 ms    p90 ms    p99 ms"
        "  p99.9 ms  max ms  server CPU  client CPU  errors"
    )
    runs: list[tuple[str, WrkResult]] = []
    if out.closed is not None:
        runs.append(("closed loop", out.closed))
    runs += [(f"paced {rate:,.0f}/s", r) for rate, r in out.paced.items()]
    for label, r in runs:
        print(
            f"    {label:<30} {r.rps:>9,.0f} {r.ms('p50'):9.2f} {r.ms('p90'):9.2f} "
            f"{r.ms('p99'):9.2f} {r.ms('p99.9'):9.2f} {r.ms('max'):7.1f} {r.server_cores:11.2f} "
            f"{r.client_cores:11.2f} {r.error_count:7d}"
        )
    shown = [(f"batches {BUDGET_MIX}", out.batch.get(BUDGET_MIX)), ("closed loop", out.closed)]
    for label, run in shown:
        if run is not None and run.window_s:
            split = ", ".join(
                f"pid {pid} {cpu / run.window_s:.2f}" for pid, cpu in sorted(run.server_cpu.items())
            )
            print(f"  CPU by process, {label} (cores): {split}")


def figures(
    node: ServerResult,
    bare: ServerResult,
    redis: RedisResult,
    workers: int,
    has_workers: bool,
) -> list[dict[str, Any]]:
    served = (
        f"{workers} serving process(es) beside the writer"
        if has_workers
        else "one process (no serve.workers yet)"
    )
    nb, bb = node.batch[BUDGET_MIX], bare.batch[BUDGET_MIX]
    node_items, node_us = nb.items_per_s(BATCH), nb.cpu_us_per(BATCH)

    redis_rates: list[tuple[str, float | None, str]] = []
    redis_cpu: list[tuple[str, float | None, str]] = []
    for label, got in (
        (f"Redis SMISMEMBER {BATCH:,} a command, redis-benchmark (C)", redis.bench),
        (f"Redis SMISMEMBER {BATCH:,} a command, redis-py + hiredis pipelined", redis.py),
    ):
        if redis.skipped or isinstance(got, str):
            why = redis.skipped or str(got)
            redis_rates.append((f"{label} ({why})", None, "items/s"))
            redis_cpu.append((f"{label}, redis-server CPU ({why})", None, "µs/item"))
        else:
            redis_rates.append((label, got[0], "items/s"))
            redis_cpu.append((f"{label}, redis-server CPU", got[1] * 1e6, "µs/item"))
    best_rate = max((v for _, v, _ in redis_rates if v is not None), default=None)
    best_cpu = min((v for _, v, _ in redis_cpu if v is not None), default=None)

    out = [
        figure(
            f"HTTP POST /v1/query batched, {BATCH:,} canonical items, 1% present, "
            "served node (wrk)",
            node_items,
            "items/s",
            baselines=[
                *redis_rates,
                ("bare aiohttp + Python set, same wrk load", bb.items_per_s(BATCH), "items/s"),
            ],
            budget=None if best_rate is None else (">=", best_rate),
            note=f"{served}; {nb.rps:.1f} requests/s, p50 {nb.ms('p50'):.0f} ms, p99 "
            f"{nb.ms('p99'):.0f} ms, {nb.error_count} errors; budget: 1.0x the faster Redis "
            f"client{'' if best_rate else ' (not judged: no Redis figure)'}; "
            f"node CPU {nb.server_cores:.2f} cores, wrk {nb.client_cores:.2f}",
        ),
        figure(
            f"server CPU per item, HTTP batches of {BATCH:,}, 1% present",
            node_us,
            "µs/item",
            baselines=[
                *redis_cpu,
                ("bare aiohttp + Python set", bb.cpu_us_per(BATCH), "µs/item"),
            ],
            budget=None if best_cpu is None else ("<=", 2 * best_cpu),
            note="every process of the server's tree (utime+stime from /proc) over the items "
            "answered; budget: 2x redis-server's CPU per check (the lower of the two runs)"
            + ("" if best_cpu else "; not judged: no Redis figure"),
        ),
    ]
    for mix in ("all absent", "50% present"):
        r, b = node.batch[mix], bare.batch[mix]
        out.append(
            figure(
                f"HTTP POST /v1/query batched, {BATCH:,} canonical items, {mix}, served node",
                r.items_per_s(BATCH),
                "items/s",
                baselines=[("bare aiohttp + Python set, same wrk load", b.items_per_s(BATCH))],
                note=f"{r.rps:.1f} requests/s, p99 {r.ms('p99'):.0f} ms, "
                f"{fmt_us(r.cpu_us_per(BATCH))} µs server CPU per item, "
                f"{r.error_count} errors",
            )
        )
    nc, bc = node.closed, bare.closed
    assert nc is not None and bc is not None
    out.append(
        figure(
            "single-item GET, canonical, 1% present, closed loop (wrk)",
            nc.rps,
            "req/s",
            baselines=[("bare aiohttp + Python set, same wrk load", bc.rps)],
            budget=(">=", 0.5 * bc.rps),
            note=f"{served}; budget 0.5x the bare app; p50 {nc.ms('p50'):.2f} ms, p99 "
            f"{nc.ms('p99'):.2f} ms, {nc.error_count} errors; node CPU {nc.server_cores:.2f} "
            f"cores, wrk {nc.client_cores:.2f}",
        )
    )
    at, base_at = node.paced[TARGET], bare.paced[TARGET]
    rate_ok = at.rps >= TARGET * (1 - TARGET_SLACK) and at.error_count == 0
    out.append(
        figure(
            f"single-item GET p99 at a paced {TARGET:,} req/s (wrk)",
            at.ms("p99"),
            "ms",
            baselines=[("bare aiohttp + Python set, same load", base_at.ms("p99"))],
            budget=("<", 2.0),
            also=(
                f"an achieved rate within {TARGET_SLACK:.0%} of {TARGET:,}/s, no errors",
                rate_ok,
            ),
            note=f"achieved {at.rps:,.0f} req/s (bare {base_at.rps:,.0f}), {at.error_count} "
            f"errors; p50 {at.ms('p50'):.2f} ms, p99.9 {at.ms('p99.9'):.2f} ms; wrk delay() "
            "pacing, latency from the actual send (coordinated omission: see bench_http)",
        )
    )
    out.append(
        figure(
            f"single-item achieved rate at a paced {TARGET:,} req/s",
            at.rps,
            "req/s",
            baselines=[("bare aiohttp + Python set, same load", base_at.rps)],
            note=f"node CPU {at.server_cores:.2f} cores, wrk {at.client_cores:.2f}",
        )
    )
    return out


if __name__ == "__main__":
    main()
