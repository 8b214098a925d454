"""A fake sandbox for tests: scripted results, no code is ever run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import ClassVar

from langchain_secure.sandbox.base import ExecutionResult, Language, SandboxBase, _check_language
from langchain_secure.sandbox.errors import SandboxClosedError

__all__ = ["FakeSandbox"]


class FakeSandbox(SandboxBase):
    r"""A :class:`~langchain_secure.sandbox.CodeSandbox` that returns scripted results.

    It never runs the code: the result for a call is ``responses[code]`` when
    present, else ``default(code)``. Every call is recorded in :attr:`calls`.

    Args:
        responses: Result per exact code string.
        default: Result for other code; default: an ``"ok"`` result whose
            stdout is empty.

    Example:
        ```python
        from langchain_secure.sandbox import ExecutionResult
        from langchain_secure.sandbox.testing import FakeSandbox

        fake = FakeSandbox({"1+1": ExecutionResult(stdout="2\n")})
        assert fake.run("1+1").stdout == "2\n"
        assert fake.calls == [("1+1", "python")]
        ```
    """

    backend: ClassVar[str] = "fake"

    def __init__(self, responses: Mapping[str, ExecutionResult] | None = None, *,
                 default: Callable[[str], ExecutionResult] | None = None) -> None:
        self.responses = dict(responses or {})
        self.default = default or (lambda code: ExecutionResult(backend="fake"))
        self.calls: list[tuple[str, Language]] = []
        self.started = False
        self.thread_id: str | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Mark the fake started."""
        if self._closed:
            raise SandboxClosedError("sandbox")
        self.started = True

    def run(self, code: str, *, language: Language = "python",
            timeout_s: float | None = None) -> ExecutionResult:
        """Record the call and return its scripted result."""
        language = _check_language(language)
        with self._lock:
            if self._closed:
                raise SandboxClosedError("sandbox")
            self.started = True
            self.calls.append((code, language))
        if code in self.responses:
            return self.responses[code]
        return self.default(code)

    def close(self) -> None:
        """Mark the fake closed."""
        self._closed = True
