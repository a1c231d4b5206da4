"""Fixtures: a single-member node home (init + genesis + install) and its local API app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from node.config import load_config
from node.home import init_home, install_charter_file, make_genesis
from node.server import create_app

T0 = 1_700_000_000_000


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def node_home(tmp_path: Path) -> Path:
    home = tmp_path / "bank-a"
    init_home(home, name="bank-a", endpoint="http://127.0.0.1:1/peer", api_listen="127.0.0.1:0")
    make_genesis(home, "test-consortium", [], tmp_path / "genesis.cbor")
    install_charter_file(home, tmp_path / "genesis.cbor")
    return home


@pytest.fixture
def api_token(node_home: Path) -> str:
    return (node_home / "api-token").read_text().strip()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_app(node_home: Path, clock: Clock) -> Callable[[], web.Application]:
    def make() -> web.Application:
        return create_app(load_config(node_home, env={}), clock=clock, jobs=False)

    return make


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    """Two members' homes, a (the founding admin) and b, with one genesis installed."""
    a, b = tmp_path / "a", tmp_path / "b"
    init_home(a, name="a", endpoint="http://127.0.0.1:1", api_listen="127.0.0.1:0")
    init_home(b, name="b", endpoint="http://127.0.0.1:2", api_listen="127.0.0.1:0")
    make_genesis(a, "peer-test", [str(b / "join-request.cbor")], tmp_path / "g.cbor")
    install_charter_file(a, tmp_path / "g.cbor")
    install_charter_file(b, tmp_path / "g.cbor")
    return {"a": a, "b": b}
