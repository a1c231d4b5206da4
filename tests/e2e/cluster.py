"""A consortium of real nodes, each `riskmesh serve` in its own process on loopback.

The processes are run by :class:`node.localnet.LocalNet`, the one launcher.
Every member's charter endpoint points at a recording proxy in front of its
peer API, so a test can see every byte that crosses the peer API (and stop a
node without changing anyone's charter).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cbor2
from aiohttp import web

from node.localnet import (
    STOP_DEADLINE_S,
    LocalNet,
    LocalNode,
    free_port,
    open_for_reports,
    wait_until,
)


@dataclass
class Captured:
    """One POST through a proxy: the sealed request and the sealed answer."""

    target: str  # the member whose peer API was called
    request: bytes
    status: int
    response: bytes


class RecordingProxy:
    """HTTP proxies (one per member) in a background event loop, recording bodies."""

    def __init__(self) -> None:
        self.captured: list[Captured] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None
        #: (sender id, target name) pairs the proxies refuse, as a partition would
        self.blocked: set[tuple[bytes, str]] = set()
        #: how long every message waits before it is passed on (a slow link)
        self.delay_s = 0.0

    def add(self, name: str, listen_port: int, target_port: int) -> None:
        asyncio.run_coroutine_threadsafe(
            self._add(name, listen_port, target_port), self._loop
        ).result(10)

    async def _add(self, name: str, listen_port: int, target_port: int) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

        async def forward(request: web.Request) -> web.Response:
            body = await request.read()
            assert self._session is not None
            try:
                sender = cbor2.loads(body)["from"]
            except Exception:
                sender = b""
            if (sender, name) in self.blocked:
                return web.Response(status=502)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            try:
                async with self._session.post(
                    f"http://127.0.0.1:{target_port}{request.path}",
                    data=io.BytesIO(body),
                    headers={"Content-Type": request.content_type},
                ) as resp:
                    answer = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                return web.Response(status=502)
            with self._lock:
                self.captured.append(Captured(name, body, status, answer))
            return web.Response(body=answer, status=status, content_type=resp.content_type)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", listen_port).start()
        self._runners.append(runner)

    def snapshot(self) -> list[Captured]:
        with self._lock:
            return list(self.captured)

    def close(self) -> None:
        async def _close() -> None:
            for r in self._runners:
                await r.cleanup()
            if self._session is not None:
                await self._session.close()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class Member(LocalNode):
    """A node whose answers the tests hold to their status codes."""

    def status(self) -> dict[str, Any]:
        code, body = self.call("GET", "/v1/status")
        assert code == 200, body
        return body  # type: ignore[no-any-return]

    def report(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        code, body = self.call("POST", "/v1/reports", {"items": items})
        assert code == 201, body
        return body  # type: ignore[no-any-return]

    def retract(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        code, body = self.call("POST", "/v1/retractions", {"items": items})
        assert code == 201, body
        return body  # type: ignore[no-any-return]

    def query(self, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        code, body = self.call("POST", "/v1/query", {"items": items})
        assert code == 200, body
        return body["results"]  # type: ignore[no-any-return]

    def heads(self) -> dict[str, int]:
        return {m["name"]: (m["head"] or {}).get("seq", 0) for m in self.status()["members"]}


class Cluster(LocalNet):
    """Members made through the CLI (:class:`node.localnet.LocalNet`), each charter
    endpoint a recording proxy in front of the member's peer API."""

    node_type = Member

    def __init__(
        self,
        root: Path,
        names: Iterable[str],
        env: dict[str, str],
        *,
        founders: str | None = None,
        admins: str = "",
    ) -> None:
        """``names`` each get a home; ``founders`` (default: all) are in the genesis,
        made by the first founder and signed by every admin; every home installs
        it (a later member keeps it as its trust anchor)."""
        self.proxy = RecordingProxy()
        super().__init__(root, names, env=env)
        self.found("e2e", founders or list(self.nodes), admins)

    def endpoint(self, node: LocalNode) -> str:
        port = free_port()
        self.proxy.add(node.name, port, node.peer_port)
        return f"http://127.0.0.1:{port}"

    def __getitem__(self, name: str) -> Member:
        node = self.nodes[name]
        assert isinstance(node, Member)
        return node

    def stop(self, *names: str, deadline_s: float = STOP_DEADLINE_S) -> dict[str, int]:
        codes = super().stop(*names, deadline_s=deadline_s)
        for name, code in codes.items():
            assert code == 0, f"{name} exited {code} on SIGTERM: {self.stderr(name)}"
        return codes

    def stderr(self, name: str) -> str:
        return self.log(name, tail=4000)

    def close(self) -> None:
        self.kill()
        self.proxy.close()


@contextmanager
def running_net(
    root: Path, names: str, *, admins: str, env: dict[str, str], deadline_s: float = 30.0
) -> Iterator[LocalNet]:
    """A consortium of ``names`` (one letter each) founded through the CLI, every node
    served and open for reports."""
    with LocalNet(root, list(names), env=env) as net:
        net.found(root.name, founders=list(names), admins=list(admins))
        net.start(*names)
        wait_until(
            "every node to take reports",
            lambda: all(open_for_reports(net.status(x)) for x in names),
            deadline_s,
        )
        yield net
