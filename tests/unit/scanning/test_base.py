"""The detector contract: verdicts, findings, the cache, batching and async."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from langchain_secure.errors import ConfigurationError, LangchainSecureError
from langchain_secure.scanning import (
    BaseDetector,
    Detector,
    Finding,
    ScanCache,
    ScanVerdict,
    apply_replacements,
    combine_verdicts,
    content_key,
)


class Counting(BaseDetector):
    name = "counting"

    def __init__(self, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.calls: list[list[str]] = []

    def _scan_text(self, text: str) -> ScanVerdict:  # pragma: no cover - batch path used
        raise AssertionError

    def _scan_texts(self, texts: list[str]) -> list[ScanVerdict]:  # type: ignore[override]
        self.calls.append(list(texts))
        return [ScanVerdict(risk=min(1.0, len(t) / 10)) for t in texts]


def test_finding_and_verdict_validate() -> None:
    with pytest.raises(ConfigurationError, match="span"):
        Finding("d", "k", (5, 2), 0.5, "x")
    with pytest.raises(ConfigurationError, match="score"):
        Finding("d", "k", (0, 1), 1.5, "x")
    with pytest.raises(ConfigurationError, match="risk"):
        ScanVerdict(risk=-0.1)
    with pytest.raises(ConfigurationError, match="risk"):
        ScanVerdict(risk=float("nan"))
    assert issubclass(ConfigurationError, LangchainSecureError)


def test_verdict_flagged_kinds_and_frozen() -> None:
    finding = Finding("d", "secret", (1, 3), 0.4, "x", replacement="*")
    verdict = ScanVerdict(risk=0.5, findings=(finding,), sanitized_text="a*")
    assert verdict.flagged(0.5) is True
    assert verdict.flagged(0.51) is False
    assert verdict.kinds == frozenset({"secret"})
    assert verdict.text_or_sanitized("abc") == "a*"
    assert ScanVerdict.clean().text_or_sanitized("abc") == "abc"
    assert (finding.start, finding.end) == (1, 3)
    with pytest.raises(AttributeError):
        verdict.risk = 0.1  # type: ignore[misc]


def test_content_key_is_sha256_of_fingerprint_and_text() -> None:
    expected = hashlib.sha256(b"cfg\x00hello").hexdigest()
    assert content_key("cfg", "hello") == expected
    assert content_key("cfg2", "hello") != expected


def test_cache_is_a_bounded_lru() -> None:
    cache = ScanCache(maxsize=2)
    a, b, c = ScanVerdict(risk=0.1), ScanVerdict(risk=0.2), ScanVerdict(risk=0.3)
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now most recent
    cache.put("c", c)  # evicts b
    assert cache.get("b") is None
    assert cache.get("c") is c
    info = cache.info()
    assert (info.hits, info.misses, info.size, info.maxsize) == (2, 1, 2, 2)
    cache.clear()
    assert cache.info().size == 0
    with pytest.raises(ConfigurationError):
        ScanCache(maxsize=-1)


def test_cache_size_zero_disables_caching() -> None:
    det = Counting(cache_size=0)
    det.scan("abc")
    det.scan("abc")
    assert det.calls == [["abc"], ["abc"]]


def test_batch_dedupes_and_uses_the_cache() -> None:
    det = Counting()
    assert isinstance(det, Detector)
    first = det.scan_batch(["aa", "bbbb", "aa"])
    assert [v.risk for v in first] == [0.2, 0.4, 0.2]
    assert det.calls == [["aa", "bbbb"]]
    second = det.scan_batch(["bbbb", "ccc"])
    assert [v.risk for v in second] == [0.4, 0.3]
    assert det.calls == [["aa", "bbbb"], ["ccc"]]
    assert det.scan("aa") == ScanVerdict(risk=0.2)
    assert (det.cache_info().hits, det.cache_info().misses) == (2, 4)
    det.clear_cache()
    det.scan("aa")
    assert det.calls[-1] == ["aa"]


def test_batch_argument_errors() -> None:
    det = Counting()
    with pytest.raises(ConfigurationError, match="not a single string"):
        det.scan_batch("abc")
    with pytest.raises(ConfigurationError, match=r"texts\[1\]"):
        det.scan_batch(["a", 3])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="one entry"):
        det.scan_batch(["a", "b"], ["s"])
    with pytest.raises(ConfigurationError, match="text must be a str"):
        det.scan(None)  # type: ignore[arg-type]


def test_async_paths_equal_sync() -> None:
    det = Counting()

    async def main() -> tuple[ScanVerdict, list[ScanVerdict]]:
        return await det.ascan("abcde"), await det.ascan_batch(["a", "abcde"], ["s1", None])

    one, many = asyncio.run(main())
    assert one == ScanVerdict(risk=0.5)
    assert many == [ScanVerdict(risk=0.1), ScanVerdict(risk=0.5)]


def test_apply_replacements_first_span_wins() -> None:
    text = "0123456789"
    findings = [
        Finding("d", "k", (2, 4), 0.1, "x", replacement="AB"),
        Finding("d", "k", (3, 6), 0.1, "x", replacement="ZZ"),  # overlaps: dropped
        Finding("d", "k", (8, 9), 0.1, "x", replacement=""),
        Finding("d", "k", (0, 10), 0.1, "x"),  # no replacement: ignored
    ]
    assert apply_replacements(text, findings) == "01AB4567" + "9"
    assert apply_replacements(text, findings[3:]) is None


def test_combine_takes_max_risk_merges_findings_and_sanitizes() -> None:
    text = "key=SECRET and\u200bmore"
    secret = Finding("secrets", "secret", (4, 10), 0.4, "s", replacement="[R]")
    hidden = Finding("signatures", "hidden_text", (14, 15), 0.2, "h", replacement="")
    verdict = combine_verdicts(
        text,
        {
            "signatures": ScanVerdict(risk=0.2, findings=(hidden,)),
            "secrets": ScanVerdict(risk=0.4, findings=(secret,)),
        },
    )
    assert verdict.risk == 0.4
    assert verdict.findings == (secret, hidden)
    assert verdict.sanitized_text == "key=[R] andmore"
    assert verdict.scores == (("signatures", 0.2), ("secrets", 0.4))
    assert combine_verdicts(text, {}) == ScanVerdict.clean()
