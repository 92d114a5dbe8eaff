"""Session-wide servers: Kafka and Redis start once (or are reused) for every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from stack.servers import start_servers, stop_servers
from tests.support import Pipeline


@pytest.fixture(scope="session")
def servers() -> Iterator[None]:
    """Make sure Kafka and Redis run; stop at the end only what this session started."""
    started = start_servers()
    yield
    if started:
        stop_servers(names=started)


@pytest.fixture
async def pipeline(servers: None, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """An isolated pipeline (topic, keys, group, database); its processes stop after the test."""
    created = Pipeline(tmp_path)
    await created.create_topic()
    try:
        yield created
    finally:
        created.stop_all()
        await created.delete_redis_keys()
