"""One command for the benchmarks of PRODUCT.md §9, each figure beside its ceiling.

    python -m load.bench            # full run (about 16 minutes), writes docs/benchmarks.md
    python -m load.bench --quick    # seconds per scenario: the smoke run the tests use
    python -m load.bench --only batch --profile /tmp/prof   # one scenario, sampled by py-spy
    python -m load.bench --only peer        # the collector beside Redpanda Connect (needs Go)

Every scenario runs against real Kafka, Redis and SQL on this machine, in one run, so the
ratios compare like with like. Each scenario gets its own topic, key prefix and group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from redis.asyncio import Redis

from aggregator.batch import PartitionBatch
from aggregator.buckets import BucketWriter
from common.keys import KeyLayout, bucket_field
from common.topics import ensure_topic
from load.beside_connect import BesideConnect, report_rows
from load.harness import (
    PIXEL_QUERY,
    SERVER_KEY,
    SERVICE,
    Stage,
    batch_body,
    end_offsets_total,
    ensure_wrk,
    free_port,
    peak_rss_mb,
    say,
    start_collector,
    wrk,
)
from load.traffic import TrafficShape
from rollup.store import AccountUpdate, Store
from stack import kafka, postgres
from stack.processes import wait_for_port
from stack.servers import PROJECT_ROOT, STACK_HOME, start_servers

READ_KEY = "demo-read-key-change-me"

# Scenarios --only can pick, each with those it needs: the aggregator reads the topic the
# collector scenarios fill, and the latency scenario loads at half the measured batch rate.
SCENARIOS = {
    "collector": ["collector"],
    "aggregator": ["collector", "aggregator"],
    "latency": ["collector", "latency"],
    "sqlite": ["sqlite"],
    "postgresql": ["postgresql"],
    "peer": ["peer"],
}

TARGETS = {
    "pixel_ratio": 0.7,
    "batch_events_per_s": 150_000,
    "aggregator_events_per_s": 200_000,
    "redis_commands_per_event": 0.2,
    "latency_p99_s": 2.0,
    "flush_seconds": 60.0,
    "flush_peak_mb": 300.0,
    "collector_peak_mb": 150.0,
    "aggregator_peak_mb": 250.0,
}


async def events_applied(metrics_port: int) -> int:
    """Read an aggregator's count of events applied from its Prometheus endpoint."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    match = re.search(r"^usage_aggregator_events_applied_total ([\d.e+]+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


class Bench:
    def __init__(self, quick: bool, only: set[str] | None = None,
                 profile_dir: Path | None = None) -> None:  # fmt: skip
        self.quick = quick
        self.seconds = 3 if quick else 15
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-"))
        self.results: dict[str, Any] = {}
        self.only = only
        self.profile_dir = profile_dir
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)

    def stage(self, topic: str = "") -> Stage:
        return Stage(self.workdir, topic=topic, profile_dir=self.profile_dir)

    def runs(self, scenario: str) -> bool:
        return self.only is None or any(scenario in SCENARIOS[name] for name in self.only)

    async def run(self) -> dict[str, Any]:
        start_servers()
        ensure_wrk()
        self.results["machine"] = {
            "cores": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if self.quick else "full",
        }  # fmt: skip
        if self.runs("collector"):
            say("pixel and batch throughput of the collector")
            topic = await self.collector_scenarios()
        if self.runs("aggregator"):
            say("aggregator throughput")
            await self.aggregator_scenarios(topic)
        if self.runs("latency"):
            say("accept-to-visible latency")
            await self.latency_scenario()
        for kind in ("sqlite", "postgresql"):
            if self.runs(kind):
                say(f"flush on {kind}")
                await self.flush_scenario(kind)
        if self.runs("peer") and self.quick and self.only is None:
            say("beside Redpanda Connect: left out of a quick run unless --only peer")
        elif self.runs("peer"):
            rounds = 1 if self.quick else 2
            self.results["peer"] = await BesideConnect(self.workdir, self.seconds, rounds).run()
        return self.results

    async def collector_scenarios(self) -> str:
        ceiling_port = free_port()
        ceiling = subprocess.Popen([sys.executable, "-m", "load.ceiling", "--port", str(ceiling_port)],
                                   cwd=PROJECT_ROOT)  # fmt: skip
        wait_for_port("127.0.0.1", ceiling_port, 30)
        ceiling_rate = wrk(f"http://127.0.0.1:{ceiling_port}{PIXEL_QUERY}", self.seconds).rate
        ceiling.terminate()
        ceiling.wait()
        stage = self.stage()
        await ensure_topic("127.0.0.1:9092", stage.name, 12)
        # A fresh collector process per scenario, so that each has a profile of its own.
        collector, port = await start_collector(stage, "collector-pixel")
        pixel = wrk(f"http://127.0.0.1:{port}{PIXEL_QUERY}", self.seconds)
        pixel_rate, pixel_bad = pixel.rate, pixel.non_2xx
        collector_peak = peak_rss_mb(collector.pid)
        stage.stop_all()
        body = batch_body(self.workdir / "batch.json")
        script = PROJECT_ROOT / "load" / "post.lua"
        env = {"BATCH_FILE": str(body), "SERVER_KEY": SERVER_KEY}
        collector, port = await start_collector(stage, "collector-batch")
        batch = wrk(f"http://127.0.0.1:{port}/v1/events", self.seconds, script, env, 32)
        batch_rate, batch_bad = batch.rate, batch.non_2xx
        collector_peak = max(collector_peak, peak_rss_mb(collector.pid))
        stage.stop_all()
        _, port = await start_collector(stage, "collector2", "--workers", "2")
        batch_2 = wrk(f"http://127.0.0.1:{port}/v1/events", self.seconds, script, env, 32)
        batch_rate_2, batch_bad_2 = batch_2.rate, batch_2.non_2xx
        stage.stop_all()
        self.results["pixel"] = {
            "collector_hits_per_s": round(pixel_rate), "ceiling_hits_per_s": round(ceiling_rate),
            "ratio": round(pixel_rate / ceiling_rate, 3), "non_2xx": pixel_bad,
        }  # fmt: skip
        self.results["batch"] = {
            "events_per_s": round(batch_rate * 100), "requests_per_s": round(batch_rate),
            "non_2xx": batch_bad, "two_workers_events_per_s": round(batch_rate_2 * 100),
            "two_workers_non_2xx": batch_bad_2, "scaling": round(batch_rate_2 / batch_rate, 2),
        }  # fmt: skip
        self.results["memory"] = {"collector_peak_mb": round(collector_peak, 1)}
        return stage.name

    async def consume(
        self, topic: str, total: int, members: int
    ) -> tuple[float, float, float, int]:
        """Aggregate topic from the start with members processes.

        Returns (events/s, Redis commands per event, peak MB, events).

        total counts Kafka records; a record can hold several events, so the events are
        read from the aggregators' own counters, and the record rate scaled by their ratio.
        """
        stage = self.stage(topic)  # the collector's topic; own group and keys
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        ports = [free_port() for _ in range(members)]
        try:
            stats_before = await redis.info("commandstats")
            processes = [stage.start(f"agg{i}", "aggregator", METRICS_PORT=str(port))
                         for i, port in enumerate(ports)]  # fmt: skip
            started = None
            while True:
                applied = await stage.applied_total()
                if applied and started is None:
                    started = time.monotonic()
                    first = applied
                if applied >= total:
                    break
                await asyncio.sleep(0.05)
            assert started is not None
            seconds = max(time.monotonic() - started, 0.001)
            stats_after = await redis.info("commandstats")
            peak = max(peak_rss_mb(p.pid) for p in processes)
            events = sum([await events_applied(port) for port in ports])
        finally:
            stage.stop_all()
            await redis.aclose()
        calls = sum(v["calls"] for v in stats_after.values()) - sum(
            v["calls"] for v in stats_before.values()
        )
        await stage.cleanup_redis()
        return (total - first) / seconds * events / total, calls / events, peak, events

    async def aggregator_scenarios(self, topic: str) -> None:
        total = await end_offsets_total(topic)
        rate, commands, peak, events = await self.consume(topic, total, 1)
        rate_2, _, _, _ = await self.consume(topic, total, 2)
        libs = STACK_HOME / "kafka" / "libs"
        kafka.fetch_jars(libs)  # absent when the broker was started from another checkout
        out = subprocess.run(
            ["java", "-Xmx512m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ConsumerPerformance",
             "--bootstrap-server", "127.0.0.1:9092", "--topic", topic, "--messages", str(total),
             "--group", f"perf-{uuid.uuid4().hex[:8]}", "--timeout", "60000"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        header, values = [line for line in out.splitlines() if "," in line][-2:]
        perf = dict(
            zip(
                [h.strip() for h in header.split(",")],
                [v.strip() for v in values.split(",")],
                strict=False,
            )
        )
        ceiling = float(perf["nMsg.sec"]) * events / total  # records/s in events/s
        self.results["aggregator"] = {
            "events": events, "records": total, "events_per_s": round(rate),
            "redis_commands_per_event": round(commands, 4),
            "kafka_consumer_perf_events_per_s": round(ceiling), "ratio": round(rate / ceiling, 3),
            "two_aggregators_events_per_s": round(rate_2), "scaling": round(rate_2 / rate, 2),
        }  # fmt: skip
        self.results["memory"]["aggregator_peak_mb"] = round(peak, 1)

    async def latency_scenario(self) -> None:
        """Accept-to-visible latency for probe events sent amid load at half the batch maximum."""
        stage = self.stage()
        await ensure_topic("127.0.0.1:9092", stage.name, 12)
        port, api_port = free_port(), free_port()
        stage.start("collector", "collector", "--port", str(port))
        stage.start("aggregator", "aggregator")
        stage.start("api", "rollup", "serve", "--port", str(api_port))
        wait_for_port("127.0.0.1", port, 60)
        wait_for_port("127.0.0.1", api_port, 60)
        await asyncio.sleep(2)
        target = self.results["batch"]["events_per_s"] / 2
        probes = 5 if self.quick else 40
        latencies: list[float] = []
        sent = 0
        body = orjson.dumps({"batch": list(TrafficShape(accounts=200).events(100))})
        headers = {"Authorization": f"Bearer {SERVER_KEY}", "Content-Type": "application/json"}
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:

            async def background() -> None:
                nonlocal sent
                interval = 100 / target
                next_at = time.monotonic()
                while not stop.is_set():
                    async with session.post(
                        f"http://127.0.0.1:{port}/v1/events", data=body, headers=headers
                    ) as r:
                        await r.read()
                    sent += 100
                    next_at += interval
                    await asyncio.sleep(max(next_at - time.monotonic(), 0))

            senders = [asyncio.create_task(background()) for _ in range(4)]
            started = time.monotonic()
            for i in range(probes):
                account = f"probe-{stage.name}-{i}"
                event = {"account_id": account, "module": "Probe", "activity": "Ping"}
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/events", json=event, headers=headers
                ) as r:
                    assert r.status == 202
                accepted = time.monotonic()
                url = f"http://127.0.0.1:{api_port}/v1/services/{SERVICE}/accounts/{account}/usage"
                while True:
                    async with session.get(
                        url, params={"by": ""}, headers={"Authorization": f"Bearer {READ_KEY}"}
                    ) as r:
                        if r.status == 200 and (await r.json())["rows"] == [{"count": 1}]:
                            break
                    await asyncio.sleep(0.01)
                latencies.append(time.monotonic() - accepted)
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
            stop.set()
            await asyncio.gather(*senders)
        stage.stop_all()
        await stage.cleanup_redis()
        latencies.sort()
        self.results["latency"] = {
            "target_events_per_s": round(target), "achieved_events_per_s": round(sent / elapsed),
            "probes": probes, "p50_s": round(statistics.median(latencies), 3),
            "p99_s": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
        }  # fmt: skip

    async def flush_scenario(self, kind: str, entries: int | None = None) -> None:
        """Flush 1 000 000 (or entries) live bucket entries of a depth-3 hierarchy into SQL."""
        stage = self.stage()
        if kind == "postgresql":
            postgres.start(STACK_HOME)
            name = f"bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(
                f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/postgres"
            )
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            stage.database_url = f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/{name}"
        entries = entries or (20_000 if self.quick else 1_000_000)
        day = datetime.now(UTC).date()
        await self.fill_buckets(stage, entries, day)
        started = time.monotonic()
        flush = subprocess.Popen(
            [sys.executable, "-m", "rollup", "flush", "--service", SERVICE, "--day", day.isoformat(), "--force"],
            cwd=PROJECT_ROOT, env=stage.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        stage.profile("flush", flush.pid)
        peak = 0.0
        while flush.poll() is None:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                peak = max(peak, peak_rss_mb(flush.pid))
            await asyncio.sleep(0.05)
        stdout, stderr = flush.communicate()
        seconds = time.monotonic() - started
        if flush.returncode != 0:
            raise RuntimeError(f"flush failed: {stderr}")
        stage.stop_all()
        match = re.search(r"(\d+) rows", stdout)
        rows = int(match.group(1)) if match else 0
        await stage.cleanup_redis()
        self.results.setdefault("flush", {})[kind] = {
            "entries": entries, "rows_flushed": rows, "seconds": round(seconds, 2),
            "peak_mb": round(peak, 1),
        }  # fmt: skip

    async def fill_buckets(self, stage: Stage, entries: int, day: date) -> None:
        """Write live buckets straight into Redis (as the aggregator would) and the hierarchy."""
        redis = Redis.from_url("redis://127.0.0.1:6379/0")
        keys = KeyLayout(stage.name, stage.topic_name)
        writer = BucketWriter(redis, keys, 72 * 3600 * 1000)
        corporations, subsidiaries = 10, 10
        leaves = max(entries // 500, 1)
        per_leaf = entries // leaves
        updates = []
        leaf_ids = []
        for leaf in range(leaves):
            corp, sub = leaf % corporations, (leaf // corporations) % subsidiaries
            sub_id, leaf_id = f"corp-{corp}/sub-{sub}", f"corp-{corp}/sub-{sub}/product-{leaf}"
            updates.append(AccountUpdate(SERVICE, sub_id, day, {"parent_id": f"corp-{corp}"}))
            updates.append(AccountUpdate(SERVICE, leaf_id, day, {"parent_id": sub_id}))
            leaf_ids.append(leaf_id)
        store = await Store.open(stage.env["DATABASE_URL"])
        await store.apply_updates(updates, datetime.now(UTC))
        await store.close()
        pairs = [(m, a) for m in ("Invoices", "Payments", "Reports", "Customers", "Settings")
                 for a in ("Create", "View")]  # fmt: skip
        await redis.sadd(keys.partitions(), *range(12))
        for index, leaf_id in enumerate(leaf_ids):
            partition = index % 12
            stored = await writer.stored_offset(partition)
            batch = PartitionBatch(partition, stored + 1, stored + 1)
            batch.increments = {
                (SERVICE, day.isoformat(), leaf_id): {
                    bucket_field(f"user{u}@example.com", m, a): 1 + (u % 3)
                    for u in range(per_leaf // len(pairs)) for m, a in pairs
                }
            }  # fmt: skip
            await writer.apply(batch, stored, int(time.time() * 1000))
        await redis.aclose()


def check(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, figure, target, verdict) for the report."""
    rows = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    pixel = results["pixel"]
    rows.append(
        (
            "pixel hits/s vs bare aiohttp",
            f"{pixel['collector_hits_per_s']} vs {pixel['ceiling_hits_per_s']} = {pixel['ratio']}",
            "≥ 0.7",
            verdict(pixel["ratio"] >= TARGETS["pixel_ratio"]),
        )
    )
    batch = results["batch"]
    rows.append(
        (
            "batch events/s, one process",
            str(batch["events_per_s"]),
            "≥ 150 000",
            verdict(batch["events_per_s"] >= TARGETS["batch_events_per_s"]),
        )
    )
    agg = results["aggregator"]
    rows.append(
        (
            "aggregator events/s (Kafka's own consumer)",
            f"{agg['events_per_s']} ({agg['kafka_consumer_perf_events_per_s']}, ratio {agg['ratio']})",
            "≥ 200 000",
            verdict(agg["events_per_s"] >= TARGETS["aggregator_events_per_s"]),
        )
    )
    rows.append(
        (
            "Redis commands per event",
            str(agg["redis_commands_per_event"]),
            "< 0.2",
            verdict(agg["redis_commands_per_event"] < TARGETS["redis_commands_per_event"]),
        )
    )
    latency = results["latency"]
    rows.append(
        (
            "accept → visible p50 / p99",
            f"{latency['p50_s']} s / {latency['p99_s']} s at {latency['achieved_events_per_s']} events/s",
            "p99 < 2 s",
            verdict(latency["p99_s"] < TARGETS["latency_p99_s"]),
        )
    )
    for kind, flush in results["flush"].items():
        rows.append(
            (
                f"flush of {flush['entries']} entries, {kind}",
                f"{flush['seconds']} s, peak {flush['peak_mb']} MB",
                "< 60 s, < 300 MB",
                verdict(flush["seconds"] < 60 and (flush["peak_mb"] or 0) < 300),
            )
        )
    memory = results["memory"]
    rows.append(
        (
            "collector peak RSS",
            f"{memory['collector_peak_mb']} MB",
            "< 150 MB",
            verdict(memory["collector_peak_mb"] < TARGETS["collector_peak_mb"]),
        )
    )
    rows.append(
        (
            "aggregator peak RSS",
            f"{memory['aggregator_peak_mb']} MB",
            "< 250 MB",
            verdict(memory["aggregator_peak_mb"] < TARGETS["aggregator_peak_mb"]),
        )
    )
    rows.append(
        (
            "2 collector workers vs 1",
            f"{batch['two_workers_events_per_s']} events/s (×{batch['scaling']})",
            "",
            "",
        )
    )
    rows.append(
        (
            "2 aggregators vs 1",
            f"{agg['two_aggregators_events_per_s']} events/s (×{agg['scaling']})",
            "",
            "",
        )
    )
    return rows  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# Benchmarks", "",
        f"`python -m load.bench` on {machine['cores']} cores and {machine['memory_gb']} GiB, "
        f"Python {machine['python']}, {machine['date']} ({machine['mode']} run). Kafka, Redis, "
        "PostgreSQL, the load client (wrk) and the process measured share the machine.", "",
        "| what | figure | target | |", "| --- | --- | --- | --- |",
    ]  # fmt: skip
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in check(results)]
    if "peer" in results:
        lines += ["", *report_rows(results["peer"])]
    lines += ["", "Raw figures: `docs/benchmarks.json`."]
    return "\n".join(lines) + "\n"


def written_sections(report: Path) -> str:
    """The hand-written sections (from the first '## ' heading on) of the report replaced."""
    text = report.read_text() if report.exists() else ""
    start = text.find("\n## ")
    return text[start:] if start >= 0 else ""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m load.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="seconds per scenario (smoke run)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.json")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS),
                        help="run this scenario (and those it needs); repeatable; prints the "
                             "figures as JSON and writes no report")  # fmt: skip
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample each measured process with py-spy into DIR (slows it)")  # fmt: skip
    args = parser.parse_args()
    only = set(args.only) if args.only else None
    results = asyncio.run(Bench(args.quick, only, args.profile).run())
    if only is not None:
        print(json.dumps(results, indent=2))
        return
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    args.out.write_text(report + written_sections(args.out))
    print(report)


if __name__ == "__main__":
    main()
