"""Pause in one process, approve in another, with real checkpointers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def saver_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "threads.db")
    return str(request.getfixturevalue("postgres_dsn"))


def run(repo_root: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "tests.integration.approval._app", *args],
                         cwd=repo_root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def audit_rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    rows = [json.loads(r[0]) for r in conn.execute("SELECT data FROM audit_records ORDER BY seq")]
    conn.close()
    return rows


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_pause_here_decide_there(saver_spec: str, action: str, tmp_path: Path,
                                 repo_root: Path) -> None:
    audit = tmp_path / "audit.db"
    thread = f"ticket-{action}"
    first = run(repo_root, saver_spec, str(audit), "start", thread)
    [request] = first["interrupt"]
    assert [(a["name"], a["args"], a["rule"]) for a in request["action_requests"]] == [
        ("refund", {"order": "A-7", "amount": 480}, "tools.refund.approval")]
    assert request["action_requests"][0]["receipt"]["seq"] == 1  # the sealed intent
    assert first["tools"] == []  # nothing ran in the first process

    second = run(repo_root, saver_spec, str(audit), action, thread)
    assert second["interrupt"] == []
    [[status, content]] = second["tools"]
    if action == "approve":
        assert status == "success"
        assert content.startswith("refunded 480.0 on A-7 in process ")
    else:
        assert (status, content) == (
            "error", "A person rejected the call to 'refund' (ana): too much. Do not retry it.")
    kinds = [(r["kind"], r.get("reviewer")) for r in audit_rows(audit)]
    expected = [("intent", None), ("approval", "ana")]
    assert kinds == ([*expected, ("outcome", None)] if action == "approve" else expected)
