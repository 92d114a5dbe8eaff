"""Create the usage topic when it is missing."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

RETENTION_MS = 14 * 24 * 3600 * 1000  # a Redis rollback re-reads up to 7 days; keep twice that
MAX_REPLICATION = 3  # with the brokers' min.insync.replicas=2: one broker may fail


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create topic with partitions and 14-day retention unless it exists already.

    Replicated on up to three brokers, as many as the cluster has.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = max(1, min(MAX_REPLICATION, brokers))
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        topic,
                        num_partitions=partitions,
                        replication_factor=replication,
                        topic_configs={"retention.ms": str(RETENTION_MS)},
                    )
                ]
            )
            log.info(
                "created topic %s with %d partitions, replication factor %d",
                topic, partitions, replication,
            )  # fmt: skip
        except TopicAlreadyExistsError:
            pass
    finally:
        await admin.close()
