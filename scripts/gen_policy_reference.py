"""Render docs/reference/policy.md from the policy's pydantic schema.

The reference is generated so it cannot drift from the code: every section and
field of :class:`langchain_secure.policy.Policy` and of the models it nests,
with its type, default and description. Descriptions come from
``Field(description=...)``, else the attribute's docstring, else the class
docstring's ``Attributes:`` entry. ``tests/unit/test_docs.py`` fails when the
committed file differs from a fresh render.

Usage::

    python scripts/gen_policy_reference.py           # rewrite docs/reference/policy.md
    python scripts/gen_policy_reference.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "reference" / "policy.md"

# Google-style section headers that end a class docstring's prose.
_SECTIONS = re.compile(r"^(Example|Examples|Attributes|Args|Raises|Note|Returns):\s*$", re.M)


# Fields the models do not document yet (no docstring, no Field description). Each
# key must name a field that exists, and is used only while the code says nothing:
# a docstring added to the model wins, and the generator fails when a key here no
# longer matches a field, so this table cannot outlive the schema.
FALLBACK_DESCRIPTIONS: dict[str, str] = {
    "Policy.version": "Schema version of the policy file; only `1` exists.",
    "Policy.name": "A name for the policy, for people.",
    "Policy.description": "What the policy is for, for people.",
    "Policy.personas": "The personas and the tools each may call (default deny: a tool "
                       "no persona lists cannot be called).",
    "Policy.tools": "Per-tool labels, argument constraints, approval, budget and audit "
                    "settings. Every entry must be listed by some persona.",
    "Policy.flows": "Flow rules over the thread's history (the confused-deputy rules).",
    "Policy.limits": "Budgets that hold for every persona.",
    "Policy.audit": "How the audit log treats secrets.",
    "ApprovalSpec.mode": "`always`, `never`, or `conditional` (set by writing `when`).",
    "ApprovalSpec.when": "Conditions; approval is required when any of them holds.",
    "FlowRule.id": "The rule's id; a decision it makes names `flows.<id>`.",
    "FlowRule.after": "Labels the thread has already seen (any of them).",
    "FlowRule.then": "Labels of the called tool (any of them).",
    "FlowRule.action": "What happens to a call that matches: `deny` or `require_approval`.",
    "FlowRule.reason": "Shown to the model (and the reviewer) when the rule decides.",
    "Limits.max_calls_per_thread": "Most tool calls one thread may make, across all tools.",
    "PersonaSpec.description": "What the persona is for, for people.",
    "PersonaSpec.tools": "The tools this persona may call: a list of names, or a mapping "
                         "from name to settings that tighten the tool's own.",
    "PersonaSpec.max_calls_per_thread": "Most tool calls one thread of this persona may make.",
    "PersonaToolSpec.args": "Constraints added to the tool's own (both must pass).",
    "PersonaToolSpec.approval": "Approval for this persona; needed when either this or the "
                                "tool's own approval asks.",
    "PersonaToolSpec.max_calls_per_thread": "Budget for this tool and persona; the smaller "
                                            "budget wins.",
    "ToolSpec.description": "What the tool does, for people.",
    "ToolSpec.approval": "When a call needs a person's approval: `always`, `never` or "
                         "`{when: [...]}`.",
    "ToolSpec.max_calls_per_thread": "Most calls of this tool one thread may make.",
    "ToolSpec.audit": "How this tool's calls are written to the audit log.",
}


class _Schema(GenerateJsonSchema):
    """JSON schema generator that renders Python callables (``callable:`` constraints)."""

    def callable_schema(self, schema: Any) -> dict[str, Any]:
        return {"type": "string", "format": "python-callable"}


def _models() -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from Policy, by class name."""
    from langchain_secure.policy import Policy

    found: dict[str, type[BaseModel]] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in found:
                return
            found[tp.__name__] = tp
            for field in tp.model_fields.values():
                visit(field.annotation)
            return
        for arg in getattr(tp, "__args__", ()) or ():
            visit(arg)

    visit(Policy)
    return found


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """``name: type = ...`` followed by a string literal, for cls and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass.__module__.startswith("pydantic"):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for node, after in zip(body, [*body[1:], None], strict=True):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _docstring_attributes(doc: str) -> dict[str, str]:
    """The ``Attributes:`` section of a Google-style docstring, as name -> text."""
    match = re.search(r"^Attributes:\s*\n((?:[ \t]+.*\n?|\s*\n)+)", doc, re.M)
    if not match:
        return {}
    entries: dict[str, str] = {}
    current: str | None = None
    for line in textwrap.dedent(match.group(1)).splitlines():
        head = re.match(r"^(\w+)(?: \([^)]*\))?:\s*(.*)$", line)
        if head and not line.startswith(" "):
            current = head.group(1)
            entries[current] = head.group(2)
        elif current and line.strip():
            entries[current] += " " + line.strip()
    return entries


def _prose(doc: str) -> str:
    """A class docstring without its Example/Attributes sections, as one markdown block."""
    text = _SECTIONS.split(inspect.cleandoc(doc), maxsplit=1)[0].strip()
    return _markdown(text)


def _markdown(text: str) -> str:
    """ReST double backticks and Sphinx roles as markdown code."""
    text = re.sub(r":(?:class|func|meth|mod|attr|data|obj|exc):`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _one_line(text: str) -> str:
    return " ".join(_markdown(text).split()).replace("|", "\\|")


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        parts = [_type(s) for s in schema["anyOf"]]
        return " \\| ".join(dict.fromkeys(parts))
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type")
    if schema.get("format") == "python-callable":
        return "callable"
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object":
        values = schema.get("additionalProperties")
        return f"mapping of name → {_type(values)}" if isinstance(values, dict) else "mapping"
    if kind is None:
        return "any"
    return {"string": "string", "integer": "integer", "number": "number",
            "boolean": "boolean", "null": "`null`"}.get(kind, kind)


def _bounds(schema: dict[str, Any]) -> str:
    found: list[str] = []
    for sub in [schema, *schema.get("anyOf", [])]:
        for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                          ("exclusiveMaximum", "<")):
            if key in sub:
                found.append(f"{sign} {sub[key]}")
        if "minItems" in sub:
            found.append(f"at least {sub['minItems']} item{'s' if sub['minItems'] != 1 else ''}")
    return ", ".join(found)


def _default(name: str, schema: dict[str, Any], required: set[str], model: type[BaseModel]) -> str:
    if name in required:
        return "**required**"
    if "default" in schema:
        return f"`{json.dumps(schema['default'], ensure_ascii=False)}`"
    field = model.model_fields.get(name)
    if field is not None and field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            name = type(value).__name__
            try:
                plain = type(value)()
            except (TypeError, ValueError):
                plain = None
            if value == plain:
                return f"the defaults of [{name}](#{name.lower()})"
            base = plain.model_dump(mode="json") if plain is not None else {}
            changed = {key: item for key, item in value.model_dump(mode="json").items()
                       if key not in base or item != base[key]}
            return f"`{json.dumps(changed, ensure_ascii=False)}`, else as [{name}](#{name.lower()})"
        return f"`{json.dumps(value, ensure_ascii=False, default=str)}`"
    return "—"


def render() -> str:
    """The reference page as markdown."""
    from langchain_secure.policy import Policy

    schema = Policy.model_json_schema(schema_generator=_Schema)
    definitions: dict[str, Any] = {"Policy": schema, **schema.get("$defs", {})}
    models = _models()
    order = ["Policy", *sorted(name for name in definitions if name != "Policy")]
    for key in FALLBACK_DESCRIPTIONS:
        model_name, field_name = key.split(".")
        if field_name not in definitions.get(model_name, {}).get("properties", {}):
            raise SystemExit(f"FALLBACK_DESCRIPTIONS names {key}, which is not in the schema")

    out = [
        "# Policy reference",
        "",
        "<!-- Generated by scripts/gen_policy_reference.py from "
        "Policy.model_json_schema(); do not edit by hand. -->",
        "",
        "Every key a policy file may contain, generated from the pydantic models in",
        "`langchain_secure.policy` (a test fails when this page and the code differ).",
        "Unknown keys are errors everywhere. For a guided tour, read",
        "[Writing a policy](../policy.md).",
        "",
        "Sections of a policy file: " + ", ".join(
            f"[`{key}`](#policy)" for key in schema["properties"]) + ".",
        "",
        "Models: " + ", ".join(f"[{name}](#{name.lower()})" for name in order) + ".",
        "",
    ]
    for name in order:
        definition = definitions[name]
        model = models[name]
        doc = inspect.getdoc(model) or ""
        attribute_docs = {**_docstring_attributes(doc), **_attribute_docstrings(model)}
        out += [f"## {name}", "", f"`{model.__module__}.{model.__qualname__}`", ""]
        if doc:
            out += [_prose(doc), ""]
        properties = definition.get("properties", {})
        if not properties:
            continue
        required = set(definition.get("required", []))
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for key, prop in properties.items():
            description = (prop.get("description") or attribute_docs.get(key)
                           or FALLBACK_DESCRIPTIONS.get(f"{name}.{key}", ""))
            bounds = _bounds(prop)
            kind = _type(prop) + (f" ({bounds})" if bounds else "")
            out.append(f"| `{key}` | {kind} | {_default(key, prop, required, model)} | "
                       f"{_one_line(description)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) docs/reference/policy.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date; run python scripts/gen_policy_reference.py")
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
