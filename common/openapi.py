"""What the collector's and the query API's OpenAPI documents share, and the handler serving one.

The documents are plain data built from the same constants the handlers validate with, so
a limit changed in code changes the contract with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from common.events import (
    MAX_ATTRIBUTE_NAME_CHARS,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_COUNT,
    MAX_EVENT_ID_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
)

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
CONTRACT_VERSION = "1"
# The characters common.events.CONTROL_CHARACTERS refuses, as an ECMA-262 pattern.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def text(max_chars: int, description: str = "") -> Schema:
    """An id or name as common.events.text_problem accepts it."""
    schema: Schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": max_chars,
        "pattern": NO_CONTROL_CHARACTERS,
    }
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def strict_object(properties: Mapping[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these properties, the required ones always present."""
    schema: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


def attributes(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "maxProperties": MAX_ATTRIBUTES,
        "propertyNames": text(MAX_ATTRIBUTE_NAME_CHARS),
        "additionalProperties": {
            "type": ["string", "number", "boolean"],
            "maxLength": MAX_ATTRIBUTE_VALUE_CHARS,
        },
    }


EVENT = {
    **strict_object(
        {
            "service_id": text(
                MAX_ID_CHARS, "The service; with a server key, defaults to its own."
            ),
            "account_id": text(MAX_ID_CHARS),
            "user_id": text(MAX_ID_CHARS, "Absent for account-level usage."),
            "module": text(MAX_NAME_CHARS, "Given together with activity."),
            "activity": text(
                MAX_NAME_CHARS, "Without activity (and module) the event only updates the account."
            ),
            "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "default": 1},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601 with a UTC offset, at most 7 days old or 10 minutes "
                "ahead; defaults to the time the collector received the event.",
            },
            "event_id": text(
                MAX_EVENT_ID_CHARS, "Events of a service with the same id count once."
            ),
            "account_name": text(MAX_ID_CHARS),
            "parent_id": text(MAX_ID_CHARS),
            "account_type": text(MAX_ID_CHARS),
            "product_id": text(MAX_ID_CHARS),
            "account_attributes": attributes(
                f"At most {MAX_ATTRIBUTES} attributes with user_attributes together."
            ),
            "user_attributes": attributes("Attributes of user_id."),
        },
        required=("account_id",),
    ),
    "description": "One usage event. A new module or activity beyond the service's limit "
    "is refused (400); names the service already has still pass.",
    "dependentRequired": {"activity": ["module"], "module": ["activity"]},
}

ERROR = strict_object({"error": {"type": "string"}}, required=("error",))
FIELD_ERRORS = strict_object(
    {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": strict_object(
                {
                    "index": {"type": "integer", "minimum": 0},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
                required=("index", "field", "message"),
            ),
        }
    },
    required=("errors",),
)
HEALTH = strict_object({"status": {"const": "ok"}}, required=("status",))
SHARED_SCHEMAS: dict[str, Schema] = {
    "Event": EVENT,
    "Error": ERROR,
    "FieldErrors": FIELD_ERRORS,
    "Health": HEALTH,
}

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
    components: Schema = {"schemas": {**SHARED_SCHEMAS, **schemas}}
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
