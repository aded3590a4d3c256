"""Databases for the storage tests: a fresh SQLite file, or a fresh database on the real
PostgreSQL server (127.0.0.1:5432, trust auth), created and dropped per test."""

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get(
    "FACEGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def postgres_database():
    """Yield the URL of a new, empty PostgreSQL database, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # no server: say so, or fail when CI requires it
        reason = f"no PostgreSQL server at {PG_ADMIN_URL} ({type(exc).__name__})"
        admin.dispose()
        if os.environ.get("FACEGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"FACEGATE_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    name = f"facegate_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'create database "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
