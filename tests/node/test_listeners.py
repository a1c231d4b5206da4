"""The hardened listeners: malformed requests get the error shape, slow clients are cut
off, the connection cap holds, and no raw identifier reaches any log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from node.api import CONFIG
from node.config import Config
from node.listen import HardenedRunner, Limits
from node.localnet import free_port
from node.server import RedactingAccessLogger

RAW = "13877776666"  # a raw phone number that must never be logged
RAW_SPACED = "138 7777 6666"


async def raw_request(port: int, data: bytes, *, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    out = b""
    if read:
        # one response (head and Content-Length body), or whatever came before EOF
        try:
            async with asyncio.timeout(5):
                out = await reader.readuntil(b"\r\n\r\n")
                for line in out.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        out += await reader.readexactly(int(line.split(b":")[1]))
        except asyncio.IncompleteReadError as e:
            out = e.partial
        except TimeoutError:
            pass
    writer.close()
    return out


@pytest.fixture
async def served(
    make_app: Callable[[], web.Application],
) -> AsyncIterator[tuple[int, HardenedRunner]]:
    limits = Limits(header_timeout_s=0.5, body_timeout_s=0.5, max_connections=20)
    app = make_app()
    config = app[CONFIG]
    app[CONFIG] = Config(config.home, {**config.values, "http.body_timeout_s": 0.5})
    runner = HardenedRunner(app, limits, access_log_class=RedactingAccessLogger)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield port, runner
    await runner.cleanup()


def shaped(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head, head
    return status, json.loads(body)


async def test_malformed_requests_get_the_error_shape(served: tuple[int, Any]) -> None:
    port, _ = served
    long_url = b"GET /v1/query/phone/" + b"1" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, body = shaped(await raw_request(port, long_url))
    assert status == 414 and body["error"]["code"] == "request_too_long"
    spaced = f"GET /v1/query/phone/{RAW_SPACED} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    status, body = shaped(await raw_request(port, spaced))
    assert status == 400 and body["error"]["code"] in {"bad_http", "bad_method"}
    status, body = shaped(await raw_request(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n"))
    assert status == 400


async def test_no_raw_identifier_in_any_log_line(
    served: tuple[int, Any], caplog: pytest.LogCaptureFixture
) -> None:
    port, _ = served
    caplog.set_level(logging.DEBUG)
    requests = [
        f"GET /v1/query/phone/{RAW} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /v1/Query/phone/{RAW} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET //v1/query/phone/{RAW} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /v1/query//phone/{RAW} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /{RAW} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /v1/query/phone/{RAW_SPACED} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /v1/query/phone/{RAW}?x={RAW} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{RAW}",
        f"{RAW} /v1/query HTTP/1.1\r\n\r\n",
        f"GET /v1/query/phone/{RAW}" + "9" * 9000 + " HTTP/1.1\r\n\r\n",
        f"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {RAW}\r\n\r\n",
        f"GET /v1/status HTTP/1.1\r\nX-{RAW}: {RAW}\r\n\r\n",
    ]
    for r in requests:
        await raw_request(port, r.encode("latin-1"))
    text = "\n".join(
        rec.getMessage() + (str(rec.exc_info[1]) if rec.exc_info else "")
        for rec in caplog.records
    )
    assert caplog.records, "the requests were logged at all"
    for raw in (RAW, RAW_SPACED, "13877776666"[:9]):
        assert raw not in text, [r.getMessage() for r in caplog.records if raw in r.getMessage()]


async def test_a_slow_client_is_cut_off(served: tuple[int, Any]) -> None:
    port, _ = served
    loop = asyncio.get_running_loop()
    # headers that never end
    t0 = loop.time()
    out = await raw_request(port, b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
    assert out == b"" and loop.time() - t0 < 3
    # a body that never ends: 408 in the error shape
    t0 = loop.time()
    out = await raw_request(
        port,
        b"POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    assert loop.time() - t0 < 3
    # auth comes first: an unknown key is refused before the body is read
    assert out.startswith(b"HTTP/1.1 401") or out.startswith(b"HTTP/1.1 408"), out[:60]


async def test_a_slow_body_with_a_key_is_408(served: tuple[int, Any], api_token: str) -> None:
    port, _ = served
    out = await raw_request(
        port,
        (
            "POST /v1/query HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {api_token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        ).encode(),
    )
    status, body = shaped(out)
    assert status == 408 and body["error"]["code"] == "body_timeout"


async def test_the_connection_cap_holds(served: tuple[int, Any]) -> None:
    port, _ = served
    held = []
    for _ in range(20):
        held.append(await asyncio.open_connection("127.0.0.1", port))
    # past the cap a new connection is closed at once
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(2):
        assert await reader.read() == b""
    writer.close()
    for _, w in held:
        w.close()
