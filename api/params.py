"""The query parameters and path ids of the API, checked: a bad one is a 400 naming it."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from api.context import FLUSHER
from api.errors import ApiError
from api.limits import MAX_RANGE_DAYS
from api.usage import parse_by
from common.contract import MAX_ID_CHARS
from common.days import local_day, parse_day
from common.events import text_problem
from common.services import Service


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
