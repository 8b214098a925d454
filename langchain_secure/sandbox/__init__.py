r"""Sandboxed code execution: run a model's code where it cannot hurt the host.

Three backends share one interface, :class:`CodeSandbox` (a stateful session:
variables survive between calls, like a notebook):

* :class:`BubblewrapSandbox`: Linux namespaces via ``bwrap``; local, fast.
* :class:`GVisorSandbox`: gVisor's user-space kernel via ``runsc``; local, stronger.
* :class:`E2BSandbox`: E2B's Firecracker microVMs; remote (``[e2b]`` extra).

:class:`SandboxPool` keeps one session per conversation thread with warm
spares, :class:`SandboxedPythonTool` is the ``run_python`` LangChain tool, and
:class:`SandboxSpec` is what a policy says about sandboxes. See
``docs/sandbox.md`` for what each backend isolates and what it does not.

Importing this package is cheap: names load on first use, and the E2B SDK is
imported only when an :class:`E2BSandbox` is made.

Example:
    ```python
    from langchain_secure.sandbox import BubblewrapSandbox

    with BubblewrapSandbox(timeout_s=5) as sandbox:
        result = sandbox.run("print('hello'); 6 * 7")
        assert (result.stdout, result.text, result.status) == ("hello\n", "42", "ok")
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_secure._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_secure.sandbox.base import (
        CodeSandbox,
        ExecutionError,
        ExecutionResult,
        KillReason,
        Language,
        RichResult,
        Status,
    )
    from langchain_secure.sandbox.bubblewrap import BubblewrapSandbox
    from langchain_secure.sandbox.config import Backend, SandboxSpec
    from langchain_secure.sandbox.e2b import E2BSandbox
    from langchain_secure.sandbox.errors import (
        SandboxClosedError,
        SandboxError,
        SandboxPoolFullError,
        SandboxStartError,
        SandboxUnavailableError,
    )
    from langchain_secure.sandbox.gvisor import GVisorSandbox
    from langchain_secure.sandbox.pool import PoolStats, SandboxPool
    from langchain_secure.sandbox.tool import SandboxedPythonTool, SandboxResolver, format_result

_EXPORTS: dict[str, str] = {
    "Backend": "langchain_secure.sandbox.config",
    "BubblewrapSandbox": "langchain_secure.sandbox.bubblewrap",
    "CodeSandbox": "langchain_secure.sandbox.base",
    "E2BSandbox": "langchain_secure.sandbox.e2b",
    "ExecutionError": "langchain_secure.sandbox.base",
    "ExecutionResult": "langchain_secure.sandbox.base",
    "GVisorSandbox": "langchain_secure.sandbox.gvisor",
    "KillReason": "langchain_secure.sandbox.base",
    "Language": "langchain_secure.sandbox.base",
    "PoolStats": "langchain_secure.sandbox.pool",
    "RichResult": "langchain_secure.sandbox.base",
    "SandboxClosedError": "langchain_secure.sandbox.errors",
    "SandboxError": "langchain_secure.sandbox.errors",
    "SandboxPool": "langchain_secure.sandbox.pool",
    "SandboxPoolFullError": "langchain_secure.sandbox.errors",
    "SandboxResolver": "langchain_secure.sandbox.tool",
    "SandboxSpec": "langchain_secure.sandbox.config",
    "SandboxStartError": "langchain_secure.sandbox.errors",
    "SandboxUnavailableError": "langchain_secure.sandbox.errors",
    "SandboxedPythonTool": "langchain_secure.sandbox.tool",
    "Status": "langchain_secure.sandbox.base",
    "format_result": "langchain_secure.sandbox.tool",
}

__all__ = [
    "Backend",
    "BubblewrapSandbox",
    "CodeSandbox",
    "E2BSandbox",
    "ExecutionError",
    "ExecutionResult",
    "GVisorSandbox",
    "KillReason",
    "Language",
    "PoolStats",
    "RichResult",
    "SandboxClosedError",
    "SandboxError",
    "SandboxPool",
    "SandboxPoolFullError",
    "SandboxResolver",
    "SandboxSpec",
    "SandboxStartError",
    "SandboxUnavailableError",
    "SandboxedPythonTool",
    "Status",
    "format_result",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
