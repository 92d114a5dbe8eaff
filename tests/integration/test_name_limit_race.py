"""Two collector processes racing to register new module and activity names can never take
a service past its limits together (SP-ACME: 5 modules, 20 activities)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from common.redis_client import connect
from tests.support import ACME_SERVER_KEY, Pipeline, free_port, wait_http

pytestmark = pytest.mark.e2e


async def post_event(
    session: aiohttp.ClientSession, url: str, module: str, activity: str
) -> tuple[int, Any]:
    event = {"service_id": "SP-ACME", "account_id": "ACC", "module": module, "activity": activity}
    headers = {"Authorization": f"Bearer {ACME_SERVER_KEY}"}
    async with session.post(f"{url}/v1/events", json=event, headers=headers) as response:
        return response.status, await response.json()


def refusal(kind: str, limit: int, plural: str) -> tuple[int, Any]:
    message = f"is new and would pass the service's limit of {limit} {plural}"
    return 400, {"errors": [{"index": 0, "field": kind, "message": message}]}


async def test_two_collectors_racing_never_pass_the_name_limits(pipeline: Pipeline) -> None:
    await pipeline.start_collector()
    second_url = f"http://127.0.0.1:{free_port()}"
    second = pipeline.start("collector-2", "collector", "--port", second_url.rsplit(":", 1)[1])
    await wait_http(f"{second_url}/healthz", second)
    urls = [pipeline.collector_url, second_url]
    async with aiohttp.ClientSession() as session:
        modules = [f"module-{n}" for n in range(40)]
        answers = await asyncio.gather(
            *(post_event(session, urls[n % 2], module, "A") for n, module in enumerate(modules))
        )
        accepted_modules = {m for m, a in zip(modules, answers, strict=True) if a[0] == 202}
        assert sorted(answers, key=str) == sorted(
            [(202, {"accepted": 1})] * 5 + [refusal("module", 5, "modules")] * 35, key=str
        )
        module = sorted(accepted_modules)[0]
        activities = [f"activity-{n}" for n in range(60)]
        answers = await asyncio.gather(
            *(post_event(session, urls[n % 2], module, a) for n, a in enumerate(activities))
        )
        accepted_activities = {a for a, r in zip(activities, answers, strict=True) if r[0] == 202}
        # "A" is one of the 20 already, so 19 of the new ones get in.
        assert sorted(answers, key=str) == sorted(
            [(202, {"accepted": 1})] * 19 + [refusal("activity", 20, "activities")] * 41, key=str
        )
    redis = connect(pipeline.settings.redis_url, decode_responses=True)
    try:
        assert await redis.smembers(pipeline.keys.names("SP-ACME", "module")) == accepted_modules
        assert await redis.smembers(pipeline.keys.names("SP-ACME", "activity")) == (
            accepted_activities | {"A"}
        )
    finally:
        await redis.aclose()
    on_kafka = await pipeline.topic_events()
    assert sorted((e.module, e.activity) for e in on_kafka) == sorted(
        [(m, "A") for m in accepted_modules] + [(module, a) for a in accepted_activities]
    )
