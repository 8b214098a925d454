"""The scanning errors, re-exported from :mod:`langchain_secure.errors` (their home)."""

from langchain_secure.errors import (
    MODEL_UNAVAILABLE_MESSAGE,
    PROMPT_INJECTION_MESSAGE,
    ModelUnavailableError,
    PromptInjectionError,
    ScanningError,
)

__all__ = [
    "MODEL_UNAVAILABLE_MESSAGE",
    "PROMPT_INJECTION_MESSAGE",
    "ModelUnavailableError",
    "PromptInjectionError",
    "ScanningError",
]
