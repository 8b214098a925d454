"""The gVisor backend: the REPL server runs on gVisor's user-space kernel (``runsc``)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from langchain_secure.sandbox._cgroups import kill_all_in, oom_killed_in, remove_dirs
from langchain_secure.sandbox._local import _SERVER_SOURCE, SERVER_PATH, WORKSPACE, LocalSandbox

__all__ = ["GVisorSandbox"]

_SANDBOX_UID = 65534
_RLIMIT_NAMES = {
    resource.RLIMIT_CORE: "RLIMIT_CORE",
    resource.RLIMIT_FSIZE: "RLIMIT_FSIZE",
    resource.RLIMIT_CPU: "RLIMIT_CPU",
    resource.RLIMIT_NOFILE: "RLIMIT_NOFILE",
    resource.RLIMIT_AS: "RLIMIT_AS",
    resource.RLIMIT_NPROC: "RLIMIT_NPROC",
}


class GVisorSandbox(LocalSandbox):
    """A stateful Python session in a `gVisor <https://gvisor.dev>`_ sandbox (``runsc``).

    The code's system calls are served by gVisor's user-space kernel, not the
    host's: a kernel bug reachable from the code is a bug in gVisor, behind a
    second boundary (the sandbox process itself runs in namespaces with a
    seccomp filter). Each session is an OCI container started with ``runsc
    run`` and ``--network=none``: a read-only, empty root with ``/usr``, the
    Python prefix and a synthetic ``/etc`` mounted read-only, ``/workspace``
    writable, a size-capped ``/tmp``, the user ``nobody`` with no
    capabilities, rlimits enforced by gVisor, and memory and process limits as
    OCI resources (host cgroups). Cold starts are slower than bubblewrap
    (hundreds of milliseconds); calls in a warm session are not much slower.

    Requires ``runsc`` (Debian: ``apt-get install runsc``) and root (or
    ``rootless=True``, which gVisor documents as less isolated).

    Takes the same options as :class:`~langchain_secure.sandbox.BubblewrapSandbox`,
    and:

    Args:
        platform: gVisor platform (``"ptrace"``, ``"systrap"``, ``"kvm"``);
            default: runsc's own default.
        runsc_flags: More global ``runsc`` flags, e.g. ``["--overlay2=root:memory"]``.
        rootless: Pass ``--rootless`` (default: when not running as root).
        **options: The options of :class:`~langchain_secure.sandbox.BubblewrapSandbox`.

    Example:
        ```python
        from langchain_secure.sandbox import GVisorSandbox

        with GVisorSandbox(timeout_s=10) as sandbox:
            assert sandbox.run("sum(range(10))").text == "45"
        ```
    """

    backend: ClassVar[str] = "gvisor"
    binary: ClassVar[str] = "runsc"
    install: ClassVar[str] = "apt-get install runsc"

    def __init__(self, *, platform: str | None = None, runsc_flags: Sequence[str] = (),
                 rootless: bool | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.platform = platform
        self.runsc_flags = tuple(str(flag) for flag in runsc_flags)
        self.rootless = os.geteuid() != 0 if rootless is None else bool(rootless)
        self._container_id: str | None = None

    def _sandbox_memory(self) -> int:
        return (self.memory_mb + max(256, self.memory_mb // 2)) << 20

    def _use_cgroup(self) -> bool:
        return False  # runsc applies the OCI resources itself

    def _describe_limits(self) -> dict[str, str]:
        return {"memory": "oci-cgroup+rlimit-as", "processes": "rlimit-nproc",
                "file_size": "rlimit-fsize", "cpu_time": "rlimit-cpu"}

    def _rlimits(self) -> list[tuple[int, int]]:
        return []  # set inside the container by gVisor (see _spec), not on runsc itself

    def _global_flags(self, state: Path) -> list[str]:
        flags = [self._binary, "--root", str(state),
                 "--network", "host" if self.network else "none"]
        if self.platform:
            flags += ["--platform", self.platform]
        if self.rootless:
            flags.append("--rootless")
        return flags + list(self.runsc_flags)

    def _spec(self, session_dir: Path, workspace: Path, container_id: str) -> dict[str, Any]:
        etc = session_dir / "etc"
        ro = ["rbind", "ro", "nosuid", "nodev"]
        mounts: list[dict[str, Any]] = [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "mode=755"]},
            {"destination": "/tmp",  # noqa: S108 - a private tmpfs
             "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", f"size={self.max_file_mb << 20}"]},
            {"destination": "/usr", "type": "bind", "source": "/usr", "options": ro},
        ]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path(f"/{name}")
            if host.is_dir():
                mounts.append({"destination": str(host), "type": "bind",
                               "source": os.path.realpath(host), "options": ro})
        mounts.append({"destination": "/etc", "type": "bind", "source": str(etc),
                       "options": ro})
        for path in dict.fromkeys((self._python_prefix, *self.ro_binds)):
            if not path.startswith("/usr/"):
                mounts.append({"destination": path, "type": "bind", "source": path,
                               "options": ro})
        mounts += [
            {"destination": SERVER_PATH, "type": "bind", "source": str(_SERVER_SOURCE),
             "options": ro},
            {"destination": WORKSPACE, "type": "bind", "source": str(workspace),
             "options": ["rbind", "rw", "nosuid", "nodev"]},
        ]
        rlimits = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_FSIZE, self.max_file_mb << 20),
            (resource.RLIMIT_CPU, int(self.cpu_time_s)),
            (resource.RLIMIT_NOFILE, 1024),
            (resource.RLIMIT_AS, self.memory_mb << 20),
            (resource.RLIMIT_NPROC, self.max_processes),
        ]
        no_caps: list[str] = []
        return {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": _SANDBOX_UID, "gid": _SANDBOX_UID},
                "args": [self.python, "-I", "-B", "-u", SERVER_PATH],
                "env": [f"{k}={v}" for k, v in self._sandbox_env().items()],
                "cwd": WORKSPACE,
                "capabilities": {"bounding": no_caps, "effective": no_caps,
                                 "inheritable": no_caps, "permitted": no_caps,
                                 "ambient": no_caps},
                "rlimits": [{"type": _RLIMIT_NAMES[k], "hard": v, "soft": v}
                            for k, v in rlimits],
                "noNewPrivileges": True,
            },
            "root": {"path": "rootfs", "readonly": True},
            "hostname": "sandbox",
            "mounts": mounts,
            "linux": {
                "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                "cgroupsPath": f"/langchain-secure/{container_id}",
                "resources": {
                    # The whole sandbox (gVisor's kernel included) gets headroom above
                    # the code's RLIMIT_AS, so one process's bomb is a MemoryError and
                    # the cgroup only stops many processes together.
                    "memory": {"limit": self._sandbox_memory(), "swap": self._sandbox_memory()},
                },
            },
        }

    def _command(self, session_dir: Path, workspace: Path) -> list[str]:
        bundle = session_dir / "bundle"
        (bundle / "rootfs").mkdir(parents=True, exist_ok=True)
        state = session_dir / "state"
        state.mkdir(exist_ok=True)
        if os.geteuid() == 0 and workspace.parent == session_dir:
            os.chown(workspace, _SANDBOX_UID, _SANDBOX_UID)
        container_id = f"lcs-{uuid.uuid4().hex[:16]}"
        self._container_id = container_id
        (bundle / "config.json").write_text(
            json.dumps(self._spec(session_dir, workspace, container_id)))
        return [*self._global_flags(state), "run", "--bundle", str(bundle), container_id]

    def _cgroup_dirs(self, container_id: str) -> list[Path]:
        root = Path("/sys/fs/cgroup")
        if (root / "cgroup.controllers").exists():
            candidates = [root / "langchain-secure" / container_id]
        else:
            candidates = [c / "langchain-secure" / container_id for c in root.iterdir()]
        return [c for c in candidates if c.is_dir()]

    def _oom_killed(self) -> bool:
        if self._container_id is None:
            return False
        return oom_killed_in(self._cgroup_dirs(self._container_id))

    def _terminate(self) -> None:
        # The sandbox and gofer processes run in sessions of their own, so the
        # process group is not enough: kill every process in the container's
        # cgroups (fast), then let runsc clean up what is left (slow, only if needed).
        session_dir, container_id = self._session_dir, self._container_id
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if container_id is None or session_dir is None:
            return
        dirs = self._cgroup_dirs(container_id)
        kill_all_in(dirs, rounds=400)
        removed = bool(dirs) and remove_dirs(dirs)
        if not removed:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(  # noqa: S603
                    [*self._global_flags(session_dir / "state"), "delete", "--force",
                     container_id],
                    capture_output=True, timeout=30, check=False, env=self._launch_env())
        shutil.rmtree(session_dir / "state", ignore_errors=True)
        self._container_id = None
