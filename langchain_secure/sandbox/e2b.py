"""The E2B backend: a Firecracker microVM in E2B's cloud, via ``e2b-code-interpreter``.

The SDK is imported on first use only; without it the backend raises
``ImportError("... install with: pip install 'langchain-secure[e2b]'")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from langchain_secure.errors import ConfigurationError
from langchain_secure.sandbox._local import _check_env, _positive
from langchain_secure.sandbox.base import (
    ExecutionError,
    ExecutionResult,
    Language,
    RichResult,
    SandboxBase,
    _check_language,
)
from langchain_secure.sandbox.errors import SandboxClosedError, SandboxError, SandboxStartError

__all__ = ["E2B_INSTALL_MESSAGE", "THREAD_ID_METADATA_KEY", "E2BSandbox"]

E2B_INSTALL_MESSAGE = (
    "the E2B sandbox needs the e2b-code-interpreter package; "
    "install with: pip install 'langchain-secure[e2b]'"
)
"""Message of the ImportError raised when the SDK is missing."""

THREAD_ID_METADATA_KEY = "langchain_secure_thread_id"
"""Metadata key that links an E2B sandbox to the conversation thread it serves."""

_MIME = {"text": "text/plain", "html": "text/html", "markdown": "text/markdown",
         "svg": "image/svg+xml", "png": "image/png", "jpeg": "image/jpeg",
         "pdf": "application/pdf", "latex": "text/latex", "json": "application/json",
         "javascript": "application/javascript"}


def _sdk() -> Any:
    try:
        return importlib.import_module("e2b_code_interpreter")
    except ImportError:
        raise ImportError(E2B_INSTALL_MESSAGE) from None


class _OutputLimit(Exception):
    """Raised from an output callback to stop reading a runaway stream."""


class _Collector:
    """Collects a run's streamed output up to a byte cap; stops the stream past it."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.sizes = {"stdout": 0, "stderr": 0}
        self.parts: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.truncated = False

    def add(self, stream: str, text: str) -> None:
        data = text.encode("utf-8", "replace")
        room = self.cap - self.sizes[stream]
        if len(data) > room:
            self.truncated = True
            if room > 0:
                self.parts[stream].append(data[:room].decode("utf-8", "ignore"))
                self.sizes[stream] = self.cap
            raise _OutputLimit
        self.parts[stream].append(text)
        self.sizes[stream] += len(data)

    def on_stdout(self, message: Any) -> None:
        self.add("stdout", str(message.line))

    def on_stderr(self, message: Any) -> None:
        self.add("stderr", str(message.line))


class E2BSandbox(SandboxBase):
    """A stateful Python session in an `E2B <https://e2b.dev>`_ code-interpreter sandbox.

    Each session is one E2B sandbox (a Firecracker microVM), created on first
    use and killed on :meth:`close`, on a timeout (a runaway cell is not left
    running: the sandbox is killed, the next call starts a new one and the
    result says ``state_lost``) and on an SDK error. Internet access is off
    unless ``network=True``; the sandbox sees only ``env``, never the host's
    environment; its metadata carries the thread id it serves.

    Needs ``pip install 'langchain-secure[e2b]'`` and an API key
    (``E2B_API_KEY`` or ``api_key=``).

    Args:
        template: E2B template name or id; default: the SDK's code interpreter.
        timeout_s: Wall-clock limit of one call.
        session_timeout_s: Lifetime E2B gives the sandbox (renewed by E2B's
            own rules); default 600.
        max_output_bytes: Bytes of stdout (and of stderr) kept per call; past
            it the stream is no longer read and the result is ``truncated``.
        network: Allow internet access from the sandbox.
        env: The environment variables of the sandbox (and nothing else).
        thread_id: Recorded in the sandbox metadata under
            :data:`THREAD_ID_METADATA_KEY` (a pool sets it).
        metadata: More metadata for the sandbox.
        api_key: E2B API key; default: ``E2B_API_KEY``.
        **connection: Other connection options of the SDK (``domain``,
            ``api_url``, ``sandbox_url``, ``debug``, ``request_timeout``, ...).

    Example:
        ```python
        from langchain_secure.sandbox import E2BSandbox

        with E2BSandbox(timeout_s=20, env={"MODE": "demo"}) as sandbox:  # needs E2B_API_KEY
            sandbox.run("import os; mode = os.environ['MODE']")
            assert sandbox.run("mode").text == "'demo'"
        ```
    """

    backend: ClassVar[str] = "e2b"

    def __init__(self, *, template: str | None = None, timeout_s: float = 30.0,
                 session_timeout_s: int = 600, max_output_bytes: int = 65536,
                 network: bool = False, env: Mapping[str, str] | None = None,
                 thread_id: str | None = None, metadata: Mapping[str, str] | None = None,
                 api_key: str | None = None, **connection: Any) -> None:
        self.template = template
        self.timeout_s = float(_positive("timeout_s", timeout_s))
        self.session_timeout_s = int(_positive("session_timeout_s", session_timeout_s,
                                               integer=True))
        self.max_output_bytes: int = _positive("max_output_bytes", max_output_bytes, integer=True)
        if not isinstance(network, bool):
            msg = f"network must be True or False, not {network!r}"
            raise ConfigurationError(msg)
        self.network = network
        self.env = {k: v for k, v in (env or {}).items()}
        _check_env({k: v for k, v in self.env.items() if k not in ("PATH", "HOME")})
        self.thread_id = thread_id
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self._connection = dict(connection)
        if api_key is not None:
            self._connection["api_key"] = api_key
        self._sdk = _sdk()
        self._lock = threading.Lock()
        self._alock: asyncio.Lock | None = None
        self._sandbox: Any = None
        self._async_sandbox: Any = None
        self._sandbox_id: str | None = None
        self._count = 0
        self._closed = False

    @property
    def sandbox_id(self) -> str | None:
        """The E2B sandbox id, once created."""
        return self._sandbox_id

    def _create_kwargs(self) -> dict[str, Any]:
        metadata = dict(self.metadata)
        if self.thread_id is not None:
            metadata[THREAD_ID_METADATA_KEY] = str(self.thread_id)
        kwargs: dict[str, Any] = {
            "timeout": self.session_timeout_s,
            "metadata": metadata,
            "envs": dict(self.env),
            "allow_internet_access": self.network,
            **self._connection,
        }
        if self.template is not None:
            kwargs["template"] = self.template
        return kwargs

    # -- sync ------------------------------------------------------------------

    def start(self) -> None:
        """Create the E2B sandbox now (the first run does it otherwise)."""
        with self._lock:
            self._ensure_sync()

    def _ensure_sync(self) -> Any:
        if self._closed:
            raise SandboxClosedError("sandbox")
        if self._sandbox is None:
            try:
                if self._sandbox_id is not None:
                    self._sandbox = self._sdk.Sandbox.connect(self._sandbox_id,
                                                              **self._connection)
                else:
                    self._sandbox = self._sdk.Sandbox.create(**self._create_kwargs())
            except Exception as exc:
                raise SandboxStartError(backend="e2b", reason=str(exc)) from exc
            self._sandbox_id = self._sandbox.sandbox_id
        return self._sandbox

    def run(self, code: str, *, language: Language = "python",
            timeout_s: float | None = None) -> ExecutionResult:
        """Run one cell; see :class:`~langchain_secure.sandbox.CodeSandbox`."""
        language = _check_language(language)
        limit = self.timeout_s if timeout_s is None else float(_positive("timeout_s", timeout_s))
        with self._lock:
            sandbox = self._ensure_sync()
            collector = _Collector(self.max_output_bytes)
            started = time.perf_counter()
            try:
                execution = sandbox.run_code(
                    code, language=language, timeout=limit,
                    on_stdout=collector.on_stdout, on_stderr=collector.on_stderr)
            except _OutputLimit:
                execution = None
            except Exception as exc:
                return self._failed(exc, started, limit, sync=True)
            return self._result(execution, collector, time.perf_counter() - started)

    def close(self) -> None:
        """Kill the E2B sandbox; idempotent."""
        with self._lock:
            self._closed = True
            self._kill_sync()

    def _kill_sync(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        async_sandbox, self._async_sandbox = self._async_sandbox, None
        sandbox_id, self._sandbox_id = self._sandbox_id, None
        with contextlib.suppress(Exception):
            if sandbox is not None:
                sandbox.kill()
            elif async_sandbox is not None and sandbox_id is not None:
                self._sdk.Sandbox.kill(sandbox_id, **self._connection)

    # -- async -------------------------------------------------------------------

    def _async_lock(self) -> asyncio.Lock:
        if self._alock is None:
            self._alock = asyncio.Lock()
        return self._alock

    async def astart(self) -> None:
        """Create the E2B sandbox now, with the SDK's async client."""
        async with self._async_lock():
            await self._ensure_async()

    async def _ensure_async(self) -> Any:
        if self._closed:
            raise SandboxClosedError("sandbox")
        if self._async_sandbox is None:
            try:
                if self._sandbox_id is not None:
                    self._async_sandbox = await self._sdk.AsyncSandbox.connect(
                        self._sandbox_id, **self._connection)
                else:
                    self._async_sandbox = await self._sdk.AsyncSandbox.create(
                        **self._create_kwargs())
            except Exception as exc:
                raise SandboxStartError(backend="e2b", reason=str(exc)) from exc
            self._sandbox_id = self._async_sandbox.sandbox_id
        return self._async_sandbox

    async def arun(self, code: str, *, language: Language = "python",
                   timeout_s: float | None = None) -> ExecutionResult:
        """Async :meth:`run`, with the SDK's ``AsyncSandbox``."""
        language = _check_language(language)
        limit = self.timeout_s if timeout_s is None else float(_positive("timeout_s", timeout_s))
        async with self._async_lock():
            sandbox = await self._ensure_async()
            collector = _Collector(self.max_output_bytes)
            started = time.perf_counter()
            try:
                execution = await sandbox.run_code(
                    code, language=language, timeout=limit,
                    on_stdout=collector.on_stdout, on_stderr=collector.on_stderr)
            except _OutputLimit:
                execution = None
            except Exception as exc:
                return await self._afailed(exc, started, limit)
            return self._result(execution, collector, time.perf_counter() - started)

    async def aclose(self) -> None:
        """Kill the E2B sandbox with the async client; idempotent."""
        async with self._async_lock():
            self._closed = True
            await self._kill_async()

    async def _kill_async(self) -> None:
        async_sandbox, self._async_sandbox = self._async_sandbox, None
        sandbox, self._sandbox = self._sandbox, None
        if async_sandbox is not None:
            with contextlib.suppress(Exception):
                await async_sandbox.kill()
        elif sandbox is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(sandbox.kill)
        self._sandbox_id = None

    # -- mapping -------------------------------------------------------------------

    def _is_timeout(self, exc: Exception) -> bool:
        timeout_type = getattr(self._sdk, "TimeoutException", None)
        return timeout_type is not None and isinstance(exc, timeout_type)

    def _failed(self, exc: Exception, started: float, limit: float, *,
                sync: bool) -> ExecutionResult:
        self._kill_sync()
        if self._is_timeout(exc):
            return self._timed_out(started, limit)
        raise SandboxError(f"the E2B sandbox failed and was killed: {exc}") from exc

    async def _afailed(self, exc: Exception, started: float, limit: float) -> ExecutionResult:
        await self._kill_async()
        if self._is_timeout(exc):
            return self._timed_out(started, limit)
        raise SandboxError(f"the E2B sandbox failed and was killed: {exc}") from exc

    def _timed_out(self, started: float, limit: float) -> ExecutionResult:
        return ExecutionResult(
            error=ExecutionError("TimeoutError", f"the code ran longer than {limit:g} s; the "
                                 "sandbox was killed and its variables are lost"),
            exit_code=None, duration_s=time.perf_counter() - started, timed_out=True,
            killed="timeout", state_lost=True, backend="e2b")

    def _result(self, execution: Any, collector: _Collector, duration: float) -> ExecutionResult:
        cap = self.max_output_bytes
        results: list[RichResult] = []
        error = None
        count = None
        if execution is None:  # output limit: the stream was abandoned
            error = ExecutionError("OutputLimitExceeded", f"the output passed {cap} bytes; "
                                   "the rest of the cell's output was not read")
        else:
            for item in execution.results:
                data: dict[str, str] = {}
                for attr, mime in _MIME.items():
                    value = getattr(item, attr, None)
                    if value is None:
                        continue
                    data[mime] = value if isinstance(value, str) else json.dumps(value)
                if "text/plain" in data and len(data["text/plain"].encode()) > cap:
                    data["text/plain"] = data["text/plain"].encode()[:cap].decode(
                        "utf-8", "ignore")
                    collector.truncated = True
                results.append(RichResult(MappingProxyType(data),
                                          is_main_result=bool(item.is_main_result)))
            if execution.error is not None:
                err = execution.error
                error = ExecutionError(str(err.name), str(err.value), str(err.traceback))
            count = execution.execution_count
        if count is None:
            self._count += 1
            count = self._count
        else:
            self._count = int(count)
        return ExecutionResult(
            stdout="".join(collector.parts["stdout"]),
            stderr="".join(collector.parts["stderr"]),
            results=tuple(results), error=error,
            exit_code=0 if error is None else 1, duration_s=duration,
            truncated=collector.truncated, execution_count=count, backend="e2b")
