"""SQLite audit store: the embedded default (WAL, a durable fsync per commit).

Appends run in ``BEGIN IMMEDIATE`` transactions, so several threads or processes
may write one file: SQLite serialises the writers and each reads the chain head
inside its own transaction. ``synchronous=FULL`` makes every commit durable, not
only against a crashed process but against a lost machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from langchain_secure.audit._ranges import Source
from langchain_secure.audit.chain import Checkpoint, chain_hash, genesis_hash
from langchain_secure.audit.store import AuditStore, PendingRecord, StoredRecord
from langchain_secure.errors import AuditError

__all__ = ["SQLiteAuditStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_records (
    seq INTEGER PRIMARY KEY,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    idem_key TEXT UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    start_seq INTEGER PRIMARY KEY,
    end_seq INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""


class SQLiteAuditStore:
    """Audit records in one SQLite file.

    Args:
        path: The database file (created with its log id on first use).
        busy_timeout_s: How long a writer waits for another to finish.

    Example:
        ```python
        from langchain_secure.audit import SQLiteAuditStore

        store = SQLiteAuditStore("audit.db")
        store.log_id  # a uuid fixed at creation
        ```
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        # Idempotent and safe when several processes open a new file at once: the
        # first INSERT OR IGNORE fixes the log id for all of them.
        self._conn.executescript(_SCHEMA)
        self._conn.execute("INSERT OR IGNORE INTO audit_meta VALUES ('log_id', ?)",
                           (uuid.uuid4().hex,))
        row = self._conn.execute("SELECT value FROM audit_meta WHERE key='log_id'").fetchone()
        self._log_id: str = row[0]
        self._genesis = genesis_hash(self._log_id)

    @property
    def log_id(self) -> str:
        """The log's identity."""
        return self._log_id

    def append(self, records: Sequence[PendingRecord]) -> list[StoredRecord]:
        """Chain and durably commit ``records`` in one transaction."""
        if not records:
            return []
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = self._append_locked(records)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return out

    def _append_locked(self, records: Sequence[PendingRecord]) -> list[StoredRecord]:
        conn = self._conn
        row = conn.execute(
            "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (row[0], bytes(row[1])) if row else (0, self._genesis)
        out: list[StoredRecord] = []
        for record in records:
            if record.idem_key is not None:
                found = conn.execute(
                    "SELECT seq, prev_hash, hash, data FROM audit_records WHERE idem_key = ?",
                    (record.idem_key,)).fetchone()
                if found:
                    out.append(StoredRecord(found[0], bytes(found[1]), bytes(found[2]),
                                            found[3].encode("utf-8"), record.idem_key))
                    continue
            seq += 1
            digest = chain_hash(prev, seq, record.data)
            conn.execute("INSERT INTO audit_records VALUES (?, ?, ?, ?, ?)",
                         (seq, prev, digest, record.idem_key, record.data.decode("utf-8")))
            out.append(StoredRecord(seq, prev, digest, record.data, record.idem_key))
            prev = digest
        return out

    def records(self, start: int = 1, end: int | None = None) -> Iterator[StoredRecord]:
        """Records in ``start..end``, in order (read on a separate connection)."""
        reader = sqlite3.connect(self.path, isolation_level=None)
        try:
            cursor = reader.execute(
                "SELECT seq, prev_hash, hash, CAST(data AS BLOB), idem_key FROM audit_records "
                "WHERE seq >= ? AND seq <= ? ORDER BY seq",
                (start, end if end is not None else 2**62))
            cursor.arraysize = 10000
            while batch := cursor.fetchmany():
                for seq, prev, digest, data, idem in batch:
                    yield StoredRecord(seq, prev, digest, data, idem)
        finally:
            reader.close()

    def _row_source(self) -> Source | None:
        """How a verification worker reopens this file (None for an in-memory database).

        Verification reads records through :class:`~langchain_secure.audit._ranges.RangeReader`
        on this description, as plain tuples, rather than through :meth:`records`.
        """
        if str(self.path) in ("", ":memory:"):
            return None
        return ("sqlite", str(self.path), "")

    def head(self) -> StoredRecord | None:
        """The last record."""
        with self._lock:
            row = self._conn.execute(
                "SELECT seq, prev_hash, hash, data, idem_key FROM audit_records "
                "ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return StoredRecord(row[0], bytes(row[1]), bytes(row[2]), row[3].encode("utf-8"), row[4])

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store a checkpoint unless one starting at the same record exists."""
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO audit_checkpoints VALUES (?, ?, ?)",
                (checkpoint.start, checkpoint.end,
                 json.dumps(checkpoint.to_json(), sort_keys=True)))
            return cursor.rowcount == 1

    def checkpoints(self) -> list[Checkpoint]:
        """All checkpoints in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM audit_checkpoints ORDER BY start_seq").fetchall()
        return [Checkpoint.from_json(json.loads(body)) for (body,) in rows]

    @classmethod
    def restore(cls, path: str | os.PathLike[str], source: AuditStore) -> SQLiteAuditStore:
        """Create ``path`` as an exact copy of ``source`` (same log id, rows verbatim).

        Nothing is recomputed, so a tampered source stays detectably tampered.

        Raises:
            AuditError: ``path`` already exists.
        """
        if Path(path).exists():
            raise AuditError(f"{path} exists; restore only into a new file")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO audit_meta VALUES ('log_id', ?)", (source.log_id,))
            conn.executemany(
                "INSERT INTO audit_records VALUES (?, ?, ?, ?, ?)",
                ((r.seq, r.prev_hash, r.hash, r.idem_key, r.data.decode("utf-8"))
                 for r in source.records()))
            conn.executemany(
                "INSERT INTO audit_checkpoints VALUES (?, ?, ?)",
                ((c.start, c.end, json.dumps(c.to_json(), sort_keys=True))
                 for c in source.checkpoints()))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return cls(path)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
