"""Callback handlers: the guard for chains and agents you do not rebuild.

Add them to any run's callbacks. They observe, and abort by raising (callbacks
cannot rewrite what flows through a chain: for that use the graph nodes or the
middleware):

* user input (``on_chat_model_start`` / ``on_llm_start``), retrieved documents
  (``on_retriever_end``) and tool outputs (``on_tool_end``) are scanned at their
  doors; a flagged text at a ``block`` door raises
  :class:`~langchain_secure.scanning.PromptInjectionError`, any other flagged text
  is recorded and labels the thread ``untrusted``;
* every tool call is decided at ``on_tool_start``: a denied call raises
  :class:`~langchain_secure.ToolNotAllowedError`, a call that needs approval asks
  the approver (by default it raises
  :class:`~langchain_secure.ApprovalRequiredError`), and the intent is sealed in
  the audit log before the tool runs.

The thread is ``metadata["thread_id"]`` (LangGraph sets it) or the handler's
``thread_id``; the persona is the handler's, else the policy default.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, HumanMessage

from langchain_secure.approval import Approver, RaiseApprover
from langchain_secure.guard import Guard
from langchain_secure.integrations._base import digest, require_guard, tool_outputs, user_text

__all__ = ["CALLBACK_EDIT_MESSAGE", "AsyncSecurityCallbackHandler", "SecurityCallbackHandler"]

CALLBACK_EDIT_MESSAGE = (
    "Tool call '{tool}' was not run: the reviewer edited it, and callbacks cannot change "
    "a call's arguments; use GuardedToolNode or the middleware to run edits."
)


class _Core:
    """What both handlers do; each method may raise to abort the run."""

    def __init__(self, guard: Guard, persona: str | None, thread_id: str | None,
                 approver: Approver | None) -> None:
        self.guard = require_guard(guard)
        self.persona = persona
        self.thread_id = thread_id
        self.approver = approver or RaiseApprover()
        # what the user said in each thread, as the last chat model call saw it
        # (``from_user`` rules); a thread no model call was seen for has none
        self.said: dict[str | None, str] = {}
        # and what tools returned there (``or_from``), minus what this handler flagged
        self.outputs: dict[str | None, dict[str, str]] = {}
        self.flagged: dict[str | None, set[str]] = {}

    def remember_conversation(self, messages: list[list[BaseMessage]],
                              metadata: dict[str, Any] | None) -> None:
        if not self.guard.engine.reads_user_text:
            return
        thread_id = self.thread(metadata)
        texts = [user_text(conversation) or "" for conversation in messages]
        self.said[thread_id] = "\n".join(t for t in texts if t)
        if self.guard.engine.reads_tool_outputs:
            outputs: dict[str, str] = {}
            for conversation in messages:
                seen = tool_outputs(conversation, self.guard,
                                    flagged=self.flagged.get(thread_id, ())) or {}
                for name, text in seen.items():
                    outputs[name] = f"{outputs[name]}\n{text}" if name in outputs else text
            self.outputs[thread_id] = outputs

    def thread(self, metadata: dict[str, Any] | None) -> str | None:
        value = (metadata or {}).get("thread_id")
        return str(value) if value is not None else self.thread_id

    def scan(self, texts: Sequence[str], door: Any, sources: Sequence[str | None],
             metadata: dict[str, Any] | None, run_id: UUID) -> None:
        thread_id = self.thread(metadata)
        outcomes = self.guard.scan_many(list(texts), door=door, sources=list(sources),
                                        thread_id=thread_id,
                                        keys=[f"{run_id}:{i}" for i in range(len(texts))])
        if door == "tool_output":
            self.flagged.setdefault(thread_id, set()).update(
                digest(text) for text, outcome in zip(texts, outcomes, strict=True)
                if outcome.flagged)
        labels = [label for outcome in outcomes for label in outcome.labels]
        if labels:
            self.guard.label(thread_id, labels)
        blocked = next((o for o in outcomes if o.blocked), None)
        if blocked is not None:
            raise blocked.error()

    def tool_start(self, serialized: dict[str, Any], input_str: str,
                   inputs: dict[str, Any] | None, metadata: dict[str, Any] | None,
                   run_id: UUID) -> None:
        guard = self.guard
        name = str((serialized or {}).get("name") or "")
        args: Any = inputs
        if args is None:
            try:
                args = json.loads(input_str)
            except (TypeError, ValueError):
                args = {"input": input_str}
            if not isinstance(args, dict):
                args = {"input": input_str}
        thread_id = self.thread(metadata)
        call = {"name": name, "args": args, "id": str(run_id)}
        check = guard.check_batch([call], persona=self.persona or guard.policy.default_persona,
                                  thread_id=thread_id, user_text=self.said.get(thread_id),
                                  tool_outputs=self.outputs.get(thread_id))
        [decision] = check.decisions
        [receipt] = guard.seal([call], check.decisions, thread_id=thread_id)
        if decision.denied:
            raise guard.refusal_error(decision)
        if not decision.needs_approval:
            return
        [request] = guard.approval_request([call], [decision], [receipt])["action_requests"]
        [reviewed] = guard.apply_review([call], [decision], {"decisions": [self.approver(request)]},
                                        persona=decision.persona, state=check.state,
                                        thread_id=thread_id, user_text=check.user_text,
                                        tool_outputs=check.tool_outputs)
        if not reviewed.runs:
            raise guard.refusal_error(reviewed.decision)
        if reviewed.call.get("name") != name or reviewed.call.get("args") != args:
            from langchain_secure.errors import ToolNotAllowedError

            raise ToolNotAllowedError(tool=name, persona=decision.persona, rule="approval.edit",
                                      reason=CALLBACK_EDIT_MESSAGE.format(tool=name))
        guard.charge(thread_id, [reviewed.decision])


def _latest_human(messages: list[list[BaseMessage]]) -> list[str]:
    texts = []
    for conversation in messages:
        human = next((m for m in reversed(conversation) if isinstance(m, HumanMessage)), None)
        if human is not None:
            texts.append(str(human.text))
    return texts


def _documents(documents: Sequence[Document]) -> tuple[list[str], list[str | None]]:
    return ([d.page_content for d in documents],
            [d.metadata.get("source") for d in documents])


class SecurityCallbackHandler(BaseCallbackHandler):
    """The guard as a synchronous callback handler (aborts by raising).

    Args:
        guard: The guard that decides.
        persona: The persona of the runs (default: the policy's default persona).
        thread_id: The thread when ``metadata["thread_id"]`` is absent.
        approver: Answers calls that need approval (default: raise).

    Example:
        ```python
        handler = guard.callbacks(persona="analyst")
        agent_executor.invoke({"input": "..."}, config={"callbacks": [handler]})
        ```
    """

    raise_error = True

    def __init__(self, guard: Guard, *, persona: str | None = None,
                 thread_id: str | None = None, approver: Approver | None = None) -> None:
        self._core = _Core(guard, persona, thread_id, approver)

    def on_chat_model_start(self, serialized: dict[str, Any],
                            messages: list[list[BaseMessage]], *, run_id: UUID,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Scan the latest human message at the input door; remember what the user said."""
        self._core.remember_conversation(messages, metadata)
        texts = _latest_human(messages)
        self._core.scan(texts, "input", ["user"] * len(texts), metadata, run_id)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Scan completion prompts at the input door."""
        self._core.scan(prompts, "input", ["user"] * len(prompts), metadata, run_id)

    def on_retriever_end(self, documents: Sequence[Document], *, run_id: UUID,
                         metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Scan retrieved documents at the documents door."""
        texts, sources = _documents(documents)
        self._core.scan(texts, "documents", sources, metadata, run_id)

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
                      metadata: dict[str, Any] | None = None,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Decide the tool call; raise if it must not run."""
        self._core.tool_start(serialized, input_str, inputs, metadata, run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, name: str | None = None,
                    metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Scan the tool's output at the tool-output door."""
        text = getattr(output, "content", output)
        self._core.scan([text if isinstance(text, str) else str(text)], "tool_output",
                        [name], metadata, run_id)


class AsyncSecurityCallbackHandler(SecurityCallbackHandler):
    """The handler for async runs (``ainvoke``, ``astream``): fail closed on every path.

    It is deliberately a synchronous :class:`~langchain_core.callbacks.BaseCallbackHandler`
    (the async callback manager runs it in a worker thread, off the event loop).
    An ``AsyncCallbackHandler`` would fail open: when an awaited tool has no
    coroutine, langchain-core runs it on the sync path, which logs and swallows
    exceptions from async handlers whatever their ``raise_error``, so a denied
    call would run anyway. Sync handlers' exceptions propagate on both paths.

    Example:
        ```python
        handler = guard.callbacks(asynchronous=True)
        await agent.ainvoke({"messages": [...]}, config={"callbacks": [handler]})
        ```
    """

    run_inline = False
