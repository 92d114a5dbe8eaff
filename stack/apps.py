"""The project's own processes, started in the background for the quick start."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from stack.processes import is_alive, read_pid, spawn, stop, wait_for_port

COLLECTOR_PORT = 8080
API_PORT = 8081

APPS: dict[str, list[str]] = {
    "collector": ["-m", "collector", "--port", str(COLLECTOR_PORT)],
    "aggregator": ["-m", "aggregator"],
    "flusher": ["-m", "rollup", "flusher"],
    "api": ["-m", "api", "--port", str(API_PORT)],
}
PORTS = {"collector": COLLECTOR_PORT, "api": API_PORT}
METRICS_PORTS = {"aggregator": 9101, "flusher": 9102}  # the others serve /metrics themselves
# The local stack's operator key for the dashboard, like the demo keys in services.toml.
DEMO_OPS_KEY = "demo-ops-key-change-me"


def start_apps(home: Path, cwd: Path) -> None:
    """Start every app process that is not running yet, and wait for their ports."""
    for name, args in APPS.items():
        pid_file = home / f"{name}.pid"
        if read_pid(pid_file):
            continue
        log_file = home / "logs" / f"{name}.log"
        env = {"OPS_KEY": DEMO_OPS_KEY, **os.environ}
        if name in METRICS_PORTS:
            env["METRICS_PORT"] = str(METRICS_PORTS[name])
        pid = spawn([sys.executable, *args], log_file, pid_file, env=env, cwd=cwd)
        if name in PORTS:
            wait_for_port("127.0.0.1", PORTS[name], timeout_s=60, pid=pid)
        else:
            time.sleep(1)
            if not is_alive(pid):
                raise RuntimeError(f"{name} exited at start; see {home / 'logs' / name}.log")
        print(f"{name:<9} pid {pid}, log {home / 'logs' / name}.log", flush=True)


def stop_apps(home: Path) -> None:
    """Stop the app processes (SIGTERM: they drain in-flight work first)."""
    for name in reversed(APPS):
        if stop(home / f"{name}.pid"):
            print(f"{name} stopped", flush=True)
