"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from collector.context import PRODUCER
from common.http import json_response


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 only while events can be published, so a load balancer sends traffic elsewhere
    meanwhile; the 503 says why (Kafka unreachable, the producer being replaced)."""
    producer = request.app[PRODUCER]
    if not producer.unready_reason:
        return json_response({"status": "ready", "kafka": "ok"})
    return json_response(
        {"status": "unavailable", "kafka": producer.kafka_state, "reason": producer.unready_reason},
        status=503,
    )
