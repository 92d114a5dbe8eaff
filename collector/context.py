"""Typed keys of what the collector's handlers share, set up in main.py."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from collector.limits import NameLimits
from collector.producer import EventProducer
from common.clock import Clock
from common.services import Service
from common.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
SERVICES = web.AppKey("services", dict[str, Service])
PRODUCER = web.AppKey("producer", EventProducer)
LIMITS = web.AppKey("limits", NameLimits)
REDIS = web.AppKey("redis", Redis)
