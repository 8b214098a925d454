from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_secure.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def policy_file(tmp_path: Path, policy_text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text, encoding="utf-8")
    return path


def test_check_ok(policy_file: Path) -> None:
    assert run("policy", "check", str(policy_file)) == (
        0, f"{policy_file}: ok (3 personas, 7 tools, 3 flow rules)\n", "")


def test_check_reports_every_file_and_fails(policy_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("personas:\n  a:\n    tools: [x]\n    oops: 1\n", encoding="utf-8")
    code, out, err = run("policy", "check", str(bad), str(policy_file))
    assert code == 2
    assert err == f"{bad}:4:5: personas.a.oops: unknown key 'oops'\n"
    assert out == f"{policy_file}: ok (3 personas, 7 tools, 3 flow rules)\n"


def test_explain_prints_decision_rule_reason(policy_file: Path) -> None:
    code, out, err = run("policy", "explain", str(policy_file), "--persona", "analyst",
                         "--tool", "send_email", "--args", '{"to": "a@example.com", "body": "x"}',
                         "--labels", "reads_sensitive")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "decision: require_approval",
        "rule:     flows.no-exfiltration",
        "reason:   data read from reports may not leave without a person's approval",
        "persona:  analyst",
        "labels:   egress",
    ]


def test_explain_budget_from_calls(policy_file: Path) -> None:
    code, out, _ = run("policy", "explain", str(policy_file), "--tool", "search",
                       "--calls", "search=5")
    assert code == 0
    assert out.splitlines()[:2] == ["decision: deny",
                                    "rule:     tools.search.max_calls_per_thread"]


def test_explain_reads_what_the_user_said_and_tools_returned() -> None:
    slack = str(Path(__file__).parents[2] / "examples" / "policies" / "slack.yaml")
    base = ("policy", "explain", slack, "--tool", "get_webpage",
            "--args", '{"url": "www.informations.com"}')
    lines = [run(*base, *extra)[1].splitlines()[:2] for extra in (
        [],
        ["--said", "Open www.informations.com"],
        ["--said", "Summarize Bob's article",
         "--output", "read_inbox=Bob: read www.informations.com", "--output", "get_channels=x"],
        ["--said", "Summarize Bob's article", "--output", "get_webpage=www.informations.com"],
    )]
    held = ["decision: require_approval", "rule:     tools.get_webpage.from_user.url"]
    allowed = ["decision: allow", "rule:     personas.workspace_assistant.tools.get_webpage"]
    assert lines == [held, allowed, allowed, held]


@pytest.mark.parametrize(("argv", "message"), [
    (["--args", "{nope"], "--args: not valid JSON"),
    (["--args", "[1]"], "--args: must be a JSON object"),
    (["--calls", "search"], "--calls: 'search' is not TOOL=N"),
    (["--output", "search"], "--output: 'search' is not TOOL=TEXT"),
])
def test_explain_bad_arguments(policy_file: Path, argv: list[str], message: str) -> None:
    code, out, err = run("policy", "explain", str(policy_file), "--tool", "search", *argv)
    assert (code, out) == (2, "")
    assert err.startswith(message)


def test_explain_invalid_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("personas: {}\n", encoding="utf-8")
    code, _, err = run("policy", "explain", str(bad), "--tool", "x")
    assert code == 2
    assert err.startswith(f"{bad}:1:1: personas: ")


def test_demo_gets_every_expected_decision(tmp_path: Path) -> None:
    code, out, _ = run("demo", "--audit-dir", str(tmp_path / "trail"))
    assert code == 0
    assert ("11 tool calls: 4 allowed, 6 denied, 1 held for approval (1 approved); "
            "emails sent: 1") in out
    assert "Scenario 6: the output of fetch_url was quarantined; the model saw: " in out
    assert "Scenario 7: the document from forum/4242 was quarantined (risk 0.90)" in out
    assert ("Scenario 5: send_email(cfo@example.com) was held by flows.no-silent-exfiltration; "
            "the reviewer (dana (a scripted reviewer)) said approve.") in out
    assert "  host secret visible: False" in out
    assert out.rstrip().endswith("every scenario got the expected decision")
    rows = [line.split() for line in out.splitlines()]
    decisions = [(r[r.index(d) - 1], d) for r in rows
                 for d in ("ALLOW", "DENY", "REQUIRE_APPROVAL") if d in r]
    assert decisions == [("search_docs", "ALLOW"), ("delete_customer", "DENY"),
                         ("read_file", "DENY"), ("run_sql", "DENY"), ("read_file", "ALLOW"),
                         ("send_email", "DENY"), ("send_email", "REQUIRE_APPROVAL"),
                         ("fetch_url", "ALLOW"), ("send_email", "DENY"),
                         ("send_email", "DENY"), ("run_python", "ALLOW")]
    assert "lcs-demo-" not in out  # the temporary path is never printed
    assert "audit verify: ok: 19 records, signed through record 19" in out
    # the trail stays for a person to inspect, and verifies from the command line
    db = tmp_path / "trail" / "audit.db"
    assert run("audit", "verify", str(db))[:2] == (
        0, f"ok: 19 records, 1 checkpoints, signed through record 19 "
           f"({_key_id(tmp_path / 'trail' / 'audit.db.key.pub.pem')})\n")


def _key_id(path: Path) -> str:
    from langchain_secure.audit.chain import key_id, load_public_key

    return key_id(load_public_key(path))


def test_console_script_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "langchain_secure.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "langchain-secure 0.1.0.dev0"


def test_no_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
