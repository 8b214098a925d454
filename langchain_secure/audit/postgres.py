"""PostgreSQL audit store: one log written by many processes and machines.

**Concurrency design: a row lock on the chain head.** A one-row table holds the
head of the chain (its sequence number and hash). Every append transaction
starts with ``SELECT ... FOR UPDATE`` on that row, so appends are serialised by
PostgreSQL itself: each writer sees the head left by the previous commit, gives
its records the next numbers and chained hashes, moves the head, and commits.
There can be no gap (numbers are assigned under the lock, not by a sequence,
which would leave holes on rollback) and no fork (two writers can never chain
from the same head).

The chaining runs inside the database, in one PL/pgSQL function
(``<prefix>append``) that takes the lock, assigns numbers, computes each hash as
``sha256(prev || int8send(seq) || data)`` (byte for byte the same as
:func:`~langchain_secure.audit.chain.chain_hash`) and inserts: one statement, one
round trip, so the lock is held only for that statement and its commit. The
client recomputes every returned hash and refuses a mismatch.

Why not the alternatives: an advisory lock serialises the same way but is
invisible to anyone reading the schema and easy to forget in a second writer
implementation; per-writer chains anchored in a shared Merkle log scale further
but make a single, readable order of events (what incident responders need)
a reconstruction. The price of the head lock is that commits are serialised;
each writer's :class:`~langchain_secure.audit.AuditLog` batches its threads'
records into one transaction (group commit), which keeps throughput above what
one commit per record would allow. Measured figures are in docs/benchmarks.md.

Requires the ``postgres`` extra (``psycopg`` 3).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_secure.audit._ranges import Source
from langchain_secure.audit.chain import Checkpoint, chain_hash, genesis_hash
from langchain_secure.audit.store import AuditStore, PendingRecord, StoredRecord
from langchain_secure.errors import AuditError, ConfigurationError

__all__ = ["PostgresAuditStore"]

_INSTALL = "the PostgreSQL audit store needs psycopg; install with: " \
           "pip install 'langchain-secure[postgres]'"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ImportError(_INSTALL) from None
    return psycopg


_APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION {t}append(datas text[], keys text[])
RETURNS TABLE (o_seq bigint, o_prev bytea, o_hash bytea, o_data text, o_key text)
LANGUAGE plpgsql AS $$
DECLARE
    h_seq bigint;
    h_hash bytea;
    found_row record;
    new_hash bytea;
BEGIN
    SELECT seq, hash INTO h_seq, h_hash FROM {t}head WHERE id = 1 FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(datas, 1), 0) LOOP
        IF keys[i] IS NOT NULL THEN
            SELECT r.seq, r.prev_hash, r.hash, r.data INTO found_row
                FROM {t}records r WHERE r.idem_key = keys[i];
            IF FOUND THEN
                o_seq := found_row.seq; o_prev := found_row.prev_hash;
                o_hash := found_row.hash; o_data := found_row.data; o_key := keys[i];
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        h_seq := h_seq + 1;
        new_hash := sha256(h_hash || int8send(h_seq) || convert_to(datas[i], 'UTF8'));
        INSERT INTO {t}records VALUES (h_seq, h_hash, new_hash, keys[i], datas[i]);
        o_seq := h_seq; o_prev := h_hash; o_hash := new_hash; o_data := datas[i];
        o_key := keys[i];
        RETURN NEXT;
        h_hash := new_hash;
    END LOOP;
    UPDATE {t}head SET seq = h_seq, hash = h_hash WHERE id = 1;
END
$$
"""


class PostgresAuditStore:
    """Audit records in PostgreSQL tables ``<prefix>records``, ``<prefix>head``, ...

    Args:
        dsn: A libpq connection string or URL.
        table_prefix: Prefix of the four tables (letters, digits, underscores).

    Example:
        ```python
        from langchain_secure.audit import AuditLog
        from langchain_secure.audit.postgres import PostgresAuditStore

        store = PostgresAuditStore("postgresql://audit@db/agents")
        log = AuditLog(store, signing_key="audit.key.pem")
        ```
    """

    def __init__(self, dsn: str, *, table_prefix: str = "audit_") -> None:
        if not table_prefix.replace("_", "").isalnum():
            raise ConfigurationError("table_prefix may contain only letters, digits and '_'")
        psycopg = _psycopg()
        self.dsn = dsn
        self._t = table_prefix
        self._lock = threading.Lock()
        self._conn = psycopg.connect(dsn, autocommit=True)
        t = self._t
        with self._conn.transaction():
            # serialise first-time creation between processes
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (t + "schema",))
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t}meta (key text PRIMARY KEY, value text NOT NULL);"
                f"CREATE TABLE IF NOT EXISTS {t}head (id int PRIMARY KEY CHECK (id = 1),"
                f" seq bigint NOT NULL, hash bytea NOT NULL);"
                f"CREATE TABLE IF NOT EXISTS {t}records (seq bigint PRIMARY KEY,"
                f" prev_hash bytea NOT NULL, hash bytea NOT NULL, idem_key text UNIQUE,"
                f" data text NOT NULL);"
                f"CREATE TABLE IF NOT EXISTS {t}checkpoints (start_seq bigint PRIMARY KEY,"
                f" end_seq bigint NOT NULL, body text NOT NULL)")
            self._conn.execute(f"INSERT INTO {t}meta VALUES ('log_id', %s) "
                               "ON CONFLICT DO NOTHING", (uuid.uuid4().hex,))
            row = self._conn.execute(f"SELECT value FROM {t}meta WHERE key = 'log_id'").fetchone()
            self._log_id: str = row[0]
            self._conn.execute(f"INSERT INTO {t}head VALUES (1, 0, %s) ON CONFLICT DO NOTHING",
                               (genesis_hash(self._log_id),))
            self._conn.execute(_APPEND_FUNCTION.replace("{t}", t))

    @property
    def log_id(self) -> str:
        """The log's identity."""
        return self._log_id

    def append(self, records: Sequence[PendingRecord]) -> list[StoredRecord]:
        """Chain and commit ``records`` under the head row lock."""
        if not records:
            return []
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM {self._t}append(%s, %s)",
                ([r.data.decode("utf-8") for r in records], [r.idem_key for r in records]),
            ).fetchall()
        out = [StoredRecord(seq, bytes(prev), bytes(digest), data.encode("utf-8"), key)
               for seq, prev, digest, data, key in rows]
        for stored in out:  # the database chained them; check it did so correctly
            if chain_hash(stored.prev_hash, stored.seq, stored.data) != stored.hash:
                raise AuditError(f"the database returned a wrong hash for record {stored.seq}")
        return out

    def records(self, start: int = 1, end: int | None = None) -> Iterator[StoredRecord]:
        """Records in ``start..end`` in order, in pages, from a separate connection.

        Keyset pages on the primary key over binary transfers; each page is a short
        statement. Sorting is switched off for the reader so that the planner walks
        the primary key even when the table's statistics are stale (a freshly
        filled table): otherwise it may scan and sort the whole remaining range on
        disk for every page.
        """
        psycopg = _psycopg()
        last, stop = start - 1, end if end is not None else 2**62
        query = (f"SELECT seq, prev_hash, hash, convert_to(data, 'UTF8'), idem_key "
                 f"FROM {self._t}records WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT 20000")
        with psycopg.connect(self.dsn) as reader:
            reader.execute("SET enable_sort = off")
            while rows := reader.execute(query, (last, stop), binary=True).fetchall():
                for seq, prev, digest, data, idem in rows:
                    yield StoredRecord(seq, prev, digest, data, idem)
                last = rows[-1][0]

    def _row_source(self) -> Source:
        """How a verification worker reopens this log: its DSN and table prefix.

        Verification reads records through :class:`~langchain_secure.audit._ranges.RangeReader`
        on this description, as plain tuples, rather than through :meth:`records`.
        """
        return ("postgres", self.dsn, self._t)

    def head(self) -> StoredRecord | None:
        """The last record."""
        with self._lock, self._conn.transaction():
            row = self._conn.execute(
                f"SELECT seq, prev_hash, hash, data, idem_key FROM {self._t}records "
                "ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return StoredRecord(row[0], bytes(row[1]), bytes(row[2]), row[3].encode("utf-8"), row[4])

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store a checkpoint unless one starting at the same record exists."""
        with self._lock, self._conn.transaction():
            cursor = self._conn.execute(
                f"INSERT INTO {self._t}checkpoints VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (checkpoint.start, checkpoint.end,
                 json.dumps(checkpoint.to_json(), sort_keys=True)))
            return bool(cursor.rowcount == 1)

    def checkpoints(self) -> list[Checkpoint]:
        """All checkpoints in order."""
        with self._lock, self._conn.transaction():
            rows = self._conn.execute(
                f"SELECT body FROM {self._t}checkpoints ORDER BY start_seq").fetchall()
        return [Checkpoint.from_json(json.loads(body)) for (body,) in rows]

    @classmethod
    def restore(cls, dsn: str, source: AuditStore, *, table_prefix: str = "audit_"
                ) -> PostgresAuditStore:
        """Copy ``source`` verbatim into empty tables (same log id, nothing recomputed).

        Raises:
            AuditError: The target already holds a log.
        """
        psycopg = _psycopg()
        t = table_prefix
        with psycopg.connect(dsn) as conn:
            exists = conn.execute("SELECT to_regclass(%s)", (t + "meta",)).fetchone()[0]
            if exists is not None:
                raise AuditError(f"{t}meta exists; restore only into an empty database")
        with psycopg.connect(dsn) as conn, conn.transaction():
            conn.execute(f"CREATE TABLE {t}meta (key text PRIMARY KEY, value text NOT NULL)")
            conn.execute(f"INSERT INTO {t}meta VALUES ('log_id', %s)", (source.log_id,))
        store = cls(dsn, table_prefix=table_prefix)
        records = list(source.records())
        with store._conn.transaction():
            with store._conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {t}records VALUES (%s, %s, %s, %s, %s)",
                    [(r.seq, r.prev_hash, r.hash, r.idem_key, r.data.decode("utf-8"))
                     for r in records])
                cursor.executemany(
                    f"INSERT INTO {t}checkpoints VALUES (%s, %s, %s)",
                    [(c.start, c.end, json.dumps(c.to_json(), sort_keys=True))
                     for c in source.checkpoints()])
            if records:
                store._conn.execute(f"UPDATE {t}head SET seq = %s, hash = %s WHERE id = 1",
                                    (records[-1].seq, records[-1].hash))
        return store

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
