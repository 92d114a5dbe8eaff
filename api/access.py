"""Who may ask: a service's read or server key, or the operator key."""

from __future__ import annotations

from aiohttp import web

from api.context import SERVICES, SETTINGS
from api.errors import ApiError
from common.http import bearer_key, key_matches, service_of_key
from common.services import Service


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
