"""Materialized hierarchy rollups of flushed days."""

from __future__ import annotations

import logging
from datetime import date

from rollup.hierarchy import Rollup
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
    for account_id, module, activity, count in await store.day_sums(service_id, day):
        rollup.add_count(account_id, module, activity, count, parents)
        seen.add(account_id)
    async for account_id, user_id in store.day_users(service_id, day):
        rollup.add_user(account_id, user_id, parents)
    await store.ensure_accounts(service_id, seen - set(parents))
    accounts = {account for account, _, _ in rollup.counts}
    active = {account: len(rollup.users.get(account, ())) for account in accounts}
    await store.replace_rollups(service_id, day, rollup.counts, active)
    return len(accounts)
