"""The benchmark harness, run with tiny durations so that it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stack.servers import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def test_quick_bench_reports_every_figure(
    servers: None, postgres_server: None, tmp_path: Path
) -> None:
    out, raw = tmp_path / "bench.md", tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "load.bench", "--quick", "--out", str(out), "--json", str(raw)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(raw.read_text())
    assert set(figures) == {"machine", "pixel", "batch", "aggregator", "latency", "flush", "memory"}
    assert figures["pixel"]["non_2xx"] == 0 and figures["batch"]["non_2xx"] == 0
    assert (
        figures["pixel"]["collector_hits_per_s"] > 0 and figures["pixel"]["ceiling_hits_per_s"] > 0
    )
    assert figures["aggregator"]["events"] > 0 and figures["aggregator"]["events_per_s"] > 0
    assert figures["flush"]["sqlite"]["rows_flushed"] == figures["flush"]["sqlite"]["entries"]
    assert (
        figures["flush"]["postgresql"]["rows_flushed"] == figures["flush"]["postgresql"]["entries"]
    )
    assert figures["latency"]["p99_s"] > 0
    report = out.read_text()
    assert report.startswith("# Benchmarks")
    assert "| pixel hits/s vs bare aiohttp |" in report
