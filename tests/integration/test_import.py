"""Totango usage files through the real pipeline: both kinds, bad rows, and re-runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import Pipeline

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date().isoformat()
EARLIER = (NOW - timedelta(hours=1)).isoformat()
EARLIER_NAIVE = (NOW - timedelta(hours=2)).replace(tzinfo=None).isoformat(sep=" ")
EARLIER_MS = str(int((NOW - timedelta(hours=3)).timestamp() * 1000))
LONG_AGO = (NOW - timedelta(days=30)).isoformat()

RAW = f"""User id,AccountId,Action,Module,Timestamp
joe@acme.com,ACME,Create,Invoices,{EARLIER}
joe@acme.com,ACME,Create,Invoices,{EARLIER}
ann@acme.com,ACME,Send,Invoices,{EARLIER_NAIVE}
ann@acme.com,BETA,Export,Reports,{EARLIER_MS}
bob@acme.com,,Create,Invoices,{EARLIER}
bob@acme.com,ACME,Create,,{EARLIER}
bob@acme.com,ACME,Create,Invoices,{LONG_AGO}
bob@acme.com,ACME,Create,Invoices,yesterday
"""

AGGREGATED = """Account ID,Invoices##Create,Reports##Export,Payments##Refund
ACME,5,1,0
BETA,2,,x
ACME,7,2,1
,3,3,3
"""


def run_import(pipeline: Pipeline, path: Path) -> str:
    result = pipeline.run_command("rollup", "import", str(path), "--service", "SP-ACME")
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_raw_and_aggregated_files_count_once_even_when_re_run(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.start_aggregator()
    raw = tmp_path / "raw.csv"
    raw.write_text(RAW)
    aggregated = tmp_path / "aggregated.csv"
    aggregated.write_text(AGGREGATED)
    expected_raw = (
        "rows read: 8\nevents accepted: 4\nrows rejected: 4\n"
        "  line 6: account_id is required\n"
        "  line 7: module is required when activity is given\n"
        "  line 8: timestamp is more than 7 days in the past\n"
        "  line 9: Timestamp is not a time\n"
    )
    expected_aggregated = (
        "rows read: 4\nevents accepted: 4\nrows rejected: 2\n"
        "  line 3: Payments##Refund is not a whole number\n"
        "  line 5: Account ID is empty\n"
    )
    assert run_import(pipeline, raw) == expected_raw
    assert run_import(pipeline, aggregated) == expected_aggregated
    await pipeline.drain()
    assert run_import(pipeline, raw) == expected_raw  # a re-run: same ids, nothing counted
    assert run_import(pipeline, aggregated) == expected_aggregated
    await pipeline.drain()
    # The raw rows are 1 to 3 hours old: just after midnight UTC they count for yesterday.
    for day in sorted({TODAY, *((NOW - timedelta(hours=h)).date().isoformat() for h in (1, 2, 3))}):
        flush = pipeline.flush(day)
        assert flush.returncode == 0, flush.stderr
    assert pipeline.durable_counts() == {
        ("ACME", "joe@acme.com", "Invoices", "Create"): 2,
        ("ACME", "ann@acme.com", "Invoices", "Send"): 1,
        ("BETA", "ann@acme.com", "Reports", "Export"): 1,
        ("ACME", "", "Invoices", "Create"): 7,
        ("ACME", "", "Reports", "Export"): 2,
        ("ACME", "", "Payments", "Refund"): 1,
        ("BETA", "", "Invoices", "Create"): 2,
    }


async def test_a_file_of_neither_kind_is_refused(pipeline: Pipeline, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    result = pipeline.run_command("rollup", "import", str(other), "--service", "SP-ACME")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "rollup import: the file is neither a raw usage file (User id, AccountId, Action, "
        "Module, Timestamp) nor an aggregated one (Account ID and <Module>##<Activity> columns)"
    )
