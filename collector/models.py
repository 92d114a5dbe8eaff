"""The collector's own answers as types: the OpenAPI document's schemas come from them."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta


class Accepted(msgspec.Struct, forbid_unknown_fields=True):
    """Kafka has acknowledged this many events of the request."""

    accepted: Annotated[int, Meta(ge=1)]


class Readiness(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Whether events can be published now; while not, why."""

    status: Literal["ready", "unavailable"]
    kafka: Literal["ok", "unreachable", "replacing producer"]
    reason: str = ""
