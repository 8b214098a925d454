"""The detector contract: one shape for every scanner at every door.

A detector looks at one piece of untrusted text (a user message, a retrieved
document, a tool output) and returns a :class:`ScanVerdict`: a risk in [0, 1],
the :class:`Finding` objects that explain it (spans into the original text,
never a copy of it), and, when the detector can clean the text, a sanitized
version of it.

Every detector has the same four calls: ``scan`` / ``ascan`` for one text and
``scan_batch`` / ``ascan_batch`` for many (the model tier batches them into a
few forward passes). :class:`BaseDetector` implements all four on top of one
method and caches verdicts by content hash (sha256 of the detector's
configuration and the text) in a bounded LRU.

Example:
    ```python
    from langchain_secure.scanning import BaseDetector, Finding, ScanVerdict


    class ShoutDetector(BaseDetector):
        name = "shout"

        def _scan_text(self, text: str) -> ScanVerdict:
            if text.isupper():
                finding = Finding("shout", "shouting", (0, len(text)), 0.2, "all capitals")
                return ScanVerdict(risk=0.2, findings=(finding,))
            return ScanVerdict.clean()


    assert ShoutDetector().scan("HELLO").risk == 0.2
    ```
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from langchain_secure.errors import ConfigurationError

__all__ = [
    "BaseDetector",
    "CacheInfo",
    "Detector",
    "Finding",
    "ScanCache",
    "ScanVerdict",
    "apply_replacements",
    "combine_verdicts",
    "content_key",
]

_DEFAULT_CACHE_SIZE = 2048


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector found, located in the original text.

    Attributes:
        detector: Name of the detector that found it (``signatures``, ``prompt_injection``...).
        kind: What was found: ``instruction_override``, ``role_spoofing``,
            ``template_token``, ``hidden_text``, ``exfiltration``, ``encoded_payload``,
            ``prompt_injection``, ``secret``...
        span: ``(start, end)`` character offsets into the scanned text.
        score: How strongly this finding alone suggests an attack, in [0, 1].
        description: A short explanation. It never contains the scanned text
            (which may be an attack or a secret).
        rule: Id of the signature or model label behind the finding.
        replacement: What the span becomes in ``sanitized_text`` (``""`` removes it),
            or ``None`` when the finding does not change the text.

    Example:
        ```python
        from langchain_secure.scanning import Finding

        finding = Finding("signatures", "hidden_text", (5, 6), 0.3, "zero-width character",
                          replacement="")
        assert finding.start == 5 and finding.end == 6
        ```
    """

    detector: str
    kind: str
    span: tuple[int, int]
    score: float
    description: str
    rule: str = ""
    replacement: str | None = None

    def __post_init__(self) -> None:
        start, end = self.span
        if start < 0 or end < start:
            msg = f"finding span must satisfy 0 <= start <= end, got {self.span}"
            raise ConfigurationError(msg)
        if not (0.0 <= self.score <= 1.0):
            msg = f"finding score must be in [0, 1], got {self.score}"
            raise ConfigurationError(msg)

    @property
    def start(self) -> int:
        """Start offset of the span."""
        return self.span[0]

    @property
    def end(self) -> int:
        """End offset of the span (exclusive)."""
        return self.span[1]


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    """What a detector (or a door's detectors together) concluded about one text.

    Attributes:
        risk: How likely the text carries an attack, in [0, 1].
        findings: What was found, ordered by position.
        sanitized_text: The text with hidden characters removed and secrets
            redacted, or ``None`` when nothing needed changing.
        scores: ``(detector, risk)`` for every detector that contributed.

    Example:
        ```python
        from langchain_secure.scanning import ScanVerdict

        verdict = ScanVerdict(risk=0.7)
        assert verdict.flagged(0.5) and not verdict.flagged(0.8)
        ```
    """

    risk: float
    findings: tuple[Finding, ...] = ()
    sanitized_text: str | None = None
    scores: tuple[tuple[str, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if not (0.0 <= self.risk <= 1.0) or math.isnan(self.risk):
            msg = f"risk must be in [0, 1], got {self.risk}"
            raise ConfigurationError(msg)

    @classmethod
    def clean(cls) -> ScanVerdict:
        """Return the verdict for text with nothing found."""
        return _CLEAN

    def flagged(self, threshold: float = 0.5) -> bool:
        """Return whether the risk reaches ``threshold``.

        Args:
            threshold: The risk at or above which the text counts as flagged.

        Returns:
            ``risk >= threshold``.
        """
        return self.risk >= threshold

    @property
    def kinds(self) -> frozenset[str]:
        """The distinct finding kinds."""
        return frozenset(f.kind for f in self.findings)

    def text_or_sanitized(self, text: str) -> str:
        """Return ``sanitized_text`` when there is one, else ``text``."""
        return text if self.sanitized_text is None else self.sanitized_text


_CLEAN = ScanVerdict(risk=0.0)


@runtime_checkable
class Detector(Protocol):
    """What every detector provides. :class:`BaseDetector` implements it.

    ``source`` says where the text came from (a tool name, a URL, ``"user"``);
    detectors may use it, and it never changes the cache key of one that does not.
    """

    @property
    def name(self) -> str:
        """Short stable name used in findings and configuration."""
        ...

    def scan(self, text: str, source: str | None = None) -> ScanVerdict:
        """Scan one text."""
        ...

    async def ascan(self, text: str, source: str | None = None) -> ScanVerdict:
        """Scan one text without blocking the event loop."""
        ...

    def scan_batch(
        self, texts: Sequence[str], sources: Sequence[str | None] | None = None
    ) -> list[ScanVerdict]:
        """Scan many texts; the result is in order and equals scanning one by one."""
        ...

    async def ascan_batch(
        self, texts: Sequence[str], sources: Sequence[str | None] | None = None
    ) -> list[ScanVerdict]:
        """Scan many texts without blocking the event loop."""
        ...


def content_key(fingerprint: str, text: str) -> str:
    """Return the cache key of ``text`` for a detector configured as ``fingerprint``.

    Args:
        fingerprint: A string that changes whenever the detector's configuration does.
        text: The scanned text.

    Returns:
        The hex sha256 of both.
    """
    digest = hashlib.sha256()
    digest.update(fingerprint.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """Counters of a :class:`ScanCache`.

    Attributes:
        hits: Lookups answered from the cache.
        misses: Lookups that were not.
        size: Entries held now.
        maxsize: The bound on entries (0 disables caching).
    """

    hits: int
    misses: int
    size: int
    maxsize: int


class ScanCache:
    """A thread-safe LRU of verdicts keyed by :func:`content_key`.

    Args:
        maxsize: Most entries kept; ``0`` disables caching.

    Example:
        ```python
        from langchain_secure.scanning import ScanCache, ScanVerdict

        cache = ScanCache(maxsize=2)
        cache.put("k", ScanVerdict(risk=0.1))
        assert cache.get("k") == ScanVerdict(risk=0.1)
        assert cache.info().hits == 1
        ```
    """

    def __init__(self, maxsize: int = _DEFAULT_CACHE_SIZE) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            msg = f"cache_size must be an int >= 0, got {maxsize!r}"
            raise ConfigurationError(msg)
        self._maxsize = maxsize
        self._data: OrderedDict[str, ScanVerdict] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: str) -> ScanVerdict | None:
        """Return the cached verdict for ``key`` (marking it recently used), or ``None``."""
        with self._lock:
            verdict = self._data.get(key)
            if verdict is None:
                self._misses += 1
                return None
            self._data.move_to_end(key)
            self._hits += 1
            return verdict

    def put(self, key: str, verdict: ScanVerdict) -> None:
        """Store ``verdict`` under ``key``, evicting the least recently used entry if full."""
        if self._maxsize == 0:
            return
        with self._lock:
            self._data[key] = verdict
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._data.clear()
            self._hits = 0
            self._misses = 0

    def info(self) -> CacheInfo:
        """Return the hit and miss counters and the current size."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._data), self._maxsize)


def _check_batch(texts: Sequence[str], sources: Sequence[str | None] | None) -> list[str | None]:
    if isinstance(texts, str):
        raise ConfigurationError("texts must be a sequence of strings, not a single string")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            msg = f"texts[{index}] must be a str, got {type(text).__name__}"
            raise ConfigurationError(msg)
    if sources is None:
        return [None] * len(texts)
    if isinstance(sources, str) or len(sources) != len(texts):
        msg = "sources must be a sequence with one entry (or None) per text"
        raise ConfigurationError(msg)
    return list(sources)


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        msg = f"text must be a str, got {type(text).__name__}"
        raise ConfigurationError(msg)


class BaseDetector(ABC):
    """Implements the :class:`Detector` calls, caching, and async on top of ``_scan_text``.

    Subclasses set ``name`` and implement ``_scan_text(text)``; a model-backed
    detector also overrides ``_scan_texts(texts)`` to batch. ``fingerprint``
    (the detector's configuration as a string) is part of every cache key.
    Cheap detectors set ``_inline_async = True`` so ``ascan`` runs on the event
    loop instead of hopping to a thread.

    Args:
        cache_size: Most verdicts kept in the LRU cache; ``0`` disables it.

    Example:
        ```python
        from langchain_secure.scanning import BaseDetector, ScanVerdict


        class Never(BaseDetector):
            name = "never"

            def _scan_text(self, text: str) -> ScanVerdict:
                return ScanVerdict.clean()


        assert Never().scan_batch(["a", "b"]) == [ScanVerdict.clean()] * 2
        ```
    """

    name: str = "detector"
    _inline_async: bool = False

    def __init__(self, *, cache_size: int = _DEFAULT_CACHE_SIZE) -> None:
        self._cache = ScanCache(cache_size)

    @property
    def fingerprint(self) -> str:
        """The detector's configuration as a string; part of every cache key."""
        return f"{type(self).__module__}.{type(self).__qualname__}:{self.name}"

    @abstractmethod
    def _scan_text(self, text: str) -> ScanVerdict:
        """Scan one text, uncached."""

    def _scan_texts(self, texts: Sequence[str]) -> list[ScanVerdict]:
        """Scan distinct texts, uncached; override to batch."""
        return [self._scan_text(text) for text in texts]

    def cache_info(self) -> CacheInfo:
        """Return the cache's counters."""
        return self._cache.info()

    def clear_cache(self) -> None:
        """Forget every cached verdict."""
        self._cache.clear()

    def scan(self, text: str, source: str | None = None) -> ScanVerdict:
        """Scan one text.

        Args:
            text: The untrusted text.
            source: Where it came from (a tool name, a URL), if known.

        Returns:
            The verdict; equal texts get equal (cached) verdicts.
        """
        _check_text(text)
        return self.scan_batch([text], [source])[0]

    def scan_batch(
        self, texts: Sequence[str], sources: Sequence[str | None] | None = None
    ) -> list[ScanVerdict]:
        """Scan many texts at once; cached and repeated texts are scanned once.

        Args:
            texts: The untrusted texts.
            sources: One source (or ``None``) per text, or ``None``.

        Returns:
            One verdict per text, in order, equal to scanning them one by one.
        """
        _check_batch(texts, sources)
        fingerprint = self.fingerprint
        keys = [content_key(fingerprint, text) for text in texts]
        results: list[ScanVerdict | None] = [self._cache.get(key) for key in keys]
        todo: dict[str, str] = {}
        for key, text, found in zip(keys, texts, results, strict=True):
            if found is None and key not in todo:
                todo[key] = text
        if todo:
            fresh = self._scan_texts(list(todo.values()))
            by_key = dict(zip(todo, fresh, strict=True))
            for key, verdict in by_key.items():
                self._cache.put(key, verdict)
            results = [
                found if found is not None else by_key[key]
                for key, found in zip(keys, results, strict=True)
            ]
        return [verdict for verdict in results if verdict is not None]

    async def ascan(self, text: str, source: str | None = None) -> ScanVerdict:
        """Scan one text without blocking the event loop (see :meth:`scan`)."""
        if self._inline_async:
            return self.scan(text, source)
        return await asyncio.to_thread(self.scan, text, source)

    async def ascan_batch(
        self, texts: Sequence[str], sources: Sequence[str | None] | None = None
    ) -> list[ScanVerdict]:
        """Scan many texts without blocking the event loop (see :meth:`scan_batch`)."""
        if self._inline_async:
            return self.scan_batch(texts, sources)
        return await asyncio.to_thread(self.scan_batch, texts, sources)


def apply_replacements(text: str, findings: Iterable[Finding]) -> str | None:
    """Apply the findings' replacements to ``text``.

    Findings without a replacement are ignored; when spans overlap, the one that
    starts first (then the longer one) wins.

    Args:
        text: The original text the findings point into.
        findings: Findings, in any order.

    Returns:
        The rewritten text, or ``None`` when no finding replaces anything.
    """
    edits = sorted(
        (f for f in findings if f.replacement is not None),
        key=lambda f: (f.start, -f.end),
    )
    if not edits:
        return None
    parts: list[str] = []
    cursor = 0
    for finding in edits:
        if finding.start < cursor:
            continue
        parts.append(text[cursor : finding.start])
        parts.append(finding.replacement or "")
        cursor = finding.end
    parts.append(text[cursor:])
    return "".join(parts)


def combine_verdicts(text: str, verdicts: Mapping[str, ScanVerdict]) -> ScanVerdict:
    """Combine several detectors' verdicts on the same text into one.

    The risk is the highest detector risk (each detector is calibrated on its
    own, and a weak signal from two of them is still a weak signal); findings
    are merged in position order; the sanitized text applies every detector's
    replacements to the original text.

    Args:
        text: The text all verdicts are about.
        verdicts: Detector name to verdict.

    Returns:
        The combined verdict, with ``scores`` naming each detector's risk.
    """
    if not verdicts:
        return ScanVerdict.clean()
    findings = tuple(
        sorted(
            (f for v in verdicts.values() for f in v.findings),
            key=lambda f: (f.start, f.end, f.detector, f.kind, f.rule),
        )
    )
    return ScanVerdict(
        risk=max(v.risk for v in verdicts.values()),
        findings=findings,
        sanitized_text=apply_replacements(text, findings),
        scores=tuple((name, v.risk) for name, v in verdicts.items()),
    )
