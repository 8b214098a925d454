"""Stateful sessions, the pool and the run_python tool on the real local backends."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable
from typing import Any

import pytest
from langchain_tests.integration_tests import ToolsIntegrationTests

from langchain_secure.sandbox import (
    BubblewrapSandbox,
    SandboxClosedError,
    SandboxedPythonTool,
    SandboxPool,
    SandboxSpec,
    SandboxStartError,
)
from langchain_secure.sandbox._local import LocalSandbox

pytestmark = pytest.mark.integration

Make = Callable[..., LocalSandbox]


def test_state_output_results_and_errors(make: Make, backend: str) -> None:
    sandbox = make()
    first = sandbox.run("import math\nr = 2\nprint('area')\ndisplay('shown')\nmath.pi * r ** 2")
    assert (first.stdout, first.status, first.exit_code, first.execution_count) == (
        "area\n", "ok", 0, 1)
    assert first.text == "12.566370614359172"
    assert [dict(r.data) for r in first.results] == [
        {"text/plain": "'shown'"}, {"text/plain": "12.566370614359172"}]
    assert first.backend == backend
    failed = sandbox.run("r / 0")
    assert (failed.status, failed.exit_code) == ("error", 1)
    assert failed.error is not None
    assert (failed.error.name, failed.error.value) == ("ZeroDivisionError", "division by zero")
    assert failed.error.traceback.splitlines()[:3] == [
        "Traceback (most recent call last):", '  File "<cell-2>", line 1, in <module>',
        "    r / 0"]
    assert failed.error.traceback.endswith("ZeroDivisionError: division by zero\n")
    syntax = sandbox.run("def (")
    assert (syntax.status, syntax.error and syntax.error.name) == ("error", "SyntaxError")
    exited = sandbox.run("raise SystemExit(3)")
    assert exited.error is not None
    assert exited.error.name == "SystemExit"
    assert sandbox.run("r").text == "2"  # state survived all of it


def test_rich_results(make: Make) -> None:
    sandbox = make()
    result = sandbox.run(
        "class Picture:\n"
        "    def _repr_png_(self):\n        return b'\\x89PNG'\n"
        "    def _repr_html_(self):\n        return '<img>'\n"
        "Picture()")
    main = result.results[0]
    assert main.is_main_result
    assert dict(main.data) == {"text/plain": main.data["text/plain"], "text/html": "<img>",
                               "image/png": "iVBORw=="}


def test_shell_and_workspace(make: Make) -> None:
    sandbox = make()
    made = sandbox.run("echo data > notes.txt; pwd; id -u; exit 3", language="bash")
    assert (made.stdout, made.exit_code, made.status) == ("/workspace\n65534\n", 3, "error")
    assert sandbox.run("open('notes.txt').read()").text == "'data\\n'"
    assert (sandbox.workspace / "notes.txt").read_text() == "data\n"
    stderr = sandbox.run("import sys\nprint('oops', file=sys.stderr)")
    assert (stderr.stdout, stderr.stderr) == ("", "oops\n")


def test_started_from_a_thread_that_ended(make: Make) -> None:
    # bwrap --die-with-parent is bound to the forking thread; sandboxes must outlive it.
    sandbox = make()
    worker = threading.Thread(target=sandbox.start)
    worker.start()
    worker.join()
    result = sandbox.run("'still here'")
    assert (result.status, result.text) == ("ok", "'still here'")


def test_close_is_final_and_cleans_up(make: Make) -> None:
    sandbox = make()
    sandbox.run("1")
    workspace = sandbox.workspace
    assert workspace.is_dir()
    sandbox.close()
    sandbox.close()
    assert not workspace.exists()
    assert not sandbox.running
    with pytest.raises(SandboxClosedError):
        sandbox.run("1")


async def test_async_and_context_managers(make: Make) -> None:
    async with make() as sandbox:
        await sandbox.astart()
        results = await asyncio.gather(*(sandbox.arun(f"{i} * 2") for i in range(5)))
        assert [r.text for r in results] == ["0", "2", "4", "6", "8"]
    assert sandbox.closed


def test_pool_keeps_sessions_apart(make: Make) -> None:
    with SandboxPool(lambda: make(), max_sessions=2, warm=1) as pool:
        assert pool.run("a", "secret = 'for a'").status == "ok"  # the warm spare works
        pool.run("b", "mine = 'b'")
        assert pool.run("b", "'secret' in dir()").text == "False"
        assert pool.run("a", "secret").text == "'for a'"
        assert pool.run("c", "1").text == "1"  # evicts "b", the least recently used
        assert pool.thread_ids == ("a", "c")
        assert pool.run("b", "'mine' in dir()").text == "False"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")
def test_start_failure_is_explained() -> None:
    sandbox = BubblewrapSandbox(ro_binds=["/proc/self"], python="/bin/true")
    with pytest.raises(SandboxStartError) as info:
        sandbox.start()
    assert info.value.reason == "it exited before it was ready"
    sandbox.close()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")
def test_spec_builds_a_working_sandbox() -> None:
    with SandboxSpec(timeout_s=5, env={"GREETING": "hi"}).build() as sandbox:
        assert sandbox.run("import os; os.environ['GREETING']").text == "'hi'"


POOL: SandboxPool | None = None


def _pool() -> SandboxPool:
    global POOL
    if POOL is None:
        POOL = SandboxPool(lambda: BubblewrapSandbox(timeout_s=10), warm=0)
    return POOL


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")
class TestRunPythonStandard(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> type[SandboxedPythonTool]:
        return SandboxedPythonTool

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {"sandbox": _pool()}

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"code": "print(6 * 7)"}


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")
def test_tool_on_bubblewrap_per_thread() -> None:
    with SandboxPool(lambda: BubblewrapSandbox(timeout_s=2), warm=0) as pool:
        tool = SandboxedPythonTool(sandbox=pool)
        one = {"configurable": {"thread_id": "one"}}
        two = {"configurable": {"thread_id": "two"}}
        assert tool.invoke({"code": "x = 20"}, one) == "(no output)"
        assert tool.invoke({"code": "x * 2 + 2"}, one) == "[result]\n42"
        assert tool.invoke({"code": "x"}, two).endswith("NameError: name 'x' is not defined")
        assert tool.invoke({"code": "while True: pass"}, one) == (
            "[error] TimeoutError: the code ran longer than 2 s and was killed; the session "
            "was restarted and its variables are lost")
    if POOL is not None:
        POOL.close()
