"""The SQL tables of durable counts, flushes, accounts and rollups, and the rows they hold."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

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
    # On SQLite the rows live in their primary key's b-tree, not in a rowid table beside
    # it: one b-tree fewer to write per flushed row, and a smaller file.
    sqlite_with_rowid=False,
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


# A flushed count: (account_id, user_id, module, activity, count) of one service's day.
# A plain tuple, not an object per row: a flush moves millions of them.
CountTuple = tuple[str, str, str, str, int]
