"""Redpanda Connect, the tool teams pick to put HTTP requests on Kafka: built and configured.

The Go program in load/peer is Connect v4.31.0 with only the `io`, `kafka` and `pure`
components. Its configs do what the collector does with the same bodies, minus validation,
dedup and limits: a pixel hit becomes one event, a `{"batch": [...]}` post one Kafka
message per event, and each request is answered only after Kafka acknowledged (acks=all).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from collector.pixel import GIF
from stack.processes import wait_for_port
from stack.servers import PROJECT_ROOT, STACK_HOME

SOURCE_DIR = PROJECT_ROOT / "load" / "peer"
SOURCE_FILES = ("go.mod", "go.sum", "main.go")
GO_FALLBACK = Path("/usr/local/go/bin/go")
KAFKA = "127.0.0.1:9092"

PIXEL_EVENT = """
root.service_id = @sdr_s
root.account_id = @sdr_o
root.user_id = @sdr_u
root.module = @sdr_m
root.activity = @sdr_a
"""


def find_go() -> str | None:
    """The Go toolchain on PATH or in its usual place; None when there is none."""
    found = shutil.which("go")
    if found:
        return found
    return str(GO_FALLBACK) if GO_FALLBACK.exists() else None


def connect_binary(home: Path = STACK_HOME) -> Path:
    """Where the peer lives once built: named by a digest of its sources, so edits rebuild."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update((SOURCE_DIR / name).read_bytes())
    return home / "peer" / f"connect-{digest.hexdigest()[:12]}"


def build_connect(go: str, home: Path = STACK_HOME) -> Path:
    """Build the peer from the Go module proxy (about a minute) unless it is built already."""
    binary = connect_binary(home)
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.partial")
    subprocess.run(
        [go, "build", "-trimpath", "-buildvcs=false", "-mod=readonly", "-o", str(partial), "."],
        cwd=SOURCE_DIR, check=True,
    )  # fmt: skip
    partial.rename(binary)  # atomic: a concurrent run sees the whole binary or none
    return binary


def kafka_output(topic: str) -> dict[str, Any]:
    """kafka_franz as the collector produces: acks=all (idempotent), keyed by account."""
    return {
        "kafka_franz": {
            "seed_brokers": [KAFKA],
            "topic": topic,
            "key": '${! json("account_id") }',
            "idempotent_write": True,
            "max_in_flight": 256,
            "compression": "none",
        }
    }


def pixel_config(port: int, metrics_port: int, topic: str) -> dict[str, Any]:
    """GET /pixel.gif: the sdr_* query mapped to an event; the GIF answered after the ack."""
    gif = base64.b64encode(GIF).decode()
    return {
        "http": {"address": f"127.0.0.1:{metrics_port}"},
        "logger": {"level": "WARN"},
        "input": {
            "http_server": {
                "address": f"127.0.0.1:{port}",
                "path": "/pixel.gif",
                "allowed_verbs": ["GET"],
                "sync_response": {
                    "headers": {"Content-Type": "image/gif", "Cache-Control": "no-store"}
                },
            }
        },
        "pipeline": {
            "processors": [
                {"mapping": f'root = "{gif}".decode("base64")'},
                {"sync_response": {}},  # the answer, sent once the output acknowledged
                {"mapping": PIXEL_EVENT},
            ]
        },
        "output": kafka_output(topic),
    }


def batch_config(port: int, metrics_port: int, topic: str) -> dict[str, Any]:
    """POST /v1/events with {"batch": [...]}: one Kafka message per event."""
    return {
        "http": {"address": f"127.0.0.1:{metrics_port}"},
        "logger": {"level": "WARN"},
        "input": {
            "http_server": {
                "address": f"127.0.0.1:{port}",
                "path": "/v1/events",
                "allowed_verbs": ["POST"],
            }
        },
        "pipeline": {
            "processors": [
                {"mapping": "root = this.batch"},
                {"unarchive": {"format": "json_array"}},
            ]
        },
        "output": kafka_output(topic),
    }


def start_connect(
    binary: Path, config: dict[str, Any], config_path: Path, port: int, gomaxprocs: int
) -> subprocess.Popen[bytes]:
    """Run the peer on config with gomaxprocs cores and wait until its port answers."""
    config_path.write_text(json.dumps(config, indent=2))  # YAML is a superset of JSON
    with config_path.with_suffix(".log").open("ab") as log:
        process = subprocess.Popen(
            [str(binary), "run", str(config_path)],
            env={**os.environ, "GOMAXPROCS": str(gomaxprocs)},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_for_port("127.0.0.1", port, 30)
    return process
