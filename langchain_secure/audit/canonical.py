r"""Canonical JSON: one byte sequence per value, so hashes are reproducible.

Keys sorted, no insignificant whitespace, UTF-8 (no ``\\u`` escapes for printable
text), no NaN or infinity, floats in Python's shortest round-trip form, datetimes
as RFC 3339 UTC with microseconds (``2026-11-21T06:50:00.123456Z``). Values JSON
cannot hold are converted by :func:`jsonable` (tuples and sets become lists,
bytes become ``{"$bytes": base64}``, other objects their ``str``), so writing an
audit record never fails on an odd tool argument.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "jsonable", "utc_timestamp"]


def utc_timestamp(moment: dt.datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with microseconds and a ``Z`` suffix."""
    moment = moment or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` (see the module docstring for the mapping)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        return utc_timestamp(value)
    return str(value)


def canonical_json(value: Any) -> bytes:
    r"""The canonical UTF-8 bytes of ``value`` (made JSON-safe first).

    Example:
        ```python
        from langchain_secure.audit.canonical import canonical_json

        canonical_json({"b": 1, "a": [1.5, "é"]})  # b'{"a":[1.5,"\\xc3\\xa9"],"b":1}'
        ```
    """
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")
