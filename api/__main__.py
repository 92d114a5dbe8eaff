"""usage-api (or python -m api): the query API and the operators' dashboard over HTTP.

`python -m rollup serve` is an alias of this command, kept for existing scripts.
"""

from __future__ import annotations

import argparse

from api.app import build_app
from common.cli import command_parser, run_or_exit, settings_or_exit
from common.http import serve_until_signalled
from common.runtime import configure_logging
from common.services import load_services
from common.settings import Settings

SHUTDOWN_TIMEOUT_S = 5.0


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the API's options to parser (also used by the rollup serve alias)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on")


async def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the query API until SIGTERM or SIGINT."""
    app = build_app(settings, load_services(settings.services_file))
    await serve_until_signalled(app, "query API", host, port, SHUTDOWN_TIMEOUT_S)


def run(command: str, args: argparse.Namespace, settings: Settings) -> None:
    """Serve with the parsed options; command names the process in logs and errors."""
    configure_logging(command.replace(" ", "-"), settings.log_level)
    run_or_exit(command, serve(settings, args.host, args.port))


def main() -> None:
    """Serve the query API and the dashboard."""
    parser = command_parser("usage-api", __doc__ or "")
    add_options(parser)
    args = parser.parse_args()
    run("usage-api", args, settings_or_exit("usage-api"))


if __name__ == "__main__":
    main()
