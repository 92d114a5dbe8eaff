"""Redis from Debian's redis-server, persisted with an append-only file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis as redis_client

from common.redis_client import RedisClient
from stack.processes import port_open, read_pid, spawn, stop, wait_for_port

REDIS_PORT = 6379


def install() -> None:
    """Install Debian's redis-server when it is missing."""
    if shutil.which("redis-server"):
        return
    print("installing redis-server from Debian's packages ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "redis-server"],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def start(home: Path, port: int = REDIS_PORT) -> None:
    """Start redis-server with AOF (appendfsync everysec) unless one already answers."""
    pid_file = home / "redis.pid"
    if read_pid(pid_file) or port_open("127.0.0.1", port):
        require_aof(port)
        return
    install()
    data_dir = home / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        "redis-server",
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
    ]  # fmt: skip
    pid = spawn(argv, home / "logs" / "redis.log", pid_file)
    wait_for_port("127.0.0.1", port, timeout_s=20, pid=pid)
    print(f"redis     redis://127.0.0.1:{port}/0 (AOF in {data_dir})", flush=True)


def require_aof(port: int) -> None:
    """Turn AOF on in a Redis this project did not start (a distribution's service, say)."""
    client = redis_client.Redis(port=port)
    try:
        if client.config_get("appendonly").get("appendonly") != "yes":
            client.config_set("appendonly", "yes")
            client.config_set("appendfsync", "everysec")
            print(f"redis on port {port}: turned on appendonly (AOF)", flush=True)
    finally:
        client.close()


async def unlink_matching(client: RedisClient, pattern: str) -> None:
    """Delete every key matching pattern (a test's or a benchmark's own prefix).

    On a Redis Cluster the scan runs on every primary and each UNLINK is split by slot.
    """
    batch = []
    async for key in client.scan_iter(match=pattern, count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await client.unlink(*batch)
            batch = []
    if batch:
        await client.unlink(*batch)


def is_running(home: Path, port: int = REDIS_PORT) -> bool:
    """Tell whether this project's redis (or another on the same port) is up."""
    return read_pid(home / "redis.pid") is not None or port_open("127.0.0.1", port)


def stop_server(home: Path) -> None:
    """Stop the Redis started by start()."""
    if stop(home / "redis.pid"):
        print("redis stopped", flush=True)
