"""LangfuseGuardrails: lazy import, validated options, and a callback that never raises."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import uuid

import pytest

from langchain_secure.events import GUARD_EVENT
from langchain_secure.tracing import INSTALL_MESSAGE, LangfuseGuardrails, thread_trace_id


def test_importing_the_package_and_tracing_does_not_import_langfuse() -> None:
    code = ("import sys, langchain_secure, langchain_secure.tracing; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('langfuse', 'opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_without_the_extra_the_handler_says_how_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langfuse", None)
    monkeypatch.setitem(sys.modules, "langfuse.langchain", None)
    with pytest.raises(ImportError) as info:
        LangfuseGuardrails()
    assert str(info.value) == INSTALL_MESSAGE
    assert "pip install 'langchain-secure[langfuse]'" in INSTALL_MESSAGE
    assert info.value.__cause__ is None and info.value.__suppress_context__


needs_langfuse = pytest.mark.skipif(importlib.util.find_spec("langfuse") is None,
                                    reason="needs the langfuse extra")


@needs_langfuse
@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"handler": object()}, TypeError, "handler must be a langfuse.langchain.CallbackHandler"),
    ({"public_key": ""}, ValueError, "public_key"),
    ({"dedupe": 1}, ValueError, "dedupe"),
    ({"score_name": " "}, ValueError, "score_name"),
    ({"blocked_tag": ""}, ValueError, "blocked_tag"),
    ({"flush_timeout_s": 0}, ValueError, "flush_timeout_s"),
    ({"flush_timeout_s": True}, ValueError, "flush_timeout_s"),
    ({"max_tracked": 0}, ValueError, "max_tracked"),
])
def test_options_are_validated(kwargs: dict[str, object], error: type[Exception],
                               message: str) -> None:
    with pytest.raises(error, match=message):
        LangfuseGuardrails(**kwargs)  # type: ignore[arg-type]


@needs_langfuse
def test_handler_attributes() -> None:
    guardrails = LangfuseGuardrails(dedupe=False, flush_timeout_s=2)
    assert (guardrails.raise_error, guardrails.dedupe, guardrails.flush_timeout_s) == (
        False, False, 2.0)
    assert (guardrails.traced, guardrails.duplicates, guardrails.failures) == (0, 0, 0)


@needs_langfuse
def test_other_events_are_ignored() -> None:
    guardrails = LangfuseGuardrails()
    guardrails.on_custom_event("something.else", {"x": 1}, run_id=uuid.uuid4())
    assert (guardrails.traced, guardrails.failures) == (0, 0)


@needs_langfuse
def test_a_broken_event_never_raises_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    guardrails = LangfuseGuardrails()
    caplog.set_level(logging.WARNING, logger="langchain_secure")
    for data in ({"kind": "decision"}, None, 42):
        guardrails.on_custom_event(GUARD_EVENT, data, run_id=uuid.uuid4())
    assert (guardrails.traced, guardrails.failures) == (0, 3)
    assert [r.getMessage() for r in caplog.records] == [
        "could not trace a guard event in Langfuse (ValueError); the agent is unaffected"]


@needs_langfuse
def test_flush_bound_is_validated() -> None:
    with pytest.raises(ValueError, match="timeout_s must be a positive number"):
        LangfuseGuardrails().flush(timeout_s=0)


@needs_langfuse
def test_thread_trace_id_is_deterministic() -> None:
    first = thread_trace_id("t1")
    assert first == thread_trace_id("t1") != thread_trace_id("t2")
    assert thread_trace_id("t1", turn="m1") not in (first, thread_trace_id("t1", turn="m2"))
    assert len(first) == 32 and int(first, 16) >= 0
    with pytest.raises(ValueError, match="thread_id"):
        thread_trace_id("")
    with pytest.raises(ValueError, match="turn"):
        thread_trace_id("t1", turn="")
