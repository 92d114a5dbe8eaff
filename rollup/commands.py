"""The rollup commands: flush one day now, serve the query API."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from datetime import date

from aiohttp import web
from redis.asyncio import Redis

from common.days import day_end_ms
from common.keys import KeyLayout
from common.services import load_services
from common.settings import Settings, SettingsError
from rollup.api import build_app
from rollup.flush import FlushReport, flush_day
from rollup.live import LiveBuckets
from rollup.store import Store

log = logging.getLogger(__name__)


async def flush(settings: Settings, service_id: str, day: date, force: bool) -> FlushReport:
    """Flush one service's day now; without force, only once the day has ended locally."""
    services = load_services(settings.services_file)
    service = services.get(service_id)
    if service is None:
        raise SettingsError(f"service {service_id} is not in {settings.services_file}")
    if not force and time.time() * 1000 < day_end_ms(day, service.timezone):
        raise SettingsError(f"{day} has not ended yet in {service.timezone.key}; use --force")
    store = await Store.open(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    try:
        live = LiveBuckets(redis, KeyLayout(settings.redis_key_prefix, settings.usage_topic))
        return await flush_day(live, store, service_id, day, settings.flush_fsync_wait_ms / 1000)
    finally:
        await redis.aclose()
        await store.close()


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the query API until SIGTERM or SIGINT."""
    app = build_app(settings, load_services(settings.services_file))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("query API listening on http://%s:%d", host, port)
        await stop.wait()
    finally:
        await runner.cleanup()
