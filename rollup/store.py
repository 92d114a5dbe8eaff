"""The SQL store of durable per-day counts (SQLite by default, PostgreSQL by DATABASE_URL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from rollup.hierarchy import makes_cycle
from rollup.upsert import upsert_counts

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
    sa.Index("daily_counts_by_account", "service_id", "account_id", "day"),
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

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("service_id", sa.String(256), primary_key=True),
    sa.Column("account_id", sa.String(256), primary_key=True),
    sa.Column("parent_id", sa.String(256), nullable=True),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("account_type", sa.String(256), nullable=True),
    sa.Column("product_id", sa.String(256), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("accounts_by_parent", "service_id", "parent_id"),
)

# The last value of each day: history of an attribute, one row per day it changed.
account_attributes = sa.Table(
    "account_attributes",
    metadata,
    sa.Column("service_id", sa.String(256), primary_key=True),
    sa.Column("account_id", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON
)

user_attributes = sa.Table(
    "user_attributes",
    metadata,
    sa.Column("service_id", sa.String(256), primary_key=True),
    sa.Column("account_id", sa.String(256), primary_key=True),
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON
)

daily_rollups = sa.Table(
    "daily_rollups",
    metadata,
    sa.Column("service_id", sa.String(256), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("account_id", sa.String(256), primary_key=True),
    sa.Column("module", sa.String(128), primary_key=True),
    sa.Column("activity", sa.String(128), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

daily_rollup_users = sa.Table(
    "daily_rollup_users",
    metadata,
    sa.Column("service_id", sa.String(256), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("account_id", sa.String(256), primary_key=True),
    sa.Column("active_users", sa.Integer, nullable=False),
)


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


@dataclass(frozen=True)
class AccountUpdate:
    """Account fields and attributes carried by an event or set through the API.

    Only the fields present are changed: a parent id is changed only when sent.
    """

    service_id: str
    account_id: str
    day: date
    fields: Mapping[str, str] = field(default_factory=dict)  # name, parent_id, type, product
    attributes: Mapping[str, Any] = field(default_factory=dict)
    user_id: str = ""
    user_attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Account:
    service_id: str
    account_id: str
    parent_id: str | None
    name: str | None
    account_type: str | None
    product_id: str | None


ACCOUNT_FIELDS = ("parent_id", "name", "account_type", "product_id")
CHUNK = 500


def async_url(database_url: str) -> str:
    """Map DATABASE_URL to the SQLAlchemy URL of its async driver."""
    if database_url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + database_url.removeprefix("sqlite:///")
    for scheme in ("postgresql://", "postgres://"):
        if database_url.startswith(scheme):
            return "postgresql+asyncpg://" + database_url.removeprefix(scheme)
    raise ValueError(f"DATABASE_URL has an unsupported scheme: {database_url!r}")


TABLE_CREATION_ATTEMPTS = 5


async def create_tables(engine: AsyncEngine) -> None:
    """Create the missing tables; processes starting together on a new database race to
    create them, and the loser's CREATE fails, so it looks again."""
    for attempt in range(1, TABLE_CREATION_ATTEMPTS + 1):
        try:
            async with engine.begin() as connection:
                await connection.run_sync(metadata.create_all)
            return
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            if attempt == TABLE_CREATION_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)


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
        """Add rows to the durable counts and record the flush, in one transaction."""
        return await self.commit_flush_chunks(flush, _single(rows)) is not None

    async def commit_flush_chunks(
        self, flush: Flush, chunks: AsyncIterator[Sequence[CountRow]]
    ) -> tuple[int, int] | None:
        """Add the rows of every chunk to the durable counts and record the flush, in one
        transaction; only a chunk at a time is in memory. Returns (rows, events).

        Exactly once: the flush id is the record's primary key and is written first, so a
        flush re-run after a crash, or run twice at once, adds its counts only once.
        Returns None when the flush id was committed already.
        """
        rows = events = 0
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
                async for chunk in chunks:
                    await upsert_counts(connection, chunk)
                    rows += len(chunk)
                    events += sum(row.count for row in chunk)
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

    async def parents(self, service_id: str) -> dict[str, str | None]:
        """Return account -> parent for every account the service has."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(accounts.c.account_id, accounts.c.parent_id).where(
                    accounts.c.service_id == service_id
                )
            )
            return {row[0]: row[1] for row in result}

    async def account(self, service_id: str, account_id: str) -> Account | None:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(accounts).where(
                    accounts.c.service_id == service_id, accounts.c.account_id == account_id
                )
            )
            row = result.first()
        if row is None:
            return None
        values = row._mapping
        return Account(service_id, account_id, *(values[name] for name in ACCOUNT_FIELDS))

    async def ensure_accounts(self, service_id: str, account_ids: Iterable[str]) -> None:
        """Register accounts seen only in usage, so the registry knows every account."""
        ids = sorted(set(account_ids))
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            for start in range(0, len(ids), 5000):
                await connection.execute(
                    self._insert(accounts).on_conflict_do_nothing(
                        index_elements=["service_id", "account_id"]
                    ),
                    [
                        {"service_id": service_id, "account_id": a, "updated_at": now}
                        for a in ids[start : start + 5000]
                    ],
                )

    async def children(self, service_id: str, account_id: str) -> list[str]:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(accounts.c.account_id)
                .where(accounts.c.service_id == service_id, accounts.c.parent_id == account_id)
                .order_by(accounts.c.account_id)
            )
            return [row[0] for row in result]

    async def latest_attributes(self, service_id: str, account_id: str) -> dict[str, Any]:
        """Return each attribute's latest value."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                sa.select(account_attributes.c.name, account_attributes.c.value)
                .where(
                    account_attributes.c.service_id == service_id,
                    account_attributes.c.account_id == account_id,
                )
                .order_by(account_attributes.c.day)
            )
            return {name: orjson.loads(value) for name, value in result}

    async def apply_updates(
        self, updates: Sequence[AccountUpdate], now: datetime, refuse_cycles: bool = True
    ) -> list[AccountUpdate]:
        """Apply account updates in order, in one transaction; return those refused.

        An update whose parent would make a cycle is refused whole. Applying the same
        updates again leaves the same state, so a replay after a crash is harmless.
        """
        refused: list[AccountUpdate] = []
        parents_by_service: dict[str, dict[str, str | None]] = {}
        fields: dict[tuple[str, str], dict[str, str | None]] = {}
        attributes: dict[tuple[str, str, str, date], Any] = {}
        user_attrs: dict[tuple[str, str, str, str, date], Any] = {}
        referenced: set[tuple[str, str]] = set()
        for update in updates:
            if update.service_id not in parents_by_service:
                parents_by_service[update.service_id] = await self.parents(update.service_id)
            parents = parents_by_service[update.service_id]
            parent = update.fields.get("parent_id")
            if (
                parent is not None
                and refuse_cycles
                and makes_cycle(update.account_id, parent, parents)
            ):
                refused.append(update)
                continue
            if "parent_id" in update.fields:
                parents[update.account_id] = parent
            if parent is not None:
                referenced.add((update.service_id, parent))
            key = (update.service_id, update.account_id)
            fields.setdefault(key, {}).update(update.fields)
            for name, value in update.attributes.items():
                attributes[(*key, name, update.day)] = value
            if update.user_id:
                for name, value in update.user_attributes.items():
                    user_attrs[(*key, update.user_id, name, update.day)] = value
        async with self.engine.begin() as connection:
            await self._upsert_accounts(connection, fields, referenced - set(fields), now)
            await self._upsert_values(
                connection, account_attributes, ("service_id", "account_id", "name", "day"),
                attributes,
            )  # fmt: skip
            await self._upsert_values(
                connection, user_attributes,
                ("service_id", "account_id", "user_id", "name", "day"), user_attrs,
            )  # fmt: skip
        return refused

    async def _upsert_accounts(
        self,
        connection: AsyncConnection,
        fields: Mapping[tuple[str, str], Mapping[str, str | None]],
        referenced: set[tuple[str, str]],
        now: datetime,
    ) -> None:
        """Upsert accounts grouped by which fields they set; create referenced parents."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for (service_id, account_id), values in fields.items():
            names = tuple(sorted(values))
            groups.setdefault(names, []).append(
                {"service_id": service_id, "account_id": account_id, "updated_at": now, **values}
            )
        for names, rows in groups.items():
            statement = self._insert(accounts)
            statement = statement.on_conflict_do_update(
                index_elements=["service_id", "account_id"],
                set_={**{name: statement.excluded[name] for name in names}, "updated_at": now},
            )
            for start in range(0, len(rows), 5000):
                await connection.execute(statement, rows[start : start + 5000])
        missing = [
            {"service_id": service_id, "account_id": account_id, "updated_at": now}
            for service_id, account_id in sorted(referenced)
        ]
        if missing:
            await connection.execute(
                self._insert(accounts).on_conflict_do_nothing(
                    index_elements=["service_id", "account_id"]
                ),
                missing,
            )

    async def _upsert_values(
        self,
        connection: AsyncConnection,
        table: sa.Table,
        key_names: tuple[str, ...],
        values: Mapping[tuple[Any, ...], Any],
    ) -> None:
        if not values:
            return
        statement = self._insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=list(key_names), set_={"value": statement.excluded["value"]}
        )
        rows = [
            {**dict(zip(key_names, key, strict=True)), "value": orjson.dumps(value).decode()}
            for key, value in values.items()
        ]
        for start in range(0, len(rows), 5000):
            await connection.execute(statement, rows[start : start + 5000])

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

    async def day_sums(self, service_id: str, day: date) -> list[tuple[str, str, str, int]]:
        """Return a day's durable counts summed per (account, module, activity)."""
        query = (
            sa.select(
                daily_counts.c.account_id, daily_counts.c.module, daily_counts.c.activity,
                sa.func.sum(daily_counts.c["count"]),
            )
            .where(daily_counts.c.service_id == service_id, daily_counts.c.day == day)
            .group_by(daily_counts.c.account_id, daily_counts.c.module, daily_counts.c.activity)
        )  # fmt: skip
        async with self.engine.connect() as connection:
            result = await connection.execute(query)
            return [(row[0], row[1], row[2], int(row[3])) for row in result]

    async def day_users(self, service_id: str, day: date) -> AsyncIterator[tuple[str, str]]:
        """Stream a day's distinct (account, user) pairs, leaving out events with no user."""
        query = (
            sa.select(daily_counts.c.account_id, daily_counts.c.user_id)
            .distinct()
            .where(
                daily_counts.c.service_id == service_id,
                daily_counts.c.day == day,
                daily_counts.c.user_id != "",
            )
            .execution_options(yield_per=5000)
        )
        async with self.engine.connect() as connection:
            result = await connection.stream(query)
            async for row in result:
                yield row[0], row[1]

    async def replace_rollups(
        self,
        service_id: str,
        day: date,
        counts: Mapping[tuple[str, str, str], int],
        active_users: Mapping[str, int],
    ) -> None:
        """Swap in a day's rollups in one transaction."""
        async with self.engine.begin() as connection:
            for table in (daily_rollups, daily_rollup_users):
                await connection.execute(
                    table.delete().where(table.c.service_id == service_id, table.c.day == day)
                )
            rows = [
                {"service_id": service_id, "day": day, "account_id": account,
                 "module": module, "activity": activity, "count": count}
                for (account, module, activity), count in counts.items()
            ]  # fmt: skip
            for start in range(0, len(rows), 5000):
                await connection.execute(daily_rollups.insert(), rows[start : start + 5000])
            users = [
                {"service_id": service_id, "day": day, "account_id": account, "active_users": n}
                for account, n in active_users.items()
            ]
            for start in range(0, len(users), 5000):
                await connection.execute(daily_rollup_users.insert(), users[start : start + 5000])

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


async def _single(rows: Sequence[CountRow]) -> AsyncIterator[Sequence[CountRow]]:
    yield rows


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
