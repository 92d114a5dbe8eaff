"""Refusals as JSON with their status, CORS for reads, and answers checked against their models."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from api.limits import MAX_BODY_BYTES
from common.http import json_error, json_response


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


def answer(body: object, model: type[msgspec.Struct], status: int = 200) -> web.Response:
    """Answer body as the model the document shows: a body that does not fit it is a bug."""
    return json_response(msgspec.convert(body, model), status)
