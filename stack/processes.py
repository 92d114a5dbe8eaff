"""Start, find and stop detached local processes tracked by pid files."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


def is_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


def read_pid(pid_file: Path) -> int | None:
    """Return the live pid recorded in pid_file, or None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if is_alive(pid) else None


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float, pid: int | None = None) -> None:
    """Wait until host:port accepts connections; fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if pid is not None and not is_alive(pid):
            raise RuntimeError(f"process {pid} exited before {host}:{port} opened")
        time.sleep(0.2)
    raise TimeoutError(f"{host}:{port} did not open within {timeout_s:.0f} s")


def spawn(
    argv: list[str],
    log_file: Path,
    pid_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start argv in its own session, detached from this process, logging to log_file.

    posix_spawn rather than subprocess.Popen: the server outlives the Popen object
    that would otherwise warn about a child it never waited for.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    previous = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        pid = os.posix_spawnp(
            argv[0],
            argv,
            dict(os.environ if env is None else env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null_fd, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.chdir(previous)
        os.close(log_fd)
        os.close(null_fd)
    pid_file.write_text(str(pid))
    return pid


def stop(pid_file: Path, timeout_s: float = 30.0) -> bool:
    """Send SIGTERM to the recorded process, wait for it, SIGKILL if it lingers."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True
