"""Guard: the one place where security decisions are made.

Every surface (graph nodes, wrapped tools, and later callbacks and middleware)
turns its framework's events into calls on a :class:`Guard` and does what the
returned :class:`~langchain_secure.Decision` says. The same call, persona,
thread state and policy get the same decision whichever surface it came
through.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_secure.errors import (
    APPROVAL_REQUIRED_MESSAGE,
    TOOL_NOT_ALLOWED_MESSAGE,
    ApprovalRequiredError,
    AuditError,
    ConfigurationError,
    PolicyDecisionError,
    ToolNotAllowedError,
)
from langchain_secure.policy.engine import Action, Decision, PolicyEngine
from langchain_secure.policy.load import load_policy
from langchain_secure.policy.model import Policy
from langchain_secure.state import SecurityState, merge_security_state, state_delta

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import BaseTool

    from langchain_secure.approval import (
        ActionRequest,
        ApprovalRequest,
        Approver,
        ReviewConfig,
    )
    from langchain_secure.audit.log import AuditLog, Receipt
    from langchain_secure.doors import ScanOutcome
    from langchain_secure.sandbox import SandboxPool
    from langchain_secure.scanning.config import Door
    from langchain_secure.scanning.pipeline import ScanPipeline

logger = logging.getLogger("langchain_secure")

AUDIT_FAIL_OPEN_WARNING = (
    "AUDIT LOG NOT WRITTEN, running the action anyway (audit_fail_open=True): {error}"
)
MESSAGE_EXCERPT_CHARS = 4000
"""How much of the model message that asked for a call goes into its intent record."""

__all__ = ["BatchCheck", "Guard", "OnDeny", "ReviewedCall"]

OnDeny = Literal["message", "raise"]
"""What a surface does with a refused call: tell the model, or raise."""

_ON_DENY = ("message", "raise")


@dataclass(frozen=True)
class BatchCheck:
    """The decisions for one model turn's tool calls, and what they change.

    Attributes:
        decisions: One decision per call, in order.
        delta: The security-state update for the calls allowed to run (a delta
            for :func:`~langchain_secure.merge_security_state`).
        state: The thread's security state the batch was decided against.
        user_text: What the user said, as given to :meth:`Guard.check_batch`
            (``from_user`` rules); a review decides the batch again with it.
        tool_outputs: What tools returned, as given to :meth:`Guard.check_batch`
            (``from_user`` rules with ``or_from``); a review uses them too.
    """

    decisions: tuple[Decision, ...]
    delta: SecurityState
    state: SecurityState
    user_text: str | None = None
    tool_outputs: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ReviewedCall:
    """What to do with one call of a batch after a person's review.

    Attributes:
        call: The call to run: the model's, or the reviewer's edit of it.
        decision: The final decision (``ALLOW`` for approved calls).
        refusal: The text the model sees when the call does not run, else None.
    """

    call: Mapping[str, Any]
    decision: Decision
    refusal: str | None = None

    @property
    def runs(self) -> bool:
        """True when the call runs."""
        return self.refusal is None


class Guard:
    """The control point: owns the policy and decides every tool call.

    Args:
        policy: A :class:`~langchain_secure.policy.Policy`, or the path of a YAML
            policy file.
        on_deny: What surfaces do with a refused call by default: ``"message"``
            tells the model (an error ``ToolMessage``), ``"raise"`` raises
            :class:`~langchain_secure.ToolNotAllowedError`.
        audit: An :class:`~langchain_secure.audit.AuditLog`: every decision is
            sealed in it before the call runs, and the outcome recorded after.
        audit_fail_open: When the audit log cannot be written, run the call
            anyway with a loud warning. Default False: the call does not run.
        scanner: The detectors behind :meth:`scan`. Default: built from the
            policy's ``scanning`` section on first use.

    Example:
        ```python
        from langchain_core.tools import tool
        from langchain_secure import Guard, load_policy_text

        policy = load_policy_text('''
        default_persona: analyst
        personas:
          analyst: {tools: [add]}
        ''')
        guard = Guard(policy)

        @tool
        def add(a: int, b: int) -> int:
            "Add two numbers."
            return a + b

        [safe_add] = guard.wrap_tools([add])
        safe_add.invoke({"a": 1, "b": 2})  # 3
        guard.decide({"name": "rm", "args": {}, "id": "1"}).action.value  # 'deny'
        ```
    """

    def __init__(self, policy: Policy | str | os.PathLike[str], *,
                 on_deny: OnDeny = "message", audit: AuditLog | None = None,
                 audit_fail_open: bool = False, scanner: ScanPipeline | None = None) -> None:
        if isinstance(policy, str | os.PathLike):
            policy = load_policy(policy)
        if not isinstance(policy, Policy):
            msg = f"policy must be a Policy or a path to a YAML policy, not {type(policy).__name__}"
            raise ConfigurationError(msg)
        if on_deny not in _ON_DENY:
            msg = f"on_deny must be one of {_ON_DENY}, not {on_deny!r}"
            raise ConfigurationError(msg)
        self.policy = policy
        self.engine = PolicyEngine(policy)
        self.on_deny: OnDeny = on_deny
        self.audit = audit
        self.audit_fail_open = audit_fail_open
        self._scanner = scanner
        self._lock = threading.Lock()
        self._threads: dict[str | None, SecurityState] = {}
        self._listeners: list[Callable[[Decision], None]] = []
        self._pools: dict[str, SandboxPool] = {}  # by the sandbox section's JSON

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **options: Any) -> Guard:
        """Build a guard from a YAML policy file (``options`` as for ``Guard``).

        Raises:
            PolicyError: The file is not a valid policy (file, line and key named).
        """
        return cls(load_policy(path), **options)

    # -- deciding ---------------------------------------------------------------

    def decide(self, call: Mapping[str, Any], *, persona: str | None = None,
               state: Mapping[str, Any] | None = None,
               user_text: str | None = None,
               tool_outputs: Mapping[str, str] | None = None) -> Decision:
        """Decide one tool call. Pure: nothing is recorded.

        Args:
            call: A ``ToolCall`` dict (``name``, ``args``, ``id``).
            persona: The persona calling; ``None`` means the policy default.
            state: The thread's security state; ``None`` means a new thread.
            user_text: What the user said, for ``from_user`` rules (``None``:
                unknown, so no value counts as the user's).
            tool_outputs: What tools returned in the conversation, by tool name,
                for ``from_user`` rules with ``or_from`` (``None``: nothing).
        """
        return self.engine.decide(call, persona, state, user_text=user_text,
                                  tool_outputs=tool_outputs)

    def check_batch(self, calls: Sequence[Mapping[str, Any]], *, persona: str | None,
                    state: Mapping[str, Any] | None = None,
                    thread_id: str | None = None,
                    prior: Sequence[Mapping[str, Any]] = (),
                    user_text: str | None = None,
                    tool_outputs: Mapping[str, str] | None = None) -> BatchCheck:
        """Decide one model turn's calls and account for the ones that will run.

        With ``state`` (the graph's ``security`` channel) this is pure, and the
        caller writes ``delta`` back to its state. Without it the guard's own
        per-thread memory is used: the decisions and the accounting happen under
        one lock, so concurrent calls on a thread cannot overspend a budget.

        Args:
            calls: The model's tool calls, in order.
            persona: The persona calling.
            state: The thread's security state from graph state, if it has one.
            thread_id: Key of the guard's memory when ``state`` is ``None``.
            prior: Earlier calls of the same model turn decided separately (see
                :meth:`PolicyEngine.decide_batch`); they are neither returned
                nor counted.
            user_text: What the user (and the system prompt) said in the
                conversation: the text of its human and system messages, for
                ``from_user`` rules; ``None``: unknown, so no argument value
                counts as the user's.
            tool_outputs: What tools returned in the conversation, by tool
                name: the successful, unflagged outputs of the tools
                ``engine.reads_tool_outputs`` names, for ``from_user`` rules
                with ``or_from``; ``None``: nothing counts.
        """
        if state is not None:
            before = merge_security_state(state, None)
            decisions = self.engine.decide_batch(calls, persona, state, prior=prior,
                                                 user_text=user_text,
                                                 tool_outputs=tool_outputs)
            delta = _delta(decisions)
        else:
            with self._lock:
                before = merge_security_state(self._threads.get(thread_id), None)
                decisions = self.engine.decide_batch(calls, persona, before, prior=prior,
                                                     user_text=user_text,
                                                     tool_outputs=tool_outputs)
                delta = _delta(decisions)
                if delta["total_calls"]:
                    self._threads[thread_id] = merge_security_state(before, delta)
        for listener in self._listeners:
            for decision in decisions:
                listener(decision)
        return BatchCheck(tuple(decisions), delta, before, user_text, tool_outputs)

    def charge(self, thread_id: str | None, decisions: Sequence[Decision], *,
               remember: bool = True) -> SecurityState:
        """Count calls that will run after approval; returns their delta.

        :meth:`check_batch` counts the calls it allows; calls a person approved
        later are counted here: in the guard's memory when ``remember`` (no
        graph state), and in the returned delta for graph state.
        """
        delta = _delta([d for d in decisions if d.allowed])
        if remember and delta["total_calls"]:
            with self._lock:
                self._threads[thread_id] = merge_security_state(self._threads.get(thread_id),
                                                                delta)
        return delta

    def subscribe(self, listener: Callable[[Decision], None]) -> Callable[[], None]:
        """Call ``listener`` with every decision surfaces act on; returns an unsubscribe.

        Listeners run synchronously on the decision path and must be quick; an
        exception from a listener propagates (the call then does not run).

        Example:
            ```python
            seen = []
            unsubscribe = guard.subscribe(seen.append)
            ...
            unsubscribe()
            ```
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def thread_state(self, thread_id: str | None) -> SecurityState:
        """A copy of the state the guard remembers for a thread (callback-only use)."""
        with self._lock:
            return merge_security_state(self._threads.get(thread_id), None)

    def reset_thread(self, thread_id: str | None) -> None:
        """Forget what the guard remembers about a thread."""
        with self._lock:
            self._threads.pop(thread_id, None)

    def resolve_persona(self, config: RunnableConfig | Mapping[str, Any] | None = None,
                        context: Any = None, *, fixed: str | None = None) -> str | None:
        """Which persona a call runs as.

        In order: ``fixed`` (set by the developer on a node or wrapped tool),
        ``config["configurable"]["persona"]``, a ``persona`` field of the
        LangGraph runtime context, then the policy's ``default_persona``.
        """
        if fixed is not None:
            return fixed
        configurable = (config or {}).get("configurable") or {}
        persona = configurable.get("persona")
        if persona is None and context is not None:
            persona = (context.get("persona") if isinstance(context, Mapping)
                       else getattr(context, "persona", None))
        if persona is None:
            return self.policy.default_persona
        # a persona that is not a string names no persona: never fall back to the
        # default for it (the empty name is denied as undefined)
        return persona if isinstance(persona, str) else ""

    # -- scanning the doors -------------------------------------------------------------

    @property
    def scanner(self) -> ScanPipeline:
        """The detectors of the policy's ``scanning`` section (built on first use)."""
        if self._scanner is None:
            from langchain_secure.scanning.pipeline import ScanPipeline

            with self._lock:
                if self._scanner is None:
                    self._scanner = ScanPipeline(self.policy.scanning)
        return self._scanner

    def scan(self, text: str, *, door: Door, source: str | None = None,
             thread_id: str | None = None, key: str | None = None,
             untrusted_source: bool = False) -> ScanOutcome:
        """Scan untrusted text at a door and decide what passes on.

        See :mod:`langchain_secure.doors` for the actions. A flagged text (and
        any text with a secret) is written to the audit log: the verdict, the
        findings' spans and, for ``quarantine``, the text itself with secrets
        redacted.

        Args:
            text: The untrusted text.
            door: ``input``, ``documents`` or ``tool_output``.
            source: Where it came from (a tool name, a document's source).
            thread_id: The conversation (for the audit trail).
            key: Distinguishes this text within the thread (a tool call id,
                a document index), so a re-run writes nothing twice.
            untrusted_source: The text comes from a source the policy labels
                ``untrusted_source``: the thread gains ``untrusted`` even when the
                detectors find nothing.

        Returns:
            The outcome; surfaces pass on ``outcome.text`` and add
            ``outcome.labels`` to the thread.
        """
        outcome = self.scan_many([text], door=door, sources=[source], thread_id=thread_id,
                                 keys=[key])[0]
        if untrusted_source and "untrusted" not in outcome.labels:
            from dataclasses import replace

            outcome = replace(outcome, labels=(*outcome.labels, "untrusted"))
        return outcome

    def scan_many(self, texts: Sequence[str], *, door: Door,
                  sources: Sequence[str | None] | None = None, thread_id: str | None = None,
                  keys: Sequence[str | None] | None = None) -> list[ScanOutcome]:
        """:meth:`scan` for several texts at one door, batched for the model."""
        from langchain_secure.doors import (
            BLOCKED_OUTPUT_MESSAGE,
            QUARANTINE_NOTICE,
            SPOTLIGHT_TEMPLATE,
            ScanOutcome,
        )

        sources = list(sources) if sources is not None else [None] * len(texts)
        keys = list(keys) if keys is not None else [None] * len(texts)
        spec = self.scanner.door(door)
        if not spec.detectors or not texts:
            from langchain_secure.scanning.base import ScanVerdict

            return [ScanOutcome(door, s, ScanVerdict.clean(), False, spec.action, t)
                    for t, s in zip(texts, sources, strict=True)]
        verdicts = self.scanner.scan_many(list(texts), door, sources)
        outcomes = []
        for text, source, verdict in zip(texts, sources, verdicts, strict=True):
            flagged = verdict.flagged(spec.threshold)
            passed = verdict.text_or_sanitized(text)
            what = _describe(door, source)
            kinds = ", ".join(sorted(verdict.kinds)) or "model score"
            if flagged and spec.action == "quarantine":
                passed = QUARANTINE_NOTICE.format(what=what, risk=verdict.risk, kinds=kinds,
                                                  where=" in the audit log" if self.audit
                                                  else "")
            elif flagged and spec.action == "spotlight":
                passed = SPOTLIGHT_TEMPLATE.format(what=what, text=passed)
            elif flagged and spec.action == "block":
                passed = BLOCKED_OUTPUT_MESSAGE.format(what=what, risk=verdict.risk,
                                                       kinds=kinds)
            outcomes.append(ScanOutcome(door, source, verdict, flagged, spec.action, passed,
                                        ("untrusted",) if flagged else ()))
        return self._audit_scans(texts, outcomes, thread_id, keys)

    async def ascan(self, text: str, *, door: Door, source: str | None = None,
                    thread_id: str | None = None, key: str | None = None) -> ScanOutcome:
        """Async :meth:`scan` (detectors and the audit write run in a worker thread)."""
        import asyncio

        return await asyncio.to_thread(self.scan, text, door=door, source=source,
                                       thread_id=thread_id, key=key)

    def _audit_scans(self, texts: Sequence[str], outcomes: list[ScanOutcome],
                     thread_id: str | None, keys: Sequence[str | None]) -> list[ScanOutcome]:
        if self.audit is None:
            return outcomes
        from dataclasses import replace

        from langchain_secure.audit.log import AuditEvent

        events, where = [], []
        for index, (text, outcome, key) in enumerate(zip(texts, outcomes, keys, strict=True)):
            verdict = outcome.verdict
            if not outcome.flagged and verdict.sanitized_text is None:
                continue
            kept = verdict.text_or_sanitized(text) if outcome.action == "quarantine" and \
                outcome.flagged else None
            events.append(AuditEvent("scan", {
                "thread_id": thread_id, "door": outcome.door, "source": outcome.source,
                "key": key, "risk": verdict.risk, "flagged": outcome.flagged,
                "action": outcome.action if outcome.flagged else "pass",
                "findings": [{"detector": f.detector, "kind": f.kind, "span": list(f.span),
                              "score": f.score, "rule": f.rule} for f in verdict.findings],
                "content_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "quarantined_text": kept,
            }, _idem_key(thread_id, key, f"scan:{outcome.door}") if key else None))
            where.append(index)
        receipts = self._append(events, len(events)) if events else ()
        for index, receipt in zip(where, receipts, strict=True):
            outcomes[index] = replace(outcomes[index], receipt=receipt)
        return outcomes

    def label(self, thread_id: str | None, labels: Sequence[str], *,
              remember: bool = True) -> SecurityState:
        """Add labels (``untrusted`` after flagged content) to a thread; returns the delta.

        Graph surfaces write the delta to their state; with ``remember`` the
        guard's memory is updated too, for threads without a security channel.
        """
        delta: SecurityState = {"labels": list(dict.fromkeys(labels)), "tool_calls": {},
                                "total_calls": 0}
        if remember and labels:
            with self._lock:
                self._threads[thread_id] = merge_security_state(self._threads.get(thread_id),
                                                                delta)
        return delta

    def callbacks(self, *, persona: str | None = None, thread_id: str | None = None,
                  approver: Approver | None = None, asynchronous: bool = False) -> Any:
        """A callback handler that scans the doors and decides tool calls for any run.

        ``config={"callbacks": [guard.callbacks()]}``. See
        :mod:`langchain_secure.integrations.callbacks`.

        Args:
            persona: The persona of the runs (default: the policy's default).
            thread_id: The thread when the run's metadata has none.
            approver: Answers calls that need approval (default: raise).
            asynchronous: Return the async handler (for ``ainvoke``/``astream``).
        """
        from langchain_secure.integrations.callbacks import (
            AsyncSecurityCallbackHandler,
            SecurityCallbackHandler,
        )

        cls = AsyncSecurityCallbackHandler if asynchronous else SecurityCallbackHandler
        return cls(self, persona=persona, thread_id=thread_id, approver=approver)

    def middleware(self, *, persona: str | None = None, on_deny: OnDeny | None = None) -> Any:
        """The ``create_agent`` middleware deciding every tool call with this guard.

        ``create_agent(model, tools, middleware=[guard.middleware()])``; see
        :class:`~langchain_secure.integrations.middleware.SecurityMiddleware`.
        """
        from langchain_secure.integrations.middleware import SecurityMiddleware

        return SecurityMiddleware(self, persona=persona, on_deny=on_deny)

    # -- sandboxes ----------------------------------------------------------------------

    def sandbox_pool(self, persona: str | None) -> SandboxPool:
        """The pool of sandbox sessions the policy chose for a persona's code.

        One pool per distinct ``sandbox`` section, created on first use and
        closed by :meth:`close`; sessions inside are keyed by thread id.
        """
        spec = self.policy.sandbox_for(persona)
        key = spec.model_dump_json()
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = spec.pool()
        return pool

    def python_tool(self, **options: Any) -> BaseTool:
        """The ``run_python`` tool, running code in the sandbox the policy chose.

        The persona (from the call's config, else the policy default) picks the
        sandbox; each thread gets its own session. The call itself is decided
        like any other tool call when it goes through a guarded surface.

        Args:
            **options: Passed to :class:`~langchain_secure.sandbox.SandboxedPythonTool`.
        """
        from langchain_secure.sandbox import SandboxedPythonTool

        def resolve(persona: str | None, thread_id: str | None) -> SandboxPool:
            return self.sandbox_pool(persona if persona is not None
                                     else self.policy.default_persona)

        return SandboxedPythonTool(sandbox=resolve, **options)

    def close(self) -> None:
        """Close the sandbox pools and the audit log (signing a final checkpoint)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        if self.audit is not None:
            self.audit.close()

    # -- approval ----------------------------------------------------------------------

    def approval_request(self, calls: Sequence[Mapping[str, Any]],
                         decisions: Sequence[Decision],
                         receipts: Sequence[Receipt | None] | None = None) -> ApprovalRequest:
        """The request a person reviews: the calls whose decision needs approval.

        Its shape is LangChain's ``HITLRequest``; each action also names the tool
        call id, rule, reason, persona, risk and the audit receipt of its intent.
        """
        from langchain_secure.approval import ALLOWED_DECISIONS

        receipts = receipts or (None,) * len(calls)
        actions: list[ActionRequest] = []
        configs: list[ReviewConfig] = []
        for call, decision, receipt in zip(calls, decisions, receipts, strict=True):
            if not decision.needs_approval:
                continue
            args = call.get("args")
            actions.append({
                "name": decision.tool,
                "args": dict(args) if isinstance(args, Mapping) else {},
                "description": f"{decision.reason} (rule {decision.rule})",
                "tool_call_id": decision.tool_call_id,
                "rule": decision.rule,
                "reason": decision.reason,
                "persona": decision.persona,
                "risk": None,
                "receipt": ({"seq": receipt.seq, "hash": receipt.hash,
                             "log_id": receipt.log_id} if receipt else None),
            })
            configs.append({"action_name": decision.tool,
                            "allowed_decisions": list(ALLOWED_DECISIONS)})
        return {"action_requests": actions, "review_configs": configs}

    @staticmethod
    def may_run(decision: Decision, *, reviewed: bool) -> bool:
        """Whether a call with this decision may run.

        Allowed calls run. A call the policy would hold for approval runs only
        when a person reviewed exactly this call (approved it, or wrote it as an
        edit); a denied call never runs, reviewed or not.
        """
        return decision.allowed or (reviewed and decision.needs_approval)

    def apply_review(self, calls: Sequence[Mapping[str, Any]],
                     decisions: Sequence[Decision], response: Any, *,
                     persona: str | None, state: Mapping[str, Any] | None,
                     thread_id: str | None, user_text: str | None = None,
                     tool_outputs: Mapping[str, str] | None = None
                     ) -> list[ReviewedCall]:
        """Turn a person's decisions into what runs, deciding every edit again.

        The whole batch is decided again with the reviewer's edits in place,
        against the state it was first decided against. An edited call runs only
        if the policy allows it now, or would hold it for approval (the reviewer
        approved exactly that call); a denied edit is refused. A call that was
        allowed before but is not after the edits (an edit changed the thread's
        labels or budgets) is refused too: nobody reviewed it in that light.
        Each review is written to the audit log with the reviewer's identity.

        Args:
            calls: The batch's calls, in order.
            decisions: Their decisions from :meth:`check_batch`.
            response: The resume value, ``{"decisions": [...], "reviewer": ...}``.
            persona: The persona of the batch.
            state: The state the batch was decided against.
            thread_id: The conversation (for the audit trail).
            user_text: What the user said, as given to :meth:`check_batch`.
            tool_outputs: What tools returned, as given to :meth:`check_batch`.

        Returns:
            One :class:`ReviewedCall` per call, in order.

        Raises:
            ValueError: The response is malformed, has the wrong number of
                decisions, or a decision type that is not allowed.
        """
        from langchain_secure.approval import (
            ALLOWED_DECISIONS,
            BAD_RESUME_MESSAGE,
            DECISION_COUNT_MESSAGE,
            DECISION_NOT_ALLOWED_MESSAGE,
            REJECTED_MESSAGE,
        )

        pending = [i for i, d in enumerate(decisions) if d.needs_approval]
        answers = response.get("decisions") if isinstance(response, Mapping) else None
        if not isinstance(answers, list):
            raise ValueError(BAD_RESUME_MESSAGE.format(got=response))
        if len(answers) != len(pending):
            raise ValueError(DECISION_COUNT_MESSAGE.format(got=len(answers),
                                                           expected=len(pending)))
        reviewer = response.get("reviewer")
        reviewer = reviewer if isinstance(reviewer, str) else None
        review: dict[int, Mapping[str, Any]] = {}
        final_calls = [dict(c) if isinstance(c, Mapping) else c for c in calls]
        for index, answer in zip(pending, answers, strict=True):
            kind = answer.get("type") if isinstance(answer, Mapping) else None
            if kind not in ALLOWED_DECISIONS:
                raise ValueError(DECISION_NOT_ALLOWED_MESSAGE.format(
                    type=kind, tool=decisions[index].tool, allowed=ALLOWED_DECISIONS))
            if kind == "edit":
                action = answer.get("edited_action")
                if not (isinstance(action, Mapping) and isinstance(action.get("name"), str)
                        and isinstance(action.get("args"), Mapping)):
                    raise ValueError("an edit decision needs edited_action: {'name': str, "
                                     "'args': {...}}")
                final_calls[index] = {**final_calls[index], "name": action["name"],
                                      "args": dict(action["args"])}
            review[index] = answer
        again = self.engine.decide_batch(final_calls, persona, state, user_text=user_text,
                                         tool_outputs=tool_outputs)
        out: list[ReviewedCall] = []
        for index, (call, first, now) in enumerate(zip(final_calls, decisions, again,
                                                       strict=True)):
            answer = review.get(index)
            if first.denied:
                out.append(ReviewedCall(call, first, self.refusal_message(first)))
            elif answer is None:  # allowed without review: must still be allowed
                out.append(ReviewedCall(call, now) if now.allowed
                           else ReviewedCall(call, now, self.refusal_message(now)))
            elif answer["type"] == "reject":
                by = f" ({reviewer})" if reviewer else ""
                why = f": {answer['message']}" if answer.get("message") else ""
                rejected = Decision(Action.DENY, "approval.rejected",
                                    f"rejected by {reviewer or 'a reviewer'}", first.tool,
                                    first.persona, first.labels, first.tool_call_id)
                out.append(ReviewedCall(call, rejected, REJECTED_MESSAGE.format(
                    tool=first.tool, by=by, reason=why)))
            elif not self.may_run(now, reviewed=True):
                out.append(ReviewedCall(call, now, self.refusal_message(now)))
            else:
                verb = "approved" if answer["type"] == "approve" else "edited"
                approved = Decision(Action.ALLOW, now.rule,
                                    f"{verb} by {reviewer or 'a reviewer'}",
                                    now.tool, now.persona, now.labels, first.tool_call_id)
                out.append(ReviewedCall(call, approved))
        self._audit_reviews(pending, review, out, reviewer, thread_id)
        return out

    def _audit_reviews(self, pending: Sequence[int], review: Mapping[int, Mapping[str, Any]],
                       out: Sequence[ReviewedCall], reviewer: str | None,
                       thread_id: str | None) -> None:
        if self.audit is None or not pending:
            return
        from langchain_secure.audit.log import AuditEvent

        events = []
        for index in pending:
            answer, result = review[index], out[index]
            events.append(AuditEvent("approval", {
                "thread_id": thread_id,
                "tool_call_id": result.decision.tool_call_id,
                "reviewer": reviewer,
                "review": answer["type"],
                "message": answer.get("message"),
                "tool": result.call.get("name"),
                "args": self._audit_args(str(result.call.get("name")), result.call.get("args")),
                "decision": {"action": result.decision.action.value,
                             "rule": result.decision.rule, "reason": result.decision.reason},
                "runs": result.runs,
            }, _idem_key(thread_id, result.decision.tool_call_id, "approval")))
        self._append(events, len(events))

    # -- events for tracers ---------------------------------------------------------------

    def publish_decisions(self, calls: Sequence[Mapping[str, Any]],
                          decisions: Sequence[Decision],
                          receipts: Sequence[Receipt | None], *, thread_id: str | None,
                          config: Any) -> None:
        """Publish decisions as guard events in the run ``config`` belongs to."""
        from langchain_secure.events import publish

        publish([{
            "kind": "decision", "thread_id": thread_id, "tool": d.tool,
            "tool_call_id": d.tool_call_id, "persona": d.persona,
            "args": self._audit_args(d.tool, c.get("args")) if self.audit else
            _redacted_for_trace(self, d.tool, c.get("args")),
            "action": d.action.value, "rule": d.rule, "reason": d.reason,
            "labels": list(d.labels), "receipt": _receipt_json(r),
        } for c, d, r in zip(calls, decisions, receipts, strict=True)], config)

    def publish_reviews(self, reviewed: Sequence[ReviewedCall], decisions: Sequence[Decision],
                        response: Any, *, thread_id: str | None, config: Any) -> None:
        """Publish the outcome of a person's review as guard events."""
        from langchain_secure.events import publish

        reviewer = response.get("reviewer") if isinstance(response, Mapping) else None
        publish([{
            "kind": "review", "thread_id": thread_id, "tool": r.decision.tool,
            "tool_call_id": r.decision.tool_call_id, "persona": r.decision.persona,
            "action": r.decision.action.value, "rule": r.decision.rule,
            "reason": r.decision.reason, "reviewer": reviewer,
        } for r, d in zip(reviewed, decisions, strict=True) if d.needs_approval], config)

    def publish_scans(self, outcomes: Sequence[ScanOutcome], *, thread_id: str | None,
                      config: Any) -> None:
        """Publish scan outcomes (flagged or redacting ones) as guard events."""
        from langchain_secure.events import publish

        publish([{
            "kind": "scan", "thread_id": thread_id, "door": o.door, "source": o.source,
            "action": o.action if o.flagged else "pass", "risk": o.verdict.risk,
            "findings": sorted(o.verdict.kinds), "labels": list(o.labels),
            "receipt": _receipt_json(o.receipt),
        } for o in outcomes if o.flagged or o.verdict.sanitized_text is not None], config)

    # -- the audit trail -----------------------------------------------------------

    def seal(self, calls: Sequence[Mapping[str, Any]], decisions: Sequence[Decision], *,
             thread_id: str | None, message: BaseMessage | None = None
             ) -> tuple[Receipt | None, ...]:
        """Durably record each call's intent and decision, before any of them runs.

        Arguments the policy marks ``audit: {hash_only: [...]}`` are stored as
        keyed hashes. Re-sealing the same call of the same thread (a node that
        re-runs after an interrupt) returns the first receipts and writes nothing.

        Args:
            calls: The tool calls, in order.
            decisions: Their decisions, in the same order.
            thread_id: The conversation; with ``None`` records are not deduplicated.
            message: The model message that asked for the calls.

        Returns:
            One receipt per call; ``None`` for all when there is no audit log (or
            it failed and ``audit_fail_open`` is set).

        Raises:
            AuditError: The log could not be written (the calls must not run).
        """
        if self.audit is None or not calls:
            return (None,) * len(calls)
        from langchain_secure.audit.log import AuditEvent

        asked = None
        if message is not None:
            asked = {"id": message.id,
                     "content": self._redact(message.text[:MESSAGE_EXCERPT_CHARS])}
        events = [
            AuditEvent("intent", {
                "thread_id": thread_id,
                "tool_call_id": decision.tool_call_id,
                "persona": decision.persona,
                "tool": decision.tool,
                "args": self._audit_args(decision.tool, call.get("args")),
                "decision": {"action": decision.action.value, "rule": decision.rule,
                             "reason": decision.reason},
                "labels": list(decision.labels),
                "message": asked,
            }, _idem_key(thread_id, decision.tool_call_id, "intent"))
            for call, decision in zip(calls, decisions, strict=True)
        ]
        return self._append(events, len(calls))

    def record_outcome(self, call: Mapping[str, Any], receipt: Receipt | None, *,
                       thread_id: str | None, status: str, output: Any) -> Receipt | None:
        """Durably record what a call that ran produced (a digest, not the content).

        Args:
            call: The tool call.
            receipt: Its intent's receipt, from :meth:`seal`.
            thread_id: The conversation.
            status: ``success``, ``error``, or ``raised`` (an exception escaped).
            output: The tool's output (only its SHA-256 and length are stored).

        Raises:
            AuditError: The log could not be written.
        """
        if self.audit is None:
            return None
        from langchain_secure.audit.log import AuditEvent

        text = output if isinstance(output, str) else json.dumps(output, default=str,
                                                                  sort_keys=True)
        call_id = call.get("id") if isinstance(call.get("id"), str) else None
        event = AuditEvent("outcome", {
            "thread_id": thread_id,
            "tool_call_id": call_id,
            "tool": call.get("name"),
            "status": status,
            "intent_seq": receipt.seq if receipt else None,
            "output": {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                       "chars": len(text)},
        }, _idem_key(thread_id, call_id, "outcome"))
        return self._append([event], 1)[0]

    def _audit_args(self, tool: str, args: Any) -> Any:
        if self.audit is None or not isinstance(args, Mapping):
            return args
        spec = self.policy.tools.get(tool)
        hidden = set(spec.audit.hash_only) if spec is not None else set()
        return {k: self.audit.keyed_hash(v) if k in hidden else self._redact(v)
                for k, v in args.items()}

    def _redact(self, value: Any) -> Any:
        """Secrets the detector finds in ``value`` replaced by their keyed hash."""
        detector = self._secrets_detector()
        if detector is None or self.audit is None:
            return value
        if isinstance(value, Mapping):
            return {k: self._redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact(v) for v in value]
        if not isinstance(value, str) or len(value) < 8:
            return value
        findings = sorted(detector.scan(value).findings, key=lambda f: f.span[0])
        if not findings:
            return value
        out, last = [], 0
        for finding in findings:
            start, end = finding.span
            if start < last:
                continue
            out += [value[last:start], f"[secret {self.audit.keyed_hash(value[start:end])}]"]
            last = end
        return "".join([*out, value[last:]])

    def _secrets_detector(self) -> Any:
        mode = self.policy.audit.redact_secrets
        if mode is False:
            return None
        if not hasattr(self, "_secrets"):
            try:
                from langchain_secure.scanning.secrets import SecretsDetector

                detector: Any = SecretsDetector(cache_size=0)
                detector.scan("warm-up text")  # imports the detector's plugins now
            except ImportError as exc:
                if mode is True:
                    raise AuditError("audit.redact_secrets is true but the secrets detector "
                                     "is not installed; install with: pip install "
                                     "'langchain-secure[llm-guard]'") from exc
                detector = None
            self._secrets = detector
        return self._secrets

    def _append(self, events: list[Any], count: int) -> tuple[Receipt | None, ...]:
        assert self.audit is not None
        try:
            return tuple(self.audit.append(events))
        except AuditError as exc:
            if not self.audit_fail_open:
                raise
            message = AUDIT_FAIL_OPEN_WARNING.format(error=exc)
            logger.error(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            return (None,) * count

    # -- what surfaces say -------------------------------------------------------

    def refusal_message(self, decision: Decision) -> str:
        """The text the model sees for a call that did not run."""
        template = (APPROVAL_REQUIRED_MESSAGE if decision.action is Action.REQUIRE_APPROVAL
                    else TOOL_NOT_ALLOWED_MESSAGE)
        return template.format(tool=decision.tool, rule=decision.rule, reason=decision.reason)

    def refusal_error(self, decision: Decision) -> PolicyDecisionError:
        """The exception for a call that did not run."""
        cls = (ApprovalRequiredError if decision.action is Action.REQUIRE_APPROVAL
               else ToolNotAllowedError)
        return cls(tool=decision.tool, persona=decision.persona, rule=decision.rule,
                   reason=decision.reason)

    def wrap_tools(self, tools: Sequence[BaseTool | Any], *, persona: str | None = None,
                   on_deny: OnDeny | None = None,
                   approver: Approver | None = None) -> list[BaseTool]:
        """Guarded copies of tools, for code that calls tools without a graph.

        Each wrapped tool decides every call before running the original; the
        thread is ``config["configurable"]["thread_id"]`` and its state lives in
        this guard. A refused call returns the refusal (as an error
        ``ToolMessage`` when invoked with a tool call) or raises, per ``on_deny``.

        Args:
            tools: LangChain tools or plain functions.
            persona: Fixed persona; otherwise resolved per call from the config.
            on_deny: Overrides the guard's ``on_deny`` for these tools.
            approver: Answers calls that need approval (any callable taking an
                action request; see :mod:`langchain_secure.approval`). Default:
                :class:`~langchain_secure.approval.RaiseApprover`.
        """
        from langchain_secure.integrations.tools import GuardedTool

        mode = self.on_deny if on_deny is None else on_deny
        if mode not in _ON_DENY:
            msg = f"on_deny must be one of {_ON_DENY}, not {mode!r}"
            raise ConfigurationError(msg)
        return [GuardedTool.wrap(t, guard=self, persona=persona, on_deny=mode, approver=approver)
                for t in tools]


def _receipt_json(receipt: Receipt | None) -> dict[str, Any] | None:
    if receipt is None:
        return None
    return {"seq": receipt.seq, "hash": receipt.hash, "log_id": receipt.log_id}


def _redacted_for_trace(guard: Guard, tool: str, args: Any) -> Any:
    """Arguments for a trace without an audit log: hash-only ones are masked."""
    spec = guard.policy.tools.get(tool)
    if spec is None or not spec.audit.hash_only or not isinstance(args, Mapping):
        return args
    return {k: "[redacted]" if k in spec.audit.hash_only else v for k, v in args.items()}


def _describe(door: str, source: str | None) -> str:
    what = {"input": "the input", "documents": "a retrieved document",
            "tool_output": "the tool output"}.get(door, "the text")
    return f"{what} from {source}" if source else what


def _idem_key(thread_id: str | None, call_id: str | None, phase: str) -> str | None:
    """Idempotency key of a call's record; none without a thread (no resume possible)."""
    if thread_id is None or call_id is None:
        return None
    return json.dumps([thread_id, call_id, phase])


def _delta(decisions: Sequence[Decision]) -> SecurityState:
    return state_delta((d.tool, d.labels) for d in decisions if d.allowed)
