"""A Redis Cluster (3 primaries, 1 replica each) and a 3-broker KRaft Kafka, for scale-out.

Both come from the same sources as the single servers (Debian's redis-server, Kafka's jars
from Maven Central) and run beside them on ports of their own, each node in a folder of
its own under one home, with a pid file there.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis as redis_client

from stack import kafka, redis
from stack.processes import read_pid, spawn, stop, wait_for_port

REDIS_CLUSTER_PORTS = (7001, 7002, 7003, 7004, 7005, 7006)
REDIS_CLUSTER_BUS_PORTS = (17001, 17002, 17003, 17004, 17005, 17006)
KAFKA_CLUSTER_PORTS = (9192, 9292, 9392)
KAFKA_CLUSTER_CONTROLLER_PORTS = (9193, 9293, 9393)
CLUSTER_HEAP = "384m"
NODE_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class RedisNode:
    port: int
    bus_port: int
    home: Path

    @property
    def pid_file(self) -> Path:
        return self.home / "redis.pid"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def redis_nodes(home: Path, ports: tuple[int, ...], bus_ports: tuple[int, ...]) -> list[RedisNode]:
    return [
        RedisNode(port, bus, home / f"redis-{port}")
        for port, bus in zip(ports, bus_ports, strict=True)
    ]


def start_redis_node(node: RedisNode, node_timeout_ms: int = NODE_TIMEOUT_MS) -> int:
    """Start one cluster-enabled redis-server with AOF (it rejoins from its nodes.conf)."""
    redis.install()
    node.home.mkdir(parents=True, exist_ok=True)
    argv = [
        "redis-server",
        "--bind", "127.0.0.1",
        "--port", str(node.port),
        "--cluster-enabled", "yes",
        "--cluster-port", str(node.bus_port),
        "--cluster-config-file", str(node.home / "nodes.conf"),
        "--cluster-node-timeout", str(node_timeout_ms),
        # A replica is promoted however long it was cut off: losing its last writes is
        # what the stored offsets are for (the aggregators re-read them from Kafka).
        "--cluster-replica-validity-factor", "0",
        "--dir", str(node.home),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
    ]  # fmt: skip
    pid = spawn(argv, node.home / "redis.log", node.pid_file)
    wait_for_port("127.0.0.1", node.port, timeout_s=20, pid=pid)
    return pid


def start_redis_cluster(nodes: list[RedisNode], node_timeout_ms: int = NODE_TIMEOUT_MS) -> str:
    """Start the nodes; create the cluster once (the first half primaries); return REDIS_URL."""
    fresh = not (nodes[0].home / "nodes.conf").exists()
    for node in nodes:
        if read_pid(node.pid_file) is None:
            start_redis_node(node, node_timeout_ms)
    if fresh:
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(n.address for n in nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    wait_for_cluster_ok([n.port for n in nodes])
    url = "redis+cluster://" + ",".join(n.address for n in nodes)
    print(f"redis     {url} (Redis Cluster, AOF per node)", flush=True)
    return url


def wait_for_cluster_ok(ports: list[int], timeout_s: float = 60) -> None:
    """Wait until every node sees all slots served (cluster_state:ok) and agrees on it."""
    deadline = time.monotonic() + timeout_s
    for port in ports:
        with redis_client.Redis(port=port) as client:
            while True:
                try:
                    info = client.cluster("INFO")
                    if info.get("cluster_state") == "ok":
                        break
                except redis_client.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Redis Cluster node {port} not ok within {timeout_s} s")
                time.sleep(0.2)


def stop_redis_cluster(nodes: list[RedisNode]) -> None:
    for node in nodes:
        stop(node.pid_file)


@dataclass(frozen=True)
class Broker:
    node_id: int
    port: int
    controller_port: int
    home: Path

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"


def brokers(home: Path, ports: tuple[int, ...], controller_ports: tuple[int, ...]) -> list[Broker]:
    return [
        Broker(node_id, port, controller, home / f"kafka-{node_id}")
        for node_id, (port, controller) in enumerate(zip(ports, controller_ports, strict=True), 1)
    ]


def start_kafka_cluster(all_brokers: list[Broker], libs: Path) -> str:
    """Start the brokers (each also a controller of the quorum); return KAFKA_BOOTSTRAP."""
    voters = ",".join(f"{b.node_id}@127.0.0.1:{b.controller_port}" for b in all_brokers)
    cluster_id_file = all_brokers[0].home.parent / "kafka-cluster-id"
    if not cluster_id_file.exists():
        cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
        cluster_id_file.write_text(kafka.new_cluster_id())
    cluster_id = cluster_id_file.read_text().strip()
    for broker in all_brokers:
        start_broker(broker, libs, voters, cluster_id)
    for broker in all_brokers:
        wait_for_port("127.0.0.1", broker.port, timeout_s=120, pid=read_pid(broker.pid_file))
    bootstrap = ",".join(f"127.0.0.1:{b.port}" for b in all_brokers)
    print(f"kafka     {bootstrap} (KRaft, replication factor 3)", flush=True)
    return bootstrap


def start_broker(broker: Broker, libs: Path, voters: str, cluster_id: str) -> None:
    """Start (or restart) one broker of the cluster without waiting for its port."""
    quorum = kafka.Quorum(broker.node_id, voters, cluster_id, CLUSTER_HEAP)
    kafka.start(broker.home, broker.port, broker.controller_port, libs, quorum, wait=False)


def stop_kafka_cluster(all_brokers: list[Broker]) -> None:
    for broker in all_brokers:
        stop(broker.pid_file, timeout_s=60)
