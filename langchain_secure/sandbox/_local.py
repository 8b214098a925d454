"""What the bubblewrap and gVisor backends share: a REPL server in a local sandbox.

One sandbox process per session runs ``_repl_server.py``; the host speaks a
length-prefixed JSON protocol with it over pipes, bounds every read by the call's
deadline and the frame size, and kills the whole sandbox on a timeout.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from langchain_secure.errors import ConfigurationError
from langchain_secure.sandbox._cgroups import Cgroup
from langchain_secure.sandbox.base import (
    ExecutionError,
    ExecutionResult,
    KillReason,
    Language,
    RichResult,
    SandboxBase,
    _check_language,
)
from langchain_secure.sandbox.errors import (
    SandboxClosedError,
    SandboxStartError,
    SandboxUnavailableError,
)

__all__ = ["SANDBOX_PATH", "WORKSPACE", "LocalSandbox"]

WORKSPACE = "/workspace"
"""Where the session's workspace directory appears inside the sandbox (the cwd)."""

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
"""``PATH`` inside the sandbox."""

SERVER_PATH = "/opt/langchain-secure/repl_server.py"
"""Where the REPL server script is mounted (read-only) inside the sandbox."""

_SERVER_SOURCE = Path(__file__).with_name("_repl_server.py")
_HEADER = struct.Struct(">I")
_STDERR_CAP = 64 * 1024
_ENV_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_RESERVED_ENV = frozenset({"PATH", "HOME", "TMPDIR", "LANG", "PWD"})

CgroupMode = Literal["auto", "off", "require"]


class _Dead(Exception):
    """The sandbox process closed the protocol channel."""


class _Spawner:
    """Starts every sandbox process from one long-lived thread.

    ``bwrap --die-with-parent`` uses ``PR_SET_PDEATHSIG``, which fires when the
    *thread* that forked the child exits, not the process: a sandbox started from
    a short-lived thread (a pool's warm-up thread, an ``asyncio.to_thread``
    worker) would be killed when that thread ends. Forking from a daemon thread
    that lives as long as the process keeps the signal for what it is for: the
    host process dying.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] | None = None

    def run(self, func: Callable[[], Any]) -> Any:
        with self._lock:
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                threading.Thread(target=self._loop, args=(self._queue,), daemon=True,
                                 name="langchain-secure-sandbox-spawner").start()
            jobs = self._queue
        future: Future[Any] = Future()
        jobs.put((func, future))
        return future.result()

    @staticmethod
    def _loop(jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]) -> None:
        while True:
            func, future = jobs.get()
            try:
                future.set_result(func())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


_SPAWNER = _Spawner()


def default_python() -> tuple[str, str]:
    """The interpreter to run in the sandbox and the prefix to mount: this one's base."""
    prefix = os.path.realpath(sys.base_prefix)
    exe = os.path.realpath(sys.executable)
    if not exe.startswith(prefix + os.sep):
        exe = os.path.join(prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    return exe, prefix


def _check_env(env: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in (env or {}).items():
        if not isinstance(key, str) or not key or key[0].isdigit() \
                or not set(key) <= _ENV_NAME_CHARS:
            msg = f"env: {key!r} is not a valid variable name"
            raise ConfigurationError(msg)
        if key in _RESERVED_ENV:
            msg = f"env: {key} is set by the sandbox and cannot be overridden"
            raise ConfigurationError(msg)
        if not isinstance(value, str) or "\0" in value:
            msg = f"env: the value of {key} must be a string without NUL bytes"
            raise ConfigurationError(msg)
        checked[key] = value
    return checked


def _positive(name: str, value: Any, *, integer: bool = False,
              optional: bool = False) -> Any:
    if value is None and optional:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        msg = f"{name} must be {kind}, not {value!r}"
        raise ConfigurationError(msg)
    return value


class LocalSandbox(SandboxBase):
    """Base of :class:`BubblewrapSandbox` and :class:`GVisorSandbox` (not used directly)."""

    binary: ClassVar[str] = ""
    install: ClassVar[str] = ""

    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        memory_mb: int = 512,
        max_processes: int = 64,
        max_output_bytes: int = 65536,
        max_file_mb: int = 64,
        cpu_time_s: float | None = None,
        network: bool = False,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        ro_binds: Sequence[str] = (),
        workspace: str | os.PathLike[str] | None = None,
        start_timeout_s: float = 30.0,
        cgroups: CgroupMode = "auto",
    ) -> None:
        self.timeout_s = float(_positive("timeout_s", timeout_s))
        self.memory_mb: int = _positive("memory_mb", memory_mb, integer=True)
        self.max_processes: int = _positive("max_processes", max_processes, integer=True)
        self.max_output_bytes: int = _positive("max_output_bytes", max_output_bytes, integer=True)
        self.max_file_mb: int = _positive("max_file_mb", max_file_mb, integer=True)
        cpu = _positive("cpu_time_s", cpu_time_s, optional=True)
        self.cpu_time_s = float(cpu) if cpu is not None else max(60.0, 10 * self.timeout_s)
        self.start_timeout_s = float(_positive("start_timeout_s", start_timeout_s))
        if not isinstance(network, bool):
            msg = f"network must be True or False, not {network!r}"
            raise ConfigurationError(msg)
        self.network = network
        self.env = _check_env(env)
        if cgroups not in ("auto", "off", "require"):
            msg = f"cgroups must be 'auto', 'off' or 'require', not {cgroups!r}"
            raise ConfigurationError(msg)
        self.cgroups: CgroupMode = cgroups
        if python is None:
            self.python, self._python_prefix = default_python()
        else:
            self.python = os.path.realpath(python)
            self._python_prefix = str(Path(self.python).parent.parent)
        self.ro_binds = tuple(os.path.realpath(p) for p in ro_binds)
        for path in (self.python, *self.ro_binds):
            if not os.path.exists(path):
                msg = f"{path} does not exist"
                raise ConfigurationError(msg)
        found = shutil.which(self.binary)
        if found is None:
            raise SandboxUnavailableError(backend=self.backend, binary=self.binary,
                                          install=self.install)
        self._binary = found
        self._user_workspace = Path(workspace).resolve() if workspace is not None else None
        if self._user_workspace is not None and not self._user_workspace.is_dir():
            msg = f"workspace {self._user_workspace} is not a directory"
            raise ConfigurationError(msg)
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._cgroup: Cgroup | None = None
        self._session_dir: Path | None = None
        self._rbuf = bytearray()
        self._stderr = bytearray()
        self._stderr_thread: threading.Thread | None = None
        self._count = 0
        self._closed = False
        self._workspace_dir: Path | None = None
        self.limits: Mapping[str, str] = MappingProxyType({})

    # -- public ------------------------------------------------------------------

    @property
    def workspace(self) -> Path:
        """The host directory mounted writable at ``/workspace`` (made on first start)."""
        with self._lock:
            return self._ensure_dirs()

    @property
    def running(self) -> bool:
        """True while the sandbox process is alive."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    def start(self) -> None:
        """Start the sandbox process now (the first :meth:`run` does it otherwise)."""
        with self._lock:
            if self._closed:
                raise SandboxClosedError("sandbox")
            if not self.running:
                self._spawn()

    def run(self, code: str, *, language: Language = "python",
            timeout_s: float | None = None) -> ExecutionResult:
        """Run one cell in the session; see :class:`~langchain_secure.sandbox.CodeSandbox`.

        Args:
            code: Python source (the last expression's value is returned like a
                notebook's ``Out``), or a shell command when ``language="bash"``.
            language: ``"python"`` or ``"bash"``.
            timeout_s: Wall-clock limit for this call; default: the sandbox's.
        """
        language = _check_language(language)
        if not isinstance(code, str):
            msg = f"code must be a string, not {type(code).__name__}"
            raise ConfigurationError(msg)
        limit = self.timeout_s if timeout_s is None else float(
            _positive("timeout_s", timeout_s))
        with self._lock:
            if self._closed:
                raise SandboxClosedError("sandbox")
            if not self.running:
                self._spawn()
            started = time.perf_counter()
            request = {"op": "exec", "code": code, "language": language,
                       "max_output": self.max_output_bytes,
                       "max_rich": max(1 << 20, self.max_output_bytes)}
            try:
                self._send(request)
                frame = self._receive(started + limit)
            except _Dead:
                return self._died(started)
            if frame is None:
                self._kill()
                return self._lost(started, "timeout", ExecutionError(
                    "TimeoutError", f"the code ran longer than {limit:g} s and was killed; "
                    "the session was restarted and its variables are lost"))
            self._count = int(frame.get("execution_count") or self._count + 1)
            return self._result(frame, time.perf_counter() - started)

    def close(self) -> None:
        """Kill the sandbox and delete its workspace (unless you passed ``workspace``)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._kill()
            if self._session_dir is not None:
                shutil.rmtree(self._session_dir, ignore_errors=True)
                self._session_dir = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self.running else "idle")
        return f"{type(self).__name__}({state}, timeout_s={self.timeout_s:g})"

    # -- for subclasses --------------------------------------------------------------

    def _command(self, session_dir: Path, workspace: Path) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def _use_cgroup(self) -> bool:
        return True

    def _rlimits(self) -> list[tuple[int, int]]:
        """The rlimits set on the sandbox process tree (before exec)."""
        limits = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_FSIZE, self.max_file_mb << 20),
            (resource.RLIMIT_CPU, int(self.cpu_time_s)),
            (resource.RLIMIT_NOFILE, 1024),
        ]
        cgroup = self._cgroup
        if cgroup is None or not cgroup.limits_memory:
            limits.append((resource.RLIMIT_AS, self.memory_mb << 20))
        if cgroup is None or not cgroup.limits_pids:
            limits.append((resource.RLIMIT_NPROC, self.max_processes))
        return limits

    def _oom_killed(self) -> bool:
        """True when the kernel killed a process of this session for memory."""
        return self._cgroup is not None and self._cgroup.oom_killed()

    def _terminate(self) -> None:
        """Kill every process of the sandbox (the process group and the cgroup)."""
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    # -- internals -----------------------------------------------------------------

    def _ensure_dirs(self) -> Path:
        if self._session_dir is None:
            self._session_dir = Path(tempfile.mkdtemp(prefix=f"lcs-{self.backend}-"))
        if self._workspace_dir is None:
            if self._user_workspace is not None:
                self._workspace_dir = self._user_workspace
            else:
                self._workspace_dir = self._session_dir / "workspace"
                self._workspace_dir.mkdir(mode=0o700)
        return self._workspace_dir

    def _write_etc(self, session_dir: Path) -> Path:
        etc = session_dir / "etc"
        if etc.exists():
            return etc
        etc.mkdir()
        (etc / "passwd").write_text(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"sandbox:x:65534:65534:sandbox:{WORKSPACE}:/bin/sh\n")
        (etc / "group").write_text("root:x:0:\nsandbox:x:65534:\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
        # Copies, not bind mounts: a few small files the dynamic linker, time zone
        # and /usr/bin alternatives need; resolver and CA files only with network.
        names = ["ld.so.cache", "localtime", "alternatives"]
        if self.network:
            names += ["resolv.conf", "ssl"]
        for name in names:
            source = Path("/etc") / name
            with contextlib.suppress(OSError):
                if source.is_dir():
                    shutil.copytree(source, etc / name, symlinks=True)
                elif source.exists():
                    shutil.copyfile(source, etc / name)
        return etc

    def _launch_env(self) -> dict[str, str]:
        # The runtime itself gets a minimal environment too: bwrap's PID 1 keeps it,
        # and /proc/1/environ is readable inside the sandbox.
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

    def _sandbox_env(self) -> dict[str, str]:
        return {"PATH": SANDBOX_PATH, "HOME": WORKSPACE, "TMPDIR": "/tmp",  # noqa: S108
                "LANG": "C.UTF-8", **self.env}

    def _spawn(self) -> None:
        workspace = self._ensure_dirs()
        assert self._session_dir is not None
        self._write_etc(self._session_dir)
        if self._cgroup is None and self.cgroups != "off" and self._use_cgroup():
            self._cgroup = Cgroup.create(memory_bytes=self.memory_mb << 20,
                                         max_pids=self.max_processes)
            if self._cgroup is None and self.cgroups == "require":
                raise SandboxStartError(backend=self.backend,
                                        reason="cgroups='require' but no cgroup could be made")
        cgroup = self._cgroup
        self.limits = MappingProxyType(self._describe_limits())
        rlimits = self._rlimits()

        def preexec() -> None:  # runs in the child between fork and exec
            if cgroup is not None:
                cgroup.join()
            for which, value in rlimits:
                resource.setrlimit(which, (value, value))

        argv = self._command(self._session_dir, workspace)
        self._rbuf = bytearray()
        self._stderr = bytearray()
        try:
            proc: subprocess.Popen[bytes] = _SPAWNER.run(lambda: subprocess.Popen(  # noqa: S603
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self._launch_env(), cwd=self._session_dir, start_new_session=True,
                preexec_fn=preexec, close_fds=True, bufsize=0))
        except OSError as exc:
            raise SandboxStartError(backend=self.backend, reason=str(exc)) from exc
        self._proc = proc
        thread = threading.Thread(target=self._drain_stderr, args=(proc,), daemon=True,
                                  name=f"{self.backend}-stderr")
        thread.start()
        self._stderr_thread = thread
        try:
            ready = self._receive(time.perf_counter() + self.start_timeout_s)
        except _Dead:
            ready = None
        if ready is None or ready.get("op") != "ready":
            self._kill()
            thread.join(timeout=1)
            reason = "it exited before it was ready" if ready is None and proc.poll() \
                is not None else f"no ready message within {self.start_timeout_s:g} s"
            raise SandboxStartError(backend=self.backend, reason=reason,
                                    stderr=bytes(self._stderr).decode("utf-8", "replace"))
        self._count = 0

    def _describe_limits(self) -> dict[str, str]:
        cgroup = self._cgroup
        return {
            "memory": "cgroup" if cgroup is not None and cgroup.limits_memory else "rlimit-as",
            "processes": "cgroup" if cgroup is not None and cgroup.limits_pids else (
                "rlimit-nproc" if os.geteuid() != 0 else "none"),
            "file_size": "rlimit-fsize",
            "cpu_time": "rlimit-cpu",
        }

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        stream = proc.stderr
        assert stream is not None
        fd = stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            room = _STDERR_CAP - len(self._stderr)
            if room > 0:
                self._stderr += chunk[:room]

    def _send(self, message: Mapping[str, Any]) -> None:
        proc = self._proc
        assert proc is not None
        assert proc.stdin is not None
        body = json.dumps(message).encode()
        try:
            proc.stdin.write(_HEADER.pack(len(body)) + body)
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise _Dead from exc

    def _max_frame(self) -> int:
        return 4 * self.max_output_bytes + 16 * max(1 << 20, self.max_output_bytes) + (1 << 20)

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        """The next frame; ``None`` when the deadline passed first."""
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        need = _HEADER.size
        length: int | None = None
        while True:
            if length is None and len(self._rbuf) >= _HEADER.size:
                (length,) = _HEADER.unpack_from(self._rbuf)
                if length > self._max_frame():
                    raise _Dead
                need = _HEADER.size + length
            if length is not None and len(self._rbuf) >= need:
                body = bytes(self._rbuf[_HEADER.size:need])
                del self._rbuf[:need]
                try:
                    frame = json.loads(body)
                except ValueError as exc:
                    raise _Dead from exc
                if not isinstance(frame, dict):
                    raise _Dead
                return frame
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, max(65536, min(need - len(self._rbuf), 1 << 22)))
            if not chunk:
                raise _Dead
            self._rbuf += chunk

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None:
            self._terminate()
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed above
                proc.kill()
                proc.wait()
            if self._stderr_thread is not None:
                self._stderr_thread.join(timeout=2)
            if proc.stderr is not None:
                with contextlib.suppress(OSError):
                    proc.stderr.close()
        self._proc = None
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None

    def _died(self, started: float) -> ExecutionResult:
        proc = self._proc
        oom = self._oom_killed()
        code = proc.poll() if proc is not None else None
        if code is None and proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(timeout=2)
        self._kill()
        if oom:
            return self._lost(started, "memory", ExecutionError(
                "MemoryError", f"the sandbox ran out of memory ({self.memory_mb} MB) and was "
                "killed; the session was restarted and its variables are lost"))
        if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            return self._lost(started, "cpu", ExecutionError(
                "SandboxCrashed", f"the session used its {self.cpu_time_s:g} s of CPU time "
                "and was killed; its variables are lost"))
        return self._lost(started, "crashed", ExecutionError(
            "SandboxCrashed", f"the sandbox process exited (status {code}); the session "
            "was restarted and its variables are lost"))

    def _lost(self, started: float, reason: KillReason, error: ExecutionError) -> ExecutionResult:
        return ExecutionResult(
            error=error, exit_code=None, duration_s=time.perf_counter() - started,
            timed_out=reason == "timeout", killed=reason, state_lost=True,
            execution_count=None, backend=self.backend)

    def _result(self, frame: Mapping[str, Any], duration: float) -> ExecutionResult:
        cap = self.max_output_bytes
        truncated = frame.get("truncated") is True

        def text(value: Any) -> str:
            nonlocal truncated
            if not isinstance(value, str):
                return ""
            data = value.encode("utf-8", "replace")
            if len(data) > cap:
                truncated = True
                return data[:cap].decode("utf-8", "ignore")
            return value

        results: list[RichResult] = []
        raw_results = frame.get("results")
        for item in raw_results if isinstance(raw_results, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
                continue
            data = {str(k): v for k, v in item["data"].items() if isinstance(v, str)}
            if "text/plain" in data:
                data["text/plain"] = text(data["text/plain"])
            for key in [k for k in data if k.startswith("image/") and k != "image/svg+xml"]:
                try:
                    base64.b64decode(data[key], validate=True)
                except ValueError:
                    del data[key]
            results.append(RichResult(MappingProxyType(data),
                                      is_main_result=item.get("is_main_result") is True))
        error = None
        raw_error = frame.get("error")
        if isinstance(raw_error, dict):
            error = ExecutionError(name=text(raw_error.get("name")) or "Error",
                                   value=text(raw_error.get("value")),
                                   traceback=text(raw_error.get("traceback")))
        exit_code = frame.get("exit_code")
        return ExecutionResult(
            stdout=text(frame.get("stdout")),
            stderr=text(frame.get("stderr")),
            results=tuple(results),
            error=error,
            exit_code=exit_code if isinstance(exit_code, int) else 1,
            duration_s=duration,
            truncated=truncated,
            execution_count=self._count,
            backend=self.backend,
        )
