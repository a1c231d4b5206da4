"""The floor of bench_http: a bare aiohttp app answering the node's two query routes.

``POST /v1/query`` ({"items": [{"kind", "value"}, ...]}) and
``GET /v1/query/{kind}/{value}`` are answered from a Python ``set`` of the
canonical values in ``--values`` (one a line): no auth, no metrics, no access
log, no Bloom, no SQLite, no canonicalisation, no verdicts. JSON by orjson when
installed, the event loop uvloop's when installed (each worker says which on
stderr). ``GET /v1/status`` answers ``{"pid": ...}`` so a caller can see every
worker answer.

``--workers N`` processes serve one port, each its own listening socket with
SO_REUSEPORT (the kernel spreads new connections over them), as the node's
``serve.workers`` local-API workers do; this process only starts them, waits
and stops them on SIGTERM or SIGINT.

    python bench/bare_app.py --port PORT --values FILE [--workers N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def make_app(present: set[str]) -> Any:
    from aiohttp import web

    try:
        import orjson

        dumps, loads = orjson.dumps, orjson.loads
    except ImportError:  # the standard library's is slower, and says so in the log
        import json

        def dumps(obj: Any) -> bytes:
            return json.dumps(obj, separators=(",", ":")).encode()

        loads = json.loads

    def answer(obj: Any) -> web.Response:
        return web.Response(body=dumps(obj), content_type="application/json")

    async def one(request: web.Request) -> web.Response:
        value = request.match_info["value"]
        kind = request.match_info["kind"]
        return answer({"kind": kind, "value": value, "match": value in present})

    async def batch(request: web.Request) -> web.Response:
        body = loads(await request.read())
        return answer({"results": [{"match": item["value"] in present} for item in body["items"]]})

    async def status(request: web.Request) -> web.Response:
        return answer({"pid": os.getpid()})

    app = web.Application(client_max_size=64 << 20)
    app.router.add_get("/v1/query/{kind}/{value}", one)
    app.router.add_post("/v1/query", batch)
    app.router.add_get("/v1/status", status)
    return app


def worker(port: int, values: Path) -> None:
    from aiohttp import web

    if sys.platform == "linux":  # end with the parent, even if it is killed outright
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    present = set(values.read_text().split())
    loop_name = "asyncio"
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        pass
    try:
        import orjson  # noqa: F401

        codec = "orjson"
    except ImportError:
        codec = "json (orjson not installed)"
    print(
        f"bare_app worker {os.getpid()}: {len(present):,} values, {loop_name}, {codec}",
        file=sys.stderr,
        flush=True,
    )
    web.run_app(
        make_app(present),
        host="127.0.0.1",
        port=port,
        reuse_port=True,
        access_log=None,
        print=None,
        handle_signals=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--values", type=Path, required=True, help="canonical values, one a line")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.port, args.values)
        return
    argv = [sys.executable, __file__, "--worker", "--port", str(args.port)]
    argv += ["--values", str(args.values)]
    children = [subprocess.Popen(argv, stdin=subprocess.DEVNULL) for _ in range(args.workers)]

    def stop(signum: int, frame: object) -> None:
        for c in children:
            if c.poll() is None:
                c.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [c.wait() for c in children]
    sys.exit(max(codes) if any(codes) else 0)


if __name__ == "__main__":
    main()
