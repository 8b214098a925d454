"""SecurityMiddleware: the guard inside LangChain 1.x ``create_agent``.

``create_agent`` runs each tool call of a model turn as its own task, one call
at a time through the ``wrap_tool_call`` chain, so a per-call hook cannot see
the batch. The middleware therefore splits the work the way
:class:`~langchain_secure.GuardedToolNode` does it in one node:

* ``before_model`` scans the user input that arrived since the last model
  call at the ``input`` door (a blocked text raises; a quarantined or
  spotlighted one replaces the message, by id) and adds the labels to the
  thread.
* ``after_model`` decides the model turn's tool calls *as a batch*
  (:meth:`Guard.check_batch`), seals every intent in the audit log before
  anything runs, pauses the graph with one ``interrupt()`` for the calls the
  policy holds for approval, and stores what happens to each call (run, the
  call to run, or the refusal text) in the agent state, keyed by tool call id.
* ``wrap_tool_call`` looks that up: a refused call becomes an error
  ``ToolMessage`` without running; an allowed call runs (the reviewer's edit
  if there was one), its outcome is recorded, and its output is scanned at the
  ``tool_output`` door, the one place tool results are scanned. A call with no
  stored outcome is refused (fail closed).

The thread's security state lives in the agent state under ``security`` (a
delta channel merged by :func:`~langchain_secure.merge_security_state`), so a
checkpointer persists it with the conversation.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, cast

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    OmitFromInput,
    PrivateStateAttr,
    ToolCallRequest,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.types import Command
from typing_extensions import NotRequired, TypedDict

from langchain_secure.errors import ConfigurationError
from langchain_secure.guard import Guard, OnDeny
from langchain_secure.integrations._base import (
    decide_turn,
    require_guard,
    screen_output,
    tool_outputs,
    user_text,
)
from langchain_secure.state import SecurityState, merge_security_state

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.runtime import Runtime

    from langchain_secure.audit.log import Receipt
    from langchain_secure.policy.engine import Decision

__all__ = [
    "CALLS_KEY",
    "SECURITY_KEY",
    "UNDECIDED_MESSAGE",
    "GuardedCall",
    "SecurityAgentState",
    "SecurityMiddleware",
]

SECURITY_KEY = "security"
"""The agent-state key holding the thread's :class:`~langchain_secure.SecurityState`."""

CALLS_KEY = "security_calls"
"""The agent-state key holding the latest model turn's :class:`GuardedCall` per call id."""

HITL_EDITS_KEY = "hitl_edited_tool_calls"
"""Where ``HumanInTheLoopMiddleware`` keeps a reviewer's replacement for a call."""

UNDECIDED_MESSAGE = "Error: the call to '{tool}' was not decided by the security policy; " \
                    "it did not run."
"""What the model sees for a call ``after_model`` never decided (fail closed)."""

UNAVAILABLE_TOOL_MESSAGE = "Error: tool {tool!r} is not available."
"""What the model sees for a call the policy allows to a tool the agent lacks."""

_ON_DENY = ("message", "raise")


class GuardedCall(TypedDict):
    """What ``after_model`` decided for one tool call (JSON-safe: checkpoints hold it).

    Attributes:
        asked: The model's call (``name``, ``args``).
        name: The tool to run (a reviewer may have edited it).
        args: The arguments to run it with.
        runs: Whether the call runs.
        refusal: The text the model sees instead, when it does not run.
        reviewed: Whether a person reviewed it in our interrupt.
        persona: The persona it was decided for.
        rule: The rule of the final decision.
        labels: The labels of the final decision.
        receipt: The audit receipt of its intent (``seq``, ``hash``, ``log_id``).
    """

    asked: dict[str, Any]
    name: str
    args: dict[str, Any]
    runs: bool
    refusal: str | None
    reviewed: bool
    persona: str | None
    rule: str
    labels: list[str]
    receipt: dict[str, Any] | None


class SecurityAgentState(AgentState[Any]):
    """The agent state the middleware adds: the thread's security state and its calls."""

    security: NotRequired[Annotated[SecurityState, OmitFromInput, merge_security_state]]
    security_calls: NotRequired[Annotated[dict[str, GuardedCall], PrivateStateAttr]]


def _config() -> RunnableConfig | None:
    try:
        return get_config()
    except RuntimeError:  # outside a run
        return None


def _thread_id(config: Mapping[str, Any] | None) -> str | None:
    value = ((config or {}).get("configurable") or {}).get("thread_id")
    return str(value) if value is not None else None


def _receipt_json(receipt: Receipt | None) -> dict[str, Any] | None:
    if receipt is None:
        return None
    return {"seq": receipt.seq, "hash": receipt.hash, "log_id": receipt.log_id}


def _receipt(data: Mapping[str, Any] | None) -> Receipt | None:
    if not data:
        return None
    from langchain_secure.audit.log import Receipt

    return Receipt(int(data["seq"]), str(data["hash"]), str(data["log_id"]))


def _state_get(state: Any, key: str) -> Any:
    return state.get(key) if isinstance(state, Mapping) else getattr(state, key, None)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return ToolMessage(content=content, tool_call_id="").text


class SecurityMiddleware(AgentMiddleware[SecurityAgentState, Any, Any]):
    r"""Every tool call of a ``create_agent`` agent decided by a :class:`~langchain_secure.Guard`.

    The calls of one model turn are decided together in ``after_model`` (so
    ``[read_secret, send_email]`` in one turn meets the flow rules), sealed in the
    audit log before any of them runs, and held for a person's approval with one
    ``interrupt()`` for the turn when the policy says so (the request and resume
    format of :class:`~langchain_secure.GuardedToolNode`:
    ``Command(resume={"decisions": [...], "reviewer": ...})``; edits are decided
    again). ``wrap_tool_call`` then runs only what may run, records the outcome,
    and scans the output at the ``tool_output`` door. ``before_model`` scans new
    user input at the ``input`` door. Decisions, statuses, refusal texts and audit
    records are those of ``GuardedToolNode`` for the same calls.

    The persona is, in order: ``persona=`` given here, ``config["configurable"]
    ["persona"]``, the runtime context's ``persona`` (attribute or key), the
    policy default. The thread's security state is the agent-state key
    ``security``, persisted by the checkpointer. Interrupts need a checkpointer.

    Args:
        guard: The guard that decides.
        persona: A fixed persona for every call of the agent.
        on_deny: Overrides ``guard.on_deny``: ``"message"`` answers a refused call
            with an error ``ToolMessage``; ``"raise"`` raises
            :class:`~langchain_secure.ToolNotAllowedError` from ``after_model``
            when the policy denies a call (nothing of the turn runs).

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain_core.messages import HumanMessage
        from langchain_core.tools import tool
        from langgraph.checkpoint.memory import InMemorySaver
        from langchain_secure import Guard, load_policy_text
        from langchain_secure.integrations.middleware import SecurityMiddleware
        from langchain_secure.testing import ScriptedChatModel, tool_call

        @tool
        def search(q: str) -> str:
            "Search the docs."
            return f"results for {q}"

        guard = Guard(load_policy_text("default_persona: a\\npersonas: {a: {tools: [search]}}"))
        model = ScriptedChatModel(script=[[tool_call("search", q="refunds")], "done"])
        agent = create_agent(model, [search], middleware=[SecurityMiddleware(guard)],
                             checkpointer=InMemorySaver())
        result = agent.invoke({"messages": [HumanMessage("hi")]},
                              {"configurable": {"thread_id": "t1"}})
        result["messages"][2].content  # 'results for refunds'
        result["security"]["total_calls"]  # 1
        ```
    """

    state_schema = SecurityAgentState

    def __init__(self, guard: Guard, *, persona: str | None = None,
                 on_deny: OnDeny | None = None) -> None:
        super().__init__()
        self.guard = require_guard(guard)
        if persona is not None and not isinstance(persona, str):
            msg = f"persona must be a string or None, not {type(persona).__name__}"
            raise ConfigurationError(msg)
        if on_deny is not None and on_deny not in _ON_DENY:
            msg = f"on_deny must be one of {_ON_DENY}, not {on_deny!r}"
            raise ConfigurationError(msg)
        self.persona = persona
        self.on_deny: OnDeny = on_deny or guard.on_deny

    # -- before the model: the input door ------------------------------------------------

    def before_model(self, state: SecurityAgentState, runtime: Runtime[Any]
                     ) -> dict[str, Any] | None:
        """Scan the user input that arrived since the last model call.

        Raises:
            PromptInjectionError: The input door blocks a flagged text.
        """
        return self._screen_input(state, _config())

    async def abefore_model(self, state: SecurityAgentState, runtime: Runtime[Any]
                            ) -> dict[str, Any] | None:
        """Async :meth:`before_model` (detectors and audit writes run in a worker thread)."""
        return await asyncio.to_thread(self._screen_input, state, _config())

    def _screen_input(self, state: Any, config: RunnableConfig | None) -> dict[str, Any] | None:
        messages = list(_state_get(state, "messages") or [])
        last_ai = max((i for i, m in enumerate(messages) if isinstance(m, AIMessage)),
                      default=-1)
        new = [m for m in messages[last_ai + 1:] if isinstance(m, HumanMessage)]
        if not new:
            return None
        guard, thread_id = self.guard, _thread_id(config)
        outcomes = guard.scan_many([m.text for m in new], door="input",
                                   sources=["user"] * len(new), thread_id=thread_id,
                                   keys=[m.id for m in new])
        guard.publish_scans(outcomes, thread_id=thread_id, config=config)
        blocked = next((o for o in outcomes if o.blocked), None)
        if blocked is not None:
            raise blocked.error()
        update: dict[str, Any] = {}
        changed = [m.model_copy(update={"content": o.text})
                   for m, o in zip(new, outcomes, strict=True) if o.changed]
        if changed:
            update["messages"] = changed
        labels = [label for o in outcomes for label in o.labels]
        if labels:
            update[SECURITY_KEY] = guard.label(thread_id, labels, remember=False)
        return update or None

    # -- after the model: the batch ---------------------------------------------------------

    def after_model(self, state: SecurityAgentState, runtime: Runtime[Any]
                    ) -> dict[str, Any] | None:
        """Decide, seal and (if the policy says so) review the model turn's tool calls.

        Raises:
            ToolNotAllowedError: ``on_deny="raise"`` and the policy denies a call.
            AuditError: The intents could not be sealed (nothing runs).
        """
        return self._decide_turn(state, runtime, _config())

    async def aafter_model(self, state: SecurityAgentState, runtime: Runtime[Any]
                           ) -> dict[str, Any] | None:
        """Async :meth:`after_model` (sealing commits to disk in a worker thread)."""
        return await asyncio.to_thread(self._decide_turn, state, runtime, _config())

    def _decide_turn(self, state: Any, runtime: Runtime[Any],
                     config: RunnableConfig | None) -> dict[str, Any] | None:
        messages = list(_state_get(state, "messages") or [])
        index = max((i for i, m in enumerate(messages) if isinstance(m, AIMessage)),
                    default=-1)
        previous = _state_get(state, CALLS_KEY)
        message = cast("AIMessage", messages[index]) if index >= 0 else None
        if message is None or not message.tool_calls:
            return {CALLS_KEY: {}} if previous else None
        # calls already answered (a HumanInTheLoopMiddleware that ran before us
        # rejected them) never run: they are not part of the batch
        answered = {m.tool_call_id for m in messages[index + 1:] if isinstance(m, ToolMessage)}
        edits = _state_get(state, HITL_EDITS_KEY) or {}
        asked: list[dict[str, Any]] = [dict(c) for c in message.tool_calls
                                       if c.get("id") not in answered]
        calls = [{**c, "name": edits[c["id"]]["name"], "args": dict(edits[c["id"]]["args"])}
                 if c.get("id") in edits else c for c in asked]
        if not calls:
            return {CALLS_KEY: {}} if previous else None
        guard, thread_id = self.guard, _thread_id(config)
        persona = guard.resolve_persona(config, runtime.context if runtime else None,
                                        fixed=self.persona)
        security = merge_security_state(_state_get(state, SECURITY_KEY), None)
        turn = decide_turn(guard, calls, persona=persona, state=security, thread_id=thread_id,
                           messages=messages, message=message, config=config,
                           state_in_graph=True, raise_on_deny=self.on_deny == "raise")
        check, receipts, reviewed, delta = turn
        plan: dict[str, GuardedCall] = {}
        for model_call, first, result, receipt in zip(asked, check.decisions, reviewed, receipts,
                                                      strict=True):
            args = result.call.get("args")
            plan[str(model_call.get("id"))] = {
                "asked": {"name": model_call["name"], "args": dict(model_call["args"])},
                "name": str(result.call.get("name")),
                "args": dict(args) if isinstance(args, Mapping) else {},
                "runs": result.runs,
                "refusal": result.refusal,
                "reviewed": first.needs_approval,
                "persona": persona,
                "rule": result.decision.rule,
                "labels": list(result.decision.labels),
                "receipt": _receipt_json(receipt),
            }
        return {SECURITY_KEY: delta, CALLS_KEY: plan}

    # -- one call ------------------------------------------------------------------------------

    def wrap_tool_call(self, request: ToolCallRequest,
                       handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]]
                       ) -> ToolMessage | Command[Any]:
        """Run the call only as ``after_model`` decided; record and scan what it returns."""
        prepared = self._prepare(request)
        if isinstance(prepared, ToolMessage):
            return prepared
        run, entry, thread_id, config = prepared
        try:
            result = handler(run)
        except GraphBubbleUp:
            raise  # an interrupt inside the tool: the call re-runs on resume
        except Exception as exc:
            self.guard.record_outcome(run.tool_call, _receipt(entry["receipt"]),
                                      thread_id=thread_id, status="raised", output=repr(exc))
            raise
        return self._finish(result, run.tool_call, entry, thread_id, config)

    async def awrap_tool_call(
        self, request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        """Async :meth:`wrap_tool_call` (audit writes and detectors off the event loop)."""
        prepared = await asyncio.to_thread(self._prepare, request)
        if isinstance(prepared, ToolMessage):
            return prepared
        run, entry, thread_id, config = prepared
        try:
            result = await handler(run)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            await asyncio.to_thread(self.guard.record_outcome, run.tool_call,
                                    _receipt(entry["receipt"]), thread_id=thread_id,
                                    status="raised", output=repr(exc))
            raise
        return await asyncio.to_thread(self._finish, result, run.tool_call, entry, thread_id,
                                       config)

    def _prepare(self, request: ToolCallRequest
                 ) -> ToolMessage | tuple[ToolCallRequest, GuardedCall, str | None, Any]:
        """The request to run and its plan, or the message to answer with instead."""
        call = request.tool_call
        call_id = call.get("id")
        state = request.state
        entry: GuardedCall | None = (_state_get(state, CALLS_KEY) or {}).get(call_id) \
            if call_id else None
        if entry is None:
            return _refusal(call, UNDECIDED_MESSAGE.format(tool=call.get("name")))
        if entry["refusal"] is not None:
            return _refusal(call, entry["refusal"])
        config = _config()
        thread_id = _thread_id(config)
        decided = {"name": entry["name"], "args": entry["args"]}
        now = {"name": call.get("name"), "args": call.get("args")}
        human_edit = (_state_get(state, HITL_EDITS_KEY) or {}).get(call_id)
        if human_edit is not None:  # HumanInTheLoopMiddleware will run this instead
            target = {"name": human_edit["name"], "args": dict(human_edit["args"])}
        elif now in (decided, entry["asked"]):
            target = decided
        else:  # a middleware outside this one rewrote the call
            target = now
        if target != decided:
            # never run a call nobody decided: decide the replacement now
            candidate = {**call, **target}
            messages = _state_get(state, "messages")
            check = self.guard.check_batch([candidate], persona=entry["persona"],
                                           state=merge_security_state(
                                               _state_get(state, SECURITY_KEY), None),
                                           thread_id=thread_id,
                                           user_text=user_text(messages, self.guard),
                                           tool_outputs=tool_outputs(messages, self.guard))
            [decision] = check.decisions
            self.guard.publish_decisions([candidate], [decision], [None], thread_id=thread_id,
                                         config=config)
            # a person approved exactly this edit; any other rewrite must be allowed
            if not self.guard.may_run(decision, reviewed=human_edit is not None):
                return _refusal(call, self.guard.refusal_message(decision))
            entry = cast("GuardedCall", {**entry, "name": decision.tool,
                                         "rule": decision.rule,
                                         "labels": list(decision.labels)})
        run_call = {**call, "name": target["name"], "args": target["args"]}
        tool = request.tool
        if tool is None or tool.name != target["name"]:
            tools = getattr(request.runtime, "tools", None) or []
            tool = next((t for t in tools if t.name == target["name"]), None)
        if tool is None:
            message = _refusal(run_call, UNAVAILABLE_TOOL_MESSAGE.format(tool=target["name"]))
            self.guard.record_outcome(run_call, _receipt(entry["receipt"]), thread_id=thread_id,
                                      status="error", output=message.content)
            return message
        return request.override(tool_call=cast("Any", run_call), tool=tool), entry, thread_id, \
            config

    def _finish(self, result: ToolMessage | Command[Any], call: Mapping[str, Any],
                entry: GuardedCall, thread_id: str | None, config: Any
                ) -> ToolMessage | Command[Any]:
        """Record the outcome, scan the output; add what it taught to the thread."""
        guard = self.guard
        message = _find_message(result, call.get("id"))
        if message is not None:
            status, content = message.status, message.content
        else:
            status, content = "success", str(result)
        guard.record_outcome(call, _receipt(entry["receipt"]), thread_id=thread_id,
                             status=status, output=content)
        if message is None:
            return result
        outcome = guard.scan(_text(message.content), door="tool_output",
                             source=str(call.get("name")), thread_id=thread_id,
                             key=call.get("id"),
                             untrusted_source="untrusted_source" in entry["labels"])
        guard.publish_scans([outcome], thread_id=thread_id, config=config)
        screened = screen_output(message, outcome)
        if not outcome.labels and screened is message:
            return result
        delta = guard.label(thread_id, list(outcome.labels), remember=False)
        if isinstance(result, ToolMessage):
            if not outcome.labels:
                return screened
            return Command(update={"messages": [screened], SECURITY_KEY: delta})
        update = dict(cast("Mapping[str, Any]", result.update))
        update["messages"] = [screened if m is message else m for m in update["messages"]]
        if outcome.labels:
            update[SECURITY_KEY] = merge_security_state(update.get(SECURITY_KEY), delta)
        return dataclasses.replace(result, update=update)

    # -- composing with HumanInTheLoopMiddleware ------------------------------------------------

    def hitl_interrupt_on(self, interrupt_on: Mapping[str, bool | Mapping[str, Any]]
                          ) -> dict[str, Any]:
        """An ``interrupt_on`` for ``HumanInTheLoopMiddleware`` that never asks twice.

        Each gated tool gets a ``when`` predicate (composed with its own) so that
        LangChain's middleware asks a person only about calls the policy lets run
        without review. Calls the policy holds are reviewed once, in this
        middleware's interrupt; calls it denies are refused without asking anyone.
        Works with either middleware order.

        Example:
            ```python
            from langchain.agents.middleware import HumanInTheLoopMiddleware

            security = SecurityMiddleware(guard)
            hitl = HumanInTheLoopMiddleware(
                interrupt_on=security.hitl_interrupt_on({"send_email": True}))
            agent = create_agent(model, tools, middleware=[security, hitl],
                                 checkpointer=InMemorySaver())
            ```
        """
        out: dict[str, Any] = {}
        for name, config in interrupt_on.items():
            if config is False:
                out[name] = False
                continue
            spec: dict[str, Any] = dict(config) if isinstance(config, Mapping) else {
                "allowed_decisions": ["approve", "edit", "reject", "respond"]}
            spec["when"] = self._only_if_allowed(spec.get("when"))
            out[name] = spec
        return out

    def _only_if_allowed(self, when: Callable[[ToolCallRequest], bool] | None
                         ) -> Callable[[ToolCallRequest], bool]:
        def predicate(request: ToolCallRequest) -> bool:
            if not self._runs_unreviewed(request):
                return False
            return bool(when(request)) if when is not None else True

        return predicate

    def _runs_unreviewed(self, request: ToolCallRequest) -> bool:
        """True when the policy lets this call run without a person's review."""
        call = request.tool_call
        state = request.state
        entry = (_state_get(state, CALLS_KEY) or {}).get(call.get("id"))
        if entry is not None:  # after_model already decided this turn
            return entry["runs"] and not entry["reviewed"]
        messages = list(_state_get(state, "messages") or [])
        message = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        calls: Sequence[Mapping[str, Any]] = message.tool_calls if message else [call]
        ids = [c.get("id") for c in calls]
        if call.get("id") not in ids:
            calls, ids = [call], [call.get("id")]
        runtime = request.runtime
        persona = self.guard.resolve_persona(getattr(runtime, "config", None) or _config(),
                                             getattr(runtime, "context", None),
                                             fixed=self.persona)
        decisions: list[Decision] = self.guard.engine.decide_batch(
            calls, persona, merge_security_state(_state_get(state, SECURITY_KEY), None))
        return decisions[ids.index(call.get("id"))].allowed


def _refusal(call: Mapping[str, Any], text: str) -> ToolMessage:
    return ToolMessage(content=text, name=call.get("name"), tool_call_id=call.get("id"),
                       status="error")


def _find_message(result: Any, call_id: Any) -> ToolMessage | None:
    if isinstance(result, ToolMessage):
        return result
    if isinstance(result, Command) and isinstance(result.update, Mapping):
        for message in result.update.get("messages") or []:
            if isinstance(message, ToolMessage) and message.tool_call_id == call_id:
                return message
    return None
