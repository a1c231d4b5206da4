"""Governance with real nodes: a three-founder genesis, onboarding by two of three
admins, removal with a key rotation, all through the CLI and gossip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import Cluster
from nodeproc import cli

from node.localnet import open_for_reports, wait_until
from node.store import SqliteStore
from protocol.entries import AddOp, decode_entry
from protocol.keys import MemberKey, parse_member_id
from protocol.tokens import EpochKeys

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEADLINE_S = 30.0
ENV = {
    "RISKMESH_GOSSIP_INTERVAL_S": "0.25",
    "RISKMESH_GOSSIP_TIMEOUT_S": "5",
    "RISKMESH_LOG_LEVEL": "info",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("gov"), "ABCD", ENV, founders="ABC", admins="ABC")
    try:
        c.start("A", "B", "C")
        yield c
    finally:
        c.close()


def q(value: str) -> list[dict[str, str]]:
    return [{"kind": "phone", "value": value}]


def matches(c: Cluster, names: str, value: str) -> bool:
    return all(c[n].query(q(value))[0]["match"] for n in names)


def version(c: Cluster, name: str) -> int:
    return int(c[name].status()["charter"]["version"])


def admin(c: Cluster, name: str, *args: str) -> str:
    """Run `riskmesh admin ...` against member ``name``; return its stdout."""
    sub, *rest = args
    return cli("admin", sub, *rest[:1], "--home", str(c[name].home), *rest[1:])


def propose(c: Cluster, name: str, what: str, *args: str) -> str:
    out = cli("admin", "propose", what, "--home", str(c[name].home), *args)
    return out.split()[-1]  # the proposal id is the last word of the last line


def test_three_founders_make_the_genesis_and_get_keys(cluster: Cluster) -> None:
    wait_until(
        "the founders to hold epoch 1",
        lambda: all(open_for_reports(cluster[n].status()) for n in "ABC"),
        DEADLINE_S,
    )
    charter = cluster["A"].call("GET", "/v1/admin/charter")[1]
    assert [m["name"] for m in charter["members"]] == ["A", "B", "C"]
    assert all("admin" in m["roles"] for m in charter["members"])
    assert charter["quorum_size"] == 2


def test_onboarding_needs_two_of_three_admins(cluster: Cluster) -> None:
    a = cluster["A"]
    a.report([{"kind": "phone", "value": "+86 139 0000 0001", "category": "telecom_fraud"}])
    wait_until(
        "the report to reach B and C", lambda: matches(cluster, "BC", "13900000001"), DEADLINE_S
    )

    pid = propose(cluster, "A", "add-member", str(cluster["D"].home / "join-request.cbor"))
    assert len(pid) == 16

    def pending_at_c() -> dict[str, Any] | None:
        props = cluster["C"].call("GET", "/v1/admin/proposals")[1]["proposals"]
        return next((p for p in props if p["id"] == pid), None)

    seen = wait_until("C to hold the proposal", pending_at_c, DEADLINE_S)
    assert seen["status"] == "pending" and seen["signers"] == ["A"] and seen["needed"] == 2
    # one signature is not enough: nothing changed anywhere
    assert all(version(cluster, n) == 1 for n in "ABC")
    listing = json.loads(admin(cluster, "C", "proposals", "--json"))
    assert [p["id"] for p in listing if p["status"] == "pending"] == [pid]

    out = admin(cluster, "B", "sign", pid)
    assert "final" in out and out.split()[-1] == pid
    wait_until(
        "version 2 everywhere", lambda: all(version(cluster, n) == 2 for n in "ABC"), DEADLINE_S
    )


def test_the_newcomer_gets_its_grant_and_earlier_reports(cluster: Cluster) -> None:
    d = cluster["D"]
    cluster.start("D")
    wait_until(
        "D to sync the charter and open its grant", lambda: open_for_reports(d.status()), DEADLINE_S
    )
    assert version(cluster, "D") == 2
    wait_until(
        "D to find the report made before it joined",
        lambda: matches(cluster, "D", "13900000001"),
        DEADLINE_S,
    )
    verdict = d.query(q("+8613900000001"))[0]
    assert verdict["reported_by"] == ["A"]
    d.report([{"kind": "phone", "value": "139 0000 0002", "category": "money_mule"}])
    wait_until(
        "D's report to reach the others", lambda: matches(cluster, "ABC", "13900000002"), DEADLINE_S
    )


def test_removal_refuses_the_removed_member_and_rotates_the_key(cluster: Cluster) -> None:
    a, d = cluster["A"], cluster["D"]
    d_id = d.status()["member"]["id"]
    pid = propose(cluster, "A", "remove-member", d_id)
    wait_until(
        "B to hold the removal",
        lambda: any(
            p["id"] == pid for p in cluster["B"].call("GET", "/v1/admin/proposals")[1]["proposals"]
        ),
        DEADLINE_S,
    )
    admin(cluster, "B", "sign", pid)
    wait_until(
        "version 3 at A, B, C", lambda: all(version(cluster, n) == 3 for n in "ABC"), DEADLINE_S
    )
    wait_until(
        "the new epoch's key at A, B and C only",
        lambda: all(cluster[n].status()["epochs"] == [1, 2] for n in "ABC"),
        DEADLINE_S,
    )
    charter = a.call("GET", "/v1/admin/charter")[1]
    [removed] = [m for m in charter["members"] if m["name"] == "D"]
    assert removed["status"] == "revoked"
    until = removed["until_seq"]
    assert d.status()["epochs"] == [1]

    # D signs another report: nobody takes it
    failures_before = {p["name"]: p["failures"] for p in d.status()["peers"]}
    code, _ = d.call(
        "POST",
        "/v1/reports",
        {"items": [{"kind": "phone", "value": "139 0000 0003", "category": "money_mule"}]},
    )
    assert code in (201, 409, 422)
    wait_until(
        "D's gossip to be refused by A, B and C",
        lambda: all(
            p["failures"] > failures_before.get(p["name"], 0)
            for p in d.status()["peers"]
            if p["name"] in "ABC"
        ),
        DEADLINE_S,
    )
    for n in "ABC":
        heads = cluster[n].heads()
        assert heads["D"] <= until, n
        assert not cluster[n].query(q("13900000003"))[0]["match"], n
    # the policy keeps a removed member's earlier reports live
    assert matches(cluster, "ABC", "13900000002")


def test_after_rotation_reports_match_and_the_removed_key_cannot(cluster: Cluster) -> None:
    a = cluster["A"]
    a.report([{"kind": "phone", "value": "+86 139 0000 0004", "category": "telecom_fraud"}])
    wait_until(
        "the new report at B and C", lambda: matches(cluster, "BC", "13900000004"), DEADLINE_S
    )
    # the earlier report was republished under epoch 2 and still matches
    assert matches(cluster, "ABC", "13900000001")

    a_key = MemberKey.from_seed((a.home / "keys" / "member.key").read_bytes())
    store_a = SqliteStore(a.home / "riskmesh.db", a_key)
    try:
        head = store_a.head(a_key.id)
        assert head is not None
        last = decode_entry(store_a.entry(a_key.id, head.seq) or b"")
        ops = [op for op in last.ops if isinstance(op, AddOp)]
        assert ops and all(op.ep == 2 for op in ops)
        new_tokens = {op.tok for op in ops}
    finally:
        store_a.close()
    d = cluster["D"]
    d_key = MemberKey.from_seed((d.home / "keys" / "member.key").read_bytes())
    store_d = SqliteStore(d.home / "riskmesh.db", d_key)
    try:
        d_keys = EpochKeys(store_d.epoch_keys())
    finally:
        store_d.close()
    assert list(d_keys) == [1]
    d_tokens = {d_keys.tokenizer(ep).token("phone", "+8613900000004") for ep in d_keys}
    assert not d_tokens & new_tokens
    assert not d.query(q("13900000004"))[0]["match"]
    assert parse_member_id(d.status()["member"]["id"]) == d_key.id


def test_no_node_logged_a_traceback(cluster: Cluster) -> None:
    for n in "ABCD":
        assert "Traceback" not in cluster.stderr(n), cluster.stderr(n)
