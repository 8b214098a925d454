from __future__ import annotations

import subprocess
import sys

import langchain_secure

EXPECTED_ALL = [
    "Action",
    "ApprovalNode",
    "ApprovalRequiredError",
    "AsyncSecurityCallbackHandler",
    "BatchCheck",
    "ConfigurationError",
    "Decision",
    "DocumentScanNode",
    "Guard",
    "GuardedTool",
    "GuardedToolNode",
    "InputScanNode",
    "LangchainSecureError",
    "Policy",
    "PolicyDecisionError",
    "PolicyEngine",
    "PolicyError",
    "PolicyIssue",
    "PromptInjectionError",
    "ReviewedCall",
    "ScanOutcome",
    "SecureMessagesState",
    "SecurityCallbackHandler",
    "SecurityMiddleware",
    "SecurityState",
    "ToolNotAllowedError",
    "__version__",
    "approval_required",
    "load_policy",
    "load_policy_text",
    "merge_security_state",
]

HEAVY = ("torch", "llm_guard", "e2b_code_interpreter", "e2b", "langfuse", "transformers",
         "psycopg", "ipywidgets")


def test_all_is_sorted_and_exact() -> None:
    assert langchain_secure.__all__ == EXPECTED_ALL
    assert sorted(langchain_secure.__all__) == langchain_secure.__all__


def test_every_name_resolves() -> None:
    for name in langchain_secure.__all__:
        assert getattr(langchain_secure, name) is not None


def test_unknown_name_raises_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        langchain_secure.Nope  # noqa: B018


def test_import_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, langchain_secure\n"
        "for name in langchain_secure.__all__: getattr(langchain_secure, name)\n"
        "import langchain_secure.testing, langchain_secure.cli\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
