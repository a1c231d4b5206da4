"""The CLI as a user runs it: init, genesis, install, then talking to a served node."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import main

RM = [sys.executable, "-c", "from node.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_init_genesis_install(tmp_path: Path) -> None:
    r = CliRunner()
    home = tmp_path / "a"
    res = r.invoke(
        main,
        ["init", "--home", str(home), "--name", "bank-a", "--endpoint", "http://127.0.0.1:7701"],
    )
    assert res.exit_code == 0, res.output
    for f in ("config.toml", "keys/member.key", "riskmesh.db", "join-request.cbor", "api-token"):
        assert (home / f).exists(), f
    assert stat.S_IMODE((home / "keys/member.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "api-token").stat().st_mode) == 0o600
    res = r.invoke(main, ["init", "--home", str(home), "--name", "x", "--endpoint", "y"])
    assert res.exit_code != 0 and "already initialised" in res.output
    g = tmp_path / "genesis.cbor"
    res = r.invoke(
        main, ["charter", "genesis", "--home", str(home), "--consortium", "c", "--out", str(g)]
    )
    assert res.exit_code == 0 and "fully signed" in res.output, res.output
    res = r.invoke(main, ["charter", "install", "--home", str(home), str(g)])
    assert res.exit_code == 0 and "charter version 1" in res.output, res.output


def test_install_refuses_partly_signed_genesis(tmp_path: Path) -> None:
    r = CliRunner()
    a, b = tmp_path / "a", tmp_path / "b"
    for h, n in ((a, "bank-a"), (b, "pay-b")):
        assert (
            r.invoke(
                main, ["init", "--home", str(h), "--name", n, "--endpoint", f"http://{n}"]
            ).exit_code
            == 0
        )
    g = tmp_path / "genesis.cbor"
    res = r.invoke(
        main,
        [
            "charter",
            "genesis",
            "--home",
            str(a),
            "--consortium",
            "c",
            "--member",
            f"{b}/join-request.cbor:admin",
            "--out",
            str(g),
        ],
    )
    assert "1 more admin signature(s) needed" in res.output, res.output
    res = r.invoke(main, ["charter", "install", "--home", str(a), str(g)])
    assert res.exit_code != 0 and "signed by all" in res.output
    res = r.invoke(main, ["charter", "sign", "--home", str(b), str(g)])
    assert res.exit_code == 0 and "2 signature(s)" in res.output
    res = r.invoke(main, ["charter", "install", "--home", str(b), str(g)])
    assert res.exit_code == 0, res.output


def test_bad_join_request_refused(tmp_path: Path) -> None:
    r = CliRunner()
    a = tmp_path / "a"
    r.invoke(main, ["init", "--home", str(a), "--name", "a", "--endpoint", "http://a"])
    bogus = tmp_path / "bogus.cbor"
    bogus.write_bytes(b"\xa0")
    res = r.invoke(
        main,
        [
            "charter",
            "genesis",
            "--home",
            str(a),
            "--consortium",
            "c",
            "--member",
            str(bogus),
            "--out",
            str(tmp_path / "g"),
        ],
    )
    assert res.exit_code != 0 and "join request" in res.output


def test_commands_against_a_served_node(tmp_path: Path) -> None:
    home = tmp_path / "a"
    port = free_port()
    env = {**os.environ, "RISKMESH_API_LISTEN": f"127.0.0.1:{port}"}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*RM, *args], env=env, capture_output=True, text=True, timeout=60)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    run("init", "--home", str(home), "--name", "bank-a", "--endpoint", "http://x")
    run(
        "charter",
        "genesis",
        "--home",
        str(home),
        "--consortium",
        "c",
        "--out",
        str(tmp_path / "g.cbor"),
    )
    run("charter", "install", "--home", str(home), str(tmp_path / "g.cbor"))
    p = run("status", "--home", str(home), ok=False)
    assert p.returncode != 0 and "cannot reach" in p.stderr and len(p.stderr.splitlines()) == 1
    server = subprocess.Popen(
        [*RM, "serve", "--home", str(home)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "node did not start"
                time.sleep(0.05)
        run(
            "report",
            "--home",
            str(home),
            "--kind",
            "phone",
            "--value",
            "+86 138 0013 8000",
            "--category",
            "telecom_fraud",
            "--severity",
            "4",
        )
        p = run("query", "--home", str(home), "--kind", "phone", "--value", "13800138000")
        assert "MATCH reporters=1 (bank-a) categories=telecom_fraud" in p.stdout
        p = run("query", "--home", str(home), "--kind", "phone", "--value", "12", "--json")
        assert json.loads(p.stdout)["error"]["code"] == "invalid_value"
        csv_file = tmp_path / "q.csv"
        csv_file.write_text("kind,value\nphone,13800138000\nip,192.0.2.1\n")
        p = run("query", "--home", str(home), "--file", str(csv_file), "--json")
        assert [r["match"] for r in json.loads(p.stdout)] == [True, False]
        p = run(
            "report",
            "--home",
            str(home),
            "--kind",
            "phone",
            "--value",
            "12",
            "--category",
            "other",
            ok=False,
        )
        assert p.returncode != 0 and "invalid_items" in p.stderr
        p = run("status", "--home", str(home), "--json")
        assert json.loads(p.stdout)["members"][0]["head"]["seq"] == 1
        run(
            "retract",
            "--home",
            str(home),
            "--kind",
            "phone",
            "--value",
            "13800138000",
            "--reason",
            "appeal_upheld",
        )
        p = run("query", "--home", str(home), "--kind", "phone", "--value", "13800138000")
        assert "no match" in p.stdout
    finally:
        server.kill()
        server.wait(10)


@pytest.mark.parametrize(
    "cmd",
    [
        "init",
        "charter genesis",
        "charter sign",
        "charter install",
        "serve",
        "report",
        "retract",
        "query",
        "status",
        "demo",
    ],
)
def test_every_command_has_help_with_example(cmd: str) -> None:
    res = CliRunner().invoke(main, [*cmd.split(), "--help"])
    assert res.exit_code == 0 and "Example:" in res.output
