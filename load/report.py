"""The benchmark report: each figure beside its target (PRODUCT.md §9), as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from load.beside_connect import report_rows

TARGETS = {
    "pixel_ratio": 0.7,
    "batch_events_per_s": 150_000,
    "aggregator_ratio": 0.5,  # of Kafka's own ConsumerPerformance, in events
    "redis_commands_per_event": 0.2,
    "latency_p99_s": 2.0,
    "flush_seconds": 10.0,
    "flush_peak_mb": 300.0,
    "collector_peak_mb": 150.0,
    "aggregator_peak_mb": 250.0,
}


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
            "≥ 0.5 of Kafka's consumer",
            verdict(agg["ratio"] >= TARGETS["aggregator_ratio"]),
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
                "< 10 s, < 300 MB",
                verdict(
                    flush["seconds"] < TARGETS["flush_seconds"]
                    and (flush["peak_mb"] or 0) < TARGETS["flush_peak_mb"]
                ),
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
    """The figures beside their targets (and the peer's rows) as the report's Markdown."""
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
