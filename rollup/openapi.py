"""The query API's OpenAPI document (GET /openapi.json): §4 of the product specification."""

from __future__ import annotations

from common.events import MAX_ATTRIBUTES, MAX_ID_CHARS
from common.openapi import (
    Schema,
    document,
    error_answer,
    json_answer,
    json_content,
    nullable,
    operation,
    query_parameter,
    ref,
    strict_object,
    text,
    text_answer,
)
from rollup.lag import STATUSES
from rollup.limits import MAX_BODY_BYTES, MAX_RANGE_DAYS
from rollup.usage import BY_COLUMNS

DAY = {"type": "string", "format": "date"}
STRING = {"type": "string"}
COUNT = {"type": "integer", "minimum": 0}
READ_KEY: list[Schema] = [{"readKey": []}]
SERVER_KEY: list[Schema] = [{"serverKey": []}]
OPERATOR_KEY: list[Schema] = [{"operatorKey": []}]


def path_parameter(name: str, description: str, schema: Schema = STRING) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


ID = text(MAX_ID_CHARS)
SERVICE = path_parameter("sid", "Service id.")
ACCOUNT = path_parameter("aid", "Account id.", ID)
USER = path_parameter("uid", "User id.", ID)
FROM = query_parameter("from", DAY, "First day (service-local); default today.")
TO = query_parameter("to", DAY, f"Last day; default `from`; at most {MAX_RANGE_DAYS} days later.")
BY = query_parameter(
    "by",
    {"type": "string", "default": "day"},
    f"Comma-separated distinct names among {', '.join(BY_COLUMNS)}: the columns to sum by; "
    "empty for one total.",
)

KEY_REFUSALS = {
    "401": error_answer("The key is missing or wrong."),
    "403": error_answer("The key belongs to another service."),
}


def read_answers(success: Schema, not_found: str, bad_request: str = "") -> dict[str, Schema]:
    """The answers of an operation behind the read key."""
    answers = {"200": success, **KEY_REFUSALS, "404": error_answer(not_found)}
    if bad_request:
        answers["400"] = error_answer(bad_request)
    return answers


USAGE_ROW = strict_object(
    {"day": DAY, "module": STRING, "activity": STRING, "user_id": STRING, "count": COUNT},
    required=("count",),
)
USAGE = strict_object({"rows": {"type": "array", "items": ref("UsageRow")}}, required=("rows",))
ACCOUNT_DETAIL = strict_object(
    {
        "service_id": STRING,
        "account_id": STRING,
        "name": nullable(STRING),
        "account_type": nullable(STRING),
        "product_id": nullable(STRING),
        "attributes": {"type": "object", "description": "The latest value of each attribute."},
        "parent_id": nullable(STRING),
        "ancestors": {"type": "array", "items": STRING, "description": "Root first."},
        "children": {"type": "array", "items": STRING},
    },
    required=(
        "service_id",
        "account_id",
        "name",
        "account_type",
        "product_id",
        "attributes",
        "parent_id",
        "ancestors",
        "children",
    ),
)
ACCOUNT_UPDATE = {
    **strict_object(
        {
            "parent_id": {
                **nullable(text(MAX_ID_CHARS)),
                "description": "`null` makes the account a root.",
            },
            "name": text(MAX_ID_CHARS),
            "account_type": text(MAX_ID_CHARS),
            "product_id": text(MAX_ID_CHARS),
            "attributes": {"type": "object", "maxProperties": MAX_ATTRIBUTES},
        }
    ),
    "description": "Only the fields sent change.",
}


def top(*names: str) -> Schema:
    return {
        "type": "array",
        "maxItems": 5,
        "items": strict_object(
            {**{name: STRING for name in names}, "count": COUNT}, required=(*names, "count")
        ),
    }


WINDOWS = ("today", "yesterday", "last_3_days", "last_7_days", "last_14_days", "last_30_days")
SUMMARY = strict_object(
    {
        "account_id": STRING,
        "today": DAY,
        "counts": strict_object({name: COUNT for name in WINDOWS}, required=WINDOWS),
        "active_users_14_days": COUNT,
        "top_users": top("user_id"),
        "top_modules": top("module"),
        "top_activities": top("module", "activity"),
        "license_utilization": {
            "oneOf": [
                {"type": "null"},
                strict_object(
                    {
                        "licenses": {"type": "number"},
                        "active_users_14_days": COUNT,
                        "ratio": {"type": "number"},
                    },
                    required=("licenses", "active_users_14_days", "ratio"),
                ),
            ],
            "description": "Present when the account has a numeric `Licenses` attribute.",
        },
    },
    required=(
        "account_id",
        "today",
        "counts",
        "active_users_14_days",
        "top_users",
        "top_modules",
        "top_activities",
        "license_utilization",
    ),
)
INACTIVE_USERS = strict_object(
    {
        "users": {
            "type": "array",
            "items": strict_object(
                {
                    "user_id": STRING,
                    "account_id": STRING,
                    "last_active": DAY,
                    "last_used": nullable(DAY),
                },
                required=("user_id", "account_id", "last_active", "last_used"),
            ),
        }
    },
    required=("users",),
)
FLUSH_STATUS = strict_object(
    {
        "service_id": STRING,
        "timezone": STRING,
        "today": DAY,
        "last_flushed_day": nullable(DAY),
        "days_waiting": {
            "type": "array",
            "items": strict_object(
                {
                    "day": DAY,
                    "reason": STRING,
                    "partitions_behind": {"type": "array", "items": {"type": "integer"}},
                },
                required=("day", "reason", "partitions_behind"),
            ),
        },
    },
    required=("service_id", "timezone", "today", "last_flushed_day", "days_waiting"),
)
STATUS = {"enum": list(STATUSES)}
NUMBER = {"type": "number"}
NUMBERS = {"type": "array", "items": NUMBER}
PARTITION_LAG = strict_object(
    {
        "partition": {"type": "integer"},
        "log_end_offset": {"type": "integer"},
        "applied_offset": {"type": "integer", "description": "-1 when none."},
        "committed_offset": nullable({"type": "integer"}),
        "lag_messages": {**COUNT, "description": "Records not yet applied (exact)."},
        "lag_events": {**COUNT, "description": "Events in the records not yet applied."},
        "lag_seconds": NUMBER,
        "events_in_per_s": NUMBER,
        "events_out_per_s": NUMBER,
        "produced_events": {**COUNT, "description": "Events acknowledged to the collectors."},
        "applied_events": {**COUNT, "description": "Events in the records applied."},
        "owner": nullable(STRING),
        "last_applied_move": nullable({"type": "string", "format": "date-time"}),
        "status": STATUS,
        "reason": STRING,
    },
    required=(
        "partition",
        "log_end_offset",
        "applied_offset",
        "committed_offset",
        "lag_messages",
        "lag_events",
        "lag_seconds",
        "events_in_per_s",
        "events_out_per_s",
        "produced_events",
        "applied_events",
        "owner",
        "last_applied_move",
        "status",
        "reason",
    ),
)
LAG_REPORT = strict_object(
    {
        "at": {"type": "string", "format": "date-time"},
        "group": STRING,
        "topic": STRING,
        "kafka": {"enum": ["ok", "unreachable"]},
        "components": {
            "type": "object",
            "additionalProperties": COUNT,
            "description": "Live processes of each kind (collector, aggregator, flusher).",
        },
        "partitions": {"type": "array", "items": ref("PartitionLag")},
        "totals": strict_object(
            {
                "lag_messages": COUNT,
                "lag_events": COUNT,
                "max_lag_seconds": NUMBER,
                "status": STATUS,
                "events_in_per_s": NUMBER,
                "events_out_per_s": NUMBER,
                "records_in_per_s": NUMBER,
                "records_out_per_s": NUMBER,
            },
            required=(
                "lag_messages",
                "lag_events",
                "max_lag_seconds",
                "status",
                "events_in_per_s",
                "events_out_per_s",
                "records_in_per_s",
                "records_out_per_s",
            ),
        ),
        "rejects": {
            "type": "object",
            "additionalProperties": COUNT,
            "description": "Rejects by reason since the counters began.",
        },
        "history": strict_object(
            {
                "at": NUMBERS,
                "lag_messages": NUMBERS,
                "lag_events": NUMBERS,
                "lag_seconds": NUMBERS,
                "in_per_s": {**NUMBERS, "description": "Events per second produced."},
                "out_per_s": {**NUMBERS, "description": "Events per second applied."},
                "records_in_per_s": NUMBERS,
                "records_out_per_s": NUMBERS,
                "rejects_per_s": {"type": "object", "additionalProperties": NUMBERS},
            },
            required=(
                "at",
                "lag_messages",
                "lag_events",
                "lag_seconds",
                "in_per_s",
                "out_per_s",
                "records_in_per_s",
                "records_out_per_s",
                "rejects_per_s",
            ),
        ),
        "services": {"type": "array", "items": ref("FlushStatus")},
    },
    required=(
        "at",
        "group",
        "topic",
        "kafka",
        "components",
        "partitions",
        "totals",
        "rejects",
        "history",
        "services",
    ),
)
READINESS = strict_object(
    {
        "status": {"enum": ["ready", "unavailable"]},
        "checks": strict_object(
            {
                name: {"enum": ["ok", "down"]}
                for name in ("kafka", "redis", "sql", "collector", "aggregator", "flusher")
            },
            required=("kafka", "redis", "sql", "collector", "aggregator", "flusher"),
        ),
        "down": {"type": "array", "items": STRING},
    },
    required=("status", "checks", "down"),
)

SERVICE_PATH = "/v1/services/{sid}"
PATHS: dict[str, Schema] = {
    SERVICE_PATH + "/accounts/{aid}/usage": {
        "get": operation(
            "Usage of an account per day, module, activity or user",
            read_answers(
                json_answer("Summed rows; only the `by` columns are present.", ref("Usage")),
                "Unknown service, or an account with no usage and no record.",
                f"A bad account id, day, range (over {MAX_RANGE_DAYS} days), rollup or by.",
            ),
            description="Flushed days come from SQL, the others from the live buckets. "
            "With rollup=true the account's whole subtree counts.",
            tags=["usage"],
            security=READ_KEY,
            parameters=[
                SERVICE,
                ACCOUNT,
                FROM,
                TO,
                query_parameter(
                    "rollup",
                    {"enum": ["true", "false"], "default": "false"},
                    "Count the account's descendants too.",
                ),
                BY,
            ],
        )
    },
    SERVICE_PATH + "/accounts/{aid}/summary": {
        "get": operation(
            "Counts over the usual windows, active users, tops and license utilization",
            read_answers(
                json_answer("The summary.", ref("Summary")),
                "Unknown service or account.",
                "A bad account id.",
            ),
            tags=["accounts"],
            security=READ_KEY,
            parameters=[SERVICE, ACCOUNT],
        )
    },
    SERVICE_PATH + "/accounts/{aid}": {
        "get": operation(
            "An account: its fields, latest attributes, parent, ancestors and children",
            read_answers(
                json_answer("The account.", ref("Account")),
                "Unknown service or account.",
                "A bad account id.",
            ),
            tags=["accounts"],
            security=READ_KEY,
            parameters=[SERVICE, ACCOUNT],
        ),
        "put": operation(
            "Set an account's parent, name, type, product or attributes",
            {
                "200": json_answer("The account after the change.", ref("Account")),
                "400": error_answer("A bad account id, or a body that is not a valid update."),
                **KEY_REFUSALS,
                "404": error_answer("Unknown service."),
                "409": error_answer("The parent is the account or one of its descendants."),
                "413": error_answer(f"A body of more than {MAX_BODY_BYTES} bytes."),
            },
            tags=["accounts"],
            security=SERVER_KEY,
            parameters=[SERVICE, ACCOUNT],
            requestBody={"required": True, **json_content(ref("AccountUpdate"))},
        ),
    },
    SERVICE_PATH + "/users/{uid}/usage": {
        "get": operation(
            "Usage of one user in an account",
            read_answers(
                json_answer("Summed rows; only the `by` columns are present.", ref("Usage")),
                "Unknown service.",
                f"No account, a bad user or account id, day, range (over {MAX_RANGE_DAYS} days) "
                "or by.",
            ),
            tags=["usage"],
            security=READ_KEY,
            parameters=[
                SERVICE,
                USER,
                query_parameter("account", ID, "The user's account.", required=True),
                FROM,
                TO,
                BY,
            ],
        )
    },
    SERVICE_PATH + "/inactive-users": {
        "get": operation(
            "Users who did not use a module (or activity) lately",
            read_answers(
                json_answer("The inactive users.", ref("InactiveUsers")),
                "Unknown service or account.",
                "No module, a bad account id, or days out of range.",
            ),
            description="Users of the account's tree, or of the whole service without "
            "account, who did not use the module (and activity) in the last `days` days.",
            tags=["usage"],
            security=READ_KEY,
            parameters=[
                SERVICE,
                query_parameter("module", STRING, "Module.", required=True),
                query_parameter("activity", STRING, "Activity within the module."),
                query_parameter(
                    "days",
                    {"type": "integer", "minimum": 1, "maximum": MAX_RANGE_DAYS, "default": 30},
                    "The window, ending today.",
                ),
                query_parameter("account", ID, "Root of the account tree to look at."),
            ],
        )
    },
    SERVICE_PATH + "/flush-status": {
        "get": operation(
            "Today, the last flushed day, and the days waiting with the partitions behind",
            read_answers(
                json_answer("The service's flush status.", ref("FlushStatus")), "Unknown service."
            ),
            tags=["usage"],
            security=READ_KEY,
            parameters=[SERVICE],
        )
    },
    "/readyz": {
        "get": operation(
            "Ready when Kafka, Redis, SQL and every kind of process are up",
            {
                "200": json_answer("Everything is up.", ref("Readiness")),
                "503": json_answer("`down` names what is not.", ref("Readiness")),
            },
            tags=["health"],
        )
    },
    "/v1/ops/lag": {
        "get": operation(
            "Consumer lag per partition, totals, history, rejects and flushes",
            {
                "200": json_answer("The report.", ref("LagReport")),
                "401": error_answer("The operator key is missing or wrong."),
                "403": error_answer("No operator key is configured (OPS_KEY is unset)."),
            },
            tags=["operations"],
            security=OPERATOR_KEY,
        )
    },
    "/ops": {
        "get": operation(
            "The operators' dashboard",
            {
                "200": text_answer("The page.", "text/html"),
            },
            description="The page holds no data: it asks for the operator key and reads "
            "/v1/ops/lag with it.",
            tags=["operations"],
        )
    },
    "/ops/static/{filename}": {
        "get": operation(
            "The dashboard's scripts and styles",
            {
                "200": {"description": "The file.", "content": {"*/*": {"schema": STRING}}},
                # aiohttp's file response finds the file missing only after the middlewares.
                "404": {"description": "No such file (an empty body)."},
                "403": error_answer("A directory."),
            },
            tags=["operations"],
            parameters=[path_parameter("filename", "A file of the dashboard.")],
        )
    },
}

SCHEMAS: dict[str, Schema] = {
    "UsageRow": USAGE_ROW,
    "Usage": USAGE,
    "Account": ACCOUNT_DETAIL,
    "AccountUpdate": ACCOUNT_UPDATE,
    "Summary": SUMMARY,
    "InactiveUsers": INACTIVE_USERS,
    "FlushStatus": FLUSH_STATUS,
    "PartitionLag": PARTITION_LAG,
    "LagReport": LAG_REPORT,
    "Readiness": READINESS,
}

API_OPENAPI = document(
    "Usage query API",
    "Usage per account, user, module and activity per day, with rollups through the account "
    "hierarchy; account records; the operators' lag report. Every refusal of a /v1 "
    'endpoint is `{"error": message}`. Any origin may call it (CORS): keys travel in '
    "`Authorization`, never in cookies.",
    PATHS,
    SCHEMAS,
    security_schemes=("readKey", "serverKey", "operatorKey"),
)
