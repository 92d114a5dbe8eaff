"""The account registry in SQL: the hierarchy, account fields and attribute history."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rollup.hierarchy import makes_cycle
from rollup.schema import (
    ACCOUNT_FIELDS,
    Account,
    AccountUpdate,
    account_attributes,
    accounts,
    user_attributes,
)

ROWS_PER_STATEMENT = 5000


class AccountRegistry:
    """The Store's part that reads and writes accounts (a base class of Store)."""

    engine: AsyncEngine
    _insert: Callable[[sa.Table], Any]

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
            for start in range(0, len(ids), ROWS_PER_STATEMENT):
                await connection.execute(
                    self._insert(accounts).on_conflict_do_nothing(
                        index_elements=["service_id", "account_id"]
                    ),
                    [
                        {"service_id": service_id, "account_id": a, "updated_at": now}
                        for a in ids[start : start + ROWS_PER_STATEMENT]
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
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                await connection.execute(statement, rows[start : start + ROWS_PER_STATEMENT])
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
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            await connection.execute(statement, rows[start : start + ROWS_PER_STATEMENT])
