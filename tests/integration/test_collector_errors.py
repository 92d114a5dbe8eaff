"""Bad input gets an exact 4xx from the real collector, and nothing reaches Kafka."""

from __future__ import annotations

import gzip
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from collector.pixel import GIF
from tests.support import ACME_SERVER_KEY, OTHER_SERVER_KEY, Pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def collector(
    servers: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    pipeline = Pipeline(Path(tmp_path_factory.mktemp("collector")))
    await pipeline.create_topic()
    await pipeline.start_collector()
    yield pipeline
    pipeline.stop_all()


@pytest.fixture
async def nothing_reaches_kafka(collector: Pipeline) -> AsyncIterator[None]:
    before = await collector.end_offsets()
    yield
    assert await collector.end_offsets() == before


PIXEL_ERRORS = [
    ({"sdr_o": "XYZ", "sdr_m": "M", "sdr_a": "A"}, "sdr_s is required"),
    ({"sdr_s": "SP-ACME", "sdr_m": "M", "sdr_a": "A"}, "sdr_o is required"),
    ({"sdr_s": "SP-ACME", "sdr_o": "XYZ", "sdr_a": "A"}, "sdr_m is required when activity is given"),
    ({"sdr_s": "SP-ACME", "sdr_o": "XYZ", "sdr_m": "M"}, "sdr_a is required when module is given"),
    ({"sdr_s": "SP-NOPE", "sdr_o": "XYZ"}, "sdr_s is not a known service"),
    ({"sdr_s": "SP-ACME", "sdr_o": "x" * 257}, "sdr_o must be 1 to 256 characters"),
    ({"sdr_s": "SP-ACME", "sdr_o": "a\tb"}, "sdr_o must not contain control characters"),
    ({"sdr_s": "SP-ACME", "sdr_o": "X", "sdr_m": "M", "sdr_a": "a" * 129},
     "sdr_a must be 1 to 128 characters"),
    ({"sdr_s": "SP-ACME", "sdr_o": "X", "sdr_o.Plan": "p" * 1025},
     "sdr_o.<name> attribute values must be at most 1024 characters"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "reason"), PIXEL_ERRORS)
async def test_invalid_pixel_hit_is_400_with_reason_and_gif(
    collector: Pipeline, nothing_reaches_kafka: None, params: dict[str, str], reason: str
) -> None:
    url = f"{collector.collector_url}/pixel.gif"
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        assert response.status == 400
        assert response.headers["X-Usage-Error"] == reason
        assert response.headers["Content-Type"] == "image/gif"
        assert response.headers["Cache-Control"] == "no-store"
        assert (await response.read()).startswith(b"GIF89a")


PRIVATE = "QZX<script>alert(1)</script>"
PRIVACY_HITS = [
    {"sdr_s": PRIVATE, "sdr_o": PRIVATE},
    {"sdr_s": "SP-ACME", "sdr_o": PRIVATE + "\n"},
    {"sdr_s": "SP-ACME", "sdr_o": "X", "sdr_a": PRIVATE},
    {"sdr_s": "SP-ACME", "sdr_o": "X", "sdr_m": PRIVATE * 20, "sdr_a": "A"},
    {"sdr_s": "SP-ACME", "sdr_o": "X", "sdr_u." + PRIVATE: "\x00" + PRIVATE},
    {"sdr_s": "SP-ACME", "sdr_o": "X", "sdr_o." + PRIVATE * 10: PRIVATE},
]


@pytest.mark.parametrize("params", PRIVACY_HITS)
async def test_pixel_never_echoes_its_input(
    collector: Pipeline, nothing_reaches_kafka: None, params: dict[str, str]
) -> None:
    url = f"{collector.collector_url}/pixel.gif"
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "POST"):
            arguments: dict[str, Any] = {"params": params} if method == "GET" else {"data": params}
            async with session.request(method, url, **arguments) as response:
                assert response.status == 400
                assert await response.read() == GIF
                assert "QZX" not in str(response.headers)


async def post(
    collector: Pipeline, body: bytes, key: str | None = ACME_SERVER_KEY, **headers: str
) -> tuple[int, Any]:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{collector.collector_url}/v1/events", data=io.BytesIO(body), headers=headers
        ) as response,
    ):
        return response.status, await response.json()


def events(count: int, **fields: Any) -> bytes:
    event = {"account_id": "XYZ", "module": "Reports", "activity": "Export", **fields}
    return orjson.dumps({"batch": [event] * count})


API_ERRORS = [
    (b"{not json", ACME_SERVER_KEY, 400, {"error": "body is not valid JSON"}),
    (events(1), None, 401, {"error": "missing Authorization: Bearer <server key>"}),
    (events(1), "wrong-key-0123456789", 401, {"error": "invalid server key"}),
    (events(1, service_id="SP-ACME"), OTHER_SERVER_KEY, 403,
     {"error": "this key cannot send events for service SP-ACME"}),
    (events(1001), ACME_SERVER_KEY, 413, {"error": "a request holds at most 1000 events"}),
    (orjson.dumps({"batch": [{"account_id": "x" * 1000}] * 1100}), ACME_SERVER_KEY, 413,
     {"error": "request body is larger than 1048576 bytes"}),
    (orjson.dumps({"batch": []}), ACME_SERVER_KEY, 400,
     {"error": "batch must hold at least one event"}),
    (orjson.dumps({"batch": {}}), ACME_SERVER_KEY, 400,
     {"error": "batch must be a list of event objects"}),
    (orjson.dumps({"batch": [{"service_id": [], "account_id": "X"}, {"service_id": {}, "account_id": "X"}]}),
     ACME_SERVER_KEY, 400, {"errors": [{"index": 0, "field": "service_id", "message": "must be a string"},
                                       {"index": 1, "field": "service_id", "message": "must be a string"}]}),
]  # fmt: skip


@pytest.mark.parametrize(("body", "key", "status", "answer"), API_ERRORS)
async def test_bad_server_request_gets_exact_error(
    collector: Pipeline,
    nothing_reaches_kafka: None,
    body: bytes,
    key: str | None,
    status: int,
    answer: dict[str, Any],
) -> None:
    assert await post(collector, body, key) == (status, answer)


async def test_body_that_is_not_its_content_encoding_is_400(
    collector: Pipeline, nothing_reaches_kafka: None
) -> None:
    assert await post(collector, b"not gzip", **{"Content-Encoding": "gzip"}) == (
        400, {"error": "body cannot be decoded"}
    )  # fmt: skip


UNREADABLE_FORMS = [
    (b"sdr_s=SP-ACME&sdr_o=\xff", "application/x-www-form-urlencoded", {}),
    (b"--b\r\nbroken\r\n--b--\r\n", "multipart/form-data; boundary=b", {}),
    (b"not gzip", "application/x-www-form-urlencoded", {"Content-Encoding": "gzip"}),
]


@pytest.mark.parametrize(("body", "content_type", "headers"), UNREADABLE_FORMS)
async def test_pixel_post_that_is_not_a_readable_form_is_400(
    collector: Pipeline, nothing_reaches_kafka: None, body: bytes, content_type: str,
    headers: dict[str, str],
) -> None:  # fmt: skip
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{collector.collector_url}/pixel.gif", data=io.BytesIO(body),
            headers={"Content-Type": content_type, **headers},
        ) as response,
    ):  # fmt: skip
        assert response.status == 400
        assert response.headers["X-Usage-Error"] == "request body is not a readable form"
        assert response.headers["Content-Type"] == "image/gif"


async def test_pixel_post_larger_than_the_limit_is_413(
    collector: Pipeline, nothing_reaches_kafka: None
) -> None:
    body = b"sdr_s=SP-ACME&sdr_o=X&sdr_o.Notes=" + b"n" * (1024 * 1024)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{collector.collector_url}/pixel.gif", data=io.BytesIO(body),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response,
    ):  # fmt: skip
        assert response.status == 413
        assert response.headers["X-Usage-Error"] == "request body is larger than 1048576 bytes"
        assert response.headers["Content-Type"] == "image/gif"


async def test_one_invalid_event_refuses_the_whole_batch(
    collector: Pipeline, nothing_reaches_kafka: None
) -> None:
    batch = [
        {"account_id": "XYZ", "module": "Reports", "activity": "Export"},
        {"account_id": "XYZ", "activity": "Export", "count": 0, "colour": "red"},
        {"account_id": "XYZ", "module": "Reports", "activity": "Export",
         "timestamp": "2020-01-01T00:00:00+00:00"},
        {"account_id": "XYZ", "timestamp": "yesterday"},
        "not an object",
    ]  # fmt: skip
    assert await post(collector, orjson.dumps({"batch": batch})) == (
        400,
        {
            "errors": [
                {"index": 1, "field": "colour", "message": "is not a known field"},
                {"index": 1, "field": "module", "message": "is required when activity is given"},
                {"index": 1, "field": "count", "message": "must be a whole number from 1 to 1000000"},
                {"index": 2, "field": "timestamp", "message": "is more than 7 days in the past"},
                {"index": 3, "field": "timestamp",
                 "message": "must be an ISO 8601 time with a UTC offset"},
                {"index": 4, "field": "", "message": "must be a JSON object"},
            ]
        },
    )  # fmt: skip


async def test_new_names_past_the_service_limit_are_refused(
    collector: Pipeline, nothing_reaches_kafka: None
) -> None:
    # SP-ACME allows 5 modules in the test services file.
    batch = [{"account_id": "XYZ", "module": f"M{i}", "activity": "Use"} for i in range(6)]
    status, answer = await post(collector, orjson.dumps({"batch": batch}))
    assert status == 400
    assert answer["errors"] == [
        {"index": i, "field": "module",
         "message": "is new and would pass the service's limit of 5 modules"}
        for i in range(6)
    ]  # fmt: skip


async def test_gzip_batch_is_accepted(collector: Pipeline) -> None:
    before = await collector.end_offsets()
    body = gzip.compress(events(3, user_id="gz@acme.com"))
    assert await post(collector, body, **{"Content-Encoding": "gzip"}) == (202, {"accepted": 3})
    after = await collector.end_offsets()
    assert sum(after.values()) - sum(before.values()) == 1  # one account's events: one record


async def test_browser_collect_checks_origin_and_answers_cors(
    collector: Pipeline, nothing_reaches_kafka: None
) -> None:
    url = f"{collector.collector_url}/v1/collect"
    origin = collector.collector_url  # SP-ACME allows its collector's own origin (the demo)
    async with aiohttp.ClientSession() as session:
        async with session.options(url, headers={"Origin": origin}) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
        async with session.post(
            url, data='{"batch": [{"service_id": "SP-ACME", "account_id": "X", "count": 0}]}',
            headers={"Origin": origin, "Content-Type": "text/plain"},
        ) as response:  # fmt: skip
            assert response.status == 400
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert await response.json() == {"errors": [
                {"index": 0, "field": "count", "message": "must be a whole number from 1 to 1000000"}
            ]}  # fmt: skip
        async with session.post(
            url, data='{"service_id": "SP-OTHER", "account_id": "X"}',
            headers={"Origin": origin, "Content-Type": "text/plain"},
        ) as response:  # fmt: skip
            assert (response.status, await response.json()) == (
                403, {"error": "origin not allowed for service SP-OTHER"}
            )  # fmt: skip
        async with session.post(
            url, data='{"service_id": ["SP-ACME"], "account_id": "X"}', headers={"Origin": origin}
        ) as response:  # fmt: skip
            assert (response.status, await response.json()) == (400, {"errors": [
                {"index": 0, "field": "service_id", "message": "must be a string"}
            ]})  # fmt: skip
        async with session.post(url, data="{}") as response:
            assert (response.status, await response.json()) == (
                403, {"error": "an Origin header is required"}
            )  # fmt: skip


async def test_browser_collect_accepts_a_beacon(collector: Pipeline) -> None:
    before = await collector.end_offsets()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{collector.collector_url}/v1/collect",
            data='{"batch": [{"service_id": "SP-ACME", "account_id": "X", "module": "Reports", '
            '"activity": "Export", "event_id": "b-1"}]}',
            headers={"Origin": collector.collector_url, "Content-Type": "text/plain"},
        ) as response,
    ):
        assert (response.status, await response.json()) == (202, {"accepted": 1})
    after = await collector.end_offsets()
    assert sum(after.values()) - sum(before.values()) == 1
