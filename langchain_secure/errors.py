"""The one error hierarchy of langchain-secure.

Every exception this package raises on purpose derives from
:class:`LangchainSecureError`, so ``except LangchainSecureError`` catches all of
them and nothing else. Each carries structured fields (tool, persona, rule, ...)
so callers never have to parse messages; the message templates are module
constants that tests import.

```
LangchainSecureError
├── PolicyError              a policy file or object is invalid (.issues: file, line, key)
├── PolicyDecisionError      a call was not allowed to run
│   ├── ToolNotAllowedError  the policy denied the call (also a langchain ToolException)
│   └── ApprovalRequiredError  the call needs a person's approval and none was given
├── AuditError               the audit log could not be written or read (fail closed)
└── ConfigurationError       an API was used with invalid options (also a ValueError)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.tools import ToolException

__all__ = [
    "APPROVAL_REQUIRED_MESSAGE",
    "TOOL_NOT_ALLOWED_MESSAGE",
    "ApprovalRequiredError",
    "AuditError",
    "ConfigurationError",
    "LangchainSecureError",
    "PolicyDecisionError",
    "PolicyError",
    "PolicyIssue",
    "ToolNotAllowedError",
]

TOOL_NOT_ALLOWED_MESSAGE = (
    "Tool call '{tool}' was refused by the security policy (rule {rule}): {reason}"
)
"""What a denied call tells the model (and the message of ToolNotAllowedError)."""

APPROVAL_REQUIRED_MESSAGE = (
    "Tool call '{tool}' needs a person's approval (rule {rule}): {reason}"
)
"""Message of ApprovalRequiredError."""


class LangchainSecureError(Exception):
    """Base class of every error raised by langchain-secure."""


class AuditError(LangchainSecureError):
    """The audit log could not be written or read.

    Surfaces fail closed on it: a call whose intent could not be sealed does not
    run (unless the guard was built with ``audit_fail_open=True``).
    """


class ConfigurationError(LangchainSecureError, ValueError):
    """An API of this package was called with invalid options."""


@dataclass(frozen=True)
class PolicyIssue:
    """One located problem in a policy.

    Attributes:
        file: Path of the policy file, or ``"<policy>"`` for in-memory policies.
        line: 1-based line number, or ``None`` when the problem has no location.
        column: 1-based column number, or ``None``.
        key: Dotted path of the offending key, e.g. ``tools.read_file.args.path``.
        message: What is wrong, in a sentence.
        path: The key as a tuple (mapping keys and list indexes).
    """

    file: str
    line: int | None
    column: int | None
    key: str
    message: str
    path: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class PolicyError(LangchainSecureError):
    """A policy could not be loaded; ``issues`` lists every problem found.

    Example:
        ```python
        from langchain_secure import PolicyError, load_policy_text

        try:
            load_policy_text("personas: {a: {tools: [x], colour: red}}")
        except PolicyError as err:
            print(err.issues[0].key)  # personas.a.colour
        ```
    """

    def __init__(self, issues: Sequence[PolicyIssue]) -> None:
        self.issues: tuple[PolicyIssue, ...] = tuple(issues)
        lines = [str(issue) for issue in self.issues]
        count = len(lines)
        head = f"invalid policy ({count} problem{'s' if count != 1 else ''})"
        super().__init__(head + ":\n  " + "\n  ".join(lines) if lines else head)


class PolicyDecisionError(LangchainSecureError):
    """A tool call was not allowed to run.

    Attributes:
        tool: Name of the tool that was called.
        persona: Persona the call was decided for.
        rule: Id of the policy rule that decided (a dotted path into the policy).
        reason: Why, in words a person (and the model) can read.
    """

    template = "{tool}: {rule}: {reason}"

    def __init__(self, *, tool: str, persona: str, rule: str, reason: str) -> None:
        self.tool = tool
        self.persona = persona
        self.rule = rule
        self.reason = reason
        super().__init__(self.template.format(tool=tool, rule=rule, reason=reason))


class ToolNotAllowedError(PolicyDecisionError, ToolException):
    """The policy denied a tool call.

    It is also a :class:`langchain_core.tools.ToolException`, so LangChain's own
    tool error handling turns it into a message for the model.
    """

    template = TOOL_NOT_ALLOWED_MESSAGE


class ApprovalRequiredError(PolicyDecisionError):
    """A tool call needs a person's approval and no approval path was available."""

    template = APPROVAL_REQUIRED_MESSAGE
