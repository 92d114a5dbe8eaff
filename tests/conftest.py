"""Session-wide servers: Kafka and Redis start once (or are reused) for every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from stack.servers import start_servers, stop_servers
from tests.databases import fresh_database, start_postgres
from tests.support import Pipeline


@pytest.fixture(scope="session")
def servers() -> Iterator[None]:
    """Make sure Kafka and Redis run; stop at the end only what this session started."""
    started = start_servers()
    yield
    if started:
        stop_servers(names=started)


@pytest.fixture(scope="session")
def postgres_server() -> None:
    """PostgreSQL for the tests that run on it too (started once, left running)."""
    start_postgres()


@pytest.fixture(params=["sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database; parametrize with ["sqlite", "postgresql"] to run on both."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres_server")
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def pipeline(servers: None, tmp_path: Path, database_url: str) -> AsyncIterator[Pipeline]:
    """An isolated pipeline (topic, keys, group, database); its processes stop after the test."""
    created = Pipeline(tmp_path, database_url=database_url)
    await created.create_topic()
    try:
        yield created
    finally:
        created.stop_all()
        await created.delete_redis_keys()
