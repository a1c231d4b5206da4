"""Through the local API, a batch of 10 000 Faker identifiers gets no server error (issue 18).

The batch is the realistic corpus (``tests/faker_corpus.py``: every kind, five
locales), with the issue's two crashing examples and some hostile text mixed
in. Every item comes back either looked up or refused as ``invalid_value``,
exactly as ``canonical`` decides; the accepted ones can then be reported and
match.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from faker_corpus import KIND_ORDER, corpus

from contracts.errors import InvalidValue
from contracts.indicators import canonical
from contracts.warninglists import DEFAULT_LIST
from node.config import load_config

BATCH = 10_000
HOSTILE = [
    "CN:620201196803166777",  # raised KeyError inside stdnum
    "CN:310115198501011234",  # Pudong, born before the district
    "CN:110105491231002",  # first generation
    "\ud800\udfff",
    "a\x00b",
    "\u202e" * 3,
    "x" * 300,
    "CN:" + "9" * 18,
    "imei:" + "F" * 15,
    "iban:" + "Z" * 34,
    "user@xn--" + "-" * 20 + ".com",
    "００８６１３８００１３８０００",
]


def items() -> list[dict[str, str]]:
    samples = corpus(per_kind=BATCH // len(KIND_ORDER))
    batch = [{"kind": s.kind, "value": s.raw} for s in samples]
    for i, value in enumerate(HOSTILE):
        for j, kind in enumerate(KIND_ORDER):
            batch[(i * len(KIND_ORDER) + j) * 97] = {"kind": kind, "value": value}
    assert len(batch) == BATCH
    return batch


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_batch_of_10000_faker_identifiers_gets_no_server_error(
    aiohttp_client: Any,
    make_app: Callable[[], web.Application],
    node_home: Path,
    api_token: str,
) -> None:
    region = load_config(node_home, env={})["node.region"]
    client = await aiohttp_client(make_app())
    batch = items()

    r = await client.post("/v1/query", json={"items": batch}, headers=auth(api_token))
    assert r.status == 200, await r.text()
    results = (await r.json())["results"]
    assert len(results) == BATCH

    accepted: list[dict[str, str]] = []
    for item, result in zip(batch, results, strict=True):
        try:
            canonical(item["kind"], item["value"], region=region)
        except InvalidValue:
            assert result["error"]["code"] == "invalid_value", (item, result)
            continue
        assert "error" not in result, (item, result)
        assert result["match"] is False and result["kind"] == item["kind"]
        accepted.append(item)
    assert len(accepted) > 0.8 * BATCH
    assert {"kind": "id_number", "value": "CN:620201196803166777"} in accepted

    # Reports of accepted values are accepted (one entry carries at most 1000 ops),
    # and then match, however they were written.
    # (values on the shipped warning list — example domains, private addresses — are
    # never reportable; Faker makes many of them)
    reportable = [
        item
        for item in accepted
        if DEFAULT_LIST.listed(item["kind"], canonical(item["kind"], item["value"], region=region))
        is None
    ]
    reports = [{**item, "category": "other"} for item in reportable[::9][:1000]]
    r = await client.post("/v1/reports", json={"items": reports}, headers=auth(api_token))
    assert r.status == 201, await r.text()
    assert (await r.json())["accepted"] == len(reports)
    again = [{"kind": it["kind"], "value": it["value"]} for it in reports]
    r = await client.post("/v1/query", json={"items": again}, headers=auth(api_token))
    assert r.status == 200
    assert all(res["match"] is True for res in (await r.json())["results"])
