"""usage-import (or python -m importer): send a Totango usage file through the pipeline.

A raw file (User id, AccountId, Action, Module, Timestamp) or an aggregated one (Account ID
and <Module>##<Activity> count columns; the last row of an account wins). Every event gets
a deterministic event_id, so a re-run within the dedup window counts nothing twice.
`python -m rollup import` is an alias of this command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import command_parser, run_or_exit, settings_or_exit
from common.runtime import configure_logging
from common.settings import Settings
from importer.run import import_file


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the import's options to parser (also used by the rollup import alias)."""
    parser.add_argument("file", type=Path, help="the CSV file")
    parser.add_argument("--service", required=True, help="the service the file belongs to")


async def print_import(settings: Settings, path: Path, service_id: str) -> None:
    """Import the file; print rows read, events accepted and the rejected rows."""
    report = await import_file(settings, path, service_id)
    print("\n".join(report.lines()))


def run(command: str, args: argparse.Namespace, settings: Settings) -> None:
    """Import with the parsed options; command names the process in logs and errors."""
    if not args.file.is_file():
        sys.exit(f"{command}: {args.file} is not a file")
    configure_logging(command.replace(" ", "-"), settings.log_level)
    run_or_exit(command, print_import(settings, args.file, args.service))


def main() -> None:
    """Import one usage file."""
    parser = command_parser("usage-import", __doc__ or "")
    add_options(parser)
    args = parser.parse_args()
    run("usage-import", args, settings_or_exit("usage-import"))


if __name__ == "__main__":
    main()
