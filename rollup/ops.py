"""The lag monitor behind /v1/ops/lag and /ops: samples every few seconds into a window."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from common.heartbeat import alive
from common.keys import KeyLayout
from common.redis_client import RedisClient
from common.settings import Settings
from rollup.flusher import Flusher
from rollup.lag import STATUSES, Sample, in_window, lag_seconds, status
from rollup.live import decode
from rollup.metrics import LAG_MESSAGES, LAG_SECONDS, MAX_LAG_SECONDS, STATUS

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 3.0
HISTORY_S = 3600
SEVERITY = {name: rank for rank, name in enumerate(STATUSES)}


@dataclass
class LagMonitor:
    settings: Settings
    redis: RedisClient
    flusher: Flusher
    history: dict[int, deque[Sample]] = field(default_factory=dict)
    lag_s_history: dict[int, deque[float]] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    owners: dict[int, str] = field(default_factory=dict)
    applied_at: dict[int, int] = field(default_factory=dict)
    rejects: deque[tuple[int, dict[str, int]]] = field(default_factory=lambda: deque(maxlen=1200))
    kafka_reachable: bool = False
    redis_reachable: bool = False
    components: dict[str, int] = field(default_factory=dict)

    @property
    def keys(self) -> KeyLayout:
        return self.flusher.live.keys

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until stop is set; Kafka or Redis being away shows in the report, not a crash.

        A stop event rather than cancellation: a cancel landing inside the Kafka client's
        start-up can be swallowed there, and the task would then never end.
        """
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        started = False
        try:
            while not stop.is_set():
                try:
                    if not started:
                        await consumer.start()
                        await admin.start()
                        started = True
                    await self.sample(consumer, admin)
                except (KafkaError, OSError, TimeoutError) as error:
                    self.kafka_reachable = False
                    log.warning("lag sample failed: %r", error)
                except RedisError as error:
                    self.redis_reachable = False
                    log.warning("lag sample failed (Redis): %r", error)
                except Exception:
                    # The monitor must outlive any one bad sample; say what went wrong.
                    log.exception("lag sample failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
        finally:
            if started:
                await consumer.stop()
                await admin.close()

    async def sample(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
        now_ms = self.flusher.clock.now_ms()
        topic = self.settings.usage_topic
        async with asyncio.timeout(5):
            described = await admin.describe_topics([topic])
            partitions = {p["partition"] for d in described for p in d.get("partitions", [])}
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends = await consumer.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets(self.settings.consumer_group)
        self.kafka_reachable = True
        progress = {p.partition: p for p in await self.flusher.live.progress()}
        self.redis_reachable = True
        members = await alive(self.redis, self.keys, "aggregator")
        self.owners = {p: m["member"] for m in members for p in m.get("partitions", [])}
        self.components = {
            name: len(await alive(self.redis, self.keys, name))
            for name in ("collector", "aggregator", "flusher")
        }
        self.committed = {tp.partition: meta.offset for tp, meta in committed.items()}
        for tp in tps:
            applied = progress[tp.partition].offset if tp.partition in progress else -1
            window = self.history.setdefault(
                tp.partition, deque(maxlen=int(HISTORY_S / SAMPLE_EVERY_S))
            )
            if tp.partition in progress:  # the aggregator stamps every batch it applies
                self.applied_at[tp.partition] = progress[tp.partition].applied_at_ms
            window.append(Sample(now_ms, ends[tp], applied))
            seconds = self.lag_s_history.setdefault(tp.partition, deque(maxlen=window.maxlen))
            seconds.append(round(lag_seconds(list(window), now_ms), 1))
        rejects = await self.redis.hgetall(self.keys.rejects())
        self.rejects.append((now_ms, {decode(k): int(v) for k, v in rejects.items()}))
        self.export(now_ms)

    def partition_rows(self, now_ms: int) -> list[dict[str, Any]]:
        rows = []
        for partition, samples in sorted(self.history.items()):
            latest = samples[-1]
            seconds = lag_seconds(list(samples), now_ms)
            owner = self.owners.get(partition)
            state, reason = status(in_window(list(samples), now_ms), owner is not None, seconds)
            rows.append(
                {
                    "partition": partition,
                    "log_end_offset": latest.end_offset,
                    "applied_offset": latest.applied,
                    "committed_offset": self.committed.get(partition),
                    "lag_messages": latest.lag,
                    "lag_seconds": round(seconds, 1),
                    "owner": owner,
                    "last_applied_move": _iso(self.applied_at.get(partition)),
                    "status": state,
                    "reason": reason,
                }
            )
        return rows

    def export(self, now_ms: int) -> None:
        """Publish the latest figures as Prometheus gauges (never NaN: no sample, no series)."""
        group, topic = self.settings.consumer_group, self.settings.usage_topic
        rows = self.partition_rows(now_ms)
        for row in rows:
            labels = (group, topic, str(row["partition"]))
            LAG_MESSAGES.labels(*labels).set(row["lag_messages"])
            LAG_SECONDS.labels(*labels).set(row["lag_seconds"])
            for name in STATUSES:
                STATUS.labels(*labels, name).set(1 if row["status"] == name else 0)
        if rows:
            MAX_LAG_SECONDS.labels(group, topic).set(max(row["lag_seconds"] for row in rows))

    async def report(self) -> dict[str, Any]:
        """Everything /v1/ops/lag shows: partitions, totals, rates, rejects and flushes."""
        now_ms = self.flusher.clock.now_ms()
        rows = self.partition_rows(now_ms)
        worst = max((row["status"] for row in rows), key=SEVERITY.__getitem__, default="OK")
        series = self.series()
        return {
            "at": _iso(now_ms),
            "group": self.settings.consumer_group,
            "topic": self.settings.usage_topic,
            "kafka": "ok" if self.kafka_reachable else "unreachable",
            "components": self.components,
            "partitions": rows,
            "totals": {
                "lag_messages": sum(row["lag_messages"] for row in rows),
                "max_lag_seconds": max((row["lag_seconds"] for row in rows), default=0.0),
                "status": worst,
                "events_in_per_s": series["in_per_s"][-1] if series["in_per_s"] else 0.0,
                "events_out_per_s": series["out_per_s"][-1] if series["out_per_s"] else 0.0,
            },
            "rejects": self.rejects[-1][1] if self.rejects else {},
            "history": series,
            "services": (await self.flusher.status())["services"],
        }

    def series(self) -> dict[str, Any]:
        """Per sample over the last hour: lag, rates in and out, rejects per second by reason."""
        if not self.history:
            return {"at": [], "lag_messages": [], "lag_seconds": [], "in_per_s": [],
                    "out_per_s": [], "rejects_per_s": {}}  # fmt: skip
        length = min(len(samples) for samples in self.history.values())
        columns = [list(samples)[-length:] for samples in self.history.values()]
        at = [columns[0][i].at_ms for i in range(length)]
        lag = [sum(column[i].lag for column in columns) for i in range(length)]
        seconds_columns = [list(values)[-length:] for values in self.lag_s_history.values()]
        lag_s = [max(column[i] for column in seconds_columns) for i in range(length)]
        ends = [sum(column[i].end_offset for column in columns) for i in range(length)]
        applied = [sum(column[i].applied + 1 for column in columns) for i in range(length)]
        in_rate, out_rate = [0.0], [0.0]
        for i in range(1, length):
            seconds = max((at[i] - at[i - 1]) / 1000, 0.001)
            in_rate.append(round(max(ends[i] - ends[i - 1], 0) / seconds, 1))
            out_rate.append(round(max(applied[i] - applied[i - 1], 0) / seconds, 1))
        rejects: dict[str, list[float]] = {}
        recent = list(self.rejects)[-length:]
        for i in range(1, len(recent)):
            seconds = max((recent[i][0] - recent[i - 1][0]) / 1000, 0.001)
            for reason, total in recent[i][1].items():
                before = recent[i - 1][1].get(reason, 0)
                rejects.setdefault(reason, [0.0] * i).append(round((total - before) / seconds, 2))
            for values in rejects.values():
                values.extend([0.0] * (i + 1 - len(values)))
        return {"at": [a / 1000 for a in at], "lag_messages": lag, "lag_seconds": lag_s,
                "in_per_s": in_rate, "out_per_s": out_rate, "rejects_per_s": rejects}  # fmt: skip


def _iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")
