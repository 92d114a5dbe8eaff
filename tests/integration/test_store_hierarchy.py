"""The SQL store and hierarchy rollups on SQLite and PostgreSQL: deep chains, wide trees,
cycles, attribute history and exactly-once flush records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from rollup.rollups import rebuild_rollups
from rollup.store import AccountUpdate, CountRow, Flush, Store

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


def parent(service: str, account: str, parent_id: str | None, day: date = DAY) -> AccountUpdate:
    return AccountUpdate(service, account, day, {"parent_id": parent_id})  # type: ignore[dict-item]


async def add_usage(store: Store, rows: list[CountRow]) -> None:
    flush = Flush(str(uuid.uuid4()), rows[0].service_id, rows[0].day, 0, NOW)
    assert await store.commit_flush(flush, rows)
    assert not await store.commit_flush(flush, rows)  # a re-run of the same flush adds nothing


async def test_deep_chain_rolls_up_every_level_and_refuses_a_cycle(store: Store) -> None:
    depth = 60
    chain = [f"level-{i}" for i in range(depth)]
    refused = await store.apply_updates(
        [parent("S", chain[i], chain[i - 1] if i else None) for i in range(depth)], NOW
    )
    assert refused == []
    await add_usage(store, [CountRow("S", DAY, a, f"user-{i % 7}", "M", "use", 1)
                            for i, a in enumerate(chain)])  # fmt: skip
    assert await rebuild_rollups(store, "S", DAY) == depth
    counts = {account: n for account, *_, n in await _rollups(store, "S")}
    assert counts == {chain[i]: depth - i for i in range(depth)}
    # The root cannot move under its own deepest descendant.
    cycle = parent("S", chain[0], chain[-1])
    assert await store.apply_updates([cycle], NOW) == [cycle]
    assert (await store.parents("S"))[chain[0]] is None


async def test_wide_tree_counts_distinct_users_once(store: Store) -> None:
    children = [f"child-{i}" for i in range(10_000)]
    assert await store.apply_updates([parent("W", c, "root") for c in children], NOW) == []
    rows = [CountRow("W", DAY, c, f"user-{i % 100}", "M", "use", 2) for i, c in enumerate(children)]
    await add_usage(store, rows)
    assert await rebuild_rollups(store, "W", DAY) == 10_001
    counts = {account: n for account, *_, n in await _rollups(store, "W")}
    assert counts["root"] == 20_000
    assert counts["child-42"] == 2
    active = await _active_users(store, "W")
    assert active["root"] == 100
    assert active["child-42"] == 1


async def test_attributes_keep_the_last_value_of_each_day(store: Store) -> None:
    updates = [
        AccountUpdate(
            "S", "A", date(2026, 11, 1), {"name": "Acme"}, {"Licenses": 10, "Tier": "silver"}
        ),
        AccountUpdate("S", "A", date(2026, 11, 1), {}, {"Licenses": 12}),
        AccountUpdate("S", "A", date(2026, 11, 2), {"account_type": "corp"}, {"Licenses": 20}),
    ]
    assert await store.apply_updates(updates, NOW) == []
    assert await store.latest_attributes("S", "A") == {"Licenses": 20, "Tier": "silver"}
    account = await store.account("S", "A")
    assert account is not None
    assert (account.name, account.account_type, account.parent_id) == ("Acme", "corp", None)
    history = await _attribute_history(store, "S", "A", "Licenses")
    assert history == [(date(2026, 11, 1), "12"), (date(2026, 11, 2), "20")]


async def test_parent_is_changed_only_when_sent(store: Store) -> None:
    await store.apply_updates([parent("S", "A", "P")], NOW)
    await store.apply_updates([AccountUpdate("S", "A", DAY, {"name": "renamed"})], NOW)
    assert (await store.parents("S"))["A"] == "P"
    await store.apply_updates([parent("S", "A", None)], NOW)
    assert (await store.parents("S"))["A"] is None


async def _rollups(store: Store, service: str) -> list[tuple[str, str, str, int]]:
    import sqlalchemy as sa

    from rollup.store import daily_rollups

    async with store.engine.connect() as connection:
        result = await connection.execute(
            sa.select(daily_rollups.c.account_id, daily_rollups.c.module,
                      daily_rollups.c.activity, daily_rollups.c["count"])
            .where(daily_rollups.c.service_id == service)
        )  # fmt: skip
        return [(r[0], r[1], r[2], int(r[3])) for r in result]


async def _active_users(store: Store, service: str) -> dict[str, int]:
    import sqlalchemy as sa

    from rollup.store import daily_rollup_users

    async with store.engine.connect() as connection:
        result = await connection.execute(
            sa.select(daily_rollup_users.c.account_id, daily_rollup_users.c.active_users).where(
                daily_rollup_users.c.service_id == service
            )
        )
        return {r[0]: int(r[1]) for r in result}


async def _attribute_history(
    store: Store, service: str, account: str, name: str
) -> list[tuple[date, str]]:
    import sqlalchemy as sa

    from rollup.store import account_attributes as table

    async with store.engine.connect() as connection:
        result = await connection.execute(
            sa.select(table.c.day, table.c.value)
            .where(
                table.c.service_id == service, table.c.account_id == account, table.c.name == name
            )
            .order_by(table.c.day)
        )
        return [(r[0], r[1]) for r in result]
