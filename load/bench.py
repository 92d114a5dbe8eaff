"""One command for the benchmarks of PRODUCT.md §9, each figure beside its ceiling.

    python -m load.bench            # full run (about 16 minutes), writes docs/benchmarks.md
    python -m load.bench --quick    # seconds per scenario: the smoke run the tests use
    python -m load.bench --only collector --profile /tmp/prof   # one scenario, sampled by py-spy
    python -m load.bench --only peer        # the collector beside Redpanda Connect (needs Go)

Every scenario runs against real Kafka, Redis and SQL on this machine, in one run, so the
ratios compare like with like. Each scenario gets its own topic, key prefix and group.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from load.beside_connect import BesideConnect
from load.harness import ensure_wrk, say
from load.report import markdown, written_sections
from load.scenarios import SCENARIOS, Bench
from stack.servers import PROJECT_ROOT, start_servers


async def run(bench: Bench) -> dict[str, Any]:
    """Run the scenarios chosen, in the order each needs the last; all their figures."""
    start_servers()
    ensure_wrk()
    bench.results["machine"] = {
        "cores": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if bench.quick else "full",
    }  # fmt: skip
    if bench.runs("collector"):
        say("pixel and batch throughput of the collector")
        topic = await bench.collector_scenarios()
    if bench.runs("aggregator"):
        say("aggregator throughput")
        await bench.aggregator_scenarios(topic)
    if bench.runs("latency"):
        say("accept-to-visible latency")
        await bench.latency_scenario()
    for kind in ("sqlite", "postgresql"):
        if bench.runs(kind):
            say(f"flush on {kind}")
            await bench.flush_scenario(kind)
    if bench.runs("peer") and bench.quick and bench.only is None:
        say("beside Redpanda Connect: left out of a quick run unless --only peer")
    elif bench.runs("peer"):
        rounds = 1 if bench.quick else 2
        bench.results["peer"] = await BesideConnect(bench.workdir, bench.seconds, rounds).run()
    return bench.results


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
    results = asyncio.run(run(Bench(args.quick, only, args.profile)))
    if only is not None:
        print(json.dumps(results, indent=2))
        return
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    args.out.write_text(report + written_sections(args.out))
    print(report)


if __name__ == "__main__":
    main()
