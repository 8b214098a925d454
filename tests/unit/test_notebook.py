"""The notebook helpers, and every notebook in notebooks/ executed top to bottom."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import tools_condition
from nbclient import NotebookClient

from langchain_secure import Guard, GuardedToolNode, SecureMessagesState, load_policy_text
from langchain_secure.audit import AuditLog
from langchain_secure.notebook import (
    ApprovalPanel,
    DecisionsTable,
    decisions_table,
    pending_approvals,
)
from langchain_secure.testing import ScriptedChatModel, tool_call

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NEEDS_KEY = "needs-key"

SKIPPED = {  # the cells tagged needs-key (a real LLM or a cloud key), by notebook
    "01_callbacks_on_an_existing_chain": ["nb01-real-model"],
    "02_guarded_agent_with_approval": [],
    "03_writing_and_testing_a_policy": ["nb03-real-model"],
    "04_sandboxed_code": ["nb04-e2b"],
}

KEY_LINES = {  # exact lines each notebook must print when run without those cells
    "01_callbacks_on_an_existing_chain": [
        "PromptInjectionError: door=input source=user risk=0.90",
        "ToolNotAllowedError: rule=tools.send_email.args.to: argument 'to' does not match "
        "the required pattern",
        "PromptInjectionError: door=documents source=forum/4242 risk=0.90",
        "ticket-4711: labels=['reads_sensitive', 'egress', 'untrusted'] "
        "calls={'lookup_order': 1, 'send_email': 1}",
    ],
    "02_guarded_agent_with_approval": [
        "refund {'order': 'A-7', 'amount': 480} -> the policy requires a person's approval "
        "for this call (tools.refund.approval)",
        "refund: success: refunded 480.00 on order A-7",
        "intact - 5 records",  # 2 intents, 1 approval, 2 outcomes
    ],
    "03_writing_and_testing_a_policy": [
        "line 5: personas.analyst.colour: unknown key 'colour'",
        "line 17: tools.send_email.args.to.regex: invalid regular expression: missing ), "
        "unterminated subpattern at position 17",
        "rule:     flows.no-exfiltration",
        "7 policy cases pass",
    ],
    "04_sandboxed_code": [
        "mean of [3, 1, 4, 1, 5]",
        "read /etc/shadow: blocked (FileNotFoundError)",
        "host secret visible: False",
        "[error] TimeoutError: the code ran longer than 5 s and was killed; the session was "
        "restarted and its variables are lost",
    ],
}

NEEDS_BWRAP = {"04_sandboxed_code"}


@tool
def refund(order: str, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


def paused(tmp_path: Path) -> tuple[Any, dict[str, Any], Guard]:
    guard = Guard(load_policy_text(
        "default_persona: s\npersonas: {s: {tools: [refund]}}\n"
        "tools: {refund: {approval: always, args: {amount: {range: {max: 1000}}}}}\n"),
        audit=AuditLog(tmp_path / "a.db"))
    model = ScriptedChatModel(script=[[tool_call("refund", id="r", order="A", amount=480)],
                                      "done"])
    builder = StateGraph(SecureMessagesState)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node(GuardedToolNode([refund], guard=guard))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "nb"}}
    graph.invoke({"messages": [HumanMessage("go")]}, config)
    return graph, config, guard


def test_pending_approvals_reads_the_checkpoint(tmp_path: Path) -> None:
    graph, config, _ = paused(tmp_path)
    [action] = pending_approvals(graph, config)
    assert (action["name"], action["args"], action["rule"]) == (
        "refund", {"order": "A", "amount": 480}, "tools.refund.approval")


@pytest.mark.parametrize(("button", "expected"), [
    ("Approve", ("success", "refunded 480.0 on A")),
    ("Reject", ("error", "A person rejected the call to 'refund' (me). Do not retry it.")),
])
def test_clicking_a_button_resumes_the_graph(tmp_path: Path, button: str,
                                             expected: tuple[str, str]) -> None:
    graph, config, _guard = paused(tmp_path)
    panel = ApprovalPanel(graph, config, reviewer="me")
    box = panel.widget()
    buttons = [child for row in box.children[1:] for child in row.children[2].children
               if getattr(child, "description", None) == button]
    buttons[0].click()
    [message] = [m for m in panel.result["messages"] if isinstance(m, ToolMessage)]
    assert (message.status, message.content) == expected
    assert pending_approvals(graph, config) == []
    assert "Resumed." in box.children[-1].value


def test_edit_box_with_bad_json_does_not_resume(tmp_path: Path) -> None:
    graph, config, _ = paused(tmp_path)
    panel = ApprovalPanel(graph, config)
    row = panel.widget().children[1]
    row.children[1].value = "{nope"
    row.children[2].children[1].click()  # Edit
    assert panel.result is None
    assert "not JSON" in row.children[2].children[3].value
    row.children[1].value = '{"order": "A", "amount": 5000}'
    row.children[2].children[1].click()  # the edit is decided again: over the range
    [message] = [m for m in panel.result["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error"
    assert "argument 'amount' is outside the allowed range" in message.content


def test_decisions_table_from_the_audit_log(tmp_path: Path) -> None:
    _graph, _config, guard = paused(tmp_path)
    table = decisions_table(guard.audit)
    assert isinstance(table, DecisionsTable)
    assert table.rows == [("refund", "s", "require_approval", "tools.refund.approval",
                           "the policy requires a person's approval for this call")]
    assert "<td>require_approval</td>" in table._repr_html_()
    assert repr(table).splitlines()[0].split() == ["tool", "persona", "decision", "rule",
                                                   "reason"]


def test_there_are_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_callbacks_on_an_existing_chain.ipynb",
        "02_guarded_agent_with_approval.ipynb",
        "03_writing_and_testing_a_policy.ipynb",
        "04_sandboxed_code.ipynb",
    ]
    assert sorted(SKIPPED) == sorted(KEY_LINES) == [p.stem for p in NOTEBOOKS]


def test_notebooks_are_built_by_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("_build", NOTEBOOK_DIR / "_build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert sorted(build.NOTEBOOKS) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:  # run: python notebooks/_build.py
        assert path.read_text(encoding="utf-8") == build.render(build.NOTEBOOKS[path.name]), \
            path.name


def without_needs_key(notebook: Any) -> list[str]:
    """Drop the cells tagged needs-key; returns their ids."""
    skipped = [c for c in notebook.cells if NEEDS_KEY in c.get("metadata", {}).get("tags", [])]
    notebook.cells = [c for c in notebook.cells if c not in skipped]
    return [c.get("id") for c in skipped]


def printed_lines(notebook: Any) -> list[str]:
    """Every line the code cells printed or displayed as text."""
    texts = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts).splitlines()


def _param(path: Path) -> Any:
    marks = [pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")
             ] if path.stem in NEEDS_BWRAP else []
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert without_needs_key(notebook) == SKIPPED[path.stem]
    assert all(NEEDS_KEY not in c.get("metadata", {}).get("tags", []) for c in notebook.cells)
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    lines = printed_lines(notebook)
    for line in KEY_LINES[path.stem]:
        assert line in lines
