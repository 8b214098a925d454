"""Guard events, published as LangChain custom events so tracers can attach them.

Every decision, review and scan a surface acts on, and every sandboxed run of
the ``run_python`` tool, is dispatched (when the
surface runs inside a LangChain/LangGraph run) as a custom event named
:data:`GUARD_EVENT` with a :class:`GuardEventData` payload. Callback handlers
receive it in ``on_custom_event`` with the ``run_id`` of the run it happened in
(the tool node, the tool, the model call), which is how a tracer parents it.

Publishing never raises: tracing must not break the agent.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from typing_extensions import NotRequired, TypedDict

__all__ = ["GUARD_EVENT", "GuardEventData", "publish"]

GUARD_EVENT = "langchain_secure.guard"
"""The name of every custom event the guard dispatches."""

logger = logging.getLogger("langchain_secure")


class GuardEventData(TypedDict):
    """The payload of a guard event (JSON-safe; arguments as the audit log stores them)."""

    kind: Literal["decision", "review", "scan", "sandbox"]
    thread_id: str | None
    tool: NotRequired[str | None]
    tool_call_id: NotRequired[str | None]
    persona: NotRequired[str | None]
    args: NotRequired[Any]
    action: str
    rule: NotRequired[str | None]
    reason: NotRequired[str | None]
    labels: NotRequired[list[str]]
    reviewer: NotRequired[str | None]
    door: NotRequired[str]
    source: NotRequired[str | None]
    risk: NotRequired[float]
    findings: NotRequired[list[str]]
    receipt: NotRequired[dict[str, Any] | None]
    backend: NotRequired[str]
    sandbox: NotRequired[dict[str, Any]]


def publish(events: list[GuardEventData], config: Any) -> None:
    """Dispatch events in the run ``config`` belongs to; a no-op outside runs."""
    if not events or not config or not (config.get("callbacks") if isinstance(config, dict)
                                         else None):
        return
    from langchain_core.callbacks.manager import dispatch_custom_event

    for event in events:
        try:
            dispatch_custom_event(GUARD_EVENT, event, config=config)
        except Exception:  # tracing never breaks the agent
            logger.debug("could not publish a guard event", exc_info=True)
