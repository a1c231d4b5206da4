"""Operating a node (issue 17): scoped API keys, the audit trail, health, versions,
metrics names, logs, the gossip hello's version, selftest and packaging."""

from __future__ import annotations

import io
import json
import logging
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from node.api import NODE, status_of
from node.audit import AuditRow, acting, verify_chain
from node.cli import main
from node.config import load_config
from node.keys import KeyRing
from node.logs import setup_logging
from node.metrics import Metrics
from node.selftest import load_vectors, run_vectors
from node.store import SqliteStore
from node.version import VERSION

ROOT = Path(__file__).resolve().parents[2]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- API keys ------------------------------------------------------------------------------


async def test_scoped_key_lifecycle_over_the_api(
    aiohttp_client: Any, make_app: Callable[[], web.Application], api_token: str
) -> None:
    client = await aiohttp_client(make_app())
    r = await client.post(
        "/v1/admin/keys", json={"name": "engine", "scopes": ["query"]}, headers=auth(api_token)
    )
    assert r.status == 201
    made = await r.json()
    key = made["key"]
    assert made["scopes"] == ["query"] and made["last_used"] is None
    # it queries, and nothing else
    q = {"items": [{"kind": "phone", "value": "13800138000"}]}
    assert (await client.post("/v1/query", json=q, headers=auth(key))).status == 200
    rep = {"items": [{"kind": "phone", "value": "13800138000", "category": "other"}]}
    r = await client.post("/v1/reports", json=rep, headers=auth(key))
    assert r.status == 403 and (await r.json())["error"]["code"] == "forbidden"
    # listed with its last use, never its secret
    r = await client.get("/v1/admin/keys", headers=auth(api_token))
    keys = {k["name"]: k for k in (await r.json())["keys"]}
    assert set(keys) == {"cli", "engine"} and keys["engine"]["last_used"] is not None
    assert key not in json.dumps(keys)
    assert keys["cli"]["scopes"] == ["query", "report", "watch", "admin"]
    # revoked: refused at once
    r = await client.delete("/v1/admin/keys/engine", headers=auth(api_token))
    assert r.status == 200
    assert (await client.post("/v1/query", json=q, headers=auth(key))).status == 401
    # the default key rotates, and the old secret stops
    r = await client.post("/v1/admin/keys/cli/rotate", headers=auth(api_token))
    new = (await r.json())["key"]
    assert (await client.get("/v1/status", headers=auth(api_token))).status == 401
    assert (await client.get("/v1/status", headers=auth(new))).status == 200


async def test_bad_key_requests_are_specific_4xx(
    aiohttp_client: Any, make_app: Callable[[], web.Application], api_token: str
) -> None:
    client = await aiohttp_client(make_app())
    cases = [
        ({"name": "x y", "scopes": ["query"]}, 422, "bad_name"),
        ({"name": "x", "scopes": []}, 422, "bad_scope"),
        ({"name": "x", "scopes": ["query", "root"]}, 422, "bad_scope"),
        ({"name": "x", "scopes": 3}, 422, "bad_scope"),
        ({"name": "x"}, 400, "missing_field"),
        ({"name": "x", "scopes": ["query"], "ttl": 1}, 400, "unknown_field"),
        ({"name": "cli", "scopes": ["query"]}, 409, "name_taken"),
    ]
    for body, status, code in cases:
        r = await client.post("/v1/admin/keys", json=body, headers=auth(api_token))
        assert (r.status, (await r.json())["error"]["code"]) == (status, code), body


def test_keys_are_checked_from_memory(node_home: Path) -> None:
    store = SqliteStore(load_config(node_home, env={}).db_path)
    ring = KeyRing(store)
    _, secret = ring.create("engine", "query,report", 1)
    calls: list[str] = []
    store.conn.set_trace_callback(calls.append)
    for _ in range(100):
        assert ring.check(secret, 2) is not None
    assert ring.check("rm_nope", 2) is None
    store.conn.set_trace_callback(None)
    assert calls == []  # no SQLite statement per check
    ring.flush()
    assert {k.name: k.last_used for k in ring.list()}["engine"] == 2
    store.close()


# -- the audit trail ---------------------------------------------------------------------


async def test_audit_names_the_acting_key_and_holds_no_raw_value(
    aiohttp_client: Any, make_app: Callable[[], web.Application], api_token: str
) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    r = await client.post(
        "/v1/admin/keys", json={"name": "engine", "scopes": ["report"]}, headers=auth(api_token)
    )
    key = (await r.json())["key"]
    item = {"kind": "phone", "value": "+86 138 0013 8000", "category": "other", "ref": "c-7"}
    assert (await client.post("/v1/reports", json={"items": [item]}, headers=auth(key))).status
    r = await client.get("/v1/audit", headers=auth(api_token))
    rows = (await r.json())["audit"]
    acts = [(row["actor"], row["action"]) for row in rows]
    assert acts == [("cli", "key_create"), ("engine", "report")]
    report = json.loads(rows[1]["detail"])
    assert report["refs"] == ["c-7"] and len(report["tokens"]) == 1
    assert "13800138000" not in json.dumps(rows)
    assert verify_chain([AuditRow.from_json(x) for x in rows]) == (2, None)
    assert app[NODE].store.audit_rows()  # the same rows in the store


def test_audit_verify_finds_a_row_edited_by_hand(node_home: Path) -> None:
    config = load_config(node_home, env={})
    store = SqliteStore(config.db_path)
    with acting("engine"):
        ring = KeyRing(store)
        for i in range(3):
            ring.create(f"k{i}", "query", i)
    store.close()
    runner = CliRunner()
    # the node is not running: the CLI reads the database itself
    r = runner.invoke(main, ["audit", "--home", str(node_home), "--verify"])
    assert r.exit_code == 0 and "intact: 3 row(s)" in r.output, r.output
    r = runner.invoke(main, ["audit", "--home", str(node_home), "--json"])
    assert [x["actor"] for x in json.loads(r.output)["audit"]] == ["engine"] * 3
    with sqlite3.connect(config.db_path) as db:
        db.execute("UPDATE audit SET actor = 'someone' WHERE id = 2")
    r = runner.invoke(main, ["audit", "--home", str(node_home), "--verify"])
    assert r.exit_code == 1
    assert "audit row 2 does not match the hash chain" in r.output


def test_keys_cli_on_a_stopped_node(node_home: Path) -> None:
    runner = CliRunner()
    home = str(node_home)
    r = runner.invoke(main, ["keys", "create", "--home", home, "--name", "bi", "--scope", "query"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1].startswith("rm_")
    r = runner.invoke(main, ["keys", "list", "--home", home, "--json"])
    assert {k["name"] for k in json.loads(r.output)} == {"cli", "bi"}
    r = runner.invoke(main, ["keys", "create", "--home", home, "--name", "x", "--scope", "root"])
    assert r.exit_code == 1 and "unknown scope 'root'" in r.output
    r = runner.invoke(main, ["keys", "revoke", "--home", home, "cli"])
    assert r.exit_code == 1 and "rotate it instead" in r.output
    old = (node_home / "api-token").read_text()
    r = runner.invoke(main, ["keys", "rotate", "--home", home])
    assert r.exit_code == 0, r.output
    assert (node_home / "api-token").read_text() != old
    assert (node_home / "api-token").stat().st_mode & 0o777 == 0o600
    r = runner.invoke(main, ["keys", "revoke", "--home", home, "bi"])
    assert r.exit_code == 0 and "revoked key bi" in r.output


# -- health, versions, metrics ---------------------------------------------------------------


async def test_health_and_readiness(
    aiohttp_client: Any, make_app: Callable[[], web.Application]
) -> None:
    client = await aiohttp_client(make_app())
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json()) == {"status": "ok", "version": VERSION}
    r = await client.get("/readyz")
    assert r.status == 200 and (await r.json()) == {"ready": True}


async def test_status_and_metrics_name_the_version(
    aiohttp_client: Any, make_app: Callable[[], web.Application], api_token: str
) -> None:
    client = await aiohttp_client(make_app())
    s = await (await client.get("/v1/status", headers=auth(api_token))).json()
    assert s["version"]["riskmesh"] == VERSION and s["version"]["canonical_forms"] == 1
    text = await (await client.get("/metrics")).text()
    assert 'riskmesh_build_info{canonical_forms="1",python=' in text
    assert f'version="{VERSION}"' in text
    assert "riskmesh_api_request_duration_seconds_bucket" in text
    assert "# TYPE riskmesh_gossip_bytes_total counter" in text
    assert "riskmesh_gossip_failures_total" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
async def test_promtool_accepts_the_metrics(
    aiohttp_client: Any, make_app: Callable[[], web.Application], api_token: str
) -> None:
    client = await aiohttp_client(make_app())
    await client.get("/v1/status", headers=auth(api_token))
    text = await (await client.get("/metrics")).read()
    r = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_removed_peers_leave_the_lag_gauge() -> None:
    m = Metrics()
    m.lag.labels("gone1234").set(5)
    m.lag.clear()  # what Node.update_metrics does before setting current members' lag
    assert b"gone1234" not in m.render()


# -- logs ----------------------------------------------------------------------------------


def test_json_logs_and_quiet_libraries() -> None:
    buf = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info", "json", buf)
        logging.getLogger("riskmesh.test").info("hello %s", "there")
        logging.getLogger("apscheduler.scheduler").info("Running job every 5 s")
        logging.getLogger("aiohttp.access").info("GET /v1/query/phone/13800138000")
        lines = [json.loads(x) for x in buf.getvalue().splitlines()]
        assert [(x["level"], x["logger"], x["msg"]) for x in lines] == [
            ("info", "riskmesh.test", "hello there")
        ]
        with pytest.raises(ValueError):
            setup_logging("info", "xml", buf)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name in ("apscheduler", "aiohttp", "asyncio", "urllib3"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_log_format_setting(node_home: Path) -> None:
    assert load_config(node_home, env={})["log.format"] == "text"
    assert load_config(node_home, env={"RISKMESH_LOG_FORMAT": "json"})["log.format"] == "json"
    from contracts.errors import ConfigError

    with pytest.raises(ConfigError, match=r"log\.format"):
        load_config(node_home, env={"RISKMESH_LOG_FORMAT": "xml"})


# -- admin error codes, selftest, packaging ----------------------------------------------------


def test_admin_guide_error_codes_match_the_api() -> None:
    from contracts.errors import GovernanceError

    guide = (ROOT / "docs" / "admin-guide.md").read_text()
    rows = [
        line.split("|")[1:3]
        for line in guide.splitlines()
        if line.startswith("| `") and line.count("|") == 4
    ]
    assert len(rows) >= 15
    for code, status in rows:
        code = code.strip().strip("`")
        assert status_of(GovernanceError(code, "x")) == int(status), code


def test_selftest_passes_and_catches_a_wrong_vector() -> None:
    shipped = (ROOT / "contracts" / "vectors" / "identifiers.json").read_bytes()
    assert shipped == (ROOT / "tests" / "contracts" / "identifiers.json").read_bytes()
    r = CliRunner().invoke(main, ["selftest"])
    assert r.exit_code == 0, r.output
    assert "agree" in r.output
    bad = load_vectors()
    case = next(c for c in bad["cases"] if "token" in c)
    case["token"] = "00" * 16
    report = run_vectors(bad)
    assert len(report["failures"]) == 1 and "token differs" in report["failures"][0]


def test_license_and_package_data() -> None:
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    toml = (ROOT / "pyproject.toml").read_text()
    assert '"vectors/*.json"' in toml and '"console/*.js"' in toml and "selenium" in toml
