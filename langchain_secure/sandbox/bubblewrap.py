"""The bubblewrap backend: Linux namespaces around a REPL server; local and fast."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import ClassVar

from langchain_secure.sandbox._local import _SERVER_SOURCE, SERVER_PATH, WORKSPACE, LocalSandbox

__all__ = ["BubblewrapSandbox"]

_SANDBOX_UID = "65534"


@functools.lru_cache(maxsize=8)
def _supports(binary: str, flag: str) -> bool:
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True,  # noqa: S603
                             timeout=10, check=False, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in out.stdout + out.stderr


class BubblewrapSandbox(LocalSandbox):
    r"""A stateful Python session in a bubblewrap (``bwrap``) sandbox.

    The code runs in new user, mount, PID, network, IPC, UTS and cgroup
    namespaces, as an unprivileged user with no capabilities and
    ``no_new_privs``. The filesystem is read-only and minimal (``/usr``, the
    Python prefix, a synthetic ``/etc``); only ``/workspace`` (a per-session
    host directory) and a size-capped ``/tmp`` are writable. There is no
    network but loopback unless ``network=True``. Memory and processes are
    limited by a per-session cgroup when the host allows it, by rlimits
    otherwise (see :attr:`limits`).

    Requires ``bwrap`` (Debian: ``apt-get install bubblewrap``).

    Args:
        timeout_s: Wall-clock limit of one call; the sandbox is killed past it.
        memory_mb: Memory limit of the whole session.
        max_processes: Processes and threads the session may have at once.
        max_output_bytes: Bytes of stdout (and, separately, stderr) kept per call.
        max_file_mb: Largest file the code may write (and the size of ``/tmp``).
        cpu_time_s: CPU seconds the session may use in its life; default
            ``max(60, 10 * timeout_s)``.
        network: Share the host's network (off by default: loopback only).
        env: The only environment variables the code sees, besides ``PATH``,
            ``HOME``, ``TMPDIR`` and ``LANG``.
        python: Interpreter to run; default: the base interpreter of this one
            (its prefix is mounted read-only, so its standard library and
            site-packages are available, the host's virtualenv is not).
        ro_binds: More host paths to mount read-only at the same place.
        workspace: A host directory to use as ``/workspace`` (kept on close);
            default: a new temporary directory, deleted on close.
        start_timeout_s: How long to wait for the sandbox to come up.
        cgroups: ``"auto"`` (use them when possible), ``"off"`` or ``"require"``.

    Raises:
        SandboxUnavailableError: ``bwrap`` is not installed.
        ConfigurationError: An option is invalid.

    Example:
        ```python
        from langchain_secure.sandbox import BubblewrapSandbox

        with BubblewrapSandbox(timeout_s=5, memory_mb=256) as sandbox:
            sandbox.run("import math; r = 2")
            result = sandbox.run("print('area'); math.pi * r ** 2")
            assert result.stdout == "area\n" and result.text.startswith("12.566")
        ```
    """

    backend: ClassVar[str] = "bubblewrap"
    binary: ClassVar[str] = "bwrap"
    install: ClassVar[str] = "apt-get install bubblewrap"

    def _command(self, session_dir: Path, workspace: Path) -> list[str]:
        etc = session_dir / "etc"
        argv = [self._binary, "--unshare-all", "--unshare-user"]
        if self.network:
            argv.append("--share-net")
        if _supports(self._binary, "--disable-userns"):
            argv.append("--disable-userns")
        argv += ["--uid", _SANDBOX_UID, "--gid", _SANDBOX_UID, "--cap-drop", "ALL",
                 "--die-with-parent", "--new-session", "--hostname", "sandbox",
                 "--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = f"/{name}"
            if os.path.islink(host):
                argv += ["--symlink", os.readlink(host), host]
            elif os.path.isdir(host):
                argv += ["--ro-bind", host, host]
        argv += ["--ro-bind", str(etc), "/etc"]
        for path in dict.fromkeys((self._python_prefix, *self.ro_binds)):
            if not path.startswith("/usr/"):
                argv += ["--ro-bind", path, path]
        argv += ["--ro-bind", str(_SERVER_SOURCE), SERVER_PATH,
                 "--proc", "/proc", "--dev", "/dev",
                 "--size", str(self.max_file_mb << 20), "--tmpfs", "/tmp",  # noqa: S108 - a private tmpfs
                 "--bind", str(workspace), WORKSPACE, "--chdir", WORKSPACE,
                 "--clearenv"]
        for key, value in self._sandbox_env().items():
            argv += ["--setenv", key, value]
        argv += ["--", self.python, "-I", "-B", "-u", SERVER_PATH]
        return argv
