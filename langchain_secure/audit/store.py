"""What an audit store must do, whatever holds the records.

A store keeps records in sequence order and assigns the chain: inside one
durable transaction it reads the head, gives each new record the next sequence
number and its chained hash, and commits. A record whose idempotency key is
already present is not written again; the stored one is returned instead, so a
graph node that re-runs after an interrupt never duplicates its records.

A store may also offer ``_row_source()``, returning how another process can reopen
it (see :data:`langchain_secure.audit._ranges.Source`; SQLite and PostgreSQL do).
:func:`~langchain_secure.audit.verify_log` then reads plain rows through
:class:`~langchain_secure.audit._ranges.RangeReader`, and can check ranges of the
log in worker processes; any other store is read through :meth:`AuditStore.records`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from langchain_secure.audit.chain import Checkpoint

__all__ = ["AuditStore", "PendingRecord", "StoredRecord"]


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A record on its way in: canonical JSON and an optional idempotency key."""

    data: bytes
    idem_key: str | None = None


class StoredRecord(NamedTuple):
    """A record as stored: its place in the chain and its canonical JSON.

    A named tuple rather than a dataclass: verification builds one per record,
    and tuples are several times cheaper to create.
    """

    seq: int
    prev_hash: bytes
    hash: bytes
    data: bytes
    idem_key: str | None = None


@runtime_checkable
class AuditStore(Protocol):
    """Where audit records and checkpoints live (SQLite, PostgreSQL, JSONL)."""

    @property
    def log_id(self) -> str:
        """The log's identity, fixed when the store was created."""
        ...

    def append(self, records: Sequence[PendingRecord]) -> list[StoredRecord]:
        """Chain and durably commit ``records`` in one transaction, in order."""
        ...

    def records(self, start: int = 1, end: int | None = None) -> Iterator[StoredRecord]:
        """Stored records with ``start <= seq <= end``, in stored ``seq`` order."""
        ...

    def head(self) -> StoredRecord | None:
        """The record with the highest sequence number."""
        ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store a checkpoint; False if one starting at the same record exists."""
        ...

    def checkpoints(self) -> list[Checkpoint]:
        """All checkpoints, ordered by their first record."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
