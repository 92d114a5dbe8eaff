"""One way to open Redis for every process: one server, or a Redis Cluster, by REDIS_URL.

`redis://host:port/db` (or rediss://, unix://) is one server, opened as redis-py's
`Redis.from_url` does. `redis+cluster://host:port,host:port,...` is a Redis Cluster: the
listed nodes are seeds (any one that answers is enough; the client learns the others and
follows MOVED, ASK and failovers), as redis-py's `RedisCluster(startup_nodes=...)`.
"""

from __future__ import annotations

from urllib.parse import unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
# A node that stops answering (hung, or cut off) must not hold a process for ever: the
# client gives up on it, learns the new layout after a failover, and the caller retries.
CLUSTER_SOCKET_TIMEOUT_S = 10.0

RedisClient = Redis | RedisCluster


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def cluster_seeds(url: str) -> list[tuple[str, int]]:
    """Return the (host, port) seeds of a redis+cluster:// URL; ValueError when malformed."""
    rest = url.split("://", 1)[1]
    hosts = rest.rsplit("@", 1)[-1].split("/", 1)[0]
    seeds = []
    for server in hosts.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster node must be host:port, got {server!r}")
        seeds.append((host, int(port)))
    database = rest.rsplit("@", 1)[-1].partition("/")[2].split("?", 1)[0]
    if database not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0")
    return seeds


def connect(url: str, decode_responses: bool = False) -> RedisClient:
    """Open a client for url: a RedisCluster for redis+cluster://..., else one server."""
    if not is_cluster_url(url):
        return Redis.from_url(url, decode_responses=decode_responses)
    rest = url.split("://", 1)[1]
    username = password = None
    if "@" in rest:
        credentials = rest.rsplit("@", 1)[0]
        user, _, secret = credentials.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster_seeds(url)],
        username=username,
        password=password,
        ssl=url.startswith("rediss+"),
        decode_responses=decode_responses,
        socket_timeout=CLUSTER_SOCKET_TIMEOUT_S,
        socket_connect_timeout=CLUSTER_SOCKET_TIMEOUT_S,
    )
