"""verify_log in parallel on PostgreSQL: the same report as the sequential check."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from langchain_secure.audit import (
    AuditEvent,
    AuditLog,
    PendingRecord,
    VerifyProblem,
    VerifyReport,
    verify_log,
)
from langchain_secure.audit.chain import chain_hash, key_id
from langchain_secure.audit.postgres import PostgresAuditStore
from langchain_secure.audit.verify import _plan, _verify_parallel

pytestmark = pytest.mark.integration

KEY = Ed25519PrivateKey.generate()


def sql(dsn: str, statement: str, *params: object) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement, params)


def both(store: PostgresAuditStore, workers: int = 2) -> VerifyReport:
    """The parallel report, after checking it equals the sequential one exactly."""
    public = [KEY.public_key()]
    sequential = verify_log(store, public, workers=1)
    assert verify_log(store, public, workers=workers) == sequential
    only_workers = _verify_parallel(store, {key_id(k): k for k in public}, workers,
                                    local=False)
    assert only_workers == (sequential if sequential.ok else None)
    return sequential


@pytest.fixture
def store(postgres_dsn: str) -> PostgresAuditStore:
    log = AuditLog(PostgresAuditStore(postgres_dsn), signing_key=KEY, checkpoint_every=25)
    log.append([AuditEvent("note", {"i": i}) for i in range(1, 25)])  # 1..24, then one by one
    for i in range(25, 101):
        log.append([AuditEvent("note", {"i": i})])
    log.close()
    store = PostgresAuditStore(postgres_dsn)
    assert _plan(store.checkpoints(), 100, 2) == [
        (1, 25, ((1, 25),)), (26, 50, ((26, 50),)), (51, 75, ((51, 75),)),
        (76, None, ((76, 100),))]
    return store


def rewrite_from(first: int, *, fresh_start: bool = False) -> Callable[[str], None]:
    """Rewrite records ``first..`` with consistent fresh hashes (as without the key)."""

    def rewrite(dsn: str) -> None:
        records = list(PostgresAuditStore(dsn).records())
        prev = (hashlib.sha256(b"forged").digest() if fresh_start
                else records[first - 2].hash)
        with psycopg.connect(dsn) as conn, conn.transaction():
            for r in records[first - 1:]:
                data = r.data.replace(b'"kind":"note"', b'"kind":"edit"')
                digest = chain_hash(prev, r.seq, data)
                conn.execute("UPDATE audit_records SET prev_hash = %s, hash = %s, data = %s "
                             "WHERE seq = %s", (prev, digest, data.decode(), r.seq))
                prev = digest

    return rewrite


def rewritten(start: int, end: int) -> VerifyProblem:
    return VerifyProblem(start, f"records {start}..{end} no longer match the signed "
                                f"checkpoint {start}..{end} (rewritten after signing)",
                         exact=False)


TAMPERING: dict[str, tuple[Callable[[str], None], VerifyReport]] = {
    "changed byte in the middle of the second range": (
        lambda dsn: sql(dsn, "UPDATE audit_records SET data = replace(data, '\"i\":38', "
                             "'\"i\":83') WHERE seq = 38"),
        VerifyReport(records=37, checkpoints=4, signed_through=25, problems=(VerifyProblem(
            38, "its content does not match its hash (it was changed after it was written)"),
        ))),
    "first record of the second range deleted": (
        lambda dsn: sql(dsn, "DELETE FROM audit_records WHERE seq = 26"),
        VerifyReport(records=25, checkpoints=4, signed_through=25, problems=(
            VerifyProblem(26, "is missing (the next stored record is 27)"),))),
    "last record of the first range deleted": (
        lambda dsn: sql(dsn, "DELETE FROM audit_records WHERE seq = 25"),
        VerifyReport(records=24, checkpoints=4, signed_through=0, problems=(
            VerifyProblem(25, "is missing (the next stored record is 26)"),))),
    "tail truncated": (
        lambda dsn: sql(dsn, "DELETE FROM audit_records WHERE seq > 90"),
        VerifyReport(records=90, checkpoints=4, signed_through=75, problems=(VerifyProblem(
            91, "is missing: checkpoint 76..100 was signed over records up to 100 but the "
                "log ends at 90 (the tail was cut off)"),))),
    "signed range rewritten with fresh hashes": (rewrite_from(30), VerifyReport(
        records=100, checkpoints=4, signed_through=25,
        problems=(rewritten(26, 50), rewritten(51, 75), rewritten(76, 100)))),
    "ranges rewritten from a boundary, chained from a forged hash": (
        rewrite_from(26, fresh_start=True), VerifyReport(
            records=25, checkpoints=4, signed_through=25, problems=(VerifyProblem(
                26, "it does not follow record 25 (a record before it was changed, removed, "
                    "inserted or reordered)"),))),
}


def test_intact(store: PostgresAuditStore) -> None:
    assert both(store) == VerifyReport(records=100, checkpoints=4, signed_through=100)
    assert both(store, workers=3) == VerifyReport(records=100, checkpoints=4,
                                                  signed_through=100)


def test_intact_with_unsigned_tail_and_no_key(store: PostgresAuditStore) -> None:
    store.append([PendingRecord(b'{"n":%d}' % i) for i in range(10)])
    assert both(store) == VerifyReport(
        records=110, checkpoints=4, signed_through=100,
        warnings=("records 101..110 are chained but not covered by a verified checkpoint",))
    assert verify_log(store, [], workers=2) == verify_log(store, [], workers=1) == VerifyReport(
        records=110, checkpoints=4, signed_through=0,
        warnings=("records 1..110 are chained but not covered by a verified checkpoint",
                  "no trusted public key was given: checkpoint signatures were not checked"))


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_gives_the_sequential_report(case: str, postgres_dsn: str,
                                               store: PostgresAuditStore) -> None:
    tamper, expected = TAMPERING[case]
    tamper(postgres_dsn)
    assert both(store) == expected
    assert both(store, workers=3) == expected


def test_unsigned_tail_forged_at_a_range_boundary(postgres_dsn: str,
                                                  store: PostgresAuditStore) -> None:
    store.append([PendingRecord(b'{"n":%d}' % i) for i in range(60)])
    assert _plan(store.checkpoints(), 160, 2)[4:] == [
        (101, 120, ()), (121, 140, ()), (141, None, ())]
    rewrite_from(121, fresh_start=True)(postgres_dsn)
    assert both(store) == VerifyReport(
        records=120, checkpoints=4, signed_through=100, problems=(VerifyProblem(
            121, "it does not follow record 120 (a record before it was changed, removed, "
                 "inserted or reordered)"),))


def test_table_prefix_reaches_the_workers(postgres_dsn: str) -> None:
    log = AuditLog(PostgresAuditStore(postgres_dsn, table_prefix="other_"), signing_key=KEY,
                   checkpoint_every=10)
    for i in range(30):
        log.append([AuditEvent("note", {"i": i})])
    log.close()
    store = PostgresAuditStore(postgres_dsn, table_prefix="other_")
    assert store._row_source() == ("postgres", postgres_dsn, "other_")
    assert both(store) == VerifyReport(records=30, checkpoints=3, signed_through=30)
