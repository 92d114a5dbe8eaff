"""The SQL store of durable per-day counts (SQLite by default, PostgreSQL by DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

metadata = sa.MetaData()

daily_counts = sa.Table(
    "daily_counts",
    metadata,
    sa.Column("service_id", sa.String(256), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("account_id", sa.String(256), primary_key=True),
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("module", sa.String(128), primary_key=True),
    sa.Column("activity", sa.String(128), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

flushes = sa.Table(
    "flushes",
    metadata,
    sa.Column("flush_id", sa.String(36), primary_key=True),
    sa.Column("service_id", sa.String(256), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("flushes_by_day", "service_id", "day"),
)

COUNT_KEY = ("service_id", "day", "account_id", "user_id", "module", "activity")


@dataclass(frozen=True, slots=True)
class CountRow:
    service_id: str
    day: date
    account_id: str
    user_id: str
    module: str
    activity: str
    count: int


@dataclass(frozen=True)
class Flush:
    """One partition's part of a day, moved out of Redis under flush_id."""

    flush_id: str
    service_id: str
    day: date
    partition: int
    started_at: datetime


def async_url(database_url: str) -> str:
    """Map DATABASE_URL to the SQLAlchemy URL of its async driver."""
    if database_url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + database_url.removeprefix("sqlite:///")
    for scheme in ("postgresql://", "postgres://"):
        if database_url.startswith(scheme):
            return "postgresql+asyncpg://" + database_url.removeprefix(scheme)
    raise ValueError(f"DATABASE_URL has an unsupported scheme: {database_url!r}")


class Store:
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
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
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
        """Add rows to the durable counts and record the flush, in one transaction.

        Exactly once: the flush id is the record's primary key and is written first, so a
        flush re-run after a crash, or run twice at once, adds its counts only once.
        Returns False when the flush id was committed already.
        """
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    flushes.insert().values(
                        flush_id=flush.flush_id,
                        service_id=flush.service_id,
                        day=flush.day,
                        partition=flush.partition,
                        rows=len(rows),
                        events=sum(row.count for row in rows),
                        started_at=flush.started_at,
                        committed_at=datetime.now(UTC),
                    )
                )
                await self._add_counts(connection, rows)
        except sa.exc.IntegrityError:
            return False
        return True

    async def _add_counts(self, connection: AsyncConnection, rows: Sequence[CountRow]) -> None:
        if not rows:
            return
        statement = self._insert(daily_counts)
        statement = statement.on_conflict_do_update(
            index_elements=list(COUNT_KEY),
            set_={"count": daily_counts.c["count"] + statement.excluded["count"]},
        )
        for start in range(0, len(rows), 5000):
            await connection.execute(
                statement, [_row_values(row) for row in rows[start : start + 5000]]
            )

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

    async def flushed_days(self, service_id: str) -> list[tuple[date, int, int]]:
        """Return (day, rows, events) of every flushed day of a service, newest first."""
        query = (
            sa.select(flushes.c.day, sa.func.sum(flushes.c.rows), sa.func.sum(flushes.c.events))
            .where(flushes.c.service_id == service_id)
            .group_by(flushes.c.day)
            .order_by(flushes.c.day.desc())
        )
        async with self.engine.connect() as connection:
            result = await connection.execute(query)
            return [(row[0], int(row[1]), int(row[2])) for row in result]


def _row_values(row: CountRow) -> dict[str, Any]:
    return {
        "service_id": row.service_id,
        "day": row.day,
        "account_id": row.account_id,
        "user_id": row.user_id,
        "module": row.module,
        "activity": row.activity,
        "count": row.count,
    }


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
