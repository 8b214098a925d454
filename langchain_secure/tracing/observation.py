"""What a guard event looks like as a tracing observation (pure, no tracing SDK).

:func:`guard_observation` maps one :class:`~langchain_secure.events.GuardEventData`
to the fields of a Langfuse ``guardrail`` observation: name, input (the call or
the text's origin, as the event carries it: arguments are already redacted the
way the audit log stores them), output (what the guard did), metadata (persona,
thread, audit receipt, risk), and a level:

========  =====================================================================
ERROR     the action did not happen or the text was withheld: ``deny``,
          ``block``, ``quarantine`` (and a reviewer's rejection)
WARNING   held for a person (``require_approval``) or flagged but passed on
          (``spotlight``, ``mark``, ``log``)
DEFAULT   everything else (``allow``, ``pass``)
========  =====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ERROR_ACTIONS", "WARNING_ACTIONS", "GuardObservation", "Level", "guard_observation"]

Level = Literal["DEFAULT", "WARNING", "ERROR"]
"""The Langfuse observation levels a guard event can have."""

ERROR_ACTIONS = frozenset({"deny", "block", "quarantine"})
"""Actions that stopped a call or withheld a text: level ``ERROR``, trace tag ``blocked``."""

WARNING_ACTIONS = frozenset({"require_approval", "spotlight", "mark", "log", "timeout",
                             "killed"})
"""Actions that held a call for a person or passed flagged text on: level ``WARNING``."""


@dataclass(frozen=True)
class GuardObservation:
    """The fields of one guardrail observation.

    Attributes:
        name: ``"guard <kind>: <tool or door:source>"``, e.g. ``"guard decision: pay"``.
        level: ``"ERROR"``, ``"WARNING"`` or ``"DEFAULT"`` (see the module docstring).
        input: What was checked: ``tool``, ``tool_call_id``, ``args`` for decisions and
            reviews; ``door`` and ``source`` for scans.
        output: What the guard did: ``action``, ``rule``, ``reason`` (and ``reviewer``
            for reviews; ``risk`` and ``findings`` for scans).
        metadata: ``kind``, ``persona``, ``thread_id``, ``labels``, ``audit_seq``,
            ``audit_hash``, ``audit_log_id``, ``risk``, ``findings``... (``None``s dropped).
        status_message: The reason, for ``WARNING`` and ``ERROR`` observations.
        blocked: The action was stopped or the text withheld (level ``ERROR``).
        risk: The scan's risk score, when the event is a scan.
        key: ``(thread_id, tool_call_id, kind, action)`` when the event belongs to a
            call of a thread, to recognise it when a node re-runs after an interrupt.

    Example:
        ```python
        from langchain_secure.tracing import guard_observation

        obs = guard_observation({
            "kind": "decision", "thread_id": "t1", "tool": "pay", "tool_call_id": "c1",
            "persona": "analyst", "args": {"amount": 5}, "action": "deny",
            "rule": "persona.allowlist", "reason": "pay is not allowed", "labels": [],
            "receipt": {"seq": 3, "hash": "ab12", "log_id": "log"},
        })
        assert (obs.name, obs.level, obs.blocked) == ("guard decision: pay", "ERROR", True)
        assert obs.output == {"action": "deny", "rule": "persona.allowlist",
                              "reason": "pay is not allowed"}
        assert obs.metadata["audit_seq"] == 3
        assert obs.key == ("t1", "c1", "decision", "deny")
        ```
    """

    name: str
    level: Level
    input: dict[str, Any]
    output: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    status_message: str | None = None
    blocked: bool = False
    risk: float | None = None
    key: tuple[str, str, str, str] | None = None


def _level(action: str) -> Level:
    if action in ERROR_ACTIONS:
        return "ERROR"
    if action in WARNING_ACTIONS:
        return "WARNING"
    return "DEFAULT"


def _dropping_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def guard_observation(event: Mapping[str, Any]) -> GuardObservation:
    """Map a guard event to the fields of its guardrail observation.

    Args:
        event: A :class:`~langchain_secure.events.GuardEventData` payload.

    Returns:
        The observation's fields. Nothing is added that the event did not carry:
        arguments stay as redacted as the guard published them.

    Raises:
        ValueError: ``event`` has no string ``kind`` or ``action``.
    """
    kind, action = event.get("kind"), event.get("action")
    if not isinstance(kind, str) or not isinstance(action, str):
        raise ValueError(f"not a guard event (no kind/action): {sorted(event)}")
    level = _level(action)
    receipt = event.get("receipt") if isinstance(event.get("receipt"), Mapping) else {}
    risk = event.get("risk")
    risk = float(risk) if isinstance(risk, int | float) and not isinstance(risk, bool) else None
    if kind == "sandbox":
        target = f"{event.get('tool')} in {event.get('backend')}"
        inputs = _dropping_none({"tool": event.get("tool"), "backend": event.get("backend")})
        outputs = dict(event.get("sandbox") or {})
        reason = f"sandboxed code ended with status {action!r}"
    elif kind == "scan":
        door, source = event.get("door"), event.get("source")
        target = f"{door}:{source}" if source else str(door)
        inputs = _dropping_none({"door": door, "source": source})
        outputs = _dropping_none({"action": action, "risk": risk,
                                  "findings": event.get("findings")})
        reason = (f"{action}: {', '.join(event.get('findings') or []) or 'flagged'} "
                  f"in {target} (risk {risk if risk is not None else 0:.2f})")
    else:
        target = str(event.get("tool"))
        inputs = _dropping_none({"tool": event.get("tool"),
                                 "tool_call_id": event.get("tool_call_id"),
                                 "args": event.get("args")})
        outputs = _dropping_none({"action": action, "rule": event.get("rule"),
                                  "reason": event.get("reason"),
                                  "reviewer": event.get("reviewer")})
        reason = str(event.get("reason") or action)
    assert isinstance(receipt, Mapping)
    metadata = _dropping_none({
        "kind": kind, "action": action, "persona": event.get("persona"),
        "thread_id": event.get("thread_id"), "tool_call_id": event.get("tool_call_id"),
        "labels": event.get("labels") or None, "reviewer": event.get("reviewer"),
        "door": event.get("door"), "source": event.get("source"), "risk": risk,
        "findings": event.get("findings") or None,
        "audit_seq": receipt.get("seq"), "audit_hash": receipt.get("hash"),
        "audit_log_id": receipt.get("log_id"),
    })
    thread_id, call_id = event.get("thread_id"), event.get("tool_call_id")
    key = ((str(thread_id), str(call_id), kind, action)
           if thread_id is not None and call_id is not None else None)
    return GuardObservation(
        name=f"guard {kind}: {target}", level=level, input=inputs, output=outputs,
        metadata=metadata, status_message=reason if level != "DEFAULT" else None,
        blocked=level == "ERROR", risk=risk, key=key)
