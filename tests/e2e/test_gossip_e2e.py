"""Four real nodes, each `riskmesh serve` in its own process, gossiping on loopback.

One consortium for the whole module (founded through the CLI); the tests run
in order and each leaves every node running and in sync.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import nacl.public
import pytest
from cluster import Cluster

from node.localnet import open_for_reports, wait_until
from protocol import codec
from protocol.entries import decode_entry
from protocol.keys import MemberKey, parse_member_id, x25519_public

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FRAME_BYTES = 32 * 1024
DEADLINE_S = 30.0
ENV = {
    "RISKMESH_GOSSIP_INTERVAL_S": "0.25",
    "RISKMESH_GOSSIP_TIMEOUT_S": "5",
    "RISKMESH_GOSSIP_FRAME_BYTES": str(FRAME_BYTES),
    "RISKMESH_LOG_LEVEL": "info",
}

#: every raw value any test here reports; none may cross the peer API
REPORTED: list[str] = []


def item(kind: str, value: str, category: str = "telecom_fraud", **kw: Any) -> dict[str, Any]:
    REPORTED.append(value)
    return {"kind": kind, "value": value, "category": category, **kw}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("consortium"), "ABCD", ENV)
    try:
        c.start()
        yield c
    finally:
        c.close()


def matches_everywhere(c: Cluster, names: str, items: list[dict[str, str]]) -> bool:
    return all(all(v["match"] for v in c[n].query(items)) for n in names)


def matches_nowhere(c: Cluster, names: str, items: list[dict[str, str]]) -> bool:
    return all(not any(v["match"] for v in c[n].query(items)) for n in names)


def q(kind: str, value: str) -> dict[str, str]:
    return {"kind": kind, "value": value}


def test_every_founder_receives_its_key_grant(cluster: Cluster) -> None:
    wait_until(
        "every node to hold epoch 1",
        lambda: all(open_for_reports(cluster[n].status()) for n in "ABCD"),
        DEADLINE_S,
    )


def test_a_report_at_one_node_matches_at_every_other(cluster: Cluster) -> None:
    a = cluster["A"]
    a.report(
        [
            item("phone", "+86 139 0000 1111", severity=4),
            item("device", "imei:490154203237518", "device_risk"),
            item("merchant", "pay:shop-778", "merchant_fraud"),
        ]
    )
    wanted = [q("phone", "13900001111"), q("device", "imei:490154203237518")]
    wanted.append(q("merchant", "PAY:shop-778"))
    t0 = time.monotonic()
    wait_until(
        "the reports to match at B, C and D",
        lambda: matches_everywhere(cluster, "BCD", wanted),
        DEADLINE_S,
    )
    elapsed = time.monotonic() - t0
    verdict = cluster["C"].query([q("phone", "+8613900001111")])[0]
    assert verdict["reporters"] == 1
    assert verdict["reported_by"] == ["A"]
    assert verdict["categories"] == ["telecom_fraud"]
    assert verdict["max_severity"] == 4
    assert elapsed < DEADLINE_S


def test_a_stopped_node_catches_up_after_restart(cluster: Cluster) -> None:
    a, b, d = cluster["A"], cluster["B"], cluster["D"]
    cluster.stop("D")
    for i in range(1500):
        a.report([item("account", f"bank:catchup-{i}", "money_mule")])
    for i in range(200):
        b.report([item("account", f"bank:catchup-b-{i}", "money_mule")])
    want = {"A": a.heads()["A"], "B": b.heads()["B"]}
    assert want["A"] >= 1501 and want["B"] >= 200
    cluster.start("D")
    wait_until(
        "D to hold every entry of A and B",
        lambda: (h := d.heads())["A"] == want["A"] and h["B"] == want["B"],
        60.0,
    )
    sample = [q("account", f"bank:catchup-{i}") for i in (0, 777, 1499)]
    sample.append(q("account", "bank:catchup-b-199"))
    assert all(v["match"] for v in d.query(sample))
    # D received ~1700 entries of ~300 bytes each: many frames of FRAME_BYTES
    received = sum(p["bytes_received"] for p in d.status()["peers"])
    assert received > 5 * FRAME_BYTES


def test_a_partition_delays_delivery_and_healing_restores_it(cluster: Cluster) -> None:
    ids = {n: parse_member_id(cluster[n].status()["member"]["id"]) for n in "ABCD"}
    left, right = "AB", "CD"
    cluster.proxy.blocked = {(ids[x], y) for x in left for y in right} | {
        (ids[y], x) for x in left for y in right
    }
    try:
        cluster["A"].report([item("email", "split.left@mule-ring.cn", "phishing")])
        cluster["C"].report([item("email", "split.right@mule-ring.cn", "phishing")])
        left_item = [q("email", "Split.Left@Mule-Ring.cn")]
        right_item = [q("email", "split.right@mule-ring.cn")]
        wait_until(
            "B to see A's report", lambda: matches_everywhere(cluster, "B", left_item), DEADLINE_S
        )
        wait_until(
            "D to see C's report", lambda: matches_everywhere(cluster, "D", right_item), DEADLINE_S
        )
        # a few more rounds: nothing crosses the partition
        wait_until(
            "C to count failed exchanges with A or B",
            lambda: any(
                p["failures"] > 0 for p in cluster["C"].status()["peers"] if p["name"] in left
            ),
            DEADLINE_S,
        )
        assert matches_nowhere(cluster, "CD", left_item)
        assert matches_nowhere(cluster, "AB", right_item)
    finally:
        cluster.proxy.blocked = set()
    both = left_item + right_item
    wait_until("the partition to heal", lambda: matches_everywhere(cluster, "ABCD", both), 60.0)


def test_a_retraction_turns_the_match_off_everywhere(cluster: Cluster) -> None:
    a = cluster["A"]
    phone = [q("phone", "13900001111")]
    assert matches_everywhere(cluster, "ABCD", phone)
    a.retract([{"kind": "phone", "value": "+86 139 0000 1111", "reason": "appeal_upheld"}])
    wait_until(
        "the match to disappear everywhere",
        lambda: matches_nowhere(cluster, "ABCD", phone),
        DEADLINE_S,
    )
    # the other reports of that entry still match
    assert matches_everywhere(cluster, "ABCD", [q("device", "imei:490154203237518")])


def test_status_shows_heads_and_peers(cluster: Cluster) -> None:
    heads = {n: cluster[n].heads() for n in "ABCD"}
    wait_until(
        "identical heads",
        lambda: len({tuple(sorted(cluster[n].heads().items())) for n in "ABCD"}) == 1,
        DEADLINE_S,
    )
    st = cluster["B"].status()
    peers = {p["name"]: p for p in st["peers"]}
    assert set(peers) == {"A", "C", "D"}
    for p in peers.values():
        assert p["last_success"] is not None
        assert p["exchanges"] > 0
        assert p["invalid"] == 0
    assert heads["A"]["A"] >= 1502


def _box(me: MemberKey, other: bytes) -> nacl.public.Box:
    return nacl.public.Box(me.x25519_private(), nacl.public.PublicKey(x25519_public(other)))


def test_no_raw_identifier_crosses_the_peer_api(cluster: Cluster) -> None:
    keys = {}
    for n in "ABCD":
        k = MemberKey.from_seed((cluster[n].home / "keys" / "member.key").read_bytes())
        keys[k.id] = k
    by_name = {
        n: MemberKey.from_seed((cluster[n].home / "keys" / "member.key").read_bytes())
        for n in "ABCD"
    }
    captured = cluster.proxy.snapshot()
    assert len(captured) > 100
    needles = set()
    for v in REPORTED:
        for form in {v, v.lower(), v.replace(" ", ""), v.split(":", 1)[-1]}:
            needles.add(form.encode())
    plaintexts = []
    for cap in captured:
        env = codec.loads(cap.request)
        frm = env["from"]
        plaintexts.append(_box(keys[env["to"]], frm).decrypt(env["box"], env["nonce"]))
        if cap.status == 200 and cap.response:
            env = codec.loads(cap.response)
            plaintexts.append(_box(by_name[cap.target], frm).decrypt(env["box"], env["nonce"]))
    entries = 0
    for blob in plaintexts + [c.request for c in captured] + [c.response for c in captured]:
        found = [n for n in needles if n in blob]
        assert not found, f"raw identifiers on the peer API: {found}"
    for plain in plaintexts:
        msg = codec.loads(plain)
        for raw in msg.get("en", []):
            e = decode_entry(raw)
            entries += 1
            for op in e.ops:
                assert len(op.tok) == 16
    assert entries > 1500  # the scan really saw the replicated entries


def test_no_node_logged_an_error(cluster: Cluster) -> None:
    for n in "ABCD":
        text = cluster.stderr(n)
        assert "Traceback" not in text, text
