"""Serving Prometheus metrics: in an aiohttp app, or on a port of its own."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def serve_metrics(port: int) -> None:
    """Expose /metrics on port (0: not at all) for a process without an HTTP server."""
    if port:
        start_http_server(port, addr="127.0.0.1")
