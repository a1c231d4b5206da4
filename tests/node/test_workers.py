"""A serving process's own parts (node/workers.py), without processes."""

from __future__ import annotations

from pathlib import Path

from node.config import load_config
from node.home import init_home
from node.keys import key_hash
from node.workers import RECORD_BATCH, MemoryKeys, Worker


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
