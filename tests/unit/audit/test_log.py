"""AuditLog and verify_log: durable appends, checkpoints, and the tamper suite."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from langchain_secure.audit import (
    AuditEvent,
    AuditLog,
    InclusionProof,
    JsonlAuditStore,
    SQLiteAuditStore,
    export_jsonl,
    verify_log,
)
from langchain_secure.audit.chain import load_public_key
from langchain_secure.errors import AuditError, ConfigurationError
from tests.unit.audit.conftest import fill, sql


def problems(path: Path, log: AuditLog) -> list[str]:
    return [str(p) for p in verify_log(SQLiteAuditStore(path), [log.public_key]).problems]


def test_append_returns_receipts_in_order(log: AuditLog) -> None:
    receipts = log.append([AuditEvent("a", {"x": 1}), AuditEvent("b", {"x": 2})])
    assert [r.seq for r in receipts] == [1, 2]
    assert all(r.log_id == log.log_id and len(r.hash) == 64 for r in receipts)
    [stored1, stored2] = list(log.store.records())
    assert stored2.prev_hash == stored1.hash
    body = json.loads(stored1.data)
    assert (body["kind"], body["x"]) == ("a", 1)
    assert body["ts"].endswith("Z")


def test_idempotent_keys_write_once(log: AuditLog) -> None:
    first = log.append([AuditEvent("intent", {"n": 1}, key="t:c:intent")])
    again = log.append([AuditEvent("intent", {"n": 2}, key="t:c:intent"),
                        AuditEvent("outcome", {"n": 3}, key="t:c:outcome")])
    assert again[0] == first[0]
    assert [r.seq for r in log.store.records()] == [1, 2]


def test_checkpoints_every_n_and_on_close(log_path: Path) -> None:
    log = AuditLog(log_path, checkpoint_every=10)
    fill(log, 25)
    assert [(c.start, c.end) for c in log.store.checkpoints()] == [(1, 10), (11, 20)]
    log.close()
    reopened = SQLiteAuditStore(log_path)
    assert [(c.start, c.end) for c in reopened.checkpoints()] == [(1, 10), (11, 20), (21, 25)]
    report = verify_log(reopened, [log.public_key])
    assert (report.ok, report.records, report.checkpoints, report.signed_through) == (
        True, 25, 3, 25)
    assert report.warnings == ()


def test_closing_twice_is_harmless(log_path: Path) -> None:
    # a Guard closes its audit log; so may the code that made it, in either order
    log = AuditLog(log_path, checkpoint_every=10)
    fill(log, 3)
    log.close()
    log.close()
    reopened = SQLiteAuditStore(log_path)
    assert [(c.start, c.end) for c in reopened.checkpoints()] == [(1, 3)]


def test_unsigned_tail_is_a_warning(log: AuditLog) -> None:
    fill(log, 13)
    report = verify_log(log.store, [log.public_key])
    assert report.ok
    assert report.warnings == ("records 11..13 are chained but not covered by a verified "
                               "checkpoint",)


def test_default_key_files_next_to_the_database(log_path: Path) -> None:
    log = AuditLog(log_path)
    assert (log_path.parent / "audit.db.key.pem").stat().st_mode & 0o777 == 0o600
    public = load_public_key(log_path.parent / "audit.db.key.pub.pem")
    assert log.key_id == AuditLog(log_path).key_id  # the same key is reused
    fill(log, 3)
    log.close()
    assert verify_log(SQLiteAuditStore(log_path), [public]).ok


def test_no_key_means_signatures_unchecked(log: AuditLog) -> None:
    fill(log, 10)
    report = verify_log(log.store, [])
    assert report.ok
    assert report.warnings[-1] == ("no trusted public key was given: checkpoint signatures "
                                   "were not checked")


# -- the tamper suite: each case names the exact record ------------------------------------


@pytest.fixture
def closed(log_path: Path) -> AuditLog:
    log = AuditLog(log_path, checkpoint_every=10)
    fill(log, 30)
    log.close()
    return log


def test_intact(log_path: Path, closed: AuditLog) -> None:
    assert problems(log_path, closed) == []


def test_changed_byte(log_path: Path, closed: AuditLog) -> None:
    sql(log_path, "UPDATE audit_records SET data = replace(data, '\"i\":16', '\"i\":61') "
                  "WHERE seq = 17")
    assert problems(log_path, closed)[0] == (
        "record 17: its content does not match its hash (it was changed after it was written)")


def test_deleted_record(log_path: Path, closed: AuditLog) -> None:
    sql(log_path, "DELETE FROM audit_records WHERE seq = 12")
    assert problems(log_path, closed)[0] == "record 12: is missing (the next stored record is 13)"


def test_deleted_range(log_path: Path, closed: AuditLog) -> None:
    sql(log_path, "DELETE FROM audit_records WHERE seq BETWEEN 12 AND 14")
    assert problems(log_path, closed)[0] == (
        "record 12: is missing, and so are the records up to 14 (the next stored record is 15)")


def test_reordered_records(log_path: Path, closed: AuditLog) -> None:
    # swap records 8 and 9 (rows renumbered so the sequence itself looks intact)
    sql(log_path, "UPDATE audit_records SET seq = -8 WHERE seq = 8")
    sql(log_path, "UPDATE audit_records SET seq = 8 WHERE seq = 9")
    sql(log_path, "UPDATE audit_records SET seq = 9 WHERE seq = -8")
    assert problems(log_path, closed)[0] == (
        "record 8: records were inserted, removed or reordered here: the record stored as 8 "
        "was written as record 9")


def test_inserted_record(log_path: Path, closed: AuditLog) -> None:
    # shift 20..30 up by one and put a forged record at 20, hashed like a real one
    from langchain_secure.audit.chain import chain_hash

    store = SQLiteAuditStore(log_path)
    rec19 = next(store.records(19, 19))
    sql(log_path, "UPDATE audit_records SET seq = seq + 1000 WHERE seq >= 20")
    sql(log_path, "UPDATE audit_records SET seq = seq - 999 WHERE seq >= 1000")
    data = b'{"i":999,"kind":"note","ts":"2026-01-01T00:00:00.000000Z"}'
    sql(log_path, "INSERT INTO audit_records VALUES (20, ?, ?, NULL, ?)",
        rec19.hash, chain_hash(rec19.hash, 20, data), data.decode())
    assert problems(log_path, closed) == [
        "record 20: records were inserted, removed or reordered here: the record stored as 21 "
        "was written as record 20",
        "record 11: records 11..20 no longer match the signed checkpoint 11..20 (rewritten "
        "after signing)"]


def test_truncated_tail(log_path: Path, closed: AuditLog) -> None:
    sql(log_path, "DELETE FROM audit_records WHERE seq > 26")
    assert problems(log_path, closed) == [
        "record 27: is missing: checkpoint 21..30 was signed over records up to 30 but the "
        "log ends at 26 (the tail was cut off)"]


def test_swapped_signature(log_path: Path, closed: AuditLog) -> None:
    conn_store = SQLiteAuditStore(log_path)
    [a, b, _] = conn_store.checkpoints()
    body_a = json.loads(json.dumps(a.to_json()))
    body_a["signature"] = b.signature
    sql(log_path, "UPDATE audit_checkpoints SET body = ? WHERE start_seq = 1",
        json.dumps(body_a))
    assert problems(log_path, closed) == ["record 1: checkpoint 1..10 has an invalid signature"]


def test_checkpoint_replayed_from_another_log(tmp_path: Path, log_path: Path,
                                              closed: AuditLog) -> None:
    key = Ed25519PrivateKey.generate()
    other = AuditLog(SQLiteAuditStore(tmp_path / "other.db"), signing_key=key,
                     checkpoint_every=10)
    fill(other, 10)
    foreign = other.store.checkpoints()[0]
    sql(log_path, "UPDATE audit_checkpoints SET body = ? WHERE start_seq = 1",
        json.dumps(foreign.to_json()))
    assert problems(log_path, closed) == [
        f"record 1: checkpoint 1..10 belongs to another log ({other.log_id}): it was copied "
        "here"]


def test_range_rewritten_with_fresh_hashes(log_path: Path, closed: AuditLog) -> None:
    from langchain_secure.audit.chain import chain_hash

    store = SQLiteAuditStore(log_path)
    records = list(store.records())
    prev = records[13].hash  # record 14 stays, 15.. are rewritten consistently
    for r in records[14:]:
        data = r.data.replace(b'"kind":"note"', b'"kind":"edit"')
        digest = chain_hash(prev, r.seq, data)
        sql(log_path, "UPDATE audit_records SET prev_hash = ?, hash = ?, data = ? WHERE seq = ?",
            prev, digest, data.decode(), r.seq)
        prev = digest
    assert problems(log_path, closed) == [
        "record 11: records 11..20 no longer match the signed checkpoint 11..20 (rewritten "
        "after signing)",
        "record 21: records 21..30 no longer match the signed checkpoint 21..30 (rewritten "
        "after signing)"]


def test_removed_checkpoint(log_path: Path, closed: AuditLog) -> None:
    sql(log_path, "DELETE FROM audit_checkpoints WHERE start_seq = 11")
    assert problems(log_path, closed) == [
        "record 11: records 11..20 have no checkpoint (one was removed)"]


def test_untrusted_key(log_path: Path, closed: AuditLog) -> None:
    stranger = Ed25519PrivateKey.generate().public_key()
    report = verify_log(SQLiteAuditStore(log_path), [stranger])
    assert str(report.first_bad).startswith("record 1: checkpoint 1..10 was signed by key ")


# -- proofs ------------------------------------------------------------------------------------


def test_inclusion_proof_round_trip(log: AuditLog) -> None:
    fill(log, 23)
    proof = log.proof(17)
    assert proof.checkpoint.start == 11
    assert proof.verify([log.public_key]) is None
    again = InclusionProof.from_json(json.loads(json.dumps(proof.to_json())))
    assert again.verify([log.public_key]) is None
    # record 23 has no checkpoint yet: asking for its proof signs one
    assert log.proof(23).checkpoint.end == 23


def test_tampered_proofs_fail(log: AuditLog) -> None:
    fill(log, 20)
    proof = log.proof(5).to_json()
    edited = {**proof, "data": proof["data"].replace('"i":4', '"i":5')}
    assert InclusionProof.from_json(edited).verify([log.public_key]) == (
        "the record and its audit path do not lead to the signed root")
    stranger = Ed25519PrivateKey.generate().public_key()
    assert InclusionProof.from_json(proof).verify([stranger]).endswith("which is not trusted")
    moved = {**proof, "seq": 25}
    assert InclusionProof.from_json(moved).verify([log.public_key]) == (
        "record 25 is outside the checkpoint's range 1..10")
    with pytest.raises(AuditError, match="there is no record 99"):
        log.proof(99)


# -- JSONL -------------------------------------------------------------------------------------


def test_export_verify_import(tmp_path: Path, closed: AuditLog, log_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        assert export_jsonl(SQLiteAuditStore(log_path), handle) == 30
    exported = JsonlAuditStore(out)
    assert verify_log(exported, [closed.public_key]).ok
    restored = SQLiteAuditStore.restore(tmp_path / "restored.db", exported)
    assert restored.log_id == closed.log_id
    assert verify_log(restored, [closed.public_key]).signed_through == 30
    with pytest.raises(AuditError, match="exists"):
        SQLiteAuditStore.restore(tmp_path / "restored.db", exported)


def test_hand_edited_export_is_caught(tmp_path: Path, closed: AuditLog, log_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        export_jsonl(SQLiteAuditStore(log_path), handle)
    lines = out.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6].replace('"i": 5', '"i": 50')  # record 6, edited as a person would
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = verify_log(JsonlAuditStore(out), [closed.public_key])
    assert str(report.first_bad) == ("record 6: its content does not match its hash (it was "
                                     "changed after it was written)")


def test_bad_export_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"type": "log", "log_id": "x"}\n{"type": "record", "seq": 1}\n')
    with pytest.raises(AuditError, match=r"x.jsonl:2: not an audit export line"):
        JsonlAuditStore(bad)
    bad.write_text('{"type": "log", "log_id": "x"}\n')
    with pytest.raises(AuditError, match="read-only"):
        JsonlAuditStore(bad).append([])


# -- concurrency and failure ---------------------------------------------------------------


def test_threads_share_commits_without_gaps_or_forks(log: AuditLog) -> None:
    def writer(n: int) -> None:
        for i in range(150):
            log.append([AuditEvent("note", {"w": n, "i": i})])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [r.seq for r in log.store.records()]
    assert seqs == list(range(1, 601))
    report = verify_log(log.store, [log.public_key])
    assert (report.ok, report.records) == (True, 600)


class BrokenStore(SQLiteAuditStore):
    def append(self, records):  # type: ignore[no-untyped-def]
        raise OSError("disk full")


def test_store_failure_is_an_audit_error(tmp_path: Path) -> None:
    log = AuditLog(BrokenStore(tmp_path / "b.db"), signing_key=Ed25519PrivateKey.generate())
    with pytest.raises(AuditError, match="the audit log could not be written: disk full"):
        log.append([AuditEvent("x", {})])


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="checkpoint_every"):
        AuditLog(tmp_path / "a.db", checkpoint_every=0)
    with pytest.raises(ConfigurationError, match="signing_key is required"):
        AuditLog(SQLiteAuditStore(tmp_path / "c.db"))
