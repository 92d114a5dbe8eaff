"""The operators' view on real processes: lag that grows while the aggregator is stopped
and drains after, the dashboard in Chromium, and /metrics of every process."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest
from playwright.async_api import async_playwright
from prometheus_client.parser import text_string_to_metric_families

from load.traffic import Ledger, Sender, TrafficShape, batches
from publishing.records import key_hash
from stack.browser import LAUNCH_ARGS, ensure_chromium
from stack.servers import PROJECT_ROOT
from tests.support import ACME_SERVER_KEY, OPERATOR_KEY, PARTITIONS, Pipeline, free_port

pytestmark = pytest.mark.e2e


async def lag_report(session: aiohttp.ClientSession, pipeline: Pipeline) -> dict[str, Any]:
    async with session.get(
        f"{pipeline.api_url}/v1/ops/lag", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    ) as response:
        assert response.status == 200
        report: dict[str, Any] = await response.json()
        return report


async def wait_report(
    session: aiohttp.ClientSession, pipeline: Pipeline, check: Callable[[dict[str, Any]], bool],
    timeout_s: float = 40,
) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while True:
        report = await lag_report(session, pipeline)
        if check(report):
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"report never matched: {report['partitions']}")
        await asyncio.sleep(0.5)


def all_ok(report: dict[str, Any]) -> bool:
    rows = report["partitions"]
    return len(rows) == PARTITIONS and all(
        row["status"] == "OK" and row["lag_messages"] == 0 for row in rows
    )


async def send(pipeline: Pipeline, count: int, prefix: str) -> Counter[int]:
    """Post count events of SP-ACME; return how many went to each partition."""
    ledger = Ledger()
    events = [
        {**e, "account_id": f"{prefix}{e['account_id']}"} for e in TrafficShape().events(count)
    ]
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger)
        for batch in batches(events, 100):
            assert await sender.post(batch) == 202
    return Counter(
        key_hash(orjson.dumps(["SP-ACME", e["account_id"]])) % PARTITIONS for e in events
    )


async def metric_families(url: str) -> dict[str, list[Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    families = {family.name: family.samples for family in text_string_to_metric_families(text)}
    for samples in families.values():
        assert not any(math.isnan(sample.value) for sample in samples)
    return families


async def test_lag_grows_while_the_aggregator_is_stopped_then_drains(pipeline: Pipeline) -> None:
    aggregator_metrics, flusher_metrics = free_port(), free_port()
    await pipeline.start_collector()
    pipeline.overrides["METRICS_PORT"] = str(aggregator_metrics)
    pipeline.start_aggregator()
    pipeline.overrides["METRICS_PORT"] = str(flusher_metrics)
    pipeline.start("flusher", "rollup", "flusher")
    del pipeline.overrides["METRICS_PORT"]
    await pipeline.start_api()
    async with aiohttp.ClientSession() as session:
        sent = await send(pipeline, 300, "a")
        await pipeline.drain()
        everyone = {"collector": 1, "aggregator": 1, "flusher": 1}
        report = await wait_report(
            session, pipeline, lambda r: all_ok(r) and r["components"] == everyone
        )
        assert report["components"] == everyone

        pipeline.stop("aggregator")  # leaves the group; its heartbeat goes with it
        before = await pipeline.end_offsets()
        unread = await send(pipeline, 500, "b")
        sent += unread
        after = await pipeline.end_offsets()
        expected_lag = {p: after[p] - before[p] for p in after}
        lag = sum(expected_lag.values())  # records: an account's events of a request share one
        assert 0 < lag < 500
        first = await wait_report(
            session, pipeline,
            lambda r: {row["partition"]: (row["lag_messages"], row["lag_events"])
                       for row in r["partitions"]}
            == {p: (expected_lag[p], unread[p]) for p in expected_lag}
            and all(row["status"] == "STOP" for row in r["partitions"] if row["lag_messages"]),
        )  # fmt: skip
        assert (first["totals"]["lag_messages"], first["totals"]["lag_events"]) == (lag, 500)
        assert {row["partition"]: row["produced_events"] for row in first["partitions"]} == {
            p: sent[p] for p in range(PARTITIONS)
        }
        assert first["totals"]["status"] == "STOP"
        assert all(row["owner"] is None for row in first["partitions"])
        await asyncio.sleep(4)
        second = await lag_report(session, pipeline)
        assert (second["totals"]["lag_messages"], second["totals"]["lag_events"]) == (lag, 500)
        assert second["totals"]["max_lag_seconds"] > first["totals"]["max_lag_seconds"] > 0
        assert {row["partition"]: row["committed_offset"] for row in second["partitions"]} == {
            p: before[p] for p in before
        }  # Kafka's committed offsets, advisory, as the aggregator left them

        pipeline.overrides["METRICS_PORT"] = str(aggregator_metrics)
        pipeline.start_aggregator()
        del pipeline.overrides["METRICS_PORT"]
        await pipeline.drain()
        drained = await wait_report(session, pipeline, all_ok)
        assert drained["totals"] == {
            **drained["totals"],
            "lag_messages": 0,
            "lag_events": 0,
            "status": "OK",
        }
        assert {row["partition"]: (row["produced_events"], row["applied_events"])
                for row in drained["partitions"]} == {p: (sent[p], sent[p]) for p in range(PARTITIONS)}  # fmt: skip
        history = drained["history"]
        assert (max(history["lag_messages"]), max(history["lag_events"])) == (lag, 500)
        # The rates chart shows events: more of them than records went in, and all came out.
        assert max(history["in_per_s"]) > max(history["records_in_per_s"]) > 0
        assert max(history["out_per_s"]) > max(history["records_out_per_s"]) > 0
        assert [s["service_id"] for s in drained["services"]] == [
            "SP-ACME",
            "SP-OTHER",
            "SP-LIMITED",
        ]

        await check_dashboard(pipeline)

        async with session.get(f"{pipeline.api_url}/readyz") as response:
            assert (response.status, (await response.json())["down"]) == (200, [])

    collector = await metric_families(f"{pipeline.collector_url}/metrics")
    assert {"usage_collector_requests", "usage_collector_events", "usage_collector_request_seconds",
            "usage_collector_kafka_send_errors", "usage_collector_requests_in_flight"} <= set(collector)  # fmt: skip
    accepted = [s for s in collector["usage_collector_events"]
                if s.name.endswith("_total") and s.labels == {"endpoint": "events", "outcome": "accepted"}]  # fmt: skip
    assert accepted[0].value == 800
    aggregator = await metric_families(f"http://127.0.0.1:{aggregator_metrics}/metrics")
    records = [
        s for s in aggregator["usage_aggregator_records_applied"] if s.name.endswith("_total")
    ]
    assert records[0].value == lag  # the restarted aggregator applied the records it found
    assert {"usage_aggregator_events_applied", "usage_aggregator_batches", "usage_aggregator_batch_size",
            "usage_aggregator_apply_seconds", "usage_aggregator_duplicates_skipped",
            "usage_aggregator_fenced_writes"} <= set(aggregator)  # fmt: skip
    flusher = await metric_families(f"http://127.0.0.1:{flusher_metrics}/metrics")
    assert {"usage_flusher_flushes", "usage_flusher_rows", "usage_flusher_flush_seconds",
            "usage_flusher_days_waiting"} <= set(flusher)  # fmt: skip
    api = await metric_families(f"{pipeline.api_url}/metrics")
    lag_records = [
        s for s in api["kafka_consumergroup_group_lag"] if s.labels["topic"] == pipeline.name
    ]
    assert sorted(s.labels["partition"] for s in lag_records) == [str(p) for p in range(PARTITIONS)]
    assert all(s.value == 0 for s in lag_records)
    lag_events = [
        s for s in api["usage_consumergroup_lag_events"] if s.labels["topic"] == pipeline.name
    ]
    assert sorted(s.labels["partition"] for s in lag_events) == [str(p) for p in range(PARTITIONS)]
    assert all(s.value == 0 for s in lag_events)
    assert "kafka_consumergroup_group_lag_seconds" in api


async def check_dashboard(pipeline: Pipeline) -> None:
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=ensure_chromium(), args=LAUNCH_ARGS
        )
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
        await page.goto(f"{pipeline.api_url}/ops")
        await page.locator("#key-form").wait_for(state="visible")
        await page.fill("#ops-key", "not-the-operator-key")
        await page.click("#key-form button")
        await page.wait_for_function(
            "document.getElementById('key-problem').textContent === 'invalid operator key'"
        )
        errors.clear()  # the browser logs the refused request as a console error
        await page.fill("#ops-key", OPERATOR_KEY)
        await page.click("#key-form button")
        await page.wait_for_function(
            f"document.querySelectorAll('#partitions tr').length === {PARTITIONS}", timeout=20_000
        )
        await page.wait_for_function("window.opsUpdates >= 2", timeout=20_000)  # it refreshes
        assert await page.locator(".uplot").count() == 4
        statuses = await page.eval_on_selector_all(
            "#partitions .status", "spans => spans.map(s => s.textContent)"
        )
        assert statuses == ["OK"] * PARTITIONS
        await page.reload()  # the key is asked for once, then kept
        await page.wait_for_function("window.opsUpdates >= 1", timeout=20_000)
        assert await page.locator("#key-form").is_hidden()
        artifacts = PROJECT_ROOT / "artifacts"
        artifacts.mkdir(exist_ok=True)
        await page.screenshot(path=str(artifacts / "ops.png"), full_page=True)
        await browser.close()
    assert errors == []
