from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

import langchain_secure.sandbox as sandbox_pkg
from langchain_secure.sandbox import (
    CodeSandbox,
    ExecutionError,
    ExecutionResult,
    RichResult,
    format_result,
)
from langchain_secure.sandbox.testing import FakeSandbox

EXPECTED_ALL = [
    "Backend", "BubblewrapSandbox", "CodeSandbox", "E2BSandbox", "ExecutionError",
    "ExecutionResult", "GVisorSandbox", "KillReason", "Language", "PoolStats", "RichResult",
    "SandboxClosedError", "SandboxError", "SandboxPool", "SandboxPoolFullError",
    "SandboxResolver", "SandboxSpec", "SandboxStartError", "SandboxUnavailableError",
    "SandboxedPythonTool", "Status", "format_result",
]


def test_all_is_sorted_and_exact() -> None:
    assert sandbox_pkg.__all__ == EXPECTED_ALL
    for name in sandbox_pkg.__all__:
        assert getattr(sandbox_pkg, name) is not None


def test_importing_the_package_and_spec_is_light() -> None:
    code = (
        "import sys, langchain_secure.sandbox as s, langchain_secure.sandbox.config\n"
        "for n in s.__all__: getattr(s, n)\n"
        "print(sorted(m for m in ('e2b', 'e2b_code_interpreter') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys, langchain_secure.sandbox.config\n"
            "print(sorted(m for m in sys.modules if m.startswith('langchain_secure.sandbox.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "['langchain_secure.sandbox.config']"


def test_result_status_and_text() -> None:
    main = RichResult({"text/plain": "42"}, is_main_result=True)
    shown = RichResult({"text/plain": "'shown'"})
    assert ExecutionResult(results=(shown, main)).text == "42"
    assert ExecutionResult().status == "ok"
    assert ExecutionResult(error=ExecutionError("ValueError", "bad"), exit_code=1).status \
        == "error"
    assert ExecutionResult(exit_code=2).status == "error"
    assert ExecutionResult(timed_out=True, killed="timeout", exit_code=None).status == "timeout"
    assert ExecutionResult(killed="memory", exit_code=None).status == "killed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ExecutionResult().stdout = "x"  # type: ignore[misc]


def test_format_result_is_compact() -> None:
    result = ExecutionResult(
        stdout="hello\n", stderr="careful\n",
        results=(RichResult({"text/plain": "3", "image/png": "AAAA"}, is_main_result=True),),
        truncated=True)
    assert format_result(result) == (
        "hello\n[stderr]\ncareful\n[result]\n3\n[1 image(s) displayed]\n[output truncated]")
    error = ExecutionError("NameError", "name 'x' is not defined",
                           "Traceback (most recent call last):\n  File \"<cell-1>\", line 1\n"
                           "NameError: name 'x' is not defined\n")
    assert format_result(ExecutionResult(error=error, exit_code=1)) == (
        "[error]\nTraceback (most recent call last):\n  File \"<cell-1>\", line 1\n"
        "NameError: name 'x' is not defined")
    killed = ExecutionResult(error=ExecutionError("TimeoutError", "too slow"), timed_out=True,
                             killed="timeout", exit_code=None)
    assert format_result(killed) == "[error] TimeoutError: too slow"
    assert format_result(ExecutionResult(exit_code=3)) == "[exit code 3]"
    assert format_result(ExecutionResult()) == "(no output)"


def test_fake_sandbox_is_a_code_sandbox() -> None:
    fake = FakeSandbox({"1+1": ExecutionResult(stdout="2\n")})
    assert isinstance(fake, CodeSandbox)
    assert fake.run("1+1").stdout == "2\n"
    assert fake.run("other", language="bash").status == "ok"
    assert fake.calls == [("1+1", "python"), ("other", "bash")]
    fake.close()
    assert fake.closed


async def test_fake_sandbox_async_context_manager() -> None:
    async with FakeSandbox() as fake:
        assert (await fake.arun("x")).status == "ok"
    assert fake.closed
