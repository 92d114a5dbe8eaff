"""JSON responses and bearer keys, shared by the collector and the query API."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from aiohttp import web

from common.contract import Error
from common.services import Service

log = logging.getLogger(__name__)


JSON_ENCODER = msgspec.json.Encoder()


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Answer data (a typed model, or plain dicts and lists) as JSON."""
    return web.Response(
        status=status,
        body=JSON_ENCODER.encode(data),
        content_type="application/json",
        headers=headers,
    )


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Answer {"error": message} with status."""
    return json_response(Error(message), status, headers)


def bearer_key(request: web.Request) -> str:
    """Return the key of an `Authorization: Bearer <key>` header, or ''."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def key_matches(key: str, candidates: Iterable[str]) -> bool:
    """Compare key with every candidate in constant time (no early exit on a match)."""
    encoded = key.encode()
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(encoded, candidate.encode())
    return matched and bool(key)


def service_of_key(key: str, services: Iterable[Service], kind: str) -> Service | None:
    """Find the service a server or read key belongs to, comparing in constant time."""
    found = None
    for service in services:
        if key_matches(key, service.server_keys if kind == "server" else service.read_keys):
            found = service
    return found


async def serve_until_signalled(
    app: web.Application,
    name: str,
    host: str,
    port: int,
    shutdown_timeout_s: float,
    reuse_port: bool = False,
) -> None:
    """Serve app until SIGTERM or SIGINT; then stop accepting and finish requests in flight."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout_s, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=1024)
        await site.start()
        log.info("%s listening on http://%s:%d", name, host, port)
        await stop.wait()
        log.info("%s stopping: finishing requests in flight", name)
    finally:
        await runner.cleanup()
