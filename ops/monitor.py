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
from ops.lag import (
    STATUSES,
    Sample,
    in_window,
    lag_events,
    lag_seconds,
    per_second,
    settled_drift,
    status,
)
from ops.metrics import LAG_EVENTS, LAG_MESSAGES, LAG_SECONDS, MAX_LAG_SECONDS, STATUS
from rollup.flusher import Flusher
from rollup.live import decode

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
    lag_events_history: dict[int, deque[int]] = field(default_factory=dict)
    drift: dict[int, int] = field(default_factory=dict)  # see ops.lag.settled_drift
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
        produced_by_partition = await self.redis.hgetall(self.keys.produced())
        produced = {int(p): int(n) for p, n in produced_by_partition.items()}
        self.redis_reachable = True
        members = await alive(self.redis, self.keys, "aggregator")
        self.owners = {p: m["member"] for m in members for p in m.get("partitions", [])}
        self.components = {
            name: len(await alive(self.redis, self.keys, name))
            for name in ("collector", "aggregator", "flusher")
        }
        self.committed = {tp.partition: meta.offset for tp, meta in committed.items()}
        for tp in tps:
            p = tp.partition
            applied = progress[p].offset if p in progress else -1
            applied_events = progress[p].events if p in progress else 0
            window = self.history.setdefault(p, deque(maxlen=int(HISTORY_S / SAMPLE_EVERY_S)))
            if p in progress:  # the aggregator stamps every batch it applies
                self.applied_at[p] = progress[p].applied_at_ms
            latest = Sample(now_ms, ends[tp], applied, produced.get(p, 0), applied_events)
            if window:
                self.drift[p] = settled_drift(window[-1], latest, self.drift.get(p, 0))
            window.append(latest)
            seconds = self.lag_s_history.setdefault(p, deque(maxlen=window.maxlen))
            seconds.append(round(lag_seconds(list(window), now_ms), 1))
            events = self.lag_events_history.setdefault(p, deque(maxlen=window.maxlen))
            events.append(lag_events(latest, self.drift.get(p, 0)))
        rejects = await self.redis.hgetall(self.keys.rejects())
        self.rejects.append((now_ms, {decode(k): int(v) for k, v in rejects.items()}))
        self.export(now_ms)

    def partition_rows(self, now_ms: int) -> list[dict[str, Any]]:
        rows = []
        for partition, samples in sorted(self.history.items()):
            latest = samples[-1]
            rates = per_second(samples[-2], latest) if len(samples) > 1 else (0.0,) * 4
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
                    "lag_events": self.lag_events_history[partition][-1],
                    "lag_seconds": round(seconds, 1),
                    "events_in_per_s": rates[0],
                    "events_out_per_s": rates[1],
                    "produced_events": latest.produced_events,
                    "applied_events": latest.applied_events,
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
            LAG_EVENTS.labels(*labels).set(row["lag_events"])
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
                "lag_events": sum(row["lag_events"] for row in rows),
                "max_lag_seconds": max((row["lag_seconds"] for row in rows), default=0.0),
                "status": worst,
                **{
                    name: series[column][-1] if series[column] else 0.0
                    for name, column in (
                        ("events_in_per_s", "in_per_s"),
                        ("events_out_per_s", "out_per_s"),
                        ("records_in_per_s", "records_in_per_s"),
                        ("records_out_per_s", "records_out_per_s"),
                    )
                },
            },
            "rejects": self.rejects[-1][1] if self.rejects else {},
            "history": series,
            "services": (await self.flusher.status())["services"],
        }

    def series(self) -> dict[str, Any]:
        """Per sample over the last hour: lags, rates in and out, rejects per second by reason."""
        names = ("lag_messages", "lag_events", "lag_seconds", "in_per_s", "out_per_s",
                 "records_in_per_s", "records_out_per_s")  # fmt: skip
        if not self.history:
            return {"at": [], **{name: [] for name in names}, "rejects_per_s": {}}
        length = min(len(samples) for samples in self.history.values())
        columns = [list(samples)[-length:] for samples in self.history.values()]
        at = [columns[0][i].at_ms for i in range(length)]
        seconds_columns = [list(values)[-length:] for values in self.lag_s_history.values()]
        events_columns = [list(values)[-length:] for values in self.lag_events_history.values()]
        rates = [[0.0] * 4]
        for i in range(1, length):
            # Partitions are sampled together: the group's rate is the sum of theirs.
            per_partition = [per_second(column[i - 1], column[i]) for column in columns]
            rates.append([round(sum(r[k] for r in per_partition), 1) for k in range(4)])
        series: dict[str, Any] = {
            "at": [a / 1000 for a in at],
            "lag_messages": [sum(column[i].lag for column in columns) for i in range(length)],
            "lag_events": [sum(column[i] for column in events_columns) for i in range(length)],
            "lag_seconds": [max(column[i] for column in seconds_columns) for i in range(length)],
        }
        for position, name in enumerate(("in_per_s", "out_per_s", "records_in_per_s",
                                         "records_out_per_s")):  # fmt: skip
            series[name] = [rate[position] for rate in rates]
        series["rejects_per_s"] = self.rejects_per_s(length)
        return series

    def rejects_per_s(self, length: int) -> dict[str, list[float]]:
        """Rejects per second by reason over the last length samples."""
        rejects: dict[str, list[float]] = {}
        recent = list(self.rejects)[-length:]
        for i in range(1, len(recent)):
            seconds = max((recent[i][0] - recent[i - 1][0]) / 1000, 0.001)
            for reason, total in recent[i][1].items():
                before = recent[i - 1][1].get(reason, 0)
                rejects.setdefault(reason, [0.0] * i).append(round((total - before) / seconds, 2))
            for values in rejects.values():
                values.extend([0.0] * (i + 1 - len(values)))
        return rejects


def _iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="seconds")
