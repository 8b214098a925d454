"""Escape attempts against the local backends: each must fail in an exact, known way."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from langchain_secure.sandbox import ExecutionResult, SandboxPool
from langchain_secure.sandbox._local import LocalSandbox

pytestmark = pytest.mark.integration

Make = Callable[..., LocalSandbox]
REPO_FILE = Path(__file__).resolve().parents[3] / "pyproject.toml"


def error_name(result: ExecutionResult) -> str | None:
    return result.error.name if result.error else None


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def still_alive(pids: set[int]) -> set[int]:
    """The pids still running, after letting the kernel finish exits in flight (bounded)."""
    for _ in range(100):
        left = {pid for pid in pids if alive(pid)}
        if not left:
            return left
        time.sleep(0.05)
    return left


def test_no_network(make: Make) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    sandbox = make()
    tcp = sandbox.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)")
    dns = sandbox.run("import socket\nsocket.getaddrinfo('example.com', 443)")
    out = sandbox.run("import socket\nsocket.create_connection(('1.1.1.1', 53), 2)")
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
    assert (tcp.status, error_name(tcp)) == ("error", "ConnectionRefusedError")
    assert (dns.status, error_name(dns)) == ("error", "gaierror")
    assert out.status == "error"
    assert error_name(out) in ("OSError", "TimeoutError")  # ENETUNREACH, no route


def test_host_files_are_invisible(make: Make) -> None:
    assert REPO_FILE.exists()
    sandbox = make()
    for path in ("/etc/shadow", str(REPO_FILE), "/root/.bash_history"):
        result = sandbox.run(f"open({path!r}).read()")
        assert (result.status, error_name(result)) == ("error", "FileNotFoundError"), path


def test_no_host_secret_anywhere(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "lcs-secret-9c1d2e"
    monkeypatch.setenv("LCS_TEST_SECRET", secret)
    sandbox = make(env={"GIVEN": "yes"})
    results = [
        sandbox.run("open('/proc/1/environ', 'rb').read()"),
        sandbox.run("import os\nsorted(set(os.environ) - {'PWD'})"),
        sandbox.run("cat /proc/*/environ; env", language="bash"),
        sandbox.run("import subprocess\nsubprocess.run(['grep', '-r', 'lcs-secret', '/proc/'],"
                    " capture_output=True).stdout"),
    ]
    assert results[1].text == "['GIVEN', 'HOME', 'LANG', 'PATH', 'TMPDIR']"
    for result in results:
        assert secret not in repr(result)


def test_writes_stay_in_the_workspace(make: Make, backend: str, tmp_path: Path) -> None:
    target = tmp_path / "escaped"
    sandbox = make()
    outside = sandbox.run(f"open({str(target)!r}, 'w').write('x')")
    usr = sandbox.run("open('/usr/escaped', 'w').write('x')")
    etc = sandbox.run("open('/etc/passwd', 'a').write('x')")
    inside = sandbox.run("open('/workspace/ok.txt', 'w').write('fine')")
    assert (outside.status, error_name(outside)) == ("error", "FileNotFoundError")
    # bubblewrap: read-only mount (EROFS); gVisor: the user does not own /usr (EACCES).
    expected = {"bubblewrap": "OSError", "gvisor": "PermissionError"}[backend]
    assert (usr.status, error_name(usr)) == ("error", expected)
    assert etc.status == "error"
    assert error_name(etc) in ("OSError", "PermissionError")
    assert inside.text == "4"
    assert not target.exists()
    assert not Path("/usr/escaped").exists()
    assert (sandbox.workspace / "ok.txt").read_text() == "fine"


def test_fork_bomb_hits_the_process_limit(make: Make) -> None:
    sandbox = make()
    result = sandbox.run("import os\nwhile True:\n    os.fork()")
    assert (result.status, error_name(result), result.killed) == (
        "error", "BlockingIOError", None)
    assert sandbox.run("1 + 1").text == "2"  # the session survived


def test_memory_bomb(make: Make, backend: str) -> None:
    sandbox = make()
    sandbox.run("kept = 1")
    result = sandbox.run("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))")
    if sandbox.limits["memory"] == "cgroup":  # bubblewrap with cgroups: the OOM killer
        assert (result.status, result.killed, error_name(result), result.state_lost) == (
            "killed", "memory", "MemoryError", True)
        assert error_name(sandbox.run("kept")) == "NameError"
    else:  # RLIMIT_AS (gVisor, or bubblewrap without cgroups): Python's MemoryError
        assert (result.status, result.killed, error_name(result)) == (
            "error", None, "MemoryError")
        assert sandbox.run("kept").text == "1"


def test_infinite_loop_is_killed_without_leftovers(make: Make) -> None:
    sandbox = make(timeout_s=2)
    sandbox.run("setsid sleep 1000 > /dev/null 2>&1 &", language="bash")
    sandbox.run("x = 1")
    before = {pid for pid in descendants(os.getpid()) if alive(pid)}
    assert before  # the sandbox's processes, the detached sleep among them
    result = sandbox.run("while True:\n    pass")
    assert (result.status, result.timed_out, result.killed, result.state_lost) == (
        "timeout", True, "timeout", True)
    assert error_name(result) == "TimeoutError"
    assert still_alive(before) == set()
    assert still_alive(descendants(os.getpid())) == set()
    assert error_name(sandbox.run("x")) == "NameError"  # a fresh session


def test_huge_output_is_capped(make: Make) -> None:
    def rss_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    # a ceiling for a runaway, not a speed expectation: pushing 100 MB through gVisor
    # took longer than the suite's 3 s default on a loaded machine
    sandbox = make(max_output_bytes=4096, timeout_s=60)
    sandbox.run("0")
    before = rss_kb()
    printed = sandbox.run("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2**20)")
    shell = sandbox.run("head -c 100000000 /dev/zero", language="bash")
    grown_mb = (rss_kb() - before) / 1024
    assert (printed.status, printed.truncated, printed.stdout) == ("ok", True, "x" * 4096)
    assert (shell.status, shell.truncated, len(shell.stdout)) == ("ok", True, 4096)
    assert grown_mb < 20


def test_signals_to_the_parent_leave_host_and_pool_alive(backend: str, make: Make) -> None:
    pool = SandboxPool(lambda: make(), warm=0)
    try:
        ppid = pool.run("t", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
        everyone = pool.run("t", "kill -9 -1", language="bash")
        after = pool.run("t", "'alive'")
    finally:
        pool.close()
    if backend == "bubblewrap":
        # bwrap's PID 1 ignores signals from inside; kill -1 kills the REPL itself.
        assert (ppid.status, ppid.exit_code) == ("ok", 0)
        assert (everyone.status, everyone.killed, error_name(everyone)) == (
            "killed", "crashed", "SandboxCrashed")
    else:
        # under gVisor the REPL is PID 1: its "parent" is PID 0, its own process group.
        assert (ppid.status, ppid.killed, error_name(ppid)) == (
            "killed", "crashed", "SandboxCrashed")
        assert (everyone.status, everyone.killed) == ("error", None)
    assert after.text == "'alive'"
