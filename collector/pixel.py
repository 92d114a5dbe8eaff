"""The tracking pixel: Totango's sdr_* parameters in, a 1x1 GIF out."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from collector.context import CLOCK, LIMITS, PRODUCER, RATE_LIMITS, SERVICES
from collector.metrics import EVENTS, child
from collector.server_events import MAX_BODY_BYTES
from common.contract import Event
from common.event_rules import texts_clean, usage_event
from common.events import FieldError, InvalidEvent, UsageEvent, validate_event
from common.services import Service
from publishing.names import limit_errors
from publishing.producer import Unavailable

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
RETRY_AFTER_S = "5"

PIXEL_PARAMETERS = {
    "sdr_s": "service_id",
    "sdr_o": "account_id",
    "sdr_u": "user_id",
    "sdr_a": "activity",
    "sdr_m": "module",
    "sdr_odn": "account_name",
    "sdr_o.account_name": "account_name",
    "sdr_o.parent_id": "parent_id",
}
PARAMETER_OF_FIELD = {
    "service_id": "sdr_s",
    "account_id": "sdr_o",
    "user_id": "sdr_u",
    "activity": "sdr_a",
    "module": "sdr_m",
    "account_name": "sdr_odn",
    "parent_id": "sdr_o.parent_id",
    "account_attributes": "sdr_o.<name>",
    "user_attributes": "sdr_u.<name>",
}


def pixel_event(params: Mapping[str, str]) -> dict[str, Any]:
    """Map Totango pixel parameters to an event object; unknown parameters are ignored."""
    event: dict[str, Any] = {}
    account_attributes: dict[str, str] = {}
    user_attributes: dict[str, str] = {}
    for name, value in params.items():
        if not value:
            continue
        field = PIXEL_PARAMETERS.get(name)
        if field is not None:
            event.setdefault(field, value)
        elif name.startswith("sdr_o."):
            account_attributes.setdefault(name[len("sdr_o.") :], value)
        elif name.startswith("sdr_u."):
            user_attributes.setdefault(name[len("sdr_u.") :], value)
    if account_attributes:
        event["account_attributes"] = account_attributes
    if user_attributes:
        event["user_attributes"] = user_attributes
    return event


def hit_event(
    params: Mapping[str, str], services: Mapping[str, Service], received_ms: int
) -> UsageEvent:
    """Convert a hit into the contract's Event and check it; InvalidEvent names the first error."""
    raw = pixel_event(params)
    try:
        typed = msgspec.convert(raw, Event)
    except msgspec.ValidationError:
        typed = None
    if typed is not None and texts_clean([*params.keys(), *params.values()]):
        event = usage_event(typed, services, received_ms)
        if event is not None:
            return event
    return validate_event(raw, services, received_ms)


def pixel_error(error: FieldError) -> str:
    """Describe an invalid hit in a fixed string that never echoes the input."""
    parameter = PARAMETER_OF_FIELD.get(error.field)
    return f"{parameter} {error.message}" if parameter else "invalid hit"


def gif(status: int, error: str = "", retry_after_s: str = RETRY_AFTER_S) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if error:
        headers["X-Usage-Error"] = error
    if status in (429, 503):
        headers["Retry-After"] = retry_after_s
    return web.Response(status=status, body=GIF, content_type="image/gif", headers=headers)


async def pixel(request: web.Request) -> web.Response:
    """Accept one hit; 200 once Kafka has acknowledged it."""
    received_ms = request.app[CLOCK].now_ms()
    params: Mapping[str, str]
    if request.method == "POST":
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            return gif(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
        # Not UTF-8, a broken multipart body, a Content-Encoding it does not have.
        except (ValueError, HttpProcessingError, web.RequestPayloadError):
            return gif(400, "request body is not a readable form")
        params = {name: value for name, value in form.items() if isinstance(value, str)}
    else:
        params = request.query
    services = request.app[SERVICES]
    service = services.get(params.get("sdr_s", ""))
    if service is not None:
        retry_after_s = await request.app[RATE_LIMITS].retry_after_s(service, "public")
        if retry_after_s:
            return gif(429, "too many requests for this service", str(retry_after_s))
    try:
        event = hit_event(params, services, received_ms)
    except InvalidEvent as invalid:
        child(EVENTS, "pixel", "rejected").inc()
        return gif(400, pixel_error(invalid.errors[0]))
    try:
        refused = await limit_errors(request.app[LIMITS], services, [event])
        if refused:
            return gif(400, pixel_error(refused[0][1]))
        await request.app[PRODUCER].publish([event])
    except Unavailable:
        return gif(503, "events cannot be stored right now")
    child(EVENTS, "pixel", "accepted").inc()
    return gif(200)
