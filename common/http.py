"""JSON responses and bearer keys, shared by the collector and the query API."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web

from common.services import Service


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(data),
        content_type="application/json",
        headers=headers,
    )


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Answer {"error": message} with status."""
    return json_response({"error": message}, status, headers)


def bearer_key(request: web.Request) -> str:
    """Return the key of an `Authorization: Bearer <key>` header, or ''."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def service_of_key(key: str, services: Iterable[Service], kind: str) -> Service | None:
    """Find the service a server or read key belongs to, comparing in constant time."""
    if not key:
        return None
    found = None
    encoded = key.encode()
    for service in services:
        keys = service.server_keys if kind == "server" else service.read_keys
        for candidate in keys:
            if hmac.compare_digest(encoded, candidate.encode()):
                found = service
    return found
