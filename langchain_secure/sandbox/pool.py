"""SandboxPool: one warm session per conversation thread, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from langchain_secure._closing import Closing
from langchain_secure.errors import ConfigurationError
from langchain_secure.sandbox.base import CodeSandbox, ExecutionResult, Language
from langchain_secure.sandbox.errors import SandboxClosedError, SandboxPoolFullError

__all__ = ["PoolStats", "SandboxPool"]


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool.

    Attributes:
        sessions: Sessions bound to a thread.
        busy: Sessions running a call through the pool right now.
        warm: Started sessions waiting for a thread.
        created: Sessions made since the pool was.
        evicted: Sessions closed for idleness or to make room.
    """

    sessions: int
    busy: int
    warm: int
    created: int
    evicted: int


@dataclass
class _Entry:
    sandbox: CodeSandbox
    last_used: float
    busy: int = 0


class SandboxPool(Closing):
    """Sessions keyed by thread id, with a few warm sandboxes ready for new threads.

    ``pool.get(thread_id)`` returns that thread's session, making one (from a
    warm spare when there is one) the first time. The pool holds at most
    ``max_sessions`` sessions; to make room it closes the least recently used
    idle one, and raises :class:`~langchain_secure.sandbox.SandboxPoolFullError`
    when every session is busy. Sessions idle for ``idle_ttl_s`` are closed on
    the next pool operation or by :meth:`evict_idle`. All methods are
    thread-safe; the async ones never block the event loop.

    Args:
        factory: Makes a new, unstarted session, e.g. ``lambda:
            BubblewrapSandbox(timeout_s=10)`` or ``spec.build``. When the
            session has a ``thread_id`` attribute the pool sets it.
        max_sessions: Most sessions bound to threads at once.
        warm: Started spare sessions kept ready (started in the background).
        idle_ttl_s: Close a session unused for this long.
        clock: Time source (for tests).

    Example:
        ```python
        from langchain_secure.sandbox import BubblewrapSandbox, SandboxPool

        with SandboxPool(lambda: BubblewrapSandbox(timeout_s=5), max_sessions=4) as pool:
            pool.run("thread-1", "x = 1")
            assert pool.run("thread-1", "x + 1").text == "2"
            assert pool.run("thread-2", "'x' in dir()").text == "False"
        ```
    """

    def __init__(self, factory: Callable[[], CodeSandbox], *, max_sessions: int = 8,
                 warm: int = 1, idle_ttl_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not callable(factory):
            msg = "factory must be a callable that returns a CodeSandbox"
            raise ConfigurationError(msg)
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) \
                or max_sessions < 1:
            msg = f"max_sessions must be a positive integer, not {max_sessions!r}"
            raise ConfigurationError(msg)
        if isinstance(warm, bool) or not isinstance(warm, int) or not 0 <= warm <= max_sessions:
            msg = f"warm must be an integer from 0 to max_sessions, not {warm!r}"
            raise ConfigurationError(msg)
        if isinstance(idle_ttl_s, bool) or not isinstance(idle_ttl_s, int | float) \
                or idle_ttl_s <= 0:
            msg = f"idle_ttl_s must be a positive number, not {idle_ttl_s!r}"
            raise ConfigurationError(msg)
        self.factory = factory
        self.max_sessions = max_sessions
        self.warm = warm
        self.idle_ttl_s = float(idle_ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, _Entry] = OrderedDict()
        self._spares: list[CodeSandbox] = []
        self._warming = 0
        self._created = 0
        self._evicted = 0
        self._closed = False
        self._threads: set[threading.Thread] = set()
        self._replenish()

    # -- sessions ------------------------------------------------------------------

    def get(self, thread_id: str) -> CodeSandbox:
        """The session of ``thread_id``, made (or taken from the warm spares) if new."""
        to_close: list[CodeSandbox] = []
        try:
            with self._lock:
                return self._get_locked(str(thread_id), to_close)[0]
        finally:
            self._close_all(to_close)
            self._replenish()

    def _get_locked(self, thread_id: str, to_close: list[CodeSandbox]) -> tuple[CodeSandbox,
                                                                                 _Entry]:
        if self._closed:
            raise SandboxClosedError("sandbox pool")
        now = self._clock()
        to_close.extend(self._expire_locked(now))
        entry = self._sessions.get(thread_id)
        if entry is not None and entry.sandbox.closed:
            del self._sessions[thread_id]
            entry = None
        if entry is None:
            if len(self._sessions) >= self.max_sessions:
                victim = next((k for k, e in self._sessions.items() if e.busy == 0), None)
                if victim is None:
                    raise SandboxPoolFullError(max_sessions=self.max_sessions)
                to_close.append(self._sessions.pop(victim).sandbox)
                self._evicted += 1
            sandbox = self._spares.pop(0) if self._spares else self._make()
            if hasattr(sandbox, "thread_id"):
                with contextlib.suppress(AttributeError):
                    sandbox.thread_id = thread_id
            entry = _Entry(sandbox, now)
            self._sessions[thread_id] = entry
        entry.last_used = now
        self._sessions.move_to_end(thread_id)
        return entry.sandbox, entry

    async def aget(self, thread_id: str) -> CodeSandbox:
        """Async :meth:`get` (eviction closes sessions in a worker thread)."""
        return await asyncio.to_thread(self.get, thread_id)

    def run(self, thread_id: str, code: str, *, language: Language = "python",
            timeout_s: float | None = None) -> ExecutionResult:
        """Run ``code`` in the session of ``thread_id``; the session counts as busy meanwhile."""
        entry = self._acquire(str(thread_id))
        try:
            return entry.sandbox.run(code, language=language, timeout_s=timeout_s)
        finally:
            self._release(entry)

    async def arun(self, thread_id: str, code: str, *, language: Language = "python",
                   timeout_s: float | None = None) -> ExecutionResult:
        """Async :meth:`run`."""
        entry = await asyncio.to_thread(self._acquire, str(thread_id))
        try:
            return await entry.sandbox.arun(code, language=language, timeout_s=timeout_s)
        finally:
            self._release(entry)

    def _acquire(self, thread_id: str) -> _Entry:
        to_close: list[CodeSandbox] = []
        try:
            with self._lock:
                _, entry = self._get_locked(thread_id, to_close)
                entry.busy += 1
                return entry
        finally:
            self._close_all(to_close)
            self._replenish()

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.busy -= 1
            entry.last_used = self._clock()

    def release(self, thread_id: str) -> bool:
        """Close the session of ``thread_id``; returns whether there was one."""
        with self._lock:
            entry = self._sessions.pop(str(thread_id), None)
        if entry is None:
            return False
        self._close_all([entry.sandbox])
        return True

    async def arelease(self, thread_id: str) -> bool:
        """Async :meth:`release`."""
        return await asyncio.to_thread(self.release, thread_id)

    def evict_idle(self) -> int:
        """Close sessions idle for longer than ``idle_ttl_s``; returns how many."""
        with self._lock:
            expired = self._expire_locked(self._clock())
        self._close_all(expired)
        return len(expired)

    def _expire_locked(self, now: float) -> list[CodeSandbox]:
        expired = [k for k, e in self._sessions.items()
                   if e.busy == 0 and now - e.last_used > self.idle_ttl_s]
        self._evicted += len(expired)
        return [self._sessions.pop(k).sandbox for k in expired]

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Threads that have a session, least recently used first."""
        with self._lock:
            return tuple(self._sessions)

    def stats(self) -> PoolStats:
        """Counts of sessions, busy sessions and warm spares."""
        with self._lock:
            return PoolStats(sessions=len(self._sessions),
                             busy=sum(1 for e in self._sessions.values() if e.busy),
                             warm=len(self._spares), created=self._created,
                             evicted=self._evicted)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- warm spares ---------------------------------------------------------------

    def _make(self) -> CodeSandbox:
        sandbox = self.factory()
        self._created += 1
        return sandbox

    def _replenish(self) -> None:
        with self._lock:
            if self._closed:
                return
            missing = self.warm - len(self._spares) - self._warming
            if missing <= 0:
                return
            self._warming += missing
        for _ in range(missing):
            thread = threading.Thread(target=self._warm_one, daemon=True, name="sandbox-warm")
            with self._lock:
                self._threads.add(thread)
            thread.start()

    def _warm_one(self) -> None:
        sandbox: CodeSandbox | None = None
        try:
            with self._lock:
                if self._closed:
                    return
                sandbox = self._make()
            sandbox.start()
        except Exception:  # a spare that fails to start is dropped; get() makes its own
            if sandbox is not None:
                with contextlib.suppress(Exception):
                    sandbox.close()
            sandbox = None
        finally:
            keep = False
            with self._lock:
                self._warming -= 1
                self._threads.discard(threading.current_thread())
                if sandbox is not None and not self._closed:
                    self._spares.append(sandbox)
                    keep = True
            if sandbox is not None and not keep:
                with contextlib.suppress(Exception):
                    sandbox.close()

    # -- closing ---------------------------------------------------------------------

    @staticmethod
    def _close_all(sandboxes: list[CodeSandbox]) -> None:
        for sandbox in sandboxes:
            with contextlib.suppress(Exception):
                sandbox.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close every session and spare; waits for spares being started. Idempotent."""
        with self._lock:
            self._closed = True
            sandboxes = [e.sandbox for e in self._sessions.values()] + self._spares
            self._sessions.clear()
            self._spares = []
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=60)
        self._close_all(sandboxes)

