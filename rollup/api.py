"""The query API: usage, accounts, summaries and inactive users, behind each service's keys."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from common.days import local_day, parse_day
from common.events import MAX_ATTRIBUTES, MAX_ID_CHARS, FieldError, parse_attributes, text_problem
from common.http import bearer_key, json_error, json_response, key_matches, service_of_key
from common.keys import KeyLayout
from common.metrics import metrics
from common.openapi import openapi_handler
from common.redis_client import connect
from common.services import Service
from common.settings import Settings
from rollup.flusher import Flusher
from rollup.limits import MAX_BODY_BYTES, MAX_RANGE_DAYS
from rollup.live import LiveBuckets
from rollup.openapi import API_OPENAPI
from rollup.ops import LagMonitor
from rollup.queries import UsageReader
from rollup.store import AccountUpdate, Store
from rollup.usage import group_rows, parse_by

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", dict[str, Service])
STORE = web.AppKey("store", Store)
LIVE = web.AppKey("live", LiveBuckets)
FLUSHER = web.AppKey("flusher", Flusher)
READER = web.AppKey("reader", UsageReader)
MONITOR = web.AppKey("monitor", LagMonitor)

SAMPLER_STOP_S = 10.0
ACCOUNT_BODY_FIELDS = {"parent_id", "name", "account_type", "product_id", "attributes"}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


CORS_HEADERS = {
    # Keys travel in the Authorization header, never in cookies, so any origin may ask.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, PUT, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer every refusal as {"error": message} with its status; allow CORS reads."""
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    try:
        response: web.StreamResponse = await handler(request)
    except ApiError as error:
        response = json_error(error.status, str(error))
    except web.HTTPNotFound:
        response = json_error(404, "no such endpoint")
    except web.HTTPForbidden:  # a directory under /ops/static
        response = json_error(403, "forbidden")
    except web.HTTPRequestEntityTooLarge:
        response = json_error(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    response.headers.update(CORS_HEADERS)
    return response


def authorized_service(request: web.Request, kind: str = "read") -> Service:
    """Return the service in the URL if the key is its own: else 401, 404 or 403."""
    services = request.app[SERVICES]
    key = bearer_key(request)
    if not key:
        raise ApiError(401, f"missing Authorization: Bearer <{kind} key>")
    owner = service_of_key(key, services.values(), kind)
    if owner is None:
        raise ApiError(401, f"invalid {kind} key")
    service_id = request.match_info["sid"]
    service = services.get(service_id)
    if service is None:
        raise ApiError(404, f"unknown service {service_id}")
    if owner.id != service.id:
        raise ApiError(
            403, f"this key cannot {'read' if kind == 'read' else 'change'} service {service_id}"
        )
    return service


def authorize_operator(request: web.Request) -> None:
    """Let only holders of an operator key (OPS_KEY) see the pipeline's internals."""
    operator_keys = request.app[SETTINGS].ops_keys
    if not operator_keys:
        raise ApiError(403, "no operator key is configured: set OPS_KEY")
    key = bearer_key(request)
    if not key:
        raise ApiError(401, "missing Authorization: Bearer <operator key>")
    if not key_matches(key, operator_keys):
        raise ApiError(401, "invalid operator key")


def checked_id(name: str, value: str) -> str:
    """Refuse an id no event could carry (which a database may not even take): 400."""
    problem = text_problem(value, MAX_ID_CHARS)
    if problem:
        raise ApiError(400, f"{name} {problem}")
    return value


def today_of(request: web.Request, service: Service) -> date:
    return local_day(request.app[FLUSHER].clock.now_ms(), service.timezone)


def day_range(request: web.Request, service: Service) -> tuple[date, date]:
    today = today_of(request, service)
    try:
        first_day = parse_day(request.query.get("from", today.isoformat()))
        last_day = parse_day(request.query.get("to", first_day.isoformat()))
    except ValueError as error:
        raise ApiError(400, f"from/to: {error}") from None
    if last_day < first_day:
        raise ApiError(400, "to must not be before from")
    if last_day - first_day > timedelta(days=MAX_RANGE_DAYS):
        raise ApiError(400, f"a query spans at most {MAX_RANGE_DAYS} days")
    return first_day, last_day


def by_columns(request: web.Request) -> list[str]:
    try:
        return parse_by(request.query.get("by", "day"))
    except ValueError as error:
        raise ApiError(400, str(error)) from None


def flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false")
    if value not in ("true", "false"):
        raise ApiError(400, f"{name} must be true or false")
    return value == "true"


async def account_usage(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/accounts/{aid}/usage?from&to&rollup&by"""
    service = authorized_service(request)
    account_id = checked_id("account id", request.match_info["aid"])
    first_day, last_day = day_range(request, service)
    columns, rollup = by_columns(request), flag(request, "rollup")
    reader = request.app[READER]
    rows = await reader.usage(service.id, account_id, first_day, last_day, columns, rollup)
    if not rows and not await reader.known(service.id, account_id):
        raise ApiError(404, f"unknown account {account_id}")
    return json_response({"rows": rows})


async def user_usage(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/users/{uid}/usage?account=AID&from&to&by"""
    service = authorized_service(request)
    user_id = checked_id("user id", request.match_info["uid"])
    account_id = request.query.get("account")
    if not account_id:
        raise ApiError(400, "account is required")
    checked_id("account", account_id)
    first_day, last_day = day_range(request, service)
    columns = by_columns(request)
    reader = request.app[READER]
    rows = await reader.rows(service.id, [account_id], first_day, last_day, user_id)
    return json_response({"rows": group_rows(rows, columns)})


async def account_detail(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/accounts/{aid}"""
    service = authorized_service(request)
    account_id = checked_id("account id", request.match_info["aid"])
    detail = await request.app[READER].detail(service.id, account_id)
    if detail is None:
        raise ApiError(404, f"unknown account {account_id}")
    return json_response(detail)


def account_update(service: Service, account_id: str, body: object, day: date) -> AccountUpdate:
    """Validate a PUT body into an update; only the fields sent are changed."""
    checked_id("account id", account_id)
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    unknown = sorted(set(body) - ACCOUNT_BODY_FIELDS)
    if unknown:
        raise ApiError(400, f"{unknown[0]} is not a known field")
    fields: dict[str, Any] = {}
    for name in ("parent_id", "name", "account_type", "product_id"):
        if name not in body:
            continue
        value = body[name]
        if value is None and name == "parent_id":
            fields[name] = None  # a root from now on
            continue
        problem = text_problem(value, MAX_ID_CHARS)
        if problem:
            raise ApiError(400, f"{name} {problem}")
        fields[name] = value
    attributes = body.get("attributes", {})
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise ApiError(400, f"attributes must be an object of at most {MAX_ATTRIBUTES} entries")
    errors: list[FieldError] = []
    attributes = parse_attributes(attributes, "attributes", errors)
    if errors:
        raise ApiError(400, errors[0].message)
    return AccountUpdate(service.id, account_id, day, fields, attributes)


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
    return json_response(detail)


async def account_summary(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/accounts/{aid}/summary"""
    service = authorized_service(request)
    account_id = checked_id("account id", request.match_info["aid"])
    reader = request.app[READER]
    if not await reader.known(service.id, account_id):
        raise ApiError(404, f"unknown account {account_id}")
    return json_response(await reader.summary(service.id, account_id, today_of(request, service)))


async def inactive_users(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/inactive-users?module=M[&activity=A]&days=N[&account=AID]"""
    service = authorized_service(request)
    module = request.query.get("module")
    if not module:
        raise ApiError(400, "module is required")
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        raise ApiError(400, f"days must be a whole number from 1 to {MAX_RANGE_DAYS}") from None
    if not 1 <= days <= MAX_RANGE_DAYS:
        raise ApiError(400, f"days must be a whole number from 1 to {MAX_RANGE_DAYS}")
    account_id = request.query.get("account")
    if account_id is not None:
        checked_id("account", account_id)
    reader = request.app[READER]
    if account_id is not None and not await reader.known(service.id, account_id):
        raise ApiError(404, f"unknown account {account_id}")
    users = await reader.inactive_users(
        service.id, module, request.query.get("activity"), days, today_of(request, service),
        account_id,
    )  # fmt: skip
    return json_response({"users": users})


async def flush_status(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/flush-status: last flushed day, days waiting and why."""
    service = authorized_service(request)
    flusher = request.app[FLUSHER]
    progress = await flusher.live.progress()
    return json_response(await flusher.service_status(service, progress, flusher.clock.now_ms()))


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when Kafka, Redis, SQL and every kind of worker are up; else 503 naming what is down."""
    monitor = request.app[MONITOR]
    checks = {
        "kafka": "ok" if monitor.kafka_reachable else "down",
        "redis": "ok" if monitor.redis_reachable else "down",
    }
    try:
        await request.app[STORE].committed(["readiness-probe"])
        checks["sql"] = "ok"
    except Exception:  # any driver error means the store is not usable
        checks["sql"] = "down"
    for component in ("collector", "aggregator", "flusher"):
        checks[component] = "ok" if monitor.components.get(component) else "down"
    down = sorted(name for name, state in checks.items() if state != "ok")
    return json_response(
        {"status": "ready" if not down else "unavailable", "checks": checks, "down": down},
        status=200 if not down else 503,
    )


async def ops_lag(request: web.Request) -> web.Response:
    """GET /v1/ops/lag: per-partition lag and status, totals, history, rejects, flushes."""
    authorize_operator(request)
    return json_response(await request.app[MONITOR].report())


async def ops_page(request: web.Request) -> web.Response:
    """The dashboard page holds no data: it asks for the operator key and calls /v1/ops/lag."""
    page = resources.files("rollup").joinpath("static/ops.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")


async def clients(app: web.Application) -> AsyncIterator[None]:
    """Open the SQL store and Redis for the app's lifetime."""
    settings = app[SETTINGS]
    store = await Store.open(settings.database_url)
    redis = connect(settings.redis_url)
    app[STORE] = store
    app[LIVE] = LiveBuckets(redis, KeyLayout(settings.redis_key_prefix, settings.usage_topic))
    app[FLUSHER] = Flusher(app[LIVE], store, app[SERVICES], settings, settings.clock())
    app[READER] = UsageReader(store, app[LIVE])
    app[MONITOR] = LagMonitor(settings, redis, app[FLUSHER])
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(app[MONITOR].run(stop_sampling))
    try:
        yield
    finally:
        stop_sampling.set()
        try:
            await asyncio.wait_for(sampler, SAMPLER_STOP_S)
        except TimeoutError:
            log.warning("lag sampler did not stop within %.0f s", SAMPLER_STOP_S)
        await redis.aclose()
        await store.close()


def build_app(settings: Settings, services: Mapping[str, Service]) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[SERVICES] = dict(services)
    app.cleanup_ctx.append(clients)
    # Any id may hold braces, dots or (percent-encoded) slashes: one whole segment each.
    prefix = "/v1/services/{sid:[^/]+}"
    account = prefix + "/accounts/{aid:[^/]+}"
    app.router.add_get(account + "/usage", account_usage)
    app.router.add_get(account + "/summary", account_summary)
    app.router.add_get(account, account_detail)
    app.router.add_put(account, put_account)
    app.router.add_get(prefix + "/users/{uid:[^/]+}/usage", user_usage)
    app.router.add_get(prefix + "/inactive-users", inactive_users)
    app.router.add_get(prefix + "/flush-status", flush_status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_handler(API_OPENAPI))
    app.router.add_get("/v1/ops/lag", ops_lag)
    app.router.add_get("/ops", ops_page)
    app.router.add_static(
        "/ops/static", Path(str(resources.files("rollup").joinpath("static/vendor")))
    )
    return app
