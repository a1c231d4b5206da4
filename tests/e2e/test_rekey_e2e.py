"""A frozen member recovers with `rekey-member`, and its reports match again.

Three real nodes. C reports; someone holding C's key signs a second, different
entry at C's seq 1 and gossips it to A over the peer API (as C): a fork proof.
Every node freezes C's feed, C's report stops matching, and C's node refuses
new reports. C runs `riskmesh rekey`; the admin A proposes `rekey-member`
with C's new join request (A is the only admin: final at once). C's node learns
the version (from the refusal of its old identity, or by gossip), adopts the new
key, and republishes its live report from its sealed raw values in a new feed:
the report matches everywhere again, C reports again, and the old feed stays
frozen as evidence.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster import running_net

from contracts.policy import DAY_MS
from node.localnet import LocalNet, open_for_reports, riskmesh, wait_until
from node.peer import GOSSIP_PATH
from protocol.charter_chain import CharterChain
from protocol.entries import AddOp
from protocol.feeds import Feeds
from protocol.gossip import GossipEngine, Send
from protocol.keys import MemberId, MemberKey, parse_member_id
from protocol.sealed import Sealer
from protocol.store import MemoryStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEADLINE_S = 30.0
ENV = {"RISKMESH_GOSSIP_INTERVAL_S": "0.25", "RISKMESH_GOSSIP_TIMEOUT_S": "5"}
REPORT = {"kind": "device", "value": "fp:mule-phone-7", "category": "device_risk"}
QUERY = [{"kind": "device", "value": "fp:mule-phone-7"}]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LocalNet]:
    with running_net(tmp_path / "rekey-test", "abc", admins="a", env=ENV) as n:
        yield n


def matches(net: LocalNet, names: str) -> bool:
    return all(net[x].client.query(QUERY)[0]["match"] for x in names)


def forge_and_gossip(net: LocalNet, victim: str, to: str) -> None:
    """Sign a second entry at ``victim``'s seq 1 with its key and gossip it to ``to``."""
    import urllib.request

    home = net[victim].home
    key = MemberKey.from_seed((home / "keys" / "member.key").read_bytes())
    db = sqlite3.connect(f"file:{home / 'riskmesh.db'}?mode=ro", uri=True)
    raws = [r[0] for r in db.execute("SELECT raw FROM charters ORDER BY version")]
    db.close()
    chain = CharterChain.from_raws(raws, anchor=CharterChain(raws[0]).anchor)
    store = MemoryStore()
    feeds = Feeds(store, chain)
    now = int(time.time() * 1000)
    forged = AddOp(random.randbytes(16), "device", 1, "device_risk", 2, now + DAY_MS)
    feeds.publish(key, [forged], now)
    engine = GossipEngine(key, feeds, rng=random.Random(1), now=now, fanout=1)
    peer = MemberId(parse_member_id(net.status(to)["member"]["id"]))
    sealer = Sealer(key)
    url = f"http://127.0.0.1:{net[to].peer_port}{GOSSIP_PATH}"
    engine.start_exchange(peer, now)
    sends = [e for e in engine.events() if isinstance(e, Send)]
    for send in sends:
        msg: bytes | None = send.data
        while msg is not None:
            req = urllib.request.Request(
                url,
                data=sealer.seal(peer, msg, now),
                headers={"Content-Type": "application/cbor"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                if resp.status == 204:
                    break
                answer = resp.read()
            msg = engine.receive(peer, sealer.open_response(peer, answer, now, 300_000), now)


def member_id(net: LocalNet, name: str) -> str:
    return str(net.status(name)["member"]["id"])


def test_a_frozen_member_matches_again_after_rekey_member(net: LocalNet) -> None:
    c = net["c"]
    assert c.client.report([REPORT])["entry"]["seq"] == 1
    wait_until("c's report to match at a and b", lambda: matches(net, "ab"), DEADLINE_S)
    old_id = member_id(net, "c")

    forge_and_gossip(net, "c", to="a")
    wait_until(
        "every node to hold the fork proof",
        lambda: all(any(f["log"] == old_id for f in net.status(x)["forks"]) for x in "abc"),
        DEADLINE_S,
    )
    wait_until("c's report to stop matching", lambda: not matches(net, "ab"), DEADLINE_S)
    status, body = c.call("POST", "/v1/reports", {"items": [REPORT]})
    assert status == 409 and body is not None and body["error"]["code"] == "frozen"
    human = riskmesh("status", "--home", str(c.home))
    assert "FORK PROOF" in human.stdout and "THIS member" in human.stdout, human.stdout

    r = riskmesh("rekey", "--home", str(c.home))
    assert r.returncode == 0, r.stderr
    r = riskmesh(
        "admin",
        "propose",
        "rekey-member",
        "--home",
        str(net["a"].home),
        "c",
        str(c.home / "join-request.cbor"),
        "--json",
    )
    assert r.returncode == 0, r.stderr + r.stdout

    wait_until("c to adopt its new key", lambda: member_id(net, "c") != old_id, DEADLINE_S)
    wait_until("c's report to match again at a and b", lambda: matches(net, "ab"), DEADLINE_S)
    new_id = member_id(net, "c")
    assert (c.home / "keys" / "member.old.key").exists()
    for x in "ab":
        members = {m["id"]: m for m in net.status(x)["members"]}
        assert members[old_id]["status"] == "revoked" and members[new_id]["status"] == "active"
        assert any(f["log"] == old_id for f in net.status(x)["forks"])  # kept as evidence
    wait_until("c to take reports again", lambda: open_for_reports(net.status("c")), DEADLINE_S)
    more: dict[str, Any] = {**REPORT, "value": "fp:mule-phone-8"}
    assert c.client.report([more])["entry"]["seq"] == 2  # 1 was the republished report
    # a restart keeps the new identity
    net.stop("c")
    net.start("c")
    assert member_id(net, "c") == new_id
