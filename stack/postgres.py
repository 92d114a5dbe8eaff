"""PostgreSQL from Debian's packages, for the store tests and for DATABASE_URL=postgresql://."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from stack.processes import port_open, wait_for_port

POSTGRES_PORT = 5432
DEFAULT_URL = f"postgresql://postgres@127.0.0.1:{POSTGRES_PORT}/postgres"


def binaries() -> Path | None:
    """Return the newest installed PostgreSQL's bin directory, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def install() -> Path:
    """Install Debian's postgresql when it is missing; return its bin directory."""
    found = binaries()
    if found is not None:
        return found
    print("installing postgresql from Debian's packages ...", flush=True)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env)
    found = binaries()
    if found is None:
        raise RuntimeError("postgresql was installed but initdb is not in /usr/lib/postgresql")
    return found


def server_home(home: Path) -> Path:
    """Where the server's data and log live. As root the server runs as the postgres user,
    which may not reach home (a clone in a private temporary directory, say): then a
    directory of its own under /var/lib, one per project home."""
    if os.geteuid() != 0:
        return home
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    return Path("/var/lib/usage-stack") / digest


def as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user then."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def start(home: Path, port: int = POSTGRES_PORT) -> bool:
    """Initialise (once) and start a local server with trust auth on loopback; True if started."""
    if port_open("127.0.0.1", port):
        return False
    bin_dir = install()
    home = server_home(home)
    data = home / "postgres"
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            as_server_user(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                 "--no-sync", "-E", "UTF8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    log = home / "logs" / "postgres.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    if os.geteuid() == 0:
        shutil.chown(log, "postgres", "postgres")
    subprocess.run(
        as_server_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start", "-o",
             f"-p {port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port("127.0.0.1", port, timeout_s=30)
    print(f"postgres  {DEFAULT_URL} (data in {data})", flush=True)
    return True


def stop_server(home: Path) -> None:
    bin_dir = binaries()
    data = server_home(home) / "postgres"
    if bin_dir is None or not (data / "postmaster.pid").exists():
        return
    subprocess.run(
        as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
        check=False,
        stdout=subprocess.DEVNULL,
    )
    print("postgres stopped", flush=True)
