"""Alert delivery (DESIGN §14): at least once, in order, idempotent by ``id``.

Three ways out, all reading the one alert log of :class:`~node.alerts.Alerts`:

* the cursor, ``GET /v1/alerts?after=ID&limit=N&wait=S``: a long poll,
  answered as soon as there is an alert after ``ID`` or ``S`` seconds have
  passed (:meth:`AlertFeed.wait_after`);
* Server-Sent Events, ``GET /v1/alerts/stream``: ``id:`` is the alert id, and
  a client that reconnects with ``Last-Event-ID`` resumes after it
  (:func:`stream_alerts`);
* webhooks (``alerts.webhook_url``): :class:`WebhookDelivery` POSTs
  ``{"alerts": [...]}`` in id order with ``X-Riskmesh-Signature: sha256=<hex
  HMAC-SHA256(secret, body)>`` and ``X-Riskmesh-Delivery: <first id>``,
  advances its durable cursor only on a 2xx, and retries a failure with
  jittered exponential back-off. It runs as its own task (the server's
  :func:`alerts_context`), with its own HTTP session and timeout, so a dead
  endpoint delays nothing but itself.

Waiting is on an :class:`asyncio.Event` that :class:`AlertFeed` sets whenever
the node writes alerts (:attr:`Alerts.listeners`); nothing polls. On shutdown
:meth:`AlertFeed.close` wakes every waiter so that long polls and streams end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web

from node.alerts import Alerts

__all__ = [
    "ALERT_FEED",
    "SIGNATURE_HEADER",
    "AlertFeed",
    "WebhookDelivery",
    "alerts_context",
    "sign",
    "stream_alerts",
]

log = logging.getLogger("riskmesh.alerts")

SIGNATURE_HEADER = "X-Riskmesh-Signature"
DELIVERY_HEADER = "X-Riskmesh-Delivery"
#: Most alerts in one webhook POST.
WEBHOOK_BATCH = 100
#: An SSE stream sends a comment line after this many idle seconds (keeps proxies open).
KEEPALIVE_S = 15.0
#: Seconds between upkeep steps (storing recent queries, pruning).
UPKEEP_S = 1.0


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Riskmesh-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _origin(url: str) -> str:
    """The URL's scheme, host and port: what a log line or status may show of it (a
    path or query could hold a token)."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname or "?"
    return f"{u.scheme}://{host}" + (f":{u.port}" if u.port else "")


class AlertFeed:
    """Waiting for alerts: the asyncio side of :attr:`Alerts.listeners`."""

    def __init__(self, alerts: Alerts) -> None:
        self.alerts = alerts
        self._event = asyncio.Event()
        self.closed = False
        alerts.listeners.append(self._notify)

    def _notify(self) -> None:
        # wake whoever waits now; later waiters wait on a fresh event
        self._event.set()
        self._event = asyncio.Event()

    def close(self) -> None:
        """Wake every waiter for good (the server is stopping)."""
        self.closed = True
        self._notify()
        with contextlib.suppress(ValueError):
            self.alerts.listeners.remove(self._notify)

    async def wait(self, timeout: float) -> bool:
        """Until alerts are written (True) or ``timeout`` seconds pass (False)."""
        if self.closed:
            return False
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return not self.closed

    async def wait_after(self, after: int, limit: int, wait_s: float) -> list[dict[str, Any]]:
        """Alerts after ``after`` (at most ``limit``); if there are none, wait up to
        ``wait_s`` seconds for some."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            got = self.alerts.after(after, limit)
            left = deadline - loop.time()
            if got or left <= 0 or self.closed:
                return got
            await self.wait(left)


ALERT_FEED = web.AppKey("alert_feed", AlertFeed)


async def stream_alerts(request: web.Request, feed: AlertFeed, after: int) -> web.StreamResponse:
    """Server-Sent Events of every alert after ``after``, then of each new one, until
    the client goes or the server stops."""
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    try:
        await resp.write(b"retry: 2000\n\n")
        while not feed.closed:
            batch = feed.alerts.after(after, WEBHOOK_BATCH)
            for alert in batch:
                data = json.dumps(alert, separators=(",", ":"))
                await resp.write(f"id: {alert['id']}\nevent: alert\ndata: {data}\n\n".encode())
                after = alert["id"]
            if batch:
                continue
            if not await feed.wait(KEEPALIVE_S) and not feed.closed:
                await resp.write(b": keep-alive\n\n")
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the client went away
    return resp


class WebhookDelivery:
    """Deliver every alert to one URL, in id order, at least once.

    The cursor (the last id the endpoint acknowledged with a 2xx) is durable in
    the node's store, so a restart resumes after it; a batch is retried until it
    is acknowledged, after ``base_s * 2**(n-1)`` seconds (capped at ``cap_s``),
    jittered to between half and all of it.
    """

    CURSOR = "webhook"

    def __init__(
        self,
        alerts: Alerts,
        feed: AlertFeed,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        base_s: float = 1.0,
        cap_s: float = 300.0,
        rng: random.Random | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.alerts = alerts
        self.feed = feed
        self.url = url
        self._secret = secret.encode()
        self.timeout_s = timeout_s
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng or random.Random()
        self.clock = clock or alerts.clock
        self.target = _origin(url)

    def __repr__(self) -> str:
        return f"WebhookDelivery({self.target!r})"

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row."""
        delay: float = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        return delay * (0.5 + self.rng.random() / 2)

    async def run(self) -> None:
        """Deliver until cancelled."""
        self.alerts.webhook.target = self.target
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                cursor = self.alerts.cursor(self.CURSOR)
                batch = self.alerts.after(cursor, WEBHOOK_BATCH)
                if not batch:
                    await self.feed.wait(KEEPALIVE_S)
                    if self.feed.closed:
                        return
                    continue
                error = await self._post(session, batch)
                now = self.clock()
                self.alerts.webhook_result(len(batch) if error is None else 0, error, now)
                if error is None:
                    self.alerts.set_cursor(self.CURSOR, batch[-1]["id"])
                    continue
                delay = self.backoff(self.alerts.webhook.consecutive_failures)
                self.alerts.webhook.retry_at = now + int(delay * 1000)
                log.warning(
                    "webhook %s: %s; retrying alerts from id %d in %.1f s",
                    self.target,
                    error,
                    batch[0]["id"],
                    delay,
                )
                await asyncio.sleep(delay)

    async def _post(
        self, session: aiohttp.ClientSession, batch: list[dict[str, Any]]
    ) -> str | None:
        """POST one batch; None if the endpoint acknowledged it, else why not."""
        body = json.dumps({"alerts": batch}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            DELIVERY_HEADER: str(batch[0]["id"]),
        }
        try:
            async with session.post(self.url, data=body, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return None
                return f"answered {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return f"unreachable ({type(e).__name__})"


def alerts_context(
    alerts: Alerts, feed: AlertFeed, url: str, secret: str, *, clock: Callable[[], int]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The local API's ``cleanup_ctx`` for alerts: the upkeep (storing recent queries,
    pruning) and, with a ``url``, webhook delivery, each its own task."""

    async def upkeep() -> None:
        while True:
            more = False
            try:
                more = alerts.upkeep(clock())
            except Exception:  # a bug here must not end the upkeep for good
                log.exception("alerts upkeep failed")
            await asyncio.sleep(0 if more else UPKEEP_S)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(upkeep(), name="alerts-upkeep")]
        if url:
            hook = WebhookDelivery(alerts, feed, url, secret, clock=clock)
            tasks.append(asyncio.create_task(hook.run(), name="alerts-webhook"))
            log.info("delivering alerts to the webhook at %s", hook.target)
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    return ctx
