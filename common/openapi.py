"""What the collector's and the query API's OpenAPI documents share, and the handler serving one.

Body schemas are generated from the typed models the handlers decode and answer with
(msgspec.json.schema_components), so a body changed in code changes the contract with it;
what is written here by hand is what types cannot say: paths, parameters, security schemes,
headers and descriptions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import orjson
from aiohttp import web

from common.contract import Error, Event, FieldErrors, Health

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
CONTRACT_VERSION = "1"
REF_TEMPLATE = "#/components/schemas/{name}"


def ref(name: str) -> Schema:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def model_schemas(*models: Any) -> dict[str, Schema]:
    """The schemas of these types and of every type they hold, generated from the types."""
    _, components = msgspec.json.schema_components(models, ref_template=REF_TEMPLATE)
    return components


def schema_of(annotation: Any) -> Schema:
    """The schema of a field type (an id, a name), for a parameter."""
    return msgspec.json.schema(annotation)


def shared_schemas() -> dict[str, Schema]:
    """The event and the answers both apps give, with what the types cannot say."""
    schemas = model_schemas(Event, Error, FieldErrors, Health)
    schemas["Event"]["dependentRequired"] = {"activity": ["module"], "module": ["activity"]}
    return schemas


SECURITY_SCHEMES: dict[str, Schema] = {
    "serverKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A server key of the service (server_key in the services file).",
    },
    "readKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A read key of the service (read_key in the services file).",
    },
    "operatorKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An operator key (setting OPS_KEY; two during a rotation).",
    },
}

RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def json_content(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def json_answer(description: str, schema: Schema, headers: Schema | None = None) -> Schema:
    answer: Schema = {"description": description, **json_content(schema)}
    if headers:
        answer["headers"] = headers
    return answer


def error_answer(description: str, headers: Schema | None = None) -> Schema:
    """A response of {"error": message}."""
    return json_answer(description, ref("Error"), headers)


def text_answer(description: str, media_type: str) -> Schema:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def operation(summary: str, responses: Mapping[str, Schema], **fields: Any) -> Schema:
    """An operation object; fields adds parameters, requestBody, security, description."""
    return {"summary": summary, **fields, "responses": dict(responses)}


def query_parameter(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


# Routes served the same way by both apps.
COMMON_PATHS: dict[str, Schema] = {
    "/healthz": {
        "get": operation(
            "The process is alive", {"200": json_answer("Alive.", ref("Health"))}, tags=["health"]
        )
    },
    "/metrics": {
        "get": operation(
            "Prometheus metrics",
            {"200": text_answer("The Prometheus text format.", "text/plain")},
            tags=["health"],
        )
    },
    "/openapi.json": {
        "get": operation(
            "This document",
            {
                "200": json_answer(
                    "The OpenAPI document.",
                    {"type": "object", "required": ["openapi", "info", "paths"]},
                )
            },
            tags=["health"],
        )
    },
}


def document(
    title: str,
    description: str,
    paths: Mapping[str, Schema],
    schemas: Mapping[str, Schema],
    security_schemes: tuple[str, ...] = (),
) -> Schema:
    """Assemble an OpenAPI document from the app's own paths and schemas and the shared ones."""
    components: Schema = {"schemas": {**shared_schemas(), **schemas}}
    if security_schemes:
        components["securitySchemes"] = {name: SECURITY_SCHEMES[name] for name in security_schemes}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": CONTRACT_VERSION, "description": description},
        "paths": {**paths, **COMMON_PATHS},
        "components": components,
    }


def openapi_handler(spec: Schema) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Make the GET /openapi.json handler serving spec, encoded once."""
    body = orjson.dumps(spec)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return openapi_json
