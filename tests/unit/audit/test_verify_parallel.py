"""verify_log in parallel: the same report as the sequential check, for intact and tampered logs.

The parallel path is a fast path that can only prove a log intact. These tests run it
explicitly (``workers=2``; and ``_verify_parallel(..., local=False)``, where worker
processes check every range) and hold it to the sequential report, field by field.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_secure.audit import (
    AuditLog,
    JsonlAuditStore,
    PendingRecord,
    SQLiteAuditStore,
    VerifyProblem,
    VerifyReport,
    _ranges,
    export_jsonl,
    verify_log,
)
from langchain_secure.audit import verify as verify_module
from langchain_secure.audit.chain import chain_hash, key_id, merkle_root
from langchain_secure.audit.verify import _auto_workers, _plan, _verify_parallel
from langchain_secure.cli import main
from langchain_secure.errors import ConfigurationError
from tests.unit.audit.conftest import fill, sql

KEY = Ed25519PrivateKey.generate()


def keys() -> dict[str, Ed25519PublicKey]:
    return {key_id(KEY.public_key()): KEY.public_key()}


def build(path: Path, n: int = 100, every: int = 25) -> SQLiteAuditStore:
    log = AuditLog(SQLiteAuditStore(path), signing_key=KEY, checkpoint_every=every)
    fill(log, n)
    log.close()
    return SQLiteAuditStore(path)


def both(store: SQLiteAuditStore, public: list[Ed25519PublicKey] | None = None,
         workers: int = 2) -> VerifyReport:
    """The parallel report, after checking it equals the sequential one exactly.

    Also runs the fast path with every range checked by worker processes: it gives
    the same report for an intact log and gives up (None) on anything else.
    """
    given_keys = [KEY.public_key()] if public is None else public
    sequential = verify_log(store, given_keys, workers=1)
    parallel = verify_log(store, given_keys, workers=workers)
    assert parallel == sequential
    only_workers = _verify_parallel(store, {key_id(k): k for k in given_keys}, workers,
                                    local=False)
    assert only_workers == (sequential if sequential.ok else None)
    return parallel


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def store(path: Path) -> SQLiteAuditStore:
    return build(path)


# -- the plan ----------------------------------------------------------------------------


def test_plan_splits_at_checkpoint_boundaries(store: SQLiteAuditStore) -> None:
    assert _plan(store.checkpoints(), 100, 2) == [
        (1, 25, ((1, 25),)), (26, 50, ((26, 50),)), (51, 75, ((51, 75),)),
        (76, None, ((76, 100),))]


def test_plan_groups_small_checkpoints_and_splits_the_unsigned_tail(path: Path) -> None:
    log = AuditLog(SQLiteAuditStore(path), signing_key=KEY, checkpoint_every=5)
    fill(log, 20)
    log.store.append([PendingRecord(b'{"n":%d}' % i) for i in range(30)])  # 21..50 unsigned
    assert _plan(log.store.checkpoints(), 50, 2) == [
        (1, 10, ((1, 5), (6, 10))), (11, 20, ((11, 15), (16, 20))), (21, 27, ()),
        (28, 34, ()), (35, 41, ()), (42, 48, ()), (49, None, ())]


def test_plan_gives_up_on_checkpoints_that_do_not_tile(store: SQLiteAuditStore) -> None:
    cps = store.checkpoints()
    assert _plan([cps[0], cps[2]], 100, 2) is None  # a checkpoint removed
    assert _plan(cps, 99, 2) is None  # signed past the last record
    assert _plan([], 0, 2) == [(1, None, ())]


@given(sizes=st.lists(st.integers(1, 40), max_size=12), tail=st.integers(0, 60),
       workers=st.integers(2, 8))
def test_plan_tiles_the_log(sizes: list[int], tail: int, workers: int) -> None:
    from langchain_secure.audit.chain import Checkpoint

    cps, start = [], 1
    for size in sizes:
        cps.append(Checkpoint("log", start, start + size - 1, "", "", "", ""))
        start += size
    last = start - 1 + tail
    chunks = _plan(cps, last, workers)
    assert chunks is not None
    assert chunks[0][0] == 1
    assert chunks[-1][1] is None
    for (_, end, _), (next_start, _, _) in pairwise(chunks):
        assert end is not None
        assert next_start == end + 1
    spans = [span for chunk in chunks for span in chunk[2]]
    assert spans == [(c.start, c.end) for c in cps]
    for chunk_start, chunk_end, chunk_spans in chunks:
        for span_start, span_end in chunk_spans:
            assert chunk_start <= span_start <= span_end
            assert chunk_end is None or span_end <= chunk_end
    assert all(end is None or start <= end <= last for start, end, _ in chunks)


def test_auto_workers() -> None:
    assert _auto_workers(50_000, 2) == 1
    assert _auto_workers(50_001, 2) == 2
    assert _auto_workers(100_000, 1) == 1
    assert _auto_workers(100_000, 2) == 2
    assert _auto_workers(100_000, 16) == 4
    assert _auto_workers(10_000_000, 64) == 8


def test_workers_must_be_positive(store: SQLiteAuditStore) -> None:
    with pytest.raises(ConfigurationError, match=r"workers must be at least 1 \(or None"):
        verify_log(store, [KEY.public_key()], workers=0)


def test_small_logs_are_checked_in_process_by_default(store: SQLiteAuditStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(verify_module, "_check_chunks", lambda *a, **k: started.append(a))
    assert verify_log(store, [KEY.public_key()]) == VerifyReport(
        records=100, checkpoints=4, signed_through=100)
    assert started == []
    assert verify_log(store, [KEY.public_key()], workers=2) == VerifyReport(
        records=100, checkpoints=4, signed_through=100)
    assert len(started) == 1  # (returned None, so the sequential check ran)


# -- intact logs: the fast path gives the report --------------------------------------------


def test_intact(store: SQLiteAuditStore) -> None:
    assert both(store) == VerifyReport(records=100, checkpoints=4, signed_through=100)
    assert both(store, workers=3) == VerifyReport(records=100, checkpoints=4,
                                                  signed_through=100)


def test_intact_with_unsigned_tail(store: SQLiteAuditStore) -> None:
    store.append([PendingRecord(b'{"n":%d}' % i) for i in range(10)])
    assert both(store) == VerifyReport(
        records=110, checkpoints=4, signed_through=100,
        warnings=("records 101..110 are chained but not covered by a verified checkpoint",))


def test_intact_without_keys(store: SQLiteAuditStore) -> None:
    assert both(store, public=[]) == VerifyReport(
        records=100, checkpoints=4, signed_through=0,
        warnings=("records 1..100 are chained but not covered by a verified checkpoint",
                  "no trusted public key was given: checkpoint signatures were not checked"))


def test_empty_log(path: Path) -> None:
    assert both(SQLiteAuditStore(path)) == VerifyReport(records=0, checkpoints=0,
                                                        signed_through=0)


def test_one_checkpoint_is_one_range(path: Path) -> None:
    store = build(path, n=40, every=1000)  # signed once, on close
    assert _plan(store.checkpoints(), 40, 2) == [(1, None, ((1, 40),))]
    assert both(store) == VerifyReport(records=40, checkpoints=1, signed_through=40)


# -- tampered logs: the sequential check names the problem, whichever path ran -------------

CHANGED = "its content does not match its hash (it was changed after it was written)"


def change_byte(path: Path) -> None:  # in the middle of the second range (26..50)
    sql(path, "UPDATE audit_records SET data = replace(data, '\"i\":37', '\"i\":73') "
              "WHERE seq = 38")


def delete(seq: int) -> Callable[[Path], None]:
    return lambda path: sql(path, "DELETE FROM audit_records WHERE seq = ?", seq)


def truncate(path: Path) -> None:
    sql(path, "DELETE FROM audit_records WHERE seq > 90")


def rewrite_from(first: int, *, fresh_start: bool = False) -> Callable[[Path], None]:
    """Rewrite records ``first..`` with consistent fresh hashes (as without the key)."""

    def rewrite(path: Path) -> None:
        records = list(SQLiteAuditStore(path).records())
        prev = (hashlib.sha256(b"forged").digest() if fresh_start
                else records[first - 2].hash)
        for r in records[first - 1:]:
            data = r.data.replace(b'"kind":"note"', b'"kind":"edit"')
            digest = chain_hash(prev, r.seq, data)
            sql(path, "UPDATE audit_records SET prev_hash = ?, hash = ?, data = ? "
                      "WHERE seq = ?", prev, digest, data.decode(), r.seq)
            prev = digest

    return rewrite


def swap(a: int, b: int) -> Callable[[Path], None]:
    def do(path: Path) -> None:
        sql(path, "UPDATE audit_records SET seq = -1 WHERE seq = ?", a)
        sql(path, "UPDATE audit_records SET seq = ? WHERE seq = ?", a, b)
        sql(path, "UPDATE audit_records SET seq = ? WHERE seq = -1", b)

    return do


def swap_signature(path: Path) -> None:
    cps = SQLiteAuditStore(path).checkpoints()
    body = {**cps[2].to_json(), "signature": cps[1].signature}
    sql(path, "UPDATE audit_checkpoints SET body = ? WHERE start_seq = 51", json.dumps(body))


def rewritten(start: int, end: int) -> VerifyProblem:
    return VerifyProblem(start, f"records {start}..{end} no longer match the signed "
                                f"checkpoint {start}..{end} (rewritten after signing)",
                         exact=False)


TAMPERING: dict[str, tuple[Callable[[Path], None], VerifyReport]] = {
    "changed byte in the middle of the second range": (change_byte, VerifyReport(
        records=37, checkpoints=4, signed_through=25, problems=(VerifyProblem(38, CHANGED),))),
    "first record of the second range deleted": (delete(26), VerifyReport(
        records=25, checkpoints=4, signed_through=25, problems=(
            VerifyProblem(26, "is missing (the next stored record is 27)"),))),
    "last record of the first range deleted": (delete(25), VerifyReport(
        records=24, checkpoints=4, signed_through=0, problems=(
            VerifyProblem(25, "is missing (the next stored record is 26)"),))),
    "tail truncated": (truncate, VerifyReport(
        records=90, checkpoints=4, signed_through=75, problems=(VerifyProblem(
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
    "records swapped across a range boundary": (swap(25, 26), VerifyReport(
        records=24, checkpoints=4, signed_through=0, problems=(VerifyProblem(
            25, "records were inserted, removed or reordered here: the record stored as 25 "
                "was written as record 26"),))),
    "checkpoint removed": (
        lambda path: sql(path, "DELETE FROM audit_checkpoints WHERE start_seq = 26"),
        VerifyReport(records=100, checkpoints=3, signed_through=25, problems=(VerifyProblem(
            26, "records 26..50 have no checkpoint (one was removed)"),))),
    "signature swapped": (swap_signature, VerifyReport(
        records=100, checkpoints=4, signed_through=50, problems=(VerifyProblem(
            51, "checkpoint 51..75 has an invalid signature"),))),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_gives_the_sequential_report(case: str, path: Path,
                                               store: SQLiteAuditStore) -> None:
    tamper, expected = TAMPERING[case]
    tamper(path)
    assert both(SQLiteAuditStore(path)) == expected
    assert both(SQLiteAuditStore(path), workers=3) == expected


@pytest.mark.parametrize("first", [121, 130])  # at a range boundary, inside a range
def test_unsigned_tail_forged(first: int, path: Path, store: SQLiteAuditStore) -> None:
    # no checkpoint covers 101..160: only the chain (and the links between ranges) can tell
    store.append([PendingRecord(b'{"n":%d}' % i) for i in range(60)])
    assert _plan(store.checkpoints(), 160, 2)[4:] == [
        (101, 120, ()), (121, 140, ()), (141, None, ())]
    rewrite_from(first, fresh_start=True)(path)
    assert both(store) == VerifyReport(
        records=first - 1, checkpoints=4, signed_through=100, problems=(VerifyProblem(
            first, f"it does not follow record {first - 1} (a record before it was changed, "
                   "removed, inserted or reordered)"),))


def test_untrusted_key(store: SQLiteAuditStore) -> None:
    stranger = Ed25519PrivateKey.generate().public_key()
    report = both(store, public=[stranger])
    assert (report.records, report.signed_through, len(report.problems)) == (100, 0, 4)
    assert str(report.first_bad) == (f"record 1: checkpoint 1..25 was signed by key "
                                     f"{key_id(KEY.public_key())}, which is not trusted")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 90), every=st.integers(1, 30), workers=st.integers(2, 3),
       tamper=st.sampled_from(["none", "change", "delete", "truncate", "forge"]),
       where=st.floats(0, 1))
def test_parallel_equals_sequential(n: int, every: int, workers: int, tamper: str,
                                    where: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        store = build(path, n=n, every=every)
        seq = 1 + int(where * (n - 1)) if n else 0
        if n and tamper == "change":
            sql(path, "UPDATE audit_records SET data = replace(data, 'note', 'NOTE') "
                      "WHERE seq = ?", seq)
        elif n and tamper == "delete":
            sql(path, "DELETE FROM audit_records WHERE seq = ?", seq)
        elif n and tamper == "truncate":
            sql(path, "DELETE FROM audit_records WHERE seq >= ?", seq)
        elif n > 1 and tamper == "forge" and seq > 1:
            rewrite_from(seq)(path)
        report = both(store, workers=workers)
        assert report.ok == (tamper == "none" or n == 0 or (tamper == "forge" and seq <= 1))


# -- stores that cannot be reopened, and workers that fail ---------------------------------


def test_jsonl_is_checked_in_process(tmp_path: Path, store: SQLiteAuditStore) -> None:
    out = tmp_path / "audit.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        export_jsonl(store, handle)
    exported = JsonlAuditStore(out)
    assert _verify_parallel(exported, keys(), 2) is None
    assert verify_log(exported, [KEY.public_key()], workers=2) == VerifyReport(
        records=100, checkpoints=4, signed_through=100)


def test_in_memory_sqlite_has_no_source() -> None:
    assert SQLiteAuditStore(":memory:")._row_source() is None


def test_worker_that_cannot_start(store: SQLiteAuditStore,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    expected = VerifyReport(records=100, checkpoints=4, signed_through=100)
    assert _verify_parallel(store, keys(), 2) == expected
    assert _verify_parallel(store, keys(), 2, local=False) is None
    assert verify_log(store, [KEY.public_key()], workers=2) == expected


LOAD = """\
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_worker_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
inp, out = sys.stdin.buffer, sys.stdout.buffer
module.receive(inp)
module.send(out, ("ready",))
"""


@pytest.mark.parametrize("behaviour", [
    "",  # exits as soon as it is ready
    "while (m := module.receive(inp)) is not None:\n"
    "    module.send(out, ('error', m[1], 'boom'))\n",
    "while (m := module.receive(inp)) is not None:\n"
    "    module.send(out, ('ok', m[1], None))\n",  # says the range is not intact
    "module.receive(inp)\n"
    "out.write(bytes(7) + b'\\x09abc')\n"
    "out.flush()\n",  # a message cut off, then gone
])
def test_worker_failure_falls_back(behaviour: str, path: Path, store: SQLiteAuditStore,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ranges, "BOOTSTRAP", LOAD + behaviour)
    assert _verify_parallel(store, keys(), 2, local=False) is None
    change_byte(path)
    report = verify_log(SQLiteAuditStore(path), [KEY.public_key()], workers=2)
    assert report == TAMPERING["changed byte in the middle of the second range"][1]


# -- the fast path's pieces -----------------------------------------------------------------


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_merkle_root_is_rfc6962s_recursive_definition(hashes: list[bytes]) -> None:
    # bottom-up pairing must give the tree of RFC 6962's split at the largest power
    # of two, which the inclusion proofs are built on
    from langchain_secure.audit.chain import _leaf, _subtree

    assert merkle_root(hashes) == _subtree([_leaf(h) for h in hashes])


def rows(n: int, start: int = 1, prev: bytes = b"\x00" * 32) -> list[_ranges.Row]:
    out = []
    for seq in range(start, start + n):
        data = b'{"n":%d}' % seq
        digest = chain_hash(prev, seq, data)
        out.append((seq, prev, digest, data))
        prev = digest
    return out


def test_check_range() -> None:
    r = rows(10, start=5)
    result = _ranges.check_range([r[:4], r[4:]], 5, 14, [(5, 9), (10, 14)])
    assert result == (5, 14, b"\x00" * 32, r[-1][2], (
        (5, 9, merkle_root([x[2] for x in r[:5]]), r[4][2]),
        (10, 14, merkle_root([x[2] for x in r[5:]]), r[-1][2])))
    assert _ranges.check_range([r], 5, None, []) == (5, 14, b"\x00" * 32, r[-1][2], ())
    assert _ranges.check_range([], 15, None, []) == (15, 14, None, None, ())
    assert _ranges.check_range([r], 5, 15, []) is None  # ends early
    assert _ranges.check_range([r], 4, None, []) is None  # does not start at the start
    assert _ranges.check_range([r[:3] + r[4:]], 5, None, []) is None  # a gap
    assert _ranges.check_range([r], 5, None, [(12, 15)]) is None  # a span past the end
    bad = (r[2][0], r[2][1], r[2][2], r[2][3] + b" ")
    assert _ranges.check_range([[*r[:2], bad, *r[3:]]], 5, None, []) is None
    moved = (r[3][0], r[1][2], r[3][2], r[3][3])  # chains from the wrong record
    assert _ranges.check_range([[*r[:3], moved, *r[4:]]], 5, None, []) is None


def test_reader_reads_plain_rows(store: SQLiteAuditStore) -> None:
    reader = _ranges.RangeReader(("sqlite", str(store.path), ""))
    try:
        read = [row for batch in reader.batches(20, 30) for row in batch]
    finally:
        reader.close()
    assert read == [(r.seq, r.prev_hash, r.hash, r.data) for r in store.records(20, 30)]
    with pytest.raises(ValueError, match="unknown store kind"):
        _ranges.RangeReader(("oracle", "", ""))
    with pytest.raises(ValueError, match="table_prefix"):
        _ranges.RangeReader(("postgres", "", "x; DROP"))


def test_serve_answers_in_process(store: SQLiteAuditStore) -> None:
    inp = io.BytesIO()
    _ranges.send(inp, ("source", [], ("sqlite", str(store.path), "")))
    _ranges.send(inp, ("range", 0, 1, 25, ((1, 25),)))
    _ranges.send(inp, ("range", 1, 26, 30, ((26, 50),)))  # span past the range
    inp.seek(0)
    out = io.BytesIO()
    _ranges.serve(inp, out)
    out.seek(0)
    assert _ranges.receive(out) == ("ready",)
    ok = _ranges.receive(out)
    assert (ok[0], ok[1], ok[2][:2]) == ("ok", 0, (1, 25))
    assert _ranges.receive(out) == ("ok", 1, None)
    assert _ranges.receive(out) is None


# -- the command line ------------------------------------------------------------------------


def test_cli_workers(tmp_path: Path, path: Path, store: SQLiteAuditStore) -> None:
    public = tmp_path / "key.pub.pem"
    from cryptography.hazmat.primitives import serialization

    public.write_bytes(KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def run(*argv: str) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(list(argv), out=out, err=err), out.getvalue() + err.getvalue()

    ok = (0, f"ok: 100 records, 4 checkpoints, signed through record 100 "
             f"({key_id(KEY.public_key())})\n")
    assert run("audit", "verify", str(path), "--key", str(public)) == ok
    assert run("audit", "verify", str(path), "--key", str(public), "--workers", "2") == ok
    assert run("audit", "verify", str(path), "--key", str(public), "--workers", "1") == ok
    change_byte(path)
    assert run("audit", "verify", str(path), "--key", str(public), "--workers", "2") == (
        1, f"FAILED: record 38: {CHANGED}\n")
    with pytest.raises(SystemExit) as exit_info:
        run("audit", "verify", str(path), "--workers", "0")
    assert exit_info.value.code == 2
