"""`riskmesh serve`: run the local API until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from node.api import create_app
from node.config import load_config, parse_listen


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log without paths that could carry a raw identifier."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        if path.startswith("/v1/query/"):
            path = "/v1/query/{kind}/{value}"
        self.logger.info("%s %s %d %.1fms", request.method, path, response.status, time * 1000)


def run(home: Path) -> None:
    config = load_config(home)
    logging.basicConfig(
        level=config["log.level"].upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    host, port = parse_listen(config["api.listen"], "api.listen")
    app = create_app(config)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log_class=RedactingAccessLogger,
        print=lambda *a: logging.getLogger("riskmesh").info("local API on %s:%d", host, port),
        handle_signals=True,
    )
