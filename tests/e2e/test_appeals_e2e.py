"""After the match with three real nodes and disclose_reporters=false: sightings and
disputes, a data subject's appeal routed to the reporter without the appellant
learning who it is, upheld and rejected, warning-listed reports refused, and the
audit trail of it all checked — through the API and the `riskmesh` command."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import Cluster
from nodeproc import cli

from node.config import load_config
from node.localnet import open_for_reports, riskmesh, wait_until
from protocol.keys import MemberKey, member_id_text

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEADLINE_S = 30.0
ENV = {
    "RISKMESH_GOSSIP_INTERVAL_S": "0.25",
    "RISKMESH_GOSSIP_TIMEOUT_S": "5",
    "RISKMESH_LOG_LEVEL": "info",
}
APPEALED = "+86 139 2000 0001"  # upheld
KEPT = "+86 139 2000 0002"  # rejected
SEEN = "+86 139 2000 0003"  # seen and disputed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("appeals"), "ABC", ENV)
    try:
        c.start()
        wait_until(
            "every node to take reports",
            lambda: all(open_for_reports(c[n].status()) for n in "ABC"),
            DEADLINE_S,
        )
        code, body = c["A"].call(
            "POST",
            "/v1/admin/proposals",
            {"action": "policy", "set": {"disclose_reporters": False}},
        )
        assert code == 201 and body["status"] == "final", body
        wait_until(
            "every node to hold the policy without reporter names",
            lambda: all(
                not c[n].status()["charter"]["policy"]["disclose_reporters"] for n in "ABC"
            ),
            DEADLINE_S,
        )
        yield c
    finally:
        c.close()


def verdict(c: Cluster, name: str, value: str) -> dict[str, Any]:
    [v] = c[name].query([{"kind": "phone", "value": value}])
    return v


def rm(c: Cluster, name: str, *args: str) -> str:
    """One `riskmesh` command against node ``name``'s home: ``rm(c, "B", "seen", ...)``,
    ``rm(c, "A", "appeal", "decide", ...)``."""
    words = 2 if args[0] == "appeal" else 1
    return cli(*args[:words], "--home", str(c[name].home), *args[words:])


def test_reporting_a_warning_listed_value_is_refused(cluster: Cluster) -> None:
    for kind, value in [
        ("bank_card", "4111111111111111"),
        ("ip", "8.8.8.8"),
        ("email", "someone@example.com"),
    ]:
        item = {"kind": kind, "value": value, "category": "phishing"}
        code, body = cluster["B"].call("POST", "/v1/reports", {"items": [item]})
        assert (code, body["error"]["code"]) == (422, "warning_listed"), body
        assert value not in json.dumps(body)
    proc = riskmesh(
        "report",
        "--home",
        str(cluster["B"].home),
        "--kind",
        "ip",
        "--value",
        "8.8.8.8",
        "--category",
        "phishing",
    )
    assert proc.returncode != 0 and "warning_listed" in proc.stderr


def test_sightings_and_disputes_change_the_verdict_and_retracting_restores_it(
    cluster: Cluster,
) -> None:
    cluster["A"].report([{"kind": "phone", "value": SEEN, "category": "money_mule"}])
    wait_until("C to match", lambda: verdict(cluster, "C", SEEN)["match"], DEADLINE_S)
    wait_until("B to match", lambda: verdict(cluster, "B", SEEN)["match"], DEADLINE_S)
    before = verdict(cluster, "A", SEEN)
    assert (before["sightings"], before["disputes"]) == (0, 0)
    rm(cluster, "B", "seen", "--kind", "phone", "--value", SEEN)
    rm(
        cluster,
        "C",
        "dispute",
        "--kind",
        "phone",
        "--value",
        SEEN,
        "--reason",
        "legitimate_customer",
    )
    after = wait_until(
        "A to count the sighting and the dispute",
        lambda: (v := verdict(cluster, "A", SEEN))["sightings"] == 1 and v["disputes"] == 1 and v,
        DEADLINE_S,
    )
    assert after["confidence"] != before["confidence"]
    assert {k: after[k] for k in ("reporters", "categories", "max_severity")} == {
        k: before[k] for k in ("reporters", "categories", "max_severity")
    }
    rm(
        cluster,
        "B",
        "retract",
        "--kind",
        "phone",
        "--value",
        SEEN,
        "--reason",
        "other",
        "--of",
        "seen",
    )
    rm(
        cluster,
        "C",
        "retract",
        "--kind",
        "phone",
        "--value",
        SEEN,
        "--reason",
        "resolved",
        "--of",
        "dispute",
    )
    wait_until(
        "A's verdict to be what it was",
        lambda: verdict(cluster, "A", SEEN) == before,
        DEADLINE_S,
    )


def test_an_appeal_reaches_the_reporter_and_upheld_removes_the_match(cluster: Cluster) -> None:
    a, b = cluster["A"], cluster["B"]
    a.report(
        [
            {"kind": "phone", "value": APPEALED, "category": "telecom_fraud", "severity": 4},
            {"kind": "phone", "value": KEPT, "category": "telecom_fraud", "severity": 4},
        ]
    )
    for n in "BC":
        wait_until(f"{n} to match", lambda n=n: verdict(cluster, n, APPEALED)["match"], DEADLINE_S)
        wait_until(f"{n} to match", lambda n=n: verdict(cluster, n, KEPT)["match"], DEADLINE_S)
    out = rm(
        cluster,
        "B",
        "appeal",
        "file",
        "--kind",
        "phone",
        "--value",
        APPEALED,
        "--case-ref",
        "B-2024-117",
        "--grounds",
        "number ported to my client in May",
        "--json",
    )
    filed = json.loads(out)
    # A sees the case with its grounds; C sees the report under appeal
    inbound = wait_until(
        "A to receive the appeal",
        lambda: a.call("GET", "/v1/appeals")[1]["inbound"],
        DEADLINE_S,
    )
    assert [(x["id"], x["grounds"], x["case_ref"], x["appellant"]) for x in inbound] == [
        (filed["id"], "number ported to my client in May", "B-2024-117", "B")
    ]
    wait_until(
        "C to see it under appeal",
        lambda: verdict(cluster, "C", APPEALED)["under_appeal"],
        DEADLINE_S,
    )
    listing = rm(cluster, "A", "appeal", "list")
    assert filed["id"] in listing and "number ported" in listing
    # A upholds: the report is retracted everywhere
    rm(
        cluster,
        "A",
        "appeal",
        "decide",
        filed["id"],
        "--decision",
        "upheld",
        "--note",
        "sorry: ported number",
    )
    wait_until(
        "no node to match the upheld value",
        lambda: not any(verdict(cluster, n, APPEALED)["match"] for n in "ABC"),
        DEADLINE_S,
    )
    b_view = wait_until(
        "B to see the decision",
        lambda: (o := b.call("GET", "/v1/appeals")[1]["outbound"]) and o[0]["notes"] and o,
        DEADLINE_S,
    )
    assert b_view[0]["status"] == "decided" and b_view[0]["upheld"] == 1


def test_a_rejected_appeal_keeps_the_match_and_sends_the_note(cluster: Cluster) -> None:
    a, b = cluster["A"], cluster["B"]
    code, filed = b.call(
        "POST",
        "/v1/appeals",
        {"kind": "phone", "value": KEPT, "case_ref": "B-2024-118", "grounds": "not my customer's"},
    )
    assert code == 201, filed
    wait_until(
        "A to receive the second appeal",
        lambda: any(x["id"] == filed["id"] for x in a.call("GET", "/v1/appeals")[1]["inbound"]),
        DEADLINE_S,
    )
    code, body = a.call(
        "POST",
        f"/v1/appeals/{filed['id']}/decision",
        {"decision": "rejected", "note": "two chargebacks on this number since"},
    )
    assert code == 201 and body["retracted"] == 0, body
    notes = wait_until(
        "B to receive the rejection note",
        lambda: [
            n
            for o in b.call("GET", "/v1/appeals")[1]["outbound"]
            if o["id"] == filed["id"]
            for n in o["notes"]
        ],
        DEADLINE_S,
    )
    assert [(n["decision"], n["note"]) for n in notes] == [
        ("rejected", "two chargebacks on this number since")
    ]
    wait_until(
        "every node to show the decided appeal",
        lambda: all(not verdict(cluster, n, KEPT)["under_appeal"] for n in "ABC"),
        DEADLINE_S,
    )
    for n in "ABC":
        assert verdict(cluster, n, KEPT)["match"] is True, n


def test_b_never_learns_that_a_is_the_reporter(cluster: Cluster) -> None:
    a_id = member_id_text(_member_id(cluster, "A"))
    b = cluster["B"]
    seen_by_b = json.dumps(
        [
            b.call("GET", "/v1/appeals")[1],
            verdict(cluster, "B", KEPT),
            verdict(cluster, "B", SEEN),
            rm(cluster, "B", "appeal", "list", "--json"),
        ]
    )
    assert a_id not in seen_by_b and a_id[:8] not in seen_by_b
    assert '"A"' not in seen_by_b and "reported_by" not in seen_by_b
    # nor does B's log say who decided or received its appeals
    for line in cluster.log("B", tail=None).splitlines():
        if "appeal" in line:
            assert a_id[:8] not in line and a_id not in line, line


def test_every_action_is_in_the_audit_trail_and_an_edit_shows(cluster: Cluster) -> None:
    a = cluster["A"]
    code, body = a.call("GET", "/v1/audit?limit=1000")
    assert code == 200, body
    actions = [r["action"] for r in body["audit"]]
    assert "appeal_decision" in actions and "report" in actions
    code, body = cluster["B"].call("GET", "/v1/audit?limit=1000")
    actions_b = {r["action"] for r in body["audit"]}
    assert {"seen", "appeal", "retract"} <= actions_b
    for value in (APPEALED, KEPT, SEEN, "ported", "chargebacks"):
        assert value not in json.dumps(body)
    # an audit row edited by hand in A's database breaks the chain
    ok = riskmesh("audit", "--home", str(a.home), "--verify")
    assert ok.returncode == 0, ok.stderr
    db = load_config(a.home, env={}).db_path
    with sqlite3.connect(db) as conn:
        rid = conn.execute(
            "SELECT id FROM audit WHERE action = 'appeal_decision' ORDER BY id LIMIT 1"
        ).fetchone()[0]
        conn.execute("UPDATE audit SET detail = '{}' WHERE id = ?", (rid,))
    bad = riskmesh("audit", "--home", str(a.home), "--verify")
    assert bad.returncode != 0
    assert str(rid) in bad.stdout + bad.stderr


def _member_id(c: Cluster, name: str) -> bytes:
    key = MemberKey.from_seed((c[name].home / "keys" / "member.key").read_bytes())
    return key.id
