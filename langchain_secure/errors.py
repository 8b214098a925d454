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
├── SandboxError             a sandbox could not do what was asked
│   ├── SandboxUnavailableError  the backend's binary or SDK is missing (.install)
│   ├── SandboxStartError        the sandbox did not start (.stderr)
│   ├── SandboxClosedError       a sandbox or pool was used after close()
│   └── SandboxPoolFullError     every pooled session is busy (.max_sessions)
├── ScanningError            something in the scanning layer failed
│   ├── ModelUnavailableError    the injection model could not be loaded (.model, .reason, .fix)
│   └── PromptInjectionError     flagged text at a blocking door (.door, .source, .risk)
└── ConfigurationError       an API was used with invalid options (also a ValueError)

A failure *inside* a sandbox (an exception in the code, a timeout, an
out-of-memory kill) is not an exception on the host: it is reported in the
:class:`~langchain_secure.sandbox.ExecutionResult`.
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.tools import ToolException

if TYPE_CHECKING:
    from langchain_secure.scanning.base import Finding, ScanVerdict

__all__ = [
    "APPROVAL_REQUIRED_MESSAGE",
    "MODEL_UNAVAILABLE_MESSAGE",
    "PROMPT_INJECTION_MESSAGE",
    "SANDBOX_CLOSED_MESSAGE",
    "SANDBOX_POOL_FULL_MESSAGE",
    "SANDBOX_START_MESSAGE",
    "SANDBOX_UNAVAILABLE_MESSAGE",
    "TOOL_NOT_ALLOWED_MESSAGE",
    "ApprovalRequiredError",
    "AuditError",
    "ConfigurationError",
    "LangchainSecureError",
    "ModelUnavailableError",
    "PolicyDecisionError",
    "PolicyError",
    "PolicyIssue",
    "PromptInjectionError",
    "SandboxClosedError",
    "SandboxError",
    "SandboxPoolFullError",
    "SandboxStartError",
    "SandboxUnavailableError",
    "ScanningError",
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


SANDBOX_UNAVAILABLE_MESSAGE = (
    "the {backend} sandbox needs '{binary}', which was not found on PATH; "
    "install it with: {install}"
)
"""Message of SandboxUnavailableError."""

SANDBOX_START_MESSAGE = "the {backend} sandbox did not start: {reason}"
"""Message of SandboxStartError."""

SANDBOX_CLOSED_MESSAGE = "this {what} is closed"
"""Message of SandboxClosedError."""

SANDBOX_POOL_FULL_MESSAGE = (
    "all {max_sessions} sandbox sessions are busy; raise max_sessions or retry later"
)
"""Message of SandboxPoolFullError."""


class SandboxError(LangchainSecureError):
    """A sandbox could not do what was asked (base of the sandbox errors)."""


class SandboxUnavailableError(SandboxError):
    """The backend's binary is not installed.

    Attributes:
        backend: ``"bubblewrap"`` or ``"gvisor"``.
        binary: The executable that was looked for (``bwrap``, ``runsc``).
        install: The command that installs it (``apt-get install bubblewrap``).
    """

    def __init__(self, *, backend: str, binary: str, install: str) -> None:
        self.backend = backend
        self.binary = binary
        self.install = install
        super().__init__(SANDBOX_UNAVAILABLE_MESSAGE.format(
            backend=backend, binary=binary, install=install))


class SandboxStartError(SandboxError):
    """The sandbox process did not start or did not say it was ready.

    Attributes:
        backend: The backend's name.
        reason: What went wrong, in a sentence.
        stderr: What the sandbox runtime printed (capped), often the real cause.
    """

    def __init__(self, *, backend: str, reason: str, stderr: str = "") -> None:
        self.backend = backend
        self.reason = reason
        self.stderr = stderr
        message = SANDBOX_START_MESSAGE.format(backend=backend, reason=reason)
        if stderr.strip():
            message += "\n" + stderr.strip()
        super().__init__(message)


class SandboxClosedError(SandboxError):
    """A sandbox or a pool was used after it was closed."""

    def __init__(self, what: str = "sandbox") -> None:
        self.what = what
        super().__init__(SANDBOX_CLOSED_MESSAGE.format(what=what))


class SandboxPoolFullError(SandboxError):
    """A pool had no room for a new session and none could be evicted.

    Attributes:
        max_sessions: The pool's bound.
    """

    def __init__(self, *, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        super().__init__(SANDBOX_POOL_FULL_MESSAGE.format(max_sessions=max_sessions))


MODEL_UNAVAILABLE_MESSAGE = "prompt-injection model {model!r} could not be loaded: {reason}. {fix}"
"""Message of :class:`ModelUnavailableError`."""

PROMPT_INJECTION_MESSAGE = (
    "content at door {door!r}{from_source} was blocked: possible prompt injection "
    "(risk {risk:.2f}; {kinds})"
)
"""Message of :class:`PromptInjectionError`; it never quotes the scanned text."""


class ScanningError(LangchainSecureError):
    """Base class of the errors raised by the scanning layer."""


class ModelUnavailableError(ScanningError):
    """The prompt-injection model could not be loaded; nothing was downloaded or retried.

    Attributes:
        model: The hub id or local directory that was asked for.
        reason: What went wrong, in a sentence.
        fix: How to fix it, in a sentence (often a command to run).

    Example:
        ```python
        from langchain_secure.scanning import ModelUnavailableError

        err = ModelUnavailableError(
            model="/models/pi", reason="directory /models/pi does not exist", fix="Fix the path."
        )
        assert "does not exist" in str(err)
        ```
    """

    def __init__(self, *, model: str, reason: str, fix: str) -> None:
        self.model = model
        self.reason = reason
        self.fix = fix
        super().__init__(MODEL_UNAVAILABLE_MESSAGE.format(model=model, reason=reason, fix=fix))


class PromptInjectionError(ScanningError):
    """Text arriving at a door was flagged and the door's action is ``block``.

    Attributes:
        door: The door the text came through (``input``, ``documents``, ``tool_output``).
        source: Where the text came from (a tool name, a URL), or ``None``.
        risk: The combined risk in [0, 1].
        findings: What the detectors found (spans into the text, never the text).

    Example:
        ```python
        from langchain_secure.scanning import PromptInjectionError, SignatureDetector

        verdict = SignatureDetector().scan("Ignore all previous instructions.")
        err = PromptInjectionError.from_verdict(verdict, door="input")
        assert err.risk == verdict.risk
        ```
    """

    def __init__(
        self,
        *,
        door: str,
        source: str | None,
        risk: float,
        findings: tuple[Finding, ...] = (),
    ) -> None:
        self.door = door
        self.source = source
        self.risk = risk
        self.findings = findings
        kinds = ", ".join(sorted({f.kind for f in findings})) or "no findings"
        from_source = f" from {source!r}" if source else ""
        super().__init__(
            PROMPT_INJECTION_MESSAGE.format(
                door=door, from_source=from_source, risk=risk, kinds=kinds
            )
        )

    @classmethod
    def from_verdict(
        cls, verdict: ScanVerdict, *, door: str, source: str | None = None
    ) -> PromptInjectionError:
        """Build the error for a flagged verdict.

        Args:
            verdict: The verdict that made the door block.
            door: The door the text came through.
            source: Where the text came from, if known.

        Returns:
            The error, carrying the verdict's risk and findings.
        """
        return cls(door=door, source=source, risk=verdict.risk, findings=verdict.findings)
