"""The Kafka producer the collector answers through: a 2xx only after acks=all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from collector.metrics import KAFKA_SEND_ERRORS
from common.events import UsageEvent, to_wire
from common.settings import Settings

log = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """Events cannot be made durable right now; the client should retry (503)."""


class KafkaUnavailable(Unavailable):
    """Kafka did not acknowledge the events in time, or is known to be unreachable."""


class EventProducer:
    def __init__(self, settings: Settings) -> None:
        self.topic = settings.usage_topic
        self.timeout_s = settings.produce_timeout_ms / 1000
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=settings.produce_timeout_ms,
        )
        self.reachable = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self, attempts: int = 60) -> None:
        """Connect to Kafka, retrying for a while when it is not up yet."""
        for attempt in range(1, attempts + 1):
            try:
                await self._producer.start()
                self.reachable = True
                self._watch = asyncio.create_task(self._watch_reachability())
                return
            except KafkaError as error:
                if attempt == attempts:
                    raise
                log.warning("Kafka not reachable yet (%s); retrying", error)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        """Send what is buffered, then disconnect."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        try:
            async with asyncio.timeout(self.timeout_s + 5):
                await self._producer.stop()
        except TimeoutError:
            log.error("Kafka did not take the last buffered events before shutdown")

    async def _watch_reachability(self) -> None:
        """Probe the cluster every second, so that requests fail fast while it is down."""
        while True:
            reachable = await self.is_reachable()
            if reachable != self.reachable:
                log.warning("Kafka is %s", "reachable again" if reachable else "unreachable")
            self.reachable = reachable
            await asyncio.sleep(1)

    async def publish(self, events: Sequence[UsageEvent]) -> None:
        """Put events on Kafka and return once all are acknowledged (acks=all, idempotent).

        Raises KafkaUnavailable when any is not acknowledged within the produce timeout,
        or at once, sending nothing, while the cluster is known to be unreachable.
        """
        if not self.reachable:
            raise KafkaUnavailable("Kafka is unreachable")
        try:
            async with asyncio.timeout(self.timeout_s):
                acknowledgements = [
                    await self._producer.send(self.topic, to_wire(event), key=event.kafka_key)
                    for event in events
                ]
                await asyncio.gather(*acknowledgements)
        except (KafkaError, TimeoutError) as error:
            KAFKA_SEND_ERRORS.inc()
            log.warning("Kafka did not acknowledge %d events: %r", len(events), error)
            raise KafkaUnavailable(str(error)) from error

    async def is_reachable(self) -> bool:
        """Ask the cluster for metadata; True when it answers within a second."""
        try:
            async with asyncio.timeout(1):
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError):
            return False
        return True
