from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_secure.audit import AuditEvent, AuditLog


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def log(log_path: Path) -> Iterator[AuditLog]:
    audit = AuditLog(log_path, checkpoint_every=10)
    yield audit
    audit.store.close()


def fill(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append([AuditEvent("note", {"i": i})])


def sql(path: Path, statement: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement, params)
    conn.commit()
    conn.close()
