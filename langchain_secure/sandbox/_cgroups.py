"""Per-session cgroups for the local backends (memory and process limits).

Used when the host allows it (root, or a delegated cgroup v2 subtree): a
session's processes are put into their own cgroup with ``pids.max`` and a memory
limit, which, unlike ``setrlimit``, counts every process of the session together
and works for a host running as root (where ``RLIMIT_NPROC`` is not enforced).
Without them the backends fall back to rlimits (see ``docs/sandbox.md``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["Cgroup"]

_ROOT = Path("/sys/fs/cgroup")


def _own_paths() -> dict[str, str]:
    """Controller name (``""`` for v2) to this process's cgroup path."""
    paths: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return paths
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def pids_in(dirs: Iterable[Path]) -> set[int]:
    """The processes in these cgroup directories now."""
    found: set[int] = set()
    for path in dirs:
        with contextlib.suppress(OSError, ValueError):
            found.update(int(x) for x in (path / "cgroup.procs").read_text().split())
    return found


def kill_all_in(dirs: Sequence[Path], *, rounds: int = 200) -> None:
    """SIGKILL every process in these cgroups until they are empty (bounded)."""
    for _ in range(rounds):
        pids = pids_in(dirs)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def remove_dirs(dirs: Iterable[Path]) -> bool:
    """Delete cgroup directories, retrying while the kernel empties them.

    Returns:
        True when every directory is gone.
    """
    removed = True
    for path in dirs:
        for _ in range(100):
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
        else:
            removed = False
    return removed


def oom_killed_in(dirs: Iterable[Path]) -> bool:
    """True when the kernel killed a process of these cgroups for memory (v1 or v2)."""
    for path in dirs:
        for name in ("memory.events", "memory.oom_control"):
            with contextlib.suppress(OSError, ValueError):
                for line in (path / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
    return False


class Cgroup:
    """One session's cgroup: a directory per controller (v1) or one directory (v2).

    Example:
        ```python
        group = Cgroup.create(memory_bytes=256 << 20, max_pids=64)
        if group is not None:  # root or delegated cgroups only
            group.remove()
        ```
    """

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs = dirs
        self.version = version
        self._procs_files = [str(d / "cgroup.procs") for d in dict.fromkeys(dirs.values())]

    @classmethod
    def create(cls, *, memory_bytes: int | None, max_pids: int | None) -> Cgroup | None:
        """Make a cgroup with these limits, or return ``None`` when the host does not allow it."""
        name = f"langchain-secure-{uuid.uuid4().hex[:12]}"
        own = _own_paths()
        if (_ROOT / "cgroup.controllers").exists():
            return cls._create_v2(name, own.get("", "/"), memory_bytes, max_pids)
        dirs: dict[str, Path] = {}
        try:
            for controller, limit in (("memory", memory_bytes), ("pids", max_pids)):
                if limit is None:
                    continue
                base = _ROOT / controller
                if controller not in own or not base.is_dir():
                    raise OSError(f"no {controller} cgroup")
                path = base / own[controller].lstrip("/") / name
                path.mkdir()
                dirs[controller] = path
                if controller == "memory":
                    (path / "memory.limit_in_bytes").write_text(str(limit))
                    with contextlib.suppress(OSError):  # absent without swap accounting
                        (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
                else:
                    (path / "pids.max").write_text(str(limit))
        except OSError:
            cls(dirs, 1).remove()
            return None
        return cls(dirs, 1)

    @classmethod
    def _create_v2(cls, name: str, own: str, memory_bytes: int | None,
                   max_pids: int | None) -> Cgroup | None:
        parent = _ROOT / own.lstrip("/")
        path = parent / name
        try:
            wanted = [c for c, lim in (("memory", memory_bytes), ("pids", max_pids)) if lim]
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            missing = [c for c in wanted if c not in enabled]
            if missing:
                (parent / "cgroup.subtree_control").write_text(
                    " ".join("+" + c for c in missing))
            path.mkdir()
            if memory_bytes is not None:
                (path / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
            if max_pids is not None:
                (path / "pids.max").write_text(str(max_pids))
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls({"memory": path, "pids": path}, 2)

    @property
    def limits_memory(self) -> bool:
        """True when this cgroup limits memory."""
        return "memory" in self.dirs

    @property
    def limits_pids(self) -> bool:
        """True when this cgroup limits the number of processes."""
        return "pids" in self.dirs

    def join(self) -> None:
        """Move the calling process into the cgroup (call in the child, before exec)."""
        pid = str(os.getpid()).encode()
        for procs in self._procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> set[int]:
        """The processes in the cgroup now."""
        return pids_in(dict.fromkeys(self.dirs.values()))

    def oom_killed(self) -> bool:
        """True when the kernel killed a process of the cgroup for memory."""
        path = self.dirs.get("memory")
        return path is not None and oom_killed_in([path])

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup, until it is empty (bounded)."""
        kill_all_in(list(dict.fromkeys(self.dirs.values())))

    def remove(self) -> None:
        """Kill what is left and delete the cgroup directories."""
        self.kill_all()
        remove_dirs(dict.fromkeys(self.dirs.values()))
