"""Human approval: interrupts, every decision type, edits decided again, approvers."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from langchain_secure import (
    ApprovalRequiredError,
    Guard,
    GuardedToolNode,
    SecureMessagesState,
    load_policy_text,
)
from langchain_secure.approval import (
    DECISION_COUNT_MESSAGE,
    DECISION_NOT_ALLOWED_MESSAGE,
    ConsoleApprover,
    approve,
    edit,
    reject,
)
from langchain_secure.audit import AuditLog
from langchain_secure.integrations.approval import ApprovalNode, approval_required
from langchain_secure.testing import ScriptedChatModel, tool_call

POLICY = """
default_persona: clerk
personas:
  clerk: {tools: [pay, lookup, close_account]}
tools:
  pay:
    labels: [writes]
    args: {amount: {range: {min: 0, max: 1000}}, to: {regex: 'ACME|GLOBEX'}}
    approval:
      when:
        - args: {amount: {range: {min: 100}}}
  lookup:
    labels: [reads_sensitive]
  close_account:
    approval: always
flows:
  - {id: no-pay-after-read, after: [reads_sensitive], then: [writes], action: require_approval}
"""
RAN: list[tuple[str, Any]] = []


@tool
def pay(amount: float, to: str) -> str:
    """Pay a supplier."""
    RAN.append(("pay", (amount, to)))
    return f"paid {amount} to {to}"


@tool
def lookup(key: str) -> str:
    """Look up a record."""
    RAN.append(("lookup", key))
    return "record"


@tool
def close_account(account: str) -> str:
    """Close an account."""
    RAN.append(("close_account", account))
    return "closed"


TOOLS = [pay, lookup, close_account]


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@pytest.fixture
def guard() -> Guard:
    return Guard(load_policy_text(POLICY))


def app(guard: Guard, script: list[Any], node: Any = None) -> Any:
    model = ScriptedChatModel(script=[*script, "done"])
    builder = StateGraph(SecureMessagesState)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node(node or GuardedToolNode(TOOLS, guard=guard))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=InMemorySaver())


def start(graph: Any, thread: str) -> tuple[dict[str, Any], dict[str, Any]]:
    config = {"configurable": {"thread_id": thread}}
    return graph.invoke({"messages": [HumanMessage("go")]}, config), config


def tools_out(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m.name, m.status, m.content) for m in result["messages"]
            if isinstance(m, ToolMessage)]


BIG = [[tool_call("pay", id="p1", amount=500, to="ACME"),
        tool_call("lookup", id="l1", key="k")]]


def test_one_interrupt_for_the_batch_with_hitl_shape(guard: Guard) -> None:
    graph = app(guard, [[tool_call("pay", id="p1", amount=500, to="ACME"),
                         tool_call("close_account", id="c1", account="A-1"),
                         tool_call("pay", id="p2", amount=5, to="ACME")]])
    result, config = start(graph, "t1")
    assert RAN == []  # nothing in the batch ran while it waits
    [held] = result["__interrupt__"]
    assert [(a["name"], a["tool_call_id"], a["rule"])
            for a in held.value["action_requests"]] == [
        ("pay", "p1", "tools.pay.approval"),
        ("close_account", "c1", "tools.close_account.approval")]
    assert held.value["action_requests"][0]["description"] == (
        "the policy requires a person's approval for this call (rule tools.pay.approval)")
    result = graph.invoke(Command(resume={"decisions": [approve(), reject("not today")]}), config)
    # the calls of a turn run in parallel threads: which finishes first is not fixed
    assert sorted(RAN) == [("pay", (5, "ACME")), ("pay", (500, "ACME"))]
    assert tools_out(result) == [
        ("pay", "success", "paid 500.0 to ACME"),
        ("close_account", "error",
         "A person rejected the call to 'close_account': not today. Do not retry it."),
        ("pay", "success", "paid 5.0 to ACME")]
    assert result["security"]["tool_calls"] == {"pay": 2}


def test_edit_is_decided_again_and_runs_the_edit(guard: Guard) -> None:
    graph = app(guard, [[tool_call("pay", id="p1", amount=500, to="ACME")]])
    _, config = start(graph, "t2")
    result = graph.invoke(Command(resume={"decisions": [edit("pay", {"amount": 50,
                                                                     "to": "GLOBEX"})],
                                          "reviewer": "ana"}), config)
    assert RAN == [("pay", (50, "GLOBEX"))]
    assert tools_out(result) == [("pay", "success", "paid 50.0 to GLOBEX")]


@pytest.mark.parametrize(("edited", "message"), [
    # the edit breaks an argument constraint: denied, never run
    (edit("pay", {"amount": 5000, "to": "ACME"}),
     "Tool call 'pay' was refused by the security policy (rule tools.pay.args.amount): "
     "argument 'amount' is outside the allowed range"),
    (edit("pay", {"amount": 50, "to": "EVIL"}),
     "Tool call 'pay' was refused by the security policy (rule tools.pay.args.to): "
     "argument 'to' does not match the required pattern"),
    # the edit names a tool the persona may not use
    (edit("wire_transfer", {"amount": 1}),
     "Tool call 'wire_transfer' was refused by the security policy (rule "
     "personas.clerk.tools): tool 'wire_transfer' is not allowed for persona 'clerk'"),
])
def test_an_edit_can_never_launder_a_denied_call(guard: Guard, edited: Any, message: str) -> None:
    graph = app(guard, [[tool_call("pay", id="p1", amount=500, to="ACME")]])
    _, config = start(graph, f"t3-{message[:20]}")
    result = graph.invoke(Command(resume={"decisions": [edited]}), config)
    assert RAN == []
    assert tools_out(result)[0][1:] == ("error", message)


def test_edit_to_another_allowed_tool_runs_it(guard: Guard) -> None:
    graph = app(guard, [[tool_call("close_account", id="c1", account="A-1")]])
    _, config = start(graph, "t4")
    result = graph.invoke(Command(resume={"decisions": [edit("lookup", {"key": "A-1"})]}),
                          config)
    assert RAN == [("lookup", "A-1")]
    assert tools_out(result) == [("lookup", "success", "record")]


def test_edit_that_changes_a_later_call_refuses_it(guard: Guard) -> None:
    # close_account (held) edited into lookup: lookup reads sensitive data, so the small
    # payment after it in the same turn now meets the flow rule nobody reviewed
    graph = app(guard, [[tool_call("close_account", id="c1", account="A-1"),
                         tool_call("pay", id="p1", amount=5, to="ACME")]])
    _, config = start(graph, "t5")
    result = graph.invoke(Command(resume={"decisions": [edit("lookup", {"key": "A-1"})]}),
                          config)
    assert RAN == [("lookup", "A-1")]
    assert tools_out(result)[1] == (
        "pay", "error", "Tool call 'pay' needs a person's approval (rule "
        "flows.no-pay-after-read): this thread has already seen 'reads_sensitive' content "
        "and 'pay' carries the 'writes' label")


@pytest.mark.parametrize(("resume", "error"), [
    ({"decisions": [approve(), approve()]},
     DECISION_COUNT_MESSAGE.format(got=2, expected=1)),
    ({"decisions": []}, DECISION_COUNT_MESSAGE.format(got=0, expected=1)),
    ({"decisions": [{"type": "respond", "message": "x"}]},
     DECISION_NOT_ALLOWED_MESSAGE.format(type="respond", tool="pay",
                                         allowed=["approve", "edit", "reject"])),
    ({"decisions": [{"type": "edit"}]},
     "an edit decision needs edited_action: {'name': str, 'args': {...}}"),
    ("yes", "Resume an approval with {'decisions': [...]}, one decision per action request; "
            "got 'yes'."),
])
def test_bad_resume_values_raise_exact_errors(guard: Guard, resume: Any, error: str) -> None:
    graph = app(guard, [[tool_call("pay", id="p1", amount=500, to="ACME")]])
    _, config = start(graph, f"t6-{error[:15]}-{resume!r:.10}")
    with pytest.raises(ValueError, match=re.escape(error)) as info:
        graph.invoke(Command(resume=resume), config)
    assert str(info.value) == error
    assert RAN == []


def test_reviewer_and_decision_are_audited_once(tmp_path: Path, guard: Guard) -> None:
    audited = Guard(guard.policy, audit=AuditLog(tmp_path / "a.db"))
    graph = app(audited, BIG)
    _, config = start(graph, "t7")
    graph.invoke(Command(resume={"decisions": [approve()], "reviewer": "ana@acme"}), config)
    rows = [json.loads(r[0]) for r in sqlite3.connect(tmp_path / "a.db").execute(
        "SELECT data FROM audit_records ORDER BY seq")]
    assert [(r["kind"], r["tool_call_id"]) for r in rows] == [
        ("intent", "p1"), ("intent", "l1"), ("approval", "p1"),
        ("outcome", "p1"), ("outcome", "l1")]
    approval = rows[2]
    assert (approval["reviewer"], approval["review"], approval["runs"],
            approval["decision"]["action"]) == ("ana@acme", "approve", True, "allow")
    assert rows[0]["decision"]["action"] == "require_approval"


async def test_async_resume(guard: Guard) -> None:
    graph = app(guard, BIG)
    config = {"configurable": {"thread_id": "t8"}}
    result = await graph.ainvoke({"messages": [HumanMessage("go")]}, config)
    assert "__interrupt__" in result
    result = await graph.ainvoke(Command(resume={"decisions": [reject()]}), config)
    assert RAN == [("lookup", "k")]
    assert tools_out(result)[0] == ("pay", "error",
                                    "A person rejected the call to 'pay'. Do not retry it.")


def test_interrupt_inside_a_subgraph(guard: Guard) -> None:
    inner = StateGraph(SecureMessagesState)
    inner.add_node(GuardedToolNode(TOOLS, guard=guard))
    inner.add_edge(START, "tools")
    sub = inner.compile()
    model = ScriptedChatModel(script=BIG)
    outer = StateGraph(SecureMessagesState)
    outer.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    outer.add_node("worker", sub)
    outer.add_edge(START, "agent")
    outer.add_edge("agent", "worker")
    graph = outer.compile(checkpointer=InMemorySaver())
    result, config = start(graph, "t9")
    assert result["__interrupt__"][0].value["action_requests"][0]["tool_call_id"] == "p1"
    result = graph.invoke(Command(resume={"decisions": [approve()]}), config)
    assert sorted(RAN) == [("lookup", "k"), ("pay", (500, "ACME"))]


# -- ApprovalNode with a plain ToolNode ---------------------------------------------------


def plain(guard: Guard, script: list[Any]) -> Any:
    model = ScriptedChatModel(script=[*script, "done"])
    builder = StateGraph(SecureMessagesState)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node(ApprovalNode(guard))
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "approval",
                                                             "__end__": "__end__"})
    builder.add_conditional_edges("approval", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=InMemorySaver())


def test_approval_node_before_a_plain_tool_node(guard: Guard) -> None:
    graph = plain(guard, [[tool_call("pay", id="p1", amount=500, to="ACME"),
                           tool_call("pay", id="p2", amount=5000, to="ACME"),
                           tool_call("lookup", id="l1", key="k")]])
    result, config = start(graph, "a1")
    assert [a["tool_call_id"] for a in result["__interrupt__"][0].value["action_requests"]] == [
        "p1"]
    result = graph.invoke(Command(resume={"decisions": [edit("pay", {"amount": 60,
                                                                     "to": "ACME"})]}), config)
    # the denied call and nothing else was dropped; the edit replaced the model's call
    # (ToolNode runs a turn's calls in parallel threads: the order is not fixed)
    assert sorted(RAN) == [("lookup", "k"), ("pay", (60, "ACME"))]
    ai = next(m for m in result["messages"] if isinstance(m, AIMessage) and m.tool_calls)
    assert [(c["id"], c["args"]) for c in ai.tool_calls] == [
        ("p1", {"amount": 60, "to": "ACME"}), ("l1", {"key": "k"})]
    assert ai.content == ("\n\n[langchain-secure: not run: pay: Tool call 'pay' was refused "
                          "by the security policy (rule tools.pay.args.amount): argument "
                          "'amount' is outside the allowed range]")
    # every tool result answers a call that is still in the AI message
    assert {m.tool_call_id for m in result["messages"] if isinstance(m, ToolMessage)} == {
        "p1", "l1"}


def test_approval_node_passes_allowed_batches_untouched(guard: Guard) -> None:
    graph = plain(guard, [[tool_call("pay", id="p1", amount=5, to="ACME")]])
    result, _ = start(graph, "a2")
    assert "__interrupt__" not in result
    assert RAN == [("pay", (5, "ACME"))]


def test_approval_required_helper(guard: Guard) -> None:
    held = {"messages": [AIMessage("", tool_calls=[tool_call("pay", id="x", amount=500,
                                                             to="ACME")])]}
    fine = {"messages": [AIMessage("", tool_calls=[tool_call("pay", id="x", amount=5,
                                                             to="ACME")])]}
    assert approval_required(held, guard=guard) is True
    assert approval_required(fine, guard=guard) is False
    assert approval_required({"messages": [AIMessage("hi")]}, guard=guard) is False


# -- approvers without a graph --------------------------------------------------------------


def test_wrapped_tool_default_approver_raises(guard: Guard) -> None:
    [safe] = guard.wrap_tools([pay])
    with pytest.raises(ApprovalRequiredError) as info:
        safe.invoke({"amount": 500, "to": "ACME"})
    assert info.value.rule == "tools.pay.approval"
    assert RAN == []


def test_wrapped_tool_with_callable_approver(guard: Guard) -> None:
    seen = []

    def approver(request: Any) -> Any:
        seen.append((request["name"], request["rule"]))
        return edit("pay", {"amount": 90, "to": "ACME"})

    [safe] = guard.wrap_tools([pay], approver=approver)
    assert safe.invoke({"amount": 500, "to": "ACME"}) == "paid 90.0 to ACME"
    assert seen == [("pay", "tools.pay.approval")]
    [rejecting] = guard.wrap_tools([pay], approver=lambda r: reject("no"))
    assert rejecting.invoke({"amount": 500, "to": "ACME"}) == (
        "A person rejected the call to 'pay': no. Do not retry it.")
    assert RAN == [("pay", (90, "ACME"))]


def test_console_approver_reads_the_terminal(guard: Guard) -> None:
    answers = iter(["maybe", "e", "{not json", "e", '{"amount": 10, "to": "GLOBEX"}'])
    out = io.StringIO()
    [safe] = guard.wrap_tools([pay], approver=ConsoleApprover(input=lambda _: next(answers),
                                                              output=out))
    assert safe.invoke({"amount": 500, "to": "ACME"}) == "paid 10.0 to GLOBEX"
    assert "Approval needed: pay(" in out.getvalue()
    assert "not JSON" in out.getvalue()


@pytest.mark.parametrize("node", ["guarded", "approval"])
def test_a_corrected_resume_works_after_bad_ones(guard: Guard, node: str) -> None:
    # LangGraph replays a rejected resume value to the node's first interrupt on every
    # re-run; the node must find the corrected value instead of failing forever
    script = [[tool_call("pay", id="p1", amount=500, to="ACME")]]
    graph = app(guard, script) if node == "guarded" else plain(guard, script)
    _, config = start(graph, f"retry-{node}")
    for bad in ({"decisions": [approve(), approve()]}, {"decisions": [{"type": "nope"}]}):
        with pytest.raises(ValueError, match=r"Number of human decisions|is not allowed"):
            graph.invoke(Command(resume=bad), config)
    assert RAN == []
    result = graph.invoke(Command(resume={"decisions": [approve()]}), config)
    assert RAN == [("pay", (500, "ACME"))]
    assert tools_out(result) == [("pay", "success", "paid 500.0 to ACME")]
