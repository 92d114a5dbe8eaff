"""Typed keys of what the collector's handlers share, set up in main.py."""

from __future__ import annotations

from aiohttp import web

from collector.rate_limits import RateLimits
from common.clock import Clock
from common.redis_client import RedisClient
from common.services import Service
from common.settings import Settings
from publishing.names import NameLimits
from publishing.producer import EventProducer

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
SERVICES = web.AppKey("services", dict[str, Service])
PRODUCER = web.AppKey("producer", EventProducer)
LIMITS = web.AppKey("limits", NameLimits)
RATE_LIMITS = web.AppKey("rate_limits", RateLimits)
REDIS: web.AppKey[RedisClient] = web.AppKey("redis")
