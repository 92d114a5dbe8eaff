"""Add count rows to the durable counts, in each database's own bulk SQL.

SQLAlchemy's executemany of an INSERT ... ON CONFLICT builds and binds every row's
parameters in Python; at a million rows a flush spent most of its SQL time there. Here
SQLite gets one executemany of plain tuples (looped in C by sqlite3), and PostgreSQL one
statement per chunk with a column per array, unnested by the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from rollup.store import CountRow

KEY = "service_id, day, account_id, user_id, module, activity"
ADD_ON_CONFLICT = f"ON CONFLICT ({KEY}) DO UPDATE SET count = daily_counts.count + excluded.count"
SQLITE_UPSERT = (
    f"INSERT INTO daily_counts ({KEY}, count) VALUES (?, ?, ?, ?, ?, ?, ?) {ADD_ON_CONFLICT}"
)
POSTGRESQL_UPSERT = (
    f"INSERT INTO daily_counts ({KEY}, count) SELECT * FROM unnest($1::varchar[], $2::date[], "
    f"$3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[], $7::bigint[]) {ADD_ON_CONFLICT}"
)
ROWS_PER_STATEMENT = 20_000


async def upsert_counts(connection: AsyncConnection, rows: Sequence[CountRow]) -> None:
    """Add rows' counts to daily_counts, inserting the rows not there yet.

    Rows must be distinct by key: one statement cannot update a row twice in PostgreSQL
    (a flush's rows are, being the fields of distinct buckets).
    """
    postgresql = connection.dialect.name == "postgresql"
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        if postgresql:
            columns = tuple(list(column) for column in zip(*map(_values, chunk), strict=True))
            await connection.exec_driver_sql(POSTGRESQL_UPSERT, columns)
        else:
            sqlite_rows = [(r.service_id, r.day.isoformat(), *_values(r)[2:]) for r in chunk]
            await connection.exec_driver_sql(SQLITE_UPSERT, sqlite_rows)


def _values(row: CountRow) -> tuple[object, ...]:
    return (row.service_id, row.day, row.account_id, row.user_id, row.module, row.activity,
            row.count)  # fmt: skip
