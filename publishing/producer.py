"""The Kafka producer the collector answers through: a 2xx only after acks=all.

Events of concurrent requests bound for the same partition share one record (see
publishing.records), sent after a few milliseconds or once full. A watcher replaces the
idempotent producer when it is broken for good (see publishing.kafka_producer), and keeps
publishing refused at once, as 503, while Kafka is unreachable or the producer is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from typing import Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from common.events import UsageEvent
from common.settings import Settings
from publishing.kafka_producer import discard, needs_replacing, new_producer, sender_ended
from publishing.metrics import (
    KAFKA_SEND_ERRORS,
    OVERLOAD_REFUSALS,
    PRODUCER_REPLACEMENTS,
    count_produced,
)
from publishing.records import PartitionRecord, RecordPacker

log = logging.getLogger(__name__)

PACK_WINDOW_S = 0.002  # how long a record waits for more events before it is sent
WATCH_EVERY_S = 0.5
PROBES_LOST = 2
STEADY_S = 2.0  # Kafka reachable this long, yet a record still unacknowledged: stuck


class Unavailable(RuntimeError):
    """Events cannot be made durable right now; the client should retry (503)."""


class KafkaUnavailable(Unavailable):
    """Kafka did not acknowledge the events in time, or is known to be unreachable."""


class Overloaded(Unavailable):
    """More events than the bound already wait for Kafka's acknowledgement."""


class EventProducer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.usage_topic
        self.timeout_s = settings.produce_timeout_ms / 1000
        self.max_pending_events = settings.max_pending_events
        self.pending_events = 0  # in records not yet acknowledged, sent or not
        self.unready_reason = "not started"  # "" while events can be published
        self._kafka: AIOKafkaProducer | None = None
        self._packer = RecordPacker(1)
        self._records_waiting = asyncio.Event()
        self._sent_at: dict[PartitionRecord, float] = {}  # in flight, oldest first
        self._broken = ""  # why the producer must be replaced; "" when it need not
        self._wake_watch = asyncio.Event()
        self._reachable_since: float | None = None
        self._probes_lost = 0
        self._last_failure = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._discarding: set[asyncio.Task[None]] = set()

    async def start(self, attempts: int = 60) -> None:
        """Connect to Kafka, retrying for a while when it is not up yet."""
        for attempt in range(1, attempts + 1):
            producer = new_producer(self.settings)
            try:
                await producer.start()
                partitions = await producer.partitions_for(self.topic)
                break
            except KafkaError as error:
                await producer.stop()
                if attempt == attempts:
                    raise
                log.warning("Kafka not reachable yet (%s); retrying", error)
                await asyncio.sleep(1)
        self._kafka = producer
        self._packer = RecordPacker(len(partitions))
        self._reachable_since = time.monotonic()
        self.unready_reason = ""
        self._tasks = [
            asyncio.create_task(self._send_records()),
            asyncio.create_task(self._watch()),
        ]

    async def stop(self) -> None:
        """Send the records still open, wait for Kafka to take them, then disconnect."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert self._kafka is not None
        try:
            async with asyncio.timeout(self.timeout_s + 5):
                for record in self._packer.take():
                    await self._send(self._kafka, record)
                await self._kafka.stop()
        except TimeoutError:
            log.error("Kafka did not take the last buffered events before shutdown")
        if self._discarding:
            await asyncio.wait(self._discarding)

    @property
    def kafka_state(self) -> Literal["ok", "unreachable", "replacing producer"]:
        """For /readyz: ok, unreachable, or replacing producer."""
        if not self.unready_reason:
            return "ok"
        return "unreachable" if self._reachable_since is None else "replacing producer"

    async def publish(self, events: Sequence[UsageEvent]) -> None:
        """Put events on Kafka and return once all are acknowledged (acks=all, idempotent).

        Raises KafkaUnavailable at once, sending nothing, while Kafka is unreachable or the
        producer is being replaced, or when any event is not acknowledged within the
        produce timeout; Overloaded at once when the events would take the events
        awaiting acknowledgement past max_pending_events.
        """
        if self.unready_reason:
            raise KafkaUnavailable(self.unready_reason)
        if self.pending_events + len(events) > self.max_pending_events:
            OVERLOAD_REFUSALS.inc()
            raise Overloaded(f"{self.pending_events} events await Kafka's acknowledgement")
        records = self._packer.add(events)
        self.pending_events += len(events)
        self._records_waiting.set()
        done, waiting = await asyncio.wait(
            [record.acknowledged for record in records], timeout=self.timeout_s
        )
        if waiting or any(future.exception() for future in done):
            KAFKA_SEND_ERRORS.inc()
            raise KafkaUnavailable("Kafka did not acknowledge the events in time")

    async def _send_records(self) -> None:
        """Send each partition's open record once it waited PACK_WINDOW_S or is full."""
        while True:
            await self._records_waiting.wait()
            if not self._packer.has_full:
                await asyncio.sleep(PACK_WINDOW_S)
            self._records_waiting.clear()
            assert self._kafka is not None
            for record in self._packer.take():
                await self._send(self._kafka, record)

    async def _send(self, kafka: AIOKafkaProducer, record: PartitionRecord) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                delivery = await kafka.send(self.topic, record.value, partition=record.partition)
        # Anything else too (say, metadata without the partition just after a broker
        # restart): the record fails and is logged, the loop that sends goes on.
        except Exception as error:
            self._settle(record, error)
            return
        self._sent_at[record] = time.monotonic()
        delivery.add_done_callback(functools.partial(self._delivered, record))

    def _delivered(self, record: PartitionRecord, delivery: asyncio.Future[object]) -> None:
        del self._sent_at[record]
        error = delivery.exception()  # never cancelled: aiokafka sets or fails it
        self._settle(record, error)
        if error is not None and needs_replacing(error) and not self._broken:
            self._broken = repr(error)
            self._wake_watch.set()

    def _settle(self, record: PartitionRecord, error: BaseException | None) -> None:
        """Release the record's events from the bound and answer its requests."""
        self.pending_events -= record.events
        record.settle(None if error is None else KafkaUnavailable(repr(error)))
        if error is None:
            count_produced(record.partition, record.events)
            self._last_failure = ""
            return
        if repr(error) != self._last_failure:  # once per kind of failure, not per record
            self._last_failure = repr(error)
            log.warning("Kafka did not acknowledge a record: %r", error)

    async def _watch(self) -> None:
        """Every WATCH_EVERY_S (or at once when a send found the producer broken): probe
        Kafka, and replace the producer when it cannot recover by itself."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_EVERY_S):
                    await self._wake_watch.wait()
            self._wake_watch.clear()
            if not await self._reachable():
                self.unready_reason = "Kafka is unreachable"
                continue
            problem = self._problem()
            if not problem:
                self.unready_reason = ""
                continue
            reason = f"replacing the Kafka producer after {problem}"
            first_attempt = reason != self.unready_reason
            if first_attempt:
                log.warning("%s", reason)  # once, however many attempts it takes
            self.unready_reason = reason
            await self._replace(first_attempt)

    async def _reachable(self) -> bool:
        """Ask the cluster for metadata; note and log when the answer changes.

        Unreachable only after PROBES_LOST probes in a row went unanswered for a second:
        on a busy machine one may time out while Kafka is fine.
        """
        assert self._kafka is not None
        try:
            async with asyncio.timeout(1):
                await self._kafka.client.fetch_all_metadata()
            self._probes_lost = 0
        except (KafkaError, TimeoutError):
            self._probes_lost += 1
        reachable = self._probes_lost < PROBES_LOST
        if reachable != (self._reachable_since is not None):
            log.warning("Kafka is %s", "reachable again" if reachable else "unreachable")
            self._reachable_since = time.monotonic() if reachable else None
        return reachable

    def _problem(self) -> str:
        """Why the producer must be replaced, or "" when it is healthy."""
        assert self._kafka is not None and self._reachable_since is not None
        if self._broken:
            return self._broken
        if sender_ended(self._kafka):
            return "its sender task ended"
        now = time.monotonic()
        oldest = next(iter(self._sent_at.values()), now)
        if now - self._reachable_since > STEADY_S and now - oldest > self.timeout_s:
            return "a record unacknowledged past the produce timeout while Kafka answers"
        return ""

    async def _replace(self, first_attempt: bool) -> None:
        """Start a new producer (a new producer id); then discard the old one."""
        replacement = new_producer(self.settings)
        try:
            async with asyncio.timeout(self.timeout_s):
                await replacement.start()
        except Exception as error:  # tried again at the next watch
            if first_attempt:
                log.warning("a new Kafka producer could not start yet: %r", error)
            await replacement.stop()
            return
        PRODUCER_REPLACEMENTS.inc()
        broken, self._kafka = self._kafka, replacement
        self._broken = self._last_failure = ""
        self.unready_reason = ""
        assert broken is not None
        discarding = asyncio.create_task(discard(broken))
        self._discarding.add(discarding)
        discarding.add_done_callback(self._discarded)

    def _discarded(self, task: asyncio.Task[None]) -> None:
        self._discarding.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("the discarded Kafka producer closed with %r", task.exception())
