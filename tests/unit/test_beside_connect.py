"""The arithmetic of the benchmark beside Redpanda Connect: wrk's figures, CPU time, the table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from load.beside_connect import BesideConnect, PeerRun, cpu_seconds, report_rows, summary
from load.harness import WrkRun, parse_wrk

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:41235/v1/events
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    25.10ms   10.43ms 120.55ms   81.20%
    Req/Sec     1.28k   150.22     1.60k    70.00%
  Latency Distribution
     50%   23.01ms
     75%   29.87ms
     90%   37.12ms
     99%  {p99}
  7680 requests in 3.00s, 1.02MB read
{bad}Requests/sec:   2558.41
Transfer/sec:    347.81KB
"""


@pytest.mark.parametrize(
    ("p99", "bad", "expected"),
    [
        ("61.29ms", "", WrkRun(2558.41, 7680, 61.29, 0)),
        ("812.00us", "", WrkRun(2558.41, 7680, 0.812, 0)),
        # wrk pads a latency in seconds with a space
        ("1.20s ", "  Non-2xx or 3xx responses: 17\n", WrkRun(2558.41, 7680, 1200.0, 17)),
        (
            "1.99s ",
            "  Socket errors: connect 0, read 0, write 0, timeout 6\n",
            WrkRun(2558.41, 7680, 1990.0, 0, 6),
        ),
    ],
)
def test_parse_wrk_reads_rate_requests_p99_and_errors(p99: str, bad: str, expected: WrkRun) -> None:
    assert parse_wrk(WRK_OUTPUT.format(p99=p99, bad=bad)) == expected


def test_parse_wrk_refuses_output_without_figures() -> None:
    with pytest.raises(RuntimeError, match="wrk printed no figures"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


BURN = "import time\nwhile time.process_time() < 0.5: pass\n"
PARENT = f"""
import subprocess, sys, time
reaped = subprocess.Popen([sys.executable, "-c", {BURN!r}])
alive = subprocess.Popen(
    [sys.executable, "-c", {BURN!r} + "print('burnt', flush=True)\\ntime.sleep(30)"],
    stdout=subprocess.PIPE, text=True,
)
{BURN}
reaped.wait()
alive.stdout.readline()
print("burnt", flush=True)
time.sleep(30)
"""


def test_cpu_seconds_counts_the_process_its_live_and_its_reaped_children() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "burnt\n"
        # 0.5 s in each of three processes, sampled by the kernel's ticks, plus start-ups
        assert 1.4 <= cpu_seconds(parent.pid) < 2.5
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the parent and the child still sleeping
        parent.communicate()


def run(server: str, scenario: str, processes: int, rate: int, cpu_s: float) -> PeerRun:
    events = rate * 10
    return PeerRun(server, scenario, processes, rate, rate / 1000, cpu_s, events, 0, 0)


RUNS = [
    # a round: the collector first; the next round: Connect first; medians of each cell
    *(run("collector", "pixel", 1, rate, 10.0) for rate in (6000, 8000, 7000)),
    *(run("connect", "pixel", 1, rate, 10.0) for rate in (14000, 14000, 16000)),
    *(run("collector", "pixel", 2, 9000, 18.0) for _ in range(3)),
    *(run("connect", "pixel", 2, 18000, 20.0) for _ in range(3)),
    *(run("collector", "batch", 1, 50000, 9.0) for _ in range(3)),
    *(run("connect", "batch", 1, 100000, 10.0) for _ in range(3)),
    *(run("collector", "batch", 2, 90000, 20.0) for _ in range(3)),
    *(run("connect", "batch", 2, 150000, 15.0) for _ in range(3)),
]


def test_summary_takes_medians_and_ratios_per_cell() -> None:
    cells = summary(RUNS)
    assert list(cells) == ["pixel_1", "pixel_2", "batch_1", "batch_2"]
    assert cells["pixel_1"] == {
        "collector": {
            "events_per_s": 7000,
            "events_per_cpu_s": 7000,
            "p99_ms": 7.0,
            "non_2xx": 0,
            "timeouts": 0,
        },
        "connect": {
            "events_per_s": 14000,
            "events_per_cpu_s": 14000,
            "p99_ms": 14.0,
            "non_2xx": 0,
            "timeouts": 0,
        },
        "events_per_s_ratio": 0.5,
        "events_per_cpu_s_ratio": 0.5,
    }
    assert cells["batch_1"]["events_per_cpu_s_ratio"] == round(500000 / 9 / 100000, 2)
    assert cells["batch_2"]["events_per_s_ratio"] == 0.6


def test_report_rows_show_both_servers_and_the_target() -> None:
    cells = summary(RUNS)
    cells["batch_1"]["collector"].update(non_2xx=309, timeouts=6)
    rows = report_rows({"runs": [], "summary": cells})
    assert (
        rows[2] == "| hits, 1 process: per second (p99) | 7000 (7.0 ms) | 14000 (14.0 ms) | 0.5 | |"
    )
    assert rows[3] == "| hits, 1 process: per CPU-second | 7000 | 14000 | 0.5 | ≥ 1, not met |"
    assert rows[6] == (
        "| batch events, 1 process: per second (p99) | 50000 (50.0 ms, 309 non-2xx, 6 timed out)"
        " | 100000 (100.0 ms) | 0.5 | |"
    )
    assert rows[9] == (
        "| batch events, 2 processes: per CPU-second | 45000 | 100000 | 0.45 | ≥ 1, not met |"
    )
    assert report_rows({"skipped": "no Go toolchain"}) == [
        "Beside Redpanda Connect: skipped (no Go toolchain)."
    ]


async def test_without_go_the_comparison_is_skipped_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("load.beside_connect.find_go", lambda: None)
    assert await BesideConnect(tmp_path, 1, 1).run() == {"skipped": "no Go toolchain"}
