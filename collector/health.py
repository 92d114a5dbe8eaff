"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from collector.context import PRODUCER
from common.http import json_response


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 only while Kafka answers, so a load balancer sends traffic elsewhere meanwhile."""
    if request.app[PRODUCER].reachable:
        return json_response({"status": "ready", "kafka": "ok"})
    return json_response({"status": "unavailable", "kafka": "unreachable"}, status=503)
