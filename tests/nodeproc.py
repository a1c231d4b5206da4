"""Running real `riskmesh` processes in tests: CLI calls, `serve`, HTTP calls.

Shared by the node tests that need a served node and the end-to-end tests
(``pythonpath = ["tests"]`` in pyproject makes this importable as ``nodeproc``).
Waiting is always for a condition with a deadline, never a bare sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from node.localnet import free_port

READY_DEADLINE_S = 20.0
STOP_DEADLINE_S = 15.0
T = TypeVar("T")


def riskmesh_command(*args: str) -> list[str]:
    exe = shutil.which("riskmesh")
    if exe is not None:
        return [exe, *args]
    return [sys.executable, "-c", "from node.cli import main; main()", *args]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKMESH_")}
    env.update(extra or {})
    return env


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run one `riskmesh` command; return its stdout (fail the test on a non-zero exit)."""
    proc = subprocess.run(
        riskmesh_command(*args), env=clean_env(env), capture_output=True, text=True, timeout=60
    )
    if check and proc.returncode != 0:
        pytest.fail(f"riskmesh {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def call(
    base: str, token: str | None, method: str, path: str, body: Any = None, timeout: float = 10
) -> tuple[int, Any]:
    """One HTTP call; returns (status, decoded JSON body or None)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, None


def wait_for(
    what: str, probe: Callable[[], T | None], deadline_s: float, interval_s: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline_s}s waiting for {what}")
        time.sleep(interval_s)


@contextmanager
def node_process(
    home: Path,
    port: int,
    stderr_path: Path,
    extra_env: dict[str, str] | None = None,
    *,
    peer_port: int | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `riskmesh serve` with its local API on ``port``; ready when GET /v1/status
    answers. Killed on the way out if it is still running."""
    env = clean_env(
        {
            "RISKMESH_API_LISTEN": f"127.0.0.1:{port}",
            "RISKMESH_PEER_LISTEN": f"127.0.0.1:{peer_port or free_port()}",
        }
    )
    env.update(extra_env or {})
    token = (home / "api-token").read_text().strip()
    base = f"http://127.0.0.1:{port}"
    with stderr_path.open("ab") as err:
        proc = subprocess.Popen(
            riskmesh_command("serve", "--home", str(home)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + READY_DEADLINE_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"node exited with {proc.returncode} before it answered:\n"
                    + stderr_path.read_text(errors="replace")[-3000:]
                )
            try:
                status, body = call(base, token, "GET", "/v1/status")
                if status == 200:
                    break
                if status >= 500:
                    pytest.fail(f"GET /v1/status answered {status}: {body!r}")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"node did not answer GET /v1/status within {READY_DEADLINE_S}s:\n"
                    + stderr_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.05)
        yield proc
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], *, graceful: bool = True) -> int:
    """SIGTERM (or SIGKILL), then wait; returns the exit code."""
    if proc.poll() is None:
        if graceful:
            proc.terminate()
            try:
                return proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
    return proc.wait(timeout=STOP_DEADLINE_S)
