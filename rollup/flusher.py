"""The flusher daemon: flush each service's days once every partition has aggregated them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from datetime import date
from typing import Any

from common.clock import Clock
from common.days import day_end_ms, local_day
from common.heartbeat import Heartbeat
from common.keys import KeyLayout
from common.metrics import serve_metrics
from common.redis_client import RedisClient, connect
from common.services import Service, load_services
from common.settings import Settings
from rollup.flush import finish_interrupted, flush_day
from rollup.live import LiveBuckets
from rollup.metrics import DAYS_WAITING
from rollup.registry import sync_account_updates
from rollup.store import Store
from rollup.watermark import PartitionProgress, holding_back, is_complete

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Flusher:
    live: LiveBuckets
    store: Store
    services: dict[str, Service]
    settings: Settings
    clock: Clock

    async def flush_complete_days(self) -> int:
        """Flush every service's days that are over and complete; return how many flushed.

        A day with live buckets again after its flush (a late event) is flushed again,
        which amends its durable counts.
        """
        await finish_interrupted(self.live, self.store, self.settings.flush_fsync_wait_ms / 1000)
        await sync_account_updates(self.live, self.store)
        progress = await self.live.progress()
        flushed = 0
        for service in self.services.values():
            for day in await self.live.service_live_days(service.id):
                if is_complete(day, service.timezone, progress, self.settings.watermark_slack_ms):
                    await flush_day(
                        self.live, self.store, service.id, day,
                        self.settings.flush_fsync_wait_ms / 1000,
                    )  # fmt: skip
                    flushed += 1
        return flushed

    async def status(self) -> dict[str, Any]:
        """Per service: last flushed day, and days over but waiting, with the reason."""
        progress = await self.live.progress()
        now_ms = self.clock.now_ms()
        return {
            "services": [
                await self.service_status(service, progress, now_ms)
                for service in self.services.values()
            ]
        }

    async def service_status(
        self, service: Service, progress: list[PartitionProgress], now_ms: int
    ) -> dict[str, Any]:
        slack = self.settings.watermark_slack_ms
        last_flushed = await self.store.last_flushed_day(service.id)
        waiting = []
        for day in await self.live.service_live_days(service.id):
            if day_end_ms(day, service.timezone) > now_ms:
                continue  # still running in the service's time zone
            behind = holding_back(day, service.timezone, progress, slack)
            waiting.append(
                {
                    "day": day.isoformat(),
                    "reason": (
                        f"partitions {', '.join(map(str, behind))} have not aggregated "
                        "everything received before the day's end"
                        if behind or not progress
                        else "complete; flushing"
                    ),
                    "partitions_behind": behind,
                }
            )
        return {
            "service_id": service.id,
            "timezone": service.timezone.key,
            "today": local_day(now_ms, service.timezone).isoformat(),
            "last_flushed_day": last_flushed.isoformat() if last_flushed else None,
            "days_waiting": waiting,
        }

    async def wait_complete(self, service: Service, day: date) -> list[int]:
        """Return the partitions holding day back (empty when it is complete)."""
        progress = await self.live.progress()
        if not progress:
            return [-1]
        return holding_back(day, service.timezone, progress, self.settings.watermark_slack_ms)


async def open_flusher(settings: Settings) -> tuple[Flusher, RedisClient]:
    store = await Store.open(settings.database_url)
    redis = connect(settings.redis_url)
    live = LiveBuckets(redis, KeyLayout(settings.redis_key_prefix, settings.usage_topic))
    services = load_services(settings.services_file)
    return Flusher(live, store, services, settings, settings.clock()), redis


async def run(settings: Settings) -> None:
    """Flush complete days every FLUSHER_INTERVAL_MS until SIGTERM; a flush under way finishes."""
    flusher, redis = await open_flusher(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("flusher watching %d services", len(flusher.services))
    serve_metrics(settings.metrics_port)
    heartbeat = Heartbeat(redis, flusher.live.keys, "flusher")
    try:
        while not stop.is_set():
            try:
                await heartbeat.beat()
                await flusher.flush_complete_days()
                for service in (await flusher.status())["services"]:
                    DAYS_WAITING.labels(service["service_id"]).set(len(service["days_waiting"]))
            except Exception:
                # One bad pass (Redis or SQL briefly away) must not stop the daemon; the next
                # pass redoes whatever was left, exactly once.
                log.exception("flush pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.flusher_interval_ms / 1000)
    finally:
        await redis.aclose()
        await flusher.store.close()
        log.info("flusher stopped")
