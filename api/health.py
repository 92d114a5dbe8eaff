"""Liveness, readiness (Kafka, Redis, SQL, every kind of worker), each service's flush status."""

from __future__ import annotations

from aiohttp import web

from api import models
from api.access import authorized_service
from api.context import FLUSHER, MONITOR, STORE
from api.errors import answer
from common.contract import Health
from common.http import json_response


async def flush_status(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/flush-status: last flushed day, days waiting and why."""
    service = authorized_service(request)
    flusher = request.app[FLUSHER]
    progress = await flusher.live.progress()
    status = await flusher.service_status(service, progress, flusher.clock.now_ms())
    return answer(status, models.FlushStatus)


async def healthz(request: web.Request) -> web.Response:
    return json_response(Health())


async def readyz(request: web.Request) -> web.Response:
    """200 when Kafka, Redis, SQL and every kind of worker are up; else 503 naming what is down."""
    monitor = request.app[MONITOR]
    checks = {
        "kafka": "ok" if monitor.kafka_reachable else "down",
        "redis": "ok" if monitor.redis_reachable else "down",
    }
    try:
        await request.app[STORE].committed(["readiness-probe"])
        checks["sql"] = "ok"
    except Exception:  # any driver error means the store is not usable
        checks["sql"] = "down"
    for component in ("collector", "aggregator", "flusher"):
        checks[component] = "ok" if monitor.components.get(component) else "down"
    down = sorted(name for name, state in checks.items() if state != "ok")
    readiness = {"status": "ready" if not down else "unavailable", "checks": checks, "down": down}
    return answer(readiness, models.Readiness, status=200 if not down else 503)
