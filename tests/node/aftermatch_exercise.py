"""The after-match routes exercised for the OpenAPI test (tests/node/test_openapi.py).

A one-member consortium has no other member's report to corroborate, dispute or
appeal, so here the routes answer their refusals; their successes are exercised
against the document on three members in tests/node/test_after_match.py.
"""

from __future__ import annotations

from typing import Any

QUERY_ONLY_KEY = "rm_test_query_only_key"


async def exercise_after_match(ex: Any, token: str, max_ops: int) -> None:
    sig, dis, app, dec = (
        "/v1/sightings",
        "/v1/disputes",
        "/v1/appeals",
        "/v1/appeals/{id}/decision",
    )
    mine = {"kind": "phone", "value": "13912345678"}  # this member's own report
    for what, path, item in [
        ("sightings", sig, mine),
        ("disputes", dis, {**mine, "reason": "false_positive"}),
    ]:
        body = {"items": [item]}
        got = await ex(what, "POST", path, path, key=token, json_body=body, expect=422)
        assert got["error"]["items"][0]["code"] == "not_listed"
        await ex(f"{what} no key", "POST", path, path, json_body=body, expect=401)
        await ex(
            f"{what} scope", "POST", path, path, key=QUERY_ONLY_KEY, json_body=body, expect=403
        )
        await ex(f"{what} bad body", "POST", path, path, key=token, json_body=[1], expect=400)
        await ex(
            f"{what} too many",
            "POST",
            path,
            path,
            key=token,
            json_body={"items": [item] * (max_ops + 1)},
            expect=413,
        )
    appeal = {**mine, "case_ref": "C-1", "grounds": "not me"}
    got = await ex("appeal", "POST", app, app, key=token, json_body=appeal, expect=422)
    assert got["error"]["code"] == "not_listed"
    await ex("appeal no key", "POST", app, app, json_body=appeal, expect=401)
    await ex(
        "appeal scope", "POST", app, app, key=QUERY_ONLY_KEY, json_body=appeal, expect=403
    )
    await ex(
        "appeal bad", "POST", app, app, key=token, json_body={**appeal, "grounds": ""}, expect=400
    )
    got = await ex("appeals", "GET", app, app, key=token, expect=200)
    assert got == {"inbound": [], "outbound": []}
    await ex("appeals no key", "GET", app, app, expect=401)
    await ex("appeals scope", "GET", app, app, key=QUERY_ONLY_KEY, expect=403)
    url = dec.replace("{id}", "0123456789abcdef")
    body = {"decision": "upheld"}
    await ex("decide unknown", "POST", url, dec, key=token, json_body=body, expect=404)
    await ex("decide no key", "POST", url, dec, json_body=body, expect=401)
    await ex(
        "decide bad", "POST", url, dec, key=token, json_body={"decision": "maybe"}, expect=400
    )
