from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_secure.sandbox import (
    ExecutionError,
    ExecutionResult,
    RichResult,
    SandboxedPythonTool,
    SandboxPool,
)
from langchain_secure.sandbox.testing import FakeSandbox


class TestSandboxedPythonToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> type[SandboxedPythonTool]:
        return SandboxedPythonTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"sandbox": FakeSandbox()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"code": "print(1 + 1)"}


def answer(code: str) -> ExecutionResult:
    return ExecutionResult(stdout=f"ran {code}\n")


def config(thread: str, persona: str | None = None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread}
    if persona:
        configurable["persona"] = persona
    return {"configurable": configurable}


def test_name_schema_and_text_output() -> None:
    fake = FakeSandbox({"x": ExecutionResult(
        results=(RichResult({"text/plain": "42"}, is_main_result=True),))})
    tool = SandboxedPythonTool(sandbox=fake)
    assert tool.name == "run_python"
    assert list(tool.tool_call_schema.model_json_schema()["properties"]) == ["code"]
    assert tool.invoke({"code": "x"}) == "[result]\n42"
    assert fake.calls == [("x", "python")]


def test_tool_call_gives_tool_message() -> None:
    fake = FakeSandbox(default=lambda code: ExecutionResult(
        error=ExecutionError("ZeroDivisionError", "division by zero"), exit_code=1))
    tool = SandboxedPythonTool(sandbox=fake)
    message = tool.invoke({"name": "run_python", "args": {"code": "1/0"}, "id": "call-1",
                           "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call-1"
    assert message.content == "[error]\nZeroDivisionError: division by zero"


def test_pool_gives_one_session_per_thread() -> None:
    made: list[FakeSandbox] = []

    def factory() -> FakeSandbox:
        made.append(FakeSandbox(default=answer))
        return made[-1]

    pool = SandboxPool(factory, warm=0)
    tool = SandboxedPythonTool(sandbox=pool)
    assert tool.invoke({"code": "a = 1"}, config("t1")) == "ran a = 1"
    tool.invoke({"code": "a"}, config("t1"))
    tool.invoke({"code": "b"}, config("t2"))
    assert [m.calls for m in made] == [[("a = 1", "python"), ("a", "python")],
                                       [("b", "python")]]
    assert pool.thread_ids == ("t1", "t2")
    pool.close()


def test_resolver_called_once_per_persona_and_thread() -> None:
    calls: list[tuple[str | None, str]] = []

    def resolver(persona: str | None, thread_id: str) -> FakeSandbox:
        calls.append((persona, thread_id))
        return FakeSandbox(default=answer)

    tool = SandboxedPythonTool(sandbox=resolver, persona="analyst")
    tool.invoke({"code": "1"}, config("t1"))
    tool.invoke({"code": "2"}, config("t1"))
    tool.invoke({"code": "3"}, config("t1", persona="admin"))
    tool.invoke({"code": "4"})
    assert calls == [("analyst", "t1"), ("admin", "t1"), ("analyst", "default")]
    tool.close()


def test_resolver_may_return_a_pool() -> None:
    pool = SandboxPool(lambda: FakeSandbox(default=answer), warm=0)
    tool = SandboxedPythonTool(sandbox=lambda persona, thread: pool)
    tool.invoke({"code": "1"}, config("t9"))
    assert pool.thread_ids == ("t9",)
    pool.close()


async def test_async_invoke() -> None:
    pool = SandboxPool(lambda: FakeSandbox(default=answer), warm=0)
    tool = SandboxedPythonTool(sandbox=pool)
    assert await tool.ainvoke({"code": "z"}, config("async")) == "ran z"
    assert pool.thread_ids == ("async",)
    await pool.aclose()


def test_rejects_a_non_sandbox() -> None:
    with pytest.raises(ValueError, match="sandbox must be a CodeSandbox"):
        SandboxedPythonTool(sandbox=42)
