"""The operators' endpoints: /v1/ops/lag behind the operator key, and the dashboard page."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from api import models
from api.access import authorize_operator
from api.context import MONITOR
from api.errors import answer


async def ops_lag(request: web.Request) -> web.Response:
    """GET /v1/ops/lag: per-partition lag and status, totals, history, rejects, flushes."""
    authorize_operator(request)
    return answer(await request.app[MONITOR].report(), models.LagReport)


async def ops_page(request: web.Request) -> web.Response:
    """The dashboard page holds no data: it asks for the operator key and calls /v1/ops/lag."""
    page = resources.files("ops").joinpath("static/ops.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")


def add_ops_routes(app: web.Application) -> None:
    """Serve the operators' view from app: the lag report, the page and its scripts."""
    app.router.add_get("/v1/ops/lag", ops_lag)
    app.router.add_get("/ops", ops_page)
    app.router.add_static(
        "/ops/static", Path(str(resources.files("ops").joinpath("static/vendor")))
    )
