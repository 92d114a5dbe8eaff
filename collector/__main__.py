"""usage-collector (or python -m collector): intake over HTTP, events onto Kafka."""

from __future__ import annotations

import multiprocessing
import signal
import sys

from collector.main import run
from common.cli import command_parser, settings_or_exit
from common.runtime import configure_logging, run_main
from common.services import load_services
from common.settings import Settings, SettingsError


def serve(settings: Settings, host: str, port: int, reuse_port: bool) -> None:
    configure_logging("collector", settings.log_level)
    run_main(run(settings, host, port, reuse_port))


def main() -> None:
    """Serve the collector in one process, or in --workers processes sharing the port."""
    parser = command_parser("usage-collector", __doc__ or "")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    args = parser.parse_args()
    settings = settings_or_exit("collector")
    try:
        load_services(settings.services_file)
    except SettingsError as error:
        sys.exit(f"collector: {error}")
    if args.workers <= 1:
        serve(settings, args.host, args.port, reuse_port=False)
        return
    workers = [
        multiprocessing.Process(target=serve, args=(settings, args.host, args.port, True))
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()

    def forward(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                worker.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    sys.exit(max((worker.exitcode or 0) for worker in workers))


if __name__ == "__main__":
    main()
