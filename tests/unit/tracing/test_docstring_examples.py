"""The example in each public tracing class's docstring runs (no network: nothing is flushed)."""

from __future__ import annotations

import importlib.util
import inspect
import re
import textwrap

import pytest

from langchain_secure.tracing import GuardObservation, LangfuseGuardrails, TraceRedactor

BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def example(obj: object) -> str:
    (code,) = BLOCK.findall(inspect.getdoc(obj) or "")
    return textwrap.dedent(code)


@pytest.mark.parametrize("obj", [
    GuardObservation, TraceRedactor,
    pytest.param(LangfuseGuardrails, marks=pytest.mark.skipif(
        importlib.util.find_spec("langfuse") is None, reason="needs the langfuse extra"))])
def test_docstring_example_runs(obj: object) -> None:
    exec(compile(example(obj), f"<{obj!r} example>", "exec"), {})
