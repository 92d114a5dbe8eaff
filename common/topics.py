"""Create the usage topic when it is missing."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

RETENTION_MS = 14 * 24 * 3600 * 1000  # a Redis rollback re-reads up to 7 days; keep twice that


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create topic with partitions and 14-day retention unless it exists already."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        topic,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs={"retention.ms": str(RETENTION_MS)},
                    )
                ]
            )
            log.info("created topic %s with %d partitions", topic, partitions)
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()
