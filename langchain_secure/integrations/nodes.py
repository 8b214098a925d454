"""GuardedToolNode: a drop-in ``ToolNode`` whose calls the Guard decides first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallWrapper
from langgraph.runtime import Runtime

from langchain_secure.errors import ConfigurationError
from langchain_secure.guard import Guard, OnDeny
from langchain_secure.integrations._base import decide_turn, require_guard, screen_output
from langchain_secure.policy.engine import Action, Decision
from langchain_secure.state import merge_security_state

if TYPE_CHECKING:
    from langchain_secure.audit.log import Receipt

__all__ = ["NO_THREAD_MESSAGE", "GuardedToolNode"]

NO_THREAD_MESSAGE = (
    "GuardedToolNode cannot tell this conversation from others: the graph state has "
    "no {key!r} channel and the config has no thread_id. Use SecureMessagesState (or "
    "add `{key}: Annotated[SecurityState, merge_security_state]` to your state), or "
    "invoke with config={{'configurable': {{'thread_id': ...}}}}."
)
"""Raised (as ConfigurationError) rather than mixing the security state of threads."""

UNAVAILABLE_TOOL_MESSAGE = "Error: tool {tool!r} is not available."
"""What the model sees when it calls a tool the policy allows but the node lacks."""

@dataclass(frozen=True)
class _Entry:
    """What happens to one call of the batch."""

    decision: Decision
    receipt: Receipt | None
    call: Any  # the call to run (a reviewer may have edited it)
    refusal: str | None  # what the model sees instead, when the call does not run


@dataclass(frozen=True)
class _Batch:
    """What the calls of one node run share, by identity of the model's call dicts."""

    entries: dict[int, _Entry]
    thread_id: str | None
    labels: list[str]  # labels the outputs gave the thread (appended from worker threads)
    config: Any = None  # the node run's config, for guard events


# The batch being run. Keys are the identity of the tool-call dicts: ToolNode runs
# each call in a copied context (thread pool or asyncio task), so every _run_one of
# the batch sees the value set around it, and concurrent batches never mix.
_BATCH: ContextVar[_Batch | None] = ContextVar("langchain_secure_batch", default=None)

_UNDECIDED = Decision(Action.DENY, "guard.internal", "the call was not decided", "", "")


class GuardedToolNode(ToolNode):
    """``langgraph.prebuilt.ToolNode`` with every tool call decided by a Guard.

    Use it wherever a ``ToolNode`` goes: the same positional argument, the same
    default node name ``"tools"``, the same ``tools_condition`` routing. Before
    any tool runs, the whole batch of calls from the model's turn is decided in
    order (so ``[read_secret, send_email]`` in one turn meets the flow rules).
    Allowed calls run exactly as in ``ToolNode``; a refused call becomes a
    ``ToolMessage(status="error")`` telling the model it was refused and why, or
    raises when ``on_deny="raise"``.

    The persona is, in order: ``persona=`` given here, ``config["configurable"]
    ["persona"]``, the runtime context's ``persona``, the policy default. The
    thread's security state is read from and written to the graph state key
    ``security_key`` when the state has it (see
    :class:`~langchain_secure.SecureMessagesState`), so checkpointers persist it;
    otherwise the Guard remembers it per ``thread_id``, and a run with neither
    raises :class:`~langchain_secure.ConfigurationError`.

    Calls the policy holds for approval pause the graph with one ``interrupt()``
    for the batch (LangChain's human-in-the-loop request shape, see
    :mod:`langchain_secure.approval`); resume with ``Command(resume={"decisions":
    [...], "reviewer": ...})``. Edited calls are decided again by the policy.
    Interrupts need a checkpointer, as everywhere in LangGraph.

    Args:
        tools: The tools, as for ``ToolNode``.
        guard: The guard that decides.
        persona: A fixed persona for every call through this node.
        on_deny: Overrides ``guard.on_deny``.
        security_key: The state key holding the thread's security state.
        name: Node name (default ``"tools"``).
        tags: As for ``ToolNode``.
        handle_tool_errors: As for ``ToolNode``; refusals never depend on it.
        messages_key: As for ``ToolNode``.
        wrap_tool_call: As for ``ToolNode``; runs only for allowed calls.
        awrap_tool_call: As for ``ToolNode``; runs only for allowed calls.

    Example:
        ```python
        from langgraph.graph import START, StateGraph
        from langgraph.prebuilt import tools_condition
        from langchain_secure import GuardedToolNode, SecureMessagesState

        builder = StateGraph(SecureMessagesState)
        builder.add_node("agent", call_model)
        builder.add_node(GuardedToolNode(tools, guard=guard))  # named "tools"
        builder.add_edge(START, "agent")
        builder.add_conditional_edges("agent", tools_condition)
        builder.add_edge("tools", "agent")
        graph = builder.compile()
        ```
    """

    def __init__(
        self,
        tools: Sequence[BaseTool | Any],
        *,
        guard: Guard,
        persona: str | None = None,
        on_deny: OnDeny | None = None,
        security_key: str = "security",
        name: str = "tools",
        tags: list[str] | None = None,
        handle_tool_errors: Any = None,
        messages_key: str = "messages",
        wrap_tool_call: ToolCallWrapper | None = None,
        awrap_tool_call: Any = None,
    ) -> None:
        require_guard(guard)
        if on_deny is not None and on_deny not in ("message", "raise"):
            msg = f"on_deny must be 'message' or 'raise', not {on_deny!r}"
            raise ConfigurationError(msg)
        kwargs: dict[str, Any] = {}
        if handle_tool_errors is not None:
            kwargs["handle_tool_errors"] = handle_tool_errors
        super().__init__(tools, name=name, tags=tags, messages_key=messages_key,
                         wrap_tool_call=wrap_tool_call, awrap_tool_call=awrap_tool_call,
                         **kwargs)
        self.guard = guard
        self.persona = persona
        self.on_deny: OnDeny = on_deny or guard.on_deny
        self.security_key = security_key

    # -- the batch: decide everything first, then let ToolNode run it ---------------

    def _begin(self, input: Any, config: RunnableConfig, runtime: Runtime[Any]
               ) -> tuple[_Batch, dict[str, Any] | None]:
        calls, _ = self._parse_input(input)
        sent = isinstance(input, dict) and input.get("__type") == "tool_call_with_context"
        container = input.get("state") if sent else input
        if isinstance(container, dict):
            security = container.get(self.security_key)
        else:
            security = getattr(container, self.security_key, None)
        prior = self._earlier_in_turn(container, calls[0]) if sent else []
        configurable = config.get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if security is None and thread_id is None:
            # one shared memory for every caller would let one user's reads hold,
            # or spend the budget of, another's calls
            raise ConfigurationError(NO_THREAD_MESSAGE.format(key=self.security_key))
        guard = self.guard
        persona = guard.resolve_persona(config, runtime.context, fixed=self.persona)
        turn = decide_turn(guard, calls, persona=persona, state=security, thread_id=thread_id,
                           prior=prior, messages=self._messages(container),
                           message=self._asking_message(container, calls[0]), config=config,
                           state_in_graph=security is not None,
                           raise_on_deny=self.on_deny == "raise")
        reviewed, receipts, delta = turn.reviewed, turn.receipts, turn.delta
        entries = [_Entry(r.decision, receipt, r.call, r.refusal)
                   for r, receipt in zip(reviewed, receipts, strict=True)]
        batch = _Batch({id(call): entry for call, entry in zip(calls, entries, strict=True)},
                       thread_id, [], config)
        update = {self.security_key: delta} if security is not None else None
        return batch, update

    def _messages(self, state: Any) -> list[Any]:
        """The conversation in the node's input (a list, or the messages channel)."""
        messages = state if isinstance(state, list) else (
            state.get(self._messages_key) if isinstance(state, dict)
            else getattr(state, self._messages_key, None))
        return list(messages or [])

    def _asking_message(self, state: Any, call: Any) -> AIMessage | None:
        """The AI message holding ``call`` (for the intent record)."""
        for message in reversed(self._messages(state)):
            if isinstance(message, AIMessage) and any(
                    c.get("id") == call.get("id") for c in message.tool_calls):
                return message
        return None

    def _earlier_in_turn(self, state: Any, call: Any) -> list[Any]:
        """With one ``Send`` per call, the calls of the same turn that come first.

        They are decided again (not run) so that this call meets the same flow
        rules and budgets as it would in a batch.
        """
        for message in reversed(self._messages(state)):
            calls = getattr(message, "tool_calls", None) or []
            ids = [c.get("id") for c in calls]
            if call.get("id") in ids:
                return list(calls[: ids.index(call.get("id"))])
        return []

    def _finish(self, output: Any, update: dict[str, Any] | None, batch: _Batch) -> Any:
        if batch.labels:  # untrusted content came in: the thread remembers it
            delta = self.guard.label(batch.thread_id, batch.labels, remember=update is None)
            if update is not None:
                update = {self.security_key: merge_security_state(update[self.security_key],
                                                                  delta)}
        if update is None:
            return output
        if isinstance(output, dict):
            return {**output, **update}
        return [*output, update]

    def _func(self, input: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        batch, update = self._begin(input, config, runtime)
        token = _BATCH.set(batch)
        try:
            output = super()._func(input, config, runtime)
        finally:
            _BATCH.reset(token)
        return self._finish(output, update, batch)

    async def _afunc(self, input: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        if self.guard.audit is None:
            batch, update = self._begin(input, config, runtime)
        else:  # sealing commits to disk: keep it off the event loop
            batch, update = await asyncio.to_thread(self._begin, input, config, runtime)
        token = _BATCH.set(batch)
        try:
            output = await super()._afunc(input, config, runtime)
        finally:
            _BATCH.reset(token)
        return self._finish(output, update, batch)

    # -- one call -----------------------------------------------------------------

    @staticmethod
    def _lookup(call: Any) -> tuple[_Entry, _Batch | None]:
        batch = _BATCH.get()
        missing = _Entry(_UNDECIDED, None, call, "Error: the call was not decided; it did "
                                                 "not run.")
        if batch is None:
            return missing, None
        return batch.entries.get(id(call), missing), batch

    def _screen(self, entry: _Entry, batch: _Batch | None, output: Any) -> Any:
        """Scan a tool's output at the tool-output door; what passes on, and labels."""
        if not isinstance(output, ToolMessage):
            return output
        content = output.content if isinstance(output.content, str) else output.text
        outcome = self.guard.scan(
            content, door="tool_output", source=str(entry.call.get("name")),
            thread_id=batch.thread_id if batch else None, key=entry.call.get("id"),
            untrusted_source="untrusted_source" in entry.decision.labels)
        if batch is not None and outcome.labels:
            batch.labels.extend(outcome.labels)
        if batch is not None:
            self.guard.publish_scans([outcome], thread_id=batch.thread_id, config=batch.config)
        return screen_output(output, outcome)

    def _record(self, call: Any, receipt: Receipt | None, thread_id: str | None,
                output: Any) -> None:
        if isinstance(output, ToolMessage):
            status, content = output.status, output.content
        elif isinstance(output, list):
            status, content = "success", [getattr(o, "content", str(o)) for o in output]
        else:
            status, content = "success", str(output)
        self.guard.record_outcome(call, receipt, thread_id=thread_id, status=status,
                                  output=content)

    @staticmethod
    def _refusal(call: Any, text: str) -> ToolMessage:
        return ToolMessage(content=text, name=call.get("name"), tool_call_id=call.get("id"),
                           status="error")

    def _run_one(self, call: Any, input_type: Literal["list", "dict", "tool_calls"],
                 tool_runtime: Any) -> Any:
        entry, batch = self._lookup(call)
        thread_id = batch.thread_id if batch else None
        if entry.refusal is not None:
            return self._refusal(call, entry.refusal)
        try:
            output = super()._run_one(entry.call, input_type, tool_runtime)
        except GraphBubbleUp:
            raise  # an interrupt: the call re-runs on resume and is recorded then
        except Exception as exc:
            self.guard.record_outcome(entry.call, entry.receipt, thread_id=thread_id,
                                      status="raised", output=repr(exc))
            raise
        self._record(entry.call, entry.receipt, thread_id, output)
        return self._screen(entry, batch, output)

    async def _arun_one(self, call: Any, input_type: Literal["list", "dict", "tool_calls"],
                        tool_runtime: Any) -> Any:
        entry, batch = self._lookup(call)
        thread_id = batch.thread_id if batch else None
        if entry.refusal is not None:
            return self._refusal(call, entry.refusal)
        try:
            output = await super()._arun_one(entry.call, input_type, tool_runtime)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            await asyncio.to_thread(self.guard.record_outcome, entry.call, entry.receipt,
                                    thread_id=thread_id, status="raised", output=repr(exc))
            raise
        await asyncio.to_thread(self._record, entry.call, entry.receipt, thread_id, output)
        return await asyncio.to_thread(self._screen, entry, batch, output)

    def _validate_tool_call(self, call: Any) -> ToolMessage | None:
        # ToolNode's own message lists every registered tool, including ones the
        # persona may not use; say only that this one is unavailable.
        if call["name"] not in self.tools_by_name:
            return ToolMessage(UNAVAILABLE_TOOL_MESSAGE.format(tool=call["name"]),
                               name=call["name"], tool_call_id=call["id"], status="error")
        return None
