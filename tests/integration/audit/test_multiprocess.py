"""Many writer processes, and writers killed with SIGKILL: no gap, no fork, no loss."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_secure.audit import SQLiteAuditStore, open_store, verify_log
from langchain_secure.audit.chain import load_public_key, write_keypair

pytestmark = pytest.mark.integration


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    private, _ = write_keypair(tmp_path / "key.pem")
    return private


@pytest.fixture(params=["sqlite", "postgres"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        SQLiteAuditStore(path).close()  # create it, as a deployment would
        return str(path)
    return str(request.getfixturevalue("postgres_dsn"))


def writer(spec: str, keyfile: Path, count: int, tag: str, repo_root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.audit._writer", spec, str(keyfile),
         str(count), tag], cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def test_four_processes_two_thousand_appends_each(store_spec: str, keyfile: Path,
                                                  repo_root: Path) -> None:
    open_store(store_spec).close()  # create the schema once, as a deployment would
    procs = [writer(store_spec, keyfile, 2000, f"w{n}", repo_root) for n in range(4)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outputs]
    returned = {int(line.split()[0]): line.split()[1]
                for out, _ in outputs for line in out.splitlines()}
    assert len(returned) == 8000  # every append got its own sequence number
    store = open_store(store_spec)
    stored = {r.seq: r.hash.hex() for r in store.records()}
    assert sorted(stored) == list(range(1, 8001))  # no gaps
    assert stored == returned  # no forks: what each writer was told is what is stored
    report = verify_log(store, [load_public_key(keyfile)])
    assert (report.ok, report.records, report.signed_through) == (True, 8000, 8000)


def test_writer_killed_twenty_times_loses_nothing(store_spec: str, keyfile: Path,
                                                  repo_root: Path) -> None:
    open_store(store_spec).close()
    rng = random.Random(20261121)
    returned: dict[int, str] = {}
    for round_ in range(20):
        proc = writer(store_spec, keyfile, 100_000, f"r{round_}", repo_root)
        assert proc.stdout is not None
        # kill after a random number of returned appends: the signal lands at a random
        # point of the next append (or of a checkpoint), whatever the machine's load
        lines = [proc.stdout.readline() for _ in range(rng.randint(1, 60))]
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        for line in [*lines, *out.splitlines()]:
            parts = line.split()
            if len(parts) == 2 and len(parts[1]) == 64:  # a line cut by the kill is ignored
                returned[int(parts[0])] = parts[1]
    assert len(returned) >= 20  # every round got at least one append through
    store = open_store(store_spec)
    stored = {r.seq: r.hash.hex() for r in store.records()}
    missing = {seq for seq, digest in returned.items() if stored.get(seq) != digest}
    assert missing == set()  # every append that returned is present, unchanged
    report = verify_log(store, [load_public_key(keyfile)])
    assert report.ok, report.problems
    assert report.records == len(stored)
