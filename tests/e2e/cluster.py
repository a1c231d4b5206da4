"""A consortium of real nodes, each `riskmesh serve` in its own process on loopback.

Every member's charter endpoint points at a recording proxy in front of its
peer API, so a test can see every byte that crosses the peer API (and stop a
node without changing anyone's charter).
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cbor2
from aiohttp import web
from nodeproc import (
    READY_DEADLINE_S,
    call,
    clean_env,
    cli,
    free_port,
    riskmesh_command,
    stop_process,
    wait_for,
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


@dataclass
class Member:
    name: str
    home: Path
    api_port: int
    peer_port: int
    proxy_port: int
    proc: subprocess.Popen[bytes] | None = None
    token: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(self.base, self.token, method, path, body)

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


class Cluster:
    """Founding members made through the CLI: init, genesis at the first, install everywhere."""

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
        self.root = root
        self.env = env
        self.proxy = RecordingProxy()
        self.members: dict[str, Member] = {}
        for name in names:
            m = Member(name, root / name, free_port(), free_port(), free_port())
            cli(
                "init",
                "--home",
                str(m.home),
                "--name",
                name,
                "--endpoint",
                f"http://127.0.0.1:{m.proxy_port}",
                "--api-listen",
                f"127.0.0.1:{m.api_port}",
                "--peer-listen",
                f"127.0.0.1:{m.peer_port}",
            )
            m.token = (m.home / "api-token").read_text().strip()
            self.proxy.add(name, m.proxy_port, m.peer_port)
            self.members[name] = m
        chosen = [self.members[n] for n in (founders or "".join(self.members))]
        first, *others = chosen
        genesis = root / "genesis.cbor"
        args = ["charter", "genesis", "--home", str(first.home), "--consortium", "e2e"]
        for m in others:
            flag = ":admin" if m.name in admins else ""
            args += ["--member", str(m.home / "join-request.cbor") + flag]
        cli(*args, "--out", str(genesis))
        for m in others:
            if m.name in admins:
                cli("charter", "sign", "--home", str(m.home), str(genesis))
        self.genesis = genesis
        for m in self.members.values():
            cli("charter", "install", "--home", str(m.home), str(genesis))

    def __getitem__(self, name: str) -> Member:
        return self.members[name]

    def start(self, *names: str) -> None:
        procs = []
        for name in names or tuple(self.members):
            m = self.members[name]
            assert m.proc is None or m.proc.poll() is not None, f"{name} is running"
            err = (self.root / f"{name}.stderr").open("ab")
            m.proc = subprocess.Popen(
                riskmesh_command("serve", "--home", str(m.home)),
                env=clean_env(self.env),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            err.close()
            procs.append(m)
        for m in procs:
            wait_for(f"{m.name} to serve", lambda m=m: self._answers(m), READY_DEADLINE_S, 0.05)

    def _answers(self, m: Member) -> bool:
        assert m.proc is not None
        if m.proc.poll() is not None:
            raise AssertionError(f"{m.name} exited {m.proc.returncode}: {self.stderr(m.name)}")
        try:
            return m.call("GET", "/v1/status")[0] == 200
        except OSError:
            return False

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.members):
            m = self.members[name]
            if m.proc is not None:
                code = stop_process(m.proc)
                assert code == 0, f"{name} exited {code} on SIGTERM: {self.stderr(name)}"
                m.proc = None

    def stderr(self, name: str) -> str:
        p = self.root / f"{name}.stderr"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def close(self) -> None:
        for m in self.members.values():
            if m.proc is not None:
                stop_process(m.proc, graceful=False)
                m.proc = None
        self.proxy.close()
