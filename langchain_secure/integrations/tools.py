"""Guarded tools: any LangChain tool, decided by the Guard before it runs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from langgraph.errors import GraphBubbleUp
from pydantic import ConfigDict, Field, PrivateAttr

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from langchain_secure.approval import Approver
    from langchain_secure.guard import Guard, OnDeny
    from langchain_secure.policy.engine import Decision

__all__ = ["GuardedTool"]


class GuardedTool(BaseTool):
    """A tool whose every call is decided by a :class:`~langchain_secure.Guard` first.

    Build them with :meth:`Guard.wrap_tools <langchain_secure.Guard.wrap_tools>`.
    The wrapper has the original's name, description and argument schema, so a
    model bound to it sees the same tool. Arguments the framework injects
    (``InjectedState``, ``InjectedToolCallId``, ...) are not shown to the policy.

    Example:
        ```python
        from langchain_core.tools import tool
        from langchain_secure import Guard, load_policy_text

        guard = Guard(load_policy_text("personas: {ops: {tools: []}}"))

        @tool
        def reboot(host: str) -> str:
            "Reboot a host."
            return "rebooting " + host

        [safe] = guard.wrap_tools([reboot], persona="ops")
        safe.invoke({"host": "db1"})  # the refusal text: reboot is not allowed for ops
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    guard: Any = Field(exclude=True)
    persona: str | None = None
    on_deny: str = "message"
    approver: Any = Field(default=None, exclude=True)
    _injected: frozenset[str] = PrivateAttr(default=frozenset())

    @classmethod
    def wrap(cls, tool: BaseTool | Any, *, guard: Guard, persona: str | None,
             on_deny: OnDeny, approver: Approver | None = None) -> GuardedTool:
        """Wrap one tool (or a plain function, made a tool first)."""
        inner = tool if isinstance(tool, BaseTool) else as_tool(tool)
        wrapped = cls(
            name=inner.name,
            description=inner.description,
            args_schema=inner.args_schema,
            return_direct=inner.return_direct,
            tags=inner.tags,
            metadata=inner.metadata,
            inner=inner,
            guard=guard,
            persona=persona,
            on_deny=on_deny,
            approver=approver,
        )
        visible = set(inner.tool_call_schema.model_json_schema().get("properties", {})) \
            if hasattr(inner.tool_call_schema, "model_json_schema") else set(inner.args)
        wrapped._injected = frozenset(set(inner.args) - visible)
        return wrapped

    def _decide(self, tool_input: str | dict[str, Any], config: RunnableConfig | None,
                tool_call_id: str | None
                ) -> tuple[Decision, Any, str | None, dict[str, Any], str | None]:
        """Decide, seal and (if needed) review one call.

        Returns (decision, receipt, thread id, the call to run, refusal text).
        """
        if isinstance(tool_input, dict):
            args: Any = {k: v for k, v in tool_input.items() if k not in self._injected}
        else:
            names = [n for n in self.inner.args if n not in self._injected]
            args = {names[0]: tool_input} if len(names) == 1 else tool_input
        guard: Guard = self.guard
        configurable = (config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        call = {"name": self.name, "args": args, "id": tool_call_id}
        persona = guard.resolve_persona(config, fixed=self.persona)
        check = guard.check_batch([call], persona=persona, thread_id=thread_id)
        [decision] = check.decisions
        [receipt] = guard.seal([call], check.decisions, thread_id=thread_id)
        if not decision.needs_approval:
            refusal = None if decision.allowed else guard.refusal_message(decision)
            return decision, receipt, thread_id, call, refusal
        from langchain_secure.approval import RaiseApprover

        approver = self.approver or RaiseApprover()
        [request] = guard.approval_request([call], [decision], [receipt])["action_requests"]
        answer = approver(request)
        [reviewed] = guard.apply_review([call], [decision], {"decisions": [answer]},
                                        persona=persona, state=check.state, thread_id=thread_id)
        refusal = reviewed.refusal
        if refusal is None and reviewed.call.get("name") != self.name:
            refusal = (f"Tool call '{self.name}' was not run: the reviewer's edit names another "
                       f"tool ({reviewed.call.get('name')!r}), which this tool cannot run.")
        if refusal is None:
            guard.charge(thread_id, [reviewed.decision])
        return reviewed.decision, receipt, thread_id, dict(reviewed.call), refusal

    def _record(self, call: dict[str, Any], receipt: Any, thread_id: str | None,
                output: Any) -> None:
        status = getattr(output, "status", "success")
        content = getattr(output, "content", output)
        self.guard.record_outcome(call, receipt, thread_id=thread_id, status=status,
                                  output=content)

    def _refuse(self, decision: Decision, text: str, tool_call_id: str | None) -> Any:
        guard: Guard = self.guard
        if self.on_deny == "raise":
            raise guard.refusal_error(decision)
        if tool_call_id is None:
            return text
        return ToolMessage(content=text, name=self.name, tool_call_id=tool_call_id,
                           status="error")

    def run(self, tool_input: str | dict[str, Any], *args: Any,
            config: RunnableConfig | None = None, tool_call_id: str | None = None,
            **kwargs: Any) -> Any:
        """Decide and seal the call, then run the original tool if it is allowed."""
        decision, receipt, thread_id, call, refusal = self._decide(tool_input, config,
                                                                   tool_call_id)
        if refusal is not None:
            return self._refuse(decision, refusal, tool_call_id)
        if call["args"] != tool_input and isinstance(call["args"], dict):
            tool_input = call["args"]  # a reviewer's edit
        try:
            output = self.inner.run(tool_input, *args, config=config,
                                    tool_call_id=tool_call_id, **kwargs)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            self.guard.record_outcome(call, receipt, thread_id=thread_id, status="raised",
                                      output=repr(exc))
            raise
        self._record(call, receipt, thread_id, output)
        return output

    async def arun(self, tool_input: str | dict[str, Any], *args: Any,
                   config: RunnableConfig | None = None, tool_call_id: str | None = None,
                   **kwargs: Any) -> Any:
        """Async :meth:`run`."""
        decision, receipt, thread_id, call, refusal = await asyncio.to_thread(
            self._decide, tool_input, config, tool_call_id)
        if refusal is not None:
            return self._refuse(decision, refusal, tool_call_id)
        if call["args"] != tool_input and isinstance(call["args"], dict):
            tool_input = call["args"]  # a reviewer's edit
        try:
            output = await self.inner.arun(tool_input, *args, config=config,
                                           tool_call_id=tool_call_id, **kwargs)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            await asyncio.to_thread(self.guard.record_outcome, call, receipt,
                                    thread_id=thread_id, status="raised", output=repr(exc))
            raise
        await asyncio.to_thread(self._record, call, receipt, thread_id, output)
        return output

    def _run(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - run() is overridden
        raise NotImplementedError("GuardedTool runs through run()/arun()")
