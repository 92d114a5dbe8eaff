"""POST /v1/events: single events or batches from product back ends, with a server key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from collector.bodies import decode_events, service_ids_in, validate_batch
from collector.context import CLOCK, LIMITS, PRODUCER, RATE_LIMITS, SERVICES
from collector.metrics import ENDPOINTS, EVENTS, child
from collector.models import Accepted
from common.contract import FieldErrors, FieldProblem
from common.events import FieldError
from common.http import bearer_key, json_error, json_response, service_of_key
from publishing.names import limit_errors
from publishing.producer import Unavailable

MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_S = "5"


async def read_events(request: web.Request) -> list[Any] | web.Response:
    """Read a JSON body of one event or {"batch": [...]}; an error response if it is unusable."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    except web.RequestPayloadError:  # e.g. Content-Encoding: gzip on a body that is not
        return json_error(400, "body cannot be decoded")
    if len(body) > MAX_BODY_BYTES:
        return json_error(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    return decode_events(body)


async def rate_limited(
    request: web.Request, service_ids: Iterable[str], kind: str
) -> web.Response | None:
    """Spend a request of kind for each service; a 429 when one of them is over its limit."""
    services, limits = request.app[SERVICES], request.app[RATE_LIMITS]
    for service_id in sorted(set(service_ids)):
        retry_after_s = await limits.retry_after_s(services[service_id], kind)
        if retry_after_s:
            return json_error(
                429,
                f"service {service_id} is over its rate limit; retry later",
                {"Retry-After": str(retry_after_s)},
            )
    return None


def errors_response(errors: list[tuple[int, FieldError]]) -> web.Response:
    problems = [FieldProblem(index, error.field, error.message) for index, error in errors]
    return json_response(FieldErrors(problems), status=400)


async def accept_events(
    request: web.Request, batch: list[Any], default_service_id: str | None
) -> web.Response:
    """Validate, check limits and publish a whole batch; 202 once Kafka has all of it."""
    services = request.app[SERVICES]
    endpoint = ENDPOINTS.get(request.path, request.path)
    events, errors = validate_batch(
        batch, services, default_service_id, request.app[CLOCK].now_ms()
    )
    if errors:
        child(EVENTS, endpoint, "rejected").inc(len(batch))
        return errors_response(errors)
    try:
        refused = await limit_errors(request.app[LIMITS], services, events)
        if refused:
            return errors_response(refused)
        await request.app[PRODUCER].publish(events)
    except Unavailable:
        return json_error(
            503, "events cannot be stored right now; retry later", {"Retry-After": RETRY_AFTER_S}
        )
    child(EVENTS, endpoint, "accepted").inc(len(events))
    return json_response(Accepted(len(events)), status=202)


async def post_events(request: web.Request) -> web.Response:
    """Accept events from a product back end holding the service's server key."""
    key = bearer_key(request)
    if not key:
        return json_error(401, "missing Authorization: Bearer <server key>")
    service = service_of_key(key, request.app[SERVICES].values(), "server")
    if service is None:
        return json_error(401, "invalid server key")
    batch = await read_events(request)
    if isinstance(batch, web.Response):
        return batch
    services = request.app[SERVICES]
    foreign = sorted(service_ids_in(batch, services) - {service.id})
    if foreign:
        return json_error(403, f"this key cannot send events for service {foreign[0]}")
    return await rate_limited(request, [service.id], "server") or await accept_events(
        request, batch, service.id
    )
