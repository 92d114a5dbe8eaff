"""Settings and the services file: a bad setting stops the process, naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from common.redis_client import cluster_seeds, connect, is_cluster_url
from common.services import load_services
from common.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("url", "seeds", "cluster"),
    [
        ("redis://127.0.0.1:6379/0", [], False),
        (
            "redis+cluster://10.0.0.1:7001,10.0.0.2:7002",
            [("10.0.0.1", 7001), ("10.0.0.2", 7002)],
            True,
        ),
        (
            "rediss+cluster://user:p%40ss@redis-1:6379,redis-2:6379/0",
            [("redis-1", 6379), ("redis-2", 6379)],
            True,
        ),
    ],
)
def test_redis_url_names_one_server_or_a_cluster(
    url: str, seeds: list[tuple[str, int]], cluster: bool
) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url
    assert is_cluster_url(url) == cluster
    if cluster:
        assert cluster_seeds(url) == seeds
        client = connect(url)
        assert isinstance(client, RedisCluster)
        assert [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()] == seeds


def test_defaults_match_the_local_stack() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings().kafka_bootstrap == "127.0.0.1:9092"
    assert Settings().database_url == "sqlite:///data/usage.db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with redis://"),
        (
            {"REDIS_URL": "redis+cluster://10.0.0.1:7001,10.0.0.2"},
            "REDIS_URL: cluster node must be host:port, got '10.0.0.2'",
        ),
        (
            {"REDIS_URL": "redis+cluster://10.0.0.1:7001/2"},
            "REDIS_URL: a Redis Cluster has only database 0",
        ),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be sqlite:///PATH or postgresql://"),
        ({"KAFKA_BOOTSTRAP": "localhost"}, "KAFKA_BOOTSTRAP must be host:port"),
        ({"USAGE_TOPIC": "usage events"}, "USAGE_TOPIC is not a valid Kafka topic name"),
        ({"USAGE_TOPIC_PARTITIONS": "twelve"}, "USAGE_TOPIC_PARTITIONS must be a whole number"),
        (
            {"REDIS_KEY_PREFIX": "a{b}"},
            "REDIS_KEY_PREFIX must be non-empty and free of { } * ? [ ]",
        ),
        (
            {"REDIS_KEY_PREFIX": "usage*"},
            "REDIS_KEY_PREFIX must be non-empty and free of { } * ? [ ]",
        ),
        ({"DEDUP_WINDOW_S": "3600"}, "DEDUP_WINDOW_S must be at least 172800"),
        ({"CONSUMER_GROUP": "  "}, "CONSUMER_GROUP is set but empty"),
        ({"METRICS_PORT": ""}, "METRICS_PORT must be a whole number, got ''"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
        (
            {"OPS_KEY": "operator-key-0123456789,short"},
            "OPS_KEY: every key must have at least 16 characters",
        ),
    ],
)
def test_bad_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


def test_shipped_demo_services_file_loads() -> None:
    services = load_services(Path(__file__).parents[2] / "services.toml")
    assert list(services) == ["SP-DEMO"]
    assert services["SP-DEMO"].timezone.key == "UTC"
    assert (services["SP-DEMO"].public_rate_per_s, services["SP-DEMO"].server_rate_per_s) == (
        1000,
        0,
    )


def test_every_setting_is_read_from_its_variable() -> None:
    env = {
        "KAFKA_BOOTSTRAP": "k1:1,k2:2", "REDIS_URL": "redis://r:1/2", "DATABASE_URL": "postgresql://u@h/d",
        "SERVICES_FILE": " tenants.toml ", "USAGE_TOPIC": "t", "USAGE_TOPIC_PARTITIONS": "3",
        "CONSUMER_GROUP": "g", "REDIS_KEY_PREFIX": "p", "PRODUCE_TIMEOUT_MS": "500",
        "MAX_PENDING_EVENTS": "2000", "DEDUP_WINDOW_S": "172800", "FLUSHER_INTERVAL_MS": "300", "FLUSH_FSYNC_WAIT_MS": "0",
        "METRICS_PORT": "9101", "OPS_KEY": "operator-key-0123456789", "LOG_LEVEL": "debug",
        "CLOCK_SHIFT_FILE": "shift.txt",
    }  # fmt: skip
    assert Settings.from_env(env) == Settings(
        kafka_bootstrap="k1:1,k2:2", redis_url="redis://r:1/2", database_url="postgresql://u@h/d",
        services_file=Path("tenants.toml"), usage_topic="t", topic_partitions=3,
        consumer_group="g", redis_key_prefix="p", produce_timeout_ms=500,
        max_pending_events=2000, dedup_window_s=172800, flusher_interval_ms=300, flush_fsync_wait_ms=0,
        metrics_port=9101, ops_keys=("operator-key-0123456789",), log_level="DEBUG",
        clock_shift_file=Path("shift.txt"),
    )  # fmt: skip
    assert sorted(env) == sorted(doc.variable for doc in Settings.documented())


def test_readme_settings_table_is_the_settings_fields() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    header = "| variable | default | meaning |\n| --- | --- | --- |\n"
    table = readme.split(header)[1].split("\n\n")[0]
    expected = "\n".join(
        f"| `{doc.variable}` | {doc.default} | {doc.meaning} |" for doc in Settings.documented()
    )
    assert table == expected, "README's settings table should read:\n" + expected


def test_operator_keys_rotate_as_a_comma_separated_pair() -> None:
    settings = Settings.from_env({"OPS_KEY": "operator-key-0123456789, operator-key-rotated-01"})
    assert settings.ops_keys == ("operator-key-0123456789", "operator-key-rotated-01")
    assert Settings.from_env({}).ops_keys == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must list at least one \\[\\[service\\]\\]"),
        ("[[service]\n", "is not valid TOML"),
        ('[[service]]\nid = "S"\ntimezone = "Mars/Base"\nserver_key = "k"\nread_key = "r"',
         "service #1 \\(S\\): unknown timezone 'Mars/Base'"),
        ('[[service]]\nid = "S"\nserver_key = "short"\nread_key = "rrrrrrrrrrrrrrrrrr"',
         "service #1 \\(S\\): every server_key must have at least 16 characters"),
        ('[[service]]\nid = "S"\nserver_key = "kkkkkkkkkkkkkkkkk"\nread_key = "rrrrrrrrrrrrrrrrrr"\n'
         'max_modules = 0', "service #1 \\(S\\): max_modules must be a positive whole number"),
        ('[[service]]\nid = "S"\nserver_key = "kkkkkkkkkkkkkkkkk"\nread_key = "rrrrrrrrrrrrrrrrrr"\n'
         '[[service]]\nid = "S"\nserver_key = "kkkkkkkkkkkkkkkkk"\nread_key = "rrrrrrrrrrrrrrrrrr"',
         "service S is listed twice"),
        ('[[service]]\nid = "S"\nserver_key = "kkkkkkkkkkkkkkkkk"\nread_key = "rrrrrrrrrrrrrrrrrr"\n'
         'public_rate_limit_per_s = -1', "service #1 \\(S\\): public_rate_limit_per_s must be a whole number, 0 for no limit"),
        ('[[service]]\nid = "S"\nserver_key = "kkkkkkkkkkkkkkkkk"\nread_key = "rrrrrrrrrrrrrrrrrr"\n'
         'server_rate_limit_per_s = "fast"', "service #1 \\(S\\): server_rate_limit_per_s must be a whole number, 0 for no limit"),
    ],
)  # fmt: skip
def test_bad_services_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "services.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_services(path)


def test_missing_services_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SERVICES_FILE .*nope.toml does not exist"):
        load_services(tmp_path / "nope.toml")


def test_two_keys_are_valid_during_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text(
        '[[service]]\nid = "S"\nserver_key = ["old-key-0123456789", "new-key-0123456789"]\n'
        'read_key = "read-key-0123456789"\n'
    )
    assert load_services(path)["S"].server_keys == ("old-key-0123456789", "new-key-0123456789")
