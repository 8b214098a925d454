"""Per-thread security state and its LangGraph reducer.

The policy's flow rules and budgets look at what already happened in a thread:
which labels it has seen (``reads_sensitive``, ``untrusted``, ...) and how many
calls ran. In a LangGraph graph that state is a channel of the graph's own state,
so every checkpointer persists it with the conversation; add it to your state
schema like this:

```python
from typing import Annotated
from langgraph.graph import MessagesState
from langchain_secure import SecurityState, merge_security_state

class State(MessagesState):
    security: Annotated[SecurityState, merge_security_state]
```

or use :class:`SecureMessagesState`, which is exactly that. Without the channel
(callback-only agents, ``create_react_agent`` without a custom schema) the
:class:`~langchain_secure.Guard` keeps the state in memory per ``thread_id``.

Updates are *deltas*: the reducer adds new labels (keeping first-seen order) and
adds counts, so parallel branches merge correctly and nothing is ever forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from langgraph.graph import MessagesState
from typing_extensions import TypedDict

__all__ = [
    "SecureMessagesState",
    "SecurityState",
    "merge_security_state",
    "state_delta",
]


class SecurityState(TypedDict, total=False):
    """What the guard remembers about one thread.

    Attributes:
        labels: Labels the thread has seen, in first-seen order.
        tool_calls: Calls that ran, per tool name.
        total_calls: Calls that ran, all tools.
    """

    labels: list[str]
    tool_calls: dict[str, int]
    total_calls: int


def merge_security_state(
    current: Mapping[str, Any] | None, update: Mapping[str, Any] | None
) -> SecurityState:
    """LangGraph reducer: merge a delta into the thread's security state.

    Labels are unioned in first-seen order; counts are added. Neither input is
    modified.

    Args:
        current: The state so far (``None`` or ``{}`` for a new thread).
        update: A delta, as returned by :func:`state_delta`.

    Returns:
        The merged state.

    Example:
        ```python
        from langchain_secure import merge_security_state

        merged = merge_security_state(
            {"labels": ["reads_sensitive"], "tool_calls": {"read": 1}, "total_calls": 1},
            {"labels": ["egress"], "tool_calls": {"send": 1}, "total_calls": 1},
        )
        merged["labels"]  # ['reads_sensitive', 'egress']
        ```
    """
    current = current or {}
    update = update or {}
    labels = list(current.get("labels", ()))
    seen = set(labels)
    for label in update.get("labels", ()):
        if label not in seen:
            seen.add(label)
            labels.append(label)
    counts = dict(current.get("tool_calls", {}))
    for tool, count in update.get("tool_calls", {}).items():
        counts[tool] = counts.get(tool, 0) + count
    return {
        "labels": labels,
        "tool_calls": counts,
        "total_calls": current.get("total_calls", 0) + update.get("total_calls", 0),
    }


def state_delta(runs: Iterable[tuple[str, Iterable[str]]]) -> SecurityState:
    """The delta for a batch of calls that ran: ``(tool name, labels)`` pairs.

    Args:
        runs: One pair per call that ran.

    Returns:
        A delta for :func:`merge_security_state`.
    """
    delta: SecurityState = {"labels": [], "tool_calls": {}, "total_calls": 0}
    for tool, labels in runs:
        delta = merge_security_state(
            delta, {"labels": list(labels), "tool_calls": {tool: 1}, "total_calls": 1}
        )
    return delta


class SecureMessagesState(MessagesState):
    """``MessagesState`` plus the ``security`` channel :class:`GuardedToolNode` uses.

    Example:
        ```python
        from langgraph.graph import StateGraph
        from langchain_secure import SecureMessagesState

        builder = StateGraph(SecureMessagesState)
        ```
    """

    security: Annotated[SecurityState, merge_security_state]
