"""ApprovalNode: a review step for graphs that keep their own ``ToolNode``."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph._internal._runnable import RunnableCallable
from langgraph.runtime import Runtime

from langchain_secure.errors import ConfigurationError
from langchain_secure.guard import Guard
from langchain_secure.integrations._base import decide_turn, require_guard
from langchain_secure.integrations.nodes import NO_THREAD_MESSAGE

__all__ = ["REFUSED_NOTE", "ApprovalNode", "approval_required"]

REFUSED_NOTE = "\n\n[langchain-secure: not run: {tool}: {reason}]"
"""Appended to the AI message's text for each call the review step removed."""


def _last_ai(state: Any, key: str) -> AIMessage | None:
    messages = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
    return next((m for m in reversed(messages or []) if isinstance(m, AIMessage)), None)


def approval_required(state: Any, config: RunnableConfig | None = None, *, guard: Guard,
                      persona: str | None = None, security_key: str = "security",
                      messages_key: str = "messages") -> bool:
    """True when the last AI message asks for a call the policy holds for approval.

    Pure: nothing is recorded or counted. Use it to route to an
    :class:`ApprovalNode` only when needed.

    Example:
        ```python
        from functools import partial
        from langchain_secure.integrations.approval import approval_required

        needs_review = partial(approval_required, guard=guard)
        builder.add_conditional_edges(
            "agent", lambda s, config: "approval" if needs_review(s, config) else "tools"
        )
        ```
    """
    message = _last_ai(state, messages_key)
    if message is None or not message.tool_calls:
        return False
    security = state.get(security_key) if isinstance(state, dict) else \
        getattr(state, security_key, None)
    configurable = (config or {}).get("configurable") or {}
    if security is None:
        security = guard.thread_state(configurable.get("thread_id"))
    decisions = guard.engine.decide_batch(message.tool_calls,
                                          guard.resolve_persona(config, fixed=persona), security)
    return any(d.needs_approval for d in decisions)


class ApprovalNode(RunnableCallable):
    """Decide the last AI message's tool calls, asking a person where the policy says so.

    Put it between the model and a plain ``ToolNode``. It applies the whole
    policy but runs nothing. Denied and rejected calls are removed from the AI
    message, and their reasons are appended to its text, so the ``ToolNode`` runs
    only what may run and every tool result still answers a call. Calls that need
    approval pause the graph with one ``interrupt()`` (the same request and resume
    format as :class:`~langchain_secure.GuardedToolNode`). Reviewers' edits are
    decided again and replace the model's calls. Intents and reviews are written
    to the guard's audit log.

    Args:
        guard: The guard that decides.
        persona: A fixed persona (otherwise config, runtime context, policy default).
        security_key: The state key with the thread's security state.
        messages_key: The state key with the messages.
        name: The node name (default ``"approval"``).

    Example:
        ```python
        from langgraph.prebuilt import ToolNode
        from langchain_secure.integrations.approval import ApprovalNode

        builder.add_node(ApprovalNode(guard))            # named "approval"
        builder.add_node("tools", ToolNode(tools))
        builder.add_edge("approval", "tools")
        ```
    """

    def __init__(self, guard: Guard, *, persona: str | None = None,
                 security_key: str = "security", messages_key: str = "messages",
                 name: str = "approval") -> None:
        super().__init__(self._func, self._afunc, name=name, trace=False)
        self.guard = require_guard(guard)
        self.persona = persona
        self.security_key = security_key
        self.messages_key = messages_key

    def _func(self, state: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        return self._review(state, config, runtime)

    async def _afunc(self, state: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        return await asyncio.to_thread(self._review, state, config, runtime)

    def _review(self, state: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        message = _last_ai(state, self.messages_key)
        if message is None or not message.tool_calls:
            return None
        guard = self.guard
        security = state.get(self.security_key) if isinstance(state, dict) else \
            getattr(state, self.security_key, None)
        thread_id = (config.get("configurable") or {}).get("thread_id")
        if security is None and thread_id is None:
            raise ConfigurationError(NO_THREAD_MESSAGE.format(key=self.security_key))
        calls = list(message.tool_calls)
        persona = guard.resolve_persona(config, runtime.context, fixed=self.persona)
        messages = state.get(self.messages_key) if isinstance(state, dict) else \
            getattr(state, self.messages_key, None)
        _, _, reviewed, delta = decide_turn(
            guard, calls, persona=persona, state=security, thread_id=thread_id,
            messages=messages, message=message, config=config,
            state_in_graph=security is not None)
        update: dict[str, Any] = {}
        if security is not None:
            update[self.security_key] = delta
        changed = [r for r, c in zip(reviewed, calls, strict=True) if not r.runs or r.call != c]
        if changed:
            running = [{**c, "name": r.call["name"], "args": r.call["args"]}
                       for r, c in zip(reviewed, calls, strict=True) if r.runs]
            notes = "".join(REFUSED_NOTE.format(tool=r.decision.tool, reason=r.refusal)
                            for r in reviewed if not r.runs)
            content = message.content + notes if isinstance(message.content, str) else \
                [*message.content, {"type": "text", "text": notes.strip()}]
            update[self.messages_key] = [message.model_copy(
                update={"tool_calls": running, "content": content})]
        return update or None
