r"""Load a policy from YAML, with every error located at file, line and key.

The YAML is read with ruamel.yaml's round-trip loader, which remembers where each
key and item stood; pydantic then validates the plain data, and each of its errors
is mapped back to the nearest position in the file. Unknown keys, duplicate keys,
bad regexes and unresolvable callables are all errors at load time.

Example:
    ```python
    from langchain_secure import PolicyError, load_policy_text

    try:
        load_policy_text("personas:\\n  analyst:\\n    tools: [search]\\n    colour: red\\n",
                         filename="policy.yaml")
    except PolicyError as err:
        print(err.issues[0])  # policy.yaml:4:5: personas.analyst.colour: unknown key 'colour'
    ```
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from langchain_secure.errors import PolicyError, PolicyIssue
from langchain_secure.policy.model import Policy

__all__ = ["load_policy", "load_policy_text"]

_Path = tuple[str | int, ...]
_Locations = dict[_Path, tuple[int, int]]


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a YAML policy file.

    Args:
        path: The policy file.

    Returns:
        The validated policy.

    Raises:
        PolicyError: The file cannot be read, is not valid YAML, or is not a valid
            policy. ``err.issues`` lists each problem with file, line and key.
    """
    filename = os.fspath(path)
    try:
        text = Path(filename).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([_issue(filename, None, (), f"cannot read policy: {exc}")]) from None
    return load_policy_text(text, filename=filename)


def load_policy_text(text: str, *, filename: str = "<policy>") -> Policy:
    """Validate a YAML policy given as a string.

    Args:
        text: The YAML document.
        filename: Name used in error messages.

    Returns:
        The validated policy.

    Raises:
        PolicyError: The text is not valid YAML or not a valid policy.
    """
    data, locations = _parse_yaml(text, filename)
    if data is None:
        raise PolicyError([_issue(filename, (1, 1), (), "the policy is empty")])
    if not isinstance(data, dict):
        raise PolicyError(
            [_issue(filename, (1, 1), (), "the policy must be a mapping of keys to values")]
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_located_validation_issues(exc, locations, filename)) from None
    except PolicyError as exc:
        raise PolicyError(
            [_issue(filename, _locate(issue.path, locations)[1], _locate(issue.path, locations)[0],
                    issue.message) for issue in exc.issues]
        ) from None


def _issue(filename: str, where: tuple[int, int] | None, path: _Path, message: str) -> PolicyIssue:
    line, column = where if where is not None else (None, None)
    return PolicyIssue(
        file=filename, line=line, column=column,
        key=".".join(str(p) for p in path), message=message, path=path,
    )


def _parse_yaml(text: str, filename: str) -> tuple[Any, _Locations]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise PolicyError([_issue(filename, where, (), f"invalid YAML: {problem}")]) from None
    except YAMLError as exc:
        raise PolicyError([_issue(filename, None, (), f"invalid YAML: {exc}")]) from None
    except Exception as exc:  # ruamel raises IndexError/ValueError on some scalars ('-_')
        raise PolicyError([_issue(filename, None, (),
                                  f"invalid YAML: the parser failed ({type(exc).__name__}: "
                                  f"{exc})")]) from None
    locations: _Locations = {(): (1, 1)}
    bad_keys: list[PolicyIssue] = []
    data = _plain(raw, (), locations, bad_keys, filename)
    if bad_keys:
        raise PolicyError(bad_keys)
    return data, locations


def _plain(node: Any, path: _Path, locations: _Locations, bad_keys: list[PolicyIssue],
           filename: str) -> Any:
    """Turn ruamel's commented containers into plain ones, recording positions.

    Every mapping key in a policy is a name, so a key YAML reads as something
    else (``true:``, ``1:``, ``null:``) is reported rather than coerced.
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            line, column = node.lc.key(key)
            child: _Path = (*path, str(key))
            locations[child] = (line + 1, column + 1)
            if not isinstance(key, str):
                bad_keys.append(_issue(filename, (line + 1, column + 1), child,
                                       f"key {key!r} is not a string; put it in quotes"))
            out[str(key)] = _plain(value, child, locations, bad_keys, filename)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, column = node.lc.item(index)
            child_path: _Path = (*path, index)
            locations[child_path] = (line + 1, column + 1)
            items.append(_plain(value, child_path, locations, bad_keys, filename))
        return items
    if isinstance(node, str):
        return str(node)  # ruamel's scalar string subclasses -> plain str
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _locate(path: _Path, locations: _Locations) -> tuple[_Path, tuple[int, int] | None]:
    """The longest known prefix of a pydantic error location, and its position.

    Pydantic inserts its own steps (union member tags, ``function-after[...]``)
    into error locations; they are skipped, keeping only steps that exist in
    the YAML document.
    """
    found: _Path = ()
    for step in path:
        candidate = (*found, step)
        if candidate in locations:
            found = candidate
    return found, locations.get(found)


def _located_validation_issues(
    exc: ValidationError, locations: _Locations, filename: str
) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    seen: set[tuple[_Path, str]] = set()
    for path, message, missing in _messages(exc):
        found, where = _locate(path, locations)
        if missing:
            found = (*found, path[-1])
        if (found, message) in seen:
            continue
        seen.add((found, message))
        issues.append(_issue(filename, where, found, message))
    return issues


def _messages(exc: ValidationError) -> Iterator[tuple[_Path, str, bool]]:
    """(location, message, whether the key is missing) for each pydantic error."""
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            yield loc, f"unknown key {loc[-1]!r}", False
        elif kind == "missing":
            yield loc, f"missing required key {loc[-1]!r}", True
        elif kind == "value_error":
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
            yield loc, message, False
        else:
            yield loc, error["msg"], False
