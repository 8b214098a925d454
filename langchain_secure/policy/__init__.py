"""Policies: the schema, the YAML loader, the constraints and the engine.

Example:
    ```python
    from langchain_secure.policy import PolicyEngine, load_policy_text

    engine = PolicyEngine(load_policy_text("personas: {analyst: {tools: [search]}}"))
    engine.decide({"name": "search", "args": {}, "id": "1"}, "analyst").action.value  # 'allow'
    ```
"""

from langchain_secure.policy.constraints import ArgConstraint, Violation
from langchain_secure.policy.engine import Action, Decision, PolicyEngine
from langchain_secure.policy.load import load_policy, load_policy_text
from langchain_secure.policy.model import (
    BUILTIN_LABELS,
    ApprovalCondition,
    ApprovalSpec,
    AuditSpec,
    FlowRule,
    FromUserRule,
    Limits,
    PersonaSpec,
    PersonaToolSpec,
    Policy,
    ToolAuditSpec,
    ToolSpec,
)

__all__ = [
    "BUILTIN_LABELS",
    "Action",
    "ApprovalCondition",
    "ApprovalSpec",
    "ArgConstraint",
    "AuditSpec",
    "Decision",
    "FlowRule",
    "FromUserRule",
    "Limits",
    "PersonaSpec",
    "PersonaToolSpec",
    "Policy",
    "PolicyEngine",
    "ToolAuditSpec",
    "ToolSpec",
    "Violation",
    "load_policy",
    "load_policy_text",
]
