"""Sync and async context management for anything with a ``close()``."""

from __future__ import annotations

import asyncio
from types import TracebackType

from typing_extensions import Self

__all__ = ["Closing"]


class Closing:
    """Mixin: ``with``/``async with`` and ``aclose()`` from a subclass's ``close()``."""

    def close(self) -> None:  # pragma: no cover - subclasses implement it
        raise NotImplementedError

    async def aclose(self) -> None:
        """Async :meth:`close` (in a worker thread)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
