"""The policy chooses the sandbox per persona; Guard owns the pools."""

from __future__ import annotations

import pytest

from langchain_secure import Guard, PolicyError, load_policy_text
from langchain_secure.sandbox import SandboxSpec

POLICY = """
default_persona: analyst
sandbox: {backend: gvisor, timeout_s: 20}
personas:
  analyst: {tools: [run_python]}
  intern:
    tools: [run_python]
    sandbox: {backend: bubblewrap, memory_mb: 256, env: {MPLBACKEND: Agg}}
"""


def test_persona_section_replaces_the_policy_section() -> None:
    policy = load_policy_text(POLICY)
    assert policy.sandbox_for("analyst") == SandboxSpec(backend="gvisor", timeout_s=20)
    assert policy.sandbox_for("intern") == SandboxSpec(backend="bubblewrap", memory_mb=256,
                                                       env={"MPLBACKEND": "Agg"})
    assert policy.sandbox_for(None) == SandboxSpec(backend="gvisor", timeout_s=20)


def test_no_section_means_the_default_local_sandbox() -> None:
    policy = load_policy_text("personas: {a: {tools: [run_python]}}")
    assert policy.sandbox_for("a") == SandboxSpec()
    assert SandboxSpec().backend == "bubblewrap"


def test_bad_sandbox_section_is_located() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_text("personas:\n  a:\n    tools: [x]\n    sandbox: {backend: docker}\n",
                         filename="p.yaml")
    [issue] = info.value.issues
    assert (issue.line, issue.key) == (4, "personas.a.sandbox.backend")


def test_guard_keeps_one_pool_per_distinct_section() -> None:
    guard = Guard(load_policy_text(POLICY))
    analyst = guard.sandbox_pool("analyst")
    assert guard.sandbox_pool(None) is analyst
    intern = guard.sandbox_pool("intern")
    assert intern is not analyst
    guard.close()
    assert guard.sandbox_pool("analyst") is not analyst  # closed pools are not reused
    guard.close()  # the new pool started a warm sandbox: leave no process behind


def test_python_tool_is_the_run_python_tool() -> None:
    tool = Guard(load_policy_text(POLICY)).python_tool()
    assert tool.name == "run_python"
    assert set(tool.args) == {"code"}
