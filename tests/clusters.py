"""A Redis Cluster and a 3-broker Kafka of the test session's own, and the faults done to them."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis as redis_client
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from redis.crc import key_slot

from stack import clusters
from stack.clusters import Broker, RedisNode
from stack.processes import is_alive, read_pid

NODE_TIMEOUT_MS = 2000  # failovers within seconds, so the tests stay short


@dataclass
class Clusters:
    home: Path
    redis_nodes: list[RedisNode]
    brokers: list[Broker]
    libs: Path

    @property
    def redis_url(self) -> str:
        return "redis+cluster://" + ",".join(node.address for node in self.redis_nodes)

    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{broker.port}" for broker in self.brokers)

    @property
    def voters(self) -> str:
        return ",".join(f"{b.node_id}@127.0.0.1:{b.controller_port}" for b in self.brokers)


def listening_ports(count: int) -> tuple[int, ...]:
    """Free ports below the kernel's ephemeral range, so no outgoing connection takes one
    while the servers start (free_port()'s ports may be reused that way within minutes)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    chosen: list[int] = []
    while len(chosen) < count:
        port = rng.randrange(low // 2, low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in chosen:
            chosen.append(port)
    return tuple(chosen)


def start_clusters(home: Path, libs: Path) -> Clusters:
    """Start both clusters on free ports (nothing else uses them) under home."""
    ports = listening_ports(18)
    started = Clusters(
        home,
        clusters.redis_nodes(home, ports[0:6], ports[6:12]),
        clusters.brokers(home, ports[12:15], ports[15:18]),
        libs,
    )
    clusters.start_redis_cluster(started.redis_nodes, NODE_TIMEOUT_MS)
    clusters.start_kafka_cluster(started.brokers, libs)
    asyncio.run(wait_for_brokers(started.kafka_bootstrap, len(started.brokers)))
    return started


async def wait_for_brokers(bootstrap: str, count: int, timeout_s: float = 120) -> None:
    """Wait until count brokers have registered with the controllers."""
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            if len((await admin.describe_cluster())["brokers"]) == count:
                return
        except KafkaError:
            pass
        finally:
            await admin.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} Kafka brokers within {timeout_s} s")
        await asyncio.sleep(1)


def stop_all(started: Clusters) -> None:
    """kill -9 every node still running: the session's data is thrown away anyway."""
    for pid_file in [b.pid_file for b in started.brokers] + [
        n.pid_file for n in started.redis_nodes
    ]:
        if read_pid(pid_file) is not None:
            kill(pid_file)


def kill(pid_file: Path) -> None:
    """kill -9 the process of pid_file and wait until it is gone."""
    pid = read_pid(pid_file)
    assert pid is not None, pid_file
    os.kill(pid, signal.SIGKILL)
    while is_alive(pid):
        time.sleep(0.05)


def cluster_nodes(started: Clusters) -> list[dict[str, Any]]:
    """Ask a live node for the cluster's view: id, port, flags, primary id, slot ranges."""
    for node in started.redis_nodes:
        if read_pid(node.pid_file) is None:
            continue
        with redis_client.Redis(port=node.port, decode_responses=True) as client:
            try:
                parsed = client.execute_command("CLUSTER NODES")
            except redis_client.RedisError:
                continue
        return [
            {"id": row["node_id"], "port": address.rsplit(":", 1)[1], "flags": row["flags"],
             "primary": row["master_id"], "slots": row["slots"]}
            for address, row in parsed.items()
        ]  # fmt: skip
    raise RuntimeError("no Redis Cluster node answers")


def node_of_port(started: Clusters, port: str | int) -> RedisNode:
    return next(node for node in started.redis_nodes if node.port == int(port))


def primary_of_slot(started: Clusters, slot: int) -> tuple[RedisNode, str]:
    """Return the node serving slot now, and its cluster id."""
    for row in cluster_nodes(started):
        if "master" not in row["flags"] or "fail" in row["flags"]:
            continue
        for low, *high in row["slots"]:
            if int(low) <= slot <= int((high or [low])[0]):
                return node_of_port(started, row["port"]), row["id"]
    raise RuntimeError(f"slot {slot} is not served")


def replica_of(started: Clusters, primary_id: str, timeout_s: float = 30) -> RedisNode:
    """Return primary's replica, once the cluster's gossip has told a node about it."""
    deadline = time.monotonic() + timeout_s
    while True:
        for row in cluster_nodes(started):
            if row["primary"] == primary_id and "fail" not in row["flags"]:
                return node_of_port(started, row["port"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"no replica of {primary_id}")
        time.sleep(0.2)


def slot_of(key: str) -> int:
    return int(key_slot(key.encode()))


def wait_until_served_by_another(
    started: Clusters, slot: int, dead: RedisNode, timeout_s: float = 60
) -> RedisNode:
    """Wait for the failover: another node serves slot and the cluster is ok again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            node, _ = primary_of_slot(started, slot)
            if node != dead:
                alive = [n.port for n in started.redis_nodes if read_pid(n.pid_file) is not None]
                clusters.wait_for_cluster_ok(alive, timeout_s=max(1, deadline - time.monotonic()))
                return node
        except (redis_client.RedisError, RuntimeError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"slot {slot} still not served by a new primary")
        time.sleep(0.2)


def restart_node(started: Clusters, node: RedisNode) -> None:
    """Start a killed node again: it rejoins from its nodes.conf (as a replica if replaced)."""
    clusters.start_redis_node(node, NODE_TIMEOUT_MS)
    alive = [n.port for n in started.redis_nodes if read_pid(n.pid_file) is not None]
    clusters.wait_for_cluster_ok(alive)


def migrate_slot(source: RedisNode, target: RedisNode, slot: int, started: Clusters) -> int:
    """Move one slot's keys from source to target, as `redis-cli --cluster reshard` does.

    Returns how many keys moved. Meanwhile clients get ASK, and multi-key commands TRYAGAIN.
    """
    rows = {n["port"]: n["id"] for n in cluster_nodes(started)}
    source_id, target_id = rows[str(source.port)], rows[str(target.port)]
    moved = 0
    with (
        redis_client.Redis(port=source.port) as src,
        redis_client.Redis(port=target.port) as dst,
    ):
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 10_000, "KEYS", *keys)
            moved += len(keys)
        for node in (dst, src):
            node.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
    return moved


async def partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Return partition -> id of the broker leading it (retrying while a broker is away)."""
    for _ in range(60):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            (described,) = await admin.describe_topics([topic])
            return {p["partition"]: p["leader"] for p in described["partitions"]}
        except KafkaError:
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise TimeoutError(f"no broker described {topic}")


def restart_broker(started: Clusters, broker: Broker) -> None:
    """Start a killed broker again (it catches up from the others; nobody waits for it)."""
    cluster_id = (started.home / "kafka-cluster-id").read_text().strip()
    clusters.start_broker(broker, started.libs, started.voters, cluster_id)
