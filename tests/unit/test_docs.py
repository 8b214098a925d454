"""The documentation site: every code block runs, every policy loads, the site builds.

* Every fenced ```` ```python ```` block of every page under ``docs/`` is executed:
  a page's blocks run in order in one namespace, in a fresh working directory,
  with ``HF_HUB_OFFLINE=1``. A block that cannot run here (it needs an API key, a
  network service, a real database) carries a visible HTML comment on the line
  before its fence, ``<!-- not-run: <reason> -->``, and is listed in
  ``NOT_RUN`` below: adding one is a conscious act.
* A ```` ```yaml ```` block whose first line is ``# <name>.yaml`` is written to the
  working directory before the page's Python blocks run, so prose can show a
  policy file and code can load it by name.
* Every ```` ```yaml ```` block is valid YAML; one with a top-level ``personas:``
  key is a whole policy and must load with ``load_policy_text``.
* ``docs/reference/policy.md`` equals a fresh render of
  ``scripts/gen_policy_reference.py``.
* ``mkdocs build --strict`` succeeds without a single warning.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from langchain_secure import load_policy_text

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.+?)\s*-->\s*$")
_FILE = re.compile(r"^#\s*(?P<name>[\w.-]+\.ya?ml)\s*$")

# (page, reason) for every block that is shown but not run, in page order.
NOT_RUN: list[tuple[str, str]] = [
    ("audit.md", "needs a PostgreSQL server"),
    ("tracing.md", "needs a Langfuse account (keys in the environment) and a graph"),
]


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None


def blocks(page: str) -> list[Block]:
    """The fenced code blocks of a page (fences at any indentation, e.g. in lists)."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent = opening["indent"]
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{page}:{index + 1}: unclosed code fence"
        body = [line[len(indent):] if line.startswith(indent) else line
                for line in lines[index + 1:end]]
        previous = lines[index - 1] if index else ""
        marker = _NOT_RUN.match(previous)
        found.append(Block(page, index + 1, opening["lang"], "\n".join(body) + "\n",
                           marker["reason"] if marker else None))
        index = end + 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
PYTHON_PAGES = [page for page in PAGES if any(b.lang == "python" for b in blocks(page))]
YAML_BLOCKS = [block for block in ALL_BLOCKS if block.lang == "yaml"]


def test_every_fence_names_its_language() -> None:
    bare = [f"{b.page}:{b.line}" for b in ALL_BLOCKS if not b.lang]
    assert not bare, f"code fences without a language (use text, console, ...): {bare}"


def test_not_run_blocks_are_exactly_the_listed_ones() -> None:
    skipped = [(b.page, b.not_run) for b in ALL_BLOCKS if b.not_run is not None]
    assert skipped == NOT_RUN
    assert all(b.lang == "python" for b in ALL_BLOCKS if b.not_run is not None)


def test_most_python_blocks_run() -> None:
    python = [b for b in ALL_BLOCKS if b.lang == "python"]
    assert len(python) >= 30
    assert len(NOT_RUN) <= len(python) // 10


@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_page_python_blocks_run(page: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    page_blocks = blocks(page)
    for block in page_blocks:
        if block.lang == "yaml" and (named := _FILE.match(block.code.splitlines()[0])):
            (tmp_path / named["name"]).write_text(block.code, encoding="utf-8")
    namespace: dict[str, object] = {"__name__": f"docs.{page}"}
    out = io.StringIO()
    ran = 0
    with contextlib.redirect_stdout(out):
        for block in page_blocks:
            if block.lang != "python" or block.not_run is not None:
                continue
            code = compile(block.code, f"docs/{page}:{block.line}", "exec")
            try:
                exec(code, namespace)
            except Exception as exc:
                raise AssertionError(f"docs/{page}:{block.line}: block failed: {exc!r}") \
                    from exc
            ran += 1
    assert ran > 0
    cleanup = namespace.get("_docs_cleanup")
    if callable(cleanup):
        cleanup()


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=[f"{b.page}:{b.line}" for b in YAML_BLOCKS])
def test_yaml_block_is_valid(block: Block) -> None:
    data = yaml.safe_load(block.code)
    if isinstance(data, dict) and "personas" in data:
        load_policy_text(block.code)


def _generator():  # type: ignore[no-untyped-def]
    path = ROOT / "scripts" / "gen_policy_reference.py"
    spec = importlib.util.spec_from_file_location("gen_policy_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_policy_reference_is_generated_from_the_schema() -> None:
    generator = _generator()
    committed = (DOCS / "reference" / "policy.md").read_text(encoding="utf-8")
    assert committed == generator.render(), (
        "docs/reference/policy.md is out of date: run "
        ".venv/bin/python scripts/gen_policy_reference.py")


def test_policy_reference_covers_every_model_and_field() -> None:
    from langchain_secure.policy import Policy

    text = (DOCS / "reference" / "policy.md").read_text(encoding="utf-8")
    for name, model in _generator()._models().items():
        assert f"## {name}\n" in text
        section = text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        for field in model.model_fields:
            row = next((line for line in section.splitlines()
                        if line.startswith(f"| `{field}` |")), None)
            assert row is not None, f"{name}.{field} is missing"
            assert not row.endswith("|  |"), f"{name}.{field} has no description"
    assert set(Policy.model_fields) <= set(re.findall(r"\| `(\w+)` \|", text))


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        pytest.fail("mkdocs is not installed: install the 'docs' dependency group")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "reference" / "policy" / "index.html").exists()


def test_faq_quotes_the_exact_messages() -> None:
    from langchain_secure import errors
    from langchain_secure.approval import (
        BAD_RESUME_MESSAGE,
        DECISION_COUNT_MESSAGE,
        DECISION_NOT_ALLOWED_MESSAGE,
    )
    from langchain_secure.audit.postgres import _INSTALL as POSTGRES_INSTALL
    from langchain_secure.guard import AUDIT_FAIL_OPEN_WARNING
    from langchain_secure.integrations.nodes import NO_THREAD_MESSAGE
    from langchain_secure.notebook import _INSTALL as NOTEBOOK_INSTALL
    from langchain_secure.sandbox.e2b import E2B_INSTALL_MESSAGE
    from langchain_secure.tracing import INSTALL_MESSAGE as LANGFUSE_INSTALL

    faq = (DOCS / "faq.md").read_text(encoding="utf-8")
    quoted = [
        errors.TOOL_NOT_ALLOWED_MESSAGE, errors.APPROVAL_REQUIRED_MESSAGE,
        errors.PROMPT_INJECTION_MESSAGE, errors.MODEL_UNAVAILABLE_MESSAGE,
        errors.SANDBOX_UNAVAILABLE_MESSAGE, errors.SANDBOX_START_MESSAGE,
        errors.SANDBOX_CLOSED_MESSAGE, errors.SANDBOX_POOL_FULL_MESSAGE,
        DECISION_COUNT_MESSAGE, DECISION_NOT_ALLOWED_MESSAGE,
        BAD_RESUME_MESSAGE.replace("{{", "{").replace("}}", "}"),
        NO_THREAD_MESSAGE.format(key="security"), AUDIT_FAIL_OPEN_WARNING,
        LANGFUSE_INSTALL, E2B_INSTALL_MESSAGE, POSTGRES_INSTALL, NOTEBOOK_INSTALL,
    ]
    missing = [message for message in quoted if message not in faq]
    assert not missing, f"docs/faq.md does not quote these messages exactly: {missing}"
    audit_source = (ROOT / "langchain_secure" / "audit" / "log.py").read_text(encoding="utf-8")
    assert "the audit log could not be written: {" in audit_source
    assert "the audit log could not be written: {error}" in faq
