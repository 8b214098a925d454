"""The same calls get the same decisions on every surface.

One scenario table runs through (a) ``GuardedToolNode`` in a ``StateGraph``,
(b) ``create_agent`` with ``SecurityMiddleware`` and (c) ``guard.callbacks()``
on plain tool invocation. (a) and (b) must agree on every decision, every tool
message (status and text) and every audit record; (c) aborts by raising, so it
is compared on the decisions' ``(action, rule)`` only.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from langchain_secure import (
    Guard,
    GuardedToolNode,
    PolicyDecisionError,
    SecureMessagesState,
    load_policy_text,
)
from langchain_secure.approval import approve, edit, reject
from langchain_secure.audit import AuditLog
from langchain_secure.integrations.middleware import SecurityMiddleware
from langchain_secure.policy.engine import Decision
from langchain_secure.testing import ScriptedChatModel, tool_call

POLICY = """
default_persona: analyst
personas:
  analyst:
    tools: [search, read_file, send_email, run_sql, fetch_url, set_mode, refund, scale]
  intern:
    tools: [search]
tools:
  search: {max_calls_per_thread: 2}
  read_file:
    labels: [reads_sensitive]
    args: {path: {path: {allow: ["/srv/reports/**"], resolve_symlinks: false}}}
  send_email:
    labels: [egress]
    args:
      to: {regex: '[a-z0-9._-]+@example\\.com'}
      body: {max_length: 200}
  run_sql:
    args: {query: {sql: read_only}}
  fetch_url:
    labels: [untrusted_source]
    args: {url: {url: {hosts: [docs.example.com], schemes: [https]}}}
  set_mode:
    args: {mode: {enum: [fast, thorough]}}
  refund:
    labels: [writes]
    args: {amount: {range: {min: 0, max: 1000}}}
    approval:
      when:
        - args: {amount: {range: {min: 100}}}
  scale:
    args: {factor: {callable: "math:isfinite"}}
flows:
  - id: no-exfiltration
    after: [reads_sensitive]
    then: [egress]
    action: require_approval
  - id: no-writes-after-untrusted
    after: [untrusted_source]
    then: [writes]
    action: deny
"""


@tool
def search(q: str) -> str:
    """Search the docs."""
    return f"results for {q}"


@tool
def read_file(path: str) -> str:
    """Read a report."""
    return f"contents of {path}"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}"


@tool
def run_sql(query: str) -> str:
    """Run a SQL query."""
    return "3 rows"


@tool
def fetch_url(url: str) -> str:
    """Fetch a page."""
    return "page text"


@tool
def set_mode(mode: str) -> str:
    """Set the search mode."""
    return f"mode {mode}"


@tool
def refund(amount: float) -> str:
    """Refund a customer."""
    return f"refunded {amount}"


@tool
def scale(factor: float) -> str:
    """Scale the chart."""
    return f"scaled by {factor}"


TOOLS = [search, read_file, send_email, run_sql, fetch_url, set_mode, refund, scale]
BY_NAME = {t.name: t for t in TOOLS}


@dataclass(frozen=True)
class Scenario:
    """Model turns (each a list of (tool, args)), reviewers' answers, persona."""

    id: str
    turns: list[list[tuple[str, dict[str, Any]]]]
    reviews: list[Any] = field(default_factory=list)
    persona: str | None = None
    # expected (action, rule) per decided call, in order (first decision of each call)
    expected: list[tuple[str, str]] = field(default_factory=list)


REPORT = ("read_file", {"path": "/srv/reports/q1.txt"})
MAIL = ("send_email", {"to": "boss@example.com", "body": "q1"})

SCENARIOS = [
    Scenario("allow", [[("search", {"q": "refunds"})]],
             expected=[("allow", "personas.analyst.tools.search")]),
    Scenario("outside-persona", [[REPORT]], persona="intern",
             expected=[("deny", "personas.intern.tools")]),
    Scenario("regex", [[("send_email", {"to": "x@evil.com", "body": "hi"})]],
             expected=[("deny", "tools.send_email.args.to")]),
    Scenario("path-glob", [[("read_file", {"path": "/etc/passwd"})]],
             expected=[("deny", "tools.read_file.args.path")]),
    Scenario("enum", [[("set_mode", {"mode": "turbo"})]],
             expected=[("deny", "tools.set_mode.args.mode")]),
    Scenario("range", [[("refund", {"amount": 5000})]],
             expected=[("deny", "tools.refund.args.amount")]),
    Scenario("max-length", [[("send_email", {"to": "a@example.com", "body": "x" * 201})]],
             expected=[("deny", "tools.send_email.args.body")]),
    Scenario("url-host", [[("fetch_url", {"url": "https://evil.example.net/"})]],
             expected=[("deny", "tools.fetch_url.args.url")]),
    Scenario("sql-read-only", [[("run_sql", {"query": "DELETE FROM users"})]],
             expected=[("deny", "tools.run_sql.args.query")]),
    Scenario("callable", [[("scale", {"factor": float("inf")})]],
             expected=[("deny", "tools.scale.args.factor")]),
    Scenario("flow-across-turns-approved", [[REPORT], [MAIL]], [{"decisions": [approve()]}],
             expected=[("allow", "personas.analyst.tools.read_file"),
                       ("require_approval", "flows.no-exfiltration")]),
    Scenario("flow-within-batch-rejected", [[REPORT, MAIL]], [{"decisions": [reject("no")]}],
             expected=[("allow", "personas.analyst.tools.read_file"),
                       ("require_approval", "flows.no-exfiltration")]),
    Scenario("flow-deny-after-untrusted",
             [[("fetch_url", {"url": "https://docs.example.com/a"})], [("refund", {"amount": 5})]],
             expected=[("allow", "personas.analyst.tools.fetch_url"),
                       ("deny", "flows.no-writes-after-untrusted")]),
    Scenario("approval-approved", [[("refund", {"amount": 500})]],
             [{"decisions": [approve()], "reviewer": "ana"}],
             expected=[("require_approval", "tools.refund.approval")]),
    Scenario("approval-rejected", [[("refund", {"amount": 500})]],
             [{"decisions": [reject()], "reviewer": "ana"}],
             expected=[("require_approval", "tools.refund.approval")]),
    Scenario("edit-denied", [[("refund", {"amount": 500})]],
             [{"decisions": [edit("refund", {"amount": 5000})]}],
             expected=[("require_approval", "tools.refund.approval")]),
    Scenario("budget", [[("search", {"q": "a"})], [("search", {"q": "b"})],
                        [("search", {"q": "c"})]],
             expected=[("allow", "personas.analyst.tools.search")] * 2
             + [("deny", "tools.search.max_calls_per_thread")]),
]


@dataclass
class Run:
    decisions: list[Decision]
    messages: list[tuple[str | None, str, str]]
    audit: list[tuple[Any, ...]]
    interrupts: int


def _script(scenario: Scenario) -> list[Any]:
    return [[tool_call(name, id=f"c{t}{i}", **args) for i, (name, args) in enumerate(turn)]
            for t, turn in enumerate(scenario.turns)] + ["done"]


def _audit(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    rows = [json.loads(r[0]) for r in conn.execute("SELECT data FROM audit_records ORDER BY seq")]
    conn.close()
    out = []
    for r in rows:
        what = (r["decision"]["action"], r["decision"]["rule"]) if "decision" in r else \
            r.get("status")
        out.append((r["kind"], r["tool_call_id"], r["tool"], what, r.get("review"),
                    json.dumps(r.get("args"), sort_keys=True)))
    return out


def _drive(app: Any, scenario: Scenario, thread: str) -> tuple[dict[str, Any], int]:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    if scenario.persona:
        config["configurable"]["persona"] = scenario.persona
    result = app.invoke({"messages": [HumanMessage("go")]}, config)
    reviews, interrupts = list(scenario.reviews), 0
    while "__interrupt__" in result:
        interrupts += 1
        result = app.invoke(Command(resume=reviews.pop(0)), config)
    assert reviews == []
    return result, interrupts


def _messages(result: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [(m.name, m.status, m.content) for m in result["messages"]
            if isinstance(m, ToolMessage)]


def run_node(scenario: Scenario, db: Path) -> Run:
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(db))
    seen: list[Decision] = []
    guard.subscribe(seen.append)
    model = ScriptedChatModel(script=_script(scenario))
    builder = StateGraph(SecureMessagesState)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node(GuardedToolNode(TOOLS, guard=guard))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    result, interrupts = _drive(builder.compile(checkpointer=InMemorySaver()), scenario,
                                f"node-{scenario.id}")
    guard.close()
    return Run(seen, _messages(result), _audit(db), interrupts)


def run_middleware(scenario: Scenario, db: Path) -> Run:
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(db))
    seen: list[Decision] = []
    guard.subscribe(seen.append)
    agent = create_agent(ScriptedChatModel(script=_script(scenario)), TOOLS,
                         middleware=[SecurityMiddleware(guard)], checkpointer=InMemorySaver())
    result, interrupts = _drive(agent, scenario, f"mw-{scenario.id}")
    guard.close()
    return Run(seen, _messages(result), _audit(db), interrupts)


def run_callbacks(scenario: Scenario) -> list[Decision]:
    guard = Guard(load_policy_text(POLICY))
    seen: list[Decision] = []
    guard.subscribe(seen.append)
    answers = [d for review in scenario.reviews for d in review["decisions"]]
    handler = guard.callbacks(persona=scenario.persona, approver=lambda _: answers.pop(0))
    for turn in scenario.turns:
        for name, args in turn:
            # callbacks abort by raising; the next call goes on
            with contextlib.suppress(PolicyDecisionError):
                BY_NAME[name].invoke(args, {"callbacks": [handler],
                                            "metadata": {"thread_id": f"cb-{scenario.id}"}})
    return seen


def _first_per_call(decisions: list[Decision]) -> list[tuple[str, str]]:
    seen: set[str | None] = set()
    out = []
    for d in decisions:
        if d.tool_call_id not in seen:
            seen.add(d.tool_call_id)
            out.append((d.action.value, d.rule))
    return out


def _sorted_outcomes(records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Calls of one turn run in parallel on both surfaces: their outcomes in id order."""
    out: list[tuple[Any, ...]] = []
    block: list[tuple[Any, ...]] = []
    for r in [*records, ("end",)]:
        if r[0] == "outcome":
            block.append(r)
            continue
        out += sorted(block, key=lambda x: str(x[1]))
        block = []
        if r[0] != "end":
            out.append(r)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_node_middleware_and_callbacks_agree(scenario: Scenario, tmp_path: Path) -> None:
    node = run_node(scenario, tmp_path / "node.db")
    middleware = run_middleware(scenario, tmp_path / "mw.db")
    callbacks = run_callbacks(scenario)
    # the decisions, as surfaces acted on them (re-decided on resume on both graphs)
    assert [(d.tool_call_id, d.action.value, d.rule) for d in middleware.decisions] == [
        (d.tool_call_id, d.action.value, d.rule) for d in node.decisions]
    assert _first_per_call(node.decisions) == scenario.expected
    assert [(d.action.value, d.rule) for d in callbacks] == scenario.expected
    # what the model saw, word for word, and how often a person was asked
    assert middleware.messages == node.messages
    assert middleware.interrupts == node.interrupts == len(scenario.reviews)
    # the audit trail: same records, same kinds, same order
    assert _sorted_outcomes(middleware.audit) == _sorted_outcomes(node.audit)


def test_the_table_covers_every_kind_of_decision() -> None:
    rules = {rule for s in SCENARIOS for _, rule in s.expected}
    assert {r.rsplit(".", 1)[-1] for r in rules if ".args." in r} == {
        "to", "path", "mode", "amount", "body", "url", "query", "factor"}
    assert len(SCENARIOS) >= 10


def test_refusal_texts_equal_guard_refusal_message(tmp_path: Path) -> None:
    [scenario] = [s for s in SCENARIOS if s.id == "regex"]
    run = run_middleware(scenario, tmp_path / "a.db")
    guard = Guard(load_policy_text(POLICY))
    [decision] = run.decisions
    assert run.messages == [("send_email", "error", guard.refusal_message(decision))]
