# mypy: ignore-errors
# (Runs inside the sandbox on whatever Python 3.8+ it has, stdlib only; kept unannotated.)
"""The REPL server that runs *inside* a local sandbox (stdlib only, Python 3.8+).

It is started once per session and runs cells in one persistent namespace.
Protocol over its original stdin/stdout, both directions the same framing: a
4-byte big-endian length, then that many bytes of UTF-8 JSON.

* the server first sends ``{"op": "ready", "pid": ..., "python": "3.11.7"}``;
* the host sends ``{"op": "exec", "code": ..., "language": "python"|"bash",
  "max_output": N, "max_rich": N}``; the server answers with one
  ``{"op": "result", ...}`` frame per request;
* ``{"op": "exit"}`` makes the server exit.

Output of the code (``print``, C extensions, subprocesses) never reaches the
protocol channel: file descriptors 1 and 2 are pipes the server drains into
buffers capped at ``max_output`` bytes, and the rest is counted and dropped.

With ``--reaper`` and started as PID 1 of a PID namespace it forks: PID 1 stays
behind as a reaper and the child serves. (Not used by the shipped backends:
bubblewrap has its own PID 1, and under gVisor the server is PID 1 itself.)
"""

import ast
import base64
import builtins
import contextlib
import errno
import io
import json
import linecache
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import traceback

_HEADER = struct.Struct(">I")
_MAX_REQUEST = 64 * 1024 * 1024


def _reap_forever(child):  # pragma: no cover - runs as PID 1 in the sandbox
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    os.closerange(0, 1 << 16)  # the protocol pipes must close when the server dies
    status = 1
    while True:
        try:
            pid, wstatus = os.wait()
        except ChildProcessError:
            os._exit(status)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(wstatus) & 0xFF)


class _Capture:
    """A byte buffer that keeps the first ``limit`` bytes and counts the rest."""

    def __init__(self, limit):
        self.limit = limit
        self.parts = []
        self.size = 0
        self.truncated = False
        self.lock = threading.Lock()

    def add(self, data):
        if not data:
            return
        with self.lock:
            room = self.limit - self.size
            if room <= 0:
                self.truncated = True
                return
            if len(data) > room:
                data = data[:room]
                self.truncated = True
            self.parts.append(data)
            self.size += len(data)

    def full(self):
        return self.size >= self.limit

    def text(self):
        return b"".join(self.parts).decode("utf-8", "replace")


class _Writer(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` for the code: writes into a capture."""

    def __init__(self, server, name):
        self._server = server
        self._name = name

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return 1 if self._name == "stdout" else 2

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        capture = self._server.captures[self._name]
        if capture.full():
            if text:
                capture.truncated = True
        else:
            capture.add(text.encode("utf-8", "backslashreplace"))
        return len(text)

    def flush(self):
        return None


class Server:
    def __init__(self, proto_in, proto_out):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.pid = os.getpid()
        self.count = 0
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self.namespace["display"] = self._display
        self.results = []
        self.max_rich = 1 << 20
        self.rich_truncated = False
        self.captures = {"stdout": _Capture(0), "stderr": _Capture(0)}
        self.fd_lock = threading.Lock()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.close(out_w)
        os.close(err_w)
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
        self.fd_streams = {out_r: "stdout", err_r: "stderr"}
        sys.stdout = _Writer(self, "stdout")
        sys.stderr = _Writer(self, "stderr")
        sys.__stdout__ = sys.stdout
        sys.__stderr__ = sys.stderr
        thread = threading.Thread(target=self._drain_forever, name="drain", daemon=True)
        thread.start()

    # -- output from file descriptors 1 and 2 (subprocesses, C code) ---------

    def _drain_once(self, fd):
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            return False
        if not data:
            return False
        self.captures[self.fd_streams[fd]].add(data)
        return True

    def _drain_forever(self):
        fds = list(self.fd_streams)
        while True:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            with self.fd_lock:
                for fd in ready:
                    self._drain_once(fd)

    def _drain_now(self):
        with self.fd_lock:
            for fd in self.fd_streams:
                while self._drain_once(fd):
                    pass

    # -- protocol ------------------------------------------------------------

    def _read_exact(self, n):
        chunks = []
        while n:
            try:
                chunk = os.read(self.proto_in, n)
            except InterruptedError:
                continue
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive(self):
        header = self._read_exact(_HEADER.size)
        if header is None:
            return None
        (length,) = _HEADER.unpack(header)
        if length > _MAX_REQUEST:
            return None
        body = self._read_exact(length)
        return None if body is None else json.loads(body.decode("utf-8"))

    def send(self, message):
        if os.getpid() != self.pid:  # a forked child of the code: never speak
            os._exit(0)
        body = json.dumps(message, ensure_ascii=False).encode("utf-8", "replace")
        view = memoryview(_HEADER.pack(len(body)) + body)
        while view:
            try:
                written = os.write(self.proto_out, view)
            except InterruptedError:
                continue
            view = view[written:]

    # -- running cells ---------------------------------------------------------

    def _bundle(self, value, main):
        data = {}
        text = None
        try:
            text = repr(value)
        except BaseException as exc:
            text = f"<repr failed: {type(exc).__name__}: {exc}>"
        data["text/plain"] = text
        for method, mime in (("_repr_html_", "text/html"), ("_repr_markdown_", "text/markdown"),
                             ("_repr_svg_", "image/svg+xml"), ("_repr_latex_", "text/latex"),
                             ("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg"),
                             ("_repr_json_", "application/json")):
            func = getattr(value, method, None)
            if not callable(func):
                continue
            try:
                out = func()
            except BaseException:  # noqa: S112 - a broken _repr_*_ only loses that format
                continue
            if out is None:
                continue
            if isinstance(out, bytes):
                out = base64.b64encode(out).decode("ascii")
            elif not isinstance(out, str):
                out = json.dumps(out, default=repr)
            data[mime] = out
        if "image/png" not in data and callable(getattr(value, "savefig", None)):
            try:  # a matplotlib figure
                buf = io.BytesIO()
                value.savefig(buf, format="png")
                data["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
            except BaseException:  # noqa: S110 - no image, the text/plain stays
                pass
        capped = {}
        for mime, content in data.items():
            limit = self.max_output if mime.startswith("text/") else self.max_rich
            encoded = content.encode("utf-8", "replace")
            if len(encoded) > limit:
                self.rich_truncated = True
                if not mime.startswith("text/"):
                    continue
                content = encoded[:limit].decode("utf-8", "ignore")
            capped[mime] = content
        return {"data": capped, "is_main_result": main}

    def _display(self, *values):
        for value in values:
            self.results.append(self._bundle(value, False))

    def _error(self, exc, tb):
        lines = traceback.format_exception(type(exc), exc, tb)
        text = "".join(lines)
        if len(text) > self.max_output:
            text = "...\n" + text[-self.max_output:]
        return {"name": type(exc).__name__, "value": str(exc), "traceback": text}

    def _run_python(self, code):
        filename = f"<cell-{self.count}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            tree = ast.parse(code, filename, "exec")
        except SyntaxError as exc:
            return self._error(exc, None)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        try:
            try:
                exec(compile(tree, filename, "exec"), self.namespace)  # noqa: S102
                if last is not None:
                    value = eval(compile(last, filename, "eval"), self.namespace)  # noqa: S307
                    if value is not None:
                        self.namespace["_"] = value
                        self.results.append(self._bundle(value, True))
            finally:
                if os.getpid() != self.pid:  # a child forked by the code: leave quietly
                    os._exit(0)
        except BaseException as exc:  # SystemExit and Ctrl-C end the cell only
            return self._error(exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        return None

    def _run_shell(self, code):
        try:
            proc = subprocess.run(["/bin/sh", "-c", code], stdin=subprocess.DEVNULL,  # noqa: S603
                                  check=False)
        except OSError as exc:
            return 127, {"name": type(exc).__name__, "value": str(exc), "traceback": ""}
        return proc.returncode, None

    def _reap_zombies(self):
        """Wait for the code's exited children (a fork bomb's), so they free their PIDs."""
        try:
            entries = os.listdir("/proc")
        except OSError:
            return
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                with open("/proc/" + entry + "/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()
            if len(fields) > 1 and fields[0] == b"Z" and int(fields[1]) == self.pid:
                with contextlib.suppress(OSError):
                    os.waitpid(int(entry), os.WNOHANG)

    def execute(self, request):
        self.max_output = int(request.get("max_output", 65536))
        self.max_rich = max(int(request.get("max_rich", 1 << 20)), self.max_output)
        self.captures = {"stdout": _Capture(self.max_output), "stderr": _Capture(self.max_output)}
        self.results = []
        self.rich_truncated = False
        self.count += 1
        code = request.get("code", "")
        if request.get("language") == "bash":
            exit_code, error = self._run_shell(code)
        else:
            error = self._run_python(code)
            exit_code = 0 if error is None else 1
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: S110 - the code replaced sys.stdout with a broken one
            pass
        self._drain_now()
        self._reap_zombies()
        out, err = self.captures["stdout"], self.captures["stderr"]
        return {
            "op": "result",
            "stdout": out.text(),
            "stderr": err.text(),
            "results": self.results,
            "error": error,
            "exit_code": exit_code,
            "truncated": out.truncated or err.truncated or self.rich_truncated,
            "execution_count": self.count,
        }

    def serve(self):
        version = ".".join(map(str, sys.version_info[:3]))
        self.send({"op": "ready", "pid": self.pid, "python": version})
        while True:
            try:
                request = self.receive()
            except (ValueError, UnicodeDecodeError):
                request = None
            if request is None or request.get("op") == "exit":
                return
            try:
                response = self.execute(request)
            except BaseException as exc:  # the server survives everything
                response = {"op": "result", "stdout": "", "stderr": "", "results": [],
                            "error": self._error(exc, exc.__traceback__), "exit_code": 1,
                            "truncated": False, "execution_count": self.count}
            self.send(response)


def main():
    if "--reaper" in sys.argv[1:] and os.getpid() == 1:
        child = os.fork()
        if child:
            _reap_forever(child)
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        os.setsid()
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
    Server(proto_in, proto_out).serve()


if __name__ == "__main__":
    main()
