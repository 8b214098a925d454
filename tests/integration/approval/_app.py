"""One guarded agent, run in separate processes to pause and to resume.

python -m tests.integration.approval._app CHECKPOINTER AUDIT_DB start|approve|reject THREAD
CHECKPOINTER is a SQLite file path or a postgresql:// URL. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from langchain_secure import Guard, GuardedToolNode, SecureMessagesState, load_policy_text
from langchain_secure.audit import AuditLog
from langchain_secure.testing import ScriptedChatModel, tool_call

POLICY = """
default_persona: support
personas: {support: {tools: [refund]}}
tools:
  refund:
    args: {amount: {range: {min: 0, max: 1000}}}
    approval: {when: [{args: {amount: {range: {min: 100}}}}]}
"""


@tool
def refund(order: str, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order} in process {__import__('os').getpid()}"


@contextmanager
def checkpointer(spec: str) -> Any:
    if spec.startswith("postgresql://"):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(spec) as saver:
            saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(spec) as saver:
            yield saver


def main() -> None:
    spec, audit_db, action, thread = sys.argv[1:5]
    guard = Guard(load_policy_text(POLICY), audit=AuditLog(audit_db))
    model = ScriptedChatModel(script=[[tool_call("refund", id="r1", order="A-7", amount=480)],
                                      "Refund done."])
    builder = StateGraph(SecureMessagesState)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node(GuardedToolNode([refund], guard=guard))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    config = {"configurable": {"thread_id": thread}}
    with checkpointer(spec) as saver:
        graph = builder.compile(checkpointer=saver)
        if action == "start":
            result = graph.invoke({"messages": [HumanMessage("refund A-7")]}, config)
        else:
            answer = {"type": "approve"} if action == "approve" else {"type": "reject",
                                                                       "message": "too much"}
            result = graph.invoke(Command(resume={"decisions": [answer],
                                                  "reviewer": "ana"}), config)
    guard.close()
    print(json.dumps({
        "interrupt": [i.value for i in result.get("__interrupt__", [])],
        "tools": [[m.status, m.content] for m in result["messages"]
                  if isinstance(m, ToolMessage)],
    }))


if __name__ == "__main__":
    main()
