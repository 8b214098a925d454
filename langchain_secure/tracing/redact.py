"""Keep what the policy hides out of every exported span, not only the guard's own.

The guard publishes hash-only arguments as keyed hashes and secrets redacted,
but a tracer also records the agent itself: the model's tool calls, the tool's
input and raw output, the graph state. :class:`TraceRedactor` is a Langfuse
``mask_otel_spans`` function that rewrites every span attribute on its way out
(in the exporter's background thread, never in the agent's): values of the
policy's ``audit: {hash_only: [...]}`` arguments become ``[redacted]`` wherever
they appear under that key (JSON, JSON inside JSON strings, ``'key': 'value'``
text), and secrets the secrets detector finds become ``[REDACTED:<type>]``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from langfuse.types import MaskOtelSpansParams, MaskOtelSpansResult

    from langchain_secure.guard import Guard
    from langchain_secure.policy.model import Policy

__all__ = ["REDACTED", "TraceRedactor"]

REDACTED = "[redacted]"
"""What a hidden argument's value becomes in a trace."""

_INSTALL_SECRETS = "pip install 'langchain-secure[llm-guard]'"
_KEYED = ("hmac-sha256:", REDACTED, "[secret ", "[REDACTED:")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
logger = logging.getLogger("langchain_secure.tracing")


def _hidden(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(_KEYED)


class TraceRedactor:
    r"""A Langfuse ``mask_otel_spans`` function that hides hash-only arguments and secrets.

    Args:
        source: A :class:`~langchain_secure.Guard` or a policy: every tool's
            ``audit: {hash_only: [...]}`` argument names are hidden. ``None`` for
            ``fields`` only.
        fields: More argument names to hide.
        secrets: ``"auto"`` redacts secrets when the secrets detector is installed
            (the ``llm-guard`` extra) and warns once when it is not; ``"on"``
            requires it (``ImportError`` here); ``"off"`` does not look for secrets.

    Raises:
        ValueError: A field name is empty or ``secrets`` is not one of the options.
        ImportError: ``secrets="on"`` without the secrets detector installed.

    Example:
        ```python
        from langchain_secure import load_policy_text
        from langchain_secure.tracing import TraceRedactor

        policy = load_policy_text(
            "personas: {p: {tools: [login]}}\n"
            "tools: {login: {audit: {hash_only: [password]}}}\n")
        redactor = TraceRedactor(policy, secrets="off")
        assert redactor.redact({"name": "login", "args": {"user": "ana",
                                                          "password": "hunter2"}}) == {
            "name": "login", "args": {"user": "ana", "password": "[redacted]"}}
        assert redactor.redact_text("{'password': 'hunter2'}") == "{'password': '[redacted]'}"
        # with a Langfuse client: Langfuse(mask_otel_spans=redactor)
        ```
    """

    def __init__(self, source: Guard | Policy | None = None, *, fields: Iterable[str] = (),
                 secrets: Literal["auto", "on", "off"] = "auto") -> None:
        if secrets not in ("auto", "on", "off"):
            raise ValueError(f"secrets must be 'auto', 'on' or 'off', got {secrets!r}")
        names = set(_policy_fields(source))
        for name in fields:
            if not isinstance(name, str) or not _FIELD_NAME.match(name):
                raise ValueError(f"field names must be non-empty identifiers, got {name!r}")
            names.add(name)
        if secrets == "on" and importlib.util.find_spec("detect_secrets") is None:
            raise ImportError("the secrets detector is not installed; install with: "
                              f"{_INSTALL_SECRETS}") from None
        self.fields: frozenset[str] = frozenset(names)
        self.secrets = secrets
        self._detector: Any = None
        self._detector_ready = secrets == "off"
        self._lock = threading.Lock()
        alternatives = "|".join(re.escape(n) for n in sorted(self.fields, key=len, reverse=True))
        self._text_pattern = re.compile(
            r"(?P<key>(?P<q>['\"]?)\b(?:" + alternatives + r")\b(?P=q))(?P<sep>\s*[:=]\s*)"
            r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;}\])]+)"
        ) if self.fields else None

    # -- the Langfuse hook ------------------------------------------------------------

    def __call__(self, *, params: MaskOtelSpansParams, **_: Any) -> MaskOtelSpansResult:
        """Patch every string attribute of every span in an export batch that needs it."""
        from langfuse.types import MaskOtelSpansResult, OtelSpanPatch

        patches = {}
        for identifier, span in params.spans.items():
            changed: dict[str, Any] = {}
            for key, value in span.attributes.items():
                if isinstance(value, str):
                    masked = self.redact_text(value)
                    if masked != value:
                        changed[key] = masked
                elif isinstance(value, tuple | list) and value and isinstance(value[0], str):
                    items = [self.redact_text(v) if isinstance(v, str) else v for v in value]
                    if items != list(value):
                        changed[key] = items
            if changed:
                patches[identifier] = OtelSpanPatch(set_attributes=changed)
        return MaskOtelSpansResult(span_patches=patches)

    def mask(self, *, data: Any, **_: Any) -> Any:
        """A Langfuse ``mask`` function (runs in the agent's thread; prefer ``__call__``)."""
        return self.redact(data)

    # -- redaction ---------------------------------------------------------------------

    def redact(self, value: Any) -> Any:
        """``value`` (JSON-like) with hidden arguments and secrets replaced."""
        if isinstance(value, Mapping):
            return {k: (REDACTED if k in self.fields and v is not None and not _hidden(v)
                        else self.redact(v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        if isinstance(value, str):
            return self.redact_text(value)
        return value

    def redact_text(self, text: str) -> str:
        """A string with hidden arguments and secrets replaced; JSON stays JSON."""
        stripped = text.lstrip()
        if stripped[:1] in ("{", "[", '"'):
            try:
                decoded = json.loads(text)
            except ValueError:
                pass
            else:
                redacted = self.redact(decoded)
                if redacted == decoded:
                    return text
                return json.dumps(redacted, ensure_ascii=False)
        if self._text_pattern is not None:
            text = self._text_pattern.sub(self._replace_field, text)
        return self._redact_secrets(text)

    def _replace_field(self, match: re.Match[str]) -> str:
        value = match.group("value")
        if _hidden(value.strip("'\"")):
            return match.group(0)
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"

    def _redact_secrets(self, text: str) -> str:
        detector = self._secrets_detector()
        if detector is None or len(text) < 8:
            return text
        verdict = detector.scan(text)
        sanitized = verdict.sanitized_text
        return sanitized if isinstance(sanitized, str) else text

    def _secrets_detector(self) -> Any:
        if self._detector_ready:
            return self._detector
        with self._lock:
            if not self._detector_ready:
                try:
                    from langchain_secure.scanning.secrets import SecretsDetector

                    detector = SecretsDetector(cache_size=4096)
                    detector.scan("warm-up text")
                    self._detector = detector
                except ImportError:
                    logger.warning("traces are not checked for secrets: the secrets detector "
                                   "is not installed; install with: %s", _INSTALL_SECRETS)
                self._detector_ready = True
        return self._detector


def _policy_fields(source: Any) -> Iterable[str]:
    if source is None:
        return ()
    policy = getattr(source, "policy", source)
    tools = getattr(policy, "tools", None)
    if not isinstance(tools, Mapping):
        raise ValueError(f"source must be a Guard, a Policy or None, got {type(source).__name__}")
    return [name for spec in tools.values() for name in spec.audit.hash_only]
