"""Real components for integration tests, started by the tests themselves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._postgres import POSTGRES_MISSING, create_database, temporary_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port; yields a base DSN."""
    try:
        with temporary_postgres() as server:
            yield server
    except RuntimeError as exc:
        if str(exc) == POSTGRES_MISSING:
            pytest.fail(POSTGRES_MISSING)
        raise


@pytest.fixture
def postgres_dsn(postgres_server: str) -> str:
    """A new, empty database in the throwaway cluster."""
    return create_database(postgres_server, "t_" + uuid.uuid4().hex[:12])


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
