"""`riskmesh demo` as a newcomer runs it: exit 0, the story told, nothing left behind."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest

from node.localnet import riskmesh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(proc.name))
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_the_whole_story_and_leaves_nothing_running(tmp_path: Path) -> None:
    keep = tmp_path / "homes"
    proc = riskmesh("demo", "--keep", str(keep), env={"COLUMNS": "120"}, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for line in (
        "Three members found a consortium",
        "its key grants reached pay-b and shop-c",
        "keyed tokens only, the raw values stay on bank-a's node",
        "MATCH",
        "pay-b signs: final; version 2 is the charter now",
        "lend-d already finds the reports made before it joined",
        "the phone number no longer matches at any of the four members",
        "all 4 nodes stopped cleanly",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    # the homes were kept, and no node of them is running or listening
    homes = sorted(p.parent for p in keep.glob("*/config.toml"))
    assert [h.name for h in homes] == ["bank-a", "lend-d", "pay-b", "shop-c"]
    for home in homes:
        config = tomllib.loads((home / "config.toml").read_text())
        for section in ("api", "peer"):
            port = int(config[section]["listen"].rsplit(":", 1)[1])
            assert not listening(port), (home.name, section, port)
    assert processes_mentioning(str(keep)) == []


def test_demo_without_keep_removes_its_homes(tmp_path: Path) -> None:
    proc = riskmesh("demo", env={"TMPDIR": str(tmp_path)}, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []
    assert processes_mentioning(str(tmp_path)) == []
