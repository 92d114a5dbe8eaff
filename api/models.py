"""The query API's bodies as types: PUT bodies are decoded into them, answers encoded from them,
and the OpenAPI document's schemas are generated from them (see common.openapi)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from common.contract import Attributes, RequiredId

Day = Annotated[str, Meta(extra_json_schema={"format": "date"})]
Moment = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
Count = Annotated[int, Meta(ge=0)]
Status = Literal["OK", "WARN", "ERR", "STALL", "STOP"]  # ops.lag.STATUSES, a test checks
Up = Literal["ok", "down"]


class Model(msgspec.Struct, forbid_unknown_fields=True):
    """A body of the API: no field beyond those listed."""


class AccountUpdate(Model, omit_defaults=True):
    """Only the fields sent change."""

    parent_id: (
        Annotated[RequiredId | None, Meta(description="`null` makes the account a root.")]
        | UnsetType
    ) = UNSET
    name: RequiredId | UnsetType = UNSET
    account_type: RequiredId | UnsetType = UNSET
    product_id: RequiredId | UnsetType = UNSET
    attributes: Attributes | UnsetType = UNSET


class UsageRow(Model, omit_defaults=True, kw_only=True):
    """Only the columns summed by are present."""

    day: Day | UnsetType = UNSET
    module: str | UnsetType = UNSET
    activity: str | UnsetType = UNSET
    user_id: str | UnsetType = UNSET
    count: Count


class Usage(Model):
    rows: list[UsageRow]


class Account(Model):
    service_id: str
    account_id: str
    name: str | None
    account_type: str | None
    product_id: str | None
    attributes: Annotated[dict[str, Any], Meta(description="The latest value of each attribute.")]
    parent_id: str | None
    ancestors: Annotated[list[str], Meta(description="Root first.")]
    children: list[str]


class Counts(Model):
    today: Count
    yesterday: Count
    last_3_days: Count
    last_7_days: Count
    last_14_days: Count
    last_30_days: Count


class TopUser(Model):
    user_id: str
    count: Count


class TopModule(Model):
    module: str
    count: Count


class TopActivity(Model):
    module: str
    activity: str
    count: Count


class LicenseUtilization(Model):
    """Present when the account has a numeric `Licenses` attribute."""

    licenses: float
    active_users_14_days: Count
    ratio: float


Top = Meta(max_length=5)


class Summary(Model):
    account_id: str
    today: Day
    counts: Counts
    active_users_14_days: Count
    top_users: Annotated[list[TopUser], Top]
    top_modules: Annotated[list[TopModule], Top]
    top_activities: Annotated[list[TopActivity], Top]
    license_utilization: LicenseUtilization | None


class InactiveUser(Model):
    user_id: str
    account_id: str
    last_active: Day
    last_used: Day | None


class InactiveUsers(Model):
    users: list[InactiveUser]


class DayWaiting(Model):
    day: Day
    reason: str
    partitions_behind: list[int]


class FlushStatus(Model):
    service_id: str
    timezone: str
    today: Day
    last_flushed_day: Day | None
    days_waiting: list[DayWaiting]


class PartitionLag(Model):
    partition: int
    log_end_offset: int
    applied_offset: Annotated[int, Meta(description="-1 when none.")]
    committed_offset: int | None
    lag_messages: Annotated[Count, Meta(description="Records not yet applied (exact).")]
    lag_events: Annotated[Count, Meta(description="Events in the records not yet applied.")]
    lag_seconds: float
    events_in_per_s: float
    events_out_per_s: float
    produced_events: Annotated[Count, Meta(description="Events acknowledged to the collectors.")]
    applied_events: Annotated[Count, Meta(description="Events in the records applied.")]
    owner: str | None
    last_applied_move: Moment | None
    status: Status
    reason: str


class LagTotals(Model):
    lag_messages: Count
    lag_events: Count
    max_lag_seconds: float
    status: Status
    events_in_per_s: float
    events_out_per_s: float
    records_in_per_s: float
    records_out_per_s: float


class LagHistory(Model):
    at: list[float]
    lag_messages: list[float]
    lag_events: list[float]
    lag_seconds: list[float]
    in_per_s: Annotated[list[float], Meta(description="Events per second produced.")]
    out_per_s: Annotated[list[float], Meta(description="Events per second applied.")]
    records_in_per_s: list[float]
    records_out_per_s: list[float]
    rejects_per_s: dict[str, list[float]]


class LagReport(Model):
    at: Moment
    group: str
    topic: str
    kafka: Literal["ok", "unreachable"]
    components: Annotated[
        dict[str, Count],
        Meta(description="Live processes of each kind (collector, aggregator, flusher)."),
    ]
    partitions: list[PartitionLag]
    totals: LagTotals
    rejects: Annotated[
        dict[str, Count], Meta(description="Rejects by reason since the counters began.")
    ]
    history: LagHistory
    services: list[FlushStatus]


class Checks(Model):
    kafka: Up
    redis: Up
    sql: Up
    collector: Up
    aggregator: Up
    flusher: Up


class Readiness(Model):
    status: Literal["ready", "unavailable"]
    checks: Checks
    down: list[str]
