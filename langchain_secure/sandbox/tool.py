"""``run_python``: a LangChain tool that runs the model's code in a sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

# Imported at run time: BaseTool resolves _run's type hints to find the config parameter.
from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from langchain_secure.sandbox.base import CodeSandbox, ExecutionResult
from langchain_secure.sandbox.pool import SandboxPool

__all__ = ["RunPythonInput", "SandboxResolver", "SandboxedPythonTool", "format_result"]

SandboxResolver = Callable[[str | None, str], "CodeSandbox | SandboxPool"]
"""``(persona, thread_id) -> CodeSandbox | SandboxPool``: which sandbox runs a call."""

DEFAULT_THREAD_ID = "default"
"""Thread id used when the run's config has none."""

_TRACEBACK_LINES = 12


def _publish_run(result: ExecutionResult, thread_id: str, config: Any,
                 run_manager: Any) -> None:
    """Publish the run as a guard event (for tracers), in the tool's own run."""
    from langchain_core.runnables.config import patch_config

    from langchain_secure.events import publish

    if run_manager is None:
        return
    config = patch_config(config, callbacks=run_manager.get_child())
    publish([{"kind": "sandbox", "thread_id": thread_id, "tool": "run_python",
              "action": result.status, "backend": result.backend,
              "sandbox": {"status": result.status, "exit_code": result.exit_code,
                          "duration_s": round(result.duration_s, 4),
                          "timed_out": result.timed_out, "killed": result.killed,
                          "truncated": result.truncated, "state_lost": result.state_lost,
                          "error": result.error.name if result.error else None}}], config)


def format_result(result: ExecutionResult) -> str:
    r"""The compact text a model reads: output, the last value, the error, the limits hit.

    Example:
        ```python
        from langchain_secure.sandbox import ExecutionResult, format_result

        format_result(ExecutionResult(stdout="hi\n"))  # 'hi'
        ```
    """
    parts: list[str] = []
    if result.stdout.strip():
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr.strip():
        parts.append("[stderr]\n" + result.stderr.rstrip("\n"))
    text = result.text
    if text is not None:
        parts.append(f"[result]\n{text}")
    images = sum(1 for r in result.results for k in r.data if k.startswith("image/"))
    if images:
        parts.append(f"[{images} image(s) displayed]")
    if result.error is not None:
        if result.killed is not None:
            parts.append(f"[error] {result.error.summary()}")
        else:
            lines = result.error.traceback.strip().splitlines()
            shown = "\n".join(lines[-_TRACEBACK_LINES:]) if lines else result.error.summary()
            parts.append(f"[error]\n{shown}")
    elif result.exit_code not in (0, None):
        parts.append(f"[exit code {result.exit_code}]")
    if result.truncated:
        parts.append("[output truncated]")
    return "\n".join(parts) if parts else "(no output)"


class RunPythonInput(BaseModel):
    """Arguments of ``run_python``."""

    code: str = Field(description="Python code to run. The value of the last expression is "
                                  "returned; variables persist between calls.")


class SandboxedPythonTool(BaseTool):
    r"""The ``run_python`` tool: the model's code runs in a sandbox, one session per thread.

    The sandbox comes from ``sandbox``, which is one of:

    * a :class:`~langchain_secure.sandbox.SandboxPool`: the session of the run's
      thread (``config["configurable"]["thread_id"]``);
    * a :class:`~langchain_secure.sandbox.CodeSandbox`: that one session, for
      every thread;
    * a resolver ``(persona, thread_id) -> CodeSandbox | SandboxPool``
      (the persona is ``config["configurable"]["persona"]``, else the tool's
      ``persona``): a pool it returns is asked for the thread's session; a
      sandbox it returns is kept as that thread's session, so the resolver is
      called once per (persona, thread). :meth:`close` closes those.

    The result is text for the model (:func:`format_result`): stdout, the last
    expression's value, the error with the end of its traceback, and notes
    when output was truncated or the session was killed.

    Example:
        ```python
        from langchain_secure.sandbox import BubblewrapSandbox, SandboxPool, SandboxedPythonTool

        pool = SandboxPool(lambda: BubblewrapSandbox(timeout_s=10))
        tool = SandboxedPythonTool(sandbox=pool)
        config = {"configurable": {"thread_id": "t1"}}
        tool.invoke({"code": "x = 20"}, config)
        tool.invoke({"code": "x * 2 + 2"}, config)  # '[result]\n42'
        pool.close()
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "run_python"
    description: str = (
        "Run Python code in an isolated sandbox with no network access and return what it "
        "printed, the value of its last expression, and any error. Variables, imports and "
        "files in the working directory persist between calls in this conversation."
    )
    args_schema: type[BaseModel] = RunPythonInput
    sandbox: Any = Field(exclude=True)
    persona: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)

    _sessions: dict[tuple[str | None, str], CodeSandbox] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="after")
    def _check_sandbox(self) -> SandboxedPythonTool:
        if not isinstance(self.sandbox, CodeSandbox | SandboxPool) and not callable(
                self.sandbox):
            msg = ("sandbox must be a CodeSandbox, a SandboxPool or a callable "
                   f"(persona, thread_id) -> CodeSandbox, not {type(self.sandbox).__name__}")
            raise ValueError(msg)
        return self

    @staticmethod
    def _configurable(config: RunnableConfig | Mapping[str, Any] | None) -> Mapping[str, Any]:
        if not config:
            return {}
        value = config.get("configurable") or {}
        return value if isinstance(value, Mapping) else {}

    def _target(self, config: RunnableConfig | None) -> tuple[CodeSandbox | SandboxPool, str]:
        configurable = self._configurable(config)
        thread_id = str(configurable.get("thread_id") or DEFAULT_THREAD_ID)
        source = self.sandbox
        if isinstance(source, SandboxPool | CodeSandbox):
            return source, thread_id
        persona = configurable.get("persona") or self.persona
        key = (persona, thread_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and not session.closed:
                return session, thread_id
        resolved = source(persona, thread_id)
        if isinstance(resolved, SandboxPool):
            return resolved, thread_id
        if not isinstance(resolved, CodeSandbox):
            msg = f"the sandbox resolver returned {type(resolved).__name__}, not a CodeSandbox"
            raise TypeError(msg)
        with self._lock:
            existing = self._sessions.get(key)
            if existing is not None and not existing.closed and existing is not resolved:
                with contextlib.suppress(Exception):
                    resolved.close()
                return existing, thread_id
            self._sessions[key] = resolved
        return resolved, thread_id

    def _run(self, code: str, config: RunnableConfig,
             run_manager: CallbackManagerForToolRun | None = None) -> str:
        target, thread_id = self._target(config)
        if isinstance(target, SandboxPool):
            result = target.run(thread_id, code, timeout_s=self.timeout_s)
        else:
            result = target.run(code, timeout_s=self.timeout_s)
        _publish_run(result, thread_id, config, run_manager)
        return format_result(result)

    async def _arun(self, code: str, config: RunnableConfig,
                    run_manager: AsyncCallbackManagerForToolRun | None = None) -> str:
        target, thread_id = await asyncio.to_thread(self._target, config)
        if isinstance(target, SandboxPool):
            result = await target.arun(thread_id, code, timeout_s=self.timeout_s)
        else:
            result = await target.arun(code, timeout_s=self.timeout_s)
        _publish_run(result, thread_id, config, run_manager)
        return format_result(result)

    def close(self) -> None:
        """Close the sessions this tool got from a resolver (not pools or a given sandbox)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            with contextlib.suppress(Exception):
                session.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await asyncio.to_thread(self.close)
