"""usage-rollup (or python -m rollup): flush live buckets into durable per-day counts in SQL.

`serve` and `import` are aliases of usage-api and usage-import, kept for existing scripts.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

import api.__main__ as api_command
import importer.__main__ as import_command
from common.cli import add_verb, command_parser, run_or_exit, settings_or_exit
from common.days import parse_day
from common.runtime import configure_logging
from common.settings import Settings
from rollup import commands, flusher

NOT_COMPLETE_EXIT_CODE = 3


def parser() -> argparse.ArgumentParser:
    """Build the command line: one verb per job."""
    top = command_parser("usage-rollup", __doc__ or "")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    daemon = add_verb(verbs, "flusher", "daemon: flush each service's days once complete")
    daemon.set_defaults(run=run_flusher)
    flush = add_verb(
        verbs,
        "flush",
        "flush one service's day into SQL now",
        "Flush one service's day now; safe to repeat. Without --force it refuses (exit 3,\n"
        "naming the partitions behind) a day that is not over or not complete.",
    )
    flush.add_argument("--service", required=True, help="the service's id")
    flush.add_argument("--day", required=True, type=parse_day, help="the day, YYYY-MM-DD")
    flush.add_argument("--force", action="store_true", help="skip the completeness checks")
    flush.set_defaults(run=run_flush)
    rebuild = add_verb(verbs, "rebuild", "recompute flushed days' rollups with today's hierarchy")
    rebuild.add_argument("--service", required=True, help="the service's id")
    rebuild.add_argument(
        "--from", dest="first_day", required=True, type=parse_day, help="YYYY-MM-DD"
    )
    rebuild.add_argument("--to", dest="last_day", required=True, type=parse_day, help="YYYY-MM-DD")
    rebuild.set_defaults(run=run_rebuild)
    load = add_verb(verbs, "import", "alias of usage-import: send a usage file through Kafka")
    import_command.add_options(load)
    load.set_defaults(
        run=lambda args, settings: import_command.run("rollup import", args, settings)
    )
    serve = add_verb(verbs, "serve", "alias of usage-api: the query API and the ops dashboard")
    api_command.add_options(serve)
    serve.set_defaults(run=lambda args, settings: api_command.run("rollup serve", args, settings))
    return top


def run_flusher(args: argparse.Namespace, settings: Settings) -> None:
    configure_logging("rollup-flusher", settings.log_level)
    run_or_exit("rollup flusher", flusher.run(settings))


def run_flush(args: argparse.Namespace, settings: Settings) -> None:
    configure_logging("rollup-flush", settings.log_level)
    try:
        run_or_exit("rollup flush", print_flush(settings, args.service, args.day, args.force))
    except commands.NotComplete as error:
        print(f"rollup flush: {error}; use --force to flush now", file=sys.stderr)
        sys.exit(NOT_COMPLETE_EXIT_CODE)


def run_rebuild(args: argparse.Namespace, settings: Settings) -> None:
    configure_logging("rollup-rebuild", settings.log_level)
    run_or_exit(
        "rollup rebuild", commands.rebuild(settings, args.service, args.first_day, args.last_day)
    )


async def print_flush(settings: Settings, service_id: str, day: date, force: bool) -> None:
    """Flush the day and print one line on what was flushed."""
    report = await commands.flush(settings, service_id, day, force)
    print(
        f"flushed {report.service_id} {report.day}: {report.rows} rows, {report.events} events, "
        f"{report.partitions} partitions, {report.recovered} interrupted flushes finished, "
        f"{report.seconds:.2f} s"
    )


def main() -> None:
    """Run the verb on the command line."""
    args = parser().parse_args()
    args.run(args, settings_or_exit(f"rollup {args.verb}"))


if __name__ == "__main__":
    main()
