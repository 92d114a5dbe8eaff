"""The query API's refusals: account updates checked like events, every refusal in JSON."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.accounts import account_update
from api.errors import ApiError, json_errors
from api.limits import MAX_BODY_BYTES
from common.services import Service
from rollup.store import AccountUpdate

SERVICE = Service("SP-1", ZoneInfo("UTC"), ("s" * 16,), ("r" * 16,))
DAY = date(2026, 11, 23)


INVALID_UPDATES = [
    ("x" * 257, {"name": "n"}, "account id must be 1 to 256 characters"),
    ("a\x00b", {"name": "n"}, "account id must not contain control characters"),
    ("A", [], "body must be a JSON object"),
    ("A", {"colour": "red"}, "colour is not a known field"),
    ("A", {"attributes": {"": 1}}, "attribute names must be 1 to 128 characters without control characters"),
    ("A", {"attributes": {"Plan": {"tier": 1}}}, "attribute values must be strings, numbers or booleans"),
    ("A", {"attributes": {"Plan": "p" * 1025}}, "attribute values must be at most 1024 characters"),
    ("A", {"attributes": {f"a{i}": i for i in range(51)}}, "attributes must be an object of at most 50 entries"),
]  # fmt: skip


@pytest.mark.parametrize(("account_id", "body", "message"), INVALID_UPDATES)
def test_invalid_account_update_is_refused(account_id: str, body: Any, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        account_update(SERVICE, account_id, body, DAY)
    assert (refused.value.status, str(refused.value)) == (400, message)


def test_valid_account_update_changes_only_what_is_sent() -> None:
    body = {"parent_id": None, "attributes": {"Licenses": 4, "Plan": "gold", "Trial": False}}
    assert account_update(SERVICE, "A", body, DAY) == AccountUpdate(
        "SP-1", "A", DAY, {"parent_id": None}, {"Licenses": 4, "Plan": "gold", "Trial": False}
    )


FRAMEWORK_REFUSALS = [
    ("PUT", "/echo", b"x" * (MAX_BODY_BYTES + 1), 413, {"error": "request body is larger than 262144 bytes"}),
    ("GET", "/static/files", None, 403, {"error": "forbidden"}),
    ("GET", "/nowhere", None, 404, {"error": "no such endpoint"}),
]  # fmt: skip


async def read_body(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def test_framework_refusals_are_json(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_put("/echo", read_body)
    app.router.add_static("/static", tmp_path)
    async with TestClient(TestServer(app)) as client:
        for method, path, body, status, answer in FRAMEWORK_REFUSALS:
            async with client.request(method, path, data=body) as response:
                assert (response.status, await response.json()) == (status, answer)
