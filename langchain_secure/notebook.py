"""Jupyter: review pending approvals with buttons, and see a run's decisions.

Requires the ``notebook`` extra (``pip install 'langchain-secure[notebook]'``)
for the widgets; :func:`decisions_table` and :func:`resume` need nothing extra.

Example:
    ```python
    from langchain_secure.notebook import ApprovalPanel, decisions_table

    result = graph.invoke({"messages": [("user", "refund order 7")]}, config)
    ApprovalPanel(graph, config)          # Approve / Edit / Reject, then the graph resumes
    decisions_table(guard.audit)          # what was decided, as a table
    ```
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_secure.approval import ActionRequest, ReviewDecision, approve, edit, reject
from langchain_secure.policy.engine import Decision

__all__ = ["ApprovalPanel", "DecisionsTable", "decisions_table", "pending_approvals", "resume"]

_INSTALL = "the approval widgets need ipywidgets; install with: " \
           "pip install 'langchain-secure[notebook]'"


def pending_approvals(graph: Any, config: Any) -> list[ActionRequest]:
    """The calls a paused thread waits on, from the graph's checkpointed state."""
    state = graph.get_state(config, subgraphs=True)
    actions: list[ActionRequest] = []
    for item in _interrupts(state):
        value = getattr(item, "value", None)
        if isinstance(value, dict) and "action_requests" in value:
            actions.extend(value["action_requests"])
    return actions


def _interrupts(state: Any) -> Iterable[Any]:
    yield from getattr(state, "interrupts", ()) or ()
    for task in getattr(state, "tasks", ()) or ():
        sub = getattr(task, "state", None)
        if sub is not None and hasattr(sub, "tasks"):
            yield from _interrupts(sub)


def resume(graph: Any, config: Any, decisions: Sequence[ReviewDecision], *,
           reviewer: str | None = None) -> Any:
    """Resume a paused thread with one decision per pending action (the programmatic path)."""
    from langgraph.types import Command

    response: dict[str, Any] = {"decisions": list(decisions)}
    if reviewer is not None:
        response["reviewer"] = reviewer
    return graph.invoke(Command(resume=response), config)


class ApprovalPanel:
    """Approve, edit or reject a paused thread's calls from a notebook.

    Displays one row per pending call: tool, arguments, reason and rule, with
    Approve / Reject buttons and an editable JSON box for Edit. When every row
    has a decision the graph resumes (through :func:`resume`) and the panel shows
    the tool results. :meth:`decide` is the same path without clicks (for tests
    and headless runs).

    Args:
        graph: A compiled graph with a checkpointer.
        config: The paused thread's config (``{"configurable": {"thread_id": ...}}``).
        reviewer: Recorded in the audit log as the reviewer.
        on_resumed: Called with the graph's result after resuming.
    """

    def __init__(self, graph: Any, config: Any, *, reviewer: str = "notebook",
                 on_resumed: Callable[[Any], None] | None = None) -> None:
        self.graph = graph
        self.config = config
        self.reviewer = reviewer
        self.on_resumed = on_resumed
        self.actions = pending_approvals(graph, config)
        self.decisions: list[ReviewDecision | None] = [None] * len(self.actions)
        self.result: Any = None
        self._widget: Any = None

    def decide(self, decisions: Sequence[ReviewDecision]) -> Any:
        """Resume with these decisions (one per pending call); returns the graph's result."""
        self.result = resume(self.graph, self.config, decisions, reviewer=self.reviewer)
        self.actions = []
        if self.on_resumed is not None:
            self.on_resumed(self.result)
        return self.result

    def _set(self, index: int, decision: ReviewDecision) -> None:
        self.decisions[index] = decision
        if all(d is not None for d in self.decisions):
            self.decide([d for d in self.decisions if d is not None])
            if self._widget is not None:
                self._render_done()

    # -- widgets ------------------------------------------------------------------------

    def widget(self) -> Any:
        """The ipywidgets box (built on first use)."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self) -> Any:
        try:
            import ipywidgets as w
        except ImportError:
            raise ImportError(_INSTALL) from None
        if not self.actions:
            return w.HTML("<i>No calls are waiting for approval.</i>")
        rows = [w.HTML(f"<b>{len(self.actions)} call(s) waiting for approval</b>")]
        for index, action in enumerate(self.actions):
            args = w.Textarea(value=json.dumps(action["args"], indent=2),
                              layout=w.Layout(width="60%", height="6em"))
            status = w.HTML("")
            approve_button = w.Button(description="Approve", button_style="success")
            edit_button = w.Button(description="Edit", button_style="warning")
            reject_button = w.Button(description="Reject", button_style="danger")

            def on_approve(_: Any, i: int = index, s: Any = status) -> None:
                s.value = "approved"
                self._set(i, approve())

            def on_edit(_: Any, i: int = index, a: Any = args, s: Any = status,
                        name: str = action["name"]) -> None:
                try:
                    new_args = json.loads(a.value)
                except json.JSONDecodeError as exc:
                    s.value = f"<span style='color:red'>not JSON: {html.escape(str(exc))}</span>"
                    return
                s.value = "edited"
                self._set(i, edit(name, new_args))

            def on_reject(_: Any, i: int = index, s: Any = status) -> None:
                s.value = "rejected"
                self._set(i, reject())

            approve_button.on_click(on_approve)
            edit_button.on_click(on_edit)
            reject_button.on_click(on_reject)
            rows.append(w.VBox([
                w.HTML(f"<code>{html.escape(action['name'])}</code> &mdash; "
                       f"{html.escape(action.get('reason', ''))} "
                       f"<small>(rule <code>{html.escape(action.get('rule', ''))}</code>)"
                       "</small>"),
                args,
                w.HBox([approve_button, edit_button, reject_button, status]),
            ]))
        return w.VBox(rows)

    def _render_done(self) -> None:
        from langchain_core.messages import ToolMessage

        messages = (self.result or {}).get("messages", [])
        done = [m for m in messages if isinstance(m, ToolMessage)][-len(self.decisions):]
        items = "".join(f"<li><code>{html.escape(str(m.name))}</code> {html.escape(m.status)}: "
                        f"{html.escape(str(m.content))[:300]}</li>" for m in done)
        self._widget.children = (*self._widget.children,
                                 type(self._widget.children[0])(f"<b>Resumed.</b><ul>{items}</ul>"))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget())  # type: ignore[no-untyped-call]


class DecisionsTable:
    """Rows of decisions, rendered as an HTML table in Jupyter and as text elsewhere."""

    columns = ("tool", "persona", "decision", "rule", "reason")

    def __init__(self, rows: Sequence[Sequence[str]]) -> None:
        self.rows = [tuple(str(c) for c in row) for row in rows]

    def _repr_html_(self) -> str:
        colours = {"allow": "#e6f4ea", "deny": "#fce8e6", "require_approval": "#fef7e0"}
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join(
            f"<tr style='background:{colours.get(row[2], 'white')}'>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        from langchain_secure._format import format_table

        return format_table([self.columns, *self.rows])


def decisions_table(source: Any) -> DecisionsTable:
    """A run's decisions as a table: from decisions, or from an audit log.

    Args:
        source: An iterable of :class:`~langchain_secure.Decision` (for example
            collected with ``guard.subscribe(seen.append)``), an
            :class:`~langchain_secure.audit.AuditLog`, or an audit store.
    """
    store = getattr(source, "store", source)
    if hasattr(store, "records") and hasattr(store, "log_id"):
        rows = []
        for record in store.records():
            data = json.loads(record.data)
            if data.get("kind") != "intent":
                continue
            decision = data.get("decision") or {}
            rows.append((data.get("tool", ""), data.get("persona", ""),
                         decision.get("action", ""), decision.get("rule", ""),
                         decision.get("reason", "")))
        return DecisionsTable(rows)
    decisions: Iterable[Decision] = source
    return DecisionsTable([(d.tool, d.persona, d.action.value, d.rule, d.reason)
                           for d in decisions])
