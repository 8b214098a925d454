"""The tamper-evident audit log: records sealed before actions, signed checkpoints.

Example:
    ```python
    from langchain_secure.audit import AuditEvent, AuditLog, verify_log

    with AuditLog("audit.db") as log:
        log.append([AuditEvent("note", {"text": "hello"})])
        report = verify_log(log.store, [log.public_key])
    report.ok  # True
    ```
"""

from langchain_secure.audit.chain import Checkpoint, InclusionProof
from langchain_secure.audit.jsonl import JsonlAuditStore, export_jsonl
from langchain_secure.audit.log import AuditEvent, AuditLog, Receipt, build_proof, open_store
from langchain_secure.audit.sqlite import SQLiteAuditStore
from langchain_secure.audit.store import AuditStore, PendingRecord, StoredRecord
from langchain_secure.audit.verify import VerifyProblem, VerifyReport, verify_log

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditStore",
    "Checkpoint",
    "InclusionProof",
    "JsonlAuditStore",
    "PendingRecord",
    "Receipt",
    "SQLiteAuditStore",
    "StoredRecord",
    "VerifyProblem",
    "VerifyReport",
    "build_proof",
    "export_jsonl",
    "open_store",
    "verify_log",
]
