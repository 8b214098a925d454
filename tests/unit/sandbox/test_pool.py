from __future__ import annotations

import asyncio
import threading

import pytest

from langchain_secure.errors import ConfigurationError
from langchain_secure.sandbox import (
    ExecutionResult,
    SandboxClosedError,
    SandboxPool,
    SandboxPoolFullError,
)
from langchain_secure.sandbox.testing import FakeSandbox


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_pool(**kwargs: object) -> tuple[SandboxPool, list[FakeSandbox]]:
    made: list[FakeSandbox] = []

    def factory() -> FakeSandbox:
        sandbox = FakeSandbox()
        made.append(sandbox)
        return sandbox

    return SandboxPool(factory, **kwargs), made  # type: ignore[arg-type]


def test_one_session_per_thread() -> None:
    pool, made = make_pool(warm=0)
    first = pool.get("a")
    assert pool.get("a") is first
    assert pool.get("b") is not first
    assert len(made) == 2
    assert first.thread_id == "a"  # type: ignore[attr-defined]
    assert pool.thread_ids == ("a", "b")
    pool.close()
    assert all(s.closed for s in made)
    with pytest.raises(SandboxClosedError):
        pool.get("a")


def test_warm_spare_is_started_and_handed_out() -> None:
    pool, made = make_pool(warm=1)
    for _ in range(200):  # the spare starts in a background thread
        if pool.stats().warm == 1:
            break
        threading.Event().wait(0.01)
    assert pool.stats().warm == 1
    spare = made[0]
    assert spare.started
    assert pool.get("t") is spare
    pool.close()
    assert all(s.closed for s in made)


def test_bounded_evicts_least_recently_used_idle() -> None:
    pool, _ = make_pool(max_sessions=2, warm=0)
    a, b = pool.get("a"), pool.get("b")
    pool.get("a")  # b is now least recently used
    c = pool.get("c")
    assert b.closed and not a.closed and not c.closed
    assert pool.thread_ids == ("a", "c")
    assert pool.stats().evicted == 1
    pool.close()


def test_full_when_every_session_is_busy() -> None:
    gate = threading.Event()
    entered = threading.Event()

    def slow(code: str) -> ExecutionResult:
        entered.set()
        gate.wait(10)
        return ExecutionResult(stdout=code)

    pool = SandboxPool(lambda: FakeSandbox(default=slow), max_sessions=1, warm=0)
    worker = threading.Thread(target=pool.run, args=("a", "x"))
    worker.start()
    assert entered.wait(10)
    assert pool.stats().busy == 1
    with pytest.raises(SandboxPoolFullError) as info:
        pool.get("b")
    assert info.value.max_sessions == 1
    gate.set()
    worker.join()
    assert pool.stats().busy == 0
    pool.get("b")  # now "a" is idle and can be evicted
    assert pool.thread_ids == ("b",)
    pool.close()


def test_idle_sessions_are_evicted() -> None:
    clock = Clock()
    pool, _ = make_pool(warm=0, idle_ttl_s=60, clock=clock)
    old = pool.get("old")
    clock.now = 30
    fresh = pool.get("fresh")
    clock.now = 61
    assert pool.evict_idle() == 1
    assert old.closed and not fresh.closed
    assert pool.thread_ids == ("fresh",)
    clock.now = 200
    pool.get("other")  # eviction also happens on access
    assert fresh.closed
    pool.close()


def test_release_and_closed_sessions_are_replaced() -> None:
    pool, _ = make_pool(warm=0)
    first = pool.get("a")
    assert pool.release("a") is True
    assert pool.release("a") is False
    assert first.closed
    second = pool.get("a")
    second.close()
    assert pool.get("a") is not second
    pool.close()


def test_concurrent_gets_share_one_session() -> None:
    pool, made = make_pool(warm=0, max_sessions=4)
    seen: list[object] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        seen.append(pool.get("same"))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in seen}) == 1
    assert len(made) == 1
    pool.close()


async def test_async_api() -> None:
    async with SandboxPool(lambda: FakeSandbox({"1+1": ExecutionResult(stdout="2")}),
                           warm=0) as pool:
        results = await asyncio.gather(*(pool.arun(f"t{i % 3}", "1+1") for i in range(9)))
        assert [r.stdout for r in results] == ["2"] * 9
        assert len(pool) == 3
        assert await pool.arelease("t0") is True
        session = await pool.aget("t1")
        assert isinstance(session, FakeSandbox)
    assert pool.closed


@pytest.mark.parametrize("kwargs", [{"max_sessions": 0}, {"warm": -1}, {"warm": 9},
                                    {"idle_ttl_s": 0}, {"max_sessions": True}])
def test_options_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SandboxPool(FakeSandbox, **kwargs)  # type: ignore[arg-type]
