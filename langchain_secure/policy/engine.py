"""The policy engine: one pure, deterministic function from a call to a decision.

``PolicyEngine.decide(call, persona, state)`` looks at nothing but its arguments
and the policy (the one exception: a ``path`` constraint resolves symlinks on the
local filesystem). The policy is compiled once into a table per (persona, tool),
so a decision is a few dictionary look-ups plus the argument checks.

Checks run in a fixed order and the first that fails decides:

1. the call is well formed (a tool name, a mapping of arguments, a unique id);
2. the persona exists (or the policy has a ``default_persona``);
3. the persona's allowlist names the tool (default deny);
4. budgets: the policy's, the persona's, the tool's;
5. argument constraints, the tool's then the persona's; undeclared arguments
   when the tool says ``extra_args: deny``; ``from_user`` arguments whose rule
   is ``deny`` and whose value is neither in the user's messages nor in the
   outputs of the tools the rule's ``or_from`` names;
6. flow rules that deny, then flow rules that require approval;
7. ``from_user`` arguments whose rule is ``require_approval``, then approval
   requirements, the tool's then the persona's;
8. otherwise the call is allowed.

Every decision names the rule that decided as a dotted path into the policy
(``tools.read_file.args.path``, ``flows.no-exfil``), and a reason a person can
read. Reasons never list what else the policy allows or forbids, and never
echo argument values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from langchain_secure.policy.constraints import ArgConstraint
from langchain_secure.policy.model import ApprovalSpec, Policy
from langchain_secure.policy.provenance import grounded, normalize, ungrounded_values
from langchain_secure.state import SecurityState, merge_security_state

__all__ = ["Action", "Decision", "PolicyEngine"]


class Action(str, Enum):
    """What the guard does with a call."""

    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of deciding one tool call.

    Attributes:
        action: Allow, deny, or hold for approval.
        rule: The policy rule that decided, as a dotted path into the policy.
        reason: Why, for a person and for the model.
        tool: The tool's name as the model called it (``""`` if malformed).
        persona: The persona decided for (``""`` if none could be resolved).
        labels: Labels the thread gains if this call runs.
        tool_call_id: The call's id, when it had one.

    Example:
        ```python
        from langchain_secure import Guard
        from langchain_secure.policy import Policy

        guard = Guard(Policy.model_validate({"personas": {"p": {"tools": ["search"]}}}))
        decision = guard.decide({"name": "delete_db", "args": {}, "id": "1"}, persona="p")
        decision.action.value, decision.rule  # ('deny', 'personas.p.tools')
        ```
    """

    action: Action
    rule: str
    reason: str
    tool: str
    persona: str
    labels: tuple[str, ...] = ()
    tool_call_id: str | None = None

    @property
    def allowed(self) -> bool:
        """True when the call may run without approval."""
        return self.action is Action.ALLOW

    @property
    def denied(self) -> bool:
        """True when the call must not run."""
        return self.action is Action.DENY

    @property
    def needs_approval(self) -> bool:
        """True when the call may run only after a person approves it."""
        return self.action is Action.REQUIRE_APPROVAL


@dataclass(frozen=True, slots=True)
class _ArgCheck:
    name: str
    constraint: ArgConstraint
    rule: str


@dataclass(frozen=True, slots=True)
class _Approval:
    rule: str
    spec: ApprovalSpec


@dataclass(frozen=True, slots=True)
class _FromUser:
    name: str
    action: Action
    rule: str
    sources: tuple[str, ...] = ()  # tools whose outputs also ground the value


@dataclass(frozen=True, slots=True)
class _Flow:
    rule: str
    after: frozenset[str]
    then: tuple[str, ...]
    action: Action
    reason: str | None


@dataclass(frozen=True, slots=True)
class _Entry:
    """Everything decide needs for one (persona, tool), computed at load."""

    tool: str
    persona: str
    labels: tuple[str, ...]
    limits: tuple[tuple[str, str, int], ...]  # (rule, "tool" | "total", maximum)
    checks: tuple[_ArgCheck, ...]
    declared: frozenset[str] | None  # None: undeclared arguments are allowed
    extra_rule: str
    flows: tuple[_Flow, ...]
    approvals: tuple[_Approval, ...]
    allow_rule: str
    from_user: tuple[_FromUser, ...] = ()


class PolicyEngine:
    """Decides tool calls against a :class:`~langchain_secure.policy.Policy`.

    Args:
        policy: A validated policy.

    Example:
        ```python
        from langchain_secure.policy import Policy, PolicyEngine

        engine = PolicyEngine(
            Policy.model_validate({"personas": {"analyst": {"tools": ["search"]}}})
        )
        engine.decide({"name": "search", "args": {"q": "x"}, "id": "c1"}, "analyst").allowed
        ```
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._listed = {name for spec in policy.personas.values() for name in spec.tools}
        self._labelled: dict[str, frozenset[str]] = {}  # label -> tools carrying it
        for tool, tspec in policy.tools.items():
            for label in tspec.labels:
                self._labelled[label] = self._labelled.get(label, frozenset()) | {tool}
        self._table: dict[str, dict[str, _Entry]] = {
            persona: {tool: self._compile(persona, tool) for tool in spec.tools}
            for persona, spec in policy.personas.items()
        }
        self.reads_user_text = any(entry.from_user for table in self._table.values()
                                   for entry in table.values())
        """Whether any rule reads what the user said (``from_user``): surfaces
        skip collecting the conversation's text when none does."""
        self.reads_tool_outputs: frozenset[str] = frozenset(
            tool for table in self._table.values() for entry in table.values()
            for rule in entry.from_user for tool in rule.sources)
        """The tools whose outputs some ``from_user`` rule reads (``or_from``):
        surfaces collect only these outputs, and none when it is empty."""

    def _compile(self, persona: str, tool: str) -> _Entry:
        policy = self.policy
        pspec = policy.personas[persona]
        ptool = pspec.tools[tool]
        tspec = policy.tools.get(tool)
        labels = tuple(tspec.labels) if tspec else ()

        limits: list[tuple[str, str, int]] = []
        if policy.limits.max_calls_per_thread is not None:
            limits.append(("limits.max_calls_per_thread", "total",
                           policy.limits.max_calls_per_thread))
        if pspec.max_calls_per_thread is not None:
            limits.append((f"personas.{persona}.max_calls_per_thread", "total",
                           pspec.max_calls_per_thread))
        if tspec and tspec.max_calls_per_thread is not None:
            limits.append((f"tools.{tool}.max_calls_per_thread", "tool",
                           tspec.max_calls_per_thread))
        if ptool.max_calls_per_thread is not None:
            limits.append((f"personas.{persona}.tools.{tool}.max_calls_per_thread", "tool",
                           ptool.max_calls_per_thread))

        checks = [
            _ArgCheck(name, c, f"tools.{tool}.args.{name}")
            for name, c in (tspec.args.items() if tspec else ())
        ]
        checks += [
            _ArgCheck(name, c, f"personas.{persona}.tools.{tool}.args.{name}")
            for name, c in ptool.args.items()
        ]
        # Persona entries only tighten: constraining an argument under a persona
        # does not make it an argument the tool declares.
        declared = frozenset(tspec.args) if tspec and tspec.extra_args == "deny" else None

        label_set = frozenset(labels)
        flows = [
            _Flow(
                rule=f"flows.{flow.id}",
                after=frozenset(flow.after),
                then=tuple(label for label in flow.then if label in label_set),
                action=Action.DENY if flow.action == "deny" else Action.REQUIRE_APPROVAL,
                reason=flow.reason,
            )
            for flow in policy.flows
            if label_set.intersection(flow.then)
            and (flow.personas is None or persona in flow.personas)
        ]
        # deny rules first, each group in policy order
        flows.sort(key=lambda f: f.action is not Action.DENY)

        # every rule holds on its own (a persona's rule only adds one), deny first
        from_user: list[_FromUser] = []
        for scope, spec in ((f"tools.{tool}", tspec), (f"personas.{persona}.tools.{tool}",
                                                        ptool)):
            for arg, what in (spec.from_user.items() if spec else ()):
                sources = sorted({name for source in what.or_from
                                  for name in (self._labelled.get(source, frozenset())
                                               | ({source} if source in self._listed
                                                  else set()))})
                from_user.append(_FromUser(
                    arg, Action.DENY if what.action == "deny" else Action.REQUIRE_APPROVAL,
                    f"{scope}.from_user.{arg}", tuple(sources)))
        from_user.sort(key=lambda rule: rule.action is not Action.DENY)

        approvals = []
        if tspec and tspec.approval.mode != "never":
            approvals.append(_Approval(f"tools.{tool}.approval", tspec.approval))
        if ptool.approval.mode != "never":
            approvals.append(_Approval(f"personas.{persona}.tools.{tool}.approval",
                                       ptool.approval))
        return _Entry(
            tool=tool,
            persona=persona,
            labels=labels,
            limits=tuple(limits),
            checks=tuple(checks),
            declared=declared,
            extra_rule=f"tools.{tool}.extra_args",
            flows=tuple(flows),
            approvals=tuple(approvals),
            allow_rule=f"personas.{persona}.tools.{tool}",
            from_user=tuple(from_user),
        )

    def resolve_persona(self, persona: str | None) -> str | None:
        """The persona a call is decided for: the given one, else the policy default."""
        return persona if persona is not None else self.policy.default_persona

    def decide(
        self,
        call: Mapping[str, Any],
        persona: str | None = None,
        state: Mapping[str, Any] | None = None,
        *,
        user_text: str | None = None,
        tool_outputs: Mapping[str, str] | None = None,
    ) -> Decision:
        """Decide one tool call.

        Args:
            call: A LangChain ``ToolCall`` (``{"name", "args", "id"}``).
            persona: The persona calling; ``None`` uses the policy's default.
            state: The thread's :class:`~langchain_secure.SecurityState`.
            user_text: What the user (and the system prompt) said in this
                conversation, for ``from_user`` rules; ``None`` when unknown, and
                then no value counts as the user's.
            tool_outputs: What tools returned in this conversation, by tool
                name, for ``from_user`` rules with ``or_from`` (only outputs that
                succeeded and were not flagged); ``None`` or missing tools: none.

        Returns:
            The decision. Malformed calls, unknown personas and unknown tools are
            denied, never raised.
        """
        if not isinstance(call, Mapping):
            return _malformed("", persona, None, "the tool call is not a mapping")
        name = call.get("name")
        call_id = call.get("id")
        call_id = call_id if isinstance(call_id, str) else None
        if not isinstance(name, str) or not name:
            return _malformed("", persona, call_id, "the tool call has no tool name")
        args = call.get("args", {})
        if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
            return _malformed(name, persona, call_id,
                              "the tool call's arguments are not a mapping of names to values")

        resolved = self.resolve_persona(persona)
        if not isinstance(resolved, str):
            return Decision(Action.DENY, "personas", "no persona was given and the policy "
                            "has no default_persona", name, "", (), call_id)
        table = self._table.get(resolved)
        if table is None:
            return Decision(Action.DENY, "personas",
                            f"persona {resolved!r} is not defined in the policy",
                            name, resolved, (), call_id)
        entry = table.get(name)
        if entry is None:
            return Decision(Action.DENY, f"personas.{resolved}.tools",
                            f"tool {name!r} is not allowed for persona {resolved!r}",
                            name, resolved, (), call_id)

        def out(action: Action, rule: str, reason: str) -> Decision:
            return Decision(action, rule, reason, name, resolved, entry.labels, call_id)

        state = state or {}
        if entry.limits:
            per_tool = (state.get("tool_calls") or {}).get(name) or 0
            total = state.get("total_calls") or 0
            for rule, scope, maximum in entry.limits:
                used = per_tool if scope == "tool" else total
                if used >= maximum:
                    what = "call" if maximum == 1 else "calls"
                    what += f" of {name!r}" if scope == "tool" else ""
                    if scope != "tool":
                        what = "tool " + what
                    return out(Action.DENY, rule,
                               f"the budget of {maximum} {what} in this thread is spent")

        for check in entry.checks:
            if check.name not in args:
                if check.constraint.optional:
                    continue
                return out(Action.DENY, check.rule,
                           f"argument {check.name!r} is required by the policy but missing")
            if args[check.name] is None and check.constraint.optional:
                continue  # an explicit null is how many tools say "not given"
            violation = check.constraint.check(args[check.name])
            if violation is not None:
                return out(Action.DENY, check.rule,
                           f"argument {check.name!r} {violation.message}")
        if entry.declared is not None:
            for arg in args:
                if arg not in entry.declared:
                    return out(Action.DENY, entry.extra_rule,
                               f"argument {arg!r} is not permitted by the policy")

        held: _FromUser | None = None  # a from_user rule that asks for approval
        if entry.from_user:
            said = normalize(user_text)
            for source in entry.from_user:
                if source.name not in args:
                    continue
                missing = ungrounded_values(args[source.name], said)
                if missing and source.sources and tool_outputs:
                    returned = [_normalized_output(tool_outputs[tool])
                                for tool in source.sources if tool in tool_outputs]
                    missing = [atom for atom in missing
                               if not any(grounded(atom, text) for text in returned)]
                if not missing:
                    continue
                if source.action is Action.DENY:
                    return out(Action.DENY, source.rule, _not_from_user(source, said))
                held = held or source

        if entry.flows:
            seen = state.get("labels") or ()
            for flow in entry.flows:
                hit = next((label for label in seen if label in flow.after), None)
                if hit is not None:
                    reason = flow.reason or (
                        f"this thread has already seen {hit!r} content and {name!r} "
                        f"carries the {flow.then[0]!r} label"
                    )
                    return out(flow.action, flow.rule, reason)

        if held is not None:
            return out(Action.REQUIRE_APPROVAL, held.rule,
                       _not_from_user(held, normalize(user_text)))
        for approval in entry.approvals:
            if _approval_holds(approval.spec, args, state):
                return out(Action.REQUIRE_APPROVAL, approval.rule,
                           "the policy requires a person's approval for this call")

        return out(Action.ALLOW, entry.allow_rule,
                   f"{name!r} is allowed for persona {resolved!r}")

    def decide_batch(
        self,
        calls: Sequence[Mapping[str, Any]],
        persona: str | None = None,
        state: Mapping[str, Any] | None = None,
        *,
        prior: Sequence[Mapping[str, Any]] = (),
        user_text: str | None = None,
        tool_outputs: Mapping[str, str] | None = None,
    ) -> list[Decision]:
        """Decide the calls of one model turn, in order.

        Each call is decided against the state as it would be after the calls
        before it ran (those allowed or held for approval), so a batch like
        ``[read_secrets, send_email]`` meets the same flow rules as two turns.
        A tool call id that repeats one earlier in the batch is denied.

        Args:
            calls: The model's tool calls.
            persona: The persona calling.
            state: The thread's security state before the batch.
            prior: Earlier calls of the same turn that are decided elsewhere (one
                LangGraph ``Send`` per call); they shape the state these calls
                are decided against, but get no decision here.
            user_text: What the user said in this conversation (see :meth:`decide`).
            tool_outputs: What tools returned in it, by name (see :meth:`decide`).

        Returns:
            One decision per call, in the same order.
        """
        decisions: list[Decision] = []
        running: Mapping[str, Any] = state or {}
        ids: set[str] = set()
        for index, call in enumerate([*prior, *calls]):
            decision = self.decide(call, persona, running, user_text=user_text,
                                   tool_outputs=tool_outputs)
            call_id = decision.tool_call_id
            if call_id is not None:
                if call_id in ids:
                    decision = _malformed(decision.tool, persona, call_id,
                                          "the tool call id repeats an earlier call's id")
                ids.add(call_id)
            if index >= len(prior):
                decisions.append(decision)
            if not decision.denied:
                running = merge_security_state(running, _delta(decision))
        return decisions


@functools.lru_cache(maxsize=32)
def _normalized_output(text: str) -> str:
    """A tool's outputs as :func:`grounded` compares them, computed once.

    A conversation's outputs are decided against on every turn.
    """
    return normalize(text) or ""


def _delta(decision: Decision) -> SecurityState:
    return {"labels": list(decision.labels), "tool_calls": {decision.tool: 1},
            "total_calls": 1}


def _malformed(tool: str, persona: str | None, call_id: str | None, reason: str) -> Decision:
    return Decision(Action.DENY, "call.malformed", reason, tool,
                    persona if isinstance(persona, str) else "", (), call_id)


def _not_from_user(rule: _FromUser, said: str | None) -> str:
    name = rule.name
    # the sources are not named: a reason must not tell a model where to look
    also = " or the tool outputs the policy trusts for it" if rule.sources else ""
    if said is None:
        return (f"argument {name!r} must come from the user's own messages{also}, and this "
                "surface cannot see them")
    where = "another tool's output" if rule.sources else "a tool output"
    return (f"argument {name!r} does not come from the user's own messages{also} (it may "
            f"have been taken from {where} or a document)")


def _approval_holds(
    spec: ApprovalSpec, args: Mapping[str, Any], state: Mapping[str, Any]
) -> bool:
    if spec.mode == "always":
        return True
    seen: Iterable[str] = state.get("labels") or ()
    for condition in spec.when:
        holds = True
        if condition.thread_labels:
            wanted = condition.thread_labels
            holds = any(label in wanted for label in seen)
        for name, constraint in condition.args.items():
            if not holds:
                break
            if name not in args:
                continue  # a missing argument cannot prove the condition false
            violation = constraint.check(args[name])
            holds = violation is None or violation.kind == "type"
        if holds:
            return True
    return False
