"""Logging for ``riskmesh serve``: text or JSON lines on stderr, libraries quiet.

``log.format = "text"`` writes ``TIME LEVEL LOGGER MESSAGE``; ``"json"`` writes
one JSON object per line (``ts``, ``level``, ``logger``, ``msg``, and ``exc``
for a traceback), for journald or a log shipper. Library loggers that chatter
at INFO (APScheduler runs a job every few seconds; aiohttp logs every
request) are held at WARNING unless ``log.level`` is ``debug``. No riskmesh
log line carries a raw identifier or a key: the access log names the route,
never the path (``node.server.RedactingAccessLogger``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import TextIO

__all__ = ["FORMATS", "QUIET_LOGGERS", "JsonFormatter", "setup_logging"]

FORMATS = ("text", "json")
#: Libraries whose INFO lines are noise at the node's default level.
QUIET_LOGGERS = ("apscheduler", "aiohttp", "asyncio", "urllib3")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger once for the process; return its handler."""
    if fmt not in FORMATS:
        raise ValueError(f"log format is one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = logging.NOTSET if level == "debug" else logging.WARNING
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    return handler
