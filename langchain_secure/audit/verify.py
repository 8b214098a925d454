"""Verify an audit log: the chain, every checkpoint, and what is not yet signed.

``verify_log`` recomputes each record's hash from its content and the hash of
the record before it, then checks every checkpoint's signature and Merkle root
against the records. It names the first record that is wrong and what is wrong
with it:

* a record's content changed → its hash no longer matches (that record);
* a record removed, inserted or moved → the chain breaks (the first record out of
  place), or the sequence has a gap or a repeat;
* the tail cut off → a signed checkpoint covers records that are not there;
* a signature swapped or forged → the checkpoint's signature is invalid;
* a checkpoint copied from another log → its log id differs;
* a range rewritten with fresh hashes (by someone without the signing key) → the
  records no longer match the signed root.

What it cannot prove: anything about records after the last checkpoint beyond
their chain (a writer who deletes them leaves a valid shorter log), and anything
at all against a writer who holds the signing key. See docs/audit.md.

**Two paths, one report.** The sequential path reads every record in order, in
this process, and is the one that explains problems. The parallel path splits a
SQLite or PostgreSQL log into ranges at checkpoint boundaries, checks them side by
side here and in worker processes (see :mod:`langchain_secure.audit._ranges`), and
then checks the links between the ranges and the checkpoints here. It can only
prove a log perfectly intact: at anything else it gives up and the sequential path
runs, so the problems and ``first_bad`` never depend on which path ran.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from langchain_secure.audit import _ranges
from langchain_secure.audit._ranges import (
    RangeReader,
    RangeResult,
    Row,
    Source,
    Span,
    check_range,
    merkle_root,  # the same as chain.merkle_root (a test holds them equal), a bit faster
    receive,
    send,
)
from langchain_secure.audit.chain import Checkpoint, chain_hash, genesis_hash, key_id
from langchain_secure.audit.store import AuditStore, StoredRecord
from langchain_secure.errors import ConfigurationError

__all__ = ["VerifyProblem", "VerifyReport", "verify_log"]


@dataclass(frozen=True)
class VerifyProblem:
    """One thing wrong with a log, at the first record it concerns.

    Attributes:
        seq: The record.
        message: What is wrong.
        exact: False when the problem is only known to lie in a signed range
            starting at ``seq`` (a rewrite that kept the chain consistent).
    """

    seq: int
    message: str
    exact: bool = True

    def __str__(self) -> str:
        return f"record {self.seq}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_log`.

    Attributes:
        records: How many records were read.
        checkpoints: How many checkpoints were read.
        signed_through: The last record covered by a valid checkpoint (0: none).
        problems: What is wrong, earliest record first (empty when the log is intact).
        warnings: What could not be proven, though nothing is wrong.
    """

    records: int
    checkpoints: int
    signed_through: int
    problems: tuple[VerifyProblem, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def first_bad(self) -> VerifyProblem | None:
        """The earliest exactly located problem (else the earliest range), if any."""
        return self.problems[0] if self.problems else None


def verify_log(store: AuditStore, public_keys: Sequence[Ed25519PublicKey], *,
               workers: int | None = None) -> VerifyReport:
    """Check a store's chain and checkpoints against trusted public keys.

    Args:
        store: Any audit store (SQLite, PostgreSQL, a JSONL export).
        public_keys: The keys allowed to sign checkpoints.
        workers: How many processes check a SQLite or PostgreSQL log, this one
            included. Ranges of the log, split at checkpoint boundaries, are
            checked side by side by worker processes that each open the store
            themselves. ``1`` checks in this process only. ``None`` (the default)
            chooses: in parallel only for a log of more than 50,000 records on a
            machine with more than one CPU, one process per 25,000 records, at
            most one per CPU and at most 8. Either way the report is the same:
            the parallel check only proves a log intact, and whenever it finds
            anything else (or a worker fails) the log is checked again in this
            process, which names the problems. Other stores (JSONL exports, your
            own) are always checked in this process.

    Returns:
        A report; ``report.ok`` is False and ``report.first_bad`` names the
        earliest bad record when anything is wrong.

    Raises:
        ConfigurationError: ``workers`` is less than 1.

    Example:
        ```python
        from langchain_secure.audit import AuditLog, verify_log

        log = AuditLog("audit.db")
        report = verify_log(log.store, [log.public_key], workers=2)
        report.ok  # True
        ```
    """
    if workers is not None and workers < 1:
        raise ConfigurationError("workers must be at least 1 (or None to choose)")
    keys = {key_id(k): k for k in public_keys}
    if workers != 1:
        report = _verify_parallel(store, keys, workers)
        if report is not None:
            return report
    return _verify_sequential(store, keys)


# -- the sequential path: reads every record in order, names what is wrong ----------------


def _verify_sequential(store: AuditStore, keys: dict[str, Ed25519PublicKey]) -> VerifyReport:
    source = _source_of(store)
    if source is None:
        hashes, problems = _check_chain(_batched(store.records()), genesis_hash(store.log_id))
    else:
        reader = RangeReader(source)
        try:
            with closing(reader.batches()) as batches:
                hashes, problems = _check_chain(batches, genesis_hash(store.log_id))
        finally:
            reader.close()
    intact = len(hashes)  # records 1..intact form a valid chain

    def matches(cp: Checkpoint) -> bool:
        covered = hashes[cp.start - 1:cp.end]
        return merkle_root(covered).hex() == cp.root and covered[-1].hex() == cp.end_hash

    return _report(store.log_id, store.checkpoints(), keys, intact, problems, matches)


def _batched(records: Iterable[StoredRecord], size: int = 10_000) -> Iterator[list[Row]]:
    """Any store's records as batches of plain rows."""
    it = iter(records)
    while batch := [(r.seq, r.prev_hash, r.hash, r.data) for r in islice(it, size)]:
        yield batch


def _check_chain(batches: Iterable[list[Row]], prev: bytes
                 ) -> tuple[list[bytes], list[VerifyProblem]]:
    """The hashes of the intact prefix of the chain, and the problem that ends it."""
    hashes: list[bytes] = []
    keep = hashes.append
    sha256 = hashlib.sha256
    expected = 1
    for batch in batches:
        for seq, prev_hash, digest, data in batch:
            if seq == expected and prev_hash == prev and \
                    sha256(prev + seq.to_bytes(8, "big") + data).digest() == digest:
                keep(digest)  # the common case, kept tight: ~1 µs a record
                prev = digest
                expected += 1
                continue
            return hashes, [_chain_problem(seq, prev_hash, digest, data, expected, prev)]
    return hashes, []


def _chain_problem(seq: int, prev_hash: bytes, digest: bytes, data: bytes, expected: int,
                   prev: bytes) -> VerifyProblem:
    """What is wrong with the first record that does not continue the chain."""
    if seq != expected:
        if seq > expected:
            gap = ("is missing" if seq == expected + 1 else
                   f"is missing, and so are the records up to {seq - 1}")
            return VerifyProblem(expected, f"{gap} (the next stored record is {seq})")
        return VerifyProblem(seq, "appears out of order or twice")
    if chain_hash(prev_hash, seq, data) != digest:
        written_as = _written_as(prev_hash, seq, data, digest)
        if written_as is None:
            return VerifyProblem(seq, "its content does not match its hash (it was changed "
                                      "after it was written)")
        return VerifyProblem(
            min(seq, written_as),
            f"records were inserted, removed or reordered here: the record stored as "
            f"{seq} was written as record {written_as}")
    return VerifyProblem(seq, f"it does not follow record {seq - 1} (a record before it was "
                              "changed, removed, inserted or reordered)")


def _report(log_id: str, checkpoints: list[Checkpoint], keys: dict[str, Ed25519PublicKey],
            intact: int, problems: list[VerifyProblem],
            matches: Callable[[Checkpoint], bool]) -> VerifyReport:
    """Check the checkpoints against the intact chain ``1..intact`` and build the report.

    ``matches(cp)`` says whether records ``cp.start..cp.end`` (all within the intact
    chain) have the checkpoint's Merkle root and end hash. ``problems`` holds the
    chain's problem, if any.
    """
    problems = list(problems)
    chain_broken = bool(problems)
    signed_through = 0
    next_start = 1
    for cp in checkpoints:
        span = f"checkpoint {cp.start}..{cp.end}"
        if cp.start != next_start:
            what = (f"records {next_start}..{cp.start - 1} have no checkpoint (one was removed)"
                    if cp.start > next_start else f"{span} overlaps the checkpoint before it")
            problems.append(VerifyProblem(min(cp.start, next_start), what))
        next_start = cp.end + 1
        if cp.log_id != log_id:
            problems.append(VerifyProblem(cp.start, f"{span} belongs to another log "
                                                    f"({cp.log_id}): it was copied here"))
            continue
        if keys:
            if cp.key_id not in keys:
                problems.append(VerifyProblem(cp.start, f"{span} was signed by key "
                                                        f"{cp.key_id}, which is not trusted"))
                continue
            if not cp.signature_valid(keys[cp.key_id]):
                problems.append(VerifyProblem(cp.start, f"{span} has an invalid signature"))
                continue
        if cp.end > intact:
            if not chain_broken:  # otherwise the chain problem already names the spot
                problems.append(VerifyProblem(
                    intact + 1, f"is missing: {span} was signed over records up to {cp.end} "
                                f"but the log ends at {intact} (the tail was cut off)"))
            continue
        if not matches(cp):
            problems.append(VerifyProblem(cp.start, f"records {cp.start}..{cp.end} no longer "
                                                    f"match the signed {span} (rewritten after "
                                                    "signing)", exact=False))
            continue
        if keys and all(p.seq > cp.end for p in problems):
            signed_through = max(signed_through, cp.end)
    warnings: list[str] = []
    if not problems and intact > signed_through:
        warnings.append(f"records {signed_through + 1}..{intact} are chained but not covered "
                        "by a verified checkpoint")
    if not keys:
        warnings.append("no trusted public key was given: checkpoint signatures were not "
                        "checked")
    return VerifyReport(records=intact, checkpoints=len(checkpoints), signed_through=signed_through,
                        problems=tuple(sorted(problems, key=lambda p: (not p.exact, p.seq))),
                        warnings=tuple(warnings))


# -- the parallel path: proves an intact log intact, or gives up --------------------------

_AUTO_MIN_RECORDS = 50_000  # below this, starting a worker costs more than it saves
_RECORDS_PER_WORKER = 25_000
_AUTO_MAX_WORKERS = 8
_CHUNKS_PER_WORKER = 4  # smaller ranges than workers, handed out as workers free up

Chunk = tuple[int, int | None, tuple[Span, ...]]
"""A range to check: first record, last record (None: to the end), checkpoint spans."""


def _source_of(store: AuditStore) -> Source | None:
    """How a worker process can reopen ``store``, if it can (SQLite and PostgreSQL)."""
    get = getattr(store, "_row_source", None)
    return get() if callable(get) else None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _auto_workers(records: int, cpus: int) -> int:
    """How many processes ``workers=None`` uses for a log of ``records`` records."""
    if records <= _AUTO_MIN_RECORDS or cpus < 2:
        return 1
    return max(1, min(cpus, _AUTO_MAX_WORKERS, records // _RECORDS_PER_WORKER))


def _plan(checkpoints: Sequence[Checkpoint], last: int, workers: int) -> list[Chunk] | None:
    """Split records ``1..`` into ranges that each hold whole checkpoints.

    None when the checkpoints do not tile ``1..k`` (gaps, overlaps) or reach past
    ``last``: such a log has problems, which are the sequential path's to name.
    The final range is open-ended, so records appended after ``last`` are read too.
    """
    next_start = 1
    for cp in checkpoints:
        if cp.start != next_start or cp.end < cp.start:
            return None
        next_start = cp.end + 1
    signed = next_start - 1
    if signed > last:
        return None
    target = max(1, -(-last // (workers * _CHUNKS_PER_WORKER)))
    chunks: list[Chunk] = []
    start, spans = 1, []
    for cp in checkpoints:
        spans.append((cp.start, cp.end))
        if cp.end - start + 1 >= target:
            chunks.append((start, cp.end, tuple(spans)))
            start, spans = cp.end + 1, []
    if start > last and chunks:  # the checkpoints reach the last record
        chunks[-1] = (chunks[-1][0], None, chunks[-1][2])
        return chunks
    end = max(signed, start + target - 1)  # the rest: checkpoints left over, unsigned tail
    while end < last:
        chunks.append((start, end, tuple(spans)))
        start, spans = end + 1, []
        end = start + target - 1
    chunks.append((start, None, tuple(spans)))
    return chunks


def _verify_parallel(store: AuditStore, keys: dict[str, Ed25519PublicKey],
                     workers: int | None, *, local: bool = True) -> VerifyReport | None:
    """The report of an intact log, checked in ranges in parallel; else None.

    With ``local`` False this process checks no range itself (the tests use it to
    make sure worker processes do the work).
    """
    source = _source_of(store)
    if source is None:
        return None
    try:
        head = store.head()
        last = head.seq if head is not None else 0
        if workers is None:
            workers = _auto_workers(last, _cpus())
            if workers < 2:
                return None
        checkpoints = store.checkpoints()
        chunks = _plan(checkpoints, last, workers)
        if chunks is None:
            return None
        results = _check_chunks(source, chunks, workers, local=local)
        if results is None:
            return None
        link = genesis_hash(store.log_id)
        intact = 0
        roots: dict[Span, tuple[bytes, bytes]] = {}
        for (start, _, _), (_, last_read, first_prev, last_hash, chunk_roots) in \
                zip(chunks, results, strict=True):
            if last_read >= start:  # only the open-ended last range may be empty
                if first_prev != link or last_hash is None:
                    return None
                link, intact = last_hash, last_read
            for span_start, span_end, root, end_hash in chunk_roots:
                roots[span_start, span_end] = (root, end_hash)

        def matches(cp: Checkpoint) -> bool:
            root, end_hash = roots[cp.start, cp.end]  # KeyError: not planned; give up
            return root.hex() == cp.root and end_hash.hex() == cp.end_hash

        report = _report(store.log_id, checkpoints, keys, intact, [], matches)
    except Exception:  # anything unexpected: the sequential path will say what it is
        return None
    return report if report.ok else None


def _check_chunks(source: Source, chunks: list[Chunk], workers: int, *, local: bool = True
                  ) -> list[RangeResult] | None:
    """Check every range here and in ``workers - 1`` worker processes.

    Ranges are handed out one at a time as processes free up. None when any range
    is not intact (the others are then abandoned) or was left unchecked.
    """
    results: list[RangeResult | None] = [None] * len(chunks)
    pending = deque(range(len(chunks)))
    failed = threading.Event()
    ready: set[subprocess.Popen[bytes]] = set()
    procs: list[subprocess.Popen[bytes]] = []
    threads: list[threading.Thread] = []
    finished = False
    try:
        for _ in range(min(workers - 1, len(chunks) - (1 if local else 0))):
            proc = _start_worker(source)
            if proc is None:
                break
            procs.append(proc)
            thread = threading.Thread(target=_drive, daemon=True,
                                      args=(proc, chunks, pending, results, ready, failed))
            thread.start()
            threads.append(thread)
        reader = RangeReader(source)
        try:
            while local and not failed.is_set():
                try:
                    index = pending.popleft()
                except IndexError:
                    break
                start, end, spans = chunks[index]
                with closing(reader.batches(start, end)) as batches:
                    result = check_range(batches, start, end, spans)
                if result is None:
                    failed.set()
                results[index] = result
        except Exception:
            failed.set()
        finally:
            reader.close()
        for proc in procs:  # a worker not started by now holds no range: not needed
            if failed.is_set() or (local and proc not in ready):
                proc.kill()
        for thread in threads:
            thread.join()
        finished = True
    finally:
        for proc in procs:
            _stop_worker(proc, kill=not finished)
    if failed.is_set() or any(r is None for r in results):
        return None
    return results  # type: ignore[return-value]


def _start_worker(source: Source) -> subprocess.Popen[bytes] | None:
    """A worker process running :func:`_ranges.serve`, told which store to read."""
    if not sys.executable:
        return None
    try:
        proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own module, no shell
            [sys.executable, "-c", _ranges.BOOTSTRAP, _ranges.__file__],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    assert proc.stdin is not None
    try:
        send(proc.stdin, ("source", list(sys.path), source))
    except OSError:
        _stop_worker(proc, kill=True)
        return None
    return proc


def _drive(proc: subprocess.Popen[bytes], chunks: list[Chunk], pending: deque[int],
           results: list[RangeResult | None], ready: set[subprocess.Popen[bytes]],
           failed: threading.Event) -> None:
    """Hand ranges to one worker process until none are left (runs in a thread)."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        if receive(proc.stdout) != ("ready",):
            return  # it could not start (or was stopped); the others do its share
        ready.add(proc)
        while not failed.is_set():
            try:
                index = pending.popleft()
            except IndexError:
                return
            send(proc.stdin, ("range", index, *chunks[index]))
            reply = receive(proc.stdout)
            if reply is None or reply[0] != "ok" or reply[1] != index or reply[2] is None:
                failed.set()
                return
            results[index] = reply[2]
    except Exception:
        failed.set()


def _stop_worker(proc: subprocess.Popen[bytes], *, kill: bool) -> None:
    if kill:
        proc.kill()
    for pipe in (proc.stdin, proc.stdout):
        try:
            if pipe is not None:
                pipe.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _written_as(prev: bytes, seq: int, data: bytes, stored: bytes, reach: int = 64) -> int | None:
    """The sequence number a record was written under, if it was moved nearby."""
    for other in range(max(1, seq - reach), seq + reach + 1):
        if other != seq and chain_hash(prev, other, data) == stored:
            return other
    return None
