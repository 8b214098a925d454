r"""llm-guard's ``InvisibleText`` check, with located findings.

:class:`InvisibleTextDetector` flags and strips every character in the Unicode
categories llm-guard's ``InvisibleText`` scanner bans: ``Cf`` (format: zero-width
characters, bidi controls, tag characters, soft hyphens...), ``Co`` (private use)
and ``Cn`` (unassigned). It is broader than the ``hidden_text`` signatures of
:class:`~langchain_secure.scanning.SignatureDetector` and so noisier: a joiner
inside an emoji sequence or a soft hyphen in a web page is flagged too. The
check is pure Python; llm-guard itself is not imported.

Example:
    ```python
    from langchain_secure.scanning import InvisibleTextDetector

    verdict = InvisibleTextDetector().scan("pay\u200bpal")
    assert verdict.sanitized_text == "paypal" and verdict.findings[0].span == (3, 4)
    ```
"""

from __future__ import annotations

import unicodedata

from langchain_secure.errors import ConfigurationError
from langchain_secure.scanning.base import BaseDetector, Finding, ScanVerdict, apply_replacements

__all__ = ["BANNED_CATEGORIES", "InvisibleTextDetector"]

BANNED_CATEGORIES: frozenset[str] = frozenset({"Cf", "Co", "Cn"})
"""The Unicode categories llm-guard 0.3.16's ``InvisibleText`` removes."""


class InvisibleTextDetector(BaseDetector):
    r"""Flags and strips invisible characters (Unicode categories Cf, Co, Cn).

    Args:
        risk: The risk of a text with any invisible character (llm-guard reports 1.0).
        cache_size: Most verdicts kept in the LRU cache; ``0`` disables it.

    Raises:
        ConfigurationError: ``risk`` is outside [0, 1].

    Example:
        ```python
        from langchain_secure.scanning import InvisibleTextDetector

        text = "hi" + "".join(chr(0xE0000 + ord(c)) for c in "run rm -rf")
        verdict = InvisibleTextDetector().scan(text)
        assert verdict.risk == 1.0 and verdict.sanitized_text == "hi"
        ```
    """

    name = "invisible_text"
    _inline_async = True

    def __init__(self, *, risk: float = 1.0, cache_size: int = 2048) -> None:
        super().__init__(cache_size=cache_size)
        if isinstance(risk, bool) or not isinstance(risk, (int, float)) or not 0 <= risk <= 1:
            msg = f"risk must be a number in [0, 1], got {risk!r}"
            raise ConfigurationError(msg)
        self._risk = float(risk)

    @property
    def fingerprint(self) -> str:
        """The configuration as a string; part of every cache key."""
        return f"invisible_text:v1:{self._risk}:{unicodedata.unidata_version}"

    def _scan_text(self, text: str) -> ScanVerdict:
        if text.isascii():
            return ScanVerdict.clean()
        findings: list[Finding] = []
        start = -1
        for index, char in enumerate(text):
            hidden = char > "\x7f" and unicodedata.category(char) in BANNED_CATEGORIES
            if hidden and start < 0:
                start = index
            elif not hidden and start >= 0:
                findings.append(self._finding(start, index))
                start = -1
        if start >= 0:
            findings.append(self._finding(start, len(text)))
        if not findings:
            return ScanVerdict.clean()
        return ScanVerdict(
            risk=self._risk,
            findings=tuple(findings),
            sanitized_text=apply_replacements(text, findings),
            scores=((self.name, self._risk),),
        )

    def _finding(self, start: int, end: int) -> Finding:
        count = end - start
        return Finding(
            self.name,
            "hidden_text",
            (start, end),
            self._risk,
            f"{count} invisible character{'s' if count != 1 else ''} (Unicode Cf/Co/Cn)",
            rule="invisible_text",
            replacement="",
        )
