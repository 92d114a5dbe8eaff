"""The query API: durable and live usage per account, behind each service's read key."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from redis.asyncio import Redis

from common.days import local_day, parse_day
from common.http import bearer_key, json_error, json_response, service_of_key
from common.keys import KeyLayout
from common.services import Service
from common.settings import Settings
from rollup.flusher import Flusher
from rollup.live import LiveBuckets
from rollup.store import Store
from rollup.usage import group_rows, parse_by

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", dict[str, Service])
STORE = web.AppKey("store", Store)
LIVE = web.AppKey("live", LiveBuckets)
FLUSHER = web.AppKey("flusher", Flusher)

MAX_RANGE_DAYS = 400


def authorized_service(request: web.Request) -> Service:
    """Return the service named in the URL if the read key is its own; else raise 401/403/404."""
    services = request.app[SERVICES]
    service = services.get(request.match_info["sid"])
    key = bearer_key(request)
    if not key:
        raise web.HTTPUnauthorized(
            body=b'{"error":"missing Authorization: Bearer <read key>"}',
            content_type="application/json",
        )
    owner = service_of_key(key, services.values(), "read")
    if owner is None:
        raise web.HTTPUnauthorized(
            body=b'{"error":"invalid read key"}', content_type="application/json"
        )
    if service is None or owner.id != service.id:
        raise web.HTTPForbidden(
            body=b'{"error":"this key cannot read that service"}', content_type="application/json"
        )
    return service


async def account_usage(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/accounts/{aid}/usage?from=DAY&to=DAY&by=day,module,..."""
    service = authorized_service(request)
    account_id = request.match_info["aid"]
    today = local_day(request.app[FLUSHER].clock.now_ms(), service.timezone)
    try:
        first_day = parse_day(request.query.get("from", today.isoformat()))
        last_day = parse_day(request.query.get("to", first_day.isoformat()))
    except ValueError as error:
        return json_error(400, f"from/to: {error}")
    if last_day < first_day:
        return json_error(400, "to must not be before from")
    if last_day - first_day > timedelta(days=MAX_RANGE_DAYS):
        return json_error(400, f"a query spans at most {MAX_RANGE_DAYS} days")
    try:
        columns = parse_by(request.query.get("by", "day"))
    except ValueError as error:
        return json_error(400, str(error))
    store, live = request.app[STORE], request.app[LIVE]
    live_rows, staged_ids = await live.account_rows(service.id, account_id, first_day, last_day)
    committed = await store.committed(staged_ids)
    if committed:
        live_rows, _ = await live.account_rows(
            service.id, account_id, first_day, last_day, committed
        )
    durable_rows = await store.counts(service.id, account_id, first_day, last_day)
    return json_response({"rows": group_rows([*durable_rows, *live_rows], columns)})


async def flush_status(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/flush-status: last flushed day, days waiting and why."""
    service = authorized_service(request)
    flusher = request.app[FLUSHER]
    progress = await flusher.live.progress()
    return json_response(await flusher.service_status(service, progress, flusher.clock.now_ms()))


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def clients(app: web.Application) -> AsyncIterator[None]:
    """Open the SQL store and Redis for the app's lifetime."""
    settings = app[SETTINGS]
    store = await Store.open(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    app[STORE] = store
    app[LIVE] = LiveBuckets(redis, KeyLayout(settings.redis_key_prefix, settings.usage_topic))
    app[FLUSHER] = Flusher(app[LIVE], store, app[SERVICES], settings, settings.clock())
    try:
        yield
    finally:
        await redis.aclose()
        await store.close()


def build_app(settings: Settings, services: dict[str, Service]) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[SERVICES] = services
    app.cleanup_ctx.append(clients)
    app.router.add_get("/v1/services/{sid}/accounts/{aid}/usage", account_usage)
    app.router.add_get("/v1/services/{sid}/flush-status", flush_status)
    app.router.add_get("/healthz", healthz)
    return app
