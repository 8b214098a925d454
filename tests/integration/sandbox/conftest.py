from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from langchain_secure.sandbox import BubblewrapSandbox, GVisorSandbox
from langchain_secure.sandbox._local import LocalSandbox

BACKENDS = {"bubblewrap": (BubblewrapSandbox, "bwrap"), "gvisor": (GVisorSandbox, "runsc")}
LIMITS = {"timeout_s": 3, "memory_mb": 256, "max_processes": 32, "max_output_bytes": 4096}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    cls, binary = BACKENDS[request.param]
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (apt-get install {cls.install.split()[-1]})")
    return str(request.param)


@pytest.fixture
def make(backend: str) -> Iterator[type[LocalSandbox]]:
    made: list[LocalSandbox] = []
    cls = BACKENDS[backend][0]

    def factory(**kwargs: object) -> LocalSandbox:
        sandbox = cls(**{**LIMITS, **kwargs})  # type: ignore[arg-type]
        made.append(sandbox)
        return sandbox

    yield factory  # type: ignore[misc]
    for sandbox in made:
        sandbox.close()
