"""Per-service limits on distinct module and activity names, shared by every publisher
(collectors, imports): registered in Redis before events are published."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from redis.exceptions import RedisError

from common.events import FieldError, UsageEvent
from common.keys import KeyLayout
from common.redis_client import RedisClient
from common.services import Service
from publishing.producer import Unavailable

# Adds the names not yet known only if the set then stays within the limit; one atomic
# step, so collectors racing to register new names can never exceed it together.
REGISTER_NAMES = """
local missing = {}
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then missing[#missing + 1] = ARGV[i] end
end
if #missing == 0 then return 1 end
if redis.call('SCARD', KEYS[1]) + #missing > tonumber(ARGV[1]) then return 0 end
redis.call('SADD', KEYS[1], unpack(missing))
return 1
"""


class NameLimits:
    """Registers module and activity names, refusing new ones past the service's limit."""

    def __init__(self, redis: RedisClient, keys: KeyLayout) -> None:
        self._redis = redis
        self._keys = keys
        self._register = redis.register_script(REGISTER_NAMES)
        self._known: dict[tuple[str, str], set[str]] = {}

    async def admit(self, service: Service, kind: str, names: Iterable[str]) -> bool:
        """Register names of kind (module|activity); False if that would pass the limit."""
        known = self._known.setdefault((service.id, kind), set())
        new = sorted(set(names) - known)
        if not new:
            return True
        limit = service.max_modules if kind == "module" else service.max_activities
        admitted = await self._register(
            keys=[self._keys.names(service.id, kind)], args=[limit, *new]
        )
        if admitted:
            known.update(new)
        return bool(admitted)

    def all_known(self, events: Iterable[UsageEvent]) -> bool:
        """Tell whether this process has seen every event's names registered already.

        The common case, answered without Redis and without admit()'s set work.
        """
        known = self._known
        return all(
            not event.activity
            or (
                event.module in known.get((event.service_id, "module"), ())
                and event.activity in known.get((event.service_id, "activity"), ())
            )
            for event in events
        )

    async def known(self, service: Service, kind: str) -> set[str]:
        """Return every name of kind the service has registered."""
        members = await self._redis.smembers(self._keys.names(service.id, kind))
        known = {m.decode() if isinstance(m, bytes) else m for m in members}
        self._known[(service.id, kind)] = set(known)
        return known

    @staticmethod
    def limit_message(service: Service, kind: str) -> str:
        limit = service.max_modules if kind == "module" else service.max_activities
        plural = "modules" if kind == "module" else "activities"
        return f"is new and would pass the service's limit of {limit} {plural}"


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
