"""Per-argument constraints on tool-call arguments.

A policy attaches an :class:`ArgConstraint` to a tool argument. The constraint is
declared in YAML (or Python), validated once by pydantic when the policy loads,
and then checked on the hot path of every tool call::

    query: {sql: read_only}
    path:  {path: {allow: ["/srv/reports/**"], deny: ["/srv/reports/private/**"]}}
    url:   {url: ["docs.example.com", "*.wikipedia.org"]}
    mode:  {enum: [fast, thorough]}
    n:     {range: {min: 1, max: 50, integer: true}}
    tags:  {max_length: 10, items: {regex: "[a-z]{1,20}"}}

Constraint kinds, checked in this fixed order (the first violation wins):

``regex``
    the string must (fully, by default) match a regular expression.
``enum``
    the value must equal one of a list of scalars, type-strictly.
``range``
    a finite ``int``/``float`` within bounds (numeric strings are refused).
``max_length``
    a string (code points), list, tuple or mapping of at most N items.
``path``
    a POSIX path inside allow globs and outside deny globs, lexically *and*
    after resolving symlinks.
``url``
    an absolute URL with an allowed scheme, host (exact or ``*.domain``) and port.
``sql``
    a single read-only ``SELECT``, verified on the sqlglot syntax tree.
``callable``
    a Python predicate that must return exactly ``True``.
``items``
    a nested :class:`ArgConstraint` applied to every element of a list/tuple.

Trust model: the policy author (who writes the specs) is trusted; the argument
*values* are not: they come from a language model that may be prompt-injected.

**Fail closed.** ``check`` never raises and never passes a value it could not
judge: an unexpected type, a parse failure or an exception inside a check is a
:class:`Violation`. ``Violation.kind == "type"`` means "the value could not be
judged" (wrong type, non-finite number, internal error); the engine relies on
that to require approval rather than skip it. Violation messages never echo the
value (it may be a secret) and never list what *is* allowed (the model must not
learn the allowlist).

Everything a check needs (regexes, globs, host sets, the SQL dialect) is compiled
when the policy loads, so a typical check costs a few microseconds; SQL parsing
and ``path`` symlink resolution (the only filesystem access) are the exceptions.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import math
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

import idna
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_serializer,
    model_validator,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "BUILTIN_DENIED_SQL_FUNCTIONS",
    "PATH_MAX_CHARS",
    "SQL_MAX_CHARS",
    "ArgConstraint",
    "CallableConstraint",
    "EnumConstraint",
    "PathConstraint",
    "RangeConstraint",
    "RegexConstraint",
    "SqlConstraint",
    "UrlConstraint",
    "Violation",
]


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a value failed a constraint.

    Attributes:
        kind: The constraint kind that failed: ``"type"``, ``"regex"``, ``"enum"``,
            ``"range"``, ``"max_length"``, ``"path"``, ``"url"``, ``"sql"``,
            ``"callable"`` or ``"items"``. ``"type"`` means the value could not be
            judged at all (wrong type, non-finite number, internal error).
        message: A predicate fragment such as ``"is outside the allowed paths"``;
            the engine prepends ``"argument 'x' "``. It never contains the value
            nor the allowed values.
    """

    kind: str
    message: str


class _Checker(Protocol):
    def check(self, value: Any) -> Violation | None: ...  # pragma: no cover


class _Spec(BaseModel):
    """Base of the constraint models: strict, frozen, with compiled state.

    Compiled state (regexes, sets, ...) is built in ``model_post_init`` and kept
    in the instance ``__dict__`` next to the fields (pydantic ignores non-field
    keys for dumping, equality and hashing): plain attribute reads are much
    faster than pydantic private attributes on this hot path. Copies are
    re-validated so that the compiled state can never go stale.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def _store(self, **compiled: Any) -> None:
        self.__dict__.update(compiled)

    def check(self, value: Any) -> Violation | None:
        """Return None if ``value`` satisfies the constraint, else a :class:`Violation`.

        Never raises: an exception inside a check is a violation of kind
        ``"type"`` (the value could not be judged), so every check fails closed.
        """
        try:
            return self._check(value)
        except Exception:
            return _internal_error()

    def _check(self, value: Any) -> Violation | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Return a validated copy, with ``update`` applied to the fields.

        Unlike pydantic's default, the copy is re-validated (and re-compiled).
        """
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(update or {})
        return self.model_validate(data)


_CANNOT_CHECK = "could not be checked"


def _internal_error() -> Violation:
    # kind "type": the value could not be judged; callers fail closed on it.
    return Violation("type", _CANNOT_CHECK)


def _exact_str(value: Any) -> str | None:
    """Return ``value`` as an exact ``str`` (not a subclass), or None if not a string."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        # str.__str__ copies a subclass instance into a plain str, bypassing any
        # overridden methods on the subclass.
        return str.__str__(value)
    return None


_NOT_A_STRING = Violation("type", "must be a string")

# C0 and C1 control characters (Unicode category Cc).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# --------------------------------------------------------------------------- regex


class RegexConstraint(_Spec):
    r"""The value must be a string matching a regular expression.

    The default ``mode: fullmatch`` matches the WHOLE string with Python's
    :func:`re.fullmatch`, so ``$``-before-a-trailing-newline tricks do not apply
    and ``.`` does not match a newline. ``mode: search`` finds the pattern
    anywhere (:func:`re.search`). Only ``str`` values are accepted (not bytes,
    not numbers). The YAML shorthand ``regex: "pattern"`` means
    ``{pattern: "pattern", mode: fullmatch}``.

    The pattern is trusted (it comes from the policy) but runs against untrusted
    values: Python's ``re`` has no timeout, so avoid catastrophic backtracking
    (nested quantifiers such as ``(a+)+``).

    Example:
        >>> c = RegexConstraint.model_validate("[a-z]+")
        >>> c.check("abc") is None
        True
        >>> c.check("abc\n").kind
        'regex'
    """

    pattern: StrictStr
    """The regular expression (Python ``re`` syntax)."""
    mode: Literal["fullmatch", "search"] = "fullmatch"
    """``fullmatch`` (default): the whole string must match; ``search``: anywhere."""
    ignore_case: StrictBool = False
    """Compile with :data:`re.IGNORECASE`."""

    if TYPE_CHECKING:
        _matcher: Callable[[str], re.Match[str] | None]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"pattern": data}
        return data

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return pattern

    def model_post_init(self, context: Any, /) -> None:
        """Compile the spec for fast checks (pydantic hook)."""
        compiled = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
        self._store(_matcher=compiled.fullmatch if self.mode == "fullmatch" else compiled.search)

    def _check(self, value: Any) -> Violation | None:
        """Return None if ``value`` matches, else a :class:`Violation`."""
        text = _exact_str(value)
        if text is None:
            return _NOT_A_STRING
        if self._matcher(text) is None:
            return Violation("regex", "does not match the required pattern")
        return None


# --------------------------------------------------------------------------- enum

_ENUM_TYPES: tuple[type, ...] = (str, int, float, bool, type(None))

_EnumValue = StrictStr | StrictBool | StrictInt | StrictFloat | None


class EnumConstraint(_Spec):
    """The value must equal one of a fixed list of scalars, type-strictly.

    Comparison is on ``(type, value)``: ``True`` does not equal ``1``, ``1`` does
    not equal ``1.0`` and strings compare exactly (no case folding, no Unicode
    normalisation). Allowed value types are ``str``, ``int``, ``float``, ``bool``
    and ``None``; a value of any other type is a ``"type"`` violation. The YAML
    shorthand ``enum: [a, b]`` means ``{values: [a, b]}``.

    Example:
        >>> c = EnumConstraint.model_validate(["fast", "thorough", 1])
        >>> c.check("fast") is None, c.check(1) is None
        (True, True)
        >>> c.check(True).kind, c.check("FAST").kind
        ('enum', 'enum')
    """

    values: tuple[_EnumValue, ...]
    """The allowed values (at least one)."""

    if TYPE_CHECKING:
        _allowed: frozenset[tuple[type, Any]]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            return {"values": data}
        return data

    @field_validator("values", mode="before")
    @classmethod
    def _plain_values(cls, values: Any) -> Any:
        if not isinstance(values, list | tuple):
            raise ValueError("enum values must be a list")
        if not values:
            raise ValueError("enum needs at least one value")
        plain: list[Any] = []
        for item in values:
            # Normalise subclasses (e.g. YAML scalar types) to the exact builtin,
            # since membership is checked on the exact type.
            if item is None:
                plain.append(None)
            elif isinstance(item, bool):
                plain.append(bool(item))
            elif isinstance(item, int):
                plain.append(int(item))
            elif isinstance(item, float):
                if math.isnan(item):
                    raise ValueError("enum values must not be NaN")
                plain.append(float(item))
            elif isinstance(item, str):
                plain.append(str.__str__(item))
            else:
                raise ValueError(
                    "enum values must be strings, integers, floats, booleans or null, "
                    f"not {type(item).__name__}"
                )
        return plain

    def model_post_init(self, context: Any, /) -> None:
        """Compile the spec for fast checks (pydantic hook)."""
        self._store(_allowed=frozenset((type(v), v) for v in self.values))

    def _check(self, value: Any) -> Violation | None:
        """Return None if ``value`` is one of the allowed values, else a :class:`Violation`."""
        kind = type(value)
        if kind not in _ENUM_TYPES:
            return Violation("type", "must be a string, number, boolean or null")
        if (kind, value) in self._allowed:
            return None
        return Violation("enum", "is not one of the allowed values")


# --------------------------------------------------------------------------- range

_Number = StrictInt | StrictFloat


class RangeConstraint(_Spec):
    """The value must be a finite number within bounds.

    Only ``int`` and ``float`` are accepted; ``bool`` is refused although it is an
    ``int`` subclass, and so are NaN and ±infinity (``"type"`` violations: they
    cannot be judged). Numeric *strings* are refused on purpose (``"type"``): how
    to parse ``"1_000"``, ``"1e3"``, ``" 5"`` or ``"0x10"`` is ambiguous and the
    tool may parse it differently from us. ``integer: true`` also refuses floats,
    even ``5.0``. Bounds are inclusive unless ``exclusive_min``/``exclusive_max``.

    Example:
        >>> c = RangeConstraint.model_validate({"min": 1, "max": 10, "integer": True})
        >>> c.check(10) is None
        True
        >>> c.check(11).kind, c.check(5.0).kind, c.check("5").kind
        ('range', 'type', 'type')
    """

    min: _Number | None = None
    """Lower bound (inclusive unless ``exclusive_min``)."""
    max: _Number | None = None
    """Upper bound (inclusive unless ``exclusive_max``)."""
    exclusive_min: StrictBool = False
    """The value must be strictly greater than ``min``."""
    exclusive_max: StrictBool = False
    """The value must be strictly less than ``max``."""
    integer: StrictBool = False
    """Only ``int`` values are accepted."""

    @field_validator("min", "max")
    @classmethod
    def _finite(cls, bound: float | None) -> float | None:
        if bound is not None and not math.isfinite(bound):
            raise ValueError("range bounds must be finite numbers")
        return bound

    @model_validator(mode="after")
    def _consistent(self) -> RangeConstraint:
        low, high = self.min, self.max
        if low is None and high is None:
            raise ValueError("range needs at least one of 'min' and 'max'")
        if self.exclusive_min and low is None:
            raise ValueError("exclusive_min needs 'min'")
        if self.exclusive_max and high is None:
            raise ValueError("exclusive_max needs 'max'")
        if low is not None and high is not None:
            if low > high:
                raise ValueError("range 'min' must not be greater than 'max'")
            if low == high and (self.exclusive_min or self.exclusive_max):
                raise ValueError("range is empty")
        return self

    def _check(self, value: Any) -> Violation | None:
        """Return None if ``value`` is a number within the bounds, else a :class:`Violation`."""
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return Violation("type", "must be a finite number")
            if self.integer:
                return Violation("type", "must be an integer")
        elif kind is not int:  # also refuses bool, str, Decimal, ...
            return Violation(
                "type", "must be an integer" if self.integer else "must be a number"
            )
        low, high = self.min, self.max
        if low is not None and (value < low or (self.exclusive_min and value == low)):
            return Violation("range", "is outside the allowed range")
        if high is not None and (value > high or (self.exclusive_max and value == high)):
            return Violation("range", "is outside the allowed range")
        return None


# --------------------------------------------------------------------------- path


PATH_MAX_CHARS = 4096
"""Longer path values are refused (Linux PATH_MAX; also bounds glob matching time)."""


def _normalise_path(path: str) -> str:
    """Lexically normalise an absolute POSIX path.

    Collapses ``//`` (including POSIX's implementation-defined leading ``//``),
    ``.`` and ``..``; ``..`` above ``/`` stays at ``/``. No filesystem access.
    """
    parts: list[str] = []
    for segment in path.split("/"):
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    return "/" + "/".join(parts)


def _segment_regex(segment: str, glob: str) -> str:
    """Translate one glob path segment (no ``/``) to a regex fragment."""
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        char = segment[i]
        if char == "*":
            while i < n and segment[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if char == "?":
            out.append("[^/]")
        elif char == "[":
            j = i + 1
            if j < n and segment[j] == "!":
                j += 1
            if j < n and segment[j] == "]":  # a leading "]" is a literal
                j += 1
            while j < n and segment[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"glob {glob!r} has an unterminated '[' character class")
            content = segment[i + 1 : j]
            negate = content.startswith("!")
            if negate:
                content = content[1:]
            body = "".join(c if c == "-" else re.escape(c) for c in content)
            # A class never matches "/", even through a range such as [+-0].
            out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
            i = j
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _check_absolute_normal(value: str, what: str) -> None:
    if not value.startswith("/"):
        raise ValueError(f"{what} {value!r} must be an absolute path")
    if "\\" in value or _CONTROL_RE.search(value):
        raise ValueError(f"{what} {value!r} must not contain backslashes or control characters")
    if value != "/" and (value.endswith("/") or _normalise_path(value) != value):
        raise ValueError(
            f"{what} {value!r} must be normalised (no '//', '.', '..' or trailing '/')"
        )


def _glob_regex(glob: str) -> str:
    """Translate a normalised absolute glob into a regex over normalised paths.

    The root ``/`` is matched as the empty string (see :meth:`PathConstraint._matches`).
    """
    _check_absolute_normal(glob, "glob")
    if glob == "/":
        return ""
    pieces: list[str] = []
    for segment in glob[1:].split("/"):
        if segment == "**":
            # Zero or more whole segments. On a normalised path (no empty, "." or
            # ".." segments) "(?:/.*)?" is equivalent to "(?:/[^/]+)*", and faster.
            pieces.append("(?:/.*)?")
        else:
            pieces.append("/" + _segment_regex(segment, glob))
    return "".join(pieces)


def _compile_globs(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{_glob_regex(g)})" for g in globs), re.DOTALL)


class PathConstraint(_Spec):
    """The value must be a POSIX path inside the allowed globs.

    Glob syntax (matched against whole, normalised paths): ``*`` is any run of
    characters within one segment (never ``/``; it does match dotfiles), ``**``
    as a whole segment is zero or more segments (so ``/srv/reports/**`` also
    matches ``/srv/reports`` itself), ``?`` is one non-``/`` character, and
    ``[abc]``/``[a-z]``/``[!abc]`` are character classes. Globs must be absolute
    and normalised. A bare list ``path: ["/srv/**"]`` means ``{allow: [...]}``.

    Checking a value:

    1. it must be a ``str``; empty values, NUL or any other control character, a
       backslash, or a leading ``~`` are refused;
    2. a relative value is joined to ``base`` (without ``base``: refused) and must
       stay inside ``base`` after normalisation;
    3. the path is normalised lexically (``//``, ``.``, ``..``; ``..`` above ``/``
       stays at ``/``) and must match an allow glob and no deny glob;
    4. with ``resolve_symlinks`` (the default) the path as given is also resolved
       with :func:`os.path.realpath` (the kernel's view: symlinks are followed
       before ``..`` is applied), and the resolved path must match an allow glob
       and no deny glob as well. A symlink loop or an unreadable directory is a
       violation.

    Step 4 is the only filesystem access made by any constraint. It is subject to
    a time-of-check/time-of-use race: a symlink created or changed between this
    check and the tool opening the file is not seen. Tools that need a hard
    guarantee should also open files with ``O_NOFOLLOW``/``openat2(RESOLVE_BENEATH)``
    or run in a sandbox. Write globs with the real (symlink-free) directory names,
    since the resolved path must match them too. Globs are case-sensitive: on a
    case-insensitive filesystem a deny glob can be sidestepped by changing case,
    so prefer tight allow globs there.

    Example:
        >>> c = PathConstraint.model_validate(
        ...     {"allow": ["/srv/reports/**"], "deny": ["/srv/reports/**/.*"],
        ...      "resolve_symlinks": False})
        >>> c.check("/srv/reports/2024/q1.pdf") is None
        True
        >>> c.check("/srv/reports/../secrets").message
        'is outside the allowed paths'
    """

    allow: tuple[StrictStr, ...] = Field(min_length=1)
    """Globs of allowed paths (at least one)."""
    deny: tuple[StrictStr, ...] = ()
    """Globs of denied paths; a deny match wins over an allow match."""
    base: StrictStr | None = None
    """Absolute directory that relative values are resolved against; without it,
    relative values are refused."""
    resolve_symlinks: StrictBool = True
    """Also check the path with symlinks resolved (filesystem access)."""

    if TYPE_CHECKING:
        _allow_re: re.Pattern[str]
        _deny_re: re.Pattern[str] | None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            return {"allow": data}
        return data

    @field_validator("allow", "deny")
    @classmethod
    def _valid_globs(cls, globs: tuple[str, ...]) -> tuple[str, ...]:
        for glob in globs:
            try:
                re.compile(_glob_regex(glob))
            except re.error as exc:
                raise ValueError(f"glob {glob!r} is invalid: {exc}") from None
        return globs

    @field_validator("base")
    @classmethod
    def _valid_base(cls, base: str | None) -> str | None:
        if base is None:
            return None
        if not base.startswith("/"):
            raise ValueError(f"base {base!r} must be an absolute path")
        if "\\" in base or _CONTROL_RE.search(base):
            raise ValueError(f"base {base!r} must not contain backslashes or control characters")
        return _normalise_path(base)

    def model_post_init(self, context: Any, /) -> None:
        """Compile the spec for fast checks (pydantic hook)."""
        allow = _compile_globs(self.allow)
        assert allow is not None  # allow has at least one glob
        self._store(_allow_re=allow, _deny_re=_compile_globs(self.deny))

    def _matches(self, path: str) -> bool:
        subject = "" if path == "/" else path
        if self._allow_re.fullmatch(subject) is None:
            return False
        return self._deny_re is None or self._deny_re.fullmatch(subject) is None

    def _check(self, value: Any) -> Violation | None:
        path = _exact_str(value)
        if path is None:
            return _NOT_A_STRING
        if not path:
            return Violation("path", "is empty")
        if len(path) > PATH_MAX_CHARS:
            return Violation("path", "is too long")
        if _CONTROL_RE.search(path):
            return Violation("path", "contains a control character")
        if "\\" in path:
            return Violation("path", "contains a backslash")
        if path.startswith("~"):
            return Violation("path", "starts with '~'")
        if path.startswith("/"):
            joined = path
            lexical = _normalise_path(path)
        else:
            base = self.base
            if base is None:
                return Violation("path", "is a relative path; relative paths are not allowed")
            joined = base + "/" + path
            lexical = _normalise_path(joined)
            if base != "/" and lexical != base and not lexical.startswith(base + "/"):
                return Violation("path", "escapes the base directory")
        if not self._matches(lexical):
            return Violation("path", "is outside the allowed paths")
        if self.resolve_symlinks:
            resolved = _resolve(joined)
            if resolved is None:
                return Violation("path", "could not be resolved safely")
            if not self._matches(_normalise_path(resolved)):
                return Violation("path", "is outside the allowed paths")
        return None


def _resolve(path: str) -> str | None:
    """``os.path.realpath`` that reports symlink loops and unreadable components as None.

    One non-strict walk resolves every link that exists; a single ``lstat`` of the
    result then tells the harmless case (the target does not exist yet) from the
    ones that must fail closed: a component that could not be read or a loop left
    unresolved (EACCES, ELOOP, or the result still being a link).
    """
    try:
        resolved = os.path.realpath(path)
        if stat.S_ISLNK(os.lstat(resolved).st_mode):
            return None  # a looping link the walk left unresolved
    except (FileNotFoundError, NotADirectoryError):
        return resolved  # the target (or a parent) does not exist yet
    except (OSError, ValueError):
        return None  # EACCES, ELOOP, ENAMETOOLONG, embedded NUL, ...
    return resolved


# --------------------------------------------------------------------------- url

_DEFAULT_PORTS: Mapping[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}

# Whitespace (Unicode \s), C0/C1 controls and invisible format characters.
_URL_BAD_CHARS_RE = re.compile(
    "[\\s\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_RE = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
# WHATWG "ends in a number": such a host is parsed as an IPv4 address by browsers
# and by inet_aton (2130706433, 0x7f000001, 0177.0.0.1, 127.1, 1.2.3.4).
_NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0x[0-9a-f]*")


def _normalise_host(host: str) -> str | None:
    """Lowercase, strip one trailing dot and IDNA (UTS-46) encode a host name.

    Returns None if the result is not a syntactically valid host name.
    """
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    if len(host) > 253 or _HOST_RE.fullmatch(host) is None:
        return None
    return host


def _is_ipv4_like(host: str) -> bool:
    return _NUMERIC_LABEL_RE.fullmatch(host.rpartition(".")[2]) is not None


def _parse_ipv4(host: str) -> str | None:
    """Parse a host the way WHATWG URL / inet_aton do; return the dotted quad or None."""
    parts = host.split(".")
    if len(parts) > 4:
        return None
    numbers: list[int] = []
    for part in parts:
        if not part:
            return None
        if part.startswith("0x"):
            digits, base = part[2:], 16
        elif len(part) > 1 and part.startswith("0"):
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        if not digits:
            numbers.append(0)
            continue
        try:
            numbers.append(int(digits, base))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    address = last
    for index, n in enumerate(head):
        address += n << (8 * (3 - index))
    return str(ipaddress.IPv4Address(address))


def _parse_ipv6(host: str) -> str | None:
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError:
        return None


class UrlConstraint(_Spec):
    """The value must be an absolute URL to an allowed host.

    Host patterns are either an exact host (``docs.example.com``) or
    ``*.example.com``, which matches any subdomain at any depth but NOT
    ``example.com`` itself (list both if both are wanted). Patterns are normalised
    when the policy loads: lowercased, trailing dot stripped, internationalised
    names converted to punycode (IDNA/UTS-46), IP literals written canonically.
    An IP literal pattern requires ``allow_ip_literals: true``. A bare list
    ``url: ["example.com"]`` means ``{hosts: [...]}``.

    Checking a value: it must be a ``str`` without whitespace, control or
    invisible formatting characters and without backslashes (which WHATWG
    parsers treat as ``/``); it is split with :func:`urllib.parse.urlsplit`;
    the (lowercased) scheme must be allowed; the authority must have a host, no
    percent-encoding and no userinfo (``user@``) unless ``allow_userinfo``; the
    host is lowercased, stripped of one trailing dot and IDNA-encoded, so
    fullwidth or otherwise compatible characters are normalised *before* the
    comparison while homoglyphs from other scripts (a Cyrillic ``\u0430``) become a
    different punycode name. Hosts that browsers or ``inet_aton`` read as an IP
    address (``127.0.0.1``, ``[::1]``, ``2130706433``, ``0x7f000001``,
    ``0177.0.0.1``, ``127.1``) are refused unless ``allow_ip_literals`` is set
    and the canonical address is listed. If ``ports`` is set, the explicit port,
    or the scheme's default (http/ws 80, https/wss 443, ftp 21), must be listed.

    This checks the URL *string*; it does not resolve DNS, so a listed name that
    resolves to an internal address (DNS rebinding) is not detected. The tool's
    HTTP client should use the same URL it was given (no re-parsing with a
    different parser).

    Example:
        >>> c = UrlConstraint.model_validate(["docs.example.com", "*.wikipedia.org"])
        >>> c.check("https://en.wikipedia.org/wiki/URL") is None
        True
        >>> c.check("https://docs.example.com@evil.com/").message
        'contains user information'
    """

    schemes: tuple[StrictStr, ...] = Field(default=("https", "http"), min_length=1)
    """Allowed schemes (lowercase)."""
    hosts: tuple[StrictStr, ...] = Field(min_length=1)
    """Allowed hosts: exact names, ``*.domain`` wildcards, or IP literals."""
    ports: tuple[StrictInt, ...] | None = None
    """If set, the only allowed ports (explicit or the scheme's default)."""
    allow_userinfo: StrictBool = False
    """Accept ``user:password@`` in the authority."""
    allow_ip_literals: StrictBool = False
    """Accept IP-address hosts (they must still be listed in ``hosts``)."""

    if TYPE_CHECKING:
        _schemes: frozenset[str]
        _names: frozenset[str]
        _suffixes: frozenset[str]
        _ips: frozenset[str]
        _ports: frozenset[int] | None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            return {"hosts": data}
        return data

    @field_validator("schemes")
    @classmethod
    def _valid_schemes(cls, schemes: tuple[str, ...]) -> tuple[str, ...]:
        normalised = tuple(scheme.lower() for scheme in schemes)
        for scheme in normalised:
            if _SCHEME_RE.fullmatch(scheme) is None:
                raise ValueError(f"{scheme!r} is not a valid URL scheme")
        return normalised

    @field_validator("hosts")
    @classmethod
    def _valid_hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_normalise_host_pattern(host) for host in hosts)

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, ports: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if ports is not None:
            if not ports:
                raise ValueError("ports must not be empty (omit it to allow any port)")
            for port in ports:
                if not 1 <= port <= 65535:
                    raise ValueError(f"port {port} is outside 1-65535")
        return ports

    @model_validator(mode="after")
    def _ip_hosts_need_flag(self) -> UrlConstraint:
        if not self.allow_ip_literals:
            for host in self.hosts:
                if ":" in host or _is_ipv4_like(host):
                    raise ValueError(
                        f"host {host!r} is an IP address literal; set allow_ip_literals: true"
                    )
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Compile the spec for fast checks (pydantic hook)."""
        names: set[str] = set()
        suffixes: set[str] = set()
        ips: set[str] = set()
        for host in self.hosts:
            if host.startswith("*."):
                suffixes.add(host[1:])  # ".example.com"
            elif ":" in host or _is_ipv4_like(host):
                ips.add(host)
            else:
                names.add(host)
        self._store(
            _schemes=frozenset(self.schemes),
            _names=frozenset(names),
            _suffixes=frozenset(suffixes),
            _ips=frozenset(ips),
            _ports=None if self.ports is None else frozenset(self.ports),
        )

    def _host_allowed(self, host: str) -> bool:
        if host in self._names:
            return True
        suffixes = self._suffixes
        if suffixes:
            index = host.find(".")
            while index > 0:
                if host[index:] in suffixes:
                    return True
                index = host.find(".", index + 1)
        return False

    def _check(self, value: Any) -> Violation | None:
        url = _exact_str(value)
        if url is None:
            return _NOT_A_STRING
        if _URL_BAD_CHARS_RE.search(url):
            return Violation("url", "contains whitespace or control characters")
        if "\\" in url:
            return Violation("url", "contains a backslash")
        try:
            parts = urlsplit(url)
        except ValueError:
            return Violation("url", "is not a valid URL")
        if parts.scheme not in self._schemes:
            return Violation("url", "uses a scheme that is not allowed")
        netloc = parts.netloc
        if not netloc:
            return Violation("url", "has no host")
        if "%" in netloc:
            return Violation("url", "contains percent-encoding in the host")
        if "@" in netloc:
            if not self.allow_userinfo:
                return Violation("url", "contains user information")
            netloc = netloc.rpartition("@")[2]

        # Split host and port ourselves, strictly.
        if netloc.startswith("["):
            end = netloc.find("]")
            if end < 0:
                return Violation("url", "is not a valid URL")
            raw_host, rest = netloc[1:end], netloc[end + 1 :]
            if rest and not rest.startswith(":"):
                return Violation("url", "is not a valid URL")
            port_text = rest[1:]
            bracketed = True
        else:
            raw_host, _, port_text = netloc.partition(":")
            bracketed = False
        port: int | None = None
        if port_text:
            if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
                return Violation("url", "has an invalid port")
            port = int(port_text)
            if port > 65535:
                return Violation("url", "has an invalid port")
        if not raw_host:
            return Violation("url", "has no host")

        if bracketed:
            address = _parse_ipv6(raw_host)
            if address is None:
                return Violation("url", "has an invalid host")
            if not self.allow_ip_literals:
                return Violation("url", "uses an IP address literal")
            if address not in self._ips:
                return Violation("url", "has a host that is not allowed")
        else:
            host = _normalise_host(raw_host)
            if host is None:
                return Violation("url", "has an invalid host")
            if _is_ipv4_like(host):
                if not self.allow_ip_literals:
                    return Violation("url", "uses an IP address literal")
                address = _parse_ipv4(host)
                if address is None or address not in self._ips:
                    return Violation("url", "has a host that is not allowed")
            elif not self._host_allowed(host):
                return Violation("url", "has a host that is not allowed")

        if self._ports is not None:
            effective = port if port is not None else _DEFAULT_PORTS.get(parts.scheme)
            if effective is None or effective not in self._ports:
                return Violation("url", "uses a port that is not allowed")
        return None


def _normalise_host_pattern(pattern: str) -> str:
    """Normalise one ``hosts`` entry at load time (raise ValueError if invalid)."""
    text = pattern.strip()
    if not text or _URL_BAD_CHARS_RE.search(text):
        raise ValueError(f"host {pattern!r} is empty or contains whitespace/control characters")
    if any(char in text for char in "/@?#%\\"):
        raise ValueError(f"host {pattern!r} must be a bare host name (no scheme or path)")
    bracketed = text.startswith("[") and text.endswith("]")
    if bracketed:
        text = text[1:-1]
    if ":" in text or bracketed:
        address = _parse_ipv6(text)
        if address is None:
            raise ValueError(f"host {pattern!r} is not a host name (use 'ports' for ports)")
        return address
    if "[" in text or "]" in text:
        raise ValueError(f"host {pattern!r} is not a valid host name")
    wildcard = text.startswith("*.")
    name = _normalise_host(text[2:] if wildcard else text)
    if name is None or "*" in (text[2:] if wildcard else text):
        raise ValueError(f"host {pattern!r} is not a valid host name or '*.domain' pattern")
    if _is_ipv4_like(name):
        if wildcard:
            raise ValueError(f"host {pattern!r}: a wildcard cannot apply to an IP address")
        address = _parse_ipv4(name)
        if address is None:
            raise ValueError(f"host {pattern!r} is not a valid IP address")
        return address
    return "*." + name if wildcard else name


# --------------------------------------------------------------------------- sql

SQL_MAX_CHARS = 100_000
"""Longer SQL values are refused without parsing (parse time grows with size)."""

BUILTIN_DENIED_SQL_FUNCTIONS: frozenset[str] = frozenset(
    {
        # PostgreSQL: sequences, large objects, files, server signals, locks, settings
        "nextval", "setval",
        "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_creat", "lo_from_bytea",
        "lo_put", "lo_truncate", "lowrite", "lo_open",
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_ls_logdir", "pg_ls_waldir",
        "pg_stat_file", "pg_write_file", "pg_file_write", "pg_file_unlink", "pg_file_rename",
        "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
        "pg_promote", "pg_switch_wal", "pg_create_restore_point",
        "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_xact_lock",
        "pg_advisory_unlock_all",
        "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
        "pg_drop_replication_slot", "pg_logical_emit_message", "pg_notify", "pg_stat_reset",
        "set_config", "dblink", "dblink_exec", "dblink_connect", "dblink_send_query",
        "dblink_open", "query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema",
        "pg_sleep", "pg_sleep_for", "pg_sleep_until",
        # MySQL / MariaDB
        "load_file", "sleep", "benchmark", "get_lock", "release_lock", "release_all_locks",
        "sys_exec", "sys_eval",
        # SQL Server
        "xp_cmdshell", "xp_regread", "xp_regwrite", "xp_dirtree", "xp_fileexist",
        "openrowset", "opendatasource", "openquery",
        # SQLite
        "load_extension", "writefile", "readfile", "edit",
    }
)  # fmt: skip
"""Side-effecting (or file/network/sleep) functions that ``sql`` always refuses."""


def _sql_classes(*names: str) -> tuple[type, ...]:
    """Resolve sqlglot expression classes by name, skipping ones this version lacks."""
    from sqlglot import exp

    found: list[type] = []
    for name in names:
        cls = getattr(exp, name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


_SQL_FORBIDDEN_NAMES = (
    # writes
    "DML", "Insert", "Update", "Delete", "Merge", "Copy", "LoadData", "Into", "Export",
    "ConditionalInsert", "MultitableInserts", "Put", "Get", "Returning",
    # DDL / DCL
    "DDL", "Create", "Drop", "Alter", "AlterTable", "AlterSession", "TruncateTable",
    "Comment", "Undrop", "SwapTable", "Grant", "Revoke", "Analyze", "Refresh",
    "Cache", "Uncache", "Attach", "Detach", "Install",
    # session, transactions, locks, procedural, fallback
    "Command", "Set", "SetItem", "Pragma", "Use", "Transaction", "Commit", "Rollback",
    "Lock", "LockingStatement", "Kill", "Declare", "Execute", "ExecuteSql",
    "StoredProcedure", "Block", "IfBlock", "WhileBlock", "LoopBlock", "RepeatBlock",
    "Return", "Iterate", "Leave", "Describe", "Show", "Summarize", "NextValueFor",
)  # fmt: skip


@functools.cache
def _sql_node_classes() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(forbidden anywhere, allowed roots, transparent wrappers), resolved once."""
    return (
        _sql_classes(*_SQL_FORBIDDEN_NAMES),
        _sql_classes("Select", "SetOperation", "Union", "Intersect", "Except"),
        _sql_classes("Subquery", "Paren"),
    )


_MYSQL_EXECUTABLE_COMMENT_RE = re.compile(r"/\*[mM]?!")
# Control characters other than tab, LF and CR, plus Unicode line separators:
# databases disagree on whether they end a "--" comment.
_SQL_BAD_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# Without a dialect we cannot know how the database tokenises these, and each is
# a known way to make a second statement invisible to one tokenizer but not to
# another: backslash escapes (MySQL, BigQuery), backtick/bracket identifiers,
# dollar quoting ($$ / $tag$), '#' comments, triple-quoted and Oracle q'' strings,
# '--' not followed by whitespace (MySQL), a bare CR (ends '--' in PostgreSQL
# only), and ODBC '{...}' escapes.
_SQL_NON_PORTABLE_RE = re.compile(
    r"""[\\`$\[#{]|'''|\"\"\"|--(?![ \t\n\r\f\v])|\r(?!\n)|(?i:\bn?q')"""
)


class SqlConstraint(_Spec):
    """The value must be one read-only SQL query, verified with sqlglot.

    Only read-only checking is supported (``read_only: false`` is an error). The
    YAML shorthand ``sql: read_only`` means ``{read_only: true}``. A value is a
    violation when:

    * it is not a ``str``, is longer than :data:`SQL_MAX_CHARS`, or contains
      control characters other than tab/CR/LF;
    * it contains a MySQL executable comment (``/*!`` or ``/*M!``), or a nested
      ``/*`` inside a comment (nesting rules differ between databases);
    * without ``dialect``: it uses syntax whose tokenisation differs between
      databases (backslashes, backticks, ``[``, ``$``, ``#``, ``{``, ``'''``,
      ``--`` not followed by whitespace, a bare CR, Oracle ``q'``). Set
      ``dialect`` to your database to accept its syntax;
    * sqlglot cannot parse it (fail closed), or it is not exactly one statement
      (a trailing ``;`` is fine);
    * the root is not a ``SELECT`` or a set operation (``UNION``/``INTERSECT``/
      ``EXCEPT``, possibly parenthesised);
    * any node anywhere in the tree writes or changes state: DML (including
      data-modifying CTEs), DDL, ``GRANT``, ``SELECT ... INTO``, ``FOR UPDATE``/
      ``FOR SHARE``, ``SET``, ``PRAGMA``, ``USE``, transactions, ``COPY``,
      ``CALL``/``EXPLAIN``/anything sqlglot only parses as a generic command, ...;
    * it calls a function in :data:`BUILTIN_DENIED_SQL_FUNCTIONS` or
      ``deny_functions`` (by bare name, case-insensitively, schema qualifier
      ignored).

    This is defence in depth, not a sandbox: the verdict is only as good as the
    agreement between sqlglot's tokenizer for ``dialect`` and your database, and
    user-defined functions can have side effects this check cannot see. Run
    agent queries with a read-only database role as well.

    Example:
        >>> c = SqlConstraint.model_validate("read_only")
        >>> c.check("SELECT name FROM users WHERE id = 1") is None
        True
        >>> c.check("SELECT 1; DROP TABLE users").message
        'must contain exactly one statement'
    """

    read_only: Literal[True] = True
    """Must be true: only read-only queries are supported."""
    dialect: StrictStr | None = None
    """The sqlglot dialect of the database (``postgres``, ``mysql``, ``sqlite``, ...)."""
    deny_functions: tuple[StrictStr, ...] = ()
    """Extra function names to refuse, in addition to the built-in denylist."""

    if TYPE_CHECKING:
        _dialect: Any
        _denied: frozenset[str]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data.strip().lower().replace("-", "_") != "read_only":
                raise ValueError(f"sql must be 'read_only' or a mapping, not {data!r}")
            return {"read_only": True}
        if isinstance(data, Mapping) and data.get("read_only") is False:
            raise ValueError("only read-only SQL checking is supported (read_only: true)")
        return data

    @field_validator("dialect")
    @classmethod
    def _valid_dialect(cls, dialect: str | None) -> str | None:
        if dialect is None:
            return None
        from sqlglot.dialects.dialect import Dialect

        name = dialect.strip().lower()
        try:
            Dialect.get_or_raise(name)
        except Exception as exc:
            raise ValueError(f"unknown SQL dialect {dialect!r}: {exc}") from None
        return name

    @field_validator("deny_functions")
    @classmethod
    def _valid_functions(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        normalised = tuple(name.strip().lower() for name in names)
        for name in normalised:
            if not re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
                raise ValueError(f"{name!r} is not a bare SQL function name")
        return normalised

    def model_post_init(self, context: Any, /) -> None:
        """Compile the spec for fast checks (pydantic hook)."""
        from sqlglot.dialects.dialect import Dialect

        self._store(
            _dialect=Dialect.get_or_raise(self.dialect),
            _denied=BUILTIN_DENIED_SQL_FUNCTIONS | frozenset(self.deny_functions),
        )

    def _check(self, value: Any) -> Violation | None:
        from sqlglot import exp

        sql = _exact_str(value)
        if sql is None:
            return _NOT_A_STRING
        if len(sql) > SQL_MAX_CHARS:
            return Violation("sql", "is too long to analyse")
        if _SQL_BAD_CHARS_RE.search(sql):
            return Violation("sql", "contains a control character")
        if _MYSQL_EXECUTABLE_COMMENT_RE.search(sql):
            return Violation("sql", "contains a MySQL executable comment")
        if self.dialect is None and _SQL_NON_PORTABLE_RE.search(sql):
            return Violation("sql", "uses dialect-specific syntax that cannot be checked safely")
        try:
            tokens = self._dialect.tokenize(sql)
            for token in tokens:
                for comment in token.comments:
                    if "/*" in comment:
                        return Violation("sql", "contains a nested comment")
            parsed = self._dialect.parser().parse(tokens, sql)
        except Exception:
            return Violation("sql", "is not valid SQL")
        statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
        if len(statements) != 1:
            return Violation("sql", "must contain exactly one statement")
        forbidden, roots, wrappers = _sql_node_classes()
        root: Any = statements[0]
        while isinstance(root, wrappers):
            root = getattr(root, "this", None)
        if not isinstance(root, roots):
            return Violation("sql", "is not a read-only query")
        for node in statements[0].walk():
            if isinstance(node, forbidden):
                return Violation(
                    "sql", f"is not a read-only query ({type(node).__name__} is not allowed)"
                )
            if isinstance(node, exp.Func) and self._denied_function(node):
                return Violation("sql", "calls a function that is not allowed")
        return None

    def _denied_function(self, node: Any) -> bool:
        from sqlglot import exp

        if isinstance(node, exp.Anonymous | getattr(exp, "AnonymousAggFunc", exp.Anonymous)):
            names = [node.name]
        else:
            names = [*type(node).sql_names(), type(node).__name__]
        return any(isinstance(n, str) and n.lower() in self._denied for n in names)


# --------------------------------------------------------------------------- callable


def _import_target(target: str) -> Callable[..., Any]:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"callable {target!r} must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in attribute.strip().split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise ValueError(
            f"cannot import callable {target!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(obj):
        raise ValueError(f"{target!r} is not callable")
    return obj  # type: ignore[no-any-return]


class CallableConstraint(_Spec):
    """The value must satisfy a Python predicate.

    Given as an import string ``"package.module:function"`` (imported when the
    policy loads; failure is a validation error) or, for policies written in
    Python, as the callable itself. The predicate is called as ``fn(value)``
    and the value passes only if it returns exactly ``True``; any other result
    (``False``, ``None``, a truthy string, ...) or any exception is a
    ``"callable"`` violation naming the function (``__qualname__``) and, for an
    exception, its type only. ``model_dump`` returns the import string when the
    constraint was given as one.

    Example:
        >>> c = CallableConstraint.model_validate("math:isfinite")
        >>> c.check(1.5) is None, c.check(float("inf")).message
        (True, 'was rejected by isfinite')
    """

    target: StrictStr | None = None
    """The ``"package.module:function"`` import string, if given as one."""
    function: Callable[[Any], Any]
    """The predicate."""

    if TYPE_CHECKING:
        _label: str

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"target": data, "function": _import_target(data)}
        if isinstance(data, CallableConstraint):
            return data
        if callable(data) and not isinstance(data, Mapping):
            return {"function": data}
        if isinstance(data, Mapping) and "function" not in data:
            target = data.get("target")
            if isinstance(target, str):
                return {**data, "function": _import_target(target)}
        return data

    def model_post_init(self, context: Any, /) -> None:
        """Compile the spec for fast checks (pydantic hook)."""
        fn = self.function
        label = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        self._store(_label=str(label))

    @model_serializer(mode="plain")
    def _serialise(self) -> Any:
        if self.target is not None:
            return self.target
        return self.function

    def _check(self, value: Any) -> Violation | None:
        """Return None if ``function(value) is True``, else a :class:`Violation`."""
        try:
            result = self.function(value)
        except Exception as exc:
            return Violation("callable", f"was rejected by {self._label} ({type(exc).__name__})")
        if result is True:
            return None
        return Violation("callable", f"was rejected by {self._label}")


# --------------------------------------------------------------------------- combined


@dataclass(frozen=True, slots=True)
class _MaxLength:
    limit: int

    def check(self, value: Any) -> Violation | None:
        if isinstance(value, str | list | tuple | dict):
            if len(value) > self.limit:
                return Violation("max_length", "is too long")
            return None
        return Violation("type", "must be a string, list or mapping")


@dataclass(frozen=True, slots=True)
class _Items:
    inner: ArgConstraint

    def check(self, value: Any) -> Violation | None:
        if not isinstance(value, list | tuple):
            return Violation("type", "must be a list")
        for index, item in enumerate(value):
            violation = self.inner.check(item)
            if violation is not None:
                # an element that cannot be judged keeps kind "type", so callers
                # that fail closed on it (approval conditions) still do
                kind = "type" if violation.kind == "type" else "items"
                return Violation(kind, f"item {index} {violation.message}")
        return None


_KINDS = ("regex", "enum", "range", "max_length", "path", "url", "sql", "callable", "items")


class ArgConstraint(_Spec):
    """Constraints on one tool-call argument; every kind that is set must pass.

    Kinds are checked in a fixed order (``regex``, ``enum``, ``range``,
    ``max_length``, ``path``, ``url``, ``sql``, ``callable``, ``items``) and the
    first violation wins. At least one kind must be set. ``optional`` is metadata
    for the engine (the argument may be absent or null); :meth:`check` ignores it.

    :meth:`check` never raises: a value it cannot judge is a violation.

    Example:
        >>> c = ArgConstraint.model_validate({"path": {"allow": ["/srv/reports/**"]}})
        >>> c.kinds
        ('path',)
        >>> c.check("/srv/reports/../../etc/passwd").message
        'is outside the allowed paths'
        >>> tags = ArgConstraint.model_validate({"max_length": 3, "items": {"regex": "[a-z]+"}})
        >>> tags.check(["a", "b"]) is None, tags.check(["a", "B"]).message
        (True, 'item 1 does not match the required pattern')
    """

    regex: RegexConstraint | None = None
    """The string must match a regular expression (full match by default)."""
    enum: EnumConstraint | None = None
    """The value must be one of a list of scalars (type-strict)."""
    range: RangeConstraint | None = None
    """The value must be a finite number within bounds."""
    max_length: StrictInt | None = Field(default=None, ge=0)
    """Maximum length of a string (code points), list, tuple or mapping."""
    path: PathConstraint | None = None
    """The value must be an allowed filesystem path."""
    url: UrlConstraint | None = None
    """The value must be a URL to an allowed host."""
    sql: SqlConstraint | None = None
    """The value must be a single read-only SQL query."""
    callable: CallableConstraint | None = None
    """The value must satisfy a Python predicate."""
    items: ArgConstraint | None = None
    """Applied to every element of a list/tuple; any other value is a violation."""
    optional: StrictBool = False
    """The argument may be absent or ``null`` (engine metadata; ignored by :meth:`check`)."""

    if TYPE_CHECKING:
        _plan: tuple[tuple[str, _Checker], ...]

    @model_validator(mode="after")
    def _at_least_one(self) -> ArgConstraint:
        if not any(getattr(self, kind) is not None for kind in _KINDS):
            raise ValueError(
                "at least one constraint is required (one of: " + ", ".join(_KINDS) + ")"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Compile the spec for fast checks (pydantic hook)."""
        plan: list[tuple[str, _Checker]] = []
        for kind in _KINDS:
            spec = getattr(self, kind)
            if spec is None:
                continue
            if kind == "max_length":
                plan.append((kind, _MaxLength(spec)))
            elif kind == "items":
                plan.append((kind, _Items(spec)))
            else:
                plan.append((kind, spec))
        self._store(_plan=tuple(plan))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds that are set, in checking order (for explanations)."""
        return tuple(kind for kind, _ in self._plan)

    def _check(self, value: Any) -> Violation | None:
        """Check ``value`` against every set kind.

        Args:
            value: The untrusted argument value.

        Returns:
            None if the value passes every constraint, otherwise the first
            :class:`Violation`. Never raises.
        """
        for _, checker in self._plan:
            violation = checker.check(value)
            if violation is not None:
                return violation
        return None
