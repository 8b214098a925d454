"""GuardedToolNode as a drop-in ToolNode, in real LangGraph graphs."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

from langchain_secure import (
    Guard,
    GuardedToolNode,
    SecureMessagesState,
    SecurityState,
    ToolNotAllowedError,
    merge_security_state,
)
from langchain_secure.errors import ConfigurationError
from langchain_secure.testing import ScriptedChatModel, tool_call

RAN: list[str] = []


@tool
def search(q: str = "") -> str:
    """Search the docs."""
    RAN.append("search")
    return f"results for {q}"


@tool
def read_file(path: str) -> str:
    """Read a report."""
    RAN.append("read_file")
    return f"contents of {path}"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    RAN.append("send_email")
    return f"sent to {to}"


@tool
def refund(amount: float) -> str:
    """Refund a customer."""
    RAN.append("refund")
    return f"refunded {amount}"


@tool
def ask_human(question: str) -> str:
    """Ask a person (interrupts the graph)."""
    return str(interrupt({"question": question}))


TOOLS = [search, read_file, send_email, refund, ask_human]


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def build(guard: Guard, script: list[Any], *, state: type = SecureMessagesState,
          checkpointer: Any = None, **node_kwargs: Any) -> Any:
    model = ScriptedChatModel(script=script, exhausted="stop")

    def agent(s: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(s["messages"])]}

    builder = StateGraph(state)
    builder.add_node("agent", agent)
    builder.add_node(GuardedToolNode(TOOLS, guard=guard, **node_kwargs))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def pending(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(tool, rule) of each call an interrupt holds for approval."""
    [held] = result["__interrupt__"]
    return [(a["name"], a["rule"]) for a in held.value["action_requests"]]


def tool_messages(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m.name, m.status, m.content) for m in result["messages"]
            if isinstance(m, ToolMessage)]


EXFIL = [
    [tool_call("read_file", path="/srv/reports/q1.txt")],
    [tool_call("send_email", to="boss@example.com", body="q1")],
    "done",
]


def test_is_a_tool_node_named_tools(guard: Guard) -> None:
    node = GuardedToolNode(TOOLS, guard=guard)
    assert isinstance(node, ToolNode)
    assert node.name == "tools"
    assert set(node.tools_by_name) == {"search", "read_file", "send_email", "refund",
                                       "ask_human"}


def test_allowed_call_runs(guard: Guard) -> None:
    graph = build(guard, [[tool_call("search", q="refunds")], "ok"])
    result = graph.invoke({"messages": [HumanMessage("hi")]})
    assert tool_messages(result) == [("search", "success", "results for refunds")]
    assert RAN == ["search"]
    assert result["security"] == {"labels": [], "tool_calls": {"search": 1}, "total_calls": 1}


def test_denied_call_becomes_error_message_and_does_not_run(guard: Guard) -> None:
    graph = build(guard, [[tool_call("read_file", path="/etc/shadow")], "ok"])
    result = graph.invoke({"messages": [HumanMessage("hi")]})
    assert RAN == []
    assert tool_messages(result) == [(
        "read_file", "error",
        "Tool call 'read_file' was refused by the security policy (rule "
        "tools.read_file.args.path): argument 'path' is outside the allowed paths",
    )]
    assert result["security"] == {"labels": [], "tool_calls": {}, "total_calls": 0}


def test_tool_outside_persona(guard: Guard) -> None:
    graph = build(guard, [[tool_call("refund", amount=5)], "ok"])
    result = graph.invoke({"messages": [HumanMessage("hi")]},
                          {"configurable": {"persona": "intern"}})
    assert RAN == []
    assert tool_messages(result) == [(
        "refund", "error",
        "Tool call 'refund' was refused by the security policy (rule personas.intern.tools): "
        "tool 'refund' is not allowed for persona 'intern'",
    )]


def test_flow_across_turns_uses_graph_state(guard: Guard) -> None:
    app = build(guard, EXFIL, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "flow-1"}}
    result = app.invoke({"messages": [HumanMessage("hi")]}, config)
    assert RAN == ["read_file"]
    [held] = result["__interrupt__"]
    assert held.value["action_requests"] == [{
        "name": "send_email", "args": {"to": "boss@example.com", "body": "q1"},
        "description": "data read from reports may not leave without a person's approval "
                       "(rule flows.no-exfiltration)",
        "tool_call_id": "call_1_0", "rule": "flows.no-exfiltration",
        "reason": "data read from reports may not leave without a person's approval",
        "persona": "analyst", "risk": None, "receipt": None}]
    assert held.value["review_configs"] == [{"action_name": "send_email",
                                             "allowed_decisions": ["approve", "edit",
                                                                   "reject"]}]
    assert app.get_state(config).values["security"]["labels"] == ["reads_sensitive"]


def test_flow_state_persists_in_checkpointer(guard: Guard) -> None:
    saver = InMemorySaver()
    config = {"configurable": {"thread_id": "t-1"}}
    graph = build(guard, [[tool_call("read_file", path="/srv/reports/a")], "read it",
                          [tool_call("send_email", to="x@example.com", body="a")], "ok"],
                  checkpointer=saver)
    graph.invoke({"messages": [HumanMessage("read")]}, config)
    result = graph.invoke({"messages": [HumanMessage("now mail it")]}, config)
    assert RAN == ["read_file"]
    assert pending(result) == [("send_email", "flows.no-exfiltration")]
    assert graph.get_state(config).values["security"]["labels"] == ["reads_sensitive"]


def test_state_without_security_key_uses_guard_memory(guard: Guard) -> None:
    config = {"configurable": {"thread_id": "mem-1"}}
    graph = build(guard, EXFIL, state=MessagesState, checkpointer=InMemorySaver())
    result = graph.invoke({"messages": [HumanMessage("hi")]}, config)
    assert RAN == ["read_file"]
    assert "security" not in result
    assert pending(result) == [("send_email", "flows.no-exfiltration")]
    assert guard.thread_state("mem-1")["labels"] == ["reads_sensitive"]


def test_no_security_channel_and_no_thread_id_is_refused(guard: Guard) -> None:
    from langchain_secure.integrations.nodes import NO_THREAD_MESSAGE

    graph = build(guard, EXFIL, state=MessagesState)
    with pytest.raises(ConfigurationError) as info:
        graph.invoke({"messages": [HumanMessage("hi")]})
    assert str(info.value) == NO_THREAD_MESSAGE.format(key="security")
    assert RAN == []


def test_batch_in_one_turn(guard: Guard) -> None:
    graph = build(guard, [[tool_call("read_file", path="/srv/reports/q1.txt"),
                           tool_call("send_email", to="boss@example.com", body="q1"),
                           tool_call("search", q="x")], "ok"], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "batch-1"}}
    result = graph.invoke({"messages": [HumanMessage("hi")]}, config)
    # the email meets the flow rule inside the turn: the whole batch waits for review
    assert RAN == []
    assert pending(result) == [("send_email", "flows.no-exfiltration")]
    result = graph.invoke(Command(resume={"decisions": [{"type": "reject"}]}), config)
    assert sorted(RAN) == ["read_file", "search"]
    assert [(n, s) for n, s, _ in tool_messages(result)] == [
        ("read_file", "success"), ("send_email", "error"), ("search", "success")]
    assert result["security"] == {"labels": ["reads_sensitive"],
                                  "tool_calls": {"read_file": 1, "search": 1},
                                  "total_calls": 2}


def test_on_deny_raise(guard: Guard) -> None:
    graph = build(guard, [[tool_call("search", q="a"),
                           tool_call("read_file", path="/etc/passwd")], "ok"],
                  on_deny="raise")
    with pytest.raises(ToolNotAllowedError) as info:
        graph.invoke({"messages": [HumanMessage("hi")]})
    err = info.value
    assert (err.tool, err.persona, err.rule) == ("read_file", "analyst",
                                                 "tools.read_file.args.path")
    assert RAN == []  # nothing in the batch ran


def test_fixed_persona_beats_config(guard: Guard) -> None:
    graph = build(guard, [[tool_call("read_file", path="/srv/reports/a")], "ok"],
                  persona="intern")
    result = graph.invoke({"messages": [HumanMessage("hi")]},
                          {"configurable": {"persona": "analyst"}})
    assert tool_messages(result)[0][2].endswith("tool 'read_file' is not allowed for "
                                                "persona 'intern'")


def test_persona_from_runtime_context(guard: Guard) -> None:
    from dataclasses import dataclass

    @dataclass
    class Ctx:
        persona: str

    model = ScriptedChatModel(script=[[tool_call("refund", amount=5)], "ok"])
    builder = StateGraph(SecureMessagesState, context_schema=Ctx)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node(GuardedToolNode(TOOLS, guard=guard))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    result = builder.compile().invoke({"messages": [HumanMessage("hi")]},
                                      context=Ctx(persona="support"))
    assert tool_messages(result) == [("refund", "success", "refunded 5.0")]


def test_unregistered_tool_message_lists_nothing(guard: Guard) -> None:
    # allowed by the policy (analyst may fetch_url) but not given to the node
    graph = build(guard, [[tool_call("fetch_url", url="https://docs.example.com/")], "ok"])
    result = graph.invoke({"messages": [HumanMessage("hi")]})
    assert tool_messages(result) == [("fetch_url", "error",
                                      "Error: tool 'fetch_url' is not available.")]


def test_interrupt_inside_allowed_tool_propagates(guard: Guard) -> None:
    from langchain_secure import load_policy_text

    g = Guard(load_policy_text("default_persona: p\npersonas: {p: {tools: [ask_human]}}\n"))
    graph = build(g, [[tool_call("ask_human", question="ok?")], "done"],
                  checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "i-1"}}
    result = graph.invoke({"messages": [HumanMessage("hi")]}, config)
    assert result["__interrupt__"][0].value == {"question": "ok?"}
    result = graph.invoke(Command(resume="yes"), config)
    assert tool_messages(result) == [("ask_human", "success", "yes")]


@pytest.mark.parametrize("handle", [True, False, "custom text"])
def test_interrupt_propagates_for_every_error_mode(guard: Guard, handle: Any) -> None:
    from langchain_secure import load_policy_text

    g = Guard(load_policy_text("default_persona: p\npersonas: {p: {tools: [ask_human]}}\n"))
    node = GuardedToolNode([ask_human], guard=g, handle_tool_errors=handle)
    builder = StateGraph(SecureMessagesState)
    builder.add_node(node)
    builder.add_edge(START, "tools")
    graph = builder.compile(checkpointer=InMemorySaver())
    msg = AIMessage("", tool_calls=[tool_call("ask_human", id="c", question="q")])
    config = {"configurable": {"thread_id": f"h-{handle}"}}
    result = graph.invoke({"messages": [msg]}, config)
    assert "__interrupt__" in result


async def test_async_agrees_with_sync(guard: Guard) -> None:
    script = [[tool_call("read_file", path="/srv/reports/q1.txt"),
               tool_call("read_file", path="/srv/../etc/passwd"),
               tool_call("send_email", to="boss@example.com", body="q1")],
              [tool_call("run_sql", query="SELECT 1")], "ok"]
    sync = build(guard, script).invoke({"messages": [HumanMessage("hi")]})
    RAN.clear()
    asynchronous = await build(guard, script).ainvoke({"messages": [HumanMessage("hi")]})
    assert tool_messages(asynchronous) == tool_messages(sync)
    assert asynchronous["security"] == sync["security"]


def test_create_react_agent_accepts_guarded_node(guard: Guard) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        model = ScriptedChatModel(script=EXFIL)
        agent = create_react_agent(model, GuardedToolNode(TOOLS, guard=guard),
                                   checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "react-1"}}
    result = agent.invoke({"messages": [HumanMessage("hi")]}, config)
    assert RAN == ["read_file"]
    assert pending(result) == [("send_email", "flows.no-exfiltration")]
    result = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    assert RAN == ["read_file", "send_email"]
    assert [(n, s) for n, s, _ in tool_messages(result)] == [
        ("read_file", "success"), ("send_email", "success")]


def test_custom_security_key(guard: Guard) -> None:
    class State(MessagesState):
        sec: Annotated[SecurityState, merge_security_state]

    graph = build(guard, EXFIL, state=State, security_key="sec", checkpointer=InMemorySaver())
    result = graph.invoke({"messages": [HumanMessage("hi")]},
                          {"configurable": {"thread_id": "sec-1"}})
    assert result["sec"]["labels"] == ["reads_sensitive"]
    assert pending(result) == [("send_email", "flows.no-exfiltration")]


def test_bad_options(guard: Guard) -> None:
    with pytest.raises(ConfigurationError):
        GuardedToolNode(TOOLS, guard="not a guard")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        GuardedToolNode(TOOLS, guard=guard, on_deny="ignore")  # type: ignore[arg-type]


def test_send_api_tool_call_with_context(guard: Guard) -> None:
    from langgraph.types import Send

    model = ScriptedChatModel(script=[[tool_call("read_file", path="/srv/reports/a"),
                                       tool_call("read_file", path="/etc/shadow"),
                                       tool_call("send_email", to="a@example.com", body="x")],
                                      "ok"])

    def agent(s: Any) -> dict[str, Any]:
        return {"messages": [model.invoke(s["messages"])]}

    def route(s: Any) -> Any:
        last = s["messages"][-1]
        if not last.tool_calls:
            return "__end__"
        return [Send("tools", {"__type": "tool_call_with_context", "tool_call": c,
                               "state": s}) for c in last.tool_calls]

    builder = StateGraph(SecureMessagesState)
    builder.add_node("agent", agent)
    builder.add_node(GuardedToolNode(TOOLS, guard=guard))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", "__end__"])
    builder.add_edge("tools", "agent")
    app = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "send-1"}}
    result = app.invoke({"messages": [HumanMessage("hi")]}, config)
    # decided after the read of the same turn, although it runs in its own Send
    assert pending(result) == [("send_email", "flows.no-exfiltration")]
    result = app.invoke(Command(resume={"decisions": [{"type": "reject"}]}), config)
    assert sorted((n, s, c.split(":")[0]) for n, s, c in tool_messages(result)) == [
        ("read_file", "error", "Tool call 'read_file' was refused by the security policy "
                               "(rule tools.read_file.args.path)"),
        ("read_file", "success", "contents of /srv/reports/a"),
        ("send_email", "error", "A person rejected the call to 'send_email'. Do not retry it."),
    ]
    assert RAN == ["read_file"]
    # each Send charges only its own call; the deltas meet in the reducer
    assert result["security"] == {"labels": ["reads_sensitive"],
                                  "tool_calls": {"read_file": 1}, "total_calls": 1}
