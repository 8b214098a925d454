"""A throwaway PostgreSQL cluster (initdb + pg_ctl on a free port), for tests and benchmarks."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POSTGRES_MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found; install them with "
    "`apt-get install postgresql` (.ci/run does)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return found[0] if found else shutil.which(name)


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """Start a cluster in a new temp dir; yield ``postgresql://lcs@127.0.0.1:PORT``.

    Raises:
        RuntimeError: The server binaries are not installed.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError(POSTGRES_MISSING)
    # not under pytest's tmp tree: it is private to root, and the server runs as postgres
    base = Path(tempfile.mkdtemp(prefix="lcs-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-U", "lcs", "--auth=trust",
                        "-E", "UTF8", "--no-instructions"], check=True, capture_output=True)
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=50"
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l",
                        str(base / "server.log"), "-w", "start"], check=True,
                       capture_output=True)
        yield f"postgresql://lcs@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    """Create database ``name`` on ``server``; return its DSN."""
    import psycopg

    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"
