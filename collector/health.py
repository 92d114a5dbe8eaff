"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from collector.context import PRODUCER
from collector.models import Readiness
from common.contract import Health
from common.http import json_response


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return json_response(Health())


async def readyz(request: web.Request) -> web.Response:
    """200 only while events can be published, so a load balancer sends traffic elsewhere
    meanwhile; the 503 says why (Kafka unreachable, the producer being replaced)."""
    producer = request.app[PRODUCER]
    if not producer.unready_reason:
        return json_response(Readiness("ready", "ok"))
    return json_response(
        Readiness("unavailable", producer.kafka_state, producer.unready_reason), status=503
    )
