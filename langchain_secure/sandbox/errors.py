"""The sandbox errors, re-exported from :mod:`langchain_secure.errors` (their home)."""

from langchain_secure.errors import (
    SANDBOX_CLOSED_MESSAGE,
    SANDBOX_POOL_FULL_MESSAGE,
    SANDBOX_START_MESSAGE,
    SANDBOX_UNAVAILABLE_MESSAGE,
    SandboxClosedError,
    SandboxError,
    SandboxPoolFullError,
    SandboxStartError,
    SandboxUnavailableError,
)

__all__ = [
    "SANDBOX_CLOSED_MESSAGE",
    "SANDBOX_POOL_FULL_MESSAGE",
    "SANDBOX_START_MESSAGE",
    "SANDBOX_UNAVAILABLE_MESSAGE",
    "SandboxClosedError",
    "SandboxError",
    "SandboxPoolFullError",
    "SandboxStartError",
    "SandboxUnavailableError",
]
