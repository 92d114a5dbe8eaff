"""Per-service rate limits, shared by every collector process through Redis.

One token bucket per (service, traffic kind) lives in Redis, so the limit holds for the
whole fleet behind a load balancer. A process does not ask Redis for every request: it
leases a tenth of a second's worth of tokens at a time and spends them locally, so the
limit costs about ten Redis calls per second per busy service and process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from common.keys import KeyLayout
from common.redis_client import RedisClient
from common.services import Service

log = logging.getLogger(__name__)

LEASES_PER_S = 10
LEASE_TTL_S = 1.0  # tokens leased and not spent within this are given up

# Refill the bucket for the time since its last use, grant up to ARGV[3] tokens, and say
# how long until the next token when none is left. Redis's own clock, so every process
# agrees on time.
TAKE_TOKENS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now_ms
tokens = math.min(burst, tokens + math.max(0, now_ms - at) * rate / 1000)
local granted = math.min(tonumber(ARGV[3]), math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
local wait_ms = 0
if granted == 0 then wait_ms = math.ceil((1 - tokens) * 1000 / rate) end
return {granted, wait_ms}
"""


@dataclass
class Lease:
    tokens: int = 0
    expires_at: float = 0.0


class RateLimits:
    """Decides whether a service may make one more request of a kind (public|server)."""

    def __init__(self, redis: RedisClient, keys: KeyLayout) -> None:
        self._keys = keys
        self._take = redis.register_script(TAKE_TOKENS)
        self._leases: dict[tuple[str, str], Lease] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._redis_down = False

    async def retry_after_s(self, service: Service, kind: str) -> int:
        """Spend one token; 0 when the request may go on, else seconds to wait (for 429)."""
        rate = service.public_rate_per_s if kind == "public" else service.server_rate_per_s
        if not rate:
            return 0
        slot = (service.id, kind)
        lease = self._leases.setdefault(slot, Lease())
        if self._spend(lease):
            return 0
        async with self._locks.setdefault(slot, asyncio.Lock()):
            if self._spend(lease):  # another request renewed the lease meanwhile
                return 0
            wait_ms = await self._renew(lease, service, kind, rate)
            if wait_ms:
                return max(1, math.ceil(wait_ms / 1000))
            self._spend(lease)
            return 0

    @staticmethod
    def _spend(lease: Lease) -> bool:
        if lease.tokens > 0 and time.monotonic() < lease.expires_at:
            lease.tokens -= 1
            return True
        return False

    async def _renew(self, lease: Lease, service: Service, kind: str, rate: int) -> int:
        """Lease more tokens from the shared bucket; return ms to wait when it is empty."""
        wanted = max(1, rate // LEASES_PER_S)
        try:
            granted, wait_ms = await self._take(
                keys=[self._keys.rate_bucket(service.id, kind)], args=[rate, rate, wanted]
            )
        except RedisError as error:
            # A limit protects the pipeline; it is not worth refusing events over.
            if not self._redis_down:
                log.warning("rate limits not enforced while Redis is unreachable: %r", error)
            self._redis_down = True
            lease.tokens, lease.expires_at = wanted, time.monotonic() + LEASE_TTL_S
            return 0
        self._redis_down = False
        lease.tokens, lease.expires_at = int(granted), time.monotonic() + LEASE_TTL_S
        return int(wait_ms) if not granted else 0
