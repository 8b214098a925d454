"""The ``langchain-secure`` command.

```
langchain-secure policy check FILE [FILE ...]
langchain-secure policy explain FILE --persona P --tool T --args JSON [--labels L ...]
                                     [--calls TOOL=N ...] [--said TEXT]
                                     [--output TOOL=TEXT ...] [--json]
langchain-secure audit keygen PATH
langchain-secure audit verify STORE [--key PUBLIC_KEY ...] [--workers N]
langchain-secure audit show STORE [--thread ID] [--limit N]
langchain-secure audit proof STORE SEQ
langchain-secure audit check-proof PROOF --key PUBLIC_KEY
langchain-secure audit export STORE [--out FILE]
langchain-secure audit import EXPORT TARGET
langchain-secure demo
```

STORE is a SQLite file, a ``.jsonl`` export, or a ``postgresql://`` URL.

Exit codes: 0 success; 1 an audit log or proof failed verification; 2 invalid
input (a policy, an argument, a missing file; errors go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
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
    explain.add_argument("--said", metavar="TEXT",
                         help="what the user said in the conversation (from_user rules); "
                              "without it no value counts as the user's")
    explain.add_argument("--output", action="append", default=[], metavar="TOOL=TEXT",
                         help="what a tool returned in the conversation (from_user "
                              "or_from); repeat for more")
    explain.add_argument("--json", action="store_true", help="print the decision as JSON")

    audit = commands.add_parser("audit", help="keys, verification and reading of audit logs")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True,
                                          metavar="SUBCOMMAND")
    keygen = audit_commands.add_parser("keygen", help="create an Ed25519 signing key pair")
    keygen.add_argument("path", metavar="PATH", help="private key file (public: *.pub.pem)")
    verify = audit_commands.add_parser("verify", help="prove a log was not changed")
    verify.add_argument("store", metavar="STORE")
    verify.add_argument("--key", action="append", default=[], metavar="PUBLIC_KEY",
                        help="trusted public key (repeatable); default: the .pub.pem "
                             "beside a SQLite log")
    verify.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                        help="processes that verify a SQLite or PostgreSQL log side by side "
                             "(default: chosen by the log's size and the CPUs; 1: this "
                             "process only); the report is the same either way")
    show = audit_commands.add_parser("show", help="print records as a table")
    show.add_argument("store", metavar="STORE")
    show.add_argument("--thread", help="only this thread")
    show.add_argument("--limit", type=int, default=0, help="only the last N records")
    proof = audit_commands.add_parser("proof", help="print the inclusion proof of a record")
    proof.add_argument("store", metavar="STORE")
    proof.add_argument("seq", type=int, metavar="SEQ")
    check_proof = audit_commands.add_parser("check-proof", help="verify an inclusion proof")
    check_proof.add_argument("proof", metavar="PROOF", help="a file written by 'audit proof'")
    check_proof.add_argument("--key", action="append", required=True, metavar="PUBLIC_KEY")
    export = audit_commands.add_parser("export", help="write a log as JSONL")
    export.add_argument("store", metavar="STORE")
    export.add_argument("--out", metavar="FILE", help="default: standard output")
    import_ = audit_commands.add_parser("import", help="restore a JSONL export into a new "
                                                       "SQLite file or an empty PostgreSQL")
    import_.add_argument("export", metavar="EXPORT")
    import_.add_argument("target", metavar="TARGET")

    demo = commands.add_parser("demo", help="run the offline demo")
    demo.add_argument("--audit-dir", default="demo-audit", metavar="DIR",
                      help="where the demo keeps its audit log (default: demo-audit)")
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from langchain_secure.demo import run_demo

        return run_demo(out=out, audit_dir=args.audit_dir)
    if args.command == "audit":
        from langchain_secure.errors import AuditError

        try:
            return _audit(args, out, err)
        except (AuditError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=err)
            return EXIT_INVALID
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
    outputs: dict[str, str] = {}
    for item in args.output:
        tool, sep, text = item.partition("=")
        if not tool or not sep:
            print(f"--output: {item!r} is not TOOL=TEXT", file=err)
            return EXIT_INVALID
        outputs[tool] = f"{outputs[tool]}\n{text}" if tool in outputs else text
    try:
        engine = PolicyEngine(load_policy(args.file))
    except PolicyError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        return EXIT_INVALID
    state = {"labels": list(args.labels), "tool_calls": counts,
             "total_calls": sum(counts.values())}
    decision = engine.decide({"name": args.tool, "args": call_args, "id": "explain"},
                             args.persona, state, user_text=args.said,
                             tool_outputs=outputs or None)
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


def _audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from langchain_secure.audit import (
        InclusionProof,
        build_proof,
        export_jsonl,
        open_store,
        verify_log,
    )
    from langchain_secure.audit.chain import key_id, load_public_key, write_keypair

    command = args.audit_command
    if command == "keygen":
        private_path, public_path = write_keypair(args.path)
        print(f"private key: {private_path} (keep it secret; mode 0600)", file=out)
        print(f"public key:  {public_path} (give it to whoever verifies the log)", file=out)
        return EXIT_OK
    if command == "check-proof":
        given = InclusionProof.from_json(json.loads(Path(args.proof).read_text("utf-8")))
        failure = given.verify([load_public_key(k) for k in args.key])
        if failure is not None:
            print(f"FAILED: {failure}", file=out)
            return EXIT_FAILED
        cp = given.checkpoint
        print(f"ok: record {given.seq} is covered by checkpoint {cp.start}..{cp.end} signed "
              f"by key {cp.key_id}", file=out)
        return EXIT_OK
    if command == "import":
        source = open_store(args.export)
        if args.target.startswith(("postgresql://", "postgres://")):
            from langchain_secure.audit.postgres import PostgresAuditStore

            PostgresAuditStore.restore(args.target, source)
        else:
            from langchain_secure.audit.sqlite import SQLiteAuditStore

            SQLiteAuditStore.restore(args.target, source).close()
        print(f"imported log {source.log_id} into {args.target}", file=out)
        return EXIT_OK

    store = open_store(args.store)
    try:
        if command == "verify":
            keys = list(args.key)
            beside = Path(str(args.store) + ".key.pub.pem")
            if not keys and beside.exists():
                keys = [str(beside)]
                print(f"note: using {beside}, which sits beside the log; pass --key with a "
                      "copy kept elsewhere to rule out a replaced key", file=err)
            public = [load_public_key(k) for k in keys]
            report = verify_log(store, public, workers=args.workers)
            for warning in report.warnings:
                print(f"warning: {warning}", file=err)
            if not report.ok:
                for problem in report.problems:
                    print(f"FAILED: {problem}", file=out)
                return EXIT_FAILED
            signers = ", ".join(key_id(k) for k in public) or "no key"
            print(f"ok: {report.records} records, {report.checkpoints} checkpoints, signed "
                  f"through record {report.signed_through} ({signers})", file=out)
            return EXIT_OK
        if command == "show":
            print(_audit_table(store, args.thread, args.limit), file=out)
            return EXIT_OK
        if command == "proof":
            proof = build_proof(store, args.seq)
            if proof is None:
                print(f"error: no checkpoint covers record {args.seq} yet (a writer signs one "
                      "every N records and on close)", file=err)
                return EXIT_INVALID
            print(json.dumps(proof.to_json(), indent=2), file=out)
            return EXIT_OK
        # export
        if args.out:
            with open(args.out, "w", encoding="utf-8") as handle:
                count = export_jsonl(store, handle)
            print(f"exported {count} records to {args.out}", file=err)
        else:
            export_jsonl(store, out)
        return EXIT_OK
    finally:
        store.close()


def _audit_table(store: Any, thread: str | None, limit: int) -> str:
    rows = []
    for record in store.records():
        data = json.loads(record.data)
        if thread is not None and data.get("thread_id") != thread:
            continue
        decision = data.get("decision") or {}
        result = decision.get("action") or data.get("status") or ""
        rows.append([str(record.seq), data.get("ts", "")[:19].replace("T", " "),
                     data.get("kind", ""), str(data.get("thread_id") or "-"),
                     str(data.get("tool") or "-"), str(data.get("persona") or "-"),
                     result, decision.get("rule", "")])
    if limit:
        rows = rows[-limit:]
    from langchain_secure._format import format_table

    header = ["seq", "time (UTC)", "kind", "thread", "tool", "persona", "result", "rule"]
    return format_table([header, *rows])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
