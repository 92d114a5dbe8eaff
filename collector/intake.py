"""What every entry point does with validated events: enforce name limits, then publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.exceptions import RedisError

from collector.limits import NameLimits
from collector.producer import Unavailable
from common.events import FieldError, UsageEvent
from common.services import Service


async def limit_errors(
    limits: NameLimits, services: Mapping[str, Service], events: Sequence[UsageEvent]
) -> list[tuple[int, FieldError]]:
    """Register the events' module and activity names; list the events a limit refuses.

    Raises Unavailable when the shared name registry (Redis) cannot be reached.
    """
    if limits.all_known(events):
        return []
    try:
        return await _limit_errors(limits, services, events)
    except RedisError as error:
        raise Unavailable(f"name registry unreachable: {error}") from error


async def _limit_errors(
    limits: NameLimits, services: Mapping[str, Service], events: Sequence[UsageEvent]
) -> list[tuple[int, FieldError]]:
    errors: list[tuple[int, FieldError]] = []
    for service_id in sorted({event.service_id for event in events}):
        service = services[service_id]
        own = [(i, e) for i, e in enumerate(events) if e.service_id == service_id and e.activity]
        for kind in ("module", "activity"):
            names = {getattr(event, kind) for _, event in own}
            if await limits.admit(service, kind, names):
                continue
            known = await limits.known(service, kind)
            message = NameLimits.limit_message(service, kind)
            errors.extend(
                (index, FieldError(kind, message))
                for index, event in own
                if getattr(event, kind) not in known
            )
    return sorted(errors, key=lambda item: item[0])
