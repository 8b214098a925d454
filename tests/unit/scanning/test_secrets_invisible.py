"""Secrets redaction and llm-guard's invisible-text check."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("detect_secrets")

from langchain_secure.errors import ConfigurationError
from langchain_secure.scanning import InvisibleTextDetector, SecretsDetector

GH = "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"
AWS = "AKIAIOSFODNN7EXAMPLE"


def test_secrets_are_located_and_redacted_once_per_span() -> None:
    text = f"config:\n  aws_access_key_id = {AWS}\n  token: {GH}\nagain {GH}\n"
    verdict = SecretsDetector().scan(text)
    assert [(f.kind, f.rule, text[f.start : f.end]) for f in verdict.findings] == [
        ("secret", "AWS Access Key", AWS),
        ("secret", "GitHub Token", GH),
        ("secret", "GitHub Token", GH),
    ]
    assert verdict.sanitized_text == (
        "config:\n  aws_access_key_id = [REDACTED:AWS Access Key]\n"
        "  token: [REDACTED:GitHub Token]\nagain [REDACTED:GitHub Token]\n"
    )
    assert verdict.risk == 0.4
    for finding in verdict.findings:
        assert GH not in finding.description and AWS not in finding.description


def test_secret_inside_a_json_tool_output_and_mask_mode() -> None:
    text = json.dumps({"ok": True, "data": {"api_token": GH, "user": "ana"}})
    verdict = SecretsDetector(redaction="mask", risk=0.9).scan(text)
    assert verdict.sanitized_text == text.replace(GH, "******")
    assert verdict.flagged(0.5)


def test_ordinary_tool_output_has_no_secrets() -> None:
    text = json.dumps(
        {
            "id": 42,
            "name": "Alice",
            "sha": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        }
    )
    assert SecretsDetector().scan(text).findings == ()
    assert SecretsDetector().scan("").risk == 0.0


def test_secrets_options() -> None:
    with pytest.raises(ConfigurationError, match="redaction"):
        SecretsDetector(redaction="hash")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="risk"):
        SecretsDetector(risk=2)


def test_invisible_text_matches_llm_guard_categories() -> None:
    tags = "".join(chr(0xE0000 + ord(c)) for c in "rm -rf /")
    text = "a\u200bb" + tags + "c\u00add\ue000"
    verdict = InvisibleTextDetector().scan(text)
    assert [f.span for f in verdict.findings] == [(1, 2), (3, 11), (12, 13), (14, 15)]
    assert verdict.sanitized_text == "abcd"
    assert verdict.risk == 1.0
    assert InvisibleTextDetector().scan("plain ascii").findings == ()
    assert InvisibleTextDetector().scan("café ünïcode").findings == ()
    with pytest.raises(ConfigurationError):
        InvisibleTextDetector(risk=-1)
