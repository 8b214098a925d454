"""JSONL export and import, and a read-only store over an export.

The first line names the log; then one line per record (``data`` is the record's
JSON object, re-made canonical when read back, so a hand edit is caught by
``audit verify``), then one line per checkpoint::

    {"type": "log", "log_id": "...", "format": "langchain-secure-audit/1"}
    {"type": "record", "seq": 1, "prev_hash": "..", "hash": "..", "idem_key": null, "data": {...}}
    {"type": "checkpoint", "start": 1, "end": 256, "root": "..", ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from langchain_secure.audit.canonical import canonical_json
from langchain_secure.audit.chain import Checkpoint
from langchain_secure.audit.store import AuditStore, PendingRecord, StoredRecord
from langchain_secure.errors import AuditError

__all__ = ["FORMAT", "JsonlAuditStore", "export_jsonl"]

FORMAT = "langchain-secure-audit/1"


def export_jsonl(store: AuditStore, out: IO[str]) -> int:
    """Write a store as JSONL; returns the number of records written."""
    out.write(json.dumps({"type": "log", "log_id": store.log_id, "format": FORMAT}) + "\n")
    count = 0
    for r in store.records():
        out.write(json.dumps({
            "type": "record", "seq": r.seq, "prev_hash": r.prev_hash.hex(),
            "hash": r.hash.hex(), "idem_key": r.idem_key, "data": json.loads(r.data),
        }, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    for cp in store.checkpoints():
        out.write(json.dumps({"type": "checkpoint", **cp.to_json()}, sort_keys=True) + "\n")
    return count


class JsonlAuditStore:
    """A read-only :class:`AuditStore` over a JSONL export, for ``audit verify``.

    Args:
        path: The export file.

    Raises:
        AuditError: The file is not an audit export (the message names the line).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._records: list[StoredRecord] = []
        self._checkpoints: list[Checkpoint] = []
        self._log_id = ""
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    self._read_line(number, line)
        if not self._log_id:
            raise AuditError(f"{self.path}: not an audit export (no 'log' line)")

    def _read_line(self, number: int, line: str) -> None:
        try:
            item: dict[str, Any] = json.loads(line)
            kind = item["type"]
            if kind == "log":
                self._log_id = str(item["log_id"])
            elif kind == "record":
                self._records.append(StoredRecord(
                    int(item["seq"]), bytes.fromhex(item["prev_hash"]),
                    bytes.fromhex(item["hash"]), canonical_json(item["data"]),
                    item.get("idem_key")))
            elif kind == "checkpoint":
                self._checkpoints.append(Checkpoint.from_json(item))
            else:
                raise ValueError(f"unknown line type {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"{self.path}:{number}: not an audit export line ({exc})") \
                from None

    @property
    def log_id(self) -> str:
        """The exported log's identity."""
        return self._log_id

    def append(self, records: Sequence[PendingRecord]) -> list[StoredRecord]:
        """Exports are read-only."""
        raise AuditError("a JSONL export is read-only; import it into a store to append")

    def records(self, start: int = 1, end: int | None = None) -> Iterator[StoredRecord]:
        """Records in file order within ``start..end`` (order as stored, for verify)."""
        for r in self._records:
            if r.seq >= start and (end is None or r.seq <= end):
                yield r

    def head(self) -> StoredRecord | None:
        """The last record in the file."""
        return self._records[-1] if self._records else None

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Exports are read-only."""
        raise AuditError("a JSONL export is read-only")

    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints in file order, sorted by first record."""
        return sorted(self._checkpoints, key=lambda c: c.start)

    def close(self) -> None:
        """Nothing to release."""
