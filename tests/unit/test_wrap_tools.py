"""Guard.wrap_tools: the same decisions for code that calls tools directly."""

from __future__ import annotations

from typing import Annotated

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import InjectedToolCallId, tool

from langchain_secure import ApprovalRequiredError, Guard, GuardedTool, ToolNotAllowedError
from langchain_secure.errors import ConfigurationError


@tool
def read_file(path: str) -> str:
    """Read a report."""
    return f"contents of {path}"


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}"


def search(q: str) -> str:
    """Search the docs."""
    return f"results for {q}"


@tool
def refund(amount: float, call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Refund a customer."""
    return f"refunded {amount} ({call_id})"


def test_wrapped_tool_keeps_name_description_schema(guard: Guard) -> None:
    wrapped = guard.wrap_tools([read_file, search])
    assert [t.name for t in wrapped] == ["read_file", "search"]
    assert all(isinstance(t, GuardedTool) for t in wrapped)
    assert wrapped[0].description == read_file.description
    assert wrapped[0].args == read_file.args
    assert wrapped[1].args == {"q": {"title": "Q", "type": "string"}}


def test_allowed_and_denied(guard: Guard) -> None:
    [safe] = guard.wrap_tools([read_file])
    assert safe.invoke({"path": "/srv/reports/a"}) == "contents of /srv/reports/a"
    assert safe.invoke({"path": "/etc/shadow"}) == (
        "Tool call 'read_file' was refused by the security policy (rule "
        "tools.read_file.args.path): argument 'path' is outside the allowed paths")


def test_string_input_maps_to_single_argument(guard: Guard) -> None:
    [safe] = guard.wrap_tools([read_file])
    assert safe.invoke("/srv/reports/b") == "contents of /srv/reports/b"
    assert safe.invoke("/etc/passwd").startswith("Tool call 'read_file' was refused")


def test_tool_call_input_gives_error_tool_message(guard: Guard) -> None:
    [safe] = guard.wrap_tools([read_file])
    out = safe.invoke({"name": "read_file", "args": {"path": "/etc/x"}, "id": "c9",
                       "type": "tool_call"})
    assert isinstance(out, ToolMessage)
    assert (out.status, out.tool_call_id, out.name) == ("error", "c9", "read_file")
    ok = safe.invoke({"name": "read_file", "args": {"path": "/srv/reports/x"}, "id": "c10",
                      "type": "tool_call"})
    assert (ok.status, ok.content) == ("success", "contents of /srv/reports/x")


def test_raise_mode(guard: Guard) -> None:
    [safe] = guard.wrap_tools([read_file], on_deny="raise")
    with pytest.raises(ToolNotAllowedError) as info:
        safe.invoke({"path": "/etc/shadow"})
    assert info.value.rule == "tools.read_file.args.path"


def test_flow_rule_uses_thread_memory(guard: Guard) -> None:
    read, send = guard.wrap_tools([read_file, send_email], on_deny="raise")
    config = {"configurable": {"thread_id": "w-1"}}
    read.invoke({"path": "/srv/reports/a"}, config)
    with pytest.raises(ApprovalRequiredError) as info:
        send.invoke({"to": "a@example.com", "body": "x"}, config)
    assert info.value.rule == "flows.no-exfiltration"
    # another thread is unaffected
    assert send.invoke({"to": "a@example.com", "body": "x"},
                       {"configurable": {"thread_id": "w-2"}}) == "sent to a@example.com"


def test_persona_from_config_and_fixed(guard: Guard) -> None:
    [safe] = guard.wrap_tools([read_file])
    denied = safe.invoke({"path": "/srv/reports/a"}, {"configurable": {"persona": "intern"}})
    assert denied.endswith("tool 'read_file' is not allowed for persona 'intern'")
    [fixed] = guard.wrap_tools([read_file], persona="intern")
    assert fixed.invoke({"path": "/srv/reports/a"},
                        {"configurable": {"persona": "analyst"}}).startswith("Tool call")


def test_injected_arguments_are_not_policy_arguments() -> None:
    from langchain_secure import load_policy_text

    guard = Guard(load_policy_text(
        "default_persona: s\npersonas: {s: {tools: [refund]}}\n"
        "tools: {refund: {extra_args: deny, args: {amount: {range: {max: 10}}}}}\n"))
    [safe] = guard.wrap_tools([refund])
    out = safe.invoke({"name": "refund", "args": {"amount": 5}, "id": "r1",
                       "type": "tool_call"})
    assert out.content == "refunded 5.0 (r1)"


async def test_async_path(guard: Guard) -> None:
    [safe] = guard.wrap_tools([read_file])
    assert await safe.ainvoke({"path": "/srv/reports/a"}) == "contents of /srv/reports/a"
    assert (await safe.ainvoke({"path": "/x"})).startswith("Tool call 'read_file' was refused")


def test_bad_on_deny(guard: Guard) -> None:
    with pytest.raises(ConfigurationError):
        guard.wrap_tools([read_file], on_deny="log")  # type: ignore[arg-type]
