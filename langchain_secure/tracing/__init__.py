"""Tracing: guard events as observations in the agent's own Langfuse trace.

Importing this package never imports the Langfuse SDK; :class:`LangfuseGuardrails`
needs the ``langfuse`` extra (``pip install 'langchain-secure[langfuse]'``) and
says so when it is missing.

Example:
    ```python
    from langfuse.langchain import CallbackHandler

    from langchain_secure.tracing import LangfuseGuardrails

    langfuse_handler = CallbackHandler()
    config = {"callbacks": [langfuse_handler, LangfuseGuardrails(langfuse_handler)]}
    ```
"""

from __future__ import annotations

from langchain_secure.tracing.langfuse import INSTALL_MESSAGE, LangfuseGuardrails, thread_trace_id
from langchain_secure.tracing.observation import (
    ERROR_ACTIONS,
    WARNING_ACTIONS,
    GuardObservation,
    guard_observation,
)
from langchain_secure.tracing.redact import REDACTED, TraceRedactor

__all__ = [
    "ERROR_ACTIONS",
    "INSTALL_MESSAGE",
    "REDACTED",
    "WARNING_ACTIONS",
    "GuardObservation",
    "LangfuseGuardrails",
    "TraceRedactor",
    "guard_observation",
    "thread_trace_id",
]
