"""What every benchmark scenario shares: isolated stages of processes, wrk, the test bodies."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from redis.asyncio import Redis

from common.keys import KeyLayout
from load.traffic import TrafficShape
from stack.processes import wait_for_port
from stack.redis import unlink_matching
from stack.servers import PROJECT_ROOT

SERVICE = "SP-DEMO"
SERVER_KEY = "demo-server-key-change-me"
PIXEL_QUERY = (
    "/pixel.gif?sdr_s=SP-DEMO&sdr_o=acct-1&sdr_u=joe%40acme.com&sdr_m=Invoices&sdr_a=Create"
)


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident memory so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    return "wrk"


@dataclass(frozen=True)
class WrkRun:
    """What wrk measured: requests/s, requests answered, the p99 latency, non-2xx answers.

    Requests unanswered after wrk's timeout (2 s) count in timeouts, not in the latency.
    """

    rate: float
    requests: int
    p99_ms: float
    non_2xx: int
    timeouts: int = 0


LATENCY_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(url: str, seconds: int, script: Path | None = None, env: dict[str, str] | None = None,
        connections: int = 64) -> WrkRun:  # fmt: skip
    """Run wrk (two threads) against url for seconds."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    ).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> WrkRun:
    """Read the figures of wrk's --latency output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if rate is None or requests is None or p99 is None:
        raise RuntimeError(f"wrk printed no figures: {out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    timeouts = re.search(r"Socket errors: .* timeout (\d+)", out)
    return WrkRun(
        rate=float(rate.group(1)),
        requests=int(requests.group(1)),
        p99_ms=float(p99.group(1)) * LATENCY_UNIT_MS[p99.group(2)],
        non_2xx=int(bad.group(1)) if bad else 0,
        timeouts=int(timeouts.group(1)) if timeouts else 0,
    )


@dataclass
class Stage:
    """One isolated copy of the processes for a scenario."""

    workdir: Path
    name: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:8]}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    database_url: str = ""
    topic: str = ""
    profile_dir: Path | None = None
    profilers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def topic_name(self) -> str:
        return self.topic or self.name

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "USAGE_TOPIC": self.topic_name,
            "REDIS_KEY_PREFIX": self.name,
            "CONSUMER_GROUP": self.name,
            "DATABASE_URL": self.database_url or f"sqlite:///{self.workdir / self.name}.db",
            "SERVICES_FILE": str(PROJECT_ROOT / "load" / "services.toml"),
            "LOG_LEVEL": "WARNING",
        }

    def start(self, label: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{self.name}-{label}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *args], cwd=PROJECT_ROOT, env={**self.env, **env},
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.processes[label] = process
        self.profile(label, process.pid)
        return process

    def profile(self, label: str, pid: int) -> None:
        """Sample pid with py-spy until it exits, as collapsed stacks in the profile dir."""
        if self.profile_dir is None:
            return
        out = self.profile_dir / f"{label}-{self.name}.txt"
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        argv = [py_spy, "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
                "--format", "raw", "--output", str(out)]  # fmt: skip
        quiet = subprocess.DEVNULL
        self.profilers.append(subprocess.Popen(argv, stdout=quiet, stderr=quiet))

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for profiler in self.profilers:
            profiler.wait()  # py-spy writes its file once the process it samples is gone
        self.profilers.clear()

    async def applied_total(self, partitions: int = 12) -> int:
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        keys = KeyLayout(self.name, self.topic_name)
        try:
            total = 0
            for partition in range(partitions):
                value = await redis.hget(keys.applied(partition), "offset")
                total += int(value) + 1 if value is not None else 0
            return total
        finally:
            await redis.aclose()

    async def cleanup_redis(self) -> None:
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        try:
            await unlink_matching(redis, f"{self.name}:*")
        finally:
            await redis.aclose()


async def end_offsets_total(topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9092")
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(12)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def start_collector(
    stage: Stage, label: str, *args: str
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a collector of stage and wait until it answers; (process, port)."""
    port = free_port()
    process = stage.start(label, "collector", "--port", str(port), *args)
    wait_for_port("127.0.0.1", port, 60)
    await asyncio.sleep(2)  # the producer connects to Kafka after the port opens
    return process, port


def batch_body(path: Path, size: int = 100) -> Path:
    events = list(TrafficShape(accounts=200).events(size))
    path.write_bytes(orjson.dumps({"batch": events}))
    return path
