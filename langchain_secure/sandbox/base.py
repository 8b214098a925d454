"""The sandbox contract: :class:`CodeSandbox`, and what a run returns.

A :class:`CodeSandbox` is one stateful session: Python variables defined by one
:meth:`~CodeSandbox.run` are there in the next, as in a notebook, until the
session is closed or killed. Everything that goes wrong *inside* the sandbox
(an exception, a timeout, an out-of-memory kill) comes back as an
:class:`ExecutionResult`; only failures of the sandbox machinery itself raise
(:class:`~langchain_secure.sandbox.SandboxError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from langchain_secure._closing import Closing

__all__ = [
    "CodeSandbox",
    "ExecutionError",
    "ExecutionResult",
    "KillReason",
    "Language",
    "RichResult",
    "SandboxBase",
    "Status",
]

Language = Literal["python", "bash"]
"""What a cell is written in: Python (stateful) or a shell command (``/bin/sh -c``)."""

KillReason = Literal["timeout", "memory", "cpu", "output", "crashed"]
"""Why the sandbox process was killed (or died) during a call."""

Status = Literal["ok", "error", "timeout", "killed"]
"""The outcome of one call, in one word."""


@dataclass(frozen=True)
class ExecutionError:
    """An exception raised by the code (or the reason the sandbox died).

    Attributes:
        name: The exception's class name (``"ZeroDivisionError"``), or for a
            sandbox that died, ``"TimeoutError"``, ``"MemoryError"`` or
            ``"SandboxCrashed"``.
        value: ``str()`` of the exception.
        traceback: The formatted traceback, without the sandbox's own frames.
    """

    name: str
    value: str
    traceback: str = ""

    def summary(self) -> str:
        """``"Name: value"``, the line a person (or a model) reads first."""
        return f"{self.name}: {self.value}" if self.value else self.name


@dataclass(frozen=True)
class RichResult:
    """One displayed value: the last expression of a cell, or a ``display()`` call.

    Attributes:
        data: MIME type to content, like a Jupyter mime bundle. ``text/plain``
            is the ``repr()``; images (``image/png``, ``image/jpeg``) are base64.
        is_main_result: True for the value of the cell's last expression.
    """

    data: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    is_main_result: bool = False

    @property
    def text(self) -> str | None:
        """The ``text/plain`` representation, if any."""
        return self.data.get("text/plain")


@dataclass(frozen=True)
class ExecutionResult:
    r"""What one :meth:`CodeSandbox.run` produced.

    Attributes:
        stdout: Standard output, at most ``max_output_bytes`` of it.
        stderr: Standard error, at most ``max_output_bytes`` of it.
        results: Displayed values; the main one is the cell's last expression.
        error: The exception the code raised, or why the sandbox died; ``None``
            when the code ran to the end (a shell command's failure is its
            ``exit_code``, not an error).
        exit_code: 0 when a Python cell completed, 1 when it raised, the exit
            status of a shell command, or ``None`` when the sandbox was killed.
        duration_s: Wall time of the call as seen by the host, in seconds.
        truncated: Output (stdout, stderr or a displayed value) exceeded the
            limit and was cut.
        timed_out: The call ran past its timeout and the sandbox was killed.
        killed: Why the sandbox process was killed during the call, if it was.
        state_lost: The session's variables are gone (the sandbox was killed
            and the next call starts a fresh one).
        execution_count: How many cells this session has run, this one included.
        backend: The backend that ran the call (``"bubblewrap"``, ``"gvisor"``,
            ``"e2b"``, ``"fake"``).

    Example:
        ```python
        from langchain_secure.sandbox import ExecutionResult

        result = ExecutionResult(stdout="hi\n")
        assert result.status == "ok" and result.text is None
        ```
    """

    stdout: str = ""
    stderr: str = ""
    results: tuple[RichResult, ...] = ()
    error: ExecutionError | None = None
    exit_code: int | None = 0
    duration_s: float = 0.0
    truncated: bool = False
    timed_out: bool = False
    killed: KillReason | None = None
    state_lost: bool = False
    execution_count: int | None = None
    backend: str = ""

    @property
    def status(self) -> Status:
        """``"timeout"``, ``"killed"``, ``"error"`` (exception or non-zero exit) or ``"ok"``."""
        if self.timed_out:
            return "timeout"
        if self.killed is not None:
            return "killed"
        if self.error is not None or self.exit_code not in (0, None):
            return "error"
        return "ok"

    @property
    def ok(self) -> bool:
        """True when the status is ``"ok"``."""
        return self.status == "ok"

    @property
    def text(self) -> str | None:
        """``text/plain`` of the cell's last expression, like a notebook's ``Out[n]``."""
        for result in self.results:
            if result.is_main_result:
                return result.text
        return None


@runtime_checkable
class CodeSandbox(Protocol):
    """One stateful sandbox session that runs code: the interface every backend has.

    Backends: :class:`~langchain_secure.sandbox.BubblewrapSandbox`,
    :class:`~langchain_secure.sandbox.GVisorSandbox`,
    :class:`~langchain_secure.sandbox.E2BSandbox` and, for tests,
    :class:`~langchain_secure.sandbox.testing.FakeSandbox`.

    Example:
        ```python
        from langchain_secure.sandbox import BubblewrapSandbox

        with BubblewrapSandbox(timeout_s=5) as sandbox:
            sandbox.run("x = 6 * 7")
            assert sandbox.run("x").text == "42"
        ```
    """

    @property
    def backend(self) -> str:
        """The backend's name: ``"bubblewrap"``, ``"gvisor"``, ``"e2b"``, ``"fake"``."""
        ...

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        ...

    def start(self) -> None:
        """Start the sandbox now (otherwise the first run starts it); idempotent."""
        ...

    async def astart(self) -> None:
        """Async :meth:`start`."""
        ...

    def run(self, code: str, *, language: Language = "python",
            timeout_s: float | None = None) -> ExecutionResult:
        """Run one cell and wait for its result."""
        ...

    async def arun(self, code: str, *, language: Language = "python",
                   timeout_s: float | None = None) -> ExecutionResult:
        """Async :meth:`run`."""
        ...

    def close(self) -> None:
        """Kill the sandbox and release its resources; idempotent."""
        ...

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        ...


class SandboxBase(Closing):
    """Shared plumbing for backends: context managers and default async methods.

    Subclasses implement :meth:`start`, :meth:`run` and :meth:`close`; the async
    variants run those in a worker thread unless overridden.
    """

    backend: ClassVar[str] = ""

    _closed: bool = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def start(self) -> None:  # pragma: no cover - abstract
        """Start the sandbox now; idempotent."""
        raise NotImplementedError

    def run(self, code: str, *, language: Language = "python",
            timeout_s: float | None = None) -> ExecutionResult:  # pragma: no cover
        """Run one cell and wait for its result."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        """Kill the sandbox; idempotent."""
        raise NotImplementedError

    async def astart(self) -> None:
        """Async :meth:`start` (in a worker thread)."""
        await asyncio.to_thread(self.start)

    async def arun(self, code: str, *, language: Language = "python",
                   timeout_s: float | None = None) -> ExecutionResult:
        """Async :meth:`run` (in a worker thread)."""
        return await asyncio.to_thread(self.run, code, language=language,
                                       timeout_s=timeout_s)



def _check_language(language: Any) -> Language:
    if language not in ("python", "bash"):
        msg = f"language must be 'python' or 'bash', not {language!r}"
        from langchain_secure.errors import ConfigurationError

        raise ConfigurationError(msg)
    return language  # type: ignore[no-any-return]
