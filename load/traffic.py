"""Generate realistic usage events and send them, keeping a ledger of what was acknowledged."""

from __future__ import annotations

import asyncio
import io
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import aiohttp
import orjson

CountKey = tuple[str, str, str, str]  # (account_id, user_id, module, activity)

MODULES = {
    "Invoices": ["Create", "Send", "Void", "Export"],
    "Payments": ["Record", "Refund"],
    "Reports": ["View", "Export", "Schedule"],
    "Customers": ["Add", "Edit", "Import"],
    "Settings": ["Change"],
}


def zipf_weights(n: int, exponent: float = 1.1) -> list[float]:
    return [1 / (rank**exponent) for rank in range(1, n + 1)]


@dataclass
class TrafficShape:
    """How events spread: Zipf over accounts and users, a fixed module/activity mix."""

    accounts: int = 200
    users_per_account: int = 20
    seed: int = 7

    def events(self, count: int, prefix: str = "") -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        accounts = [f"{prefix}acct-{i}" for i in range(self.accounts)]
        # Cumulative weights computed once: choices() would add them up again for every
        # event (thousands of accounts made that most of the time); same draws either way.
        account_weights = list(accumulate(zipf_weights(self.accounts)))
        user_weights = list(accumulate(zipf_weights(self.users_per_account)))
        pairs = [(m, a) for m, activities in MODULES.items() for a in activities]
        pair_weights = list(accumulate(zipf_weights(len(pairs), 0.8)))
        for _ in range(count):
            account = rng.choices(accounts, cum_weights=account_weights)[0]
            user_index = rng.choices(range(self.users_per_account), cum_weights=user_weights)[0]
            module, activity = rng.choices(pairs, cum_weights=pair_weights)[0]
            event: dict[str, Any] = {
                "account_id": account,
                "user_id": f"user{user_index}@{account}.example" if user_index else "",
                "module": module,
                "activity": activity,
            }
            if rng.random() < 0.1:
                event["count"] = rng.randint(2, 5)
            yield event


def count_key(event: dict[str, Any]) -> CountKey:
    return (event["account_id"], event.get("user_id", ""), event["module"], event["activity"])


@dataclass
class Ledger:
    """What the collector acknowledged: the counts the durable store must end with exactly."""

    expected: Counter[CountKey] = field(default_factory=Counter)
    sent_events: int = 0
    acknowledged_events: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged_ids: set[str] = field(default_factory=set)

    def acknowledge(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            event_id = event.get("event_id")
            if event_id is not None:
                if event_id in self.acknowledged_ids:
                    continue  # a retry of an event already counted
                self.acknowledged_ids.add(event_id)
            self.expected[count_key(event)] += event.get("count", 1)
            self.acknowledged_events += 1

    @property
    def total(self) -> int:
        return sum(self.expected.values())


class Sender:
    """Posts batches to /v1/events and records what was acknowledged."""

    def __init__(
        self, session: aiohttp.ClientSession, collector_url: str, server_key: str, ledger: Ledger
    ) -> None:
        self.session = session
        self.url = f"{collector_url}/v1/events"
        self.headers = {"Authorization": f"Bearer {server_key}"}
        self.ledger = ledger

    async def post(self, batch: Sequence[dict[str, Any]], timeout_s: float = 30) -> int:
        """Send one batch once; return the status (0 when the request failed or timed out)."""
        self.ledger.sent_events += len(batch)
        body = io.BytesIO(orjson.dumps({"batch": list(batch)}))
        try:
            async with self.session.post(
                self.url,
                data=body,
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.ledger.statuses[status] += 1
        if status == 202:
            self.ledger.acknowledge(batch)
        return status

    async def post_until_accepted(
        self, batch: Sequence[dict[str, Any]], attempts: int = 120, pause_s: float = 0.5
    ) -> bool:
        """Retry a batch (same event_ids) until it is accepted, as a careful client does."""
        for _ in range(attempts):
            if await self.post(batch) == 202:
                return True
            await asyncio.sleep(pause_s)
        return False


def batches(events: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield list(events[start : start + size])


def with_event_ids(events: Sequence[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [{**event, "event_id": f"{prefix}-{i}"} for i, event in enumerate(events)]
