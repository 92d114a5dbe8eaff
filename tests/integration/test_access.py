"""Access control on the real processes: every endpoint against no key, a wrong key, another
service's key and its own key; rotated keys; keys never in the logs; rate limits shared by
two collector processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import (
    ACME_READ_KEY,
    ACME_SERVER_KEY,
    LIMITED_SERVER_KEY,
    OPERATOR_KEY,
    OTHER_READ_KEY,
    OTHER_SERVER_KEY,
    OTHER_SERVER_KEY_ROTATED,
    Pipeline,
    free_port,
    wait_http,
)

pytestmark = pytest.mark.e2e

WRONG_KEY = "not-a-key-of-anybody-0123"
ACCOUNT = "ACC-1"
EVENT = {"service_id": "SP-ACME", "account_id": ACCOUNT, "module": "M", "activity": "A"}
SERVICE = "/v1/services/SP-ACME"

# (method, path, body, kind of key, status with the right key)
ENDPOINTS: list[tuple[str, str, Any, str, int]] = [
    ("POST", "/v1/events", EVENT, "server", 202),
    ("PUT", f"{SERVICE}/accounts/{ACCOUNT}", {"name": "Acme"}, "server", 200),
    ("GET", f"{SERVICE}/accounts/{ACCOUNT}", None, "read", 200),
    ("GET", f"{SERVICE}/accounts/{ACCOUNT}/usage", None, "read", 200),
    ("GET", f"{SERVICE}/accounts/{ACCOUNT}/summary", None, "read", 200),
    ("GET", f"{SERVICE}/users/joe/usage?account={ACCOUNT}", None, "read", 200),
    ("GET", f"{SERVICE}/inactive-users?module=M", None, "read", 200),
    ("GET", f"{SERVICE}/flush-status", None, "read", 200),
    ("GET", "/v1/ops/lag", None, "operator", 200),
]
# Open on purpose, whatever key comes with the request: they hold no customer's data.
PUBLIC = [("collector", "/healthz"), ("collector", "/openapi.json"), ("collector", "/usage.js"),
          ("collector", "/metrics"), ("api", "/healthz"), ("api", "/openapi.json"),
          ("api", "/ops"), ("api", "/metrics")]  # fmt: skip
KEYS = {
    "server": {"own": ACME_SERVER_KEY, "other service": OTHER_SERVER_KEY,
               "other kind": ACME_READ_KEY},
    "read": {"own": ACME_READ_KEY, "other service": OTHER_READ_KEY,
             "other kind": ACME_SERVER_KEY},
    "operator": {"own": OPERATOR_KEY, "other service": ACME_READ_KEY,
                 "other kind": ACME_SERVER_KEY},
}  # fmt: skip


def expected(method: str, path: str, kind: str, key_state: str, ok: int) -> tuple[int, str]:
    """The exact status and error message for one cell of the matrix."""
    if key_state == "none":
        return 401, f"missing Authorization: Bearer <{kind} key>"
    if key_state in ("wrong", "other kind") or (kind == "operator" and key_state != "own"):
        return 401, f"invalid {kind} key"
    if key_state == "other service":
        if path == "/v1/events":
            return 403, "this key cannot send events for service SP-ACME"
        return 403, f"this key cannot {'change' if method == 'PUT' else 'read'} service SP-ACME"
    return ok, ""


@pytest.fixture(scope="module")
async def running(
    servers: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(Path(tmp_path_factory.mktemp("access")))
    await pipeline.create_topic()
    await pipeline.start_collector()
    await pipeline.start_api()
    yield pipeline
    pipeline.stop_all()
    await pipeline.delete_redis_keys()


async def call(
    session: aiohttp.ClientSession, method: str, url: str, body: Any, key: str | None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json()


def base_url(pipeline: Pipeline, path: str) -> str:
    return pipeline.collector_url if path == "/v1/events" else pipeline.api_url


@pytest.mark.parametrize("key_state", ["none", "wrong", "other service", "other kind", "own"])
async def test_access_matrix(running: Pipeline, key_state: str) -> None:
    async with aiohttp.ClientSession() as session:
        status, _ = await call(
            session, "PUT", f"{running.api_url}{SERVICE}/accounts/{ACCOUNT}", {}, ACME_SERVER_KEY
        )
        assert status == 200  # the account exists, so reads can succeed
        outcomes = []
        for method, path, body, kind, _ in ENDPOINTS:
            key = {"none": None, "wrong": WRONG_KEY}.get(key_state, KEYS[kind].get(key_state))
            status, answer = await call(session, method, base_url(running, path) + path, body, key)
            error = answer.get("error", "") if isinstance(answer, dict) else ""
            outcomes.append((method, path, status, error))
        public = []
        for app, path in PUBLIC:
            url = (running.collector_url if app == "collector" else running.api_url) + path
            key = {"none": None, "wrong": WRONG_KEY}.get(key_state, ACME_READ_KEY)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with session.get(url, headers=headers) as response:
                public.append((app, path, response.status))
    assert outcomes == [
        (method, path, *expected(method, path, kind, key_state, ok))
        for method, path, _, kind, ok in ENDPOINTS
    ]
    assert public == [(app, path, 200) for app, path in PUBLIC]


async def test_unknown_service_in_the_path_is_404_for_a_valid_key(running: Pipeline) -> None:
    async with aiohttp.ClientSession() as session:
        status, answer = await call(
            session, "GET", f"{running.api_url}/v1/services/SP-NOPE/flush-status", None,
            ACME_READ_KEY,
        )  # fmt: skip
    assert (status, answer) == (404, {"error": "unknown service SP-NOPE"})


async def test_both_keys_work_during_a_rotation(running: Pipeline) -> None:
    event = {**EVENT, "service_id": "SP-OTHER"}
    async with aiohttp.ClientSession() as session:
        for key in (OTHER_SERVER_KEY, OTHER_SERVER_KEY_ROTATED):
            status, answer = await call(
                session, "POST", f"{running.collector_url}/v1/events", event, key
            )
            assert (status, answer) == (202, {"accepted": 1})


async def test_keys_never_reach_the_logs(running: Pipeline) -> None:
    await test_access_matrix(running, "wrong")
    await test_access_matrix(running, "own")
    logs = running.log("collector") + running.log("api")
    for key in (ACME_SERVER_KEY, ACME_READ_KEY, OTHER_SERVER_KEY, OPERATOR_KEY, WRONG_KEY):
        assert key not in logs


async def test_ops_are_refused_when_no_operator_key_is_set(servers: None, tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, overrides={"OPS_KEY": ""})
    await pipeline.create_topic()
    await pipeline.start_api()
    try:
        async with aiohttp.ClientSession() as session:
            status, answer = await call(
                session, "GET", f"{pipeline.api_url}/v1/ops/lag", None, OPERATOR_KEY
            )
    finally:
        pipeline.stop_all()
    assert (status, answer) == (403, {"error": "no operator key is configured: set OPS_KEY"})


async def pixel_hit(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    params = {"sdr_s": "SP-LIMITED", "sdr_o": "ACC", "sdr_m": "M", "sdr_a": "A"}
    async with session.get(f"{url}/pixel.gif", params=params) as response:
        body = await response.read()
        assert body.startswith(b"GIF89a")
        reason = response.headers.get("X-Usage-Error", "")
        return response.status, response.headers.get("Retry-After", ""), reason


async def test_rate_limits_hold_across_two_collector_processes(pipeline: Pipeline) -> None:
    """SP-LIMITED allows 1 public and 1 server request per second, for all collectors together."""
    await pipeline.start_collector()
    second_url = f"http://127.0.0.1:{free_port()}"
    second = pipeline.start("collector-2", "collector", "--port", second_url.rsplit(":", 1)[1])
    await wait_http(f"{second_url}/healthz", second)
    limited = (429, "1", "too many requests for this service")
    async with aiohttp.ClientSession() as session:
        hits = await asyncio.gather(
            *(pixel_hit(session, url) for url in [pipeline.collector_url, second_url] * 6)
        )
        assert sorted(hits) == [(200, "", "")] + [limited] * 11
        await asyncio.sleep(1.1)  # one token again

        beacon = {"service_id": "SP-LIMITED", "account_id": "ACC", "module": "M", "activity": "A"}
        origin = {"Origin": pipeline.collector_url}
        answers = []
        for url in (pipeline.collector_url, second_url):
            async with session.post(f"{url}/v1/collect", json=beacon, headers=origin) as response:
                answers.append((response.status, response.headers.get("Retry-After"),
                                await response.json()))  # fmt: skip
        assert answers == [
            (202, None, {"accepted": 1}),
            (429, "1", {"error": "service SP-LIMITED is over its rate limit; retry later"}),
        ]

        posts = []
        for key, event in [(LIMITED_SERVER_KEY, beacon)] * 2 + [(ACME_SERVER_KEY, EVENT)] * 10:
            posts.append(
                await call(session, "POST", f"{second_url}/v1/events", event, key)
            )  # fmt: skip
        assert (
            posts
            == [
                (202, {"accepted": 1}),
                (429, {"error": "service SP-LIMITED is over its rate limit; retry later"}),
            ]
            + [(202, {"accepted": 1})] * 10
        )  # server posts are not limited unless configured
    # What was refused changed nothing: only the accepted events are in Kafka.
    assert len(await pipeline.topic_events()) == 1 + 1 + 1 + 10
