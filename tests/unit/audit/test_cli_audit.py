from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from langchain_secure.audit import AuditEvent, AuditLog
from langchain_secure.audit.chain import key_id, load_public_key
from langchain_secure.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def trail(tmp_path: Path) -> tuple[Path, Path]:
    code, out, _ = run("audit", "keygen", str(tmp_path / "signer.pem"))
    assert code == 0
    assert out.splitlines() == [
        f"private key: {tmp_path / 'signer.pem'} (keep it secret; mode 0600)",
        f"public key:  {tmp_path / 'signer.pub.pem'} (give it to whoever verifies the log)"]
    log = AuditLog(tmp_path / "a.db", signing_key=tmp_path / "signer.pem", checkpoint_every=4)
    for i, thread in enumerate(["t1", "t2", "t1", "t1", "t2", "t1"]):
        log.append([AuditEvent("intent", {
            "thread_id": thread, "tool": f"tool{i}", "persona": "p",
            "decision": {"action": "allow" if i % 2 else "deny", "rule": f"r{i}"}})])
    log.close()
    return tmp_path / "a.db", tmp_path / "signer.pub.pem"


def test_keygen_refuses_to_overwrite(trail: tuple[Path, Path]) -> None:
    code, _, err = run("audit", "keygen", str(trail[1].parent / "signer.pem"))
    assert code == 2
    assert err.startswith("error: [Errno 17] File exists")


def test_verify_ok_and_failed(trail: tuple[Path, Path]) -> None:
    db, public = trail
    kid = key_id(load_public_key(public))
    assert run("audit", "verify", str(db), "--key", str(public)) == (
        0, f"ok: 6 records, 2 checkpoints, signed through record 6 ({kid})\n", "")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit_records SET data = replace(data, 'deny', 'allow') WHERE seq = 5")
    conn.commit()
    conn.close()
    code, out, _ = run("audit", "verify", str(db), "--key", str(public))
    assert (code, out) == (1, "FAILED: record 5: its content does not match its hash (it was "
                              "changed after it was written)\n")


def test_verify_without_key_warns(trail: tuple[Path, Path]) -> None:
    code, out, err = run("audit", "verify", str(trail[0]))
    assert (code, out) == (0, "ok: 6 records, 2 checkpoints, signed through record 0 (no key)\n")
    assert "warning: no trusted public key was given" in err


def test_show_filters_by_thread(trail: tuple[Path, Path]) -> None:
    code, out, _ = run("audit", "show", str(trail[0]), "--thread", "t2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["seq", "time", "(UTC)", "kind", "thread", "tool", "persona",
                                "result", "rule"]
    assert [(line.split()[0], line.split()[4], line.split()[5]) for line in lines[2:]] == [
        ("2", "t2", "tool1"), ("5", "t2", "tool4")]
    assert len(run("audit", "show", str(trail[0]), "--limit", "2")[1].splitlines()) == 4


def test_proof_and_check_proof(trail: tuple[Path, Path], tmp_path: Path) -> None:
    db, public = trail
    code, out, _ = run("audit", "proof", str(db), "6")
    assert code == 0
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(out, encoding="utf-8")
    kid = key_id(load_public_key(public))
    assert run("audit", "check-proof", str(proof_file), "--key", str(public)) == (
        0, f"ok: record 6 is covered by checkpoint 5..6 signed by key {kid}\n", "")
    edited = json.loads(out)
    edited["data"] = edited["data"].replace("tool5", "tool9")
    proof_file.write_text(json.dumps(edited), encoding="utf-8")
    assert run("audit", "check-proof", str(proof_file), "--key", str(public))[:2] == (
        1, "FAILED: the record and its audit path do not lead to the signed root\n")
    assert run("audit", "proof", str(db), "60")[0] == 2


def test_export_import_round_trip(trail: tuple[Path, Path], tmp_path: Path) -> None:
    db, public = trail
    export = tmp_path / "x.jsonl"
    code, _, err = run("audit", "export", str(db), "--out", str(export))
    assert (code, err) == (0, f"exported 6 records to {export}\n")
    assert len(export.read_text().splitlines()) == 1 + 6 + 2
    assert run("audit", "verify", str(export), "--key", str(public))[0] == 0
    code, out, _ = run("audit", "import", str(export), str(tmp_path / "copy.db"))
    assert code == 0
    assert run("audit", "verify", str(tmp_path / "copy.db"), "--key", str(public))[0] == 0
    code, out, _ = run("audit", "export", str(db))
    assert out.splitlines()[0].startswith('{"type": "log"')


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    assert run("audit", "verify", str(tmp_path / "none.db")) == (
        2, "", f"error: {tmp_path / 'none.db'}: no such audit log\n")
