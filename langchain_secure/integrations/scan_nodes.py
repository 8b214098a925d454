"""Graph nodes for the input and document doors."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph._internal._runnable import RunnableCallable
from langgraph.runtime import Runtime

from langchain_secure.guard import Guard
from langchain_secure.integrations._base import METADATA_KEY, digest, require_guard

__all__ = ["DocumentScanNode", "InputScanNode"]


class _ScanNode(RunnableCallable):
    def __init__(self, guard: Guard, *, name: str, security_key: str) -> None:
        super().__init__(self._func, self._afunc, name=name, trace=False)
        self.guard = require_guard(guard)
        self.security_key = security_key

    def _func(self, state: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        return self._run(state, config)

    async def _afunc(self, state: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        return await asyncio.to_thread(self._run, state, config)

    def _run(self, state: Any, config: RunnableConfig) -> Any:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _get(state: Any, key: str) -> Any:
        return state.get(key) if isinstance(state, dict) else getattr(state, key, None)

    def _labels(self, state: Any, thread_id: str | None, labels: list[str],
                update: dict[str, Any]) -> dict[str, Any]:
        if labels:
            in_state = self._get(state, self.security_key) is not None
            delta = self.guard.label(thread_id, labels, remember=not in_state)
            if in_state:
                update[self.security_key] = delta
        return update


class InputScanNode(_ScanNode):
    """Scan the latest human message at the ``input`` door.

    Flagged input at a ``block`` door raises
    :class:`~langchain_secure.scanning.PromptInjectionError`; ``quarantine`` and
    ``spotlight`` replace the message's text (same message id); every flagged input
    labels the thread ``untrusted``.

    Args:
        guard: The guard whose policy says what the input door does.
        messages_key: The state key with the messages.
        security_key: The state key with the thread's security state.
        name: The node name (default ``"input_scan"``).

    Example:
        ```python
        from langchain_secure.integrations.scan_nodes import InputScanNode

        builder.add_node(InputScanNode(guard))        # named "input_scan"
        builder.add_edge(START, "input_scan")
        builder.add_edge("input_scan", "agent")
        ```
    """

    def __init__(self, guard: Guard, *, messages_key: str = "messages",
                 security_key: str = "security", name: str = "input_scan") -> None:
        super().__init__(guard, name=name, security_key=security_key)
        self.messages_key = messages_key

    def _run(self, state: Any, config: RunnableConfig) -> Any:
        messages = self._get(state, self.messages_key) or []
        message = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        if message is None:
            return None
        thread_id = (config.get("configurable") or {}).get("thread_id")
        outcome = self.guard.scan(message.text, door="input", source="user",
                                  thread_id=thread_id, key=message.id)
        self.guard.publish_scans([outcome], thread_id=thread_id, config=config)
        if outcome.blocked:
            raise outcome.error()
        update: dict[str, Any] = {}
        if outcome.changed:
            update[self.messages_key] = [message.model_copy(update={"content": outcome.text})]
        return self._labels(state, thread_id, list(outcome.labels), update) or None


class DocumentScanNode(_ScanNode):
    """Scan the retrieved documents in a state key at the ``documents`` door.

    Flagged documents are removed (``block``), replaced by a notice
    (``quarantine``, the original goes to the audit log), wrapped as data
    (``spotlight``), or kept and tagged in ``metadata["langchain_secure"]``
    (``mark``, ``log``). Any flagged document labels the thread ``untrusted``.

    Args:
        guard: The guard whose policy says what the documents door does.
        documents_key: The state key with the documents (``Document`` objects or
            strings); the node writes the filtered list back to it.
        security_key: The state key with the thread's security state.
        name: The node name (default ``"document_scan"``).

    Example:
        ```python
        from langchain_secure.integrations.scan_nodes import DocumentScanNode

        builder.add_node(DocumentScanNode(guard, documents_key="context"))
        builder.add_edge("retrieve", "document_scan")
        builder.add_edge("document_scan", "generate")
        ```
    """

    def __init__(self, guard: Guard, *, documents_key: str = "documents",
                 security_key: str = "security", name: str = "document_scan") -> None:
        super().__init__(guard, name=name, security_key=security_key)
        self.documents_key = documents_key

    def _run(self, state: Any, config: RunnableConfig) -> Any:
        documents = list(self._get(state, self.documents_key) or [])
        if not documents:
            return None
        texts = [d.page_content if isinstance(d, Document) else str(d) for d in documents]
        sources = [d.metadata.get("source") if isinstance(d, Document) else None
                   for d in documents]
        thread_id = (config.get("configurable") or {}).get("thread_id")
        keys = [f"doc:{digest(t)[:16]}" for t in texts]
        outcomes = self.guard.scan_many(texts, door="documents", sources=sources,
                                        thread_id=thread_id, keys=keys)
        self.guard.publish_scans(outcomes, thread_id=thread_id, config=config)
        kept: list[Any] = []
        labels: list[str] = []
        for document, outcome in zip(documents, outcomes, strict=True):
            labels.extend(outcome.labels)
            if outcome.blocked:
                continue
            if not isinstance(document, Document):
                kept.append(outcome.text)
                continue
            metadata = dict(document.metadata)
            if outcome.flagged:
                metadata[METADATA_KEY] = {
                    "flagged": True, "risk": outcome.verdict.risk, "action": outcome.action,
                    "audit_seq": outcome.receipt.seq if outcome.receipt else None}
            kept.append(document.model_copy(update={"page_content": outcome.text,
                                                    "metadata": metadata}))
        return self._labels(state, thread_id, labels, {self.documents_key: kept})
