from __future__ import annotations

import shutil

import pytest
from pydantic import ValidationError

from langchain_secure.errors import ConfigurationError, LangchainSecureError
from langchain_secure.sandbox import (
    BubblewrapSandbox,
    E2BSandbox,
    GVisorSandbox,
    SandboxPool,
    SandboxSpec,
    SandboxUnavailableError,
)
from langchain_secure.sandbox.errors import SANDBOX_UNAVAILABLE_MESSAGE


def test_defaults_and_frozen() -> None:
    spec = SandboxSpec()
    assert (spec.backend, spec.timeout_s, spec.memory_mb, spec.network, spec.env) == (
        "bubblewrap", 30.0, 512, False, {})
    with pytest.raises(ValidationError):
        spec.timeout_s = 5  # type: ignore[misc]


@pytest.mark.parametrize(("data", "loc"), [
    ({"backend": "docker"}, ("backend",)),
    ({"timeout_s": 0}, ("timeout_s",)),
    ({"memory_mb": 16}, ("memory_mb",)),
    ({"colour": "red"}, ("colour",)),
    ({"env": {"1BAD": "x"}}, ("env",)),
    ({"env": {"PATH": "/evil"}}, ("env",)),
    ({"e2b_template": "t"}, ()),
])
def test_invalid_specs_name_the_key(data: dict[str, object], loc: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        SandboxSpec.model_validate(data)
    assert info.value.errors()[0]["loc"] == loc


@pytest.mark.skipif(shutil.which("bwrap") is None or shutil.which("runsc") is None,
                    reason="bwrap and runsc are needed to build local backends")
def test_build_returns_the_backend() -> None:
    sandbox = SandboxSpec(timeout_s=7, memory_mb=128, env={"A": "1"}).build()
    assert isinstance(sandbox, BubblewrapSandbox)
    assert (sandbox.timeout_s, sandbox.memory_mb, sandbox.env) == (7.0, 128, {"A": "1"})
    assert isinstance(SandboxSpec(backend="gvisor").build(), GVisorSandbox)
    assert not sandbox.running  # nothing started yet
    pool = SandboxSpec().pool(max_sessions=2, warm=0)
    assert isinstance(pool, SandboxPool)
    assert pool.max_sessions == 2
    pool.close()


def test_build_e2b_is_lazy() -> None:
    pytest.importorskip("e2b_code_interpreter")
    sandbox = SandboxSpec(backend="e2b", e2b_template="my-template", env={"K": "v"}).build(
        api_key="e2b_unused")
    assert isinstance(sandbox, E2BSandbox)
    assert (sandbox.template, sandbox.env, sandbox.network, sandbox.sandbox_id) == (
        "my-template", {"K": "v"}, False, None)


@pytest.mark.parametrize(("backend", "package"), [("bubblewrap", "bubblewrap"),
                                                  ("gvisor", "runsc")])
def test_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch, backend: str,
                                          package: str) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailableError) as info:
        SandboxSpec(backend=backend).build()  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, LangchainSecureError)
    assert err.install == f"apt-get install {package}"
    assert str(err) == SANDBOX_UNAVAILABLE_MESSAGE.format(
        backend=backend, binary=err.binary, install=err.install)


def test_missing_e2b_sdk_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "e2b_code_interpreter", None)
    with pytest.raises(ImportError, match=r"pip install 'langchain-secure\[e2b\]'") as info:
        E2BSandbox()
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")
@pytest.mark.parametrize("options", [{"timeout_s": 0}, {"memory_mb": -1},
                                     {"max_output_bytes": 1.5}, {"network": "yes"},
                                     {"env": {"A=B": "x"}}, {"cgroups": "maybe"},
                                     {"python": "/nonexistent/python"}])
def test_local_options_are_validated(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        BubblewrapSandbox(**options)  # type: ignore[arg-type]
