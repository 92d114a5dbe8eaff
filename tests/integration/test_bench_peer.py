"""The benchmark beside Redpanda Connect, run briefly when the peer is already built.

Building the peer takes about a minute (`python -m load.bench --only peer` does it once), so
the suite runs this scenario only when the binary for load/peer's current sources exists.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from load.peer import connect_binary
from stack.servers import PROJECT_ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(
    not connect_binary().exists(),
    reason="the peer is not built: python -m load.bench --only peer builds it (needs Go)",
)
def test_quick_peer_bench_measures_both_servers(servers: None) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "load.bench", "--quick", "--only", "peer"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # the run fails by itself when Kafka holds fewer events than Connect acknowledged
    assert result.returncode == 0, result.stderr[-3000:]
    peer = json.loads(result.stdout)["peer"]
    cells = {(r["server"], r["scenario"], r["processes"]) for r in peer["runs"]}
    assert cells == {
        (server, scenario, processes)
        for server in ("collector", "connect")
        for scenario in ("pixel", "batch")
        for processes in (1, 2)
    }
    for run in peer["runs"]:
        assert run["non_2xx"] == 0, run
        assert run["events"] > 0 and run["cpu_s"] > 0, run
    assert set(peer["summary"]) == {"pixel_1", "pixel_2", "batch_1", "batch_2"}
