from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from langchain_secure.audit import (
    AuditEvent,
    AuditLog,
    JsonlAuditStore,
    export_jsonl,
    verify_log,
)
from langchain_secure.audit.postgres import PostgresAuditStore
from langchain_secure.errors import AuditError, ConfigurationError
from tests._postgres import create_database

pytestmark = pytest.mark.integration


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_append_idempotency_checkpoints_verify(postgres_dsn: str,
                                               key: Ed25519PrivateKey) -> None:
    log = AuditLog(PostgresAuditStore(postgres_dsn), signing_key=key, checkpoint_every=5)
    receipts = log.append([AuditEvent("intent", {"n": i}, key=f"k{i}") for i in range(7)])
    assert [r.seq for r in receipts] == list(range(1, 8))
    again = log.append([AuditEvent("intent", {"n": 0}, key="k0"),
                        AuditEvent("outcome", {"n": 99}, key="k-new")])
    assert [r.seq for r in again] == [1, 8]
    log.close()
    store = PostgresAuditStore(postgres_dsn)  # a second connection sees the same log
    assert store.log_id == log.log_id
    assert [(c.start, c.end) for c in store.checkpoints()] == [(1, 7), (8, 8)]
    report = verify_log(store, [key.public_key()])
    assert (report.ok, report.records, report.signed_through) == (True, 8, 8)


def test_tampering_in_postgres_is_found(postgres_dsn: str, key: Ed25519PrivateKey) -> None:
    log = AuditLog(PostgresAuditStore(postgres_dsn), signing_key=key, checkpoint_every=5)
    for i in range(12):
        log.append([AuditEvent("note", {"i": i})])
    log.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE audit_records SET data = replace(data, '\"i\":6', '\"i\":66') "
                     "WHERE seq = 7")
    report = verify_log(PostgresAuditStore(postgres_dsn), [key.public_key()])
    assert str(report.first_bad) == ("record 7: its content does not match its hash (it was "
                                     "changed after it was written)")


def test_export_and_restore(postgres_dsn: str, postgres_server: str, tmp_path: Path,
                            key: Ed25519PrivateKey) -> None:
    log = AuditLog(PostgresAuditStore(postgres_dsn), signing_key=key, checkpoint_every=4)
    for i in range(9):
        log.append([AuditEvent("note", {"i": i})])
    log.close()
    buffer = io.StringIO()
    assert export_jsonl(PostgresAuditStore(postgres_dsn), buffer) == 9
    path = tmp_path / "x.jsonl"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    target = create_database(postgres_server, "restored")
    restored = PostgresAuditStore.restore(target, JsonlAuditStore(path))
    assert restored.log_id == log.log_id
    assert verify_log(restored, [key.public_key()]).signed_through == 9
    # the restored log keeps growing on the same chain
    more = AuditLog(restored, signing_key=key)
    assert more.append([AuditEvent("note", {"i": 9})])[0].seq == 10
    assert verify_log(restored, [key.public_key()]).ok
    with pytest.raises(AuditError, match="restore only into an empty database"):
        PostgresAuditStore.restore(target, JsonlAuditStore(path))


def test_bad_prefix(postgres_dsn: str) -> None:
    with pytest.raises(ConfigurationError, match="table_prefix"):
        PostgresAuditStore(postgres_dsn, table_prefix="x; DROP TABLE y")
