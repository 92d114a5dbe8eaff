"""The query API's shared objects, each under a typed application key."""

from __future__ import annotations

from aiohttp import web

from api.queries import UsageReader
from common.services import Service
from common.settings import Settings
from ops.monitor import LagMonitor
from rollup.flusher import Flusher
from rollup.live import LiveBuckets
from rollup.store import Store

SETTINGS = web.AppKey("settings", Settings)

SERVICES = web.AppKey("services", dict[str, Service])

STORE = web.AppKey("store", Store)

LIVE = web.AppKey("live", LiveBuckets)

FLUSHER = web.AppKey("flusher", Flusher)

READER = web.AppKey("reader", UsageReader)

MONITOR = web.AppKey("monitor", LagMonitor)
