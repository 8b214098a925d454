"""Guard events map to guardrail observation fields exactly."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_secure.tracing import GuardObservation, guard_observation

DECISION: dict[str, Any] = {
    "kind": "decision", "thread_id": "t1", "tool": "login", "tool_call_id": "c1",
    "persona": "analyst", "args": {"user": "ana", "password": "hmac-sha256:ab"},
    "action": "allow", "rule": "personas.analyst.tools.login", "reason": "allowed",
    "labels": ["reads_sensitive"], "receipt": {"seq": 7, "hash": "h" * 64, "log_id": "L"},
}


def test_allowed_decision() -> None:
    assert guard_observation(DECISION) == GuardObservation(
        name="guard decision: login", level="DEFAULT",
        input={"tool": "login", "tool_call_id": "c1",
               "args": {"user": "ana", "password": "hmac-sha256:ab"}},
        output={"action": "allow", "rule": "personas.analyst.tools.login", "reason": "allowed"},
        metadata={"kind": "decision", "action": "allow", "persona": "analyst",
                  "thread_id": "t1", "tool_call_id": "c1", "labels": ["reads_sensitive"],
                  "audit_seq": 7, "audit_hash": "h" * 64, "audit_log_id": "L"},
        status_message=None, blocked=False, risk=None, key=("t1", "c1", "decision", "allow"))


@pytest.mark.parametrize(("action", "level", "blocked"), [
    ("allow", "DEFAULT", False), ("require_approval", "WARNING", False),
    ("deny", "ERROR", True)])
def test_decision_levels(action: str, level: str, blocked: bool) -> None:
    obs = guard_observation({**DECISION, "action": action, "reason": "why"})
    assert (obs.level, obs.blocked) == (level, blocked)
    assert obs.status_message == (None if level == "DEFAULT" else "why")


def test_rejected_review_is_an_error_with_the_reviewer() -> None:
    obs = guard_observation({"kind": "review", "thread_id": "t1", "tool": "pay",
                             "tool_call_id": "c4", "persona": "p", "action": "deny",
                             "rule": "approval.rejected", "reason": "rejected by ana",
                             "reviewer": "ana"})
    assert (obs.name, obs.level, obs.blocked) == ("guard review: pay", "ERROR", True)
    assert obs.input == {"tool": "pay", "tool_call_id": "c4"}
    assert obs.output == {"action": "deny", "rule": "approval.rejected",
                          "reason": "rejected by ana", "reviewer": "ana"}
    assert obs.metadata["reviewer"] == "ana"


@pytest.mark.parametrize(("action", "level"), [
    ("block", "ERROR"), ("quarantine", "ERROR"), ("spotlight", "WARNING"),
    ("mark", "WARNING"), ("log", "WARNING"), ("pass", "DEFAULT")])
def test_scan_levels(action: str, level: str) -> None:
    obs = guard_observation({"kind": "scan", "thread_id": "t1", "door": "tool_output",
                             "source": "fetch", "action": action, "risk": 0.9,
                             "findings": ["instruction_override"], "labels": ["untrusted"],
                             "receipt": None})
    assert (obs.name, obs.level, obs.risk, obs.key) == (
        "guard scan: tool_output:fetch", level, 0.9, None)
    assert obs.input == {"door": "tool_output", "source": "fetch"}
    assert obs.output == {"action": action, "risk": 0.9, "findings": ["instruction_override"]}
    assert obs.metadata == {"kind": "scan", "action": action, "thread_id": "t1",
                            "labels": ["untrusted"], "door": "tool_output", "source": "fetch",
                            "risk": 0.9, "findings": ["instruction_override"]}
    assert obs.status_message == (None if level == "DEFAULT" else
                                  f"{action}: instruction_override in tool_output:fetch "
                                  "(risk 0.90)")


def test_input_door_scan_without_source() -> None:
    obs = guard_observation({"kind": "scan", "thread_id": None, "door": "input",
                             "source": None, "action": "block", "risk": 1.0, "findings": []})
    assert (obs.name, obs.input, obs.level) == ("guard scan: input", {"door": "input"}, "ERROR")


def test_decision_without_thread_has_no_dedupe_key() -> None:
    assert guard_observation({**DECISION, "thread_id": None}).key is None


@pytest.mark.parametrize("event", [{}, {"kind": "decision"}, {"action": "allow"},
                                   {"kind": 1, "action": "allow"}])
def test_not_a_guard_event(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a guard event"):
        guard_observation(event)
