"""Secrets in tool outputs and arguments: llm-guard's detect-secrets configuration.

:class:`SecretsDetector` runs the same detect-secrets plugins as llm-guard's
``Secrets`` scanner (detect-secrets' own AWS, Stripe, JWT, private key... and
llm-guard's ~90 extra provider plugins: GitHub, Slack, OpenAI...), but in memory
(no temporary file) and with located findings: each secret becomes a
``secret`` finding whose span is replaced by ``[REDACTED:<type>]`` in
``sanitized_text``. Every occurrence of a found secret is redacted, and
overlapping detections (a GitHub token that is also a high-entropy string)
become one finding.

The llm-guard package itself is not imported (it takes seconds); only its
plugin files are read, and detect-secrets is imported on first scan.

Example:
    ```python
    from langchain_secure.scanning import SecretsDetector

    verdict = SecretsDetector().scan("aws_access_key_id = AKIAIOSFODNN7EXAMPLE")
    assert verdict.sanitized_text == "aws_access_key_id = [REDACTED:AWS Access Key]"
    ```
"""

from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path
from typing import Any, Literal

from langchain_secure.errors import ConfigurationError
from langchain_secure.scanning.base import BaseDetector, Finding, ScanVerdict, apply_replacements

__all__ = ["SecretsDetector"]

_INSTALL = "pip install 'langchain-secure[llm-guard]'"

# detect-secrets' own plugins that llm-guard 0.3.16 enables (input_scanners/secrets.py).
_BUILTIN_PLUGINS = (
    "SoftlayerDetector",
    "StripeDetector",
    "NpmDetector",
    "IbmCosHmacDetector",
    "DiscordBotTokenDetector",
    "BasicAuthDetector",
    "AzureStorageKeyDetector",
    "ArtifactoryDetector",
    "AWSKeyDetector",
    "CloudantDetector",
    "IbmCloudIamDetector",
    "JwtTokenDetector",
    "MailchimpDetector",
    "SquareOAuthDetector",
    "PrivateKeyDetector",
    "TwilioKeyDetector",
)
_ENTROPY_TYPES = frozenset({"Base64 High Entropy String", "Hex High Entropy String"})
_CLASS = re.compile(r"^class\s+(\w+)\s*\(", re.MULTILINE)

_lock = threading.Lock()
_config: dict[str, Any] | None = None


def _plugin_config() -> dict[str, Any]:
    """llm-guard's detect-secrets plugin list, built without importing llm_guard."""
    global _config
    with _lock:
        if _config is not None:
            return _config
        spec = importlib.util.find_spec("llm_guard")
        if spec is None or not spec.submodule_search_locations:
            msg = f"llm-guard is needed for the secrets detector; install with: {_INSTALL}"
            raise ImportError(msg)
        folder = Path(next(iter(spec.submodule_search_locations))) / "input_scanners"
        folder = folder / "secrets_plugins"
        plugins: list[dict[str, str]] = [{"name": name} for name in _BUILTIN_PLUGINS]
        for path in sorted(folder.glob("*.py")):
            if path.name == "__init__.py":
                continue
            for name in _CLASS.findall(path.read_text(encoding="utf-8")):
                plugins.append({"name": name, "path": path.resolve().as_uri()})
        _config = {"plugins_used": plugins}
        return _config


def _scan_lines(text: str) -> list[tuple[str, str, int]]:
    """Return ``(type, value, line_number)`` for each secret detect-secrets finds."""
    try:
        from detect_secrets.core import scan as ds_scan
        from detect_secrets.settings import transient_settings
    except ImportError:
        msg = f"detect-secrets is needed for the secrets detector; install with: {_INSTALL}"
        raise ImportError(msg) from None
    config = _plugin_config()
    lines = text.split("\n")
    numbered = [(number, line, True, False) for number, line in enumerate(lines, start=1)]
    found: list[tuple[str, str, int]] = []
    # transient_settings swaps process-wide settings: one scan at a time.
    with _lock, transient_settings(config):
        for secret in ds_scan._process_line_based_plugins(numbered, filename="tool-output"):
            if secret.secret_value:
                found.append((str(secret.type), str(secret.secret_value), secret.line_number))
    return found


class SecretsDetector(BaseDetector):
    """Finds API keys, tokens, private keys and passwords; redacts them in ``sanitized_text``.

    Args:
        redaction: ``"type"`` replaces a secret with ``[REDACTED:<type>]``, ``"mask"``
            with ``******`` (llm-guard's ``REDACT_ALL``).
        risk: The risk of a text that contains a secret (a secret is not an attack,
            so the default stays below the usual 0.5 threshold; raise it to block).
        cache_size: Most verdicts kept in the LRU cache; ``0`` disables it.

    Raises:
        ConfigurationError: An unknown redaction or a risk outside [0, 1].

    Example:
        ```python
        from langchain_secure.scanning import SecretsDetector

        detector = SecretsDetector(redaction="mask")
        verdict = detector.scan("token: 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")
        assert verdict.sanitized_text == "token: ******"
        assert [f.kind for f in verdict.findings] == ["secret"]
        ```
    """

    name = "secrets"

    def __init__(
        self,
        *,
        redaction: Literal["type", "mask"] = "type",
        risk: float = 0.4,
        cache_size: int = 2048,
    ) -> None:
        super().__init__(cache_size=cache_size)
        if redaction not in ("type", "mask"):
            msg = f"redaction must be 'type' or 'mask', got {redaction!r}"
            raise ConfigurationError(msg)
        if isinstance(risk, bool) or not isinstance(risk, (int, float)) or not 0 <= risk <= 1:
            msg = f"risk must be a number in [0, 1], got {risk!r}"
            raise ConfigurationError(msg)
        self._redaction = redaction
        self._risk = float(risk)

    @property
    def fingerprint(self) -> str:
        """The configuration as a string; part of every cache key."""
        return f"secrets:v1:{self._redaction}:{self._risk}"

    def _replacement(self, kind: str) -> str:
        return f"[REDACTED:{kind}]" if self._redaction == "type" else "******"

    def _scan_text(self, text: str) -> ScanVerdict:
        if len(text.strip()) < 5:
            return ScanVerdict.clean()
        # The most specific type per value: a provider plugin beats an entropy heuristic.
        types: dict[str, str] = {}
        for kind, value, _line in _scan_lines(text):
            if value not in types or types[value] in _ENTROPY_TYPES:
                types[value] = kind
        findings: list[Finding] = []
        taken: list[tuple[int, int]] = []
        for value in sorted(types, key=len, reverse=True):
            kind = types[value]
            for match in re.finditer(re.escape(value), text):
                start, end = match.span()
                if any(start < e and s < end for s, e in taken):
                    continue
                taken.append((start, end))
                findings.append(
                    Finding(
                        self.name,
                        "secret",
                        (start, end),
                        self._risk,
                        f"a secret ({kind})",
                        rule=kind,
                        replacement=self._replacement(kind),
                    )
                )
        if not findings:
            return ScanVerdict.clean()
        findings.sort(key=lambda f: f.span)
        return ScanVerdict(
            risk=self._risk,
            findings=tuple(findings),
            sanitized_text=apply_replacements(text, findings),
            scores=((self.name, self._risk),),
        )
