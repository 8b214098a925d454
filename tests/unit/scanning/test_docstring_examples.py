"""Every ```python example in the scanning package's docstrings runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import langchain_secure.scanning as scanning

PACKAGE = Path(scanning.__file__).parent
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        nodes = [
            tree,
            *(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))),
        ]
        for node in nodes:
            doc = ast.get_docstring(node)
            for number, block in enumerate(BLOCK.findall(doc or "")):
                name = getattr(node, "name", "module")
                found.append((f"{path.stem}.{name}[{number}]", _dedent(block)))
    return found


def _dedent(block: str) -> str:
    import textwrap

    return textwrap.dedent(block)


EXAMPLES = examples()


def test_every_public_class_has_an_example() -> None:
    names = {name.split("[")[0] for name, _ in EXAMPLES}
    for public in scanning.__all__:
        obj = getattr(scanning, public)
        if isinstance(obj, type) and obj.__module__.startswith("langchain_secure.scanning"):
            module = obj.__module__.rsplit(".", 1)[-1]
            if public in ("Detector", "CacheInfo", "Signature", "ScanningError"):
                continue  # a protocol and plain records: documented, no behaviour to show
            assert f"{module}.{public}" in names, public


@pytest.mark.parametrize(("name", "code"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_example_runs(name: str, code: str) -> None:
    if "build_classifier" in code or "PromptInjectionDetector" in code:
        pytest.importorskip("torch")
    exec(compile(code, name, "exec"), {})
