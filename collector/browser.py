"""Browser entry points: POST /v1/collect (beacons, CORS by allowed_origins) and usage.js."""

from __future__ import annotations

import hashlib
from importlib import resources

from aiohttp import web

from collector.bodies import service_ids_in
from collector.context import SERVICES
from collector.server_events import accept_events, rate_limited, read_events
from common.http import json_error

CORS_MAX_AGE_S = "600"
SNIPPET_MAX_AGE_S = 300


def allowed_anywhere(request: web.Request, origin: str) -> bool:
    return any(origin in service.allowed_origins for service in request.app[SERVICES].values())


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": CORS_MAX_AGE_S,
        "Vary": "Origin",
    }


async def collect_preflight(request: web.Request) -> web.Response:
    """Answer a CORS preflight for an origin some service allows; 403 otherwise."""
    origin = request.headers.get("Origin", "")
    if not origin or not allowed_anywhere(request, origin):
        return json_error(403, "origin not allowed")
    return web.Response(status=204, headers=cors_headers(origin))


async def collect(request: web.Request) -> web.Response:
    """Accept beacons from usage.js: no key, but the page's Origin must be allowed.

    Same validation and atomicity as /v1/events; text/plain bodies (sendBeacon) welcome.
    """
    origin = request.headers.get("Origin", "")
    if not origin:
        return json_error(403, "an Origin header is required")
    if not allowed_anywhere(request, origin):
        return json_error(403, "origin not allowed")
    batch = await read_events(request)
    if isinstance(batch, web.Response):
        response = batch
    else:
        services = request.app[SERVICES]
        named = service_ids_in(batch, services)
        refused = sorted(sid for sid in named if origin not in services[sid].allowed_origins)
        if refused:
            response = json_error(403, f"origin not allowed for service {refused[0]}")
        else:
            response = await rate_limited(request, named, "public") or await accept_events(
                request, batch, default_service_id=None
            )
    response.headers.update(cors_headers(origin))
    return response


def snippet() -> tuple[bytes, str]:
    source = resources.files("collector").joinpath("static/usage.js").read_bytes()
    return source, '"' + hashlib.sha256(source).hexdigest()[:20] + '"'


SNIPPET, SNIPPET_ETAG = snippet()


async def usage_js(request: web.Request) -> web.Response:
    """Serve the browser snippet with an ETag; 304 when the browser has it already."""
    headers = {
        "ETag": SNIPPET_ETAG,
        "Cache-Control": f"public, max-age={SNIPPET_MAX_AGE_S}",
        "Access-Control-Allow-Origin": "*",
    }
    if request.headers.get("If-None-Match") == SNIPPET_ETAG:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=SNIPPET, content_type="application/javascript", charset="utf-8", headers=headers
    )


async def demo(request: web.Request) -> web.Response:
    page = resources.files("collector").joinpath("static/demo.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")
