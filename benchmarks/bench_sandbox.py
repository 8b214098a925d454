#!/usr/bin/env python
"""Latency of the local sandbox backends: cold start, warm pool, and calls in a warm session.

Run from the repository root (as root, or with unprivileged user namespaces):

    .venv/bin/python benchmarks/bench_sandbox.py            # full run
    .venv/bin/python benchmarks/bench_sandbox.py --quick    # a smoke run
    .venv/bin/python benchmarks/bench_sandbox.py --markdown results.md

For each backend whose binary is installed (``bwrap``, ``runsc``):

(a) cold: a new sandbox object, ``run("print(1)")`` until the output is back
    (process start, namespaces or gVisor boot, the REPL server's startup, one call);
(b) warm pool: a :class:`SandboxPool` with one warm spare; a new thread id's first
    ``run("print(1)")`` (the spare is handed out; the pool refills in the
    background, and the next sample waits until it has, untimed);
(c) warm session: ``run("1+1")`` in a started session (protocol round trip and exec).

E2B is not measured (it needs an API key and measures the network, not this code).
Target: (c) median <= 20 ms on bubblewrap.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_secure.sandbox import BubblewrapSandbox, GVisorSandbox, SandboxPool
from langchain_secure.sandbox._local import LocalSandbox

WARM_CALL_MEDIAN_TARGET_MS = 20.0
BACKENDS: dict[str, tuple[type[LocalSandbox], str]] = {
    "bubblewrap": (BubblewrapSandbox, "bwrap"),
    "gvisor": (GVisorSandbox, "runsc"),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cold(cls: type[LocalSandbox], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        sandbox = cls(timeout_s=30)
        start = time.perf_counter()
        result = sandbox.run("print(1)")
        samples.append((time.perf_counter() - start) * 1000)
        assert result.stdout == "1\n", result
        sandbox.close()
    return samples


def warm_pool(cls: type[LocalSandbox], n: int) -> list[float]:
    samples = []
    with SandboxPool(lambda: cls(timeout_s=30), max_sessions=2, warm=1) as pool:
        for i in range(n):
            while pool.stats().warm < 1:  # untimed: wait for the refill
                time.sleep(0.005)
            start = time.perf_counter()
            result = pool.run(f"thread-{i}", "print(1)")
            samples.append((time.perf_counter() - start) * 1000)
            assert result.stdout == "1\n", result
            pool.release(f"thread-{i}")
    return samples


def warm_calls(cls: type[LocalSandbox], n: int) -> list[float]:
    samples = []
    with cls(timeout_s=30) as sandbox:
        sandbox.start()
        for _ in range(20):
            sandbox.run("1+1")
        for _ in range(n):
            start = time.perf_counter()
            result = sandbox.run("1+1")
            samples.append((time.perf_counter() - start) * 1000)
            assert result.text == "2", result
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 5x fewer samples")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    args = parser.parse_args()
    scale = 5 if args.quick else 1
    plans: list[tuple[str, Callable[[type[LocalSandbox], int], list[float]], dict[str, int]]] = [
        ("cold start -> first output", cold, {"bubblewrap": 50, "gvisor": 20}),
        ("warm pool -> first output", warm_pool, {"bubblewrap": 50, "gvisor": 20}),
        ("warm session call (1+1)", warm_calls, {"bubblewrap": 2000, "gvisor": 1000}),
    ]
    rows = []
    warm_median: dict[str, float] = {}
    for backend, (cls, binary) in BACKENDS.items():
        if shutil.which(binary) is None:
            print(f"skipping {backend}: {binary} is not installed")
            continue
        for label, func, counts in plans:
            n = max(5, counts[backend] // scale)
            samples = func(cls, n)
            median, p99 = statistics.median(samples), percentile(samples, 99)
            rows.append((backend, label, n, median, p99, max(samples)))
            if func is warm_calls:
                warm_median[backend] = median
    header = "| backend | measurement | n | median ms | p99 ms | max ms |"
    lines = [header, "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {b} | {label} | {n} | {m:.2f} | {p:.2f} | {mx:.2f} |"
              for b, label, n, m, p, mx in rows]
    machine = (f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
               f"Python {platform.python_version()}")
    print(machine)
    print("\n".join(lines))
    status = 0
    if "bubblewrap" in warm_median:
        ok = warm_median["bubblewrap"] <= WARM_CALL_MEDIAN_TARGET_MS
        print(f"target: warm-session call median <= {WARM_CALL_MEDIAN_TARGET_MS:g} ms on "
              f"bubblewrap: {warm_median['bubblewrap']:.2f} ms, {'met' if ok else 'MISSED'}")
        status = 0 if ok else 1
    if args.markdown:
        args.markdown.write_text(machine + "\n\n" + "\n".join(lines) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
