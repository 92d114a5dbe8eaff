"""Ids built to collide under naive separators stay apart through Kafka, Redis and SQL, and
every one of them can be read back through the query API, percent-encoded."""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from yarl import URL

from common.days import local_day
from load.traffic import CountKey
from tests.support import ACME_SERVER_KEY, OTHER_READ_KEY, OTHER_SERVER_KEY, Pipeline

pytestmark = pytest.mark.e2e

LONG_ACCOUNT = "é" * 256  # at the limit, in characters (512 bytes of UTF-8)
LONG_MODULE = "m" * 128
# (account, user, module, activity): each pair would merge under "a:b"-style joining,
# glob or hash-tag handling, Unicode normalization, or path parsing. Each tuple gets its
# own count (its position + 1), so any merge shows in the sums.
CRAFTED: list[CountKey] = [
    ("a:b", "c", "m", "x"), ("a", "b:c", "m", "x"),
    ('x","y', "", "m", "x"), ("x", "y", "m", "x"),
    ("{t}", "u", "m", "x"), ("t", "u", "m", "x"),
    ("*", "u", "m", "x"), ("acc*", "u", "m", "x"),
    ("café", "u", "m", "x"), ("cafe\u0301", "u", "m", "x"),
    ("a/b", "u", "m", "x"), ("a", "u", "b/m", "x"),
    ("acct", "u", "m:a", "x"), ("acct", "u:m", "a", "x"),
    ("acct", "u", "m", "a##b"), ("acct", "u", "m##a", "b"),
    (LONG_ACCOUNT, "u", LONG_MODULE, "x"), ("é" * 255 + "e", "u", LONG_MODULE, "x"),
    ("..", "u", "m", "x"), (".", "u", "m", "x"),
    ("%2F", "u", "m", "x"), ("/", "u", "m", "x"),
    ('["a"]', "u", "m", "x"), ("\\", "u", "m", "x"),
    ("SP-ACME", "u", "m", "x"), ("shared", "u", "m", "x"),
]  # fmt: skip
PIXEL_ACCOUNTS = ["a&sdr_o=b", "+ %20"]  # query-string syntax inside a value


def event(account: str, user: str, module: str, activity: str, count: int) -> dict[str, object]:
    fields = {"service_id": "SP-OTHER", "account_id": account, "module": module,
              "activity": activity, "count": count}  # fmt: skip
    return {**fields, "user_id": user} if user else fields


def usage_url(pipeline: Pipeline, account: str, first: str, last: str) -> URL:
    path = f"/v1/services/SP-OTHER/accounts/{quote(account, safe='')}/usage"
    query = f"from={first}&to={last}&by=user,module,activity"
    return URL(f"{pipeline.api_url}{path}?{query}", encoded=True)


async def test_crafted_ids_stay_apart_end_to_end(pipeline: Pipeline) -> None:
    await pipeline.start_all()
    zone = ZoneInfo("America/New_York")
    days = {local_day(int(time.time() * 1000), zone).isoformat()}
    acme_days = {local_day(int(time.time() * 1000), ZoneInfo("UTC")).isoformat()}
    batch = [event(*ids, count=n) for n, ids in enumerate(CRAFTED, start=1)]
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {OTHER_SERVER_KEY}"}
        url = f"{pipeline.collector_url}/v1/events"
        async with session.post(url, json={"batch": batch}, headers=headers) as response:
            assert (response.status, await response.json()) == (202, {"accepted": len(batch)})
        # The same ids in another service are another namespace.
        acme = [{**batch[-1], "service_id": "SP-ACME"}, {**batch[-2], "service_id": "SP-ACME"}]
        headers = {"Authorization": f"Bearer {ACME_SERVER_KEY}"}
        async with session.post(url, json={"batch": acme}, headers=headers) as response:
            assert response.status == 202
        for account in PIXEL_ACCOUNTS:
            params = {"sdr_s": "SP-OTHER", "sdr_o": account, "sdr_u": "u", "sdr_m": "m",
                      "sdr_a": "x"}  # fmt: skip
            async with session.get(f"{pipeline.collector_url}/pixel.gif", params=params) as hit:
                assert hit.status == 200
        days.add(local_day(int(time.time() * 1000), zone).isoformat())
        acme_days.add(local_day(int(time.time() * 1000), ZoneInfo("UTC")).isoformat())
        await pipeline.drain()
        for day in sorted(acme_days):
            assert pipeline.flush(day).returncode == 0
        for day in sorted(days):
            flushed = pipeline.run_command(
                "rollup", "flush", "--service", "SP-OTHER", "--day", day, "--force"
            )
            assert flushed.returncode == 0, flushed.stderr

        expected = Counter({ids: n for n, ids in enumerate(CRAFTED, start=1)})
        expected.update({(account, "u", "m", "x"): 1 for account in PIXEL_ACCOUNTS})
        assert pipeline.durable_counts("SP-OTHER") == expected
        assert pipeline.durable_counts("SP-ACME") == {CRAFTED[-1]: 26, CRAFTED[-2]: 25}

        first, last = min(days), max(days)
        headers = {"Authorization": f"Bearer {OTHER_READ_KEY}"}
        for account in sorted({ids[0] for ids in expected}):
            async with session.get(usage_url(pipeline, account, first, last),
                                   headers=headers) as response:  # fmt: skip
                assert response.status == 200, account
                rows = (await response.json())["rows"]
            assert sorted((r["user_id"], r["module"], r["activity"], r["count"]) for r in rows) == (
                sorted((u, m, a, n) for (acc, u, m, a), n in expected.items() if acc == account)
            ), account
