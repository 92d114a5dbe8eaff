"""Sum count rows by the columns a usage query asks for."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rollup.store import CountRow

BY_COLUMNS = {"day": "day", "module": "module", "activity": "activity", "user": "user_id"}


def parse_by(text: str) -> list[str]:
    """Parse by=day,module,... into known column names, or raise ValueError."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_COLUMNS]
    if unknown or len(set(names)) != len(names):
        raise ValueError("by must list distinct names among day, module, activity, user")
    return [BY_COLUMNS[name] for name in names]


def group_rows(rows: Iterable[CountRow], columns: list[str]) -> list[dict[str, Any]]:
    """Sum counts per distinct value of columns, sorted by them; no columns gives one total."""
    totals: defaultdict[tuple[Any, ...], int] = defaultdict(int)
    for row in rows:
        totals[tuple(getattr(row, column) for column in columns)] += row.count
    grouped = []
    for values, count in sorted(totals.items()):
        entry: dict[str, Any] = {
            column: value.isoformat() if column == "day" else value
            for column, value in zip(columns, values, strict=True)
        }
        entry["count"] = count
        grouped.append(entry)
    return grouped
