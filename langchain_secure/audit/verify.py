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
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from langchain_secure.audit.chain import chain_hash, genesis_hash, key_id, merkle_root
from langchain_secure.audit.store import AuditStore

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


def verify_log(store: AuditStore, public_keys: Sequence[Ed25519PublicKey]) -> VerifyReport:
    """Check a store's chain and checkpoints against trusted public keys.

    Args:
        store: Any audit store (SQLite, PostgreSQL, a JSONL export).
        public_keys: The keys allowed to sign checkpoints.

    Returns:
        A report; ``report.ok`` is False and ``report.first_bad`` names the
        earliest bad record when anything is wrong.
    """
    problems: list[VerifyProblem] = []
    warnings: list[str] = []
    hashes: list[bytes] = []
    keep = hashes.append
    sha256 = hashlib.sha256
    prev = genesis_hash(store.log_id)
    expected = 1
    for record in store.records():
        seq, prev_hash, digest, data, _ = record
        if seq == expected and prev_hash == prev and \
                sha256(prev + seq.to_bytes(8, "big") + data).digest() == digest:
            keep(digest)  # the common case, kept tight: ~1 µs a record
            prev = digest
            expected += 1
            continue
        if record.seq != expected:
            if record.seq > expected:
                gap = ("is missing" if record.seq == expected + 1 else
                       f"is missing, and so are the records up to {record.seq - 1}")
                problems.append(VerifyProblem(expected, f"{gap} (the next stored record is "
                                                        f"{record.seq})"))
            else:
                problems.append(VerifyProblem(record.seq, "appears out of order or twice"))
            break
        if chain_hash(record.prev_hash, record.seq, record.data) != record.hash:
            written_as = _written_as(record.prev_hash, record.seq, record.data, record.hash)
            if written_as is None:
                problems.append(VerifyProblem(record.seq, "its content does not match its "
                                                          "hash (it was changed after it was "
                                                          "written)"))
            else:
                problems.append(VerifyProblem(
                    min(record.seq, written_as),
                    f"records were inserted, removed or reordered here: the record stored as "
                    f"{record.seq} was written as record {written_as}"))
            break
        if record.prev_hash != prev:
            problems.append(VerifyProblem(record.seq, f"it does not follow record {record.seq - 1}"
                                                      " (a record before it was changed, "
                                                      "removed, inserted or reordered)"))
            break
        hashes.append(record.hash)
        prev = record.hash
        expected += 1
    intact = len(hashes)  # records 1..intact form a valid chain

    chain_broken = bool(problems)
    keys = {key_id(k): k for k in public_keys}
    checkpoints = store.checkpoints()
    signed_through = 0
    next_start = 1
    for cp in checkpoints:
        span = f"checkpoint {cp.start}..{cp.end}"
        if cp.start != next_start:
            what = (f"records {next_start}..{cp.start - 1} have no checkpoint (one was removed)"
                    if cp.start > next_start else f"{span} overlaps the checkpoint before it")
            problems.append(VerifyProblem(min(cp.start, next_start), what))
        next_start = cp.end + 1
        if cp.log_id != store.log_id:
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
        covered = hashes[cp.start - 1:cp.end]
        if merkle_root(covered).hex() != cp.root or covered[-1].hex() != cp.end_hash:
            problems.append(VerifyProblem(cp.start, f"records {cp.start}..{cp.end} no longer "
                                                    f"match the signed {span} (rewritten after "
                                                    "signing)", exact=False))
            continue
        if keys and all(p.seq > cp.end for p in problems):
            signed_through = max(signed_through, cp.end)
    if not problems and intact > signed_through:
        warnings.append(f"records {signed_through + 1}..{intact} are chained but not covered "
                        "by a verified checkpoint")
    if not keys:
        warnings.append("no trusted public key was given: checkpoint signatures were not "
                        "checked")
    return VerifyReport(records=intact, checkpoints=len(checkpoints), signed_through=signed_through,
                        problems=tuple(sorted(problems, key=lambda p: (not p.exact, p.seq))),
                        warnings=tuple(warnings))


def _written_as(prev: bytes, seq: int, data: bytes, stored: bytes, reach: int = 64) -> int | None:
    """The sequence number a record was written under, if it was moved nearby."""
    for other in range(max(1, seq - reach), seq + reach + 1):
        if other != seq and chain_hash(prev, other, data) == stored:
            return other
    return None
