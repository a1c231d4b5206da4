"""The operator guide's backup and restore, done literally, forks nothing.

Three real nodes. A reports, is backed up online (`riskmesh backup`), reports
twice more (gossiped to B and C), is stopped, restored from the backup as the
guide says (database back, its WAL and SHM removed), started, and reports
again: the new report is held (409 syncing) until A's first exchange has
brought back its own later entries from a peer, and then lands at the next
free seq. No node holds a fork proof, and every report matches everywhere.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import running_net

from node.localnet import LocalNet, open_for_reports, riskmesh, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEADLINE_S = 30.0
ENV = {"RISKMESH_GOSSIP_INTERVAL_S": "0.25", "RISKMESH_GOSSIP_TIMEOUT_S": "5"}


def item(value: str) -> dict[str, Any]:
    return {"kind": "device", "value": value, "category": "device_risk"}


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LocalNet]:
    with running_net(tmp_path / "restore-test", "abc", admins="a", env=ENV) as n:
        yield n


def head_of(net: LocalNet, at: str, whose: str) -> int:
    status = net.status(at)
    me = net.status(whose)["member"]["id"]
    [m] = [m for m in status["members"] if m["id"] == me]
    return int((m["head"] or {}).get("seq", 0))


def test_the_literal_restore_procedure_forks_nothing(net: LocalNet, tmp_path: Path) -> None:
    a = net["a"]
    assert a.client.report([item("fp:before-backup")])["entry"]["seq"] == 1
    backup = tmp_path / "a-backup.db"
    r = riskmesh("backup", "--home", str(a.home), str(backup))
    assert r.returncode == 0, r.stderr
    assert (backup.stat().st_mode & 0o777) == 0o600
    assert a.client.report([item("fp:after-backup-1")])["entry"]["seq"] == 2
    assert a.client.report([item("fp:after-backup-2")])["entry"]["seq"] == 3
    wait_until(
        "b and c to hold a's feed to seq 3",
        lambda: head_of(net, "b", "a") == 3 and head_of(net, "c", "a") == 3,
        DEADLINE_S,
    )
    # the operator guide: stop, put the database back (and drop its WAL and SHM), start
    net.stop("a")
    db = a.home / "riskmesh.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, db)
    net.start("a")
    assert head_of(net, "a", "a") in (1, 3)  # 3 only if a peer was quicker than this line
    # until its first exchange it holds reports; then it has its own entries 2 and 3 back
    wait_until("a to take reports again", lambda: open_for_reports(net.status("a")), DEADLINE_S)
    assert head_of(net, "a", "a") == 3
    assert a.client.report([item("fp:after-restore")])["entry"]["seq"] == 4
    everything = [
        {"kind": "device", "value": v}
        for v in ("fp:before-backup", "fp:after-backup-1", "fp:after-backup-2", "fp:after-restore")
    ]
    wait_until(
        "every report to match at every node",
        lambda: all(all(v["match"] for v in net[x].client.query(everything)) for x in "abc"),
        DEADLINE_S,
    )
    for x in "abc":
        assert net.status(x)["forks"] == [], x
