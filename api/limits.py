"""The query API's limits, read by its handlers and written into its OpenAPI document."""

from __future__ import annotations

MAX_RANGE_DAYS = 400
MAX_BODY_BYTES = 256 * 1024
