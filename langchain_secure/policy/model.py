"""The policy schema: pydantic models for what a YAML policy may say.

A policy is default deny. A call runs only when its persona lists the tool, every
argument constraint passes, no budget is spent, and no flow rule or approval
requirement holds it. Entries under a persona can only tighten what the top-level
``tools`` section says: their constraints are added, approval is required when
either side requires it, and the smaller budget wins.

Example:
    ```python
    from langchain_secure.policy import Policy

    policy = Policy.model_validate(
        {
            "personas": {"analyst": {"tools": ["read_report", "send_email"]}},
            "tools": {
                "read_report": {
                    "labels": ["reads_sensitive"],
                    "args": {"path": {"path": ["/srv/reports/**"]}},
                },
                "send_email": {"labels": ["egress"]},
            },
            "flows": [
                {
                    "id": "no-exfiltration",
                    "after": ["reads_sensitive"],
                    "then": ["egress"],
                    "action": "require_approval",
                }
            ],
        }
    )
    ```
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from langchain_secure.errors import PolicyError, PolicyIssue
from langchain_secure.policy.constraints import ArgConstraint
from langchain_secure.sandbox.config import SandboxSpec
from langchain_secure.scanning.config import ScanningSpec

__all__ = [
    "BUILTIN_LABELS",
    "ApprovalCondition",
    "ApprovalSpec",
    "AuditSpec",
    "FlowRule",
    "Limits",
    "PersonaSpec",
    "PersonaToolSpec",
    "Policy",
    "ToolAuditSpec",
    "ToolSpec",
]

BUILTIN_LABELS: dict[str, str] = {
    "reads_sensitive": "the tool reads data that must not leave the organisation",
    "egress": "the tool sends data out (email, HTTP, chat, uploads)",
    "writes": "the tool changes state (files, databases, tickets, payments)",
    "untrusted_source": "the tool returns content written by third parties",
    "untrusted": "the thread has seen content that was flagged or came from an untrusted source",
}
"""Labels every policy knows; policies may declare their own under ``labels``."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_LABEL = re.compile(r"[a-z][a-z0-9_]*")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_labels(values: list[str]) -> list[str]:
    for value in values:
        if not _LABEL.fullmatch(value):
            msg = f"label {value!r} must be lower_snake_case (letters, digits, underscores)"
            raise ValueError(msg)
    if len(set(values)) != len(values):
        raise ValueError("labels must not repeat")
    return values


class ApprovalCondition(_Model):
    """One condition under ``approval.when``; it holds when all of its parts hold.

    A condition on an argument holds when the argument satisfies the constraint,
    and also, failing closed, when the argument is missing or has a type the
    constraint cannot judge (``amount: "5000"`` for a numeric range).

    Example:
        ```python
        from langchain_secure.policy import ApprovalCondition

        ApprovalCondition.model_validate({"args": {"amount": {"range": {"min": 100}}}})
        ```
    """

    args: dict[str, ArgConstraint] = Field(default_factory=dict)
    """Argument constraints that must all be satisfied for the condition to hold."""
    thread_labels: list[str] = Field(default_factory=list)
    """The condition holds when the thread has seen any of these labels."""

    @field_validator("thread_labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return _check_labels(value)

    @model_validator(mode="after")
    def _not_empty(self) -> ApprovalCondition:
        if not self.args and not self.thread_labels:
            raise ValueError("an approval condition needs 'args' or 'thread_labels'")
        return self


class ApprovalSpec(_Model):
    """When a tool call needs a person's approval.

    In YAML: ``approval: always``, ``approval: never`` (the default), or
    ``approval: {when: [condition, ...]}`` where any condition that holds requires
    approval.

    Example:
        ```python
        from langchain_secure.policy import ApprovalSpec

        ApprovalSpec.model_validate("always").mode  # 'always'
        ApprovalSpec.model_validate({"when": [{"thread_labels": ["untrusted"]}]}).mode
        ```
    """

    mode: Literal["always", "never", "conditional"] = "never"
    when: tuple[ApprovalCondition, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data not in ("always", "never"):
                msg = "approval must be 'always', 'never' or a mapping with 'when'"
                raise ValueError(msg)
            return {"mode": data}
        if isinstance(data, dict) and "mode" not in data and "when" in data:
            return {"mode": "conditional", **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalSpec:
        if self.mode == "conditional" and not self.when:
            raise ValueError("conditional approval needs at least one condition under 'when'")
        if self.mode != "conditional" and self.when:
            raise ValueError(f"approval '{self.mode}' takes no 'when' conditions")
        return self


FromUserAction = Literal["deny", "require_approval"]
"""What happens to a call whose ``from_user`` argument did not come from the user."""


class FromUserRule(_Model):
    """One ``from_user`` argument: where its value may come from, and what happens if not.

    In YAML the short form ``url: require_approval`` is ``{action: require_approval}``.
    ``or_from`` names tools (by name or by label) whose outputs in the same
    conversation also count as a source: a URL a colleague posted in a channel
    the assistant read, the user's own address from their profile.

    Example:
        ```python
        from langchain_secure.policy import FromUserRule

        FromUserRule.model_validate("deny")
        FromUserRule.model_validate(
            {"action": "require_approval", "or_from": ["read_inbox", "workspace_messages"]}
        )
        ```
    """

    action: FromUserAction
    """``deny`` or ``require_approval`` when the value comes from none of the sources."""
    or_from: list[str] = Field(default_factory=list)
    """Tools, by name or label, whose outputs also ground the value. An output that
    failed (``status: error``) or that the tool-output door flagged never does."""

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        return {"action": data} if isinstance(data, str) else data

    @field_validator("or_from")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("or_from entries must not repeat")
        return value


class ToolAuditSpec(_Model):
    """How a tool's calls are written to the audit log.

    Example:
        ```python
        from langchain_secure.policy import ToolAuditSpec

        ToolAuditSpec.model_validate({"hash_only": ["password", "api_key"]})
        ```
    """

    hash_only: list[str] = Field(default_factory=list)
    """Arguments stored only as a keyed hash (HMAC-SHA256), never in clear."""


class ToolSpec(_Model):
    """What the policy says about one tool, whichever persona calls it.

    Example:
        ```python
        from langchain_secure.policy import ToolSpec

        ToolSpec.model_validate(
            {
                "labels": ["writes"],
                "args": {"query": {"sql": "read_only"}},
                "max_calls_per_thread": 20,
            }
        )
        ```
    """

    description: str | None = None
    labels: list[str] = Field(default_factory=list)
    """Labels the thread gains when this tool runs; flow rules match on them."""
    args: dict[str, ArgConstraint] = Field(default_factory=dict)
    """Constraints per argument name. A constrained argument that is missing is
    denied unless the constraint says ``optional: true``."""
    extra_args: Literal["allow", "deny"] = "allow"
    """Whether arguments without a constraint may be passed."""
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    from_user: dict[str, FromUserRule] = Field(default_factory=dict)
    """Arguments whose value must come from the user's own messages (or the outputs
    of the tools under ``or_from``), and what happens when it does not: ``deny``
    or ``require_approval`` (see :mod:`langchain_secure.policy.provenance`)."""
    max_calls_per_thread: int | None = Field(default=None, ge=0)
    audit: ToolAuditSpec = Field(default_factory=ToolAuditSpec)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return _check_labels(value)


class PersonaToolSpec(_Model):
    """A persona's own, tightening, settings for one tool it may use.

    Example:
        ```python
        from langchain_secure.policy import PersonaToolSpec

        PersonaToolSpec.model_validate({"approval": "always", "max_calls_per_thread": 3})
        ```
    """

    args: dict[str, ArgConstraint] = Field(default_factory=dict)
    approval: ApprovalSpec = Field(default_factory=ApprovalSpec)
    from_user: dict[str, FromUserRule] = Field(default_factory=dict)
    """As the tool's ``from_user``; an argument named in both must pass both rules
    (a persona can only tighten)."""
    max_calls_per_thread: int | None = Field(default=None, ge=0)


class PersonaSpec(_Model):
    """A named role and the tools it may call (an explicit allowlist).

    ``tools`` is a list of names, or a mapping from name to a
    :class:`PersonaToolSpec` that tightens the tool's settings for this persona.

    Example:
        ```python
        from langchain_secure.policy import PersonaSpec

        PersonaSpec.model_validate({"tools": ["search", "read_report"]})
        PersonaSpec.model_validate({"tools": {"refund": {"approval": "always"}}})
        ```
    """

    description: str | None = None
    tools: dict[str, PersonaToolSpec] = Field(default_factory=dict)
    max_calls_per_thread: int | None = Field(default=None, ge=0)
    sandbox: SandboxSpec | None = None
    """Where this persona's code runs; replaces the policy's ``sandbox`` section."""

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            names: dict[str, Any] = {}
            for name in value:
                if not isinstance(name, str) or not name:
                    raise ValueError("tool names must be non-empty strings")
                if name in names:
                    raise ValueError(f"tool {name!r} is listed twice")
                names[name] = {}
            return names
        if isinstance(value, dict):
            return {name: {} if spec is None else spec for name, spec in value.items()}
        return value


class FlowRule(_Model):
    """What may follow what within a thread: the confused-deputy rule.

    When the thread has already seen any label in ``after`` and the called tool
    carries any label in ``then``, the call is denied or held for approval.

    Example:
        ```python
        from langchain_secure.policy import FlowRule

        FlowRule.model_validate(
            {"id": "no-exfil", "after": ["reads_sensitive"], "then": ["egress"], "action": "deny"}
        )
        ```
    """

    id: str
    after: list[str] = Field(min_length=1)
    then: list[str] = Field(min_length=1)
    action: Literal["deny", "require_approval"]
    reason: str | None = None
    personas: list[str] | None = None
    """Limit the rule to these personas; all personas when omitted."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            msg = "flow id must start with a letter or digit and use only letters, digits, '_.:-'"
            raise ValueError(msg)
        return value

    @field_validator("after", "then")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return _check_labels(value)


class AuditSpec(_Model):
    """How the audit log treats secrets.

    Example:
        ```python
        from langchain_secure.policy import AuditSpec

        AuditSpec.model_validate({"redact_secrets": True})
        ```
    """

    redact_secrets: Literal["auto", True, False] = "auto"
    """Secrets the secrets detector finds in arguments and model messages are stored
    as keyed hashes. ``auto``: when the detector is installed (the ``llm-guard``
    extra); ``true``: always, and sealing fails (calls do not run) without it."""


class Limits(_Model):
    """Budgets that hold for every persona.

    Example:
        ```python
        from langchain_secure.policy import Limits

        Limits(max_calls_per_thread=100)
        ```
    """

    max_calls_per_thread: int | None = Field(default=None, ge=0)


class Policy(_Model):
    """A whole policy: personas, tools, flow rules and limits.

    Load one from YAML with :func:`langchain_secure.load_policy`, or build it in
    Python with ``Policy.model_validate({...})``. Invalid policies raise
    :class:`~langchain_secure.PolicyError` naming every problem.

    Example:
        ```python
        from langchain_secure.policy import Policy

        policy = Policy.model_validate(
            {"default_persona": "reader", "personas": {"reader": {"tools": ["search"]}}}
        )
        policy.persona_names()  # ('reader',)
        ```
    """

    version: Literal[1] = 1
    name: str | None = None
    description: str | None = None
    default_persona: str | None = None
    """Persona used when a call names none; without it such calls are denied."""
    labels: dict[str, str] = Field(default_factory=dict)
    """User-defined labels with a description (built-in labels need no entry)."""
    personas: dict[str, PersonaSpec] = Field(min_length=1)
    tools: dict[str, ToolSpec] = Field(default_factory=dict)
    flows: list[FlowRule] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    sandbox: SandboxSpec | None = None
    """Where code tools run (backend and limits); personas may override it."""
    audit: AuditSpec = Field(default_factory=AuditSpec)
    scanning: ScanningSpec = Field(default_factory=ScanningSpec)
    """Which detectors run at each door (input, documents, tool output), and what
    happens to flagged text. Default: the fast signatures everywhere."""

    @field_validator("labels")
    @classmethod
    def _declared_labels(cls, value: dict[str, str]) -> dict[str, str]:
        _check_labels(list(value))
        return value

    @model_validator(mode="after")
    def _references(self) -> Policy:
        issues = [
            PolicyIssue(file="<policy>", line=None, column=None, key=_dotted(path), message=msg,
                        path=path)
            for path, msg in _semantic_issues(self)
        ]
        if issues:
            raise PolicyError(issues)
        return self

    def sandbox_for(self, persona: str | None) -> SandboxSpec:
        """The sandbox a persona's code runs in: its own, the policy's, or the default.

        The default is :class:`~langchain_secure.sandbox.SandboxSpec` with its own
        defaults: bubblewrap, no network, 30 s, 512 MB.
        """
        spec = self.personas[persona].sandbox if persona in self.personas else None
        return spec or self.sandbox or SandboxSpec()

    def persona_names(self) -> tuple[str, ...]:
        """Names of the personas, in policy order."""
        return tuple(self.personas)

    def known_labels(self) -> frozenset[str]:
        """Built-in labels and the labels declared under ``labels``."""
        return frozenset(BUILTIN_LABELS) | frozenset(self.labels)


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


def _semantic_issues(policy: Policy) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-references pydantic cannot check field by field."""
    issues: list[tuple[tuple[str | int, ...], str]] = []
    known = policy.known_labels()
    if policy.default_persona is not None and policy.default_persona not in policy.personas:
        issues.append(
            (("default_persona",), f"persona {policy.default_persona!r} is not defined")
        )
    listed = {tool for persona in policy.personas.values() for tool in persona.tools}
    for tname, tspec in policy.tools.items():
        # a misspelt tool entry would otherwise leave the real tool unconstrained
        if tname not in listed:
            issues.append((("tools", tname), f"tool {tname!r} is configured but no persona "
                           "lists it (a misspelt name leaves the real tool unconstrained)"))
        for pos, label in enumerate(tspec.labels):
            if label not in known:
                issues.append((("tools", tname, "labels", pos),
                               f"unknown label {label!r}: declare it under 'labels' or use a "
                               "built-in label"))
    seen_ids: set[str] = set()
    for index, flow in enumerate(policy.flows):
        if flow.id in seen_ids:
            issues.append((("flows", index, "id"), f"flow id {flow.id!r} is used twice"))
        seen_ids.add(flow.id)
        for field in ("after", "then"):
            for pos, label in enumerate(getattr(flow, field)):
                if label not in known:
                    issues.append(
                        (("flows", index, field, pos), f"unknown label {label!r}: declare it "
                         "under 'labels' or use a built-in label")
                    )
        for pos, persona in enumerate(flow.personas or ()):
            if persona not in policy.personas:
                issues.append((("flows", index, "personas", pos),
                               f"persona {persona!r} is not defined"))
    label_names = {label for spec in policy.tools.values() for label in spec.labels}
    sources = listed | label_names
    rules: list[tuple[tuple[str | int, ...], dict[str, FromUserRule]]] = [
        (("tools", name, "from_user"), spec.from_user) for name, spec in policy.tools.items()
    ]
    rules.extend((("personas", pname, "tools", tname, "from_user"), spec.from_user)
                 for pname, pspec in policy.personas.items()
                 for tname, spec in pspec.tools.items())
    for path, table in rules:
        for arg, rule in table.items():
            for pos, source in enumerate(rule.or_from):
                if source not in sources:
                    # a misspelt source would silently ground nothing
                    issues.append(((*path, arg, "or_from", pos),
                                   f"{source!r} is neither a tool a persona lists nor a "
                                   "label of a configured tool"))
    approvals: list[tuple[tuple[str | int, ...], ApprovalSpec]] = [
        (("tools", name, "approval"), spec.approval) for name, spec in policy.tools.items()
    ]
    for pname, pspec in policy.personas.items():
        approvals.extend(
            (("personas", pname, "tools", tname, "approval"), spec.approval)
            for tname, spec in pspec.tools.items()
        )
    for path, approval in approvals:
        for cindex, condition in enumerate(approval.when):
            for pos, label in enumerate(condition.thread_labels):
                if label not in known:
                    issues.append(((*path, "when", cindex, "thread_labels", pos),
                                   f"unknown label {label!r}"))
    return issues
