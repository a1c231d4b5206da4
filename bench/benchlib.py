"""Helpers shared by the bench scripts: rates, percentiles, a loaded node, the FIGURES line.

Every script prints its figures for people, then ends with one line::

    FIGURES {"bench": "bench_query", "params": {...}, "figures": [{...}, ...]}

which `python -m bench` reads to build the summary table of docs/benchmarks.md.
A figure carries its measured value, the baseline measured in the same run and
the DESIGN §13 budget it is held to (if any); whether the budget is met is
computed here from the measured value, never written by hand.

The scripts import this module as ``benchlib``: run them as
``python bench/<script>.py`` (Python puts the script's directory on the path).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from node.localnet import free_port

FIGURES_PREFIX = "FIGURES "

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, b: v >= b,
    ">": lambda v, b: v > b,
    "<=": lambda v, b: v <= b,
    "<": lambda v, b: v < b,
}


def rate(fn: Callable[[], int], seconds: float) -> float:
    """Units per second of ``fn`` (which returns how many units it did), best of the
    runs that fit in ``seconds`` (at least one, after one warm-up call)."""
    fn()
    best = 0.0
    end = time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        n = fn()
        best = max(best, n / (time.perf_counter() - t))
        if time.perf_counter() >= end:
            return best


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of already sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    baselines: Sequence[tuple[str, float | None] | tuple[str, float | None, str]] = (),
    budget: tuple[str, float] | None = None,
    also: tuple[str, bool] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One figure for the summary table.

    ``baselines`` are ``(what, value)`` or ``(what, value, unit)`` measured in the
    same run (value None: skipped, say why in ``what``). ``budget`` is
    ``(op, limit)`` with op one of ``>=``, ``>``, ``<=``, ``<``. ``also`` is a
    further condition of the budget, ``(description, held)``: the budget is met
    only if both hold. ``value`` None means the figure could not be measured.
    """
    met: bool | None = None
    ratio: float | None = None
    if budget is not None and value is not None:
        op, limit = budget
        met = _COMPARE[op](value, limit)
        ratio = value / limit if limit else None
        if also is not None:
            met = met and also[1]
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baselines": [
            {"what": b[0], "value": b[1], "unit": b[2] if len(b) > 2 else unit}  # type: ignore[misc]
            for b in baselines
        ],
        "budget_op": budget[0] if budget else None,
        "budget": budget[1] if budget else None,
        "also": {"what": also[0], "held": also[1]} if also else None,
        "met": met,
        "ratio": ratio,
        "note": note,
    }


def print_figures(bench: str, params: dict[str, Any], figures: list[dict[str, Any]]) -> None:
    """The last line of a script's output: its figures as JSON, for `python -m bench`."""
    line = json.dumps({"bench": bench, "params": params, "figures": figures}, sort_keys=True)
    print(FIGURES_PREFIX + line, flush=True)


def build_node(
    home: Path, n: int, now: int, *, api_listen: str | None = None, peer_listen: str | None = None
) -> tuple[Any, list[str], list[str]]:
    """A node home (init_home, make_genesis, install_charter_file) holding ``n`` live
    phone indicators published at ``now`` through the feed, 1000 ops per entry.

    Returns the open `Node`, the canonical present values and as many absent
    ones (``+86138…`` are present, ``+86139…`` absent).
    """
    from contracts.policy import DAY_MS
    from node.core import Node
    from node.home import init_home, install_charter_file, make_genesis
    from node.store import SqliteStore
    from protocol.entries import AddOp
    from protocol.keys import MemberKey

    init_home(
        home,
        name="bench",
        endpoint="http://x",
        api_listen=api_listen or f"127.0.0.1:{free_port()}",
        peer_listen=peer_listen or f"127.0.0.1:{free_port()}",
    )
    make_genesis(home, "bench", [], home / "g.cbor")
    install_charter_file(home, home / "g.cbor")
    key = MemberKey.from_seed((home / "keys" / "member.key").read_bytes())
    core = Node(SqliteStore(home / "riskmesh.db", key), key)
    assert core.feeds is not None
    tk = core.epoch_keys.tokenizer(1)
    present = [f"+86138{i:08d}" for i in range(n)]
    absent = [f"+86139{i:08d}" for i in range(n)]
    exp = now + 300 * DAY_MS
    for i in range(0, n, 1000):
        ops = [
            AddOp(tk.token("phone", v), "phone", 1, "telecom_fraud", 3, exp)
            for v in present[i : i + 1000]
        ]
        with core.store.atomic():
            core.feeds.publish(key, ops, now)
    core.rebuild_index(now)
    return core, present, absent


# -- server processes: their CPU -----------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (children, their children...).

    Read from /proc/<pid>/task/<tid>/children where the kernel has it, else from the
    parent field of every /proc/<pid>/stat; just ``[pid]`` without /proc.
    """
    import contextlib
    import os

    if Path(f"/proc/{pid}/task").is_dir() and any(Path(f"/proc/{pid}/task").glob("*/children")):
        found: list[int] = []
        todo = [pid]
        while todo:
            p = todo.pop()
            if p in found:
                continue
            found.append(p)
            for children in Path(f"/proc/{p}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in children.read_text().split())
        return found
    kids: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return [pid]
    for e in entries:
        fields = _stat_fields(int(e))
        if fields is not None:
            kids.setdefault(int(fields[1]), []).append(int(e))
    found = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p not in found:
            found.append(p)
            todo.extend(kids.get(p, []))
    return found


def cpu_seconds_of(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds each process has used so far, all its threads counted
    (utime + stime of /proc/<pid>/stat); a process that is gone is left out."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """:func:`cpu_seconds_of` every process of ``pid``'s tree (``pid`` included)."""
    return cpu_seconds_of(process_tree(pid))


def cpu_used(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds each process used between two readings of :func:`tree_cpu_seconds`;
    a process first seen in ``after`` counts whole, one gone by then is not counted."""
    return {pid: t - before.get(pid, 0.0) for pid, t in after.items()}


def process_name(pid: int) -> str:
    """A short name of a process: its command line's last few words (or comm)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        words = [a.decode(errors="replace") for a in argv if a]
    except OSError:
        return "?"
    if not words:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return "?"
    text = " ".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words))
    return text if len(text) <= 60 else text[:57] + "..."


# -- a private Redis: the SMISMEMBER baseline ------------------------------------------

REDIS_KEY = b"tokens"
"""The set of live tokens in a private Redis."""


class PrivateRedis:
    """A ``redis-server`` of this benchmark's own: a unix socket in ``directory``, no TCP
    port, no persistence (``--save "" --appendonly no``). Loads members with a small RESP
    writer of its own, so a missing redis-py only costs the redis-py measurement."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket_path = str(directory / "redis.sock")
        self.proc: Any = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return int(self.proc.pid)

    def start(self, deadline_s: float = 10.0) -> str | None:
        """Start it and wait for PING; None, or why it could not be started."""
        import shutil
        import subprocess

        binary = shutil.which("redis-server")
        if binary is None:
            return "no redis-server binary on PATH"
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--port", "0", "--unixsocket", self.socket_path]
        argv += ["--unixsocketperm", "700", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.directory)]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + deadline_s
        while True:
            try:
                if self.command(b"PING") == b"PONG":
                    break
            except OSError:
                pass
            if self.proc.poll() is not None:
                return f"redis-server exited with {self.proc.returncode}"
            if time.monotonic() > end:
                self.stop()
                return f"redis-server did not answer within {deadline_s:.0f} s"
            time.sleep(0.05)
        version = self.command(b"INFO", b"server")
        line = [x for x in bytes(version).split(b"\r\n") if x.startswith(b"redis_version:")]
        major_minor = tuple(int(x) for x in line[0].split(b":")[1].split(b".")[:2]) if line else ()
        if major_minor and major_minor < (6, 2):
            self.stop()
            return f"redis-server {line[0].split(b':')[1].decode()} has no SMISMEMBER (6.2+)"
        return None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def command(self, *args: bytes) -> Any:
        """One command over a fresh connection; the reply (int, bytes, or a list)."""
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.socket_path)
            s.sendall(resp_command(args))
            f = s.makefile("rb")
            return _read_reply(f)

    def sadd(self, members: Sequence[bytes], chunk: int = 10_000) -> int:
        """SADD ``members`` to :data:`REDIS_KEY` in commands of ``chunk``; how many were new."""
        import socket

        added = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.socket_path)
            f = s.makefile("rb")
            for i in range(0, len(members), chunk):
                s.sendall(resp_command([b"SADD", REDIS_KEY, *members[i : i + chunk]]))
                added += int(_read_reply(f))
        return added


def resp_command(args: Sequence[bytes]) -> bytes:
    """One command in the Redis protocol (RESP2)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def _read_reply(f: Any) -> Any:
    line = f.readline()
    if not line:
        raise OSError("redis-server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise OSError(f"redis-server: {rest.decode(errors='replace')}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        return [_read_reply(f) for _ in range(int(rest))]
    raise OSError(f"redis-server: unexpected reply {line[:40]!r}")


def redis_py_smismember(
    server: PrivateRedis, batches: Sequence[Sequence[bytes]], seconds: float, depth: int = 4
) -> tuple[float, float, int] | str:
    """SMISMEMBER from this process with redis-py and the hiredis parser, ``depth``
    commands a pipeline, rotating through ``batches`` (each one command's members), for
    ``seconds`` after a warm-up.

    Returns (checks/s, redis-server CPU seconds per check, members found in the last
    batch answered) or why it was skipped (no redis-py, no hiredis)."""
    try:
        import redis  # type: ignore[import-not-found]
        from redis.utils import HIREDIS_AVAILABLE  # type: ignore[import-not-found]
    except ImportError:
        return "the redis Python client is not installed (pip install 'redis>=5' hiredis)"
    if not HIREDIS_AVAILABLE:
        return "hiredis is not installed (pip install hiredis)"
    r = redis.Redis(unix_socket_path=server.socket_path)
    try:
        found = 0

        def round_trip(k: int) -> int:
            nonlocal found
            p = r.pipeline(transaction=False)
            for j in range(depth):
                p.execute_command("SMISMEMBER", REDIS_KEY, *batches[(k + j) % len(batches)])
            answers = p.execute()
            found = sum(answers[-1])
            return sum(len(batches[(k + j) % len(batches)]) for j in range(depth))

        round_trip(0)
        checks = 0
        k = 0
        cpu0 = cpu_seconds_of([server.pid]).get(server.pid, 0.0)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            checks += round_trip(k)
            k += depth
        wall = time.perf_counter() - t0
        cpu = cpu_seconds_of([server.pid]).get(server.pid, 0.0) - cpu0
        return checks / wall, cpu / max(1, checks), found
    finally:
        r.close()


def redis_benchmark_smismember(
    server: PrivateRedis,
    members: Sequence[bytes],
    seconds: float,
    *,
    clients: int = 2,
    pipeline: int = 4,
) -> tuple[float, float, dict[str, float]] | str:
    """SMISMEMBER of ``members`` (one command) driven by ``redis-benchmark``, the C client,
    with ``clients`` connections and ``pipeline`` commands in flight on each; as many
    commands as fill ``seconds`` at the rate of a short calibration run.

    Returns (checks/s, redis-server CPU seconds per check, redis-benchmark's latency
    figures in ms per command: avg, p50, p99) or why it was skipped."""
    import os
    import shutil
    import subprocess

    binary = shutil.which("redis-benchmark")
    if binary is None:
        return "no redis-benchmark binary on PATH"
    argv = [binary, "-s", server.socket_path, "-c", str(clients), "-P", str(pipeline), "--csv"]
    command = [b"SMISMEMBER", REDIS_KEY, *members]
    size = sum(len(a) + 1 for a in argv) + sum(len(a) + 1 for a in command) + 64
    size += 8 * (len(argv) + len(command) + 8)  # the argv pointers
    size += sum(len(k) + len(v) + 2 + 8 for k, v in os.environ.items())
    arg_max = os.sysconf("SC_ARG_MAX")
    if size > arg_max:
        return f"the command line would take {size:,} bytes, over ARG_MAX ({arg_max:,})"

    def run(n: int) -> tuple[float, dict[str, float]]:
        out = subprocess.run(
            [*argv, "-n", str(n), *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=seconds * 4 + 60,
        ).stdout.decode(errors="replace")
        lines = out.strip().splitlines()
        # the test's name is the whole command (too long for the csv module): the
        # figures are the last fields of the last line
        head = [h.strip('"') for h in lines[0].split(",")]
        row = lines[-1].rsplit(",", len(head) - 1)[1:]
        got = dict(zip(head[1:], (float(x.strip('"')) for x in row), strict=True))
        lat = {k: got[f"{k}_latency_ms"] for k in ("avg", "p50", "p99") if f"{k}_latency_ms" in got}
        return got["rps"], lat

    try:
        calib, _ = run(max(4 * clients * pipeline, 20))
        n = max(clients * pipeline, int(calib * seconds))
        cpu0 = cpu_seconds_of([server.pid]).get(server.pid, 0.0)
        rps, lat = run(n)
        cpu = cpu_seconds_of([server.pid]).get(server.pid, 0.0) - cpu0
    except (subprocess.SubprocessError, OSError, ValueError, KeyError, IndexError) as e:
        return f"redis-benchmark failed: {e}"
    return rps * len(members), cpu / (n * len(members)), lat
