"""The benchmark scenarios: collector, aggregator and latency, each against real servers."""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from redis.asyncio import Redis

from common.topics import ensure_topic
from load.flush_bench import measure_flush
from load.harness import (
    PIXEL_QUERY,
    SERVER_KEY,
    SERVICE,
    Stage,
    batch_body,
    end_offsets_total,
    free_port,
    peak_rss_mb,
    start_collector,
    wrk,
)
from load.traffic import TrafficShape
from stack import kafka
from stack.processes import wait_for_port
from stack.servers import PROJECT_ROOT, STACK_HOME

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


async def events_applied(metrics_port: int) -> int:
    """Read an aggregator's count of events applied from its Prometheus endpoint."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    match = re.search(r"^usage_aggregator_events_applied_total ([\d.e+]+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


class Bench:
    """The scenarios of one run, each adding its figures to results."""

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

    async def flush_scenario(self, kind: str) -> None:
        """Flush 1 000 000 live bucket entries (20 000 in a quick run) into SQL of kind."""
        entries = 20_000 if self.quick else 1_000_000
        figures = await measure_flush(self.stage(), kind, entries)
        self.results.setdefault("flush", {})[kind] = figures
