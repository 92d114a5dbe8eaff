"""The Redis key layout shared by the aggregator, the flusher and the query API.

Every key a batch of one Kafka partition touches carries that partition's hash tag
`{topic:partition}`, so one Lua script can change them atomically, also on Redis Cluster.
Ids go into keys and fields as JSON arrays: any string round-trips and no two differ only
by where a separator falls.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


def encode_parts(*parts: str) -> str:
    """Join ids unambiguously (a JSON array)."""
    return orjson.dumps(parts).decode()


def decode_parts(text: str | bytes) -> list[str]:
    """Split what encode_parts joined."""
    parts: list[str] = orjson.loads(text)
    return parts


def bucket_field(user_id: str, module: str, activity: str) -> str:
    """Name the field of one (user, module, activity) count inside an account's bucket."""
    return encode_parts(user_id, module, activity)


@dataclass(frozen=True)
class KeyLayout:
    prefix: str
    topic: str

    def partition_tag(self, partition: int) -> str:
        return f"{self.prefix}:{{{self.topic}:{partition}}}"

    def partitions(self) -> str:
        """Set of the topic's partition numbers the aggregators have seen."""
        return f"{self.prefix}:partitions:{self.topic}"

    def applied(self, partition: int) -> str:
        """Hash: offset, events, received_ms, caught_up_ms of what this partition has applied."""
        return f"{self.partition_tag(partition)}:applied"

    def days(self, partition: int) -> str:
        """Set of encode_parts(service, day) with live buckets in this partition."""
        return f"{self.partition_tag(partition)}:days"

    def accounts(self, partition: int, service_id: str, day: str) -> str:
        """Set of account ids with a live bucket for (service, day) in this partition."""
        return f"{self.partition_tag(partition)}:accounts:{encode_parts(service_id, day)}"

    def bucket(self, partition: int, service_id: str, day: str, account_id: str) -> str:
        """Hash of bucket_field(user, module, activity) -> count for one account and day."""
        return f"{self.partition_tag(partition)}:bucket:{encode_parts(service_id, day, account_id)}"

    def seen(self, partition: int, service_id: str, event_id: str) -> str:
        """Marker of an event_id already counted (expires after the dedup window)."""
        return f"{self.partition_tag(partition)}:seen:{encode_parts(service_id, event_id)}"

    def account_updates(self, partition: int) -> str:
        """List of account updates (JSON) applied with the counts, waiting for SQL."""
        return f"{self.partition_tag(partition)}:account-updates"

    def staged(self, partition: int) -> str:
        """Hash: flush id -> encode_parts(service, day) of buckets moved aside for a flush."""
        return f"{self.partition_tag(partition)}:staged"

    def staged_accounts(self, partition: int, flush_id: str) -> str:
        return f"{self.partition_tag(partition)}:staged:{flush_id}:accounts"

    def staged_bucket(self, partition: int, flush_id: str, account_id: str) -> str:
        return (
            f"{self.partition_tag(partition)}:staged:{flush_id}:bucket:{encode_parts(account_id)}"
        )

    def heartbeat(self, component: str, member: str) -> str:
        """Key with a TTL that a live worker keeps refreshing."""
        return f"{self.prefix}:heartbeat:{self.topic}:{component}:{member}"

    def produced(self) -> str:
        """Hash: partition -> events the collectors put on it that Kafka acknowledged."""
        return f"{self.prefix}:produced:{self.topic}"

    def rejects(self) -> str:
        """Hash: reason -> number of events or updates refused after Kafka."""
        return f"{self.prefix}:rejects:{self.topic}"

    def names(self, service_id: str, kind: str) -> str:
        """Set of the service's known module or activity names (kind: module|activity)."""
        return f"{self.prefix}:names:{encode_parts(service_id, kind)}"

    def rate_bucket(self, service_id: str, kind: str) -> str:
        """Hash: the token bucket of a service's requests of kind (public|server)."""
        return f"{self.prefix}:rate:{encode_parts(service_id, kind)}"
