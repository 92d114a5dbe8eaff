"""Every installed command answers --help with all its options and every setting it reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import Settings

SCRIPTS = Path(sys.executable).parent
PROJECT = Path(__file__).parents[2]

COMMANDS = [
    (["usage-collector"], ["--host", "--port", "--workers", "(default: 8080)"]),
    (["usage-aggregator"], ["-h, --help"]),
    (["usage-rollup"], ["flusher", "flush", "rebuild", "import", "serve"]),
    (["usage-rollup", "flusher"], ["-h, --help"]),
    (["usage-rollup", "flush"], ["--service SERVICE", "--day DAY", "--force"]),
    (["usage-rollup", "rebuild"], ["--service SERVICE", "--from FIRST_DAY", "--to LAST_DAY"]),
    (["usage-rollup", "import"], ["file", "--service SERVICE", "alias of usage-import"]),
    (["usage-rollup", "serve"], ["--host", "--port", "(default: 8081)", "alias of usage-api"]),
    (["usage-api"], ["--host", "--port", "(default: 8081)", "python -m rollup serve"]),
    (["usage-import"], ["file", "--service SERVICE"]),
    (["usage-stack"], ["{up,down,status}", "--servers-only"]),
]  # fmt: skip


@pytest.mark.parametrize(("command", "options"), COMMANDS, ids=" ".join)
def test_help_lists_options_and_settings(command: list[str], options: list[str]) -> None:
    script = SCRIPTS / command[0]
    assert script.is_file(), f"{script} is missing: run pip install -e . again"
    result = subprocess.run(
        [str(script), *command[1:], "--help"],
        capture_output=True, text=True, timeout=60, cwd=PROJECT, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"usage: {' '.join(command)} ")
    for option in options:
        assert option in result.stdout
    for doc in Settings.documented():
        assert f"  {doc.variable} (default: {doc.default.replace('`', '')})\n" in result.stdout


@pytest.mark.parametrize("package", ["api", "importer"])  # the others run as -m in every e2e test
def test_new_packages_run_with_python_dash_m(package: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", package, "--help"],
        capture_output=True, text=True, timeout=60, cwd=PROJECT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "settings (environment variables" in result.stdout
