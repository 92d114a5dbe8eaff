"""Import Totango usage files through Kafka, like any event, safe to re-run.

Raw files have one action per row (`User id, AccountId, Action, Module, Timestamp`);
aggregated files have `Account ID` and one `<Module>##<Activity>` count column per pair,
where the last row of an account wins. Every event gets a deterministic event_id, so a
re-run within the dedup window counts nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from common.events import InvalidEvent, UsageEvent, validate_event
from common.keys import KeyLayout
from common.redis_client import connect
from common.services import Service, load_services
from common.settings import Settings, SettingsError
from publishing.metrics import report_produced
from publishing.names import NameLimits, limit_errors
from publishing.producer import EventProducer

RAW_COLUMNS = ("User id", "AccountId", "Action", "Module", "Timestamp")
BATCH = 500
MAX_REPORTED = 20


@dataclass
class ImportReport:
    rows_read: int = 0
    events_accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def lines(self) -> list[str]:
        out = [
            f"rows read: {self.rows_read}",
            f"events accepted: {self.events_accepted}",
            f"rows rejected: {len(self.rejected)}",
        ]
        for line, reason in self.rejected[:MAX_REPORTED]:
            out.append(f"  line {line}: {reason}")
        if len(self.rejected) > MAX_REPORTED:
            out.append(f"  ... and {len(self.rejected) - MAX_REPORTED} more")
        return out


def event_id(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"import-{digest}"


def parse_time(text: str) -> str:
    """Accept ISO 8601 (no offset means UTC) or epoch seconds/milliseconds; return ISO."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def raw_events(
    reader: csv.DictReader[str], service_id: str
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield (line, event object or reason) for each row of a raw usage file."""
    seen: Counter[tuple[str, ...]] = Counter()
    for row in reader:
        line = reader.line_num
        values = tuple((row.get(column) or "").strip() for column in RAW_COLUMNS)
        user, account, action, module, timestamp = values
        try:
            when = parse_time(timestamp) if timestamp else None
        except ValueError:
            yield line, "Timestamp is not a time"
            continue
        seen[values] += 1  # identical rows are separate actions; number them
        event: dict[str, Any] = {
            "service_id": service_id, "account_id": account, "user_id": user,
            "module": module, "activity": action,
            "event_id": event_id(service_id, *values, str(seen[values])),
        }  # fmt: skip
        if when:
            event["timestamp"] = when
        yield line, event


def aggregated_events(
    reader: csv.DictReader[str], service_id: str
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield the events of an aggregated file: the last row of each account wins."""
    pairs = [name for name in (reader.fieldnames or []) if "##" in name]
    last: dict[str, tuple[int, dict[str, str]]] = {}
    for row in reader:
        account = (row.get("Account ID") or "").strip()
        if not account:
            yield reader.line_num, "Account ID is empty"
            continue
        last[account] = (reader.line_num, row)
    for account, (line, row) in last.items():
        for pair in pairs:
            module, _, activity = pair.partition("##")
            raw = (row.get(pair) or "").strip()
            if not raw or raw == "0":
                continue
            if not raw.isdigit():
                yield line, f"{pair} is not a whole number"
                continue
            yield line, {
                "service_id": service_id, "account_id": account, "module": module.strip(),
                "activity": activity.strip(), "count": int(raw),
                "event_id": event_id(service_id, account, module, activity, raw),
            }  # fmt: skip


def file_events(handle: TextIO, service_id: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.DictReader(handle)
    columns = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = columns
    if all(column in columns for column in RAW_COLUMNS):
        return raw_events(reader, service_id)
    if "Account ID" in columns and any("##" in column for column in columns):
        return aggregated_events(reader, service_id)
    raise SettingsError(
        "the file is neither a raw usage file (User id, AccountId, Action, Module, Timestamp) "
        "nor an aggregated one (Account ID and <Module>##<Activity> columns)"
    )


class Progress:
    """A progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.enabled = stream.isatty()

    def show(self, done: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / self.total)
        self.stream.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{self.total} rows")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


async def import_file(settings: Settings, path: Path, service_id: str) -> ImportReport:
    """Validate and publish every event of a usage file; report what was rejected and why."""
    services = load_services(settings.services_file)
    service = services.get(service_id)
    if service is None:
        raise SettingsError(f"service {service_id} is not in {settings.services_file}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        total_rows = max(sum(1 for _ in handle) - 1, 0)
    report = ImportReport(rows_read=total_rows)
    producer = EventProducer(settings)
    await producer.start(attempts=10)
    redis = connect(settings.redis_url)
    keys = KeyLayout(settings.redis_key_prefix, settings.usage_topic)
    limits = NameLimits(redis, keys)
    progress = Progress(total_rows)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            batch: list[tuple[int, UsageEvent]] = []
            for line, item in file_events(handle, service_id):
                if isinstance(item, str):
                    report.rejected.append((line, item))
                    continue
                try:
                    event = validate_event(item, services, settings.clock().now_ms())
                except InvalidEvent as invalid:
                    error = invalid.errors[0]
                    report.rejected.append((line, f"{error.field} {error.message}"))
                    continue
                batch.append((line, event))
                if len(batch) >= BATCH:
                    await publish(batch, limits, producer, services, service, report)
                    await report_produced(redis, keys)  # events produced, for the ops lag
                    progress.show(min(line - 1, total_rows))
                    batch = []
            await publish(batch, limits, producer, services, service, report)
            await report_produced(redis, keys)
            progress.show(total_rows)
    finally:
        progress.close()
        await producer.stop()
        await redis.aclose()
    report.rejected.sort()
    return report


async def publish(
    batch: list[tuple[int, UsageEvent]],
    limits: NameLimits,
    producer: EventProducer,
    services: dict[str, Service],
    service: Service,
    report: ImportReport,
) -> None:
    if not batch:
        return
    events = [event for _, event in batch]
    refused = {index: error for index, error in await limit_errors(limits, services, events)}
    accepted = [event for index, event in enumerate(events) if index not in refused]
    for index, error in refused.items():
        report.rejected.append((batch[index][0], f"{error.field} {error.message}"))
    await producer.publish(accepted)
    report.events_accepted += len(accepted)
