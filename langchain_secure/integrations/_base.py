"""What the graph nodes share: checking the guard, and the review step."""

from __future__ import annotations

import hashlib
from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt

from langchain_secure.errors import ConfigurationError
from langchain_secure.guard import BatchCheck, Guard, ReviewedCall
from langchain_secure.state import SecurityState, merge_security_state

if TYPE_CHECKING:
    from langchain_secure.doors import ScanOutcome

__all__ = [
    "METADATA_KEY",
    "Turn",
    "decide_turn",
    "digest",
    "require_guard",
    "review_batch",
    "screen_output",
    "tool_outputs",
    "user_text",
]

METADATA_KEY = "langchain_secure"
"""Key of what the guard notes on a message (``response_metadata``), e.g. a flag."""


def user_text(messages: Any, guard: Guard | None = None) -> str | None:
    """What the user and the system prompt said: the text ``from_user`` rules read.

    The text of every human and system message, one per line; ``None`` when
    ``messages`` is not a list of messages (nothing is then the user's), or when
    ``guard``'s policy has no ``from_user`` rule (nothing then reads it).
    Tool outputs and the model's own messages never count.
    """
    if guard is not None and not guard.engine.reads_user_text:
        return None
    if not isinstance(messages, list | tuple):
        return None
    parts = [m.text for m in messages if isinstance(m, HumanMessage | SystemMessage)]
    return "\n".join(parts)


def digest(text: str) -> str:
    """How a surface remembers a text it flagged without keeping the text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tool_outputs(messages: Any, guard: Guard, *,
                 flagged: Container[str] = ()) -> dict[str, str] | None:
    """What tools returned in a conversation: the text ``from_user`` ``or_from`` reads.

    The outputs of the tools the policy's ``or_from`` rules name, joined per
    tool name; ``None`` when no rule reads any. An output counts only when the
    tool succeeded and the tool-output door did not flag it: not a refusal or
    an error (``status="error"``), not one marked flagged in
    ``response_metadata`` (:func:`screen_output`), and not one whose
    :func:`digest` is in ``flagged`` (what a callback handler saw flagged).
    """
    reads = guard.engine.reads_tool_outputs
    if not reads or not isinstance(messages, list | tuple):
        return None
    names = {call["id"]: call["name"] for m in messages if isinstance(m, AIMessage)
             for call in m.tool_calls if call.get("id")}
    parts: dict[str, list[str]] = {}
    for m in messages:
        if not isinstance(m, ToolMessage) or m.status == "error":
            continue
        if (m.response_metadata.get(METADATA_KEY) or {}).get("flagged"):
            continue
        name = m.name or names.get(m.tool_call_id)
        if name not in reads:
            continue
        text = m.text
        if flagged and digest(text) in flagged:
            continue
        parts.setdefault(name, []).append(text)
    return {name: "\n".join(texts) for name, texts in parts.items()}


def screen_output(message: ToolMessage, outcome: ScanOutcome) -> ToolMessage:
    """A tool's output as the tool-output door passes it on.

    The door's text when it changed it (``status="error"`` when blocked), and,
    when flagged, ``response_metadata["langchain_secure"]["flagged"]``: a
    flagged output never grounds a ``from_user`` value (:func:`tool_outputs`).
    """
    update: dict[str, Any] = {}
    if outcome.changed:
        update["content"] = outcome.text
        update["status"] = "error" if outcome.blocked else message.status
    if outcome.flagged:
        update["response_metadata"] = {**message.response_metadata, METADATA_KEY: {
            "flagged": True, "risk": outcome.verdict.risk}}
    return message.model_copy(update=update) if update else message


class Turn(NamedTuple):
    """One model turn's calls, decided, sealed and reviewed (see :func:`decide_turn`)."""

    check: BatchCheck
    receipts: tuple[Any, ...]
    reviewed: list[ReviewedCall]
    delta: SecurityState


def decide_turn(guard: Guard, calls: Sequence[Mapping[str, Any]], *, persona: str | None,
                state: Mapping[str, Any] | None, thread_id: str | None, messages: Any,
                message: Any, config: Any, state_in_graph: bool,
                prior: Sequence[Mapping[str, Any]] = (), raise_on_deny: bool = False) -> Turn:
    """What every graph surface does with a model turn, in this order, before any call runs.

    Decide the batch (with what the user said and what tools returned, for
    ``from_user``), seal every
    intent in the audit log (an ``AuditError`` here means nothing runs), publish
    the decisions, raise for the first denial when ``raise_on_deny``, then ask a
    person about the calls the policy holds (:func:`review_batch`).
    """
    check = guard.check_batch(calls, persona=persona, state=state, thread_id=thread_id,
                              prior=prior, user_text=user_text(messages, guard),
                              tool_outputs=tool_outputs(messages, guard))
    receipts = guard.seal(calls, check.decisions, thread_id=thread_id, message=message)
    guard.publish_decisions(calls, check.decisions, receipts, thread_id=thread_id,
                            config=config)
    if raise_on_deny:
        denied = next((d for d in check.decisions if d.denied), None)
        if denied is not None:
            raise guard.refusal_error(denied)
    reviewed, delta = review_batch(guard, calls, check, receipts, persona=persona,
                                   thread_id=thread_id, state_in_graph=state_in_graph,
                                   config=config)
    return Turn(check, receipts, reviewed, delta)


def require_guard(guard: Any) -> Guard:
    """``guard`` itself, or a ConfigurationError naming what was passed instead."""
    if not isinstance(guard, Guard):
        msg = f"guard must be a langchain_secure.Guard, not {type(guard).__name__}"
        raise ConfigurationError(msg)
    return guard


def review_batch(guard: Guard, calls: Sequence[Mapping[str, Any]], check: BatchCheck,
                 receipts: Sequence[Any], *, persona: str | None, thread_id: str | None,
                 state_in_graph: bool, config: Any) -> tuple[list[ReviewedCall], SecurityState]:
    """What runs of a decided batch, asking a person first when the policy says so.

    Without calls that need approval this only turns decisions into refusals.
    Otherwise it pauses the graph with one ``interrupt()`` for the batch; on
    resume (the node runs again from the top, its seals are idempotent) the
    reviewer's decisions are applied by :meth:`Guard.apply_review`, published,
    and the approved calls are counted.

    Returns:
        One reviewed call per call, and the batch's security-state delta.
    """
    if not any(d.needs_approval for d in check.decisions):
        return [ReviewedCall(c, d, None if d.allowed else guard.refusal_message(d))
                for c, d in zip(calls, check.decisions, strict=True)], check.delta
    request = guard.approval_request(calls, check.decisions, receipts)
    response = interrupt(request)
    attempt = 0
    while True:
        try:
            reviewed = guard.apply_review(calls, check.decisions, response, persona=persona,
                                          state=check.state, thread_id=thread_id,
                                          user_text=check.user_text,
                                          tool_outputs=check.tool_outputs)
            break
        except ValueError as error:
            # LangGraph keeps a rejected resume value and replays it to this node's
            # first interrupt on every re-run; a corrected value is stored for the next
            # interrupt index. Look there; with none, report the error to the caller.
            attempt += 1
            try:
                response = interrupt({**request, "error": str(error), "attempt": attempt})
            except GraphInterrupt:  # our own probe found no newer value: not control flow
                raise error from None
    guard.publish_reviews(reviewed, check.decisions, response, thread_id=thread_id,
                          config=config)
    approved = [r.decision for r, d in zip(reviewed, check.decisions, strict=True)
                if d.needs_approval and r.runs]
    delta = merge_security_state(check.delta, guard.charge(thread_id, approved,
                                                           remember=not state_in_graph))
    return reviewed, delta
