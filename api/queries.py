"""Usage as the query API reads it: durable counts in SQL plus live buckets in Redis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from api.usage import group_rows
from rollup.hierarchy import ancestors, descendants
from rollup.live import LiveBuckets
from rollup.store import CountRow, Store

EPOCH = date(1970, 1, 1)
TOP = 5


@dataclass(frozen=True)
class UsageReader:
    store: Store
    live: LiveBuckets

    async def rows(
        self, service_id: str, account_ids: Sequence[str], first_day: date, last_day: date,
        user_id: str | None = None,
    ) -> list[CountRow]:  # fmt: skip
        """Return per-user rows of some accounts, flushed and live together."""
        durable = await self.store.counts_of_accounts(
            service_id, account_ids, first_day, last_day, user_id
        )
        live = await self.live.rows_of_accounts(
            service_id, account_ids, first_day, last_day, self.store.committed
        )
        if user_id is not None:
            live = [row for row in live if row.user_id == user_id]
        return [*durable, *live]

    async def subtree(self, service_id: str, account_id: str) -> list[str]:
        """Return the account and all its descendants in the current hierarchy."""
        return [account_id, *descendants(account_id, await self.store.parents(service_id))]

    async def usage(
        self, service_id: str, account_id: str, first_day: date, last_day: date,
        columns: list[str], rollup: bool,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Rows summed by columns; with rollup, the account's whole subtree.

        Flushed days roll up from the rollups materialized at flush (or by rebuild);
        live days roll up now, with the current hierarchy, to the same result.
        """
        if not rollup:
            return group_rows(
                await self.rows(service_id, [account_id], first_day, last_day), columns
            )
        tree = await self.subtree(service_id, account_id)
        if "user_id" in columns:
            return group_rows(await self.rows(service_id, tree, first_day, last_day), columns)
        materialized = [
            CountRow(service_id, day, account_id, "", module, activity, count)
            for day, module, activity, count in await self.store.rollup_counts(
                service_id, account_id, first_day, last_day
            )
        ]
        live = await self.live.rows_of_accounts(
            service_id, tree, first_day, last_day, self.store.committed
        )
        return group_rows([*materialized, *live], columns)

    async def known(self, service_id: str, account_id: str) -> bool:
        return await self.store.account(service_id, account_id) is not None

    async def summary(self, service_id: str, account_id: str, today: date) -> dict[str, Any]:
        """Counts over the usual windows with rollup, active users, tops and licenses."""
        tree = await self.subtree(service_id, account_id)
        rows = await self.rows(service_id, tree, today - timedelta(days=29), today)

        def total(days: int, end: date = today) -> int:
            start = end - timedelta(days=days - 1)
            return sum(row.count for row in rows if start <= row.day <= end)

        recent = [row for row in rows if row.day >= today - timedelta(days=13)]
        active_users = sorted({row.user_id for row in recent if row.user_id})
        users: Counter[str] = Counter()
        modules: Counter[str] = Counter()
        activities: Counter[tuple[str, str]] = Counter()
        for row in rows:
            if row.user_id:
                users[row.user_id] += row.count
            modules[row.module] += row.count
            activities[(row.module, row.activity)] += row.count
        attributes = await self.store.latest_attributes(service_id, account_id)
        licenses = attributes.get("Licenses")
        summary: dict[str, Any] = {
            "account_id": account_id,
            "today": today.isoformat(),
            "counts": {
                "today": total(1),
                "yesterday": total(1, today - timedelta(days=1)),
                "last_3_days": total(3),
                "last_7_days": total(7),
                "last_14_days": total(14),
                "last_30_days": total(30),
            },
            "active_users_14_days": len(active_users),
            "top_users": [{"user_id": u, "count": n} for u, n in _top(users)],
            "top_modules": [{"module": m, "count": n} for m, n in _top(modules)],
            "top_activities": [
                {"module": m, "activity": a, "count": n} for (m, a), n in _top(activities)
            ],
            "license_utilization": None,
        }
        number = _number(licenses)
        if number:
            summary["license_utilization"] = {
                "licenses": number,
                "active_users_14_days": len(active_users),
                "ratio": round(len(active_users) / number, 4),
            }
        return summary

    async def inactive_users(
        self, service_id: str, module: str, activity: str | None, days: int, today: date,
        account_id: str | None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Users of the account tree (or service) who did not use module/activity lately."""
        parents = await self.store.parents(service_id)
        if account_id is not None:
            tree = [account_id, *descendants(account_id, parents)]
        else:
            tree = sorted(set(parents) | await self.live_accounts(service_id))
        rows = await self.rows(service_id, tree, EPOCH, today)
        since = today - timedelta(days=days - 1)
        last_seen: dict[tuple[str, str], date] = {}
        last_used: dict[str, date] = {}
        for row in rows:
            if not row.user_id:
                continue
            key = (row.user_id, row.account_id)
            last_seen[key] = max(last_seen.get(key, EPOCH), row.day)
            if row.module == module and activity in (None, row.activity):
                last_used[row.user_id] = max(last_used.get(row.user_id, EPOCH), row.day)
        used = {user_id for user_id, day in last_used.items() if day >= since}
        inactive = []
        for (user_id, user_account), seen in sorted(last_seen.items()):
            if user_id in used:
                continue
            inactive.append(
                {
                    "user_id": user_id,
                    "account_id": user_account,
                    "last_active": seen.isoformat(),
                    "last_used": last_used[user_id].isoformat() if user_id in last_used else None,
                }
            )
        return inactive

    async def live_accounts(self, service_id: str) -> set[str]:
        found: set[str] = set()
        for partition in await self.live.partitions():
            for day in await self.live.live_days(partition, service_id):
                found.update(await self.live.accounts(partition, service_id, day))
        return found

    async def detail(self, service_id: str, account_id: str) -> dict[str, Any] | None:
        account = await self.store.account(service_id, account_id)
        if account is None:
            return None
        parents = await self.store.parents(service_id)
        return {
            "service_id": service_id,
            "account_id": account_id,
            "name": account.name,
            "account_type": account.account_type,
            "product_id": account.product_id,
            "attributes": await self.store.latest_attributes(service_id, account_id),
            "parent_id": account.parent_id,
            "ancestors": list(reversed(ancestors(account_id, parents))),
            "children": await self.store.children(service_id, account_id),
        }


def _top(counter: Counter[Any]) -> list[tuple[Any, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:TOP]


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number > 0 else None
    return None
