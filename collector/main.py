"""Build the collector's aiohttp application and run it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from redis.exceptions import RedisError

from collector.browser import collect, collect_preflight, demo, usage_js
from collector.context import CLOCK, LIMITS, PRODUCER, RATE_LIMITS, REDIS, SERVICES, SETTINGS
from collector.health import healthz, readyz
from collector.metrics import measure, report_tallies
from collector.openapi import COLLECTOR_OPENAPI
from collector.pixel import pixel
from collector.rate_limits import RateLimits
from collector.server_events import MAX_BODY_BYTES, post_events
from common.heartbeat import Heartbeat
from common.http import serve_until_signalled
from common.keys import KeyLayout
from common.metrics import metrics
from common.openapi import openapi_handler
from common.redis_client import RedisClient, connect
from common.services import Service, load_services
from common.settings import Settings
from common.topics import ensure_topic
from publishing.metrics import EVENTS_AWAITING_ACK
from publishing.names import NameLimits
from publishing.producer import EventProducer

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 15.0
HEARTBEAT_EVERY_S = 2.0
# Often enough that events produced show within a fraction of the ops monitor's 3 s sample.
TALLY_EVERY_S = 0.5


async def clients(app: web.Application) -> AsyncIterator[None]:
    """Open the Kafka producer and Redis for the app's lifetime; drain and close them after."""
    settings = app[SETTINGS]
    await ensure_topic(settings.kafka_bootstrap, settings.usage_topic, settings.topic_partitions)
    producer = EventProducer(settings)
    await producer.start()
    EVENTS_AWAITING_ACK.set_function(lambda: producer.pending_events)
    redis = connect(settings.redis_url)
    app[PRODUCER] = producer
    app[REDIS] = redis
    keys = KeyLayout(settings.redis_key_prefix, settings.usage_topic)
    app[LIMITS] = NameLimits(redis, keys)
    app[RATE_LIMITS] = RateLimits(redis, keys)
    reporter = asyncio.create_task(report_health(redis, keys))
    try:
        yield
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await producer.stop()
        with contextlib.suppress(RedisError):
            await report_tallies(redis, keys)  # what was acknowledged since the last report
        await redis.aclose()


async def report_health(redis: RedisClient, keys: KeyLayout) -> None:
    """The heartbeat every few seconds; the tallies for the ops dashboard more often."""
    heartbeat = Heartbeat(redis, keys, "collector")
    beaten_at = -HEARTBEAT_EVERY_S
    while True:
        try:
            if time.monotonic() - beaten_at >= HEARTBEAT_EVERY_S:
                await heartbeat.beat()
                beaten_at = time.monotonic()
            await report_tallies(redis, keys)
        except RedisError as error:
            log.warning("could not report health to Redis: %r", error)
            await asyncio.sleep(HEARTBEAT_EVERY_S)
        await asyncio.sleep(TALLY_EVERY_S)


def build_app(settings: Settings, services: dict[str, Service]) -> web.Application:
    """Wire the collector's routes and clients."""
    # Slack over the 1 MiB limit so the handler, not the framework, answers 413 in JSON.
    app = web.Application(client_max_size=MAX_BODY_BYTES + 1, middlewares=[measure])
    app[SETTINGS] = settings
    app[CLOCK] = settings.clock()
    app[SERVICES] = services
    app.cleanup_ctx.append(clients)
    app.router.add_get("/pixel.gif", pixel)
    app.router.add_post("/pixel.gif", pixel)
    app.router.add_post("/v1/events", post_events)
    app.router.add_post("/v1/collect", collect)
    app.router.add_route("OPTIONS", "/v1/collect", collect_preflight)
    app.router.add_get("/usage.js", usage_js)
    app.router.add_get("/demo", demo)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_handler(COLLECTOR_OPENAPI))
    return app


async def run(settings: Settings, host: str, port: int, reuse_port: bool = False) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting and finish requests in flight."""
    app = build_app(settings, load_services(settings.services_file))
    await serve_until_signalled(app, "collector", host, port, SHUTDOWN_TIMEOUT_S, reuse_port)
