"""usage-stack (or python -m stack) up|down|status: the whole system on this machine."""

from __future__ import annotations

import os

from common.cli import command_parser
from common.settings import Settings
from stack.apps import API_PORT, APPS, COLLECTOR_PORT, DEMO_OPS_KEY, start_apps, stop_apps
from stack.processes import read_pid
from stack.servers import (
    PROJECT_ROOT,
    STACK_HOME,
    start_clusters,
    start_servers,
    stop_clusters,
    stop_servers,
    wait_for_kafka,
)

USAGE_EXAMPLE = """
The system is up.
  collector  http://127.0.0.1:{collector}   (pixel, /v1/events, /healthz, /readyz)
  query API  http://127.0.0.1:{api}   (read key in services.toml)
  dashboard  http://127.0.0.1:{api}/ops   (operator key: OPS_KEY, here {ops_key})

Try it:
  curl -i 'http://127.0.0.1:{collector}/pixel.gif?sdr_s=SP-DEMO&sdr_o=XYZ&sdr_u=joe@acme.com&sdr_m=Invoices&sdr_a=Create'
  curl -H 'Authorization: Bearer demo-read-key-change-me' \\
       'http://127.0.0.1:{api}/v1/services/SP-DEMO/accounts/XYZ/usage?by=day,module,activity,user'

Stop it with: ./dev stop
"""


def main() -> None:
    parser = command_parser("usage-stack", __doc__ or "")
    parser.add_argument(
        "verb",
        choices=["up", "down", "status"],
        help="up: start what is missing; down: stop it; status: what runs",
    )
    parser.add_argument("--servers-only", action="store_true", help="Kafka and Redis only")
    parser.add_argument(
        "--redis-cluster", action="store_true",
        help="a Redis Cluster (3 primaries, 1 replica each, ports 7001-7006) instead of one Redis",
    )  # fmt: skip
    parser.add_argument(
        "--kafka-brokers", type=int, default=1, choices=[1, 3],
        help="3: a KRaft cluster on ports 9192, 9292, 9392 (replication factor 3)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.verb == "up":
        start_servers(with_redis=not args.redis_cluster, with_kafka=args.kafka_brokers == 1)
        # The apps started below inherit these, as they would read them from a deployment.
        os.environ.update(start_clusters(args.redis_cluster, args.kafka_brokers))
        settings = Settings.from_env()
        wait_for_kafka(settings.kafka_bootstrap, settings.usage_topic, settings.topic_partitions)
        if not args.servers_only:
            start_apps(STACK_HOME, PROJECT_ROOT)
            ops_key = os.environ.get("OPS_KEY", DEMO_OPS_KEY)
            print(USAGE_EXAMPLE.format(collector=COLLECTOR_PORT, api=API_PORT, ops_key=ops_key))
    elif args.verb == "down":
        stop_apps(STACK_HOME)
        if args.redis_cluster or args.kafka_brokers > 1:
            stop_clusters()
        elif not args.servers_only:
            stop_servers()
    else:
        for name in ["redis", "kafka", *APPS]:
            pid = read_pid(STACK_HOME / f"{name}.pid")
            print(f"{name:<10} {f'running, pid {pid}' if pid else 'stopped'}")


if __name__ == "__main__":
    main()
