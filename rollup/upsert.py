"""Add a flush's counts to the durable counts, in each database's own bulk path.

PostgreSQL: the rows are copied (COPY, binary, per chunk) into a temporary table that
lives for the transaction, then one INSERT ... SELECT ... ON CONFLICT adds them all: the
server sorts and merges them, and Python encodes no statement parameters at all.
SQLite: one executemany of plain tuples per chunk (looped in C by sqlite3), in key order so
that the b-tree is written page after page rather than all over.
Both run inside the caller's transaction and read the next chunk from Redis while the
database writes the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from rollup.schema import CountTuple

KEY = "service_id, day, account_id, user_id, module, activity"
ADD_ON_CONFLICT = f"ON CONFLICT ({KEY}) DO UPDATE SET count = daily_counts.count + excluded.count"
SQLITE_UPSERT = (
    f"INSERT INTO daily_counts ({KEY}, count) VALUES (?, ?, ?, ?, ?, ?, ?) {ADD_ON_CONFLICT}"
)
STAGING_TABLE = "flush_counts"
STAGING_COLUMNS = ("account_id", "user_id", "module", "activity", "count")
CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE {STAGING_TABLE} (account_id varchar, user_id varchar, "
    "module varchar, activity varchar, count bigint) ON COMMIT DROP"
)
POSTGRESQL_MERGE = (
    f"INSERT INTO daily_counts ({KEY}, count) SELECT $1::varchar, $2::date, "
    f"{', '.join(STAGING_COLUMNS)} FROM {STAGING_TABLE} "
    f"ORDER BY account_id, user_id, module, activity {ADD_ON_CONFLICT}"
)


async def add_counts(
    connection: AsyncConnection,
    service_id: str,
    day: date,
    chunks: AsyncIterator[Sequence[CountTuple]],
) -> tuple[int, int]:
    """Add every chunk's counts to (service_id, day) in daily_counts; return (rows, events).

    Rows must be distinct by key: one statement cannot update a row twice in PostgreSQL
    (a flush's rows are, being the fields of distinct buckets).
    """
    rows = events = 0
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql(CREATE_STAGING)
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        async for chunk in read_ahead(chunks):
            await driver.copy_records_to_table(
                STAGING_TABLE, records=chunk, columns=STAGING_COLUMNS
            )
            rows += len(chunk)
            events += sum(row[4] for row in chunk)
        await connection.exec_driver_sql(POSTGRESQL_MERGE, (service_id, day))
        return rows, events
    day_text = day.isoformat()
    async for chunk in read_ahead(chunks):
        keyed = sorted(chunk)
        await connection.exec_driver_sql(
            SQLITE_UPSERT, [(service_id, day_text, *row) for row in keyed]
        )
        rows += len(chunk)
        events += sum(row[4] for row in chunk)
    return rows, events


async def read_ahead(
    chunks: AsyncIterator[Sequence[CountTuple]],
) -> AsyncIterator[Sequence[CountTuple]]:
    """Yield chunks while the next one is already being read."""
    pending = asyncio.ensure_future(_next(chunks))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(_next(chunks))
            yield chunk
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending


async def _next(chunks: AsyncIterator[Sequence[CountTuple]]) -> Sequence[CountTuple] | None:
    return await anext(chunks, None)
