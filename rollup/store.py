"""The SQL store of durable per-day counts (SQLite by default, PostgreSQL by DATABASE_URL).

SQLite runs in WAL mode with synchronous=FULL: every commit, the flush's above all, is on
disk before it returns, so Redis may drop the buckets it moved (synchronous=NORMAL would
let the last commits vanish on power loss, after Redis had dropped their buckets). A flush
is one commit per partition, so FULL costs a dozen fsyncs a flush, not one per row. The
page cache is raised to CACHE_MIB so that a million-row flush updates its b-trees in
memory rather than spilling pages to the WAL as it goes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rollup.accounts import AccountRegistry
from rollup.schema import (
    Account,
    AccountUpdate,
    CountRow,
    CountTuple,
    Flush,
    account_attributes,
    accounts,
    async_url,
    create_tables,
    daily_counts,
    daily_rollup_users,
    daily_rollups,
    flushes,
    metadata,
    user_attributes,
)
from rollup.upsert import add_counts

__all__ = [
    "Account", "AccountUpdate", "CountRow", "CountTuple", "Flush", "Store", "account_attributes",
    "accounts", "daily_counts", "daily_rollup_users", "daily_rollups", "flushes", "metadata",
    "user_attributes",
]  # fmt: skip

CHUNK = 500
CACHE_MIB = 32


class Store(AccountRegistry):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert

    @classmethod
    async def open(cls, database_url: str) -> Store:
        """Connect and create the tables that are missing."""
        url = async_url(database_url)
        if url.startswith("sqlite"):
            path = url.removeprefix("sqlite+aiosqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        await create_tables(engine)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def committed(self, flush_ids: Iterable[str]) -> set[str]:
        """Return which of flush_ids are already committed."""
        ids = list(flush_ids)
        if not ids:
            return set()
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(flushes.c.flush_id).where(flushes.c.flush_id.in_(ids))
            )
            return {row[0] for row in result}

    async def commit_flush(self, flush: Flush, rows: Sequence[CountRow]) -> bool:
        """Add rows, all of the flush's service and day, and record the flush, atomically."""
        if any((row.service_id, row.day) != (flush.service_id, flush.day) for row in rows):
            raise ValueError("every row of a flush must be of the flush's service and day")
        counts = [(r.account_id, r.user_id, r.module, r.activity, r.count) for r in rows]
        return await self.commit_flush_chunks(flush, _single(counts)) is not None

    async def commit_flush_chunks(
        self, flush: Flush, chunks: AsyncIterator[Sequence[CountTuple]]
    ) -> tuple[int, int] | None:
        """Add the counts of every chunk to the flush's day and record the flush, in one
        transaction; only a chunk or two at a time is in memory. Returns (rows, events).

        Exactly once: the flush id is the record's primary key and is written first, so a
        flush re-run after a crash, or run twice at once, adds its counts only once.
        Returns None when the flush id was committed already.
        """
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    flushes.insert().values(
                        flush_id=flush.flush_id,
                        service_id=flush.service_id,
                        day=flush.day,
                        partition=flush.partition,
                        rows=0,
                        events=0,
                        started_at=flush.started_at,
                        committed_at=datetime.now(UTC),
                    )
                )
                rows, events = await add_counts(connection, flush.service_id, flush.day, chunks)
                await connection.execute(
                    flushes.update()
                    .where(flushes.c.flush_id == flush.flush_id)
                    .values(rows=rows, events=events, committed_at=datetime.now(UTC))
                )
        except sa.exc.IntegrityError:
            return None
        return rows, events

    async def counts(
        self, service_id: str, account_id: str, first_day: date, last_day: date
    ) -> list[CountRow]:
        """Return an account's durable per-user counts for a range of days."""
        query = sa.select(daily_counts).where(
            daily_counts.c.service_id == service_id,
            daily_counts.c.account_id == account_id,
            daily_counts.c.day.between(first_day, last_day),
        )
        async with self.engine.connect() as connection:
            result = await connection.execute(query)
            return [CountRow(**row._mapping) for row in result]

    async def last_flushed_day(self, service_id: str) -> date | None:
        """Return the latest day of the service with a committed flush."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(sa.func.max(flushes.c.day)).where(flushes.c.service_id == service_id)
            )
            day: date | None = result.scalar()
            return day

    async def counts_of_accounts(
        self, service_id: str, account_ids: Sequence[str], first_day: date, last_day: date,
        user_id: str | None = None,
    ) -> list[CountRow]:  # fmt: skip
        """Return the durable per-user counts of several accounts for a range of days."""
        rows: list[CountRow] = []
        async with self.engine.connect() as connection:
            for start in range(0, len(account_ids), CHUNK):
                query = sa.select(daily_counts).where(
                    daily_counts.c.service_id == service_id,
                    daily_counts.c.account_id.in_(account_ids[start : start + CHUNK]),
                    daily_counts.c.day.between(first_day, last_day),
                )
                if user_id is not None:
                    query = query.where(daily_counts.c.user_id == user_id)
                result = await connection.execute(query)
                rows.extend(CountRow(**row._mapping) for row in result)
        return rows

    async def rollup_counts(
        self, service_id: str, account_id: str, first_day: date, last_day: date
    ) -> list[tuple[date, str, str, int]]:
        """Return an account's materialized subtree counts: (day, module, activity, count)."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(
                    daily_rollups.c.day, daily_rollups.c.module, daily_rollups.c.activity,
                    daily_rollups.c["count"],
                ).where(
                    daily_rollups.c.service_id == service_id,
                    daily_rollups.c.account_id == account_id,
                    daily_rollups.c.day.between(first_day, last_day),
                )
            )  # fmt: skip
            return [(row[0], row[1], row[2], int(row[3])) for row in result]

    async def flushed_day_list(
        self, service_id: str, first_day: date, last_day: date
    ) -> list[date]:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(sa.distinct(flushes.c.day))
                .where(
                    flushes.c.service_id == service_id, flushes.c.day.between(first_day, last_day)
                )
                .order_by(flushes.c.day)
            )
            return [row[0] for row in result]


async def _single(rows: Sequence[CountTuple]) -> AsyncIterator[Sequence[CountTuple]]:
    yield rows


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # durable commits: see the module docstring
    cursor.execute(f"PRAGMA cache_size=-{CACHE_MIB * 1024}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
