"""AuditLog: durable, chained, signed records of what the guard saw and decided.

``AuditLog.append`` returns only after its records are committed durably, so a
surface that seals an intent and then runs the tool can never lose the record
of a call that ran. Appends from many threads share commits (group commit): one
thread writes everything queued while the previous commit was in flight, so
durability costs one fsync per group, not per record.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from langchain_secure.audit.canonical import canonical_json, utc_timestamp
from langchain_secure.audit.chain import (
    Checkpoint,
    InclusionProof,
    hash_key_from,
    inclusion_path,
    key_id,
    keyed_hash,
    load_private_key,
    merkle_root,
    write_keypair,
)
from langchain_secure.audit.store import AuditStore, PendingRecord, StoredRecord
from langchain_secure.errors import AuditError, ConfigurationError

__all__ = ["AuditEvent", "AuditLog", "Receipt", "build_proof", "open_store"]


def open_store(spec: str | os.PathLike[str]) -> AuditStore:
    """Open a store by name: ``postgresql://...``, a ``.jsonl`` export, or a SQLite file.

    Raises:
        AuditError: A file that does not exist (it is not created here).
    """
    text = os.fspath(spec)
    if text.startswith(("postgresql://", "postgres://")):
        from langchain_secure.audit.postgres import PostgresAuditStore

        return PostgresAuditStore(text)
    if not Path(text).exists():
        raise AuditError(f"{text}: no such audit log")
    if text.endswith(".jsonl"):
        from langchain_secure.audit.jsonl import JsonlAuditStore

        return JsonlAuditStore(text)
    from langchain_secure.audit.sqlite import SQLiteAuditStore

    return SQLiteAuditStore(text)


def build_proof(store: AuditStore, seq: int) -> InclusionProof | None:
    """The inclusion proof of record ``seq`` under the checkpoint covering it, if any."""
    cp = next((c for c in store.checkpoints() if c.start <= seq <= c.end), None)
    if cp is None:
        return None
    records = list(store.records(cp.start, cp.end))
    if len(records) != cp.end - cp.start + 1:
        raise AuditError(f"records {cp.start}..{cp.end} are incomplete; run audit verify")
    target = records[seq - cp.start]
    path = inclusion_path([r.hash for r in records], seq - cp.start)
    return InclusionProof(seq=seq, prev_hash=target.prev_hash.hex(),
                          data=target.data.decode("utf-8"),
                          path=tuple(p.hex() for p in path), checkpoint=cp)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something to record: a kind, its fields, and an optional idempotency key.

    Attributes:
        kind: ``intent``, ``outcome``, ``approval``, ``scan``, ...
        fields: JSON-able details (made canonical on write).
        key: Idempotency key; a second event with the same key is not written.
    """

    kind: str
    fields: Mapping[str, Any]
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof of a durable write: where the record sits in which log.

    Attributes:
        seq: The record's sequence number.
        hash: Hex hash of the record (chained to all before it).
        log_id: The log it was written to.
    """

    seq: int
    hash: str
    log_id: str


class _Group:
    __slots__ = ("done", "error", "items", "result")

    def __init__(self, items: list[PendingRecord]) -> None:
        self.items = items
        self.result: list[StoredRecord] = []
        self.error: BaseException | None = None
        self.done = False


class AuditLog:
    """A tamper-evident audit log over a store, with signed Merkle checkpoints.

    Args:
        store: An :class:`~langchain_secure.audit.AuditStore`, or the path of a
            SQLite file.
        signing_key: Ed25519 private key (object or PEM path) that signs
            checkpoints. For a SQLite path it defaults to ``<path>.key.pem``,
            created (mode 0600) on first use; keep a copy of its ``.pub.pem``
            where log writers cannot change it.
        checkpoint_every: Sign a checkpoint each time this many records are not
            yet covered (and on :meth:`close`).

    Example:
        ```python
        from langchain_secure.audit import AuditEvent, AuditLog

        log = AuditLog("audit.db")
        [receipt] = log.append([AuditEvent("note", {"text": "hello"})])
        log.close()  # signs a final checkpoint
        ```
    """

    def __init__(self, store: AuditStore | str | os.PathLike[str], *,
                 signing_key: Ed25519PrivateKey | str | os.PathLike[str] | None = None,
                 checkpoint_every: int = 256) -> None:
        if checkpoint_every < 1:
            raise ConfigurationError("checkpoint_every must be at least 1")
        if isinstance(store, str | os.PathLike):
            from langchain_secure.audit.sqlite import SQLiteAuditStore

            path = Path(store)
            if signing_key is None:
                signing_key = path.with_name(path.name + ".key.pem")
                if not Path(signing_key).exists():
                    write_keypair(signing_key)
            store = SQLiteAuditStore(path)
        if signing_key is None:
            raise ConfigurationError("signing_key is required for this store")
        if not isinstance(signing_key, Ed25519PrivateKey):
            signing_key = load_private_key(signing_key)
        self.store: AuditStore = store
        self._key = signing_key
        self.public_key = signing_key.public_key()
        self.key_id = key_id(self.public_key)
        self._hash_key = hash_key_from(signing_key)
        self.checkpoint_every = checkpoint_every
        self._closed = False
        self._cond = threading.Condition()
        self._queue: list[_Group] = []
        self._writing = False
        self._cp_lock = threading.Lock()
        existing = store.checkpoints()
        self._signed_end = existing[-1].end if existing else 0
        head = store.head()
        self._head = head.seq if head else 0

    @property
    def log_id(self) -> str:
        """The log's identity."""
        return self.store.log_id

    def keyed_hash(self, value: Any) -> str:
        """A keyed hash (HMAC-SHA256) of a value, for secrets kept out of the log.

        Only holders of the signing key can test a guess against it.
        """
        return keyed_hash(self._hash_key, value)

    # -- writing -------------------------------------------------------------------------

    def append(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        """Write events durably, in order; return when they are committed.

        Raises:
            AuditError: The store could not write them; nothing was written.
        """
        if not events:
            return []
        now = utc_timestamp()
        group = _Group([
            PendingRecord(canonical_json({**event.fields, "kind": event.kind, "ts": now}),
                          event.key)
            for event in events
        ])
        with self._cond:
            self._queue.append(group)
            while not group.done:
                if self._writing:
                    self._cond.wait()
                    continue
                self._write_queued()
        if group.error is not None:
            raise AuditError(f"the audit log could not be written: {group.error}") \
                from group.error
        log_id = self.log_id
        receipts = [Receipt(r.seq, r.hash.hex(), log_id) for r in group.result]
        if self._head - self._signed_end >= self.checkpoint_every:
            self.checkpoint()
        return receipts

    def _write_queued(self) -> None:
        """Leader: write every queued group in one transaction (lock held on entry)."""
        self._writing = True
        groups, self._queue = self._queue, []
        self._cond.release()
        stored: list[StoredRecord] = []
        error: BaseException | None = None
        try:
            stored = self.store.append([item for g in groups for item in g.items])
        except Exception as exc:
            error = exc
        finally:
            self._cond.acquire()
        offset = 0
        for g in groups:
            if error is None:
                g.result = stored[offset:offset + len(g.items)]
                offset += len(g.items)
            g.error = error
            g.done = True
        if stored:
            self._head = max(self._head, max(r.seq for r in stored))
        self._writing = False
        self._cond.notify_all()

    async def aappend(self, events: Sequence[AuditEvent]) -> list[Receipt]:
        """Async :meth:`append` (the commit runs in a worker thread)."""
        return await asyncio.to_thread(self.append, events)

    # -- checkpoints and proofs ---------------------------------------------------------------

    def checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint over the records no checkpoint covers yet (if any)."""
        with self._cp_lock:
            existing = self.store.checkpoints()
            start = (existing[-1].end if existing else 0) + 1
            records = list(self.store.records(start))
            if not records:
                self._signed_end = start - 1
                return None
            end = records[-1].seq
            cp = Checkpoint(
                log_id=self.log_id, start=start, end=end,
                root=merkle_root([r.hash for r in records]).hex(),
                end_hash=records[-1].hash.hex(), ts=utc_timestamp(), key_id=self.key_id,
            ).sign(self._key)
            if not self.store.add_checkpoint(cp):  # another writer signed this range first
                cp = next(c for c in self.store.checkpoints() if c.start == start)
            self._signed_end = cp.end
            return cp

    def proof(self, seq: int) -> InclusionProof:
        """An inclusion proof for record ``seq`` (signing a checkpoint if none covers it).

        Raises:
            AuditError: There is no record ``seq``.
        """
        found = build_proof(self.store, seq)
        if found is None:
            self.checkpoint()
            found = build_proof(self.store, seq)
        if found is None:
            raise AuditError(f"there is no record {seq}")
        return found

    def close(self) -> None:
        """Sign a final checkpoint and close the store; closing again does nothing."""
        if self._closed:
            return
        self.checkpoint()
        self.store.close()
        self._closed = True

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
