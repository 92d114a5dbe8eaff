"""Materialized hierarchy rollups of flushed days."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from rollup.hierarchy import Rollup
from rollup.schema import daily_counts, daily_rollup_users, daily_rollups
from rollup.store import Store

log = logging.getLogger(__name__)


async def rebuild_rollups(store: Store, service_id: str, day: date) -> int:
    """Recompute a day's rollups from its durable counts and the current hierarchy.

    For every account with usage in its subtree: the counts of the account and all its
    descendants per module/activity, and the number of distinct active users there.
    Returns the number of accounts rolled up.
    """
    parents = await store.parents(service_id)
    rollup = Rollup()
    seen: set[str] = set()
    # The database sums the day's rows per (account, module, activity) and lists distinct
    # (account, user) pairs: a fraction of the rows, and no Python work per row.
    for account_id, module, activity, count in await day_sums(store.engine, service_id, day):
        rollup.add_count(account_id, module, activity, count, parents)
        seen.add(account_id)
    async for account_id, user_id in day_users(store.engine, service_id, day):
        rollup.add_user(account_id, user_id, parents)
    await store.ensure_accounts(service_id, seen - set(parents))
    accounts = {account for account, _, _ in rollup.counts}
    active = {account: len(rollup.users.get(account, ())) for account in accounts}
    await replace_rollups(store.engine, service_id, day, rollup.counts, active)
    return len(accounts)


async def day_sums(
    engine: AsyncEngine, service_id: str, day: date
) -> list[tuple[str, str, str, int]]:
    """Return a day's durable counts summed per (account, module, activity)."""
    query = (
        sa.select(
            daily_counts.c.account_id, daily_counts.c.module, daily_counts.c.activity,
            sa.func.sum(daily_counts.c["count"]),
        )
        .where(daily_counts.c.service_id == service_id, daily_counts.c.day == day)
        .group_by(daily_counts.c.account_id, daily_counts.c.module, daily_counts.c.activity)
    )  # fmt: skip
    async with engine.connect() as connection:
        result = await connection.execute(query)
        return [(row[0], row[1], row[2], int(row[3])) for row in result]


async def day_users(
    engine: AsyncEngine, service_id: str, day: date
) -> AsyncIterator[tuple[str, str]]:
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
    async with engine.connect() as connection:
        result = await connection.stream(query)
        async for row in result:
            yield row[0], row[1]


async def replace_rollups(
    engine: AsyncEngine,
    service_id: str,
    day: date,
    counts: Mapping[tuple[str, str, str], int],
    active_users: Mapping[str, int],
) -> None:
    """Swap in a day's rollups in one transaction."""
    async with engine.begin() as connection:
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
