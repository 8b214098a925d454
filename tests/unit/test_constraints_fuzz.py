"""Hypothesis: constraint checks never raise and never pass what they must refuse."""

from __future__ import annotations

import math
import posixpath
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import idna
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from langchain_secure.policy.constraints import (
    ArgConstraint,
    PathConstraint,
    RangeConstraint,
    RegexConstraint,
    UrlConstraint,
    Violation,
)

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


def _predicate(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ok")


SPECS: dict[str, dict[str, Any]] = {
    "regex": {"regex": "[a-z]{1,10}"},
    "regex_search": {"regex": {"pattern": "a+b", "mode": "search", "ignore_case": True}},
    "enum": {"enum": ["a", 1, 1.5, True, None]},
    "range": {"range": {"min": -5, "max": 5.5, "exclusive_max": True}},
    "range_int": {"range": {"min": 0, "integer": True}},
    "max_length": {"max_length": 3},
    "path": {"path": {"allow": ["/srv/reports/**"], "base": "/srv/reports"}},
    "url": {"url": {"hosts": ["example.com", "*.example.org"], "ports": [443]}},
    "sql": {"sql": "read_only"},
    "callable": {"callable": _predicate},
    "items": {"items": {"max_length": 2, "items": {"enum": [1, 2]}}},
    "everything": {
        "regex": {"pattern": ".*", "mode": "search"},
        "max_length": 100,
        "path": ["/**"],
        "url": ["example.com"],
        "sql": "read_only",
    },
}
CONSTRAINTS = {name: ArgConstraint.model_validate(spec) for name, spec in SPECS.items()}
KINDS = {"type", "regex", "enum", "range", "max_length", "path", "url", "sql", "callable", "items"}


@FUZZ
@given(value=json_values)
def test_check_never_raises_on_json_values(value: Any) -> None:
    for constraint in CONSTRAINTS.values():
        result = constraint.check(value)
        assert result is None or isinstance(result, Violation)
        if result is not None:
            assert result.kind in KINDS
            assert result.message


@FUZZ
@given(value=st.text(max_size=80))
def test_sql_check_never_raises_on_text(value: str) -> None:
    result = CONSTRAINTS["sql"].check(value)
    assert result is None or result.kind == "sql"


# --------------------------------------------------------------------------- path

PATH = PathConstraint.model_validate(
    {"allow": ["/srv/reports/**"], "base": "/srv/reports", "resolve_symlinks": False}
)
PATH_RESOLVING = PathConstraint.model_validate({"allow": ["/srv/reports/**"], "base": "/srv"})
PREFIX = "/srv/reports"

path_text = st.lists(
    st.sampled_from(
        [
            "/",
            "//",
            ".",
            "..",
            "srv",
            "reports",
            "reportsX",
            "etc",
            "~",
            "\\",
            "\x00",
            "\n",
            "a",
            "*",
            "%2e",
            "\u2024",
            "\u2215",
            " ",
            "-",
        ]
    ),
    max_size=12,
).map("".join) | st.text(max_size=40)


def _lexical(value: str, base: str) -> str:
    joined = value if value.startswith("/") else f"{base}/{value}"
    normal = posixpath.normpath(joined)
    return "/" + normal.lstrip("/")  # collapse POSIX's special leading "//"


def _inside(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


@FUZZ
@given(value=path_text)
def test_path_never_passes_outside_the_glob_prefix(value: str) -> None:
    if PATH.check(value) is None:
        assert _inside(_lexical(value, "/srv/reports"), PREFIX)
        assert "\x00" not in value
        assert "\\" not in value
        assert not value.startswith("~")


@FUZZ
@given(value=path_text)
def test_path_with_resolution_never_passes_outside_the_glob_prefix(value: str) -> None:
    if PATH_RESOLVING.check(value) is None:
        assert _inside(_lexical(value, "/srv"), PREFIX)


# --------------------------------------------------------------------------- url

URL = UrlConstraint.model_validate({"hosts": ["example.com", "*.example.org", "127.0.0.1"],
                                    "allow_ip_literals": True})  # fmt: skip

host_parts = st.sampled_from(
    ["example.com", "EXAMPLE.com", "example.com.", "a.example.org", "example.org",
     "evil.com", "example.com.evil.com", "evilexample.com", "\uff45xample.com",
     "ex\u0430mple.com", "127.0.0.1", "2130706433", "0x7f.1", "[::1]", "localhost", "",
     "a.b.example.org", "xn--exmple-4nf.com", "example\u3002com", "EXAMPLE.ORG"]
)  # fmt: skip
url_text = st.builds(
    lambda scheme, sep, user, host, port, rest: f"{scheme}{sep}{user}{host}{port}{rest}",
    st.sampled_from(["https", "http", "HTTPS", "javascript", "file", ""]),
    st.sampled_from(["://", ":", ":/", ":///", "//", ":\\\\"]),
    st.sampled_from(["", "user@", "example.com@", "a:b@", "@", "%40"]),
    host_parts,
    st.sampled_from(["", ":443", ":80", ":", ":99999", ":x"]),
    st.sampled_from(["", "/", "/p?q=1", "#@evil.com", "\\@evil.com", "?@x", " ", "\n"])
    | st.text(max_size=10),
) | st.text(max_size=40)


def _normalised_hostname(value: str) -> str:
    """An independent oracle: urllib's hostname, IDNA, and inet_aton for IPv4 forms."""
    host = urlsplit(value).hostname
    assert host is not None
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        host = idna.encode(host, uts46=True).decode("ascii")
    host = host.lower()
    if re.fullmatch(r"[0-9]+|0x[0-9a-f]*", host.rpartition(".")[2]):
        # Browsers and libc read such hosts as IPv4 addresses.
        host = socket.inet_ntoa(socket.inet_aton(host))
    return host


@FUZZ
@given(value=url_text)
def test_url_never_passes_a_host_outside_the_allowlist(value: str) -> None:
    if URL.check(value) is None:
        host = _normalised_hostname(value)
        assert host in {"example.com", "127.0.0.1"} or (
            host.endswith(".example.org") and len(host) > len(".example.org")
        ), host
        assert urlsplit(value).scheme in {"http", "https"}
        assert "@" not in urlsplit(value).netloc


@FUZZ
@given(value=st.text(max_size=40))
def test_url_check_on_arbitrary_text_never_raises(value: str) -> None:
    result = URL.check(value)
    assert result is None or result.kind == "url"


# --------------------------------------------------------------------------- regex

PATTERNS = [r"[a-z]+", r"a*b?", r"(ab|cd)*", r"\d{1,3}(\.\d{1,3}){3}", r"[^/]+", r".*", r"x$"]


@FUZZ
@given(pattern=st.sampled_from(PATTERNS), text=st.text(alphabet="abcdx./01\n9", max_size=15))
def test_regex_fullmatch_agrees_with_re_fullmatch(pattern: str, text: str) -> None:
    constraint = RegexConstraint.model_validate(pattern)
    expected = re.fullmatch(pattern, text) is not None
    result = constraint.check(text)
    assert (result is None) == expected
    if result is not None:
        assert result.kind == "regex"


@FUZZ
@given(pattern=st.sampled_from(PATTERNS), text=st.text(alphabet="abcdx./01\n9", max_size=15))
def test_regex_search_agrees_with_re_search(pattern: str, text: str) -> None:
    constraint = RegexConstraint.model_validate({"pattern": pattern, "mode": "search"})
    assert (constraint.check(text) is None) == (re.search(pattern, text) is not None)


# --------------------------------------------------------------------------- range

numbers = st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.booleans()
bounds = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False)


@FUZZ
@given(
    low=bounds,
    high=bounds,
    exclusive_min=st.booleans(),
    exclusive_max=st.booleans(),
    integer=st.booleans(),
    value=numbers,
)
def test_range_never_passes_outside_the_bounds(
    low: float, high: float, exclusive_min: bool, exclusive_max: bool, integer: bool, value: Any
) -> None:
    low, high = min(low, high), max(low, high)
    assume(low < high or not (exclusive_min or exclusive_max))
    constraint = RangeConstraint.model_validate(
        {
            "min": low,
            "max": high,
            "exclusive_min": exclusive_min,
            "exclusive_max": exclusive_max,
            "integer": integer,
        }
    )
    result = constraint.check(value)
    if result is None:
        assert type(value) in (int, float)
        assert math.isfinite(value)
        assert low <= value <= high
        assert not (exclusive_min and value == low)
        assert not (exclusive_max and value == high)
        assert not (integer and type(value) is float)
    else:
        in_bounds = (
            type(value) in (int, float)
            and math.isfinite(value)
            and (low < value or (value == low and not exclusive_min))
            and (value < high or (value == high and not exclusive_max))
            and not (integer and type(value) is float)
        )
        assert not in_bounds  # no false refusals either


# --------------------------------------------------------------------------- enum

ENUM = ArgConstraint.model_validate({"enum": ["a", 1, 1.5, True, None, 0.0]})
ALLOWED = {(str, "a"), (int, 1), (float, 1.5), (bool, True), (type(None), None), (float, 0.0)}


@FUZZ
@given(value=json_values)
def test_enum_passes_exactly_the_listed_typed_values(value: Any) -> None:
    expected = type(value) in (str, int, float, bool, type(None)) and (
        (type(value), value) in ALLOWED
    )
    assert (ENUM.check(value) is None) == expected
