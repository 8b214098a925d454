"""The guard seals every decision before the call runs, and records the outcome."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command, interrupt

from langchain_secure import Guard, GuardedToolNode, SecureMessagesState, load_policy_text
from langchain_secure.audit import AuditLog, SQLiteAuditStore, verify_log
from langchain_secure.errors import AuditError
from langchain_secure.testing import ScriptedChatModel, tool_call
from tests.unit.audit.test_log import BrokenStore

POLICY = """
default_persona: ops
personas:
  ops: {tools: [lookup, login, ask_human, explode]}
tools:
  lookup:
    args: {key: {regex: '[a-z]+'}}
  login:
    audit: {hash_only: [password]}
"""
SEEN_AT_RUN: list[list[dict[str, Any]]] = []
DB: list[Path] = []


def records(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT data FROM audit_records ORDER BY seq").fetchall()
    conn.close()
    return [json.loads(r[0]) for r in rows]


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    SEEN_AT_RUN.append(records(DB[0]))  # what the log held when the tool started
    return f"value of {key}"


@tool
def login(user: str, password: str) -> str:
    """Log in."""
    return "ok"


@tool
def ask_human(question: str) -> str:
    """Ask a person."""
    return str(interrupt(question))


@tool
def explode() -> str:
    """Fail."""
    raise RuntimeError("boom")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    DB[:] = [tmp_path / "audit.db"]
    SEEN_AT_RUN.clear()
    return DB[0]


def graph(guard: Guard, script: list[Any], checkpointer: Any = None, **kw: Any) -> Any:
    model = ScriptedChatModel(script=script, exhausted="stop")
    builder = StateGraph(SecureMessagesState)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node(GuardedToolNode([lookup, login, ask_human, explode], guard=guard, **kw))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def test_intent_is_sealed_before_the_tool_runs(db: Path) -> None:
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(db))
    result = graph(guard, [AIMessage("let me look", tool_calls=[
        tool_call("lookup", id="c1", key="abc"), tool_call("lookup", id="c2", key="ABC")])]
    ).invoke({"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "t1"}})
    # when the allowed call ran, both intents (allowed and denied) were already durable
    [at_run] = SEEN_AT_RUN
    assert [(r["kind"], r["tool_call_id"], r["decision"]["action"]) for r in at_run] == [
        ("intent", "c1", "allow"), ("intent", "c2", "deny")]
    intent = at_run[0]
    assert intent["thread_id"] == "t1"
    assert intent["persona"] == "ops"
    assert intent["args"] == {"key": "abc"}
    assert intent["decision"]["rule"] == "personas.ops.tools.lookup"
    assert intent["message"]["content"] == "let me look"
    after = records(db)
    assert [(r["kind"], r["tool_call_id"]) for r in after] == [
        ("intent", "c1"), ("intent", "c2"), ("outcome", "c1")]
    outcome = after[2]
    assert (outcome["status"], outcome["intent_seq"]) == ("success", 1)
    assert outcome["output"] == {"sha256": hashlib.sha256(b"value of abc").hexdigest(),
                                 "chars": 12}
    assert [m.status for m in result["messages"] if isinstance(m, ToolMessage)] == [
        "success", "error"]
    guard.audit.close()
    assert verify_log(SQLiteAuditStore(db), [guard.audit.public_key]).ok


def test_resume_after_interrupt_writes_nothing_twice(db: Path) -> None:
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(db))
    app = graph(guard, [[tool_call("lookup", id="a", key="x"),
                         tool_call("ask_human", id="b", question="ok?")], "done"],
                checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t-int"}}
    app.invoke({"messages": [HumanMessage("go")]}, config)
    first = [(r["kind"], r["tool_call_id"]) for r in records(db)]
    assert first == [("intent", "a"), ("intent", "b"), ("outcome", "a")]
    app.invoke(Command(resume="yes"), config)  # the node runs again from the start
    assert [(r["kind"], r["tool_call_id"]) for r in records(db)] == [*first, ("outcome", "b")]


def test_exception_in_tool_is_recorded_then_raised(db: Path) -> None:
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(db))
    app = graph(guard, [[tool_call("explode", id="e")]], handle_tool_errors=False)
    with pytest.raises(RuntimeError, match="boom"):
        app.invoke({"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "t"}})
    assert [(r["kind"], r.get("status")) for r in records(db)] == [
        ("intent", None), ("outcome", "raised")]


def test_hash_only_arguments_never_stored_in_clear(db: Path) -> None:
    log = AuditLog(db)
    guard = Guard(load_policy_text(POLICY), audit=log)
    graph(guard, [[tool_call("login", id="l", user="ada", password="hunter2")]]).invoke(
        {"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "t"}})
    raw = db.read_bytes() + Path(str(db) + "-wal").read_bytes()
    assert b"hunter2" not in raw
    args = records(db)[0]["args"]
    assert args["user"] == "ada"
    assert args["password"] == log.keyed_hash("hunter2")
    assert args["password"].startswith("hmac-sha256:")


def test_audit_failure_fails_closed(tmp_path: Path) -> None:
    broken = AuditLog(BrokenStore(tmp_path / "b.db"), signing_key=Ed25519PrivateKey.generate())
    guard = Guard(load_policy_text(POLICY), audit=broken)
    DB[:] = [tmp_path / "unused.db"]
    SEEN_AT_RUN.clear()
    with pytest.raises(AuditError, match="disk full"):
        graph(guard, [[tool_call("lookup", id="c", key="abc")]]).invoke(
            {"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "t"}})
    assert SEEN_AT_RUN == []  # the tool never ran


def test_audit_failure_can_fail_open_loudly(tmp_path: Path, db: Path) -> None:
    broken = AuditLog(BrokenStore(tmp_path / "b.db"), signing_key=Ed25519PrivateKey.generate())
    sqlite3.connect(db).executescript(
        "CREATE TABLE audit_records (seq INTEGER, data TEXT);")  # for the tool's look
    guard = Guard(load_policy_text(POLICY), audit=broken, audit_fail_open=True)
    with pytest.warns(RuntimeWarning, match="AUDIT LOG NOT WRITTEN, running the action anyway"):
        result = graph(guard, [[tool_call("lookup", id="c", key="abc")]]).invoke(
            {"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "t"}})
    assert [m.content for m in result["messages"] if isinstance(m, ToolMessage)] == [
        "value of abc"]


async def test_async_graph_seals_too(db: Path) -> None:
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(db))
    await graph(guard, [[tool_call("lookup", id="c1", key="abc")]]).ainvoke(
        {"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "ta"}})
    assert [r["kind"] for r in SEEN_AT_RUN[0]] == ["intent"]
    assert [r["kind"] for r in records(db)] == ["intent", "outcome"]


def test_wrapped_tools_are_audited(db: Path) -> None:
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(db))
    [safe] = guard.wrap_tools([lookup])
    config = {"configurable": {"thread_id": "w"}}
    assert safe.invoke({"key": "abc"}, config) == "value of abc"
    assert safe.invoke({"key": "A B"}, config).startswith("Tool call 'lookup' was refused")
    assert [(r["kind"], r["decision"]["action"] if "decision" in r else r["status"])
            for r in records(db)] == [("intent", "allow"), ("outcome", "success"),
                                      ("intent", "deny")]


def test_secrets_found_in_arguments_and_messages_are_stored_hashed(db: Path) -> None:
    log = AuditLog(db)
    guard = Guard(load_policy_text(POLICY), audit=log)
    token = "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"
    graph(guard, [AIMessage(f"using {token}", tool_calls=[
        tool_call("lookup", id="s1", key="abc"),
        tool_call("login", id="s2", user=f"ada with key {token}", password="x")])]).invoke(
        {"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "sec"}})
    raw = db.read_bytes() + Path(str(db) + "-wal").read_bytes()
    assert token.encode() not in raw
    intent = records(db)[1]
    assert intent["args"]["user"] == f"ada with key [secret {log.keyed_hash(token)}]"
    assert intent["message"]["content"] == f"using [secret {log.keyed_hash(token)}]"


def test_redact_secrets_false_keeps_arguments(db: Path) -> None:
    log = AuditLog(db)
    guard = Guard(load_policy_text(POLICY + "audit: {redact_secrets: false}\n"), audit=log)
    token = "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"
    graph(guard, [[tool_call("lookup", id="s1", key=token)]]).invoke(
        {"messages": [HumanMessage("go")]}, {"configurable": {"thread_id": "sec2"}})
    assert records(db)[0]["args"] == {"key": token}
