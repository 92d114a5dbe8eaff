"""Debian's headless Chromium for the browser tests (Playwright drives it, no download)."""

from __future__ import annotations

import os
import shutil
import subprocess

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def ensure_chromium() -> str:
    """Install Debian's chromium when it is missing; return its path."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if not shutil.which("apt-get"):
        raise RuntimeError("chromium is missing and apt-get is not available to install it")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return CHROMIUM
