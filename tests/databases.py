"""A fresh database per test, on SQLite or on the session's PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from stack import postgres
from stack.servers import STACK_HOME

ADMIN_DSN = f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/postgres"


def start_postgres() -> None:
    postgres.start(STACK_HOME)


@asynccontextmanager
async def fresh_database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """Yield a DATABASE_URL of an empty database of kind (sqlite|postgresql)."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'usage.db'}"
        return
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
