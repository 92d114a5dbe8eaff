"""docker-compose.yml describes the production topology with the README's setting names."""

from __future__ import annotations

import re
from typing import Any

import yaml

from common.redis_client import cluster_seeds
from common.settings import Settings
from stack.servers import PROJECT_ROOT


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    return loaded


def readme_settings() -> set[str]:
    readme = (PROJECT_ROOT / "README.md").read_text()
    return set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))


def test_the_topology_has_three_brokers_a_redis_cluster_and_every_process() -> None:
    services = compose()["services"]
    assert {f"kafka-{n}" for n in (1, 2, 3)} <= services.keys()
    assert {f"redis-{n}" for n in range(1, 7)} <= services.keys()
    assert {"postgres", "collector", "aggregator", "flusher", "api"} <= services.keys()
    assert services["collector"]["deploy"]["replicas"] > 1
    assert services["aggregator"]["deploy"]["replicas"] > 1
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        environment = services[name]["environment"]
        assert environment["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
        assert environment["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    assert "--cluster-enabled" in services["redis-1"]["command"]
    assert "--cluster-replicas 1" in services["redis-cluster-create"]["command"][0]


def test_every_process_reads_only_readme_settings_and_they_are_valid() -> None:
    services = compose()["services"]
    for name in ("collector", "aggregator", "flusher", "api"):
        environment = {k: str(v) for k, v in services[name]["environment"].items()}
        assert set(environment) <= readme_settings(), name
        environment["OPS_KEY"] = "an-operator-key-0123456789"  # compose asks for it at `up`
        settings = Settings.from_env(environment)
        assert len(settings.kafka_bootstrap.split(",")) == 3
        assert len(cluster_seeds(settings.redis_url)) == 6
