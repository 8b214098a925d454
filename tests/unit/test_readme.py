"""The README's Python examples run, and print what the README says they print."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    assert "make demo" in first_block
    assert "make test" in first_block


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples may write files (an audit log)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), {})
    expected = [line.split("# ", 1)[1].strip() for line in block.splitlines()
                if line.strip().startswith("print(") and "# " in line]
    comments = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    printed = out.getvalue().strip().splitlines()
    if comments:  # a multi-line expected output follows the print as comments
        assert " ".join(printed) == " ".join(comments)
    else:
        assert len(printed) == len(expected)
        for line, want in zip(printed, expected, strict=True):
            if want.startswith("refused"):
                assert line.startswith("Tool call 'send_email' was refused by the security "
                                       "policy (rule tools.send_email.args.to)")
            else:
                assert line == want


def test_there_are_readme_examples() -> None:
    assert len(BLOCKS) == 5
