"""The query API's OpenAPI document (GET /openapi.json): §4 of the product specification."""

from __future__ import annotations

from api.limits import MAX_BODY_BYTES, MAX_RANGE_DAYS
from api.models import (
    Account,
    AccountUpdate,
    FlushStatus,
    InactiveUsers,
    LagReport,
    Readiness,
    Summary,
    Usage,
)
from api.usage import BY_COLUMNS
from common.contract import RequiredId
from common.openapi import (
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

DAY = {"type": "string", "format": "date"}
STRING = {"type": "string"}
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


ID = schema_of(RequiredId)
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

SCHEMAS = model_schemas(
    Usage, Account, AccountUpdate, Summary, InactiveUsers, FlushStatus, LagReport, Readiness
)

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
