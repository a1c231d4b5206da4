"""Administration on one node: proposals through the API, rotation and republishing,
epoch retirement, and refusals."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aiohttp import web

from contracts.charter import EpochInfo
from contracts.policy import DAY_MS
from node.api import NODE as CORE
from protocol.governance import describe_changes


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PHONES = ["+8613800000001", "+8613800000002", "+8613800000003"]


async def test_rotation_republishes_live_reports_under_the_new_epoch(
    aiohttp_client: Any, make_app: Callable[[], web.Application], api_token: str, clock: Any
) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    h = auth(api_token)
    items = [{"kind": "phone", "value": v, "category": "telecom_fraud"} for v in PHONES]
    assert (await client.post("/v1/reports", json={"items": items}, headers=h)).status == 201
    retract = [{"kind": "phone", "value": PHONES[2], "reason": "resolved"}]
    assert (await client.post("/v1/retractions", json={"items": retract}, headers=h)).status == 201

    resp = await client.post("/v1/admin/proposals", json={"action": "rotate-key"}, headers=h)
    view = await resp.json()
    assert resp.status == 201, view
    # one admin: its own signature is the quorum, so the version is in force at once
    assert view["status"] == "final" and view["changes"] == ["new key epoch 2"]
    status = await (await client.get("/v1/status", headers=h)).json()
    assert status["epochs"] == [1, 2]
    assert status["charter"]["version"] == 2

    core = app[CORE]
    me = core.key.id
    ep2 = core.epoch_keys.tokenizer(2)
    for value in PHONES[:2]:
        states = core.store.indicators(ep2.token("phone", value))
        assert [(s.author, s.ep, s.cat) for s in states] == [(me, 2, "telecom_fraud")]
    # the retracted one was not republished
    assert core.store.indicators(ep2.token("phone", PHONES[2])) == []
    # running it again republishes nothing twice
    assert core.republish(clock()) == 0

    q = {"items": [{"kind": "phone", "value": v} for v in PHONES]}
    results = (await (await client.post("/v1/query", json=q, headers=h)).json())["results"]
    assert [r["match"] for r in results] == [True, True, False]
    # a retraction now covers both epochs
    gone = [{"kind": "phone", "value": PHONES[0], "reason": "appeal_upheld"}]
    assert (await client.post("/v1/retractions", json={"items": gone}, headers=h)).status == 201
    results = (await (await client.post("/v1/query", json=q, headers=h)).json())["results"]
    assert [r["match"] for r in results] == [False, True, False]


async def test_policy_proposals_are_checked(
    aiohttp_client: Any, make_app: Callable[[], web.Application], api_token: str
) -> None:
    client = await aiohttp_client(make_app())
    h = auth(api_token)

    async def propose(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resp = await client.post("/v1/admin/proposals", json=body, headers=h)
        return resp.status, await resp.json()

    code, body = await propose({"action": "policy", "set": {"max_ops": 0}})
    assert code == 422 and body["error"]["code"] == "bad_policy"
    code, body = await propose({"action": "policy", "set": {"no_such": 1}})
    assert code == 400 and body["error"]["code"] == "unknown_field"
    code, body = await propose({"action": "rotate-key", "extra": 1})
    assert code == 400 and body["error"]["code"] == "unknown_field"
    code, body = await propose({"action": "add-member", "join_request": "%%%"})
    assert code == 422 and body["error"]["code"] == "bad_join_request"  # as the admin guide says
    code, body = await propose({"action": "policy", "set": {"max_ttl_days": {"phishing": 30}}})
    assert code == 201 and body["changes"][0].startswith("policy max_ttl_days")
    charter = await (await client.get("/v1/admin/charter", headers=h)).json()
    assert charter["policy"]["max_ttl_days"]["phishing"] == 30
    assert charter["policy"]["max_ttl_days"]["telecom_fraud"] > 30  # the rest kept
    assert [v["version"] for v in charter["versions"]] == [1, 2]


def test_an_epoch_retires_after_the_longest_ttl(
    make_app: Callable[[], web.Application], clock: Any
) -> None:
    core = make_app()[CORE]
    assert core.chain is not None
    charter = core.chain.current
    longest = max(charter.policy.max_ttl_days.values()) * DAY_MS
    since2 = clock() + DAY_MS
    # a chain whose current version added epoch 2 (built directly: the rule is local)
    core.chain._versions[-1] = core.chain.current_version.__class__(  # type: ignore[attr-defined]
        raw=core.chain.current_version.raw,
        hash=core.chain.current_version.hash,
        charter=dataclasses.replace(
            charter, epochs=(*charter.epochs, EpochInfo(ep=2, since=since2))
        ),
        signers=core.chain.current_version.signers,
    )
    core.epoch_keys.add(2, bytes(32))
    assert core.live_epochs(clock()) == [1, 2]
    assert core.live_epochs(since2 + longest) == [1, 2]
    assert core.live_epochs(since2 + longest + 1) == [2]


def test_describe_changes_names_what_a_version_does(
    make_app: Callable[[], web.Application],
) -> None:
    core = make_app()[CORE]
    assert core.chain is not None
    old = core.chain.current
    new = old.evolve(prev=b"\0" * 32, quorum=1)
    assert describe_changes(old, new) == ["quorum: majority -> 1"]
    assert describe_changes(old, old) == ["no change"]
