"""What the graph nodes share: checking the guard, and the review step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt

from langchain_secure.errors import ConfigurationError
from langchain_secure.guard import BatchCheck, Guard, ReviewedCall
from langchain_secure.state import SecurityState, merge_security_state

__all__ = ["Turn", "decide_turn", "require_guard", "review_batch", "user_text"]


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

    Decide the batch (with what the user said, for ``from_user``), seal every
    intent in the audit log (an ``AuditError`` here means nothing runs), publish
    the decisions, raise for the first denial when ``raise_on_deny``, then ask a
    person about the calls the policy holds (:func:`review_batch`).
    """
    check = guard.check_batch(calls, persona=persona, state=state, thread_id=thread_id,
                              prior=prior, user_text=user_text(messages, guard))
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
                                          user_text=check.user_text)
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
