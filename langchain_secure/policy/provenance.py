"""Where an argument's value came from: the user's own words, or somewhere else.

An injected instruction can only steer an agent towards values the attacker
supplied: their IBAN, their URL, their e-mail address, their password. Those
values reach the model through tool outputs, never through what the user typed.
A tool entry's ``from_user`` section names the arguments whose value must come
from the user (CaMeL's "data from the user" capability, Debenedetti et al. 2025,
reduced to one string check)::

    tools:
      send_money:
        from_user:
          recipient: require_approval   # an IBAN read from a document needs a person
      update_password:
        from_user:
          password: deny                # never a password the user did not type

A value *comes from the user* when it occurs in the conversation's human (and
system) messages. The comparison ignores case and all whitespace, so
``GB29 NWBK 6016`` in a message grounds ``GB29NWBK6016``. Lists and mappings are
grounded when every string or number inside them is; booleans, ``None`` and empty
strings carry no data and are always grounded. Surfaces that cannot see the
conversation (a bare tool, a callback) pass no user text, and then nothing is
grounded: the rule's action applies (fail closed).

It is a check on provenance, not on meaning: a short value that happens to occur
in the user's words (``Bob``, ``10``) counts as the user's, and a value the model
computed from the user's words (a sum, a translation) does not.

Example:
    ```python
    from langchain_secure.policy.provenance import grounded, normalize

    said = normalize("Refund my friend at GB29 NWBK 6016 1331 9268 19, please.")
    assert grounded("GB29NWBK60161331926819", said)
    assert not grounded("US133000000121212121212", said)
    assert grounded(["gb29nwbk60161331926819", True], said)
    assert not grounded("anything", None)
    ```
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["grounded", "normalize", "ungrounded_values"]

_SPACE = re.compile(r"\s+")


def normalize(text: str | None) -> str | None:
    """User text in the form :func:`grounded` compares: casefolded, no whitespace."""
    if text is None:
        return None
    return _SPACE.sub("", text).casefold()


def _atoms(value: Any) -> Iterable[str]:
    """The strings a value's data consists of (numbers in their usual forms)."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            yield str(int(value))  # 2200.0 was written 2200
        else:
            yield repr(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _atoms(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _atoms(item)
    else:
        yield str(value)


def ungrounded_values(value: Any, user_text: str | None) -> list[str]:
    """The parts of ``value`` that do not occur in ``user_text`` (normalized)."""
    missing = []
    for atom in _atoms(value):
        needle = normalize(atom) or ""
        if not needle:
            continue
        if user_text is None or needle not in user_text:
            missing.append(atom)
    return missing


def grounded(value: Any, user_text: str | None) -> bool:
    """Whether every part of ``value`` occurs in the (normalized) user text."""
    return not ungrounded_values(value, user_text)
