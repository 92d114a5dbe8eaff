"""The OpenAPI documents are valid and list exactly the routes each app serves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from api.accounts import ACCOUNT_BODY_FIELDS
from api.app import build_app as build_api
from api.models import Status
from api.openapi import API_OPENAPI
from collector.main import build_app as build_collector
from collector.openapi import COLLECTOR_OPENAPI
from common.services import Service, load_services
from common.settings import Settings
from ops.lag import STATUSES
from tests.support import SERVICES_TOML

# aiohttp names a static route by its prefix; the document names the file in it.
STATIC_PATHS = {"/ops/static": "/ops/static/{filename}"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

AppBuilder = Callable[[Settings, Mapping[str, Service]], web.Application]
APPS: list[tuple[AppBuilder, dict[str, Any]]] = [
    (build_collector, COLLECTOR_OPENAPI),
    (build_api, API_OPENAPI),
]


@pytest.fixture
def services(tmp_path: Path) -> dict[str, Service]:
    services_file = tmp_path / "services.toml"
    services_file.write_text(SERVICES_TOML)
    return load_services(services_file)


def routed(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, path) the app's router answers, less the HEAD routes aiohttp adds."""
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        routes.add((route.method, STATIC_PATHS.get(path, path)))
    return routes


def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.mark.parametrize(("build_app", "spec"), APPS, ids=["collector", "api"])
def test_document_lists_exactly_the_routes_of_the_app(
    build_app: AppBuilder, spec: dict[str, Any], services: dict[str, Service]
) -> None:
    app = build_app(Settings.from_env({}), services)
    assert documented(spec) == routed(app)


@pytest.mark.parametrize("spec", [COLLECTOR_OPENAPI, API_OPENAPI], ids=["collector", "api"])
def test_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_account_update_schema_lists_the_fields_the_api_reads() -> None:
    schema = API_OPENAPI["components"]["schemas"]["AccountUpdate"]
    assert set(schema["properties"]) == ACCOUNT_BODY_FIELDS


def test_lag_statuses_in_the_document_are_the_lag_model_s() -> None:
    assert get_args(Status) == STATUSES
