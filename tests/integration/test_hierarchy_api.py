"""The seed hierarchy end to end, on SQLite and PostgreSQL: events set up accounts, usage at
every level rolls up exactly (live and flushed), re-parenting takes effect on rebuild, and
every query endpoint answers exact JSON."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from common.redis_client import connect
from tests.support import ACME_READ_KEY, ACME_SERVER_KEY, Pipeline, get_json

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True),
]

TODAY = datetime.now(UTC).date()
DAY = TODAY.isoformat()

# Acme INC (XYZ) -> Acme Boston (ABC) -> widget product accounts; XYZ owns its own widget.
ACCOUNTS = [
    {"account_id": "XYZ", "account_name": "Acme INC", "account_type": "corporation",
     "account_attributes": {"Licenses": 4}},
    {"account_id": "ABC", "account_name": "Acme Boston", "parent_id": "XYZ",
     "account_type": "subsidiary"},
    {"account_id": "XYZ_Widget1", "parent_id": "XYZ", "product_id": "widget"},
    {"account_id": "ABC_Widget1", "parent_id": "ABC", "product_id": "widget"},
    {"account_id": "ABC_Widget2", "parent_id": "ABC", "product_id": "widget"},
]  # fmt: skip


def use(account: str, user: str, module: str, activity: str, count: int = 1) -> dict[str, Any]:
    return {"account_id": account, "user_id": user, "module": module, "activity": activity,
            "count": count}  # fmt: skip


USAGE = [
    use("XYZ", "ceo@acme.com", "Reports", "View", 2),
    use("ABC", "boss@acme.com", "Reports", "View"),
    use("XYZ_Widget1", "ops@acme.com", "Widgets", "Configure", 3),
    use("ABC_Widget1", "ann@acme.com", "Widgets", "Configure", 4),
    use("ABC_Widget2", "ann@acme.com", "Widgets", "Configure", 5),  # same user, two children
    use("ABC_Widget2", "bob@acme.com", "Invoices", "Create", 6),
]


async def call(session: aiohttp.ClientSession, method: str, url: str, key: str,
               body: Any = None) -> tuple[int, Any]:  # fmt: skip
    async with session.request(
        method, url, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        return response.status, await response.json()


async def rollup(session: aiohttp.ClientSession, pipeline: Pipeline, account: str,
                 by: str = "module,activity") -> Any:  # fmt: skip
    status, body = await get_json(
        session, f"{pipeline.api_url}/v1/services/SP-ACME/accounts/{account}/usage",
        ACME_READ_KEY, {"from": DAY, "to": DAY, "rollup": "true", "by": by},
    )  # fmt: skip
    assert status == 200, body
    return body["rows"]


def widgets(n: int) -> dict[str, Any]:
    return {"module": "Widgets", "activity": "Configure", "count": n}


EXPECTED_ROLLUPS = {
    "XYZ": [{"module": "Invoices", "activity": "Create", "count": 6},
            {"module": "Reports", "activity": "View", "count": 3}, widgets(12)],
    "ABC": [{"module": "Invoices", "activity": "Create", "count": 6},
            {"module": "Reports", "activity": "View", "count": 1}, widgets(9)],
    "ABC_Widget2": [{"module": "Invoices", "activity": "Create", "count": 6}, widgets(5)],
    "XYZ_Widget1": [widgets(3)],
}  # fmt: skip


async def wait_for_registry(session: aiohttp.ClientSession, pipeline: Pipeline) -> None:
    for _ in range(100):
        status, body = await get_json(
            session, f"{pipeline.api_url}/v1/services/SP-ACME/accounts/ABC_Widget2", ACME_READ_KEY
        )
        if status == 200 and body["parent_id"] == "ABC":
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("account updates did not reach the registry")


async def test_seed_hierarchy_rolls_up_live_and_flushed(pipeline: Pipeline) -> None:
    pipeline.overrides.update({"FLUSHER_INTERVAL_MS": "200", "FLUSH_FSYNC_WAIT_MS": "0"})
    await pipeline.start_all()
    pipeline.start("flusher", "rollup", "flusher")  # syncs the registry every 200 ms
    base = f"{pipeline.api_url}/v1/services/SP-ACME"
    async with aiohttp.ClientSession() as session:
        status, _ = await call(session, "POST", f"{pipeline.collector_url}/v1/events",
                               ACME_SERVER_KEY, {"batch": ACCOUNTS})  # fmt: skip
        assert status == 202
        status, _ = await call(session, "POST", f"{pipeline.collector_url}/v1/events",
                               ACME_SERVER_KEY, {"batch": USAGE})  # fmt: skip
        assert status == 202
        await pipeline.drain()
        await wait_for_registry(session, pipeline)

        for account, rows in EXPECTED_ROLLUPS.items():
            assert await rollup(session, pipeline, account) == rows, f"live {account}"

        assert await call(session, "GET", f"{base}/accounts/ABC_Widget1", ACME_READ_KEY) == (200, {
            "service_id": "SP-ACME", "account_id": "ABC_Widget1", "name": None,
            "account_type": None, "product_id": "widget", "attributes": {}, "parent_id": "ABC",
            "ancestors": ["XYZ", "ABC"], "children": [],
        })  # fmt: skip
        status, xyz = await call(session, "GET", f"{base}/accounts/XYZ", ACME_READ_KEY)
        assert (status, xyz["children"], xyz["ancestors"], xyz["attributes"]) == (
            200, ["ABC", "XYZ_Widget1"], [], {"Licenses": 4},
        )  # fmt: skip

        # Cycles are refused: 409 from the API, a counted reject for an event.
        assert await call(session, "PUT", f"{base}/accounts/XYZ", ACME_SERVER_KEY,
                          {"parent_id": "ABC_Widget1"}) == (
            409, {"error": "parent ABC_Widget1 would make a cycle: it is XYZ or below it"},
        )  # fmt: skip
        status, _ = await call(session, "POST", f"{pipeline.collector_url}/v1/events",
                               ACME_SERVER_KEY, {"account_id": "ABC", "parent_id": "ABC_Widget2"})  # fmt: skip
        assert status == 202
        redis = connect(pipeline.settings.redis_url)
        for _ in range(100):
            if await redis.hget(pipeline.keys.rejects(), "parent_cycle") == b"1":
                break
            await asyncio.sleep(0.2)
        assert await redis.hget(pipeline.keys.rejects(), "parent_cycle") == b"1"
        await redis.aclose()
        status, abc = await call(session, "GET", f"{base}/accounts/ABC", ACME_READ_KEY)
        assert abc["parent_id"] == "XYZ"

        await check_summary_users_and_inactive(session, base)  # on the live day

        # Flush: the same rollups now come from SQL.
        flush = pipeline.flush(DAY)
        assert flush.returncode == 0, flush.stderr
        for account, rows in EXPECTED_ROLLUPS.items():
            assert await rollup(session, pipeline, account) == rows, f"flushed {account}"
        assert await rollup(session, pipeline, "ABC", "user") == [
            {"user_id": "ann@acme.com", "count": 9}, {"user_id": "bob@acme.com", "count": 6},
            {"user_id": "boss@acme.com", "count": 1},
        ]  # fmt: skip

        await check_summary_users_and_inactive(session, base)

        # Re-parent ABC_Widget2 to XYZ: flushed rollups change only on rebuild.
        status, moved = await call(session, "PUT", f"{base}/accounts/ABC_Widget2", ACME_SERVER_KEY,
                                   {"parent_id": "XYZ", "name": "Widget 2"})  # fmt: skip
        assert (status, moved["ancestors"], moved["name"]) == (200, ["XYZ"], "Widget 2")
        assert await rollup(session, pipeline, "ABC") == EXPECTED_ROLLUPS["ABC"]
        rebuild = pipeline.run_command("rollup", "rebuild", "--service", "SP-ACME",
                                       "--from", DAY, "--to", DAY)  # fmt: skip
        assert rebuild.returncode == 0, rebuild.stderr
        assert await rollup(session, pipeline, "ABC") == [
            {"module": "Reports", "activity": "View", "count": 1}, widgets(4),
        ]  # fmt: skip
        assert await rollup(session, pipeline, "XYZ") == EXPECTED_ROLLUPS["XYZ"]

        # Clear errors.
        assert await call(session, "PUT", f"{base}/accounts/XYZ", ACME_READ_KEY, {"name": "x"}) == (
            401, {"error": "invalid server key"})  # fmt: skip
        assert await call(session, "PUT", f"{base}/accounts/XYZ", ACME_SERVER_KEY, {"colour": "red"}) == (
            400, {"error": "colour is not a known field"})  # fmt: skip
        assert await call(session, "PUT", f"{base}/accounts/XYZ", ACME_SERVER_KEY, {"name": ""}) == (
            400, {"error": "name must be 1 to 256 characters"})  # fmt: skip
        assert await call(session, "PUT", f"{base}/accounts/XYZ", ACME_SERVER_KEY,
                          {"attributes": {"Plan": {"nested": 1}}}) == (
            400, {"error": "attribute values must be strings, numbers or booleans"})  # fmt: skip
        assert await call(session, "PUT", f"{base}/accounts/XYZ", ACME_SERVER_KEY,
                          {"attributes": {"Plan": "a\x00b"}}) == (
            400, {"error": "attribute values must not contain control characters"})  # fmt: skip
        assert await call(session, "GET", f"{base}/inactive-users?days=3", ACME_READ_KEY) == (
            400, {"error": "module is required"})  # fmt: skip
        assert await call(session, "GET", f"{base}/users/ann@acme.com/usage", ACME_READ_KEY) == (
            400, {"error": "account is required"})  # fmt: skip
        assert await call(session, "GET", f"{base}/accounts/NOPE", ACME_READ_KEY) == (
            404, {"error": "unknown account NOPE"})  # fmt: skip
        # PostgreSQL refuses a NUL in text: the API must refuse such an id before asking it.
        assert await call(session, "GET", f"{base}/accounts/A%00B/summary", ACME_READ_KEY) == (
            400, {"error": "account id must not contain control characters"})  # fmt: skip
        assert await call(session, "GET", f"{base}/inactive-users?module=M&account=A%00B",
                          ACME_READ_KEY) == (
            400, {"error": "account must not contain control characters"})  # fmt: skip
        assert await call(session, "GET", f"{pipeline.api_url}/v1/services/SP-NOPE/accounts/XYZ",
                          ACME_READ_KEY) == (404, {"error": "unknown service SP-NOPE"})  # fmt: skip
        assert await call(session, "GET", f"{base}/accounts/XYZ/usage?from=2026-13-01",
                          ACME_READ_KEY) == (
            400, {"error": "from/to: '2026-13-01' is not a date in the form YYYY-MM-DD"})  # fmt: skip
        assert await call(session, "GET", f"{base}/accounts/XYZ/usage?by=week", ACME_READ_KEY) == (
            400, {"error": "by must list distinct names among day, module, activity, user"})  # fmt: skip
        yesterday = (TODAY - timedelta(days=1)).isoformat()
        assert await call(session, "GET", f"{base}/accounts/XYZ/usage?from={DAY}&to={yesterday}",
                          ACME_READ_KEY) == (400, {"error": "to must not be before from"})  # fmt: skip


async def check_summary_users_and_inactive(session: aiohttp.ClientSession, base: str) -> None:
    # Summary: rolled-up windows, active users counted once, license utilization.
    status, summary = await call(session, "GET", f"{base}/accounts/XYZ/summary", ACME_READ_KEY)
    assert status == 200
    assert summary["counts"] == {"today": 21, "yesterday": 0, "last_3_days": 21,
                                 "last_7_days": 21, "last_14_days": 21, "last_30_days": 21}  # fmt: skip
    assert summary["active_users_14_days"] == 5
    assert summary["license_utilization"] == {
        "licenses": 4.0, "active_users_14_days": 5, "ratio": 1.25,
    }  # fmt: skip
    assert summary["top_users"][0] == {"user_id": "ann@acme.com", "count": 9}
    assert summary["top_modules"][0] == {"module": "Widgets", "count": 12}

    # Inactive users: who in ABC's tree did not use Widgets in the last 30 days.
    assert await call(session, "GET", f"{base}/inactive-users?module=Widgets&days=30&account=ABC",
                      ACME_READ_KEY) == (200, {"users": [
        {"user_id": "bob@acme.com", "account_id": "ABC_Widget2", "last_active": DAY,
         "last_used": None},
        {"user_id": "boss@acme.com", "account_id": "ABC", "last_active": DAY,
         "last_used": None},
    ]})  # fmt: skip
    assert await call(session, "GET",
                      f"{base}/users/ann@acme.com/usage?account=ABC_Widget2&from={DAY}&to={DAY}&by=module",
                      ACME_READ_KEY) == (200, {"rows": [{"module": "Widgets", "count": 5}]})  # fmt: skip
