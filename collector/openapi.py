"""The collector's OpenAPI document (GET /openapi.json): §4 of the product specification."""

from __future__ import annotations

from collector.browser import CORS_MAX_AGE_S, SNIPPET_MAX_AGE_S
from collector.models import Accepted, Readiness
from collector.server_events import MAX_BODY_BYTES
from common.contract import MAX_BATCH_EVENTS, Batch, RequiredId, RequiredName
from common.openapi import (
    RETRY_AFTER,
    Schema,
    document,
    error_answer,
    json_answer,
    json_content,
    model_schemas,
    operation,
    query_parameter,
    ref,
    schema_of,
    text_answer,
)

ID, NAME = schema_of(RequiredId), schema_of(RequiredName)
PIXEL_PARAMETERS: dict[str, tuple[Schema, str]] = {
    "sdr_s": (ID, "Service id."),
    "sdr_o": (ID, "Account id."),
    "sdr_u": (ID, "User id."),
    "sdr_m": (NAME, "Module; given together with sdr_a."),
    "sdr_a": (NAME, "Activity; without it the hit only updates attributes."),
    "sdr_odn": (ID, "Account display name."),
    "sdr_o.account_name": (ID, "Account display name (when sdr_odn is absent)."),
    "sdr_o.parent_id": (ID, "Parent account id."),
}
REQUIRED_PIXEL_PARAMETERS = ("sdr_s", "sdr_o")
PIXEL_DESCRIPTION = (
    "Totango-compatible parameters. `sdr_o.<name>` and `sdr_u.<name>` set account and user "
    "attributes; other parameters (`r`, `sdrurl`, `sdr_heartbeat`...) are ignored. The answer "
    "is always the same 1x1 GIF with `Cache-Control: no-store`; only the status and headers "
    "tell what happened."
)

NO_STORE = {"description": "Always `no-store`.", "required": True, "schema": {"const": "no-store"}}
USAGE_ERROR = {
    "description": "Why the hit was not accepted (never echoes the input).",
    "required": True,
    "schema": {"type": "string"},
}


def gif_answer(description: str, **headers: Schema) -> Schema:
    return {
        "description": description,
        "headers": {"Cache-Control": NO_STORE, **headers},
        "content": {"image/gif": {"schema": {"type": "string", "contentMediaType": "image/gif"}}},
    }


PIXEL_ANSWERS = {
    "200": gif_answer("Kafka has acknowledged the event."),
    "400": gif_answer("An invalid hit: nothing is stored.", **{"X-Usage-Error": USAGE_ERROR}),
    "429": gif_answer(
        "The service's rate limit is passed: nothing is stored.",
        **{"Retry-After": RETRY_AFTER, "X-Usage-Error": USAGE_ERROR},
    ),
    "503": gif_answer(
        "Kafka did not acknowledge in time: the hit may or may not have been stored.",
        **{"Retry-After": RETRY_AFTER, "X-Usage-Error": USAGE_ERROR},
    ),
}
PIXEL_FORM = {
    "type": "object",
    "properties": {name: schema for name, (schema, _) in PIXEL_PARAMETERS.items()},
    "required": list(REQUIRED_PIXEL_PARAMETERS),
    "additionalProperties": {"type": "string"},
}

ALLOW_ORIGIN = {
    "description": "The request's Origin.",
    "required": True,
    "schema": {"type": "string"},
}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": ALLOW_ORIGIN,
    "Vary": {"required": True, "schema": {"const": "Origin"}},
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": {"required": True, "schema": {"const": "POST, OPTIONS"}},
    "Access-Control-Allow-Headers": {"required": True, "schema": {"const": "Content-Type"}},
    "Access-Control-Max-Age": {
        "required": True,
        "schema": {"type": "integer", "const": int(CORS_MAX_AGE_S)},
    },
}
ORIGIN = {
    "name": "Origin",
    "in": "header",
    "required": True,
    "description": "The page's origin: it must be in the service's allowed_origins.",
    "schema": {"type": "string"},
}


def event_answers(cors: bool) -> dict[str, Schema]:
    """What /v1/events and /v1/collect answer once past their key or origin check."""
    headers = CORS_HEADERS if cors else None
    retry = {"Retry-After": RETRY_AFTER}
    return {
        "202": json_answer(
            "Kafka has acknowledged every event of the request.", ref("Accepted"), headers
        ),
        "400": json_answer(
            "Nothing is accepted: `errors` lists every invalid event field (index in the "
            "batch, field, message); `error` says why the body as a whole is unusable.",
            {"oneOf": [ref("FieldErrors"), ref("Error")]},
            headers,
        ),
        "413": error_answer(
            f"More than {MAX_BATCH_EVENTS} events or {MAX_BODY_BYTES} bytes.", headers
        ),
        "429": error_answer(
            "The service's rate limit is passed: nothing is accepted.",
            {**(headers or {}), **retry},
        ),
        "503": error_answer(
            "Kafka did not acknowledge in time: the events may or may not have been stored; "
            "retry with the same event_id values.",
            {**(headers or {}), **retry},
        ),
    }


PATHS: dict[str, Schema] = {
    "/pixel.gif": {
        "get": operation(
            "Record a tracking-pixel hit",
            PIXEL_ANSWERS,
            description=PIXEL_DESCRIPTION,
            tags=["events"],
            parameters=[
                query_parameter(name, schema, description, name in REQUIRED_PIXEL_PARAMETERS)
                for name, (schema, description) in PIXEL_PARAMETERS.items()
            ],
        ),
        "post": operation(
            "Record a tracking-pixel hit sent as a form",
            {
                **PIXEL_ANSWERS,
                "400": gif_answer(
                    "An invalid hit, or a body that is not a readable form: nothing is stored.",
                    **{"X-Usage-Error": USAGE_ERROR},
                ),
                "413": gif_answer(
                    f"A body of more than {MAX_BODY_BYTES} bytes: nothing is stored.",
                    **{"X-Usage-Error": USAGE_ERROR},
                ),
            },
            description=PIXEL_DESCRIPTION,
            tags=["events"],
            requestBody={
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": PIXEL_FORM}},
            },
        ),
    },
    "/v1/events": {
        "post": operation(
            "Send events from a product back end",
            {
                **event_answers(cors=False),
                "401": error_answer("The server key is missing or wrong."),
                "403": error_answer("An event names a service the key does not belong to."),
            },
            description="Atomic: every event is validated first, and any invalid one refuses "
            "the whole request. A gzip body (`Content-Encoding: gzip`) is accepted.",
            tags=["events"],
            security=[{"serverKey": []}],
            requestBody={
                "required": True,
                **json_content({"oneOf": [ref("Event"), ref("Batch")]}),
            },
        )
    },
    "/v1/collect": {
        "post": operation(
            "Send events from usage.js in a browser",
            {
                **event_answers(cors=True),
                "403": error_answer(
                    "No Origin, or an Origin the service (or any service) does not allow."
                ),
            },
            description="No key: the page's Origin must be allowed by each event's service. "
            "Same validation and atomicity as /v1/events. `navigator.sendBeacon` sends the "
            "same JSON as `text/plain`.",
            tags=["events"],
            parameters=[ORIGIN],
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [ref("BrowserEvent"), ref("BrowserBatch")]}
                    },
                    "text/plain": {
                        "schema": {
                            "type": "string",
                            "description": "The same JSON document, as text.",
                        }
                    },
                },
            },
        ),
        "options": operation(
            "CORS preflight for /v1/collect",
            {
                "204": {"description": "The origin is allowed.", "headers": PREFLIGHT_HEADERS},
                "403": error_answer("No Origin, or an Origin no service allows."),
            },
            tags=["events"],
            parameters=[ORIGIN],
        ),
    },
    "/usage.js": {
        "get": operation(
            "The browser snippet",
            {
                "200": {
                    **text_answer("The script.", "application/javascript"),
                    "headers": {
                        "ETag": {"required": True, "schema": {"type": "string"}},
                        "Cache-Control": {
                            "required": True,
                            "schema": {"const": f"public, max-age={SNIPPET_MAX_AGE_S}"},
                        },
                    },
                },
                "304": {
                    "description": "The browser's copy (If-None-Match) is current.",
                    "headers": {"ETag": {"required": True, "schema": {"type": "string"}}},
                },
            },
            tags=["browser"],
            parameters=[
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                }
            ],
        )
    },
    "/demo": {
        "get": operation(
            "A demo invoicing page using usage.js",
            {"200": text_answer("The page.", "text/html")},
            description="The page's script reads its query parameters; the server does not.",
            tags=["browser"],
            parameters=[
                query_parameter("service", {"type": "string"}, "Service id."),
                query_parameter("account", {"type": "string"}, "Account id."),
                query_parameter("key", {"type": "string"}, "A read key, to show today's counts."),
                query_parameter("api", {"type": "string"}, "The query API's base URL."),
            ],
        )
    },
    "/readyz": {
        "get": operation(
            "Ready while events can be published to Kafka",
            {
                "200": json_answer("Kafka answers.", ref("Readiness")),
                "503": json_answer(
                    "Kafka is unreachable, or the producer is being replaced; `reason` says which.",
                    ref("Readiness"),
                ),
            },
            tags=["health"],
        )
    },
}


def schemas() -> dict[str, Schema]:
    """The collector's bodies from its types; a browser's events must name their service."""
    generated = model_schemas(Batch, Accepted, Readiness)
    browser_batch = generated["Batch"]["properties"]["batch"]
    return {
        **generated,
        "BrowserEvent": {
            "allOf": [ref("Event"), {"required": ["service_id"], "properties": {"service_id": ID}}]
        },
        "BrowserBatch": {
            **generated["Batch"],
            "title": "BrowserBatch",
            "properties": {"batch": {**browser_batch, "items": ref("BrowserEvent")}},
        },
    }


COLLECTOR_OPENAPI = document(
    "Usage collector",
    "Takes usage events from tracking pixels, browsers (usage.js) and product back ends "
    "and answers 2xx only once Kafka has acknowledged them.",
    PATHS,
    schemas(),
    security_schemes=("serverKey",),
)
