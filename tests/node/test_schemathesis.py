"""Schemathesis runs every check against a served node's own OpenAPI document: no
server error, and the document says what the server really accepts and answers.

Bounded: a few thousand generated cases over every operation. The key-management
routes that revoke or rotate a key by name are left out (Schemathesis would revoke
the very key it tests with; tests/node/test_api_keys.py covers them), and so are the
alert routes, which long-poll (up to a minute) or stream without end by design
(tests/node/test_alerts*.py and test_openapi.py exercise them against the document).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.localnet import LocalNet, LocalNode

pytest.importorskip("schemathesis")
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
MAX_EXAMPLES = 60


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    with LocalNet(tmp_path_factory.mktemp("st") / "net", ["solo"]) as net:
        net.found("schemathesis", founders=["solo"], admins=["solo"])
        net.start("solo")
        yield net["solo"]


def test_schemathesis_finds_nothing(served: LocalNode, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    shutil.copyfile(HERE / "schemathesis" / "schemathesis.toml", config)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{served.base}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "14",
            "--header",
            f"Authorization: Bearer {served.token}",
            "--exclude-path-regex",
            "^/v1/admin/keys/|^/v1/alerts",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    out = r.stdout + r.stderr
    (tmp_path / "schemathesis.out").write_text(out)
    generated = re.search(r"(\d+) generated", out)
    print(out[-3000:])
    assert generated is not None and int(generated.group(1)) >= 1000, out[-3000:]
    assert "Server error" not in out, out
    assert r.returncode == 0, out[-8000:]
