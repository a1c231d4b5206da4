"""`riskmesh serve`: run the local API and the peer API until SIGINT/SIGTERM.

The two listen apart (``api.listen`` for this member's own platforms,
``peer.listen`` for other members' nodes) and share one node core and one
gossip service.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from node.api import GOSSIP, create_app
from node.config import load_config, parse_listen
from node.gossip import create_peer_app

log = logging.getLogger("riskmesh")


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log without paths that could carry a raw identifier."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        if path.startswith("/v1/query/"):
            path = "/v1/query/{kind}/{value}"
        self.logger.info("%s %s %d %.1fms", request.method, path, response.status, time * 1000)


async def serve(home: Path, stop: asyncio.Event | None = None) -> None:
    config = load_config(home)
    api_host, api_port = parse_listen(config["api.listen"], "api.listen")
    peer_host, peer_port = parse_listen(config["peer.listen"], "peer.listen")
    app = create_app(config)
    peer_app = create_peer_app(app[GOSSIP])
    api_runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)
    # the peer API's access log would only repeat the gossip metrics at debug volume
    peer_runner = web.AppRunner(peer_app, access_log=None)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread() and sys.platform != "win32":
        # signal handlers belong to the main thread (tests run serve() elsewhere)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    await api_runner.setup()
    await peer_runner.setup()
    try:
        await web.TCPSite(api_runner, api_host, api_port).start()
        await web.TCPSite(peer_runner, peer_host, peer_port).start()
        log.info("local API on %s:%d, peer API on %s:%d", api_host, api_port, peer_host, peer_port)
        await stop.wait()
        log.info("stopping")
    finally:
        await peer_runner.cleanup()
        await api_runner.cleanup()


def run(home: Path) -> None:
    config = load_config(home)
    logging.basicConfig(
        level=config["log.level"].upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve(home))
