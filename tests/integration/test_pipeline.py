"""End to end on real processes: pixel hits and batches through Kafka and Redis into SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from tests.support import ACME_READ_KEY, ACME_SERVER_KEY, Pipeline, get_json

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date().isoformat()

# The seed example: Acme INC (XYZ) owns Acme Boston (ABC); product instances are virtual ids.
PIXEL_HITS = [
    {"sdr_o": "XYZ", "sdr_u": "ceo@acme.com", "sdr_m": "Reports", "sdr_a": "Export"},
    {"sdr_o": "XYZ", "sdr_u": "ceo@acme.com", "sdr_m": "Reports", "sdr_a": "Export"},
    {"sdr_o": "XYZ_Widget1", "sdr_u": "ops@acme.com", "sdr_m": "Widgets", "sdr_a": "Configure",
     "sdr_o.parent_id": "XYZ", "sdr_odn": "Acme Widget 1", "sdr_o.Contract Value": "1000"},
    {"sdr_o": "ABC", "sdr_u": "bob@acme.com", "sdr_m": "Invoices", "sdr_a": "Create",
     "sdr_odn": "Acme Boston", "sdr_o.parent_id": "XYZ", "r": "https://ignored.example"},
    # Attribute update only: no activity, so nothing is counted.
    {"sdr_o": "ABC_Widget2", "sdr_o.parent_id": "ABC", "sdr_u.Role": "admin"},
]  # fmt: skip

BATCH = [
    {"account_id": "ABC", "user_id": "bob@acme.com", "module": "Invoices", "activity": "Create",
     "count": 4},
    {"account_id": "ABC", "user_id": "ann@acme.com", "module": "Invoices", "activity": "Send"},
    {"account_id": "ABC_Widget2", "user_id": "ann@acme.com", "module": "Widgets",
     "activity": "Configure", "count": 2, "parent_id": "ABC"},
    {"account_id": "ABC_Widget1", "module": "Widgets", "activity": "Sync", "count": 7,
     "account_attributes": {"Licenses": 25}},
    {"account_id": "XYZ", "user_id": "ceo@acme.com", "module": "Reports", "activity": "Export",
     "timestamp": datetime.now(UTC).isoformat()},
]  # fmt: skip

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "XYZ": [
        {"day": TODAY, "module": "Reports", "activity": "Export", "user_id": "ceo@acme.com",
         "count": 3},
    ],
    "XYZ_Widget1": [
        {"day": TODAY, "module": "Widgets", "activity": "Configure", "user_id": "ops@acme.com",
         "count": 1},
    ],
    "ABC": [
        {"day": TODAY, "module": "Invoices", "activity": "Create", "user_id": "bob@acme.com",
         "count": 6},
        {"day": TODAY, "module": "Invoices", "activity": "Send", "user_id": "ann@acme.com",
         "count": 1},
    ],
    "ABC_Widget2": [
        {"day": TODAY, "module": "Widgets", "activity": "Configure", "user_id": "ann@acme.com",
         "count": 2},
    ],
    "ABC_Widget1": [
        {"day": TODAY, "module": "Widgets", "activity": "Sync", "user_id": "", "count": 7},
    ],
}  # fmt: skip


async def send_all(session: aiohttp.ClientSession, pipeline: Pipeline) -> None:
    for hit in PIXEL_HITS:
        params = {"sdr_s": "SP-ACME", **hit}
        async with session.get(f"{pipeline.collector_url}/pixel.gif", params=params) as response:
            assert response.status == 200, response.headers.get("X-Usage-Error")
            assert response.headers["Content-Type"] == "image/gif"
            assert response.headers["Cache-Control"] == "no-store"
    async with session.post(
        f"{pipeline.collector_url}/pixel.gif",
        data={"sdr_s": "SP-ACME", "sdr_o": "ABC", "sdr_u": "bob@acme.com", "sdr_m": "Invoices",
              "sdr_a": "Create"},
    ) as response:  # fmt: skip
        assert response.status == 200
    async with session.post(
        f"{pipeline.collector_url}/v1/events",
        json={"batch": BATCH},
        headers={"Authorization": f"Bearer {ACME_SERVER_KEY}"},
    ) as response:
        assert response.status == 202
        assert await response.json() == {"accepted": 5}


async def usage(
    session: aiohttp.ClientSession, pipeline: Pipeline, account: str, by: str
) -> tuple[int, Any]:
    return await get_json(
        session,
        f"{pipeline.api_url}/v1/services/SP-ACME/accounts/{account}/usage",
        ACME_READ_KEY,
        {"from": TODAY, "to": TODAY, "by": by},
    )


async def test_events_flow_to_live_then_durable_counts(pipeline: Pipeline) -> None:
    await pipeline.start_all()
    async with aiohttp.ClientSession() as session:
        await send_all(session, pipeline)
        await pipeline.drain()
        for account, rows in EXPECTED.items():
            assert await usage(session, pipeline, account, "day,module,activity,user") == (
                200,
                {"rows": rows},
            ), account
        assert await usage(session, pipeline, "ABC", "module") == (
            200,
            {"rows": [{"module": "Invoices", "count": 7}]},
        )
        assert await usage(session, pipeline, "ABC", "") == (200, {"rows": [{"count": 7}]})

        flush = pipeline.run_command("rollup", "flush", "--service", "SP-ACME", "--day", TODAY,
                                     "--force")  # fmt: skip
        assert flush.returncode == 0, flush.stderr
        assert f"flushed SP-ACME {TODAY}: 6 rows, 20 events" in flush.stdout

        for account, rows in EXPECTED.items():
            assert await usage(session, pipeline, account, "day,module,activity,user") == (
                200,
                {"rows": rows},
            ), account
        live = [key for key in await pipeline.redis_keys() if ":bucket:" in key or ":staged" in key]
        assert live == []

        # The flush moved the pixel's account parameters into the registry too.
        status, widget = await get_json(
            session, f"{pipeline.api_url}/v1/services/SP-ACME/accounts/XYZ_Widget1", ACME_READ_KEY
        )
        assert (status, widget["name"], widget["parent_id"], widget["attributes"]) == (
            200, "Acme Widget 1", "XYZ", {"Contract Value": "1000"},
        )  # fmt: skip
        status, widget2 = await get_json(
            session, f"{pipeline.api_url}/v1/services/SP-ACME/accounts/ABC_Widget2", ACME_READ_KEY
        )
        assert (status, widget2["parent_id"], widget2["ancestors"]) == (200, "ABC", ["XYZ", "ABC"])

        again = pipeline.run_command("rollup", "flush", "--service", "SP-ACME", "--day", TODAY,
                                     "--force")  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert f"flushed SP-ACME {TODAY}: 0 rows, 0 events" in again.stdout
        assert await usage(session, pipeline, "ABC", "") == (200, {"rows": [{"count": 7}]})


async def test_flush_without_force_refuses_a_day_not_over(pipeline: Pipeline) -> None:
    result = pipeline.run_command("rollup", "flush", "--service", "SP-ACME", "--day", "2999-01-01")
    assert result.returncode == 3
    assert result.stderr.strip().endswith(
        "rollup flush: 2999-01-01 has not ended yet in UTC; use --force to flush now"
    )
