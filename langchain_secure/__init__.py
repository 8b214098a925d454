"""langchain-secure: a security execution layer for LangChain and LangGraph agents.

One :class:`Guard` decides every tool call against a declarative policy; thin
adapters put it into the surfaces people already use (:class:`GuardedToolNode`
for graphs, :meth:`Guard.wrap_tools` for plain tool calls).

Importing this package is cheap: names load on first use (PEP 562), and no heavy
optional dependency (torch, llm_guard, e2b_code_interpreter, langfuse) is ever
imported here.

Example:
    ```python
    from langchain_secure import Guard, load_policy_text

    guard = Guard(load_policy_text("personas: {analyst: {tools: [search]}}"))
    guard.decide({"name": "search", "args": {}, "id": "1"}, persona="analyst").allowed
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_secure._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_secure.doors import ScanOutcome
    from langchain_secure.errors import (
        ApprovalRequiredError,
        ConfigurationError,
        LangchainSecureError,
        PolicyDecisionError,
        PolicyError,
        PolicyIssue,
        PromptInjectionError,
        ToolNotAllowedError,
    )
    from langchain_secure.guard import BatchCheck, Guard, ReviewedCall
    from langchain_secure.integrations.approval import ApprovalNode, approval_required
    from langchain_secure.integrations.callbacks import (
        AsyncSecurityCallbackHandler,
        SecurityCallbackHandler,
    )
    from langchain_secure.integrations.middleware import SecurityMiddleware
    from langchain_secure.integrations.nodes import GuardedToolNode
    from langchain_secure.integrations.scan_nodes import DocumentScanNode, InputScanNode
    from langchain_secure.integrations.tools import GuardedTool
    from langchain_secure.policy.engine import Action, Decision, PolicyEngine
    from langchain_secure.policy.load import load_policy, load_policy_text
    from langchain_secure.policy.model import Policy
    from langchain_secure.state import (
        SecureMessagesState,
        SecurityState,
        merge_security_state,
    )

__version__ = "0.1.0.dev0"

_EXPORTS: dict[str, str] = {
    "Action": "langchain_secure.policy.engine",
    "ApprovalNode": "langchain_secure.integrations.approval",
    "AsyncSecurityCallbackHandler": "langchain_secure.integrations.callbacks",
    "DocumentScanNode": "langchain_secure.integrations.scan_nodes",
    "InputScanNode": "langchain_secure.integrations.scan_nodes",
    "PromptInjectionError": "langchain_secure.errors",
    "ScanOutcome": "langchain_secure.doors",
    "SecurityCallbackHandler": "langchain_secure.integrations.callbacks",
    "SecurityMiddleware": "langchain_secure.integrations.middleware",
    "ApprovalRequiredError": "langchain_secure.errors",
    "BatchCheck": "langchain_secure.guard",
    "ConfigurationError": "langchain_secure.errors",
    "Decision": "langchain_secure.policy.engine",
    "Guard": "langchain_secure.guard",
    "GuardedTool": "langchain_secure.integrations.tools",
    "GuardedToolNode": "langchain_secure.integrations.nodes",
    "LangchainSecureError": "langchain_secure.errors",
    "Policy": "langchain_secure.policy.model",
    "PolicyDecisionError": "langchain_secure.errors",
    "PolicyEngine": "langchain_secure.policy.engine",
    "PolicyError": "langchain_secure.errors",
    "PolicyIssue": "langchain_secure.errors",
    "ReviewedCall": "langchain_secure.guard",
    "SecureMessagesState": "langchain_secure.state",
    "SecurityState": "langchain_secure.state",
    "ToolNotAllowedError": "langchain_secure.errors",
    "approval_required": "langchain_secure.integrations.approval",
    "load_policy": "langchain_secure.policy.load",
    "load_policy_text": "langchain_secure.policy.load",
    "merge_security_state": "langchain_secure.state",
}

__all__ = [
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
