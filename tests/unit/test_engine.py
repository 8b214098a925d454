"""The decision table of PolicyEngine: every rule kind, in its fixed order."""

from __future__ import annotations

import pytest

from langchain_secure import Action, Guard
from tests.unit.conftest import call

A, D, R = Action.ALLOW, Action.DENY, Action.REQUIRE_APPROVAL

CASES = [
    # (persona, call, state, action, rule, reason)
    ("analyst", call("search", q="x"), None, A, "personas.analyst.tools.search",
     "'search' is allowed for persona 'analyst'"),
    (None, call("search", q="x"), None, A, "personas.analyst.tools.search",
     "'search' is allowed for persona 'analyst'"),
    ("intern", call("read_file", path="/srv/reports/q1.pdf"), None, D,
     "personas.intern.tools", "tool 'read_file' is not allowed for persona 'intern'"),
    ("ghost", call("search"), None, D, "personas",
     "persona 'ghost' is not defined in the policy"),
    ("analyst", call("rm_rf", path="/"), None, D, "personas.analyst.tools",
     "tool 'rm_rf' is not allowed for persona 'analyst'"),
    ("analyst", call("read_file", path="/srv/reports/q1.pdf"), None, A,
     "personas.analyst.tools.read_file", "'read_file' is allowed for persona 'analyst'"),
    ("analyst", call("read_file", path="/srv/reports/../../etc/shadow"), None, D,
     "tools.read_file.args.path", None),
    ("analyst", call("read_file"), None, D, "tools.read_file.args.path",
     "argument 'path' is required by the policy but missing"),
    ("analyst", call("run_sql", query="SELECT * FROM sales"), None, A,
     "personas.analyst.tools.run_sql", "'run_sql' is allowed for persona 'analyst'"),
    ("analyst", call("run_sql", query="DELETE FROM sales"), None, D,
     "tools.run_sql.args.query", None),
    ("analyst", call("run_sql", query="SELECT 1; DROP TABLE sales"), None, D,
     "tools.run_sql.args.query", None),
    ("analyst", call("send_email", to="a@example.com", body="hi"), None, A,
     "personas.analyst.tools.send_email", "'send_email' is allowed for persona 'analyst'"),
    ("analyst", call("send_email", to="a@example.com", body="hi", bcc="x@evil.com"), None, D,
     "tools.send_email.extra_args", "argument 'bcc' is not permitted by the policy"),
    ("support", call("send_email", to="a@evil.com", body="hi"), None, D,
     "personas.support.tools.send_email.args.to", None),
    ("support", call("send_email", to="a@example.com", body="hi"), None, A,
     "personas.support.tools.send_email", "'send_email' is allowed for persona 'support'"),
    # flows
    ("analyst", call("send_email", to="a@example.com", body="q1 numbers"),
     {"labels": ["reads_sensitive"]}, R, "flows.no-exfiltration",
     "data read from reports may not leave without a person's approval"),
    ("support", call("refund", amount=10), {"labels": ["untrusted"]}, D,
     "flows.no-writes-after-untrusted",
     "this thread has already seen 'untrusted' content and 'refund' carries the 'writes' label"),
    ("support", call("send_email", to="a@example.com", body="x"), {"labels": ["pii"]}, D,
     "flows.pii-stays-in", "this thread has already seen 'pii' content and 'send_email' "
     "carries the 'egress' label"),
    # the pii flow is scoped to support: analysts are not affected by it
    ("analyst", call("send_email", to="a@example.com", body="x"), {"labels": ["pii"]}, A,
     "personas.analyst.tools.send_email", "'send_email' is allowed for persona 'analyst'"),
    # approval conditions
    ("support", call("refund", amount=99.5), None, A, "personas.support.tools.refund",
     "'refund' is allowed for persona 'support'"),
    ("support", call("refund", amount=100), None, R, "personas.support.tools.refund.approval",
     "the policy requires a person's approval for this call"),
    ("support", call("refund", amount=5000), None, D, "tools.refund.args.amount", None),
    ("support", call("refund", amount="50"), None, D, "tools.refund.args.amount", None),
    # budgets
    ("analyst", call("search"), {"tool_calls": {"search": 5}, "total_calls": 5}, D,
     "tools.search.max_calls_per_thread",
     "the budget of 5 calls of 'search' in this thread is spent"),
    ("analyst", call("run_sql", query="SELECT 1"), {"total_calls": 20}, D,
     "personas.analyst.max_calls_per_thread",
     "the budget of 20 tool calls in this thread is spent"),
    ("support", call("search"), {"total_calls": 50}, D, "limits.max_calls_per_thread",
     "the budget of 50 tool calls in this thread is spent"),
    ("support", call("refund", amount=1), {"tool_calls": {"refund": 2}, "total_calls": 2}, D,
     "personas.support.tools.refund.max_calls_per_thread",
     "the budget of 2 calls of 'refund' in this thread is spent"),
    # malformed calls
    ("analyst", {"name": 3, "args": {}, "id": "x"}, None, D, "call.malformed",
     "the tool call has no tool name"),
    ("analyst", {"name": "search", "args": ["q"], "id": "x"}, None, D, "call.malformed",
     "the tool call's arguments are not a mapping of names to values"),
    ("analyst", "search", None, D, "call.malformed", "the tool call is not a mapping"),
]


@pytest.mark.parametrize(("persona", "tool_call", "state", "action", "rule", "reason"), CASES)
def test_decision_table(guard: Guard, persona, tool_call, state, action, rule, reason) -> None:
    decision = guard.decide(tool_call, persona=persona, state=state)
    assert (decision.action, decision.rule) == (action, rule)
    if reason is not None:
        assert decision.reason == reason
    else:
        assert decision.reason.startswith("argument ")


def test_constraint_reason_names_argument_but_not_value(guard: Guard) -> None:
    decision = guard.decide(call("read_file", path="/etc/shadow"), persona="analyst")
    assert decision.reason.startswith("argument 'path' ")
    assert "/etc/shadow" not in decision.reason
    assert "/srv/reports" not in decision.reason


def test_denial_never_lists_other_tools(guard: Guard) -> None:
    decision = guard.decide(call("refund", amount=1), persona="analyst")
    assert decision.denied
    for other in ("search", "read_file", "run_sql", "send_email", "fetch_url"):
        assert other not in decision.reason


def test_decision_carries_labels_and_id(guard: Guard) -> None:
    decision = guard.decide(call("fetch_url", id="abc", url="https://docs.example.com/a"),
                            persona="analyst")
    assert decision.allowed
    assert decision.labels == ("untrusted_source", "egress")
    assert decision.tool_call_id == "abc"
    assert decision.persona == "analyst"


def test_no_persona_and_no_default_is_denied() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text("personas: {a: {tools: [t]}}"))
    decision = guard.decide(call("t"))
    assert (decision.action, decision.rule, decision.persona) == (D, "personas", "")
    assert decision.reason == "no persona was given and the policy has no default_persona"


def test_batch_applies_flows_within_one_turn(guard: Guard) -> None:
    decisions = guard.engine.decide_batch(
        [call("read_file", id="1", path="/srv/reports/q1.pdf"),
         call("send_email", id="2", to="boss@example.com", body="numbers")],
        "analyst",
    )
    assert [(d.action, d.rule) for d in decisions] == [
        (A, "personas.analyst.tools.read_file"),
        (R, "flows.no-exfiltration"),
    ]


def test_batch_denied_call_adds_no_labels(guard: Guard) -> None:
    decisions = guard.engine.decide_batch(
        [call("read_file", id="1", path="/etc/passwd"),
         call("send_email", id="2", to="boss@example.com", body="numbers")],
        "analyst",
    )
    assert [d.action for d in decisions] == [D, A]


def test_batch_counts_budget_within_one_turn(guard: Guard) -> None:
    calls = [call("search", id=str(i)) for i in range(7)]
    decisions = guard.engine.decide_batch(calls, "analyst")
    assert [d.action for d in decisions] == [A] * 5 + [D] * 2
    assert decisions[5].rule == "tools.search.max_calls_per_thread"


def test_batch_denies_repeated_call_id(guard: Guard) -> None:
    decisions = guard.engine.decide_batch(
        [call("search", id="same"), call("search", id="same")], "analyst"
    )
    assert [(d.action, d.rule) for d in decisions] == [
        (A, "personas.analyst.tools.search"), (D, "call.malformed")]
    assert decisions[1].reason == "the tool call id repeats an earlier call's id"


def test_check_batch_memory_accounting_is_per_thread(guard: Guard) -> None:
    first = guard.check_batch([call("read_file", path="/srv/reports/a")], persona="analyst",
                              thread_id="t1")
    assert first.delta == {"labels": ["reads_sensitive"], "tool_calls": {"read_file": 1},
                           "total_calls": 1}
    assert guard.thread_state("t1") == first.delta
    # the flow now holds email in thread t1 but not in thread t2
    email = call("send_email", to="a@example.com", body="x")
    assert guard.check_batch([email], persona="analyst", thread_id="t1").decisions[0].action == R
    assert guard.check_batch([email], persona="analyst", thread_id="t2").decisions[0].action == A
    assert guard.thread_state("t2")["labels"] == ["egress"]
    guard.reset_thread("t1")
    assert guard.thread_state("t1") == {"labels": [], "tool_calls": {}, "total_calls": 0}


def test_check_batch_with_graph_state_is_pure(guard: Guard) -> None:
    state = {"labels": ["reads_sensitive"], "tool_calls": {}, "total_calls": 1}
    check = guard.check_batch([call("search")], persona="analyst", state=state, thread_id="t")
    assert check.delta == {"labels": [], "tool_calls": {"search": 1}, "total_calls": 1}
    assert guard.thread_state("t") == {"labels": [], "tool_calls": {}, "total_calls": 0}
    assert state == {"labels": ["reads_sensitive"], "tool_calls": {}, "total_calls": 1}


def test_approval_condition_fails_closed_on_missing_argument() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text(
        "personas: {p: {tools: [pay]}}\n"
        "tools:\n  pay:\n    approval:\n      when:\n"
        "        - args: {amount: {range: {min: 100}}}\n"
    ))
    assert guard.decide(call("pay"), persona="p").action == R
    assert guard.decide(call("pay", amount="5"), persona="p").action == R
    assert guard.decide(call("pay", amount=5), persona="p").action == A
    assert guard.decide(call("pay", amount=500), persona="p").action == R


def test_approval_always_and_thread_labels() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text(
        "personas: {p: {tools: {deploy: {approval: always}, post: {}}}}\n"
        "tools:\n  post:\n    approval:\n      when:\n        - thread_labels: [untrusted]\n"
    ))
    assert guard.decide(call("deploy"), persona="p").rule == "personas.p.tools.deploy.approval"
    assert guard.decide(call("post"), persona="p").action == A
    post = guard.decide(call("post"), persona="p", state={"labels": ["untrusted"]})
    assert (post.action, post.rule) == (R, "tools.post.approval")


def test_deny_flow_wins_over_approval_flow() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text(
        "personas: {p: {tools: [send]}}\n"
        "tools: {send: {labels: [egress]}}\n"
        "flows:\n"
        "  - {id: ask, after: [untrusted], then: [egress], action: require_approval}\n"
        "  - {id: stop, after: [reads_sensitive], then: [egress], action: deny}\n"
    ))
    state = {"labels": ["untrusted", "reads_sensitive"]}
    assert guard.decide(call("send"), persona="p", state=state).rule == "flows.stop"


def test_persona_args_do_not_loosen_extra_args_deny() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text(
        "personas:\n"
        "  a: {tools: {send: {args: {bcc: {max_length: 200}}}}}\n"
        "  b: {tools: [send]}\n"
        "tools:\n"
        "  send: {extra_args: deny, args: {to: {regex: '.*@acme\\.com'}}}\n"))
    leak = call("send", to="x@acme.com", bcc="leak@evil.io")
    for persona in ("a", "b"):
        decision = guard.decide(leak, persona=persona)
        assert (decision.action, decision.rule) == (D, "tools.send.extra_args")


def test_items_in_approval_condition_fails_closed() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text(
        "personas: {p: {tools: [pay]}}\n"
        "tools:\n  pay:\n    approval:\n      when:\n"
        "        - args: {amounts: {items: {range: {min: 100}}}}\n"))
    assert guard.decide(call("pay", amounts=["5000"]), persona="p").action == R
    assert guard.decide(call("pay", amounts=[500, 700]), persona="p").action == R
    assert guard.decide(call("pay", amounts=[5, 7]), persona="p").action == A


def test_state_with_null_fields_is_a_new_thread(guard: Guard) -> None:
    state = {"labels": None, "tool_calls": None, "total_calls": None}
    assert guard.decide(call("search"), persona="analyst", state=state).action == A


def test_budget_of_one_reads_well() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text(
        "personas: {p: {tools: [t], max_calls_per_thread: 1}}\n"
        "tools: {t: {max_calls_per_thread: 1}}\n"))
    state = {"tool_calls": {"t": 1}, "total_calls": 1}
    assert guard.decide(call("t"), persona="p", state=state).reason == (
        "the budget of 1 tool call in this thread is spent")
    guard = Guard(load_policy_text("personas: {p: {tools: [t]}}\n"
                                   "tools: {t: {max_calls_per_thread: 1}}\n"))
    assert guard.decide(call("t"), persona="p", state=state).reason == (
        "the budget of 1 call of 't' in this thread is spent")


@pytest.mark.parametrize("bad", [123, ["analyst"], {"name": "analyst"}, b"analyst"])
def test_non_string_persona_never_falls_back_to_default(guard: Guard, bad: object) -> None:
    persona = guard.resolve_persona({"configurable": {"persona": bad}})
    decision = guard.decide(call("search"), persona=persona)
    assert (decision.action, decision.rule) == (D, "personas")
    assert persona == ""


def test_persona_resolution_order(guard: Guard) -> None:
    config = {"configurable": {"persona": "support"}}
    assert guard.resolve_persona(config, {"persona": "intern"}, fixed="analyst") == "analyst"
    assert guard.resolve_persona(config, {"persona": "intern"}) == "support"
    assert guard.resolve_persona({}, {"persona": "intern"}) == "intern"
    assert guard.resolve_persona(None, None) == "analyst"  # the policy default


def test_decide_is_deterministic(guard: Guard) -> None:
    c = call("send_email", to="a@example.com", body="x")
    state = {"labels": ["reads_sensitive"]}
    results = {guard.decide(c, persona="analyst", state=state) for _ in range(50)}
    assert len(results) == 1


def test_an_optional_argument_may_be_null_and_a_required_one_may_not() -> None:
    from langchain_secure.policy import Policy, PolicyEngine

    engine = PolicyEngine(Policy.model_validate({
        "default_persona": "p", "personas": {"p": {"tools": ["mail"]}},
        "tools": {"mail": {"extra_args": "deny", "args": {
            "to": {"regex": "[a-z]+@example\\.com"},
            "cc": {"items": {"regex": "[a-z]+@example\\.com"}, "optional": True},
            "kind": {"enum": [None, "plain"]}}}}}))

    def decide(**args: object) -> tuple[str, str]:
        d = engine.decide({"name": "mail", "args": {"kind": "plain", **args}, "id": "1"})
        return d.action.value, d.reason

    assert decide(to="a@example.com", cc=None) == ("allow", "'mail' is allowed for persona 'p'")
    assert decide(to="a@example.com") == ("allow", "'mail' is allowed for persona 'p'")
    assert decide(to="a@example.com", cc=["x@evil.test"]) == (
        "deny", "argument 'cc' item 0 does not match the required pattern")
    assert decide(to=None) == ("deny", "argument 'to' must be a string")
    assert decide(to="a@example.com", kind=None)[0] == "allow"  # null as an allowed value
