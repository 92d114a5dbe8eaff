"""Move account updates that the aggregators queued in Redis into the SQL account registry."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import orjson

from rollup.live import LiveBuckets
from rollup.store import AccountUpdate, Store

log = logging.getLogger(__name__)

BATCH = 1000
FIELD_NAMES = {"account_name": "name", "parent_id": "parent_id",
               "account_type": "account_type", "product_id": "product_id"}  # fmt: skip

# Trim what was applied, unless another syncer already did (the head changed meanwhile).
TRIM_APPLIED = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1]
   and redis.call('LINDEX', KEYS[1], tonumber(ARGV[2]) - 1) == ARGV[3] then
  redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
  return 1
end
return 0
"""


def parse_update(payload: bytes | str) -> AccountUpdate:
    data = orjson.loads(payload)
    return AccountUpdate(
        service_id=data["s"],
        account_id=data["a"],
        day=date.fromisoformat(data["d"]),
        fields={FIELD_NAMES[name]: value for name, value in data["f"].items()},
        attributes=data["aa"],
        user_id=data["u"],
        user_attributes=data["ua"],
    )


async def sync_account_updates(live: LiveBuckets, store: Store) -> tuple[int, int]:
    """Apply queued updates in order, then trim them; return (applied, refused as cycles).

    At least once, which is enough: applying an update again sets the same values.
    """
    applied = refused_total = 0
    trim = live.redis.register_script(TRIM_APPLIED)
    for partition in await live.partitions():
        key = live.keys.account_updates(partition)
        while True:
            payloads = await live.redis.lrange(key, 0, BATCH - 1)
            if not payloads:
                break
            updates = [parse_update(payload) for payload in payloads]
            refused = await store.apply_updates(updates, datetime.now(UTC))
            for update in refused:
                log.warning(
                    "refused parent %s for %s/%s: it would make a cycle",
                    update.fields.get("parent_id"), update.service_id, update.account_id,
                )  # fmt: skip
            if refused:
                await live.redis.hincrby(live.keys.rejects(), "parent_cycle", len(refused))
            await trim(keys=[key], args=[payloads[0], len(payloads), payloads[-1]])
            applied += len(updates) - len(refused)
            refused_total += len(refused)
    return applied, refused_total
