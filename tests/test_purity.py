"""contracts/ and protocol/ stay sans-IO: no asyncio, aiohttp, sqlite, apscheduler,
time, and no module-level random (DESIGN §1)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FORBIDDEN = {"asyncio", "aiohttp", "sqlite3", "sqlite_utils", "apscheduler", "time"}
RANDOM_FUNCS = {
    "random",
    "randint",
    "randrange",
    "choice",
    "choices",
    "shuffle",
    "sample",
    "uniform",
    "getrandbits",
    "randbytes",
    "seed",
    "gauss",
}


def _sources() -> list[pathlib.Path]:
    files = sorted((ROOT / "contracts").rglob("*.py")) + sorted((ROOT / "protocol").rglob("*.py"))
    assert len(files) > 5
    return files


def violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN:
                    found.append(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in FORBIDDEN:
                found.append(f"from {node.module} import ...")
            if top == "random":
                bad = [a.name for a in node.names if a.name in RANDOM_FUNCS]
                if bad:
                    found.append(f"from random import {', '.join(bad)}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
            and node.attr in RANDOM_FUNCS
        ):
            found.append(f"random.{node.attr} (module-level random)")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"__import__", "exec", "eval"}
        ):
            found.append(f"{node.func.id}()")
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure(path: pathlib.Path) -> None:
    assert violations(path) == []


def test_checker_catches_violations(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import asyncio\nimport time as t\nfrom sqlite_utils import Database\n"
        "import random\nx = random.random()\nfrom random import choice\n"
    )
    v = violations(bad)
    assert "import asyncio" in v and "import time" in v
    assert "from sqlite_utils import ..." in v
    assert "random.random (module-level random)" in v and "from random import choice" in v
    ok = tmp_path / "ok.py"
    ok.write_text(
        "import random\ndef f(rng: random.Random) -> int:\n    return rng.randint(1, 2)\n"
    )
    assert violations(ok) == []
