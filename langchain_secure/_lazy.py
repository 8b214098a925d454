"""PEP 562 lazy exports, shared by the packages that keep imports cheap."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any],
                 names: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` that import each export on first use.

    Args:
        package: The package's ``__name__`` (for error messages).
        exports: Public name to the module that defines it.
        namespace: The package's ``globals()``; a resolved name is cached there.
        names: The package's ``__all__``.

    Example:
        ```python
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
        ```
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
