"""The ``langchain-secure`` command.

```
langchain-secure policy check FILE [FILE ...]
langchain-secure policy explain FILE --persona P --tool T --args JSON [--labels L ...]
                                     [--calls TOOL=N ...] [--json]
langchain-secure demo
```

Exit codes: 0 success; 2 a policy or an argument is invalid (errors go to stderr,
one located problem per line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["main"]

EXIT_OK = 0
EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    from langchain_secure import __version__

    parser = argparse.ArgumentParser(
        prog="langchain-secure",
        description="Security execution layer for LangChain and LangGraph agents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    policy = commands.add_parser("policy", help="validate and dry-run policies")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True,
                                            metavar="SUBCOMMAND")
    check = policy_commands.add_parser("check", help="validate policy files")
    check.add_argument("files", nargs="+", metavar="FILE")

    explain = policy_commands.add_parser(
        "explain", help="decide one tool call against a policy and say why")
    explain.add_argument("file", metavar="FILE")
    explain.add_argument("--persona", help="persona calling (default: the policy's default)")
    explain.add_argument("--tool", required=True, help="tool name")
    explain.add_argument("--args", default="{}", metavar="JSON",
                         help="the call's arguments as a JSON object (default: {})")
    explain.add_argument("--labels", nargs="*", default=[], metavar="LABEL",
                         help="labels the thread has already seen")
    explain.add_argument("--calls", nargs="*", default=[], metavar="TOOL=N",
                         help="calls that already ran in the thread, per tool")
    explain.add_argument("--json", action="store_true", help="print the decision as JSON")

    commands.add_parser("demo", help="run the offline demo")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from langchain_secure.demo import run_demo

        return run_demo(out=out)
    if args.policy_command == "check":
        return _check(args.files, out, err)
    return _explain(args, out, err)


def _check(files: Sequence[str], out: TextIO, err: TextIO) -> int:
    from langchain_secure.errors import PolicyError
    from langchain_secure.policy.load import load_policy

    status = EXIT_OK
    for file in files:
        try:
            policy = load_policy(file)
        except PolicyError as exc:
            status = EXIT_INVALID
            for issue in exc.issues:
                print(issue, file=err)
            continue
        print(f"{file}: ok ({len(policy.personas)} personas, {len(policy.tools)} tools, "
              f"{len(policy.flows)} flow rules)", file=out)
    return status


def _explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from langchain_secure.errors import PolicyError
    from langchain_secure.policy.engine import PolicyEngine
    from langchain_secure.policy.load import load_policy

    try:
        call_args = json.loads(args.args)
    except json.JSONDecodeError as exc:
        print(f"--args: not valid JSON: {exc}", file=err)
        return EXIT_INVALID
    if not isinstance(call_args, dict):
        print("--args: must be a JSON object, e.g. '{\"path\": \"/tmp/x\"}'", file=err)
        return EXIT_INVALID
    counts: dict[str, int] = {}
    for item in args.calls:
        tool, _, number = item.partition("=")
        if not tool or not number.isdigit():
            print(f"--calls: {item!r} is not TOOL=N", file=err)
            return EXIT_INVALID
        counts[tool] = counts.get(tool, 0) + int(number)
    try:
        engine = PolicyEngine(load_policy(args.file))
    except PolicyError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        return EXIT_INVALID
    state = {"labels": list(args.labels), "tool_calls": counts,
             "total_calls": sum(counts.values())}
    decision = engine.decide({"name": args.tool, "args": call_args, "id": "explain"},
                             args.persona, state)
    if args.json:
        print(json.dumps({"action": decision.action.value, "rule": decision.rule,
                          "reason": decision.reason, "persona": decision.persona,
                          "tool": decision.tool, "labels": list(decision.labels)},
                         indent=2), file=out)
    else:
        print(f"decision: {decision.action.value}", file=out)
        print(f"rule:     {decision.rule}", file=out)
        print(f"reason:   {decision.reason}", file=out)
        print(f"persona:  {decision.persona or '-'}", file=out)
        if decision.labels:
            print(f"labels:   {', '.join(decision.labels)}", file=out)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
