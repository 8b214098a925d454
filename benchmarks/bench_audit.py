#!/usr/bin/env python
"""Durable sealed appends per second, and verification speed, for the audit log.

Run from the repository root (PostgreSQL server binaries must be installed; the
script starts and removes its own throwaway cluster):

    .venv/bin/python benchmarks/bench_audit.py            # full run
    .venv/bin/python benchmarks/bench_audit.py --quick    # smoke run

Every append is one intent-sized record (about 450 bytes of canonical JSON)
committed durably before ``append`` returns: SQLite in WAL mode with
``synchronous=FULL``, PostgreSQL with its default ``synchronous_commit=on``.
Checkpoints are signed every 256 records, as by default.

Measured: SQLite from one thread; SQLite from 4 threads sharing one AuditLog
(group commit); PostgreSQL with 8 writer processes, each with its own AuditLog
(so 8 connections contend for the chain-head row lock), and with 8 threads
sharing one AuditLog; and ``verify_log`` throughput on SQLite and PostgreSQL,
in one process (``workers=1``) and as ``audit verify`` runs it by default
(``workers=None``: worker processes for a log this size when there are CPUs to
spare). Each verification figure is the median of three runs, the two settings
alternating; the three runs are printed beside it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from langchain_secure.audit import AuditEvent, AuditLog, SQLiteAuditStore, verify_log
from langchain_secure.audit.chain import write_keypair
from langchain_secure.audit.postgres import PostgresAuditStore
from langchain_secure.audit.verify import _auto_workers, _cpus
from tests._postgres import create_database, temporary_postgres

TARGETS = {"sqlite_1": 2000.0, "pg_8": 1000.0, "verify": 200_000.0}


def intent(i: int, writer: int = 0) -> AuditEvent:
    return AuditEvent("intent", {
        "thread_id": f"thread-{writer}", "tool_call_id": f"call_{writer}_{i}",
        "persona": "analyst", "tool": "send_email",
        "args": {"to": "cfo@example.com", "subject": "Q3 numbers", "body": "x" * 120},
        "decision": {"action": "allow", "rule": "personas.analyst.tools.send_email",
                     "reason": "'send_email' is allowed for persona 'analyst'"},
        "labels": ["egress"], "message": {"id": f"run-{i}", "content": "sending the numbers"},
    }, key=f'["thread-{writer}","call_{writer}_{i}","intent"]')


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def sqlite_one_thread(base: Path, n: int) -> tuple[float, list[float]]:
    log = AuditLog(base / "one.db", checkpoint_every=256)
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        log.append([intent(i)])
        latencies.append((time.perf_counter() - t0) * 1000)
    rate = n / (time.perf_counter() - start)
    log.close()
    return rate, latencies


def threads(log: AuditLog, writers: int, per_writer: int) -> float:
    barrier = threading.Barrier(writers + 1)

    def work(w: int) -> None:
        barrier.wait()
        for i in range(per_writer):
            log.append([intent(i, w)])

    pool = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    return writers * per_writer / (time.perf_counter() - start)


def _pg_process(dsn: str, keyfile: str, writer: int, per_writer: int,
                ready: mp.Barrier) -> None:  # type: ignore[valid-type]
    log = AuditLog(PostgresAuditStore(dsn), signing_key=keyfile, checkpoint_every=256)
    ready.wait()  # type: ignore[attr-defined]
    for i in range(per_writer):
        log.append([intent(i, writer)])
    log.store.close()


def pg_processes(dsn: str, keyfile: str, writers: int, per_writer: int) -> float:
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(writers + 1)
    procs = [ctx.Process(target=_pg_process, args=(dsn, keyfile, w, per_writer, ready))
             for w in range(writers)]
    for p in procs:
        p.start()
    ready.wait()
    start = time.perf_counter()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    if any(p.exitcode for p in procs):
        raise SystemExit("a PostgreSQL writer process failed")
    return writers * per_writer / elapsed


def verify_rate(store: object, key: Ed25519PrivateKey, workers: int | None
                ) -> tuple[float, int]:
    start = time.perf_counter()
    report = verify_log(store, [key.public_key()], workers=workers)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"verification failed: {report.first_bad}")
    return report.records / elapsed, report.records


def verify_rows(name: str, store: object, key: Ed25519PrivateKey, repeat: int = 3) -> None:
    """Sequential and default (parallel) verification, alternating, median of ``repeat``."""
    rates: dict[int | None, list[float]] = {1: [], None: []}
    count = 0
    for _ in range(repeat):
        for workers in rates:
            rate, count = verify_rate(store, key, workers)
            rates[workers].append(rate)
    auto = _auto_workers(count, _cpus())
    default = f"default: {auto} process{'es' if auto > 1 else ''}"
    for workers, label in ((1, "1 process"), (None, default)):
        runs = " / ".join(f"{r / 1000:.0f}k" for r in rates[workers])
        print(row(f"verify_log, {name}, {count:,} records, {label}",
                  statistics.median(rates[workers]), "/s", TARGETS["verify"]) + f"  ({runs})")


def fill_fast(log: AuditLog, n: int, batch: int = 1000) -> None:
    """Many records quickly (batched appends) for the verification benchmark."""
    for start in range(0, n, batch):
        log.append([intent(i) for i in range(start, min(n, start + batch))])
    log.checkpoint()


def row(name: str, value: float, unit: str, target: float | None = None) -> str:
    met = "" if target is None else ("  met" if value >= target else
                                     f"  MISSED (target {target:,.0f})")
    return f"{name:<68} {value:>12,.0f} {unit}{met}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n_one, per_thread, per_pg, n_verify = 3000 // scale, 1000 // scale, 500 // scale, \
        100_000 // scale

    print("langchain-secure benchmark: audit log (durable appends and verification)")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("every append is one ~450-byte intent record, durable before append returns\n")
    with tempfile.TemporaryDirectory(prefix="lcs-bench-audit-") as tmp:
        base = Path(tmp)
        rate1, lat = sqlite_one_thread(base, n_one)
        print(row("SQLite, 1 thread (sealed appends/s)", rate1, "/s", TARGETS["sqlite_1"]))
        print(f"{'  latency per append: median / p99':<68} {statistics.median(lat):>9.2f} ms"
              f" / {pct(lat, 99):.2f} ms")
        log4 = AuditLog(base / "four.db", checkpoint_every=256)
        rate4 = threads(log4, 4, per_thread)
        log4.close()
        print(row("SQLite, 4 threads sharing one AuditLog (group commit)", rate4, "/s"))
        print(f"{'  ratio to 1 thread':<68} {rate4 / rate1:>12.2f} x")

        key = Ed25519PrivateKey.generate()
        big = AuditLog(SQLiteAuditStore(base / "big.db"), signing_key=key,
                       checkpoint_every=256)
        fill_fast(big, n_verify)
        verify_rows("SQLite", big.store, key)
        big.store.close()

        keyfile, _ = write_keypair(base / "pg.pem")
        with temporary_postgres() as server:
            dsn = create_database(server, "bench_proc")
            PostgresAuditStore(dsn).close()
            rate_pg = pg_processes(dsn, str(keyfile), 8, per_pg)
            print(row("PostgreSQL, 8 writer processes (own AuditLog each)", rate_pg, "/s",
                      TARGETS["pg_8"]))
            dsn_t = create_database(server, "bench_threads")
            log_t = AuditLog(PostgresAuditStore(dsn_t), signing_key=keyfile,
                             checkpoint_every=256)
            rate_pgt = threads(log_t, 8, per_pg)
            log_t.store.close()
            print(row("PostgreSQL, 8 threads sharing one AuditLog (group commit)",
                      rate_pgt, "/s"))
            dsn_v = create_database(server, "bench_verify")
            from langchain_secure.audit.chain import load_private_key

            pkey = load_private_key(keyfile)
            big_pg = AuditLog(PostgresAuditStore(dsn_v), signing_key=pkey,
                              checkpoint_every=256)
            fill_fast(big_pg, n_verify)
            verify_rows("PostgreSQL", big_pg.store, pkey)
            big_pg.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
