"""Real node processes on this machine: the one launcher.

Used by `riskmesh demo`, the simulator's live mode, the tests that need a
served node (``tests/nodeproc.py``, ``tests/e2e/cluster.py``) and the HTTP
benchmark. It relies only on the process interface: the ``riskmesh init``,
``charter`` and ``serve`` commands, a home's ``config.toml`` and
``api-token``, ``RISKMESH_<SECTION>_<KEY>`` settings in the environment, and
``GET /v1/status``.

* :class:`Served` — one child process answering HTTP on a loopback port:
  started, ready once ``GET /v1/status`` answers 200, stopped with SIGTERM
  (killed if stuck), or killed at once; its stderr goes to a log file.
* :class:`LocalNode` — ``riskmesh serve`` for one home, listening on the ports
  it is given (passed as ``RISKMESH_API_LISTEN`` and ``RISKMESH_PEER_LISTEN``).
* :class:`LocalNet` — nodes named under one directory, each home made by
  ``riskmesh init`` on free loopback ports; :meth:`LocalNet.found` makes the
  genesis with ``riskmesh charter genesis``, has it signed and installs it
  everywhere; then the nodes are started and stopped together.

Every child gets this process's environment without its ``RISKMESH_*``
variables, plus what its caller sets. Waiting is always for a condition with
a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from contracts.errors import NetError
from node.client import ClientError, LocalClient

__all__ = [
    "READY_DEADLINE_S",
    "STOP_DEADLINE_S",
    "LocalNet",
    "LocalNode",
    "NetError",
    "Served",
    "clean_env",
    "free_port",
    "http_call",
    "open_for_reports",
    "riskmesh",
    "riskmesh_command",
    "wait_until",
]

T = TypeVar("T")
READY_DEADLINE_S = 20.0
STOP_DEADLINE_S = 15.0
CLI_TIMEOUT_S = 60.0
#: how many `riskmesh` commands a LocalNet runs at once (homes are independent)
CLI_PARALLEL = 4


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_for_reports(status: Mapping[str, Any]) -> bool:
    """Whether a node's ``/v1/status`` says it takes reports: it holds a consortium key
    and is not holding its own publishing until its first exchange after a start."""
    return bool(status.get("epochs")) and not status.get("syncing", False)


def wait_until(
    what: str, probe: Callable[[], T | None], deadline_s: float, *, interval_s: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy; NetError after ``deadline_s``.

    A probe that raises ClientError or OSError (a node not answering yet)
    counts as not yet; any other exception ends the wait.
    """
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
        time.sleep(interval_s)


# -- commands ----------------------------------------------------------------------------


def riskmesh_command(*args: str) -> list[str]:
    """The argv of ``riskmesh ARGS`` run by this interpreter."""
    return [sys.executable, "-c", "from node.cli import main; main()", *args]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``RISKMESH_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMESH_")}
    env.update(extra or {})
    return env


def riskmesh(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run one ``riskmesh`` command to its end; its output captured, its exit code unchecked."""
    return subprocess.run(
        riskmesh_command(*args),
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def http_call(
    base: str,
    token: str | None,
    method: str,
    path: str,
    body: Any = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One JSON call; returns (status, decoded body, or None if it is not JSON).

    An HTTP error status is returned, not raised; not reaching the server
    raises OSError.
    """
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


# -- processes ---------------------------------------------------------------------------


class Served:
    """One child process answering HTTP on ``127.0.0.1:api_port``.

    ``argv`` is run with stdout discarded and stderr appended to ``log_path``;
    it is ready once ``GET /v1/status`` (with ``token``, if any) answers 200.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        api_port: int,
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.api_port = api_port
        self.log_path = log_path
        #: added to the child's (cleaned) environment
        self.env = dict(env or {})
        self._token = token
        self.proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = f"pid {self.proc.pid}" if self.running and self.proc else "stopped"
        return f"{type(self).__name__}({self.name!r}, {self.base}, {state})"

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def call(
        self, method: str, path: str, body: Any = None, *, timeout: float = 10.0
    ) -> tuple[int, Any]:
        """One JSON call to this process; see :func:`http_call`."""
        return http_call(self.base, self.token, method, path, body, timeout)

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process; do not wait for it (see :meth:`wait_ready`)."""
        if self.running:
            raise NetError(f"{self.name} is running already")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=clean_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return self.proc

    def wait_ready(self, deadline_s: float = READY_DEADLINE_S) -> None:
        """Until ``GET /v1/status`` answers 200; NetError (with the log's end) if the
        process exits, answers 5xx, or the deadline passes."""
        try:
            wait_until(f"{self.name} to answer GET /v1/status", self._ready, deadline_s)
        except NetError as e:
            raise NetError(f"{e}; its log ends:\n{self.log()}") from None

    def _ready(self) -> bool:
        if self.proc is None:
            raise NetError(f"{self.name} is not started")
        if self.proc.poll() is not None:
            raise NetError(f"{self.name} exited with {self.proc.returncode}")
        status, body = self.call("GET", "/v1/status", timeout=2.0)
        if status >= 500:
            raise NetError(f"{self.name}: GET /v1/status answered {status}: {body!r}")
        return status == 200

    def start(self, deadline_s: float = READY_DEADLINE_S) -> subprocess.Popen[bytes]:
        """:meth:`launch`, then :meth:`wait_ready`."""
        proc = self.launch()
        self.wait_ready(deadline_s)
        return proc

    def terminate(self) -> None:
        """Send SIGTERM (a clean stop), without waiting."""
        if self.proc is not None and self.running:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, deadline_s: float = STOP_DEADLINE_S) -> int | None:
        """Wait for the process to end (killed after ``deadline_s``); its exit code,
        or None if it was never started."""
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=deadline_s)
        self.proc = None
        return code

    def stop(self, deadline_s: float = STOP_DEADLINE_S) -> int | None:
        """SIGTERM and wait (a stuck process is killed); the exit code."""
        self.terminate()
        return self.wait(deadline_s)

    def kill(self) -> int | None:
        """SIGKILL (no shutdown of any kind) and wait; the exit code."""
        if self.proc is not None and self.running:
            self.proc.kill()
        return self.wait()

    def restart(self, deadline_s: float = READY_DEADLINE_S) -> int | None:
        """:meth:`stop`, then :meth:`start`; the exit code of the stop."""
        code = self.stop()
        self.start(deadline_s)
        return code

    def log(self, tail: int | None = 3000) -> str:
        """The log (its last ``tail`` characters; all of it with None)."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return text if tail is None else text[-tail:]


class LocalNode(Served):
    """``riskmesh serve --home HOME`` with its local API on ``api_port`` and its peer
    API on ``peer_port`` (whatever the home's config.toml says)."""

    def __init__(
        self,
        name: str,
        home: Path,
        api_port: int,
        peer_port: int,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        listen = {
            "RISKMESH_API_LISTEN": f"127.0.0.1:{api_port}",
            "RISKMESH_PEER_LISTEN": f"127.0.0.1:{peer_port}",
            # many nodes share this machine: one serving process each, unless told
            "RISKMESH_SERVE_WORKERS": "1",
        }
        super().__init__(
            name,
            riskmesh_command("serve", "--home", str(home)),
            api_port,
            log_path=log_path or home.parent / f"{name}.log",
            env={**listen, **(env or {})},
        )
        self.home = home
        self.peer_port = peer_port
        self._client: LocalClient | None = None

    @property
    def token(self) -> str:
        """The home's API token (read once, when first needed)."""
        if self._token is None:
            self._token = (self.home / "api-token").read_text().strip()
        return self._token

    @property
    def client(self) -> LocalClient:
        if self._client is None:
            self._client = LocalClient(self.base, self.token)
        return self._client


class LocalNet:
    """Nodes named ``names`` under ``root``; call :meth:`found` then :meth:`start`.

    ``env`` goes to every node's ``riskmesh serve``. A subclass may set
    ``node_type`` (a LocalNode subclass) and override :meth:`endpoint`.
    """

    node_type: type[LocalNode] = LocalNode

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
        self._add_all(list(names), region)

    def __getitem__(self, name: str) -> LocalNode:
        return self.nodes[name]

    @property
    def genesis(self) -> Path:
        return self.root / "genesis.cbor"

    # -- homes ---------------------------------------------------------------------------

    def endpoint(self, node: LocalNode) -> str:
        """The peer URL the charter gives ``node``: its peer API itself."""
        return f"http://127.0.0.1:{node.peer_port}"

    def add(self, name: str, *, region: str = "CN") -> LocalNode:
        """A home for ``name`` by ``riskmesh init`` (not in any charter yet)."""
        [node] = self._add_all([name], region)
        return node

    def _add_all(self, names: list[str], region: str) -> list[LocalNode]:
        nodes = [
            self.node_type(
                name,
                self.root / name,
                free_port(),
                free_port(),
                env=self.env,
                log_path=self.root / f"{name}.log",
            )
            for name in names
        ]
        self._cli(
            *(
                [
                    "init",
                    "--home",
                    str(node.home),
                    "--name",
                    node.name,
                    "--endpoint",
                    self.endpoint(node),
                    "--api-listen",
                    f"127.0.0.1:{node.api_port}",
                    "--peer-listen",
                    f"127.0.0.1:{node.peer_port}",
                    "--region",
                    region,
                ]
                for node in nodes
            )
        )
        self.nodes.update((node.name, node) for node in nodes)
        return nodes

    def found(self, consortium: str, founders: Iterable[str], admins: Iterable[str]) -> str:
        """Genesis by the first founder with the others (``admins`` among them are admins;
        the first always is), signed by every other admin, installed on every home.
        Returns the genesis summary."""
        first, *others = (self.nodes[n] for n in founders)
        admin_set = set(admins) | {first.name}
        make = ["charter", "genesis", "--home", str(first.home), "--consortium", consortium]
        for node in others:
            join = str(node.home / "join-request.cbor")
            make += ["--member", join + (":admin" if node.name in admin_set else "")]
        [out] = self._cli([*make, "--out", str(self.genesis)])
        for node in others:  # one after the other: each signs the file in place
            if node.name in admin_set:
                self._cli(["charter", "sign", "--home", str(node.home), str(self.genesis)])
        self._cli(*(self._install_args(node) for node in self.nodes.values()))
        return out.strip().removeprefix(f"wrote {self.genesis}: ")

    def install(self, name: str) -> str:
        """Install the genesis on ``name`` (a member onboarded later keeps it as its
        trust anchor); returns what was installed."""
        [out] = self._cli(self._install_args(self.nodes[name]))
        return out.strip().removeprefix("installed ")

    def _install_args(self, node: LocalNode) -> list[str]:
        return ["charter", "install", "--home", str(node.home), str(self.genesis)]

    def _cli(self, *commands: list[str]) -> list[str]:
        """Run ``riskmesh`` commands (a few at a time); their stdout, or NetError."""

        def run(args: list[str]) -> subprocess.CompletedProcess[str]:
            try:
                return riskmesh(*args)
            except subprocess.TimeoutExpired:
                raise NetError(
                    f"riskmesh {' '.join(args)} took over {CLI_TIMEOUT_S:.0f}s"
                ) from None

        with ThreadPoolExecutor(max_workers=min(CLI_PARALLEL, len(commands) or 1)) as pool:
            done = list(pool.map(run, commands))
        for args, proc in zip(commands, done, strict=True):
            if proc.returncode != 0:
                raise NetError(
                    f"riskmesh {' '.join(args)} exited with {proc.returncode}: "
                    + proc.stderr.strip()[-2000:]
                )
        return [proc.stdout for proc in done]

    # -- processes -----------------------------------------------------------------------

    def _chosen(self, names: tuple[str, ...]) -> list[LocalNode]:
        return [self.nodes[n] for n in names or tuple(self.nodes)]

    def start(self, *names: str, deadline_s: float = READY_DEADLINE_S) -> None:
        """Start the named nodes (default: all) not running yet; wait until each serves."""
        started = [node for node in self._chosen(names) if not node.running]
        for node in started:
            node.launch()
        for node in started:
            node.wait_ready(deadline_s)

    def stop(self, *names: str, deadline_s: float = STOP_DEADLINE_S) -> dict[str, int]:
        """SIGTERM each node (default: all) and wait; the exit codes of those that had
        been started (a stuck node is killed)."""
        nodes = self._chosen(names)
        for node in nodes:
            node.terminate()
        codes = {node.name: node.wait(deadline_s) for node in nodes}
        return {name: code for name, code in codes.items() if code is not None}

    def kill(self, *names: str) -> dict[str, int]:
        """SIGKILL each node (default: all); the exit codes of those that had been started."""
        codes = {node.name: node.kill() for node in self._chosen(names)}
        return {name: code for name, code in codes.items() if code is not None}

    def log(self, name: str, tail: int | None = 3000) -> str:
        return self.nodes[name].log(tail)

    def status(self, name: str) -> dict[str, Any]:
        return self.nodes[name].client.status()

    def __enter__(self) -> LocalNet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
