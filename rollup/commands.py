"""The rollup commands: flush one day now, rebuild flushed days' rollups."""

from __future__ import annotations

import logging
from datetime import date

from common.days import day_end_ms
from common.settings import Settings, SettingsError
from rollup.flush import FlushReport, flush_day
from rollup.flusher import open_flusher
from rollup.registry import sync_account_updates
from rollup.rollups import rebuild_rollups

log = logging.getLogger(__name__)


class NotComplete(RuntimeError):
    """The day cannot be flushed yet; the message says why."""


async def flush(settings: Settings, service_id: str, day: date, force: bool) -> FlushReport:
    """Flush one service's day now; without force, only once it is over and complete."""
    flusher, redis = await open_flusher(settings)
    try:
        service = flusher.services.get(service_id)
        if service is None:
            raise SettingsError(f"service {service_id} is not in {settings.services_file}")
        if not force:
            if flusher.clock.now_ms() < day_end_ms(day, service.timezone):
                raise NotComplete(f"{day} has not ended yet in {service.timezone.key}")
            behind = await flusher.wait_complete(service, day)
            if behind == [-1]:
                raise NotComplete(f"{day} is not complete: no aggregator has reported progress")
            if behind:
                raise NotComplete(
                    f"{day} is not complete: partitions {', '.join(map(str, behind))} have "
                    "not aggregated everything received before its end"
                )
        return await flush_day(
            flusher.live, flusher.store, service_id, day, settings.flush_fsync_wait_ms / 1000
        )
    finally:
        await redis.aclose()
        await flusher.store.close()


async def rebuild(settings: Settings, service_id: str, first_day: date, last_day: date) -> None:
    """Recompute the rollups of flushed days with the current hierarchy."""
    flusher, redis = await open_flusher(settings)
    try:
        if service_id not in flusher.services:
            raise SettingsError(f"service {service_id} is not in {settings.services_file}")
        await sync_account_updates(flusher.live, flusher.store)
        days = await flusher.store.flushed_day_list(service_id, first_day, last_day)
        for day in days:
            accounts = await rebuild_rollups(flusher.store, service_id, day)
            print(f"rebuilt {service_id} {day}: {accounts} accounts", flush=True)
        print(f"rebuilt {len(days)} days", flush=True)
    finally:
        await redis.aclose()
        await flusher.store.close()
