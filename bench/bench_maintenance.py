"""Single-item latency on a served node during maintenance: a base rebuild, a catch-up.

The budget (issue 12): single-item GET p99 ≤ 5 ms during an index rebuild at
10 M live indicators, and during a catch-up of 1 M ops. One run measures one
node under one steady load, and reports these windows side by side:

1. **idle**: no maintenance (the baseline);
2. **base rebuild at N live** (``--n``, default 10 000 000): a new verdict-summary
   base file built from SQLite by a process the writer starts for it
   (``build_base_file``), then mapped by the serving processes. It is set off
   the way the node sets it off by itself: a peer ``c`` starts holding exactly
   ``serve.summary_overlay`` ops (``--overlay``; the setting's default, 200 000),
   the node takes them by gossip (that catch-up is reported too), its overlay
   of changes reaches the setting, and its 5-second check starts the rebuild;
3. **catch-up of M ops** (``--catchup-ops``, default 1 000 000, 1000 an entry):
   ``c`` is stopped, a peer ``b`` starts holding M ops the node has not seen,
   and the node takes them through gossip, with whatever maintenance they set
   off (every ``serve.summary_overlay`` changes, a base rebuild: their count is
   reported).

The scheduled rebuild (``index.rebuild_interval_s``: the Bloom index and a base
file) is kept out of the run (set to a day): its moment is fixed when the node
starts, and the windows before it cannot be timed in advance, so it would land
in one of them; the overlay's trigger comes when the bench chooses.

**Set-up (not part of any window).** Three homes founded together by
``node.localnet.LocalNet`` (``riskmesh init``, ``charter genesis``,
``charter install``): ``a``, the measured node, and its peers ``b`` and ``c``.
Then, in parallel:

* ``a``'s SQLite ``indicators`` table is filled **directly**, before the node
  is started, by one bulk ``executemany`` of N well-formed rows (no feed
  entries): random 16-byte tokens, in token order, this member as author,
  epoch 1, kind ``phone``, category ``telecom_fraud``, severity 3, expiry 300
  days ahead, first and last reported now, not retracted. Among them are the
  tokens of the load's present values, made with ``a``'s real epoch-1 key (the
  key its store holds, as ``benchlib.build_node`` gets its tokenizer), so that
  present values match. Publishing N reports through the feed would take hours
  at 10 M; a node reads its live set from this table at start-up (Bloom index,
  first base file), so it serves as if it had them.
* ``c``'s and ``b``'s feeds get their ops through the real publish path
  (``protocol.feeds.Feeds.publish`` on each one's own SQLite store, 1000 random
  device tokens an entry), in a child process, which then offers ``c``'s
  entries to ``b``'s store (``Feeds.offer``, every check): when ``b`` starts,
  the measured node has nothing to send it, as ``b`` holds ``c``'s feed too.

Then ``riskmesh serve`` starts for ``a`` (``LocalNode``: default settings but
``serve.workers`` from ``--workers`` (0, its default: one serving process per
core), ``log.level=info``, the scheduled rebuild a day away, and
``serve.summary_overlay`` if ``--overlay`` is not its default). Its start-up,
which builds the first base file and the Bloom index from SQLite, is timed (to
``GET /v1/status`` answering, and to every serving process listening), and the
base file's size is reported. The peers start later, one serving process each.

**The load.** ``wrk`` with ``bench/wrk/timeline.lua``: GET
/v1/query/phone/{value}, canonical values, 1 % present, rotating through
10 000 paths, paced at ``--rate`` requests/s (1000) over ``--connections``
connections (8), one per wrk thread, for the whole measurement (started once
the node serves, stopped with SIGINT at the end). The script writes each
request's send slot, actual send and end of response on CLOCK_MONOTONIC, the
clock of ``time.monotonic()`` here, so each window's percentiles are taken over
the requests whose send slot falls in it. Latency is given two ways: **from the
slot** (the time the request was due: a request that waited for its connection
to come free of a slow answer counts that wait; the budget is judged on this
one) and **from the send** (wrk's own figure, as bench_http reports it; it
hides such waits: coordinated omission). Every answer is checked against the
value's presence.

**Windows.**

* idle: ``--idle-seconds`` (10), from 2 s after the load starts;
* a catch-up: from the last look (``GET /v1/status`` every 0.2 s) at which
  ``a`` held none of the peer's entries to the first at which it held all; its
  rate is the peer's ops over that window;
* the base rebuild: from the first 0.1 s in which the builder process worked
  (over half a core, from /proc) to 0.5 s after the writer logged "verdict
  summaries rebuilt" (the serving processes switch files when the hub's
  message reaches them). A rebuild still running when b's catch-up ends is not
  counted in it; ``--settle-s`` waits for it and reports it apart.

For each window: the CPU used by the writer, the serving processes, the base
builder, the peers, wrk, this script and the rest of the machine (/proc/stat),
and the share of the time some task waited for a CPU (PSI,
/proc/pressure/cpu). On a shared 2-core machine the last two say how much of
a figure is other people's load. ``--timeline STEP`` prints the whole run in
rows of STEP seconds.

    python bench/bench_maintenance.py            # N = 10 M, M = 1 M: minutes
    python bench/bench_maintenance.py --quick    # N = 200 000, M = 50 000, overlay 10 000: < 1 min
    python bench/bench_maintenance.py --n 1000000 --catchup-ops 300000 --timeline 2
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import cpu_seconds_of, figure, percentile, print_figures, process_tree

from node.localnet import LocalNet, LocalNode, NetError

HERE = Path(__file__).resolve().parent
WRK_DIR = HERE / "wrk"
KIND = "phone"
CATEGORY = "telecom_fraud"
SEVERITY = 3
TTL_DAYS = 300
PATHS = 10_000
PRESENT = 0.01
OPS_PER_ENTRY = 1000
BUDGET_MS = 5.0
SAMPLE_S = 0.1
"""How often the CPU of every process and the node's log are read."""
BUSY_CORES = 0.5
"""A process busier than this over one sample is working (a rebuild has started)."""
WARM_S = 2.0
POLL_S = 0.2
REBUILT = "verdict summaries rebuilt"
QUICK = {"n": 200_000, "catchup_ops": 50_000, "overlay": 10_000}


# -- set-up ---------------------------------------------------------------------------------


def present_values(k: int) -> list[str]:
    return [f"+86138{i:08d}" for i in range(k)]


def absent_values(k: int) -> list[str]:
    return [f"+86139{i:08d}" for i in range(k)]


def write_paths(path: Path) -> tuple[list[str], list[bool]]:
    """The load's paths, 1 % of them present values (spread evenly); the present
    values, and which path (by line) is present."""
    k = round(PATHS * PRESENT)
    present = present_values(k)
    absent = absent_values(PATHS - k)
    step = PATHS // k
    values: list[str] = []
    expected: list[bool] = []
    pi = ai = 0
    for j in range(PATHS):
        if j % step == 0 and pi < k:
            values.append(present[pi])
            expected.append(True)
            pi += 1
        else:
            values.append(absent[ai])
            expected.append(False)
            ai += 1
    path.write_text("".join(f"/v1/query/{KIND}/{urllib.parse.quote(v, safe='')}\n" for v in values))
    return present, expected


def member_key(home: Path) -> Any:
    from protocol.keys import MemberKey

    return MemberKey.from_seed((home / "keys" / "member.key").read_bytes())


def present_tokens(home: Path, values: Sequence[str]) -> list[bytes]:
    """The tokens of ``values`` under the home's real epoch-1 key."""
    from node.store import SqliteStore
    from protocol.tokens import EpochKeys

    store = SqliteStore(home / "riskmesh.db", member_key(home))
    try:
        tk = EpochKeys(store.epoch_keys()).tokenizer(1)
        return [tk.token(KIND, v) for v in values]
    finally:
        store.close()


def fill_live(home: Path, n: int, present: Sequence[bytes], now: int, seed: int) -> int:
    """N live indicator rows straight into the home's ``indicators`` table (see the
    module docstring), in token order; the rows in the table after."""
    from contracts.policy import DAY_MS
    from node.store import Codes

    rng = np.random.default_rng(seed)
    top = np.iinfo(np.uint64).max
    hi = rng.integers(0, top, size=n, dtype=np.uint64, endpoint=True)
    lo = rng.integers(0, top, size=n, dtype=np.uint64, endpoint=True)
    for j, tok in enumerate(present[:n]):
        hi[j] = int.from_bytes(tok[:8], "big")
        lo[j] = int.from_bytes(tok[8:], "big")
    order = np.lexsort((lo, hi))
    keys = np.empty((n, 2), dtype=">u8")
    keys[:, 0] = hi[order]
    keys[:, 1] = lo[order]
    del hi, lo, order
    buf = keys.tobytes()
    del keys
    author = bytes(member_key(home).id)
    exp = now + TTL_DAYS * DAY_MS
    conn = sqlite3.connect(str(home / "riskmesh.db"), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("BEGIN")
        codes = Codes()  # the row's author, kind and category, as the store codes them
        a, k, c = (codes.code(conn, v) for v in (author, KIND, CATEGORY))
        # every column but the token is the same on every row: written into the statement
        conn.executemany(
            "INSERT OR IGNORE INTO indicators (tok, ep, author, kind, cat, sev, exp,"
            " first_ts, last_ts, retracted)"
            f" VALUES (?, 1, {a}, {k}, {c}, {SEVERITY}, {int(exp)},"
            f" {int(now)}, {int(now)}, 0)",
            ((buf[i : i + 16],) for i in range(0, 16 * n, 16)),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(conn.execute("SELECT COUNT(*) FROM indicators").fetchone()[0])
    finally:
        conn.close()


def build_peer_feed(home: str, ops: int, now: int, seed: int) -> tuple[int, int]:
    """``ops`` random device indicators published into the home's own feed through
    ``Feeds.publish`` (1000 an entry), on its SQLite store; (entries, ops)."""
    import random

    from contracts.policy import DAY_MS
    from node.store import SqliteStore
    from protocol.entries import AddOp

    key = member_key(Path(home))
    store = SqliteStore(Path(home) / "riskmesh.db", key)
    try:
        feeds = _feeds(store)
        rng = random.Random(seed)
        exp = now + 30 * DAY_MS
        entries = done = 0
        while done < ops:
            k = min(OPS_PER_ENTRY, ops - done)
            batch = [AddOp(rng.randbytes(16), "device", 1, "device_risk", 3, exp) for _ in range(k)]
            with store.atomic():
                feeds.publish(key, batch, now)
            entries += 1
            done += k
        return entries, done
    finally:
        store.close()


def _feeds(store: Any) -> Any:
    from protocol.charter_chain import CharterChain
    from protocol.feeds import Feeds

    raws = store.charters()
    return Feeds(store, CharterChain.from_raws(raws, anchor=CharterChain(raws[0]).anchor))


def copy_feed(src: str, dst: str, now: int) -> int:
    """The home ``src``'s own feed offered, entry by entry (every check), to the home
    ``dst``'s store; the entries accepted."""
    from node.store import SqliteStore
    from protocol.feeds import ACCEPTED

    src_key = member_key(Path(src))
    src_store = SqliteStore(Path(src) / "riskmesh.db", src_key)
    dst_store = SqliteStore(Path(dst) / "riskmesh.db", member_key(Path(dst)))
    try:
        feeds = _feeds(dst_store)
        head = src_store.head(src_key.id)
        accepted = 0
        for seq in range(1, (head.seq if head else 0) + 1):
            raw = src_store.entry(src_key.id, seq)
            assert raw is not None
            with dst_store.atomic():
                accepted += feeds.offer(raw, now).status == ACCEPTED
        return accepted
    finally:
        src_store.close()
        dst_store.close()


def build_peer_feeds(
    b_home: str, b_ops: int, c_home: str, c_ops: int, now: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The peers' feeds, in a child process beside the fill of the measured node's table:
    ``c``'s, then ``b``'s, then ``c``'s copied to ``b`` (so that when ``b`` starts, the
    measured node has nothing to send it: ``b`` holds everything the node holds)."""
    c = build_peer_feed(c_home, c_ops, now, 13)
    b = build_peer_feed(b_home, b_ops, now, 7)
    copied = copy_feed(c_home, b_home, now)
    assert copied == c[0], (copied, c)
    return b, c


# -- watching the processes -----------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    v = [int(x) for x in fields] + [0] * 8
    # user, nice, system, irq, softirq (not idle, iowait, or time stolen by the host)
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def _cpu_pressure() -> float:
    """Seconds in which some runnable task waited for a CPU (PSI, /proc/pressure/cpu "some"
    total); 0 where the kernel has no PSI."""
    try:
        line = Path("/proc/pressure/cpu").read_text().split("\n", 1)[0]
    except OSError:
        return 0.0
    total = line.rsplit("total=", 1)[-1]
    return int(total) / 1e6 if total.isdigit() else 0.0


ROLES = ("writer", "serving", "builder", "peer node", "wrk", "this script")


class Monitor:
    """Reads every SAMPLE_S the CPU of each process of the measured node, the peer node
    and wrk (by role), the machine's busy time, and the measured node's new log lines."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.roots: dict[int, str] = {}
        self.role: dict[int, str] = {os.getpid(): "this script"}
        self.samples: list[tuple[float, dict[int, float], float, float]] = []
        self.rebuilt: list[float] = []
        """When each "verdict summaries rebuilt" line was first seen."""
        self.rebuilt_lines: list[str] = []
        self._log_pos = 0
        self._unsure: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def watch(self, pid: int, what: str) -> None:
        """``what``: "node" (the measured node's writer), "peer" or "wrk"."""
        self.roots[pid] = what

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _classify(self, pid: int, root: int) -> tuple[str, bool]:
        """The role of ``pid`` (of the tree of ``root``), and whether that is sure: a child
        of the writer seen between its fork and its exec still looks like the writer."""
        what = self.roots[root]
        if what == "peer":
            return "peer node", True
        if what == "wrk":
            return "wrk", True
        if pid == root:
            return "writer", True
        cmd = _cmdline(pid)
        if "node.workers" in cmd:
            return "serving", True
        if "resource_tracker" in cmd:
            return "writer", True  # multiprocessing's helper, counted with the writer
        if "spawn_main" in cmd or "multiprocessing" in cmd:
            return "builder", True
        return "writer", False

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_S)

    def sample(self) -> None:
        t = time.monotonic()
        pids = [os.getpid()]
        for root in list(self.roots):
            for pid in process_tree(root):
                if pid not in self.role or pid in self._unsure:
                    self.role[pid], sure = self._classify(pid, root)
                    if sure:
                        self._unsure.discard(pid)
                    else:  # looked at again until it says what it is
                        self._unsure.add(pid)
                pids.append(pid)
        cpu = cpu_seconds_of(pids)
        self.samples.append((t, cpu, _machine_busy(), _cpu_pressure()))
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_pos)
                text = f.read()
        except OSError:
            return
        cut = text.rfind(b"\n") + 1
        self._log_pos += cut
        for line in text[:cut].decode(errors="replace").splitlines():
            if REBUILT in line:
                self.rebuilt.append(t)
                self.rebuilt_lines.append(line)

    # -- reading the samples --------------------------------------------------------------

    def _index(self, t: float, after: bool) -> int:
        s = self.samples
        if after:
            return next((i for i, x in enumerate(s) if x[0] >= t), len(s) - 1)
        return next((i for i in range(len(s) - 1, -1, -1) if s[i][0] <= t), 0)

    def cores(self, t0: float, t1: float) -> dict[str, float]:
        """Cores used by each role between ``t0`` and ``t1``, by the rest of the machine, and
        the share of that time some task waited for a CPU ("waiting for a CPU"). A process
        that ended in between counts up to its last sample (a base builder process lives
        for one rebuild)."""
        s = self.samples
        i0, i1 = self._index(t0, after=False), self._index(t1, after=True)
        a, b = s[i0], s[i1]
        span = b[0] - a[0]
        out = dict.fromkeys(ROLES, 0.0)
        if span <= 0:
            return out
        last: dict[int, float] = {}
        for x in s[i0 : i1 + 1]:
            last.update(x[1])
        for pid, c in last.items():
            role = self.role.get(pid, "writer")
            out[role] += (c - a[1].get(pid, 0.0)) / span
        ours = sum(out.values())
        out["rest of the machine"] = max(0.0, (b[2] - a[2]) / span - ours)
        out["waiting for a CPU"] = (b[3] - a[3]) / span
        return out

    def busy_from(self, t0: float, roles: Sequence[str]) -> float | None:
        """The first sample interval at or after ``t0`` in which a process of ``roles``
        used more than BUSY_CORES; its start, or None."""
        s = self.samples
        for prev, cur in itertools.pairwise(s):
            if cur[0] < t0:
                continue
            span = cur[0] - prev[0]
            if span <= 0:
                continue
            for pid, c in cur[1].items():
                if self.role.get(pid) in roles and (c - prev[1].get(pid, 0.0)) / span > BUSY_CORES:
                    return prev[0]
        return None

    def busy_span(self, t0: float, t1: float, role: str) -> float:
        """Seconds between ``t0`` and ``t1`` in which processes of ``role`` together used
        more than BUSY_CORES."""
        s = self.samples
        total = 0.0
        for prev, cur in itertools.pairwise(s):
            if cur[0] <= t0 or prev[0] >= t1:
                continue
            span = cur[0] - prev[0]
            used = sum(
                c - prev[1].get(pid, 0.0) for pid, c in cur[1].items() if self.role.get(pid) == role
            )
            if span > 0 and used / span > BUSY_CORES:
                total += span
        return total


# -- the load -------------------------------------------------------------------------------


@dataclass
class Requests:
    """Every answered request of the run, as numpy arrays (ms on time.monotonic()'s clock)."""

    slot: np.ndarray
    sent: np.ndarray
    done: np.ndarray
    status: np.ndarray
    wrong: np.ndarray
    summary: dict[str, Any]

    @classmethod
    def read(cls, prefix: Path, expected: Sequence[bool], summary: dict[str, Any]) -> Requests:
        rows = []
        for f in sorted(prefix.parent.glob(prefix.name + ".*")):
            text = f.read_text()
            if text.strip():
                rows.append(np.loadtxt(f, ndmin=2))
        data = np.concatenate(rows) if rows else np.zeros((0, 6))
        data = data[np.argsort(data[:, 0], kind="stable")]
        want = np.asarray(expected, dtype=bool)
        path_i = data[:, 4].astype(np.int64) - 1
        got = data[:, 5] > 0
        ok_status = data[:, 3] == 200
        wrong = ok_status & (got != want[path_i])
        return cls(data[:, 0], data[:, 1], data[:, 2], data[:, 3], wrong, summary)

    def window(self, t0: float, t1: float) -> Window:
        m = (self.slot >= t0 * 1000) & (self.slot < t1 * 1000)
        from_slot = self.done[m] - np.minimum(self.slot[m], self.sent[m])
        from_send = self.done[m] - self.sent[m]
        return Window(
            t0,
            t1,
            int(m.sum()),
            sorted(from_slot.tolist()),
            sorted(from_send.tolist()),
            int((self.status[m] != 200).sum()),
            int(self.wrong[m].sum()),
            self._worst_second(m),
        )

    def _worst_second(self, m: np.ndarray) -> tuple[float, float, int]:
        """The 1-second bucket (by send slot) of the window with the highest p99 from the
        slot: (its start in s on the window's clock, that p99 in ms, requests)."""
        if not m.any():
            return (float("nan"), float("nan"), 0)
        slot = self.slot[m]
        lat = self.done[m] - np.minimum(slot, self.sent[m])
        sec = np.floor(slot / 1000)
        best = (float("nan"), -1.0, 0)
        for s in np.unique(sec):
            v = np.sort(lat[sec == s])
            p = percentile(v.tolist(), 99)
            if p > best[1]:
                best = (float(s), p, len(v))
        return best


@dataclass
class Window:
    t0: float
    t1: float
    requests: int
    from_slot: list[float]
    from_send: list[float]
    errors: int
    wrong: int
    worst: tuple[float, float, int]
    cores: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def p(self, q: float, *, slot: bool = True) -> float:
        return float(percentile(self.from_slot if slot else self.from_send, q))

    def max(self, *, slot: bool = True) -> float:
        v = self.from_slot if slot else self.from_send
        return v[-1] if v else float("nan")


def start_wrk(
    base: str, token_file: Path, paths: Path, rate: float, conns: int, prefix: Path
) -> subprocess.Popen[bytes]:
    argv = [shutil.which("wrk") or "wrk", "-t", str(conns), "-c", str(conns), "-d", "36000s"]
    argv += ["--timeout", "10s", "-s", str(WRK_DIR / "timeline.lua"), base, "--"]
    argv += [str(token_file), str(paths), f"{rate:g}", str(conns), str(prefix)]
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def stop_wrk(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """SIGINT (wrk then prints its summary and runs done()); the WRK_JSON summary."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    text = out.decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no summary ({proc.returncode}):\n{text[-2000:]}{err.decode()}")
    summary: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
    return summary


# -- the node -------------------------------------------------------------------------------


def listening(node: LocalNode) -> int:
    from bench_http import listening_pids

    assert node.proc is not None
    return len(listening_pids(process_tree(node.proc.pid), node.api_port))


def head_of(node: LocalNode, member: str) -> int | None:
    """The seq of ``member``'s feed head at ``node`` (0: none), None if no answer."""
    try:
        status, body = node.call("GET", "/v1/status", timeout=5.0)
    except OSError:
        return None
    if status != 200 or not isinstance(body, dict):
        return None
    for m in body.get("members", []):
        if m.get("name") == member:
            head = m.get("head")
            return 0 if head is None else int(head["seq"])
    return None


def base_files(home: Path) -> list[Path]:
    d = home / "summaries"
    return sorted(p for p in d.glob("base-*") if not p.name.endswith(".tmp")) if d.is_dir() else []


def start_times(pids: Sequence[int]) -> dict[int, str]:
    """Each live process of ``pids`` and its start time (field 22 of /proc/<pid>/stat),
    so that a pid the kernel hands to another process later is not taken for it."""
    out = {}
    for pid in pids:
        try:
            out[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            continue
    return out


def kill_leftovers(procs: dict[int, str], grace_s: float = 5.0) -> list[str]:
    """SIGKILL those of ``procs`` (processes of the nodes this bench started, from
    :func:`start_times`) still alive ``grace_s`` after their node stopped; what each was."""

    def alive() -> list[int]:
        out = []
        for pid, started in procs.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and fields[19] == started:
                out.append(pid)
        return out

    end = time.monotonic() + grace_s
    while alive() and time.monotonic() < end:
        time.sleep(0.1)
    killed = []
    for pid in alive():
        name = _cmdline(pid).strip()[-80:]
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            killed.append(f"pid {pid} ({name})")
    return killed


SCHEDULED_S = 86_400.0
"""``index.rebuild_interval_s`` of the measured node: its scheduled rebuild stays out of
the run (see the module docstring)."""


@dataclass
class CatchUp:
    """One peer's feed taken by the measured node: when, and how fast."""

    peer: str
    ops: int
    entries: int
    launched: float = 0.0
    answered: float | None = None
    start: float = 0.0
    """The last look at which the measured node held none of the peer's entries."""
    done: float = 0.0
    """The first look at which it held all of them."""
    progress: list[tuple[float, int]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.done - self.start

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


def catch_up(
    a: LocalNode, peer: LocalNode, cu: CatchUp, monitor: Monitor, deadline_s: float
) -> None:
    """Launch ``peer``; follow ``a``'s head of its feed (every POLL_S) until ``a`` holds all
    of it."""
    cu.launched = cu.start = time.monotonic()
    peer.launch()
    assert peer.proc is not None
    monitor.watch(peer.proc.pid, "peer")
    end = cu.launched + deadline_s
    while time.monotonic() < end:
        t = time.monotonic()
        if cu.answered is None:
            with contextlib.suppress(OSError):
                if peer.call("GET", "/v1/status", timeout=2.0)[0] == 200:
                    cu.answered = time.monotonic()
        seq = head_of(a, peer.name)
        if seq is not None:
            cu.progress.append((t, seq))
            if seq == 0:
                cu.start = t
            if seq >= cu.entries:
                cu.done = time.monotonic()
                return
        time.sleep(POLL_S)
    raise SystemExit(
        f"{a.name} did not catch up with {peer.name} within {deadline_s:.0f} s; its log "
        f"ends:\n{a.log()}"
    )


def wait_rebuilt(monitor: Monitor, after: float, deadline_s: float) -> float | None:
    """When the first "verdict summaries rebuilt" line after ``after`` was seen (waiting
    ``deadline_s`` at most for it)."""
    end = time.monotonic() + deadline_s
    while True:
        later = [x for x in monitor.rebuilt if x > after]
        if later:
            return later[0]
        if time.monotonic() > end:
            return None
        time.sleep(POLL_S)


# -- the run --------------------------------------------------------------------------------


@dataclass
class Run:
    n: int = 0
    overlay: int = 0
    trigger: CatchUp | None = None
    bulk: CatchUp | None = None
    fill_s: float = 0.0
    feeds_s: float = 0.0
    ready_s: float = 0.0
    listening_s: float = 0.0
    serving: int = 0
    base_bytes: int = 0
    rebuild_bytes: int = 0
    idle: Window | None = None
    trigger_window: Window | None = None
    rebuild: Window | None = None
    catch_up: Window | None = None
    settle: Window | None = None
    writer_busy_s: float = 0.0
    builder_busy_s: float = 0.0
    rebuilt_tokens: int = 0
    node_rebuild_s: float | None = None
    """How long the rebuild took by the writer's own log line (if it says)."""
    rebuilds_in_catch_up: int = 0
    in_flight_at_end: bool = False
    settle_s: float = 0.0
    requests: Requests | None = None
    notes: list[str] = field(default_factory=list)
    monitor: Monitor | None = None
    t_load: float = 0.0
    t_stop: float = 0.0
    marks: list[tuple[float, str]] = field(default_factory=list)


def measure(args: argparse.Namespace, tmp: Path) -> Run:
    run = Run(overlay=args.overlay)
    net = LocalNet(tmp, ["a", "b", "c"])
    net.found("maintenance", ["a", "b", "c"], ["a"])
    a, b, c = net["a"], net["b"], net["c"]
    paths = tmp / "paths.txt"
    present, expected = write_paths(paths)
    now = int(time.time() * 1000)

    # set-up: the measured node's live set (here) and the two peers' feeds (children)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        t = time.perf_counter()
        feeds = pool.submit(
            build_peer_feeds, str(b.home), args.catchup_ops, str(c.home), args.overlay, now
        )
        run.n = fill_live(a.home, args.n, present_tokens(a.home, present), now, 11)
        run.fill_s = time.perf_counter() - t
        (entries_b, ops_b), (entries_c, ops_c) = feeds.result()
        run.bulk = CatchUp("b", ops_b, entries_b)
        run.trigger = CatchUp("c", ops_c, entries_c)
        run.feeds_s = time.perf_counter() - t
    print(
        f"set-up: {run.n:,} live rows written into a's indicators table in {run.fill_s:.1f} s; "
        f"c published {run.trigger.ops:,} ops, b {run.bulk.ops:,} and took c's (done "
        f"{run.feeds_s:.1f} s after the start of the set-up, in a child process alongside)",
        flush=True,
    )

    a.env.update(
        {
            "RISKMESH_SERVE_WORKERS": str(args.workers),
            "RISKMESH_LOG_LEVEL": "info",
            "RISKMESH_INDEX_REBUILD_INTERVAL_S": f"{SCHEDULED_S:g}",
        }
    )
    if args.overlay != default_overlay():
        a.env["RISKMESH_SERVE_SUMMARY_OVERLAY"] = str(args.overlay)
    monitor = Monitor(a.log_path)
    run.monitor = monitor
    want = args.workers or os.cpu_count() or 1
    wrk: subprocess.Popen[bytes] | None = None
    procs: dict[int, str] = {}
    try:
        t0 = time.monotonic()
        a.launch()
        assert a.proc is not None
        monitor.watch(a.proc.pid, "node")
        monitor.start()
        a.wait_ready(120 + run.n / 20_000)
        t_ready = time.monotonic()
        run.ready_s = t_ready - t0
        while listening(a) < want and time.monotonic() - t_ready < 60:
            time.sleep(0.05)
        run.serving = listening(a)
        run.listening_s = time.monotonic() - t0
        bases = base_files(a.home)
        run.base_bytes = bases[-1].stat().st_size if bases else 0
        print(
            f"a started in {run.ready_s:.1f} s (GET /v1/status answered), "
            f"{run.listening_s:.1f} s to {run.serving} serving processes listening; "
            f"base file {run.base_bytes / 1e6:,.1f} MB",
            flush=True,
        )
        lines = paths.read_text().splitlines()
        for j in (0, 1):  # one present and one absent path answer as they should
            status, body = a.call("GET", lines[j])
            if status != 200 or bool(body.get("match")) is not expected[j]:
                raise SystemExit(f"GET {lines[j]} answered {status} {body!r}")

        prefix = tmp / "timeline"
        wrk = start_wrk(a.base, a.home / "api-token", paths, args.rate, args.connections, prefix)
        run.t_load = time.monotonic()
        monitor.watch(wrk.pid, "wrk")

        # phase 1: idle
        time.sleep(WARM_S + args.idle_seconds)
        idle = (run.t_load + WARM_S, time.monotonic())

        # phase 2: c's feed brings the overlay to serve.summary_overlay: a base rebuild
        catch_up(a, c, run.trigger, monitor, 120 + run.trigger.ops / 2_000)
        t_rebuilt = wait_rebuilt(monitor, run.trigger.start, 60 + run.n / 20_000)
        if t_rebuilt is None:
            raise SystemExit(f"no base rebuild logged after c's catch-up; a's log ends:\n{a.log()}")
        t_start = monitor.busy_from(run.trigger.start, ("builder",))
        if t_start is None or t_start > t_rebuilt:
            t_start = run.trigger.done
            run.notes.append(
                "the base builder's start was not seen: the rebuild window starts "
                "when c's catch-up was seen complete"
            )
        elif t_start < run.trigger.done:
            run.notes.append(
                f"the base rebuild started {run.trigger.done - t_start:.1f} s before c's "
                "catch-up was seen complete (the looks are 0.2 s apart)"
            )
        t_end = t_rebuilt + 0.5
        line = monitor.rebuilt_lines[monitor.rebuilt.index(t_rebuilt)]
        said = re.search(r"rebuilt: (\d+) tokens(?: in ([\d.]+) s)?", line)
        if said:
            run.rebuilt_tokens = int(said.group(1))
            run.node_rebuild_s = float(said.group(2)) if said.group(2) else None
        time.sleep(max(0.0, t_end + 1.0 - time.monotonic()))
        run.writer_busy_s = monitor.busy_span(t_start, t_end, "writer")
        run.builder_busy_s = monitor.busy_span(t_start, t_end, "builder")
        bases = base_files(a.home)
        run.rebuild_bytes = bases[-1].stat().st_size if bases else 0
        assert c.proc is not None
        procs.update(start_times(process_tree(c.proc.pid)))
        c.stop()  # else it would take b's feed too, through a
        print(
            f"c's {run.trigger.ops:,} ops caught up in {run.trigger.seconds:.1f} s; base rebuild "
            f"of {run.rebuilt_tokens:,} tokens: window {t_end - t_start:.1f} s (the writer's log: "
            f"{'?' if run.node_rebuild_s is None else f'{run.node_rebuild_s:.1f}'} s; builder "
            f"busy {run.builder_busy_s:.1f} s, writer busy {run.writer_busy_s:.1f} s)",
            flush=True,
        )

        # phase 3: b's feed, M ops, caught up (and the rebuilds they set off)
        time.sleep(1.0)
        bulk = run.bulk
        seen = len(monitor.rebuilt)
        catch_up(a, b, bulk, monitor, 180 + bulk.ops / 2_000)
        run.rebuilds_in_catch_up = sum(
            1 for x in monitor.rebuilt[seen:] if bulk.start <= x <= bulk.done
        )
        time.sleep(0.5)
        t_settle = bulk.done
        recent = monitor.cores(time.monotonic() - 0.5, time.monotonic())
        run.in_flight_at_end = recent["builder"] > BUSY_CORES
        if run.in_flight_at_end and args.settle_s > 0:
            n_before = len(monitor.rebuilt)
            stop_at = time.monotonic() + args.settle_s
            while len(monitor.rebuilt) == n_before and time.monotonic() < stop_at:
                time.sleep(POLL_S)
            if len(monitor.rebuilt) > n_before:
                t_settle = monitor.rebuilt[-1] + 0.5
        run.settle_s = t_settle - bulk.done
        time.sleep(max(0.0, t_settle + 1.0 - time.monotonic()))
        print(
            f"b's {bulk.ops:,} ops caught up in {bulk.seconds:.1f} s ({bulk.rate:,.0f} ops/s); "
            f"{run.rebuilds_in_catch_up} base rebuild(s) ended during it"
            + ("; one was still running at its end" if run.in_flight_at_end else ""),
            flush=True,
        )
        run.t_stop = time.monotonic()
        summary = stop_wrk(wrk)
        wrk = None
    finally:
        if wrk is not None and wrk.poll() is None:
            wrk.kill()
            wrk.wait()
        for node in (a, b, c):
            if node.proc is not None:
                procs.update(start_times(process_tree(node.proc.pid)))
        monitor.stop()
        net.stop(deadline_s=30)
        left = kill_leftovers(procs)
        if left:
            run.notes.append(f"killed after the nodes' stop: {'; '.join(left)}")

    reqs = Requests.read(prefix, expected, summary)
    run.requests = reqs
    trig = run.trigger
    run.marks = [
        (run.t_load, "load starts"),
        (idle[0], "idle window"),
        (idle[1], "idle ends"),
        (trig.launched, "c launched"),
        (trig.start, "c's catch-up"),
        (trig.done, "c caught up"),
        (t_start, "base rebuild starts"),
        *((x, "base rebuilt (log)") for x in monitor.rebuilt),
        (bulk.launched, "b launched"),
        (bulk.start, "b's catch-up"),
        (bulk.done, "b caught up"),
    ]
    run.idle = reqs.window(*idle)
    run.trigger_window = reqs.window(trig.start, trig.done)
    run.rebuild = reqs.window(t_start, t_end)
    run.catch_up = reqs.window(bulk.start, bulk.done)
    if run.settle_s > 0:
        run.settle = reqs.window(bulk.done, t_settle)
    for w in (run.idle, run.trigger_window, run.rebuild, run.catch_up, run.settle):
        if w is not None:
            w.cores = monitor.cores(w.t0, w.t1)
    return run


def default_overlay() -> int:
    from node.config import SETTINGS

    return int(next(s.default for s in SETTINGS if s.name == "serve.summary_overlay"))


# -- the report -----------------------------------------------------------------------------


def report(run: Run, args: argparse.Namespace) -> list[dict[str, Any]]:
    assert run.idle and run.trigger_window and run.rebuild and run.catch_up and run.requests
    assert run.trigger and run.bulk
    live = f"{run.n / 1e6:g} M live"
    rows = [
        ("idle", run.idle),
        (f"catch-up of {run.trigger.ops:,} ops", run.trigger_window),
        ("base rebuild it set off", run.rebuild),
        (f"catch-up of {run.bulk.ops:,} ops", run.catch_up),
    ]
    if run.settle is not None:
        rows.append(("base rebuild still running", run.settle))
    print(
        f"GET /v1/query/{KIND}/{{value}}, 1% present, paced at {args.rate:,.0f}/s over "
        f"{args.connections} connections; latency in ms from the send slot (from the actual "
        "send in brackets); the worst second by its p99:"
    )
    print(
        f"  {'window':<31} {'s':>6} {'req/s':>6} {'p50':>6} {'p90':>6} {'p99':>15} "
        f"{'p99.9':>15} {'max':>15}  errors wrong  worst second"
    )
    for label, w in rows:

        def both(q: float | None, w: Window = w) -> str:
            if q is None:
                return f"{w.max():7.2f} ({w.max(slot=False):5.2f})"
            return f"{w.p(q):7.2f} ({w.p(q, slot=False):5.2f})"

        print(
            f"  {label:<31} {w.seconds:6.1f} {w.rate:6.0f} {w.p(50):6.2f} {w.p(90):6.2f} "
            f"{both(99)} {both(99.9)} {both(None)}  {w.errors:6d} {w.wrong:5d}  "
            f"{w.worst[1]:7.2f}"
        )
    print(
        "  CPU in cores over each window, by process, and the share of the window in which "
        "some task waited for a CPU (PSI):"
    )
    names = ("writer", "serving", "builder", "peer node", "wrk", "this script", "rest")
    print(f"    {'window':<31}" + "".join(f"{r:>12}" for r in names) + f"{'CPU wait':>10}")
    for label, w in rows:
        c = w.cores
        print(
            f"    {label:<31}"
            + "".join(f"{c.get(r, 0.0):12.2f}" for r in (*ROLES, "rest of the machine"))
            + f"{c.get('waiting for a CPU', 0.0):10.0%}"
        )
    s = run.requests.summary
    print(
        f"  wrk, whole run: {s['requests']:,} requests in {s['duration_us'] / 1e6:.0f} s, "
        f"errors {s['errors']}; wrong answers {int(run.requests.wrong.sum())}"
    )
    for note in run.notes:
        print(f"  note: {note}")

    idle_p99 = run.idle.p(99)
    common = (
        f"paced {args.rate:,.0f} req/s, {args.connections} connections; latency from the send "
        "slot (no coordinated omission)"
    )

    def note_of(w: Window) -> str:
        c = w.cores
        return (
            f"{common}; from the send: p99 {w.p(99, slot=False):.2f} ms; p50 {w.p(50):.2f} ms, "
            f"max {w.max():.1f} ms; {w.requests:,} requests in {w.seconds:.1f} s "
            f"({w.rate:,.0f}/s), {w.errors} errors, {w.wrong} wrong answers; cores: writer "
            f"{c['writer']:.2f}, serving {c['serving']:.2f}, builder {c['builder']:.2f}, "
            f"peer {c['peer node']:.2f}, wrk {c['wrk']:.2f}, rest of the machine "
            f"{c['rest of the machine']:.2f}; some task waited for a CPU "
            f"{c['waiting for a CPU']:.0%} of the time"
        )

    served = f"{run.serving} serving processes"
    overlay = f"serve.summary_overlay={run.overlay:,}" + (
        "" if run.overlay == default_overlay() else " (not the default)"
    )
    bulk, trig = run.bulk, run.trigger
    return [
        figure(
            f"single-item GET p99, idle ({live}, {served})",
            idle_p99,
            "ms",
            note=note_of(run.idle),
        ),
        figure(
            f"single-item GET p99 during a verdict-summary base rebuild at {live}",
            run.rebuild.p(99),
            "ms",
            baselines=[("the same load, idle", idle_p99)],
            budget=("<=", BUDGET_MS),
            also=("no errors and no wrong answers", run.rebuild.errors + run.rebuild.wrong == 0),
            note=f"rebuild set off by {overlay} changes (a peer's {trig.ops:,} ops); "
            f"{run.rebuild.seconds:.1f} s, base builder busy {run.builder_busy_s:.1f} s; "
            + note_of(run.rebuild),
        ),
        figure(
            f"single-item GET p99 during a catch-up of {bulk.ops / 1e6:g} M ops ({live})",
            run.catch_up.p(99),
            "ms",
            baselines=[("the same load, idle", idle_p99)],
            budget=("<=", BUDGET_MS),
            also=(
                "no errors and no wrong answers",
                run.catch_up.errors + run.catch_up.wrong == 0,
            ),
            note=f"{run.rebuilds_in_catch_up} base rebuild(s) ended during it"
            + ("; one was running at its end" if run.in_flight_at_end else "")
            + f" ({overlay}); "
            + note_of(run.catch_up),
        ),
        figure(
            f"gossip catch-up of {bulk.ops:,} ops by a served node at {live}, under query load",
            bulk.rate,
            "ops/s",
            baselines=[(f"the same node, {trig.ops:,} ops from another peer", trig.rate)],
            note=f"{bulk.seconds:.1f} s, from the last look at none of the entries to the "
            f"first at all of them (every {POLL_S:g} s); real nodes over loopback "
            "(bench_gossip: in process, no load)",
        ),
        figure(
            f"verdict-summary base rebuild at {live}, served node under load",
            run.rebuild.seconds,
            "s",
            note=f"{run.rebuilt_tokens:,} tokens; the window, from the builder's first work to "
            "0.5 s after the writer's log line"
            + (
                ""
                if run.node_rebuild_s is None
                else f" (the writer's own figure: {run.node_rebuild_s:.1f} s)"
            )
            + f"; builder busy {run.builder_busy_s:.1f} s, writer busy {run.writer_busy_s:.1f} s;"
            f" new base file {run.rebuild_bytes / 1e6:,.0f} MB",
        ),
        figure(
            f"served node start-up at {live} (first base file, Bloom index)",
            run.ready_s,
            "s",
            note=f"to GET /v1/status answering; {run.listening_s:.1f} s to {served} listening; "
            f"base file {run.base_bytes / 1e6:,.0f} MB "
            f"({run.base_bytes / max(1, run.n):.1f} bytes per live token)",
        ),
    ]


def print_timeline(run: Run, step: float) -> None:
    """Per ``step`` seconds of the load: requests by send slot, their p99 and max from the
    slot and max from the send, the CPU by process, a's head of b's feed, and events."""
    assert run.requests is not None and run.monitor is not None
    r, mon = run.requests, run.monitor
    print(
        f"timeline, {step:g} s rows (s from the load's start; ms; cores):\n"
        f"  {'t':>6} {'req':>5} {'p99':>7} {'max':>7} {'max snd':>7} {'writer':>6} "
        f"{'serving':>7} {'builder':>7} {'peer':>5} {'wrk':>5} {'rest':>5} {'wait':>5} "
        f"{'head':>5}  events"
    )
    t = run.t_load
    lat = r.done - np.minimum(r.slot, r.sent)
    send = r.done - r.sent
    while t < run.t_stop:
        m = (r.slot >= t * 1000) & (r.slot < (t + step) * 1000)
        v = np.sort(lat[m])
        c = mon.cores(t, t + step)
        assert run.trigger is not None and run.bulk is not None
        heads = [
            f"{p}{seq}"
            for p, cu in (("c", run.trigger), ("b", run.bulk))
            for seq in [s for x, s in cu.progress if t <= x < t + step][-1:]
        ]
        events = [what for x, what in run.marks if t <= x < t + step]
        print(
            f"  {t - run.t_load:6.1f} {int(m.sum()):5d} "
            f"{percentile(v.tolist(), 99) if len(v) else float('nan'):7.2f} "
            f"{v[-1] if len(v) else float('nan'):7.1f} "
            f"{send[m].max() if m.any() else float('nan'):7.1f} {c['writer']:6.2f} "
            f"{c['serving']:7.2f} {c['builder']:7.2f} {c['peer node']:5.2f} {c['wrk']:5.2f} "
            f"{c['rest of the machine']:5.2f} {c['waiting for a CPU']:5.0%} "
            f"{' '.join(heads):>5}  {', '.join(events)}"
        )
        t += step


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=None, help="live indicators (10 000 000)")
    ap.add_argument("--catchup-ops", type=int, default=None, help="ops caught up (1 000 000)")
    ap.add_argument(
        "--quick", action="store_true", help="n 200 000, 50 000 ops caught up, overlay 10 000"
    )
    ap.add_argument("--rate", type=float, default=1000.0, help="paced GETs per second")
    ap.add_argument(
        "--connections", type=int, default=8, help="wrk connections, one per wrk thread"
    )
    ap.add_argument(
        "--workers", type=int, default=0, help="the node's serve.workers (0: one per core)"
    )
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="idle phase, seconds")
    ap.add_argument(
        "--overlay",
        type=int,
        default=None,
        help="the node's serve.summary_overlay, and the ops of the peer feed that sets off "
        "the base rebuild (its default, 200 000; --quick: 10 000)",
    )
    ap.add_argument(
        "--keep", metavar="DIR", help="make the homes, logs and timings in DIR (new) and keep them"
    )
    ap.add_argument(
        "--timeline",
        type=float,
        default=0.0,
        metavar="STEP",
        help="also print the whole run in rows of STEP seconds (latency, CPU, progress)",
    )
    ap.add_argument(
        "--settle-s",
        type=float,
        default=0.0,
        help="most seconds to wait, and measure, for a base rebuild still running when the "
        "catch-up ends (0: none)",
    )
    args = ap.parse_args()
    if args.n is None:
        args.n = QUICK["n"] if args.quick else 10_000_000
    if args.catchup_ops is None:
        args.catchup_ops = QUICK["catchup_ops"] if args.quick else 1_000_000
    if args.overlay is None:
        args.overlay = QUICK["overlay"] if args.quick else default_overlay()
    if args.quick and args.idle_seconds == 10.0:
        args.idle_seconds = 6.0
    if shutil.which("wrk") is None:
        raise SystemExit("bench_maintenance needs wrk (the HTTP load generator) on PATH")
    started = time.perf_counter()
    print(
        f"# bench_maintenance on {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores; {args.n:,} live {KIND} "
        f"indicators, catch-up of {args.catchup_ops:,} ops; load average "
        f"{' / '.join(Path('/proc/loadavg').read_text().split()[:3])}",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = Path(args.keep)
            tmp.mkdir(parents=True, exist_ok=False)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-maint-")))
        try:
            run = measure(args, tmp)
        except NetError as e:
            raise SystemExit(str(e)) from None
    figs = report(run, args)
    if args.timeline > 0:
        print_timeline(run, args.timeline)
    print(f"whole run {time.perf_counter() - started:.0f} s")
    print_figures(
        "bench_maintenance",
        {
            "n": run.n,
            "catchup_ops": run.bulk.ops if run.bulk else 0,
            "overlay": run.overlay,
            "rate": args.rate,
            "connections": args.connections,
            "workers": args.workers,
        },
        figs,
    )


if __name__ == "__main__":
    main()
