"""A consortium of real nodes on this machine: homes, genesis, `riskmesh serve` processes.

Used by `riskmesh demo` and the simulator's live mode. Every node is a
separate `riskmesh serve` process with its own home under one directory, its
local API and peer API on free loopback ports. Waiting is always for a
condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from contracts.errors import NetError
from node.client import ClientError, LocalClient
from node.home import init_home, install_charter_file, make_genesis, sign_charter_file

__all__ = ["LocalNet", "LocalNode", "NetError", "free_port", "wait_until"]

T = TypeVar("T")
SERVE = (sys.executable, "-c", "from node.cli import main; main()", "serve")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, probe: Callable[[], T | None], deadline_s: float) -> T:
    """Poll ``probe`` until it returns something truthy; NetError after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            got = probe()
        except (ClientError, OSError):
            got = None
        if got:
            return got
        if time.monotonic() > end:
            raise NetError(f"timed out after {deadline_s:.0f}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class LocalNode:
    name: str
    home: Path
    api_port: int
    peer_port: int
    proc: subprocess.Popen[bytes] | None = None
    _client: LocalClient | None = field(default=None, repr=False)

    @property
    def client(self) -> LocalClient:
        if self._client is None:
            self._client = LocalClient.from_home(self.home)
        return self._client

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LocalNet:
    """Nodes named ``names`` under ``root``; call :meth:`found` then :meth:`start`."""

    def __init__(
        self,
        root: Path,
        names: Iterable[str],
        *,
        env: Mapping[str, str] | None = None,
        region: str = "CN",
    ) -> None:
        self.root = root
        self.env = dict(env or {})
        self.nodes: dict[str, LocalNode] = {}
        for name in names:
            self.add(name, region=region)

    def add(self, name: str, *, region: str = "CN") -> LocalNode:
        """Initialise a home for ``name`` (not in any charter yet)."""
        api, peer = free_port(), free_port()
        home = self.root / name
        init_home(
            home,
            name=name,
            endpoint=f"http://127.0.0.1:{peer}",
            api_listen=f"127.0.0.1:{api}",
            peer_listen=f"127.0.0.1:{peer}",
            region=region,
        )
        node = LocalNode(name, home, api, peer)
        self.nodes[name] = node
        return node

    def __getitem__(self, name: str) -> LocalNode:
        return self.nodes[name]

    @property
    def genesis(self) -> Path:
        return self.root / "genesis.cbor"

    def found(self, consortium: str, founders: Iterable[str], admins: Iterable[str]) -> str:
        """Genesis by the first founder, signed by every admin, installed on every home."""
        first, *others = list(founders)
        admin_set = set(admins) | {first}
        specs = [
            str(self.nodes[n].home / "join-request.cbor") + (":admin" if n in admin_set else "")
            for n in others
        ]
        summary = make_genesis(self.nodes[first].home, consortium, specs, self.genesis)
        for n in others:
            if n in admin_set:
                sign_charter_file(self.nodes[n].home, self.genesis)
        for node in self.nodes.values():
            self.install(node.name)
        return summary

    def install(self, name: str) -> str:
        return install_charter_file(self.nodes[name].home, self.genesis)

    # -- processes -------------------------------------------------------------------

    def start(self, *names: str, deadline_s: float = 20.0) -> None:
        started = []
        for name in names or tuple(self.nodes):
            node = self.nodes[name]
            if node.running:
                continue
            env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMESH_")}
            env.update(self.env)
            with (self.root / f"{name}.log").open("ab") as log:
                node.proc = subprocess.Popen(
                    [*SERVE, "--home", str(node.home)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            started.append(node)
        for node in started:
            wait_until(f"{node.name} to serve", lambda n=node: self._serving(n), deadline_s)

    def _serving(self, node: LocalNode) -> bool:
        if node.proc is not None and node.proc.poll() is not None:
            raise NetError(f"{node.name} exited with {node.proc.returncode}: {self.log(node.name)}")
        node.client.status()
        return True

    def stop(self, *names: str, deadline_s: float = 15.0) -> dict[str, int]:
        """SIGTERM each node and wait; returns the exit codes (a stuck node is killed)."""
        codes = {}
        nodes = [self.nodes[n] for n in names or tuple(self.nodes)]
        for node in nodes:
            if node.running:
                assert node.proc is not None
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            if node.proc is None:
                continue
            try:
                codes[node.name] = node.proc.wait(timeout=deadline_s)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                codes[node.name] = node.proc.wait(timeout=deadline_s)
            node.proc = None
        return codes

    def log(self, name: str) -> str:
        p = self.root / f"{name}.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def status(self, name: str) -> dict[str, Any]:
        return self.nodes[name].client.status()

    def __enter__(self) -> LocalNet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
