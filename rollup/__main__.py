"""python -m rollup flush|flusher|serve: durable daily counts and the query API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.days import parse_day
from common.runtime import configure_logging, run_main
from common.settings import Settings, SettingsError
from rollup import commands, flusher
from rollup.importer import import_file

NOT_COMPLETE_EXIT_CODE = 3


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rollup", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    flush = verbs.add_parser("flush", help="flush one service's day into SQL now")
    flush.add_argument("--service", required=True)
    flush.add_argument("--day", required=True, type=parse_day, help="YYYY-MM-DD")
    flush.add_argument("--force", action="store_true", help="skip the completeness wait")
    verbs.add_parser("flusher", help="daemon: flush each service's complete days")
    rebuild = verbs.add_parser("rebuild", help="recompute rollups with the current hierarchy")
    rebuild.add_argument("--service", required=True)
    rebuild.add_argument("--from", dest="first_day", required=True, type=parse_day)
    rebuild.add_argument("--to", dest="last_day", required=True, type=parse_day)
    load = verbs.add_parser("import", help="send a Totango usage CSV through the pipeline")
    load.add_argument("file", type=Path)
    load.add_argument("--service", required=True)
    serve = verbs.add_parser("serve", help="the query API and the ops dashboard")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    configure_logging(f"rollup-{args.verb}")
    try:
        settings = Settings.from_env()
        if args.verb == "flush":
            run_main(print_report(settings, args.service, args.day, args.force))
        elif args.verb == "import":
            if not args.file.is_file():
                raise SettingsError(f"{args.file} is not a file")
            run_main(print_import(settings, args.file, args.service))
        elif args.verb == "rebuild":
            run_main(commands.rebuild(settings, args.service, args.first_day, args.last_day))
        elif args.verb == "flusher":
            run_main(flusher.run(settings))
        else:
            run_main(commands.serve(settings, args.host, args.port))
    except SettingsError as error:
        sys.exit(f"rollup {args.verb}: {error}")
    except commands.NotComplete as error:
        print(f"rollup flush: {error}; use --force to flush now", file=sys.stderr)
        sys.exit(NOT_COMPLETE_EXIT_CODE)


async def print_import(settings: Settings, path: Path, service_id: str) -> None:
    report = await import_file(settings, path, service_id)
    print("\n".join(report.lines()))


async def print_report(settings: Settings, service_id: str, day: object, force: bool) -> None:
    report = await commands.flush(settings, service_id, day, force)  # type: ignore[arg-type]
    print(
        f"flushed {report.service_id} {report.day}: {report.rows} rows, {report.events} events, "
        f"{report.partitions} partitions, {report.recovered} interrupted flushes finished, "
        f"{report.seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
