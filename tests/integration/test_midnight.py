"""Midnight in each service's own time zone, crossed with an injected clock (no sleeping
until a real midnight): the flusher flushes each day once complete and never before."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.support import (
    ACME_READ_KEY,
    ACME_SERVER_KEY,
    OTHER_READ_KEY,
    OTHER_SERVER_KEY,
    Pipeline,
    get_json,
)

pytestmark = pytest.mark.e2e

D = datetime.now(UTC).date() - timedelta(days=1)
NEXT = D + timedelta(days=1)


def at(day: date, hhmmss: str) -> int:
    """Epoch ms of a UTC wall time."""
    return int(datetime.fromisoformat(f"{day.isoformat()}T{hhmmss}+00:00").timestamp() * 1000)


class ShiftedClock:
    def __init__(self, pipeline: Pipeline) -> None:
        self.path = pipeline.workdir / "clock-shift"
        pipeline.overrides["CLOCK_SHIFT_FILE"] = str(self.path)
        self.path.write_text("0")

    async def jump_to(self, epoch_ms: int) -> None:
        """Make every process's now read epoch_ms (and run on from there)."""
        self.path.write_text(str(epoch_ms - int(time.time() * 1000)))
        await asyncio.sleep(0.6)  # processes re-read the shift within 0.2 s


def durable_by_day(pipeline: Pipeline) -> dict[tuple[str, str], int]:
    path = pipeline.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT service_id, day, SUM(count) FROM daily_counts GROUP BY service_id, day"
        ).fetchall()
    return {(service, day): int(total) for service, day, total in rows}


def flushed_days(pipeline: Pipeline) -> set[tuple[str, str]]:
    path = pipeline.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        try:
            rows = connection.execute("SELECT DISTINCT service_id, day FROM flushes").fetchall()
        except sqlite3.OperationalError:
            return set()
    return {(service, day) for service, day in rows}


async def eventually(check: Callable[[], Any], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.2)


async def post(
    session: aiohttp.ClientSession, pipeline: Pipeline, key: str, events: list[dict[str, Any]]
) -> None:
    async with session.post(
        f"{pipeline.collector_url}/v1/events",
        json={"batch": events},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        assert response.status == 202, await response.text()


def usage(account: str, count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"account_id": account, "user_id": f"u{i % 3}", "module": "Invoices",
             "activity": "Create", **extra} for i in range(count)]  # fmt: skip


async def test_each_service_flushes_at_its_own_midnight(pipeline: Pipeline) -> None:
    clock = ShiftedClock(pipeline)
    pipeline.overrides.update(
        {"PRODUCE_TIMEOUT_MS": "2000", "FLUSHER_INTERVAL_MS": "300", "FLUSH_FSYNC_WAIT_MS": "0"}
    )
    # SP-ACME is in UTC; SP-OTHER in America/New_York (UTC-5 in November).
    await clock.jump_to(at(D, "23:59:50"))
    await pipeline.start_all()
    pipeline.start("flusher", "rollup", "flusher")
    acme_d, other_d = D.isoformat(), D.isoformat()
    async with aiohttp.ClientSession() as session:
        await post(session, pipeline, ACME_SERVER_KEY, usage("A1", 5) + usage("A2", 2))
        await post(session, pipeline, OTHER_SERVER_KEY, usage("O1", 4))
        await pipeline.drain()
        await asyncio.sleep(2)
        assert flushed_days(pipeline) == set()  # no midnight crossed yet

        # 00:00:05 UTC: SP-ACME's day D is over; in New York it is still 19:00 of day D.
        await clock.jump_to(at(NEXT, "00:00:05"))
        await post(session, pipeline, ACME_SERVER_KEY, usage("A1", 3))  # day D+1
        await post(session, pipeline, OTHER_SERVER_KEY, usage("O1", 6))  # still day D there
        await eventually(lambda: ("SP-ACME", acme_d) in flushed_days(pipeline))
        await pipeline.drain()
        await asyncio.sleep(1)
        assert flushed_days(pipeline) == {("SP-ACME", acme_d)}
        assert durable_by_day(pipeline) == {("SP-ACME", acme_d): 7}

        status, body = await get_json(
            session, f"{pipeline.api_url}/v1/services/SP-OTHER/flush-status", OTHER_READ_KEY
        )
        assert status == 200
        assert (body["today"], body["days_waiting"], body["last_flushed_day"]) == (
            other_d, [], None,
        )  # fmt: skip

        # Midnight in New York, with the aggregator paused: the lagging partitions hold
        # SP-OTHER's day D back until it catches up.
        aggregator = pipeline.processes["aggregator"]
        os.kill(aggregator.pid, signal.SIGSTOP)
        await clock.jump_to(at(NEXT, "05:00:05"))
        await post(session, pipeline, OTHER_SERVER_KEY, usage("O2", 1))  # day D+1 in New York
        await asyncio.sleep(4)
        assert ("SP-OTHER", other_d) not in flushed_days(pipeline)
        status, body = await get_json(
            session, f"{pipeline.api_url}/v1/services/SP-OTHER/flush-status", OTHER_READ_KEY
        )
        assert status == 200
        assert [day["day"] for day in body["days_waiting"]] == [other_d]
        assert body["days_waiting"][0]["partitions_behind"] == [0, 1, 2, 3]
        os.kill(aggregator.pid, signal.SIGCONT)
        await eventually(lambda: ("SP-OTHER", other_d) in flushed_days(pipeline))
        assert durable_by_day(pipeline) == {("SP-ACME", acme_d): 7, ("SP-OTHER", other_d): 10}

        # A late event for SP-ACME's flushed day amends it, exactly once, even though the
        # flusher dies right after committing the amendment and is started again.
        pipeline.stop("flusher")
        pipeline.overrides["FLUSH_CRASH_AT"] = "committed"
        crashing = pipeline.start("crashing-flusher", "rollup", "flusher")
        del pipeline.overrides["FLUSH_CRASH_AT"]
        await post(
            session, pipeline, ACME_SERVER_KEY,
            usage("A3", 2, timestamp=f"{acme_d}T23:59:59+00:00"),
        )  # fmt: skip
        await eventually(lambda: crashing.poll() is not None)
        assert crashing.returncode == 137
        pipeline.processes.pop("crashing-flusher")
        pipeline.start("flusher", "rollup", "flusher")
        await eventually(lambda: durable_by_day(pipeline).get(("SP-ACME", acme_d)) == 9)
        # The restarted flusher cleans up what the crashed one staged and committed (after
        # its fsync wait); the count must not move meanwhile or after.
        deadline = time.monotonic() + 30
        while [k for k in await pipeline.redis_keys() if ":staged" in k]:
            assert time.monotonic() < deadline, "staged keys left behind"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        assert durable_by_day(pipeline) == {("SP-ACME", acme_d): 9, ("SP-OTHER", other_d): 10}

        # Queries see flushed and live days together, per day.
        status, body = await get_json(
            session, f"{pipeline.api_url}/v1/services/SP-ACME/accounts/A1/usage", ACME_READ_KEY,
            {"from": acme_d, "to": NEXT.isoformat(), "by": "day"},
        )  # fmt: skip
        assert (status, body) == (
            200, {"rows": [{"day": acme_d, "count": 5}, {"day": NEXT.isoformat(), "count": 3}]},
        )  # fmt: skip
