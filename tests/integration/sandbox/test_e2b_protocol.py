"""E2BSandbox against a local stand-in speaking E2B's HTTP protocol, and live when keyed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from langchain_secure.sandbox import E2BSandbox, SandboxError, SandboxPool
from langchain_secure.sandbox.e2b import THREAD_ID_METADATA_KEY

from .e2b_server import FakeE2B

pytest.importorskip("e2b_code_interpreter")
pytestmark = pytest.mark.integration

SECRET = "host-secret-e2b-7f3a"
STDOUT = {"type": "stdout", "text": "hello\n", "timestamp": 1}
STDERR = {"type": "stderr", "text": "warning\n", "timestamp": 2}
RESULT = {"type": "result", "text": "42", "html": "<b>42</b>", "png": "iVBORw0KGgo=",
          "is_main_result": True}
DISPLAY = {"type": "result", "text": "'shown'", "is_main_result": False}
ERROR = {"type": "error", "name": "ZeroDivisionError", "value": "division by zero",
         "traceback": "Traceback...\nZeroDivisionError: division by zero"}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeE2B]:
    monkeypatch.setenv("LCS_TEST_SECRET", SECRET)
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    with FakeE2B() as server:
        server.script["x"] = [STDOUT, STDERR, DISPLAY, RESULT,
                              {"type": "number_of_executions", "execution_count": 7}]
        server.script["1/0"] = [ERROR, {"type": "number_of_executions", "execution_count": 8}]
        server.script["spam"] = [{"type": "stdout", "text": "y" * 1000, "timestamp": i}
                                 for i in range(50)]
        server.script["slow"] = [STDOUT]
        server.delay["slow"] = 5
        yield server


def make(server: FakeE2B, **kwargs: object) -> E2BSandbox:
    return E2BSandbox(api_key="e2b_test_key", api_url=server.url, sandbox_url=server.url,
                      http_version="1.1", **kwargs)  # type: ignore[arg-type]


def test_create_run_and_kill_requests(fake: FakeE2B) -> None:
    with make(fake, env={"MODE": "test"}, thread_id="thread-9", template="tmpl",
              metadata={"team": "a"}) as sandbox:
        result = sandbox.run("x")
        assert sandbox.sandbox_id == "sbx-1"
    create = fake.bodies("/v2/sandboxes")
    assert create == [{"templateID": "tmpl", "timeout": 600, "allow_internet_access": False,
                       "metadata": {"team": "a", THREAD_ID_METADATA_KEY: "thread-9"},
                       "envVars": {"MODE": "test"}}]
    assert fake.bodies("/execute") == [{"code": "x", "context_id": None, "language": "python",
                                        "env_vars": None}]
    assert fake.paths("DELETE") == ["/sandboxes/sbx-1"]
    assert SECRET not in repr(fake.requests)
    assert (result.stdout, result.stderr, result.text, result.status) == (
        "hello\n", "warning\n", "42", "ok")
    assert result.results[0].data == {"text/plain": "'shown'"}
    assert dict(result.results[1].data) == {"text/plain": "42", "text/html": "<b>42</b>",
                                            "image/png": "iVBORw0KGgo="}
    assert result.execution_count == 7


def test_error_and_shell(fake: FakeE2B) -> None:
    with make(fake, network=True) as sandbox:
        result = sandbox.run("1/0")
        sandbox.run("ls", language="bash")
    assert result.status == "error"
    assert result.error is not None
    assert (result.error.name, result.error.value) == ("ZeroDivisionError", "division by zero")
    assert result.error.traceback.endswith("ZeroDivisionError: division by zero")
    assert (result.exit_code, result.execution_count) == (1, 8)
    assert fake.bodies("/v2/sandboxes")[0]["allow_internet_access"] is True
    assert fake.bodies("/execute")[1]["language"] == "bash"


def test_timeout_kills_the_sandbox_and_next_call_gets_a_new_one(fake: FakeE2B) -> None:
    with make(fake) as sandbox:
        result = sandbox.run("slow", timeout_s=0.5)
        assert (result.status, result.timed_out, result.killed, result.state_lost) == (
            "timeout", True, "timeout", True)
        assert result.error is not None
        assert result.error.name == "TimeoutError"
        assert fake.paths("DELETE") == ["/sandboxes/sbx-1"]
        assert sandbox.run("x").text == "42"
        assert sandbox.sandbox_id == "sbx-3"  # POSTs: create, execute, create
    assert fake.paths("DELETE") == ["/sandboxes/sbx-1", "/sandboxes/sbx-3"]


def test_output_is_capped(fake: FakeE2B) -> None:
    with make(fake, max_output_bytes=2500) as sandbox:
        result = sandbox.run("spam")
    assert (len(result.stdout), result.truncated) == (2500, True)
    assert result.error is not None
    assert result.error.name == "OutputLimitExceeded"


def test_sdk_failure_kills_and_raises(fake: FakeE2B) -> None:
    fake.fail["boom"] = 500
    with make(fake) as sandbox:
        sandbox.run("x")
        with pytest.raises(SandboxError, match="failed and was killed: 500"):
            sandbox.run("boom")
        assert sandbox.sandbox_id is None
        assert fake.paths("DELETE") == ["/sandboxes/sbx-1"]


async def test_async_client(fake: FakeE2B) -> None:
    async with make(fake, thread_id="t-async") as sandbox:
        result = await sandbox.arun("x")
        timed_out = await sandbox.arun("slow", timeout_s=0.5)
    assert (result.text, result.stdout) == ("42", "hello\n")
    assert (timed_out.status, timed_out.state_lost) == ("timeout", True)
    assert fake.bodies("/v2/sandboxes")[0]["metadata"] == {THREAD_ID_METADATA_KEY: "t-async"}
    assert fake.paths("DELETE") == ["/sandboxes/sbx-1"]


def test_pool_sets_thread_id_metadata(fake: FakeE2B) -> None:
    with SandboxPool(lambda: make(fake), warm=0) as pool:
        pool.run("conversation-1", "x")
    assert fake.bodies("/v2/sandboxes")[0]["metadata"] == {
        THREAD_ID_METADATA_KEY: "conversation-1"}
    assert fake.paths("DELETE") == ["/sandboxes/sbx-1"]


@pytest.mark.skipif(not os.environ.get("E2B_API_KEY"), reason="E2B_API_KEY is not set")
def test_live_e2b() -> None:
    with E2BSandbox(timeout_s=60, env={"MODE": "live"}, thread_id="live-test") as sandbox:
        sandbox.run("import os; mode = os.environ['MODE']")
        assert sandbox.run("mode").text == "'live'"
        result = sandbox.run("import urllib.request\n"
                             "urllib.request.urlopen('https://example.com', timeout=5)")
        assert result.status == "error"
