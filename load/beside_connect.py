"""The collector beside Redpanda Connect: same wrk, same Kafka, alternating runs, per CPU-second.

Each run measures one server (the collector, or Connect) on one scenario (pixel hits, or
batches of 100 events) with one or two processes (`--workers 2` against GOMAXPROCS=2):
throughput and p99 latency from wrk, and the CPU time the server's processes spent during
the run, so that "per core" is events per CPU-second.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from dataclasses import asdict, dataclass, replace
from itertools import product
from pathlib import Path
from typing import Any

from common.topics import ensure_topic
from load.harness import (
    PIXEL_QUERY,
    SERVER_KEY,
    Stage,
    batch_body,
    end_offsets_total,
    free_port,
    say,
    start_collector,
    wrk,
)
from load.peer import batch_config, build_connect, find_go, pixel_config, start_connect
from stack.servers import PROJECT_ROOT

SCENARIOS = ("pixel", "batch")
EVENTS_PER_REQUEST = {"pixel": 1, "batch": 100}
SERVERS = ("collector", "connect")
CONNECTIONS = 64


@dataclass(frozen=True)
class PeerRun:
    """One server, one scenario, one or two processes, measured for one wrk run."""

    server: str
    scenario: str
    processes: int
    events_per_s: float
    p99_ms: float
    cpu_s: float
    events: int
    non_2xx: int
    timeouts: int
    kafka_messages: int | None = None  # Connect's, counted in its topic after the run

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.cpu_s if self.cpu_s else 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of pid and of its children, alive or reaped, in seconds."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(proc_stat(int(entry.name))[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
    family, total = [pid], 0
    while family:
        member = family.pop()
        family += [child for child, parent in parents.items() if parent == member]
        try:  # utime, stime, and cutime, cstime of its children already reaped
            total += sum(int(ticks) for ticks in proc_stat(member)[11:15])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a child that exited meanwhile; pid itself is read before any child
    return total / os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


class BesideConnect:
    """Alternating runs of the collector and Connect on their own topics."""

    def __init__(self, workdir: Path, seconds: int, rounds: int) -> None:
        self.workdir = workdir
        self.seconds = seconds
        self.rounds = rounds
        self.stage = Stage(workdir)
        self.connect_topic = f"{self.stage.name}-connect"
        self.body = batch_body(workdir / "peer-batch.json")

    async def run(self) -> dict[str, Any]:
        go = find_go()
        if go is None:
            say("beside Redpanda Connect: skipped, no Go toolchain (go on PATH or /usr/local/go)")
            return {"skipped": "no Go toolchain"}
        say("beside Redpanda Connect: building the peer (about a minute, once)")
        binary = build_connect(go)
        for topic in (self.stage.name, self.connect_topic):
            await ensure_topic("127.0.0.1:9092", topic, 12)
        runs = []
        for round_index in range(self.rounds):
            # the order flips each round, so that drift on the shared machine favours no one
            servers = SERVERS if round_index % 2 == 0 else SERVERS[::-1]
            for processes, scenario, server in product((1, 2), SCENARIOS, servers):
                plural = "es" if processes > 1 else ""
                say(f"beside Redpanda Connect: {server}, {scenario}, {processes} process{plural}")
                if server == "collector":
                    runs.append(await self.collector_run(scenario, processes))
                else:
                    runs.append(await self.connect_run(binary, scenario, processes))
        return {"runs": [{**asdict(r), "events_per_cpu_s": round(r.events_per_cpu_s)}
                         for r in runs], "summary": summary(runs)}  # fmt: skip

    def load(self, port: int, scenario: str) -> tuple[str, Path | None, dict[str, str]]:
        """wrk's url, script and environment for scenario on port."""
        if scenario == "pixel":
            return f"http://127.0.0.1:{port}{PIXEL_QUERY}", None, {}
        env = {"BATCH_FILE": str(self.body), "SERVER_KEY": SERVER_KEY}
        return f"http://127.0.0.1:{port}/v1/events", PROJECT_ROOT / "load" / "post.lua", env

    def measure(self, server: str, scenario: str, processes: int, pid: int, port: int) -> PeerRun:
        url, script, env = self.load(port, scenario)
        cpu_before = cpu_seconds(pid)
        result = wrk(url, self.seconds, script, env, CONNECTIONS)
        cpu_s = cpu_seconds(pid) - cpu_before
        answered = result.requests - result.non_2xx
        events = answered * EVENTS_PER_REQUEST[scenario]
        events_per_s = result.rate * answered / result.requests * EVENTS_PER_REQUEST[scenario]
        return PeerRun(
            server, scenario, processes, round(events_per_s), round(result.p99_ms, 1),
            round(cpu_s, 2), events, result.non_2xx, result.timeouts,
        )  # fmt: skip

    async def collector_run(self, scenario: str, processes: int) -> PeerRun:
        workers = ["--workers", "2"] if processes == 2 else []
        process, port = await start_collector(self.stage, f"peer-{scenario}", *workers)
        try:
            return self.measure("collector", scenario, processes, process.pid, port)
        finally:
            self.stage.stop_all()

    async def connect_run(self, binary: Path, scenario: str, processes: int) -> PeerRun:
        """Measure Connect, then check that every event it acknowledged is in its topic."""
        port, metrics_port = free_port(), free_port()
        make_config = pixel_config if scenario == "pixel" else batch_config
        config = make_config(port, metrics_port, self.connect_topic)
        config_path = self.workdir / f"connect-{scenario}-{processes}.yaml"
        messages_before = await end_offsets_total(self.connect_topic)
        process = start_connect(binary, config, config_path, port, processes)
        try:
            await asyncio.sleep(1)  # the output connects to Kafka after the port opens
            run = self.measure("connect", scenario, processes, process.pid, port)
        finally:
            process.terminate()  # Connect drains what is in flight before it exits
            process.wait(timeout=30)
        landed = await end_offsets_total(self.connect_topic) - messages_before
        if landed < run.events:
            raise RuntimeError(f"Connect acknowledged {run.events} events, Kafka holds {landed}")
        return replace(run, kafka_messages=landed)


def summary(runs: list[PeerRun]) -> dict[str, dict[str, Any]]:
    """Medians over rounds for each scenario and process count, with collector/Connect ratios."""
    cells: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        for processes in (1, 2):
            cell: dict[str, Any] = {}
            for server in SERVERS:
                mine = [r for r in runs if (r.server, r.scenario, r.processes) ==
                        (server, scenario, processes)]  # fmt: skip
                cell[server] = {
                    "events_per_s": round(statistics.median(r.events_per_s for r in mine)),
                    "events_per_cpu_s": round(statistics.median(r.events_per_cpu_s for r in mine)),
                    "p99_ms": round(statistics.median(r.p99_ms for r in mine), 1),
                    "non_2xx": sum(r.non_2xx for r in mine),
                    "timeouts": sum(r.timeouts for r in mine),
                }
            for figure in ("events_per_s", "events_per_cpu_s"):
                theirs = cell["connect"][figure]
                cell[f"{figure}_ratio"] = (
                    round(cell["collector"][figure] / theirs, 2) if theirs else 0
                )
            cells[f"{scenario}_{processes}"] = cell
    return cells


def report_rows(peer: dict[str, Any]) -> list[str]:
    """The report's table of the collector beside Connect, as markdown lines."""
    if "skipped" in peer:
        return [f"Beside Redpanda Connect: skipped ({peer['skipped']})."]
    lines = [
        "| beside Redpanda Connect (medians) | collector | Connect | collector/Connect | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, cell in peer["summary"].items():
        scenario, processes = key.split("_")
        unit = "hits" if scenario == "pixel" else "batch events"
        what = f"{unit}, {processes} process{'es' if processes == '2' else ''}"
        mine, theirs = cell["collector"], cell["connect"]
        met = "met" if cell["events_per_cpu_s_ratio"] >= 1 else "not met"
        lines += [
            f"| {what}: per second (p99) | {rate_cell(mine)} | {rate_cell(theirs)} | "
            f"{cell['events_per_s_ratio']} | |",
            f"| {what}: per CPU-second | {mine['events_per_cpu_s']} | "
            f"{theirs['events_per_cpu_s']} | {cell['events_per_cpu_s_ratio']} | ≥ 1, {met} |",
        ]
    return lines


def rate_cell(figures: dict[str, Any]) -> str:
    """Events per second with the p99 latency, and the failures if there were any."""
    failures = [f"{figures[name]} {label}" for name, label in
                (("non_2xx", "non-2xx"), ("timeouts", "timed out")) if figures[name]]  # fmt: skip
    notes = ", ".join([f"{figures['p99_ms']} ms", *failures])
    return f"{figures['events_per_s']} ({notes})"
