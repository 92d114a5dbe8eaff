"""Apache Kafka in KRaft mode (one broker+controller) from the official jars on Maven Central."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stack.processes import port_open, read_pid, spawn, stop, wait_for_port

KAFKA_PORT = 9092
CONTROLLER_PORT = 9093
HEAP = "512m"
RETENTION_HOURS = 14 * 24  # > the 7 days a Redis rollback may need to re-read

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=12
auto.create.topics.enable=false
default.replication.factor={replication}
min.insync.replicas={min_insync}
offsets.topic.replication.factor={replication}
offsets.topic.num.partitions=12
transaction.state.log.replication.factor={replication}
transaction.state.log.min.isr={min_insync}
share.coordinator.state.topic.replication.factor={replication}
share.coordinator.state.topic.min.isr={min_insync}
group.initial.rebalance.delay.ms=0
log.retention.hours={retention_hours}
"""

# A broker of several is declared dead after this long without a heartbeat, and its
# partitions get new leaders: well within the collector's produce timeout.
CLUSTER_PROPERTIES = """\
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
"""


@dataclass(frozen=True)
class Quorum:
    """Where a broker stands among the brokers of one KRaft cluster (all also controllers)."""

    node_id: int = 1
    voters: str = ""  # id@host:controller_port,...; empty: this broker alone
    cluster_id: str = ""  # shared by every broker; empty: a fresh one
    heap: str = HEAP

    @property
    def size(self) -> int:
        return len(self.voters.split(",")) if self.voters else 1


LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def fetch_jars(libs: Path) -> None:
    """Copy the pinned Kafka jars and their dependencies from Maven Central into libs."""
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return
    if not shutil.which("mvn"):
        raise RuntimeError("Maven (mvn) is needed to fetch the Kafka jars")
    print("fetching Apache Kafka jars with Maven ...", flush=True)
    pom = resources.files("stack").joinpath("kafka-pom.xml")
    with resources.as_file(pom) as pom_path:
        subprocess.run(
            [
                "mvn", "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
            ],
            check=True,
        )  # fmt: skip


def java_argv(
    libs: Path, config_dir: Path, main_class: str, *args: str, heap: str = HEAP
) -> list[str]:
    """Build the java command line that runs one of Kafka's main classes."""
    return [
        "java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={config_dir / 'log4j2.properties'}",
        "-cp", f"{libs}/*", main_class, *args,
    ]  # fmt: skip


def start(
    home: Path,
    port: int = KAFKA_PORT,
    controller_port: int = CONTROLLER_PORT,
    libs: Path | None = None,
    quorum: Quorum = Quorum(),
    wait: bool = True,
) -> int | None:
    """Format (once) and start the KRaft broker unless one already answers on port.

    Returns the new broker's pid. libs may point at jars fetched for another home; quorum
    makes it one of several brokers (replication factor 3, min.insync.replicas 2); those
    open their port only once a majority runs, so their starter waits for them all at once.
    """
    pid_file = home / "kafka.pid"
    if read_pid(pid_file) or port_open("127.0.0.1", port):
        return None
    kafka_home = home / "kafka"
    libs = libs or kafka_home / "libs"
    config_dir = kafka_home / "config"
    log_dir = kafka_home / "data"
    fetch_jars(libs)
    config_dir.mkdir(parents=True, exist_ok=True)
    properties = config_dir / "server.properties"
    replication = min(quorum.size, 3)
    properties.write_text(
        SERVER_PROPERTIES.format(
            node_id=quorum.node_id,
            voters=quorum.voters or f"{quorum.node_id}@127.0.0.1:{controller_port}",
            port=port,
            controller_port=controller_port,
            log_dir=log_dir,
            replication=replication,
            min_insync=max(1, replication - 1),
            retention_hours=RETENTION_HOURS,
        )
        + (CLUSTER_PROPERTIES if quorum.size > 1 else "")
    )
    (config_dir / "log4j2.properties").write_text(
        LOG4J2.format(log_file=home / "logs" / "kafka-server.log")
    )
    (home / "logs").mkdir(parents=True, exist_ok=True)
    if not (log_dir / "meta.properties").exists():
        cluster_id = quorum.cluster_id or new_cluster_id()
        subprocess.run(
            java_argv(
                libs, config_dir, "kafka.tools.StorageTool",
                "format", "-t", cluster_id, "-c", str(properties), heap=quorum.heap,
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    pid = spawn(
        java_argv(libs, config_dir, "kafka.Kafka", str(properties), heap=quorum.heap),
        home / "logs" / "kafka.log",
        pid_file,
    )
    if wait:
        wait_for_port("127.0.0.1", port, timeout_s=90, pid=pid)
        print(f"kafka     127.0.0.1:{port} (KRaft, data in {log_dir})", flush=True)
    return pid


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def is_running(home: Path, port: int = KAFKA_PORT) -> bool:
    """Tell whether this project's kafka (or another on the same port) is up."""
    return read_pid(home / "kafka.pid") is not None or port_open("127.0.0.1", port)


def stop_server(home: Path) -> None:
    """Stop the broker started by start(); it flushes its logs on SIGTERM."""
    if stop(home / "kafka.pid", timeout_s=60):
        print("kafka stopped", flush=True)
