"""Human approval: the request a person sees, the decisions they send back.

The request is LangChain's human-in-the-loop shape (``action_requests`` with
``name``/``args``/``description``, ``review_configs`` with ``allowed_decisions``),
so LangGraph Studio and agent inboxes render it; each action request also carries
our fields: the tool call id, the rule and reason that asked for approval, the
risk, and the audit receipt of the sealed intent.

A graph resumes with ``Command(resume={"decisions": [...], "reviewer": "alice"})``,
one decision per action request, in order:

* ``{"type": "approve"}``
* ``{"type": "edit", "edited_action": {"name": ..., "args": {...}}}``: the edited
  call is decided again by the policy, so an edit can never make a denied call run;
* ``{"type": "reject", "message": "..."}``: the model sees the message as an error.

Without a graph, :class:`Approver` implementations answer the same request:
any callable, :class:`ConsoleApprover`, or :class:`RaiseApprover` (the default),
which raises :class:`~langchain_secure.ApprovalRequiredError`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal, TextIO

from typing_extensions import NotRequired, TypedDict

from langchain_secure.errors import ApprovalRequiredError

__all__ = [
    "ALLOWED_DECISIONS",
    "BAD_RESUME_MESSAGE",
    "DECISION_COUNT_MESSAGE",
    "DECISION_NOT_ALLOWED_MESSAGE",
    "REJECTED_MESSAGE",
    "ActionRequest",
    "ApprovalRequest",
    "Approver",
    "ConsoleApprover",
    "EditedAction",
    "RaiseApprover",
    "ReviewConfig",
    "ReviewDecision",
    "ReviewResponse",
    "approve",
    "edit",
    "reject",
]

DecisionType = Literal["approve", "edit", "reject"]
ALLOWED_DECISIONS: list[DecisionType] = ["approve", "edit", "reject"]

DECISION_COUNT_MESSAGE = (
    "Number of human decisions ({got}) does not match number of calls awaiting "
    "approval ({expected})."
)
DECISION_NOT_ALLOWED_MESSAGE = (
    "Decision type {type!r} is not allowed for tool {tool!r}; expected one of {allowed}."
)
BAD_RESUME_MESSAGE = (
    "Resume an approval with {{'decisions': [...]}}, one decision per action request; "
    "got {got!r}."
)
REJECTED_MESSAGE = "A person rejected the call to '{tool}'{by}{reason}. Do not retry it."


class EditedAction(TypedDict):
    """The call a reviewer wants instead: a tool name and its arguments."""

    name: str
    args: dict[str, Any]


class ActionRequest(TypedDict):
    """One call awaiting review (LangChain's shape, plus our fields)."""

    name: str
    args: dict[str, Any]
    description: NotRequired[str]
    tool_call_id: NotRequired[str | None]
    rule: NotRequired[str]
    reason: NotRequired[str]
    persona: NotRequired[str]
    risk: NotRequired[float | None]
    receipt: NotRequired[dict[str, Any] | None]


class ReviewConfig(TypedDict):
    """Which decisions a reviewer may send for one action."""

    action_name: str
    allowed_decisions: list[DecisionType]


class ApprovalRequest(TypedDict):
    """The interrupt value: everything a reviewer needs, in LangChain's HITL shape."""

    action_requests: list[ActionRequest]
    review_configs: list[ReviewConfig]


class ReviewDecision(TypedDict):
    """One reviewer decision (``approve``, ``edit`` or ``reject``)."""

    type: DecisionType
    edited_action: NotRequired[EditedAction]
    message: NotRequired[str]


class ReviewResponse(TypedDict):
    """The resume value: one decision per action request, and who decided."""

    decisions: list[ReviewDecision]
    reviewer: NotRequired[str]


def approve() -> ReviewDecision:
    """An approval."""
    return {"type": "approve"}


def edit(name: str, args: Mapping[str, Any]) -> ReviewDecision:
    """An edit: run this call instead (it is decided again by the policy)."""
    return {"type": "edit", "edited_action": {"name": name, "args": dict(args)}}


def reject(message: str | None = None) -> ReviewDecision:
    """A rejection; ``message`` is shown to the model."""
    return {"type": "reject", "message": message} if message else {"type": "reject"}


Approver = Callable[[ActionRequest], ReviewDecision]
"""Answers one action request without a graph (used by ``Guard.wrap_tools``)."""


class RaiseApprover:
    """The default approver: no person is available, so raise.

    Example:
        ```python
        from langchain_secure.approval import RaiseApprover

        approver = RaiseApprover()
        ```
    """

    def __call__(self, request: ActionRequest) -> ReviewDecision:
        """Raise :class:`~langchain_secure.ApprovalRequiredError` for ``request``."""
        raise ApprovalRequiredError(tool=request["name"], persona=request.get("persona", ""),
                                    rule=request.get("rule", ""),
                                    reason=request.get("reason", ""))


class ConsoleApprover:
    """Ask at the terminal: approve, reject, or edit the arguments as JSON.

    Args:
        input: Reads one line (default: ``input``).
        output: Where the request is printed (default: standard error).

    Example:
        ```python
        from langchain_secure.approval import ConsoleApprover

        approver = ConsoleApprover()  # pass to guard.wrap_tools(..., approver=approver)
        ```
    """

    def __init__(self, *, input: Callable[[str], str] = input,
                 output: TextIO | None = None) -> None:
        self._input = input
        self._output = output

    def __call__(self, request: ActionRequest) -> ReviewDecision:
        """Print the request and read a decision."""
        import json

        out = self._output or sys.stderr
        print(f"\nApproval needed: {request['name']}({json.dumps(request['args'])})", file=out)
        print(f"  why: {request.get('reason', '')} (rule {request.get('rule', '')})", file=out)
        while True:
            answer = self._input("approve [a], reject [r], or edit [e]? ").strip().lower()
            if answer in ("a", "approve", "y", "yes"):
                return approve()
            if answer in ("r", "reject", "n", "no"):
                return reject(self._input("reason for the model (optional): ").strip() or None)
            if answer in ("e", "edit"):
                raw = self._input("new arguments as JSON: ")
                try:
                    args = json.loads(raw)
                except json.JSONDecodeError as exc:
                    print(f"  not JSON: {exc}", file=out)
                    continue
                if isinstance(args, dict):
                    return edit(request["name"], args)
                print("  the arguments must be a JSON object", file=out)
