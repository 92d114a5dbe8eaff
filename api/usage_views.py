"""Usage, summaries and inactive users of an account, its tree or a user."""

from __future__ import annotations

from aiohttp import web

from api import models
from api.access import authorized_service
from api.context import READER
from api.errors import ApiError, answer
from api.limits import MAX_RANGE_DAYS
from api.params import by_columns, checked_id, day_range, flag, today_of
from api.usage import group_rows


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
    return answer({"rows": rows}, models.Usage)


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
    return answer({"rows": group_rows(rows, columns)}, models.Usage)


async def account_summary(request: web.Request) -> web.Response:
    """GET /v1/services/{sid}/accounts/{aid}/summary"""
    service = authorized_service(request)
    account_id = checked_id("account id", request.match_info["aid"])
    reader = request.app[READER]
    if not await reader.known(service.id, account_id):
        raise ApiError(404, f"unknown account {account_id}")
    summary = await reader.summary(service.id, account_id, today_of(request, service))
    return answer(summary, models.Summary)


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
    return answer({"users": users}, models.InactiveUsers)
