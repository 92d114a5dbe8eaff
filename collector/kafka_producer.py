"""aiokafka's idempotent producer: made, told apart when broken for good, and discarded.

An idempotent producer numbers its batches per partition. Two of aiokafka's states never
heal by themselves (aiokafka 0.14, producer/sender.py and message_accumulator.py):

- a batch that expires while its partition has no leader (the broker down longer than
  the request timeout) is failed after it was given a sequence number, so every later
  batch of that partition leaves a gap and the broker refuses it with
  OutOfOrderSequenceNumber, for as long as the producer lives;
- a sender task that ended (ProducerFenced, an unexpected error) fails every later send.

The broker may also forget the producer id (UnknownProducerId) or refuse its epoch. In
each case only a new producer, with a new producer id and sequences from zero, helps.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from common.settings import Settings

PRODUCER_STATE_ERRORS = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


class ProducerDiscarded(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The producer holding this record was replaced before Kafka acknowledged it."""


def new_producer(settings: Settings) -> AIOKafkaProducer:
    """An idempotent producer that answers only after acks=all."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=0,  # records are already packed for a few ms (collector.records)
        max_batch_size=256 * 1024,
        request_timeout_ms=settings.produce_timeout_ms,
    )


def needs_replacing(error: BaseException) -> bool:
    """Tell whether a send failed because of the producer's own state at the broker."""
    return isinstance(error, PRODUCER_STATE_ERRORS)


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
