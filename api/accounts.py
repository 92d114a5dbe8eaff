"""Accounts: their detail, and changes by the server key (parent, name, type, attributes)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
import orjson
from aiohttp import web
from msgspec import UnsetType

from api import models
from api.access import authorized_service
from api.context import READER, STORE
from api.errors import ApiError, answer
from api.params import checked_id, today_of
from common.contract import MAX_ATTRIBUTES, MAX_ID_CHARS
from common.event_rules import attributes_fit, texts_clean
from common.events import FieldError, parse_attributes, text_problem
from common.services import Service
from rollup.store import AccountUpdate

ACCOUNT_BODY_FIELDS = set(models.AccountUpdate.__struct_fields__)


async def account_detail(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/accounts/{aid}"""
    service = authorized_service(request)
    account_id = checked_id("account id", request.match_info["aid"])
    detail = await request.app[READER].detail(service.id, account_id)
    if detail is None:
        raise ApiError(404, f"unknown account {account_id}")
    return answer(detail, models.Account)


def account_update(service: Service, account_id: str, body: object, day: date) -> AccountUpdate:
    """Decode a PUT body into an update; only the fields sent are changed."""
    checked_id("account id", account_id)
    try:
        change = msgspec.convert(body, models.AccountUpdate)
    except msgspec.ValidationError:
        raise ApiError(400, account_update_problem(body)) from None
    attributes = {} if isinstance(change.attributes, UnsetType) else change.attributes
    fields = {
        name: value
        for name in ("parent_id", "name", "account_type", "product_id")
        if not isinstance(value := getattr(change, name), UnsetType)
    }
    texts = [
        *attributes,
        *(v for v in [*fields.values(), *attributes.values()] if isinstance(v, str)),
    ]
    if not attributes_fit(attributes) or not texts_clean(texts):
        raise ApiError(400, account_update_problem(body))
    return AccountUpdate(service.id, account_id, day, fields, attributes)


def account_update_problem(body: object) -> str:
    """Say what is wrong with a PUT body the types refused, as the API always has."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    unknown = sorted(set(body) - ACCOUNT_BODY_FIELDS)
    if unknown:
        return f"{unknown[0]} is not a known field"
    for name in ("parent_id", "name", "account_type", "product_id"):
        value = body.get(name)
        if name in body and not (value is None and name == "parent_id"):
            problem = text_problem(value, MAX_ID_CHARS)
            if problem:
                return f"{name} {problem}"
    attributes = body.get("attributes", {})
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        return f"attributes must be an object of at most {MAX_ATTRIBUTES} entries"
    errors: list[FieldError] = []
    parse_attributes(attributes, "attributes", errors)
    return errors[0].message if errors else "body is not a valid account update"


async def put_account(request: web.Request) -> web.Response:
    """PUT /v1/services/{sid}/accounts/{aid} with the server key; 409 for a cycle."""
    service = authorized_service(request, "server")
    account_id = request.match_info["aid"]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise ApiError(400, "body is not valid JSON") from None
    except web.RequestPayloadError:  # e.g. Content-Encoding: gzip on a body that is not
        raise ApiError(400, "body cannot be decoded") from None
    update = account_update(service, account_id, body, today_of(request, service))
    refused = await request.app[STORE].apply_updates([update], datetime.now(UTC))
    if refused:
        parent = update.fields.get("parent_id")
        raise ApiError(409, f"parent {parent} would make a cycle: it is {account_id} or below it")
    detail = await request.app[READER].detail(service.id, account_id)
    return answer(detail, models.Account)
