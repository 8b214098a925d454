"""The loader: every error names file, line, column and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from langchain_secure import PolicyError, load_policy, load_policy_text
from langchain_secure.policy import Policy


def issues(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(textwrap.dedent(text), filename="p.yaml")
    assert all(i.file == "p.yaml" for i in info.value.issues)
    return [(i.line, i.key, i.message) for i in info.value.issues]


def test_valid_policy_loads(policy_text: str) -> None:
    policy = load_policy_text(policy_text)
    assert isinstance(policy, Policy)
    assert policy.persona_names() == ("analyst", "support", "intern")
    assert policy.tools["read_file"].labels == ["reads_sensitive"]
    assert "pii" in policy.known_labels()


def test_unknown_key_is_located() -> None:
    assert issues(
        """\
        personas:
          analyst:
            tools: [search]
            colour: red
        """
    ) == [(4, "personas.analyst.colour", "unknown key 'colour'")]


def test_unknown_top_level_key_and_column() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_text("personas: {a: {tools: [x]}}\nflow: []\n", filename="p.yaml")
    [issue] = info.value.issues
    assert (issue.line, issue.column, issue.key) == (2, 1, "flow")
    assert str(issue) == "p.yaml:2:1: flow: unknown key 'flow'"


def test_bad_regex_is_an_error_at_load_time() -> None:
    [(line, key, message)] = issues(
        """\
        personas: {a: {tools: [send]}}
        tools:
          send:
            args:
              to: {regex: '[a-z+@example.com'}
        """
    )
    assert (line, key) == (5, "tools.send.args.to.regex")
    assert "regex" in message or "unterminated" in message


def test_several_problems_are_all_reported() -> None:
    found = issues(
        """\
        default_persona: nobody
        personas:
          a:
            tools: [x]
            max_calls_per_thread: -1
        flows:
          - {id: f, after: [reads_sensitive], then: [egres], action: deny}
        """
    )
    assert found == [(5, "personas.a.max_calls_per_thread",
                      "Input should be greater than or equal to 0")]
    # semantic checks run once field checks pass
    found = issues(
        """\
        default_persona: nobody
        personas:
          a:
            tools: [x]
        flows:
          - {id: f, after: [reads_sensitive], then: [egres], action: deny}
          - {id: f, after: [untrusted], then: [egress], action: deny, personas: [b]}
        """
    )
    assert found == [
        (1, "default_persona", "persona 'nobody' is not defined"),
        (6, "flows.0.then.0", "unknown label 'egres': declare it under 'labels' or use a "
                              "built-in label"),
        (7, "flows.1.id", "flow id 'f' is used twice"),
        (7, "flows.1.personas.0", "persona 'b' is not defined"),
    ]


def test_non_string_keys_are_reported() -> None:
    assert issues(
        """\
        personas:
          analyst: {tools: [x]}
          true: {tools: [y]}
          12: {tools: [z]}
        """
    ) == [(3, "personas.True", "key True is not a string; put it in quotes"),
          (4, "personas.12", "key 12 is not a string; put it in quotes")]


def test_tool_entry_no_persona_lists_is_an_error() -> None:
    # a misspelt tools: key would otherwise leave issue_refund unconstrained
    assert issues(
        """\
        personas: {a: {tools: [issue_refund]}}
        tools:
          isue_refund:
            args: {amount: {range: {max: 50}}}
        """
    ) == [(3, "tools.isue_refund", "tool 'isue_refund' is configured but no persona lists "
                                   "it (a misspelt name leaves the real tool unconstrained)")]


def test_tool_labels_must_be_built_in_or_declared() -> None:
    # a misspelt label on a tool would otherwise escape every flow rule
    assert issues(
        """\
        labels: {pii: personal data}
        personas: {a: {tools: [read, send, lookup]}}
        tools:
          read: {labels: [reads_sensitive]}
          send: {labels: [egres]}
          lookup: {labels: [pii]}
        """
    ) == [(5, "tools.send.labels.0",
           "unknown label 'egres': declare it under 'labels' or use a built-in label")]


def test_missing_personas() -> None:
    assert issues("tools: {}\n") == [(1, "personas", "missing required key 'personas'")]


def test_duplicate_key_is_located() -> None:
    [(line, _key, message)] = issues(
        """\
        personas:
          a: {tools: [x]}
          a: {tools: [y]}
        """
    )
    assert line == 3
    assert "duplicate key" in message


def test_yaml_syntax_error_is_located() -> None:
    [(line, _key, message)] = issues("personas:\n  a: {tools: [x]\n  b: 1\n")
    assert line == 3
    assert message.startswith("invalid YAML:")


@pytest.mark.parametrize(("text", "message"), [
    ("", "the policy is empty"),
    ("# only a comment\n", "the policy is empty"),
    ("- a\n- b\n", "the policy must be a mapping of keys to values"),
    ("just text\n", "the policy must be a mapping of keys to values"),
])
def test_not_a_policy(text: str, message: str) -> None:
    assert issues(text) == [(1, "", message)]


def test_approval_shorthand_errors() -> None:
    [(line, key, message)] = issues(
        """\
        personas: {a: {tools: [t]}}
        tools:
          t: {approval: sometimes}
        """
    )
    assert (line, key) == (3, "tools.t.approval")
    assert message == "approval must be 'always', 'never' or a mapping with 'when'"


def test_approval_condition_needs_content() -> None:
    [(line, key, message)] = issues(
        """\
        personas: {a: {tools: [t]}}
        tools:
          t:
            approval:
              when:
                - {}
        """
    )
    assert (line, key) == (6, "tools.t.approval.when.0")
    assert message == "an approval condition needs 'args' or 'thread_labels'"


def test_unknown_label_in_approval_condition() -> None:
    assert issues(
        """\
        personas: {a: {tools: [t]}}
        tools:
          t:
            approval:
              when:
                - thread_labels: [untrustd]
        """
    ) == [(6, "tools.t.approval.when.0.thread_labels.0", "unknown label 'untrustd'")]


def test_bad_label_names() -> None:
    assert issues(
        """\
        personas: {a: {tools: [t]}}
        tools:
          t: {labels: [Egress]}
        """
    ) == [(3, "tools.t.labels",
           "label 'Egress' must be lower_snake_case (letters, digits, underscores)")]


def test_duplicate_tool_in_persona_list() -> None:
    assert issues("personas: {a: {tools: [t, t]}}\n") == [
        (1, "personas.a.tools", "tool 't' is listed twice")]


def test_unresolvable_callable_is_located() -> None:
    [(line, key, message)] = issues(
        """\
        personas: {a: {tools: [t]}}
        tools:
          t:
            args:
              x: {callable: "no_such_module_xyz:check"}
        """
    )
    assert (line, key) == (5, "tools.t.args.x.callable")
    assert "no_such_module_xyz" in message


def test_load_policy_reads_files(tmp_path: Path, policy_text: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text, encoding="utf-8")
    assert load_policy(path).name == "unit-test policy"


def test_load_policy_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.yaml")
    [issue] = info.value.issues
    assert issue.file == str(tmp_path / "nope.yaml")
    assert issue.message.startswith("cannot read policy:")


def test_python_policy_semantic_errors_raise_policy_error() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.model_validate({"default_persona": "x", "personas": {"a": {"tools": ["t"]}}})
    [issue] = info.value.issues
    assert (issue.file, issue.line, issue.key) == ("<policy>", None, "default_persona")


def test_persona_tool_mapping_with_null_entry() -> None:
    policy = load_policy_text("personas:\n  a:\n    tools:\n      t:\n      u: {}\n")
    assert list(policy.personas["a"].tools) == ["t", "u"]
