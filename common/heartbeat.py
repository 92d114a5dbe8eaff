"""Heartbeats: each worker keeps a Redis key with a TTL; an expired key means it is gone."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import orjson

from common.keys import KeyLayout
from common.redis_client import RedisClient

TTL_S = 10
EVERY_S = 2.0


def member_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Writes the component's heartbeat at most every EVERY_S seconds."""

    def __init__(self, redis: RedisClient, keys: KeyLayout, component: str) -> None:
        self.redis = redis
        self.key = keys.heartbeat(component, member_id())
        self.sent_at = float("-inf")

    async def beat(self, **details: Any) -> None:
        """Write the heartbeat if due; details (e.g. owned partitions) go with it."""
        if time.monotonic() - self.sent_at < EVERY_S:
            return
        self.sent_at = time.monotonic()
        payload = {"member": member_id(), "at_ms": int(time.time() * 1000), **details}
        await self.redis.set(self.key, orjson.dumps(payload), ex=TTL_S)

    async def stop(self) -> None:
        await self.redis.delete(self.key)


async def alive(redis: RedisClient, keys: KeyLayout, component: str) -> list[dict[str, Any]]:
    """Return the live members of a component, with their details."""
    found = []
    async for key in redis.scan_iter(match=keys.heartbeat(component, "*"), count=200):
        value = await redis.get(key)
        if value is not None:
            found.append(orjson.loads(value))
    return found
