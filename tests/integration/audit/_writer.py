"""A writer process for the crash and concurrency tests.

python -m tests.integration.audit._writer STORE KEYFILE COUNT TAG
Prints "seq hash" for every append that returned, flushed at once.
"""

from __future__ import annotations

import sys

from langchain_secure.audit import AuditEvent, AuditLog, SQLiteAuditStore, open_store


def main() -> None:
    spec, keyfile, count, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = open_store(spec) if spec.startswith("postgresql://") else SQLiteAuditStore(spec)
    log = AuditLog(store, signing_key=keyfile, checkpoint_every=100)
    out = sys.stdout
    for i in range(count):
        [receipt] = log.append([AuditEvent("note", {"writer": tag, "i": i})])
        out.write(f"{receipt.seq} {receipt.hash}\n")
        out.flush()
    log.close()


if __name__ == "__main__":
    main()
