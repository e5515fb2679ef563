"""Pytest fixtures for a real PostgreSQL server (the backup recipe tests).

One throw-away cluster per test session, started by :mod:`tests.pgserver` and stopped by
PID at the end. When the PostgreSQL binaries are missing the tests skip with the reason —
unless ``STRONGROOM_REQUIRE_SERVERS=1``, where that is a failure: CI must never pass by
skipping the real server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.pgserver import PgServer, start, stop, unavailable

REQUIRE_ENV = "STRONGROOM_REQUIRE_SERVERS"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A running PostgreSQL on 127.0.0.1 (superuser ``postgres``, trust auth)."""
    why = unavailable()
    if why is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"PostgreSQL is required ({REQUIRE_ENV}=1) but {why}")
        pytest.skip(f"PostgreSQL not available: {why}")
    server = start(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture
def pg_new_db(pg_server: PgServer) -> Iterator[Callable[[], str]]:
    """Call it for the name of a new, empty database (from template0); dropped afterwards."""
    created: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        pg_server.create_database(name)
        created.append(name)
        return name

    yield make
    for name in created:
        pg_server.drop_database(name)


@pytest.fixture
def pg_db(pg_new_db: Callable[[], str]) -> str:
    """The name of a new, empty database on :func:`pg_server`."""
    return pg_new_db()
