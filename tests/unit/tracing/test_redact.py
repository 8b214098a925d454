"""TraceRedactor hides hash-only arguments and secrets in every exported attribute."""

from __future__ import annotations

import importlib.util
import json

import pytest

from langchain_secure import Guard, load_policy_text
from langchain_secure.tracing import REDACTED, TraceRedactor

POLICY = load_policy_text("personas: {p: {tools: [login, pay]}}\n"
                          "tools: {login: {audit: {hash_only: [password]}}}\n")
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
needs_secrets = pytest.mark.skipif(importlib.util.find_spec("detect_secrets") is None,
                                   reason="needs the llm-guard extra (detect-secrets)")


@pytest.fixture
def redactor() -> TraceRedactor:
    return TraceRedactor(Guard(POLICY), fields=["pin"], secrets="off")


def test_fields_come_from_the_policy_and_the_option(redactor: TraceRedactor) -> None:
    assert redactor.fields == frozenset({"password", "pin"})


def test_nested_values_under_a_hidden_key(redactor: TraceRedactor) -> None:
    value = {"messages": [{"tool_calls": [{"name": "login", "args": {
        "user": "ana", "password": "hunter2", "pin": 1234}}]}], "password": None}
    assert redactor.redact(value) == {"messages": [{"tool_calls": [{"name": "login", "args": {
        "user": "ana", "password": REDACTED, "pin": REDACTED}}]}], "password": None}


def test_keyed_hashes_stay(redactor: TraceRedactor) -> None:
    assert redactor.redact({"password": "hmac-sha256:abc"}) == {"password": "hmac-sha256:abc"}
    assert redactor.redact_text("{'password': 'hmac-sha256:abc'}") == (
        "{'password': 'hmac-sha256:abc'}")


def test_json_inside_json_strings(redactor: TraceRedactor) -> None:
    attribute = json.dumps({"function": {"arguments": json.dumps({"password": "hunter2"})}})
    out = redactor.redact_text(attribute)
    assert "hunter2" not in out
    assert json.loads(json.loads(out)["function"]["arguments"]) == {"password": REDACTED}


@pytest.mark.parametrize(("text", "expected"), [
    ("{'user': 'ana', 'password': 'hun ter2'}", "{'user': 'ana', 'password': '[redacted]'}"),
    ('password="hunter2" next', 'password="[redacted]" next'),
    ("password=hunter2, user=ana", "password=[redacted], user=ana"),
    ("passwords: x", "passwords: x"),
    ("nothing here", "nothing here"),
])
def test_key_value_text(redactor: TraceRedactor, text: str, expected: str) -> None:
    assert redactor.redact_text(text) == expected


def test_unchanged_json_keeps_its_formatting(redactor: TraceRedactor) -> None:
    text = '{"user":  "ana"}'
    assert redactor.redact_text(text) == text


@needs_secrets
def test_secrets_are_redacted_by_type() -> None:
    redactor = TraceRedactor(secrets="on")
    assert redactor.redact_text(f"key is {TOKEN}") == "key is [REDACTED:GitHub Token]"
    assert redactor.redact(json.dumps({"output": f"key {TOKEN}"})) == json.dumps(
        {"output": "key [REDACTED:GitHub Token]"})


def test_mask_otel_spans_patches_only_what_changed(redactor: TraceRedactor) -> None:
    types = pytest.importorskip("langfuse.types")
    a = types.OtelSpanIdentifier(trace_id="0" * 32, span_id="1" * 16)
    b = types.OtelSpanIdentifier(trace_id="0" * 32, span_id="2" * 16)

    def span(ident: object, attributes: dict[str, object]) -> object:
        return types.OtelSpanData(trace_id="0" * 32, span_id=ident.span_id,  # type: ignore[attr-defined]
                                  parent_span_id=None, name="s", instrumentation_scope_name="x",
                                  instrumentation_scope_version=None, attributes=attributes,
                                  resource_attributes={})

    params = types.MaskOtelSpansParams(spans={
        a: span(a, {"langfuse.observation.input": json.dumps({"password": "p"}), "n": 3,
                    "tags": ["password=p", "ok"]}),
        b: span(b, {"langfuse.observation.input": json.dumps({"user": "ana"})})})
    result = redactor(params=params)
    assert list(result.span_patches) == [a]
    assert result.span_patches[a].set_attributes == {
        "langfuse.observation.input": json.dumps({"password": REDACTED}),
        "tags": ["password=[redacted]", "ok"]}
    assert redactor.mask(data={"password": "p"}) == {"password": REDACTED}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"secrets": "maybe"}, "secrets must be"), ({"fields": [""]}, "field names"),
    ({"fields": ["a b"]}, "field names")])
def test_options_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TraceRedactor(**kwargs)  # type: ignore[arg-type]


def test_source_must_be_a_guard_or_policy() -> None:
    with pytest.raises(ValueError, match="source must be a Guard, a Policy or None"):
        TraceRedactor("policy.yaml")  # type: ignore[arg-type]
