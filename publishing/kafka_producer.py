"""aiokafka's idempotent producer: made, told apart when broken for good, and discarded.

An idempotent producer numbers its batches per partition, and aiokafka (0.14,
producer/message_accumulator.py and sender.py) numbers a batch when it first takes it
to send, then retries retriable errors for ever. A batch that fails nonetheless leaves
a gap in its partition's sequence, and the broker refuses every later batch of that
partition with OutOfOrderSequenceNumber for as long as the producer lives:

- a batch that expires while its partition has no leader (a broker restarting after an
  outage longer than the request timeout reports none for a while) fails with
  LeaderNotAvailable or NotLeaderForPartition after it was numbered;
- a batch the broker refuses (UnknownProducerId, a fenced epoch, ...) is not retried;
- a sender task that ended fails everything it held, and every later send.

In each case only a new producer, with a new producer id and sequences from zero, helps.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from common.settings import Settings


class ProducerDiscarded(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The producer holding this record was replaced before Kafka acknowledged it."""


def new_producer(settings: Settings) -> AIOKafkaProducer:
    """An idempotent producer that answers only after acks=all."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=0,  # records are already packed for a few ms (publishing.records)
        max_batch_size=256 * 1024,
        request_timeout_ms=settings.produce_timeout_ms,
    )


def needs_replacing(delivery_error: BaseException) -> bool:
    """Tell whether a record's failed delivery leaves its producer unable to deliver again.

    True for every failure but a discarded producer's own: whatever failed a numbered
    batch left a gap in its partition's sequence (see above).
    """
    return not isinstance(delivery_error, ProducerDiscarded)


def sender_ended(producer: AIOKafkaProducer) -> bool:
    """True once the producer's background sender stopped: nothing it is given gets sent."""
    task = producer._sender.sender_task  # no public accessor in aiokafka
    return task is not None and task.done()


async def discard(producer: AIOKafkaProducer) -> None:
    """Fail whatever the producer still holds, then close it.

    stop() alone waits until every batch is delivered, which a broken producer never
    does; its batches are failed first, so the requests waiting on them answer 503 now.
    """
    sender = producer._sender.sender_task  # aiokafka has no public way to do this
    producer._message_accumulator.fail_all(ProducerDiscarded())
    if sender is not None and not sender.done():
        sender.cancel()  # before it runs again: it must not send the failed batches
        await asyncio.wait([sender])  # requests in flight end within the request timeout
    await producer.stop()  # nothing left to deliver: it closes the connections
