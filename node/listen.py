"""Hardened listeners: what aiohttp's runner leaves to the operator.

Both of a node's listeners (the local API and the peer API) run through
:class:`HardenedRunner`, which adds to aiohttp's ``AppRunner``:

* **a header timeout**: a connection that has not sent one whole request head
  within ``header_timeout_s`` is closed (a slow client holds nothing);
* **a body timeout**: handlers read bodies with :func:`read_body_within`;
* **an idle keep-alive timeout** (``keepalive_timeout_s``);
* **a connection cap**: past ``max_connections`` open connections a new one is
  closed at once, so slow clients on one port cannot take the process's file
  descriptors from the other;
* **errors in the error shape, with nothing from the request in the log**: a
  request aiohttp cannot parse (a request line over the limit, bytes that are
  not HTTP, a raw space in a path) gets ``{"error": {"code", "message"}}``
  with a 4xx, and is logged as its class and status only, at most once per
  ``LOG_INTERVAL_S`` — the request line of a malformed request may hold a raw
  identifier, and a flood of them must not flood the journal.

:func:`raise_open_file_limit` raises the soft ``RLIMIT_NOFILE`` to the hard one,
and :func:`quiet_accept_errors` makes the event loop log "too many open files"
accept errors at most once per interval.

aiohttp offers no public hook for the error response of an unparsable request,
so :class:`HardenedRunner` swaps the class of the ``Server`` it makes for a
subclass that builds :class:`_Handler`; this relies on ``aiohttp<4``'s
``AppRunner._make_server``, which pyproject pins.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

__all__ = [
    "BodyTimeout",
    "HardenedRunner",
    "Limits",
    "RedactingAccessLogger",
    "quiet_accept_errors",
    "raise_open_file_limit",
    "read_body_within",
]

log = logging.getLogger("riskmesh.http")

LOG_INTERVAL_S = 60.0


class Limits:
    """A listener's limits (seconds, counts)."""

    def __init__(
        self,
        *,
        header_timeout_s: float = 10.0,
        body_timeout_s: float = 30.0,
        keepalive_timeout_s: float = 15.0,
        max_connections: int = 1000,
    ) -> None:
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.keepalive_timeout_s = keepalive_timeout_s
        self.max_connections = max_connections


class _RateLimitedLog:
    """Log a kind of message at most once per interval, counting what was left out."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        suffix = f" ({skipped} more like it since the last report)" if skipped else ""
        log.warning(msg + suffix, *args)


_errors = _RateLimitedLog()


def _error_of(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    if isinstance(exc, LineTooLong):
        return 414, "request_too_long", "the request line or a header is over the size limit"
    if isinstance(exc, BadHttpMethod):
        return 400, "bad_method", "not an HTTP request method"
    if isinstance(exc, HttpProcessingError) or status == 400:
        return 400, "bad_http", "the request is not valid HTTP (is the path URL-encoded?)"
    if status == 504:
        return 504, "timeout", "the request took too long"
    return status, "internal_error", "the node failed to answer; this is a bug"


class _Handler(RequestHandler):
    """aiohttp's connection handler with a header timeout and quiet, shaped errors."""

    _limits: Limits = Limits()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        loop = asyncio.get_running_loop()
        loop.call_later(self._limits.header_timeout_s, self._check_header)

    def _check_header(self) -> None:
        # no whole request head yet: a slow (or silent) client
        if self._request_count == 0 and self.transport is not None:
            _errors.warning("header_timeout", "closed a connection that sent no request in time")
            self.force_close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        status, code, text = _error_of(status, exc)
        if status >= 500:
            # a bug: say where, never what the request held (exception messages may)
            log.error(
                "request failed with %s (a bug): %s",
                type(exc).__name__ if exc is not None else "error",
                _frames(exc),
            )
        else:
            _errors.warning(
                f"bad_request:{type(exc).__name__}",
                "refused a malformed request (%s, %d)",
                type(exc).__name__ if exc is not None else "unknown",
                status,
            )
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        resp = web.Response(
            status=status,
            text=json.dumps({"error": {"code": code, "message": text}}),
            content_type="application/json",
        )
        resp.force_close()
        return resp


def _frames(exc: BaseException | None) -> str:
    """Where an exception was raised, as file:line of each frame (no message)."""
    out = []
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None:
        out.append(f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}")
        tb = tb.tb_next
    return " < ".join(reversed(out[-8:])) or "(no traceback)"


class _Refuse(asyncio.Protocol):
    """A connection past the cap: closed as soon as it is made, before any HTTP."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()


class _Server(web.Server):
    _limits: Limits = Limits()

    def __call__(self) -> RequestHandler:
        if len(self._connections) >= self._limits.max_connections:
            _errors.warning(
                "connection_cap", "connection cap of %d reached", self._limits.max_connections
            )
            return _Refuse()  # type: ignore[return-value]
        handler = _Handler(self, loop=self._loop, **self._kwargs)
        handler._limits = self._limits
        return handler


class HardenedRunner(web.AppRunner):
    """An ``AppRunner`` whose server applies :class:`Limits` and shapes parse errors."""

    def __init__(self, app: web.Application, limits: Limits, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", limits.keepalive_timeout_s)
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server
        assert isinstance(server, _Server)
        server._limits = self.limits
        return server


class BodyTimeout(Exception):
    """The client did not send its whole body in time."""


async def read_body_within(request: web.Request, seconds: float) -> bytes:
    """The request body, or BodyTimeout if it does not arrive within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except (TimeoutError, ConnectionResetError):  # too slow, or gone before the end
        raise BodyTimeout() from None


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one; return (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, 1 << 20) if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)
    return soft, hard


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log the loop's accept errors ("too many open files") at most once per interval."""
    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if "accept" in message or isinstance(context.get("exception"), OSError):
            exc = context.get("exception")
            _errors.warning(
                "accept",
                "cannot accept connections: %s",
                exc.strerror if isinstance(exc, OSError) and exc.strerror else message,
            )
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log that names the route, never the path: a path may carry a raw identifier
    (``/v1/query/phone/…``, however it is spelled), and an unknown path may be anything."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        match = getattr(request, "match_info", None)
        route = getattr(match, "route", None) if match is not None else None
        resource = getattr(route, "resource", None)
        path = resource.canonical if resource is not None else "(no route)"
        method = request.method if request.method.isalpha() and len(request.method) < 16 else "?"
        self.logger.info("%s %s %d %.1fms", method, path, response.status, time * 1000)
