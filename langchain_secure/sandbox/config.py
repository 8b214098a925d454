"""SandboxSpec: what a policy's ``sandbox`` section says, and how to build it.

This module imports pydantic only; backends are imported when built.

Example:
    ```python
    from langchain_secure.sandbox.config import SandboxSpec

    spec = SandboxSpec.model_validate({"backend": "bubblewrap", "timeout_s": 10})
    with spec.build() as sandbox:
        assert sandbox.run("2 ** 10").text == "1024"
    ```
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from langchain_secure.sandbox.base import CodeSandbox
    from langchain_secure.sandbox.pool import SandboxPool

__all__ = ["Backend", "SandboxSpec"]

Backend = Literal["bubblewrap", "gvisor", "e2b"]
"""The sandbox backends a policy can choose."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ENV = frozenset({"PATH", "HOME", "TMPDIR", "LANG", "PWD"})


class SandboxSpec(BaseModel):
    """Which backend runs code, and its limits. Unknown keys are errors; instances are frozen.

    Example:
        ```python
        from langchain_secure.sandbox import SandboxSpec

        spec = SandboxSpec(backend="gvisor", timeout_s=20, memory_mb=1024,
                           env={"MPLBACKEND": "Agg"})
        pool = spec.pool(max_sessions=4)   # sessions keyed by thread id
        pool.close()
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Backend = "bubblewrap"
    """``bubblewrap`` (local, fast), ``gvisor`` (local, stronger), ``e2b`` (cloud microVM)."""
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Wall-clock limit of one call; the sandbox is killed (and restarted) past it."""
    memory_mb: int = Field(default=512, ge=64, le=65536)
    """Memory limit of a session (local backends)."""
    max_processes: int = Field(default=64, ge=4, le=4096)
    """Processes and threads a session may have at once (local backends)."""
    max_output_bytes: int = Field(default=65536, ge=256, le=64 << 20)
    """Bytes of stdout, and of stderr, kept per call; the rest is dropped and flagged."""
    max_file_mb: int = Field(default=64, ge=1, le=65536)
    """Largest file a session may write, and the size of its ``/tmp`` (local backends)."""
    network: bool = False
    """Allow network access (off: loopback only locally, no internet on E2B)."""
    env: dict[str, str] = Field(default_factory=dict)
    """The only environment variables the code sees (besides PATH, HOME, TMPDIR, LANG)."""
    e2b_template: str | None = None
    """E2B template name or id (``backend: e2b`` only)."""

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _ENV_NAME.fullmatch(key):
                msg = f"{key!r} is not a valid environment variable name"
                raise ValueError(msg)
            if key in _RESERVED_ENV:
                msg = f"{key} is set by the sandbox and cannot be overridden"
                raise ValueError(msg)
            if "\0" in item:
                msg = f"the value of {key} contains a NUL byte"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _template_only_for_e2b(self) -> SandboxSpec:
        if self.e2b_template is not None and self.backend != "e2b":
            msg = "e2b_template is only valid with backend: e2b"
            raise ValueError(msg)
        return self

    def build(self, **overrides: Any) -> CodeSandbox:
        """A new, unstarted session of the chosen backend with these settings.

        Args:
            **overrides: Backend options to add or replace (e.g. ``thread_id``
                or ``api_key`` for E2B, ``python`` for the local backends).

        Raises:
            SandboxUnavailableError: A local backend's binary is not installed.
            ImportError: ``backend: e2b`` without the ``e2b`` extra installed.
        """
        common: dict[str, Any] = {
            "timeout_s": self.timeout_s, "max_output_bytes": self.max_output_bytes,
            "network": self.network, "env": dict(self.env),
        }
        if self.backend == "e2b":
            from langchain_secure.sandbox.e2b import E2BSandbox

            options = {**common, "template": self.e2b_template, **overrides}
            return E2BSandbox(**options)
        local = {**common, "memory_mb": self.memory_mb, "max_processes": self.max_processes,
                 "max_file_mb": self.max_file_mb, **overrides}
        if self.backend == "gvisor":
            from langchain_secure.sandbox.gvisor import GVisorSandbox

            return GVisorSandbox(**local)
        from langchain_secure.sandbox.bubblewrap import BubblewrapSandbox

        return BubblewrapSandbox(**local)

    def factory(self, **overrides: Any) -> Callable[[], CodeSandbox]:
        """A zero-argument callable that builds a new session (for :class:`SandboxPool`)."""
        return lambda: self.build(**overrides)

    def pool(self, *, max_sessions: int = 8, warm: int | None = None,
             idle_ttl_s: float = 600.0, **overrides: Any) -> SandboxPool:
        """A :class:`~langchain_secure.sandbox.SandboxPool` of sessions built from this spec.

        ``warm`` defaults to 1 for local backends and 0 for E2B (a warm E2B
        sandbox would be created before its thread id is known for its metadata,
        and costs money while it waits).
        """
        from langchain_secure.sandbox.pool import SandboxPool

        if warm is None:
            warm = 0 if self.backend == "e2b" else 1
        return SandboxPool(self.factory(**overrides), max_sessions=max_sessions, warm=warm,
                           idle_ttl_s=idle_ttl_s)
