"""Apache Kafka in KRaft mode (one broker+controller) from the official jars on Maven Central."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path

from stack.processes import port_open, read_pid, spawn, stop, wait_for_port

KAFKA_PORT = 9092
CONTROLLER_PORT = 9093
HEAP = "512m"
RETENTION_HOURS = 14 * 24  # > the 7 days a Redis rollback may need to re-read

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=12
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours={retention_hours}
"""

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


def java_argv(libs: Path, config_dir: Path, main_class: str, *args: str) -> list[str]:
    """Build the java command line that runs one of Kafka's main classes."""
    return [
        "java", f"-Xms{HEAP}", f"-Xmx{HEAP}", "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={config_dir / 'log4j2.properties'}",
        "-cp", f"{libs}/*", main_class, *args,
    ]  # fmt: skip


def start(
    home: Path,
    port: int = KAFKA_PORT,
    controller_port: int = CONTROLLER_PORT,
    libs: Path | None = None,
) -> int | None:
    """Format (once) and start the KRaft broker unless one already answers on port.

    Returns the new broker's pid. libs may point at jars fetched for another home.
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
    properties.write_text(
        SERVER_PROPERTIES.format(
            port=port,
            controller_port=controller_port,
            log_dir=log_dir,
            retention_hours=RETENTION_HOURS,
        )
    )
    (config_dir / "log4j2.properties").write_text(
        LOG4J2.format(log_file=home / "logs" / "kafka-server.log")
    )
    (home / "logs").mkdir(parents=True, exist_ok=True)
    if not (log_dir / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run(
            java_argv(
                libs, config_dir, "kafka.tools.StorageTool",
                "format", "-t", cluster_id, "-c", str(properties),
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    pid = spawn(
        java_argv(libs, config_dir, "kafka.Kafka", str(properties)),
        home / "logs" / "kafka.log",
        pid_file,
    )
    wait_for_port("127.0.0.1", port, timeout_s=90, pid=pid)
    print(f"kafka     127.0.0.1:{port} (KRaft, data in {log_dir})", flush=True)
    return pid


def is_running(home: Path, port: int = KAFKA_PORT) -> bool:
    """Tell whether this project's kafka (or another on the same port) is up."""
    return read_pid(home / "kafka.pid") is not None or port_open("127.0.0.1", port)


def stop_server(home: Path) -> None:
    """Stop the broker started by start(); it flushes its logs on SIGTERM."""
    if stop(home / "kafka.pid", timeout_s=60):
        print("kafka stopped", flush=True)
