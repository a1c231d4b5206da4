"""A serving process's own parts (node/workers.py), without processes."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from node.config import load_config
from node.core import Node
from node.home import init_home
from node.keys import key_hash
from node.server import open_node
from node.workers import (
    DELTA_CHUNK,
    RECORD_BATCH,
    Hub,
    MemoryKeys,
    Supervisor,
    Worker,
    run_dir,
)

PIECES = ("overlay", "delta")


def _worker(tmp_path: Path, **env: str) -> Worker:
    home = tmp_path / "w"
    init_home(home, name="w", endpoint="http://w.test", api_listen="127.0.0.1:1")
    return Worker(load_config(home, env=env))


def test_queries_of_one_interval_go_to_the_writer_as_one_batch(tmp_path: Path) -> None:
    w = _worker(tmp_path)
    w._record(["phone"], ["+8613800138000"], [None], [b"t" * 16], 1, 1000)
    w._record(
        ["device", "ip"], ["fp:a", "1.2.3.4"], ["case-1", None], [b"u" * 16, b"v" * 16], 1, 1400
    )
    w._record(["phone"], ["+8613800138001"], [None], [b"w" * 16, b"x" * 16], 2, 1500)
    assert w._queried == [
        (
            ["phone", "device", "ip"],
            ["+8613800138000", "fp:a", "1.2.3.4"],
            [None, "case-1", None],
            [b"t" * 16, b"u" * 16, b"v" * 16],
            1,
            1400,
        ),
        (["phone"], ["+8613800138001"], [None], [b"w" * 16, b"x" * 16], 2, 1500),
    ]
    # a batch stops growing at RECORD_BATCH items
    w._queried.clear()
    for i in range(RECORD_BATCH + 1):
        w._record(["ip"], [f"10.0.{i // 256 % 256}.{i % 256}"], [None], [b"z" * 16], 1, i)
    assert [len(b[0]) for b in w._queried] == [RECORD_BATCH, 1]


def test_nothing_is_kept_when_recent_queries_are_off(tmp_path: Path) -> None:
    w = _worker(tmp_path, RISKMESH_ALERTS_RECENT_QUERY_HOURS="0")
    w._record(["phone"], ["+8613800138000"], [None], [b"t" * 16], 1, 1000)
    assert w._queried == []


def test_api_keys_are_checked_from_memory_and_a_wrong_secret_is_not_remembered() -> None:
    keys = MemoryKeys()
    keys.set([(key_hash("rm_good"), "platform", ["query"])])
    assert keys.check("rm_good", 5) is not None and keys.used == {key_hash("rm_good"): 5}
    for i in range(5000):
        assert keys.check(f"rm_bad{i}", 6) is None
    assert len(keys._hashes) <= 1024
    keys.set([])  # revoked at the writer: refused at once
    assert keys.check("rm_good", 7) is None


async def test_the_hub_sends_a_large_commit_in_pieces_and_the_overlay_before_the_context(
    node_home: Path,
) -> None:
    """A serving process never unpacks more than DELTA_CHUNK changes in one go, and it
    starts listening (the context) only once it holds every change the writer has."""
    config = load_config(node_home, env={})
    node = open_node(config)
    now = 1_700_000_000_000
    node.rebuild_index(now)
    # changes on top of the base file before the serving process connects
    first = [f"android:{i:016X}" for i in range(DELTA_CHUNK * 2 + 7)]
    _report(node, first, now)
    hub = Hub(node, run_dir(node_home) / "hub.sock")
    await hub.start()
    worker = Worker(config)
    sizes: list[tuple[str, int]] = []
    apply = worker.apply

    def recording(msg: tuple[Any, ...]) -> None:
        what = msg[0]
        sizes.append((what, len(msg[2 if what == "overlay" else 3]) if what in PIECES else 0))
        apply(msg)

    worker.apply = recording  # type: ignore[method-assign]
    try:
        await worker.connect(deadline_s=5)
        assert [w for w, _ in sizes] == ["base", "overlay", "overlay", "overlay", "ctx"]
        assert all(n <= DELTA_CHUNK for _, n in sizes)
        toks = node.summaries.changes()
        assert len(toks) == len(first)
        assert all(b is not None for b in worker.summaries.lookup(list(toks)))
        # a commit larger than a piece arrives in pieces, every change of it applied
        sizes.clear()
        later = [f"android:{i:016X}" for i in range(10**6, 10**6 + DELTA_CHUNK * 3 + 1)]
        _report(node, later, now + 1)
        await worker.caught_up(hub.pos, timeout_s=5)
        deltas = [n for w, n in sizes if w == "delta"]
        assert deltas == [DELTA_CHUNK] * 3 + [1]
        assert worker.summaries.lookup(list(node.summaries.changes())) == [
            b for _, b in node.summaries.changes().values()
        ]
    finally:
        # the reader first: a serving process whose hub goes away stops itself
        worker._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker._reader_task
        if worker._writer is not None:
            worker._writer.close()
            await worker._writer.wait_closed()
        await hub.close()
        node.close()


def _report(node: Node, values: list[str], now: int) -> None:
    """Report ``values`` in one commit (reports of at most 1000 items in one unit)."""
    with node.store.atomic():
        for i in range(0, len(values), 1000):
            node.report(
                [
                    {"kind": "device", "value": v, "category": "device_risk", "ttl_days": 30}
                    for v in values[i : i + 1000]
                ],
                now,
            )


async def test_a_supervisor_stopped_while_it_starts_a_process_leaves_none_running(
    node_home: Path,
) -> None:
    """A serving process whose start was under way when the node stopped is stopped too,
    not left waiting for a writer that is gone."""
    supervisors = []
    for _ in range(5):
        supervisor = Supervisor(node_home, 2)
        await supervisor.start()
        await asyncio.sleep(0)  # the starts are asked of the spawner thread
        await supervisor.stop(timeout_s=5)
        supervisors.append(supervisor)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20

    def running() -> list[int]:
        # every process a spawner started (it tells the supervisor on the loop), once
        # the spawner thread has done what it was asked
        out = []
        for sup in supervisors:
            assert sup._spawner is not None
            if sup._spawner._thread.is_alive():
                out.append(-1)
            out += [p.pid for p in sup._started if p.poll() is None]
        return out

    while running() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert running() == []
    assert sum(len(sup._started) for sup in supervisors) > 0, "no start was under way"
