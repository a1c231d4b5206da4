"""Real `riskmesh` processes in tests: CLI calls, `serve`, HTTP calls.

The processes are run by :mod:`node.localnet`, the one launcher; this module
fits it to pytest (a command or a node that fails, fails the test). Shared by
the node tests that need a served node and the end-to-end tests
(``pythonpath = ["tests"]`` in pyproject makes this importable as ``nodeproc``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from node.localnet import READY_DEADLINE_S, LocalNode, NetError, free_port, riskmesh
from node.localnet import http_call as call

__all__ = ["READY_DEADLINE_S", "call", "cli", "free_port", "node_process"]


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run one `riskmesh` command; return its stdout (fail the test on a non-zero exit)."""
    proc = riskmesh(*args, env=env)
    if check and proc.returncode != 0:
        pytest.fail(f"riskmesh {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


@contextmanager
def node_process(
    home: Path,
    port: int,
    stderr_path: Path,
    extra_env: dict[str, str] | None = None,
    *,
    peer_port: int | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `riskmesh serve` for ``home`` with its local API on ``port``; ready when
    GET /v1/status answers. Stopped (killed if stuck) on the way out."""
    node = LocalNode(
        home.name, home, port, peer_port or free_port(), env=extra_env, log_path=stderr_path
    )
    try:
        try:
            proc = node.start(READY_DEADLINE_S)
        except NetError as e:
            pytest.fail(str(e))
        yield proc
    finally:
        node.stop()
