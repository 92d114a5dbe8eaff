"""The query API process: its routes, and the clients it opens for its lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from api.accounts import account_detail, put_account
from api.context import FLUSHER, LIVE, MONITOR, READER, SERVICES, SETTINGS, STORE
from api.errors import json_errors
from api.health import flush_status, healthz, readyz
from api.limits import MAX_BODY_BYTES
from api.openapi import API_OPENAPI
from api.queries import UsageReader
from api.usage_views import account_summary, account_usage, inactive_users, user_usage
from common.keys import KeyLayout
from common.metrics import metrics
from common.openapi import openapi_handler
from common.redis_client import connect
from common.services import Service
from common.settings import Settings
from ops.monitor import LagMonitor
from ops.views import add_ops_routes
from rollup.flusher import Flusher
from rollup.live import LiveBuckets
from rollup.store import Store

log = logging.getLogger(__name__)

SAMPLER_STOP_S = 10.0


async def clients(app: web.Application) -> AsyncIterator[None]:
    """Open the SQL store and Redis for the app's lifetime."""
    settings = app[SETTINGS]
    store = await Store.open(settings.database_url)
    redis = connect(settings.redis_url)
    app[STORE] = store
    app[LIVE] = LiveBuckets(redis, KeyLayout(settings.redis_key_prefix, settings.usage_topic))
    app[FLUSHER] = Flusher(app[LIVE], store, app[SERVICES], settings, settings.clock())
    app[READER] = UsageReader(store, app[LIVE])
    app[MONITOR] = LagMonitor(settings, redis, app[FLUSHER])
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(app[MONITOR].run(stop_sampling))
    try:
        yield
    finally:
        stop_sampling.set()
        try:
            await asyncio.wait_for(sampler, SAMPLER_STOP_S)
        except TimeoutError:
            log.warning("lag sampler did not stop within %.0f s", SAMPLER_STOP_S)
        await redis.aclose()
        await store.close()


def build_app(settings: Settings, services: Mapping[str, Service]) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[SERVICES] = dict(services)
    app.cleanup_ctx.append(clients)
    # Any id may hold braces, dots or (percent-encoded) slashes: one whole segment each.
    prefix = "/v1/services/{sid:[^/]+}"
    account = prefix + "/accounts/{aid:[^/]+}"
    app.router.add_get(account + "/usage", account_usage)
    app.router.add_get(account + "/summary", account_summary)
    app.router.add_get(account, account_detail)
    app.router.add_put(account, put_account)
    app.router.add_get(prefix + "/users/{uid:[^/]+}/usage", user_usage)
    app.router.add_get(prefix + "/inactive-users", inactive_users)
    app.router.add_get(prefix + "/flush-status", flush_status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_handler(API_OPENAPI))
    add_ops_routes(app)
    return app
