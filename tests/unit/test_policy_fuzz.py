"""Hypothesis: the loader only raises PolicyError; decide never raises and never
allows what an invariant forbids."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from langchain_secure import Action, Guard, PolicyError, load_policy_text
from langchain_secure.policy import Policy, PolicyEngine
from tests.unit.conftest import POLICY

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)

KEYS = ["personas", "tools", "flows", "limits", "labels", "default_persona", "args",
        "approval", "when", "labels", "after", "then", "action", "id", "regex", "enum",
        "range", "path", "url", "sql", "max_length", "items", "optional", "min", "max",
        "allow", "deny", "hosts", "max_calls_per_thread", "extra_args", "callable",
        "thread_labels", "read_only", "mode", "pattern", "version", "name"]
policy_like = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(
        ["always", "never", "deny", "require_approval", "read_only", "egress", "writes",
         "/srv/**", "[a-z]+", "(", "a", "x.com", "*.x.com", "os:getcwd", "reads_sensitive"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    max_leaves=25,
)


@FUZZ
@example("-_")  # ruamel.yaml raised IndexError and ValueError on these
@example("._")
@given(st.text(max_size=300))
def test_loader_on_arbitrary_text_only_raises_policy_error(text: str) -> None:
    try:
        result = load_policy_text(text)
    except PolicyError as exc:
        assert exc.issues
        return
    assert isinstance(result, Policy)


@FUZZ
@given(policy_like)
def test_loader_on_policy_shaped_documents_only_raises_policy_error(doc: Any) -> None:
    try:
        result = load_policy_text(json.dumps(doc))  # JSON is YAML
    except PolicyError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == "<policy>"
            assert issue.line is None or issue.line >= 1
        return
    assert isinstance(result, Policy)


junk_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(
    lambda k: k not in KEYS and k not in ("description", "personas", "analyst", "support")
    and k not in ("true", "false", "null"))


@settings(max_examples=40, deadline=None)
@given(junk_keys, st.sampled_from([0, 5]))
def test_an_unknown_key_anywhere_is_located_exactly(junk: str, after: int) -> None:
    # line 0 is top level; line 5 is inside personas.analyst (indent 4)
    lines = POLICY.splitlines()
    indent = "    " if after == 5 else ""
    lines.insert(after + 1 if after else 0, f"{indent}{junk}: 1")
    try:
        load_policy_text("\n".join(lines), filename="m.yaml")
    except PolicyError as exc:
        [issue] = exc.issues
        expected_key = junk if after == 0 else f"personas.analyst.{junk}"
        assert (issue.line, issue.key, issue.message) == (
            (after + 2 if after else 1), expected_key, f"unknown key {junk!r}")
    else:
        raise AssertionError("an unknown key was accepted")


ENGINE = PolicyEngine(load_policy_text(POLICY))
POL = ENGINE.policy
TOOL_NAMES = sorted({t for p in POL.personas.values() for t in p.tools} | set(POL.tools))
PERSONAS = sorted(POL.personas)
LABELS = sorted(POL.known_labels())

calls = st.fixed_dictionaries(
    {"name": st.sampled_from(TOOL_NAMES) | st.text(max_size=12) | json_values,
     "args": st.dictionaries(st.sampled_from(["path", "query", "to", "body", "subject",
                                               "url", "amount", "q", "bcc"]) | st.text(max_size=5),
                             json_values, max_size=4) | json_values,
     "id": st.text(max_size=6) | st.none()}
)
states = st.fixed_dictionaries(
    {"labels": st.lists(st.sampled_from(LABELS), max_size=4, unique=True),
     "tool_calls": st.dictionaries(st.sampled_from(TOOL_NAMES), st.integers(0, 60), max_size=3),
     "total_calls": st.integers(0, 60)}
) | st.none()
personas = st.sampled_from(PERSONAS) | st.text(max_size=8) | st.none()


@FUZZ
@given(calls, personas, states)
def test_decide_never_raises_and_allow_implies_every_rule_passed(call, persona, state) -> None:
    decision = ENGINE.decide(call, persona, state)
    assert decision.action in (Action.ALLOW, Action.DENY, Action.REQUIRE_APPROVAL)
    assert decision.rule and decision.reason
    resolved = persona if persona is not None else POL.default_persona
    name, args = call["name"], call["args"]
    if decision.action is Action.DENY:
        return
    # anything not denied went through every check
    assert resolved in POL.personas
    assert isinstance(name, str) and name in POL.personas[resolved].tools
    assert isinstance(args, dict)
    spec = POL.tools.get(name)
    constraints = dict(spec.args) if spec else {}
    for arg, constraint in [*constraints.items(),
                            *POL.personas[resolved].tools[name].args.items()]:
        if arg in args:
            assert constraint.check(args[arg]) is None, (arg, args[arg])
        else:
            assert constraint.optional
    if spec and spec.extra_args == "deny":
        assert set(args) <= set(spec.args)
    seen = set((state or {}).get("labels", ()))
    labels = set(spec.labels) if spec else set()
    for flow in POL.flows:
        if flow.action == "deny" and (flow.personas is None or resolved in flow.personas):
            assert not (seen & set(flow.after) and labels & set(flow.then)), flow.id
    if decision.action is Action.ALLOW:
        for flow in POL.flows:
            if flow.personas is None or resolved in flow.personas:
                assert not (seen & set(flow.after) and labels & set(flow.then)), flow.id
        used = (state or {}).get("total_calls", 0)
        for limit in (POL.limits.max_calls_per_thread,
                      POL.personas[resolved].max_calls_per_thread):
            assert limit is None or used < limit


@FUZZ
@given(st.text(max_size=20), personas)
def test_unknown_tools_are_denied(name: str, persona: str | None) -> None:
    assume(name not in TOOL_NAMES)
    decision = ENGINE.decide({"name": name, "args": {}, "id": "x"}, persona)
    assert decision.action is Action.DENY


@FUZZ
@given(st.text(max_size=20).filter(lambda p: p not in PERSONAS), st.sampled_from(TOOL_NAMES))
def test_unknown_personas_are_denied(persona: str, name: str) -> None:
    decision = ENGINE.decide({"name": name, "args": {}, "id": "x"}, persona)
    assert (decision.action, decision.rule) == (Action.DENY, "personas")


@FUZZ
@given(json_values.filter(lambda v: not isinstance(v, dict)), st.sampled_from(TOOL_NAMES))
def test_non_mapping_arguments_are_denied(args: Any, name: str) -> None:
    decision = ENGINE.decide({"name": name, "args": args, "id": "x"}, "analyst")
    assert (decision.action, decision.rule) == (Action.DENY, "call.malformed")


@FUZZ
@given(st.lists(calls, max_size=5), personas, states)
def test_batch_equals_sequential_decisions(batch, persona, state) -> None:
    guard = Guard(POL)
    together = guard.engine.decide_batch(batch, persona, state)
    running = state
    ids: set[str] = set()
    from langchain_secure import merge_security_state

    for call, decided in zip(batch, together, strict=True):
        single = guard.engine.decide(call, persona, running)
        call_id = single.tool_call_id
        if call_id is not None and call_id in ids:
            assert (decided.action, decided.rule) == (Action.DENY, "call.malformed")
        else:
            assert decided == single
        if call_id is not None:
            ids.add(call_id)
        if not decided.denied:
            running = merge_security_state(running, {"labels": list(decided.labels),
                                                     "tool_calls": {decided.tool: 1},
                                                     "total_calls": 1})


@FUZZ
@given(st.lists(calls, max_size=3), st.lists(calls, min_size=1, max_size=3), personas, states)
def test_prior_calls_shape_state_like_a_whole_batch(prior, batch, persona, state) -> None:
    whole = ENGINE.decide_batch([*prior, *batch], persona, state)
    assert ENGINE.decide_batch(batch, persona, state, prior=prior) == whole[len(prior):]
