#!/usr/bin/env python
"""Latency of policy decisions and of GuardedToolNode against a bare ToolNode.

Run from the repository root:

    .venv/bin/python benchmarks/bench_policy.py            # full run
    .venv/bin/python benchmarks/bench_policy.py --quick    # a smoke run, ~10x fewer samples
    .venv/bin/python benchmarks/bench_policy.py --markdown results.md

(a) ``PolicyEngine.decide`` on a generated policy of 5 personas, 20 tools and
    more than 50 rules, over a round-robin mix of calls (allowed, denied by the
    allowlist, denied by a constraint, held or denied by a flow rule, held for
    approval, denied by a budget). Every decision is timed on its own with
    ``time.perf_counter_ns``. SQL-constrained calls (sqlglot parses each query)
    are measured and reported separately.
(b) ``GuardedToolNode`` against a bare ``langgraph.prebuilt.ToolNode`` with the
    same trivial tool, invoked directly (no graph, no checkpointer) with one tool
    call and with a batch of four, interleaved in one loop so machine noise hits
    both alike.

The script prints to stdout and writes nothing else, except the ``--markdown``
file when asked. If a target is missed it prints a cProfile of the slow path
(``--profile`` prints it regardless).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime

import langchain_secure
from langchain_secure import Guard, GuardedToolNode, PolicyEngine
from langchain_secure.policy import Policy

DECIDE_P99_TARGET_US = 50.0
NODE_OVERHEAD_TARGET_MS = 0.3

# --------------------------------------------------------------------------- the policy

_EMAIL = {"regex": {"pattern": r"[a-z0-9._%+-]+@example\.com", "ignore_case": True}}
_NAMESPACE = {"regex": r"(web|api|batch)-(dev|staging|prod)"}

POLICY: dict[str, Any] = {
    "name": "bench-50-rules",
    "default_persona": "assistant",
    "labels": {
        "pii": "returns personal data",
        "financial": "returns finance data",
        "prod_access": "touches production",
    },
    "personas": {
        "analyst": {
            "max_calls_per_thread": 200,
            "tools": {
                "read_report": {}, "search_docs": {}, "run_sql": {}, "fetch_url": {},
                "send_email": {}, "post_slack": {}, "translate": {},
                "web_search": {}, "upload_file": {},
                "read_finance": {"approval": {"when": [{"thread_labels": ["untrusted"]}]}},
            },
        },
        "support": {
            "tools": {
                "search_docs": {}, "lookup_customer": {}, "create_ticket": {},
                "update_ticket": {"args": {"status": {"enum": ["open", "pending"]}}},
                "refund": {"args": {"amount": {"range": {"max": 200}}},
                           "max_calls_per_thread": 2},
                "send_email": {}, "translate": {},
            },
        },
        "sre": {
            "tools": {
                "read_log": {}, "kubectl_get": {}, "restart_service": {}, "scale": {},
                "run_sql": {}, "post_slack": {"args": {"channel": {"enum": ["#sre"]}}},
                "create_ticket": {}, "search_docs": {},
            },
        },
        "assistant": {
            "max_calls_per_thread": 50,
            "tools": {
                "get_weather": {}, "web_search": {}, "translate": {},
                "calendar_create": {"approval": "always"}, "fetch_url": {},
            },
        },
        "admin": {
            "tools": [
                "read_report", "read_log", "search_docs", "fetch_url", "send_email",
                "post_slack", "create_ticket", "update_ticket", "refund", "lookup_customer",
                "kubectl_get", "restart_service", "scale", "run_sql", "upload_file",
                "translate", "read_finance", "calendar_create", "get_weather", "web_search",
            ],
        },
    },
    "tools": {
        "read_report": {
            "labels": ["reads_sensitive"],
            "args": {"path": {"path": {"allow": ["/srv/reports/**"],
                                       "deny": ["/**/.env", "/**/*.pem"],
                                       "resolve_symlinks": False}}},
        },
        "read_log": {
            "labels": ["reads_sensitive", "prod_access"],
            "args": {
                # resolve_symlinks: true does real filesystem look-ups (realpath)
                "path": {"path": {"allow": ["/var/log/**"], "deny": ["/var/log/auth.log*"],
                                  "resolve_symlinks": True}},
                "lines": {"range": {"min": 1, "max": 5000, "integer": True}},
            },
        },
        "read_finance": {
            "labels": ["reads_sensitive", "financial"],
            "args": {"quarter": {"regex": r"20[0-9]{2}-Q[1-4]"}},
        },
        "search_docs": {"args": {"query": {"max_length": 500}}, "max_calls_per_thread": 20},
        "fetch_url": {
            "labels": ["untrusted_source"],
            "args": {"url": {"url": {"hosts": ["docs.example.com", "*.wikipedia.org"],
                                     "schemes": ["https"]}}},
        },
        "web_search": {
            "labels": ["untrusted_source"],
            "args": {"query": {"max_length": 300},
                     "max_results": {"optional": True,
                                     "range": {"min": 1, "max": 20, "integer": True}}},
        },
        "send_email": {
            "labels": ["egress"],
            "extra_args": "deny",
            "args": {"to": {"max_length": 10, "items": _EMAIL},
                     "subject": {"max_length": 200},
                     "body": {"max_length": 10000}},
        },
        "post_slack": {
            "labels": ["egress"],
            "args": {"channel": {"enum": ["#general", "#sre", "#data"]},
                     "text": {"max_length": 3000}},
        },
        "upload_file": {
            "labels": ["egress"],
            "args": {"path": {"path": {"allow": ["/srv/reports/**"],
                                       "resolve_symlinks": False}},
                     "dest": {"url": {"hosts": ["uploads.example.com"]}}},
        },
        "create_ticket": {
            "labels": ["writes"],
            "args": {"title": {"max_length": 120},
                     "priority": {"enum": ["p1", "p2", "p3", "p4"]},
                     "project": {"regex": "[A-Z]{2,6}"}},
        },
        "update_ticket": {
            "labels": ["writes"],
            "args": {"ticket_id": {"regex": "[A-Z]{2,6}-[0-9]{1,6}"},
                     "status": {"enum": ["open", "pending", "solved"]}},
        },
        "refund": {
            "labels": ["writes"],
            "args": {"order_id": {"regex": "ORD-[0-9]{8}"},
                     "amount": {"range": {"min": 0.01, "max": 1000}},
                     "currency": {"enum": ["USD", "EUR", "GBP"]}},
            "approval": {"when": [{"args": {"amount": {"range": {"min": 100}}}},
                                  {"thread_labels": ["untrusted_source"]}]},
            "max_calls_per_thread": 3,
        },
        "lookup_customer": {
            "labels": ["pii"],
            "args": {"customer_id": {"regex": "cus_[A-Za-z0-9]{14}"}},
        },
        "kubectl_get": {
            "args": {"verb": {"enum": ["get", "describe", "top"]},
                     "resource": {"enum": ["pods", "deployments", "services", "events"]},
                     "namespace": _NAMESPACE},
        },
        "restart_service": {
            "labels": ["writes", "prod_access"],
            "args": {"service": {"regex": "[a-z][a-z0-9-]{1,40}"},
                     "env": {"enum": ["dev", "staging", "prod"]}},
            "approval": {"when": [{"args": {"env": {"enum": ["prod"]}}}]},
            "max_calls_per_thread": 2,
        },
        "scale": {
            "labels": ["writes"],
            "args": {"replicas": {"range": {"min": 1, "max": 20, "integer": True}},
                     "namespace": _NAMESPACE},
        },
        "run_sql": {
            "labels": ["reads_sensitive"],
            "args": {"query": {"sql": {"read_only": True, "dialect": "postgres"}}},
        },
        "translate": {"args": {"text": {"max_length": 5000},
                               "lang": {"enum": ["en", "de", "fr", "es", "ja"]}}},
        "calendar_create": {
            "labels": ["writes"],
            "args": {"title": {"max_length": 200},
                     "attendees": {"max_length": 20, "items": _EMAIL}},
        },
        "get_weather": {"args": {"city": {"max_length": 80},
                                 "units": {"enum": ["metric", "imperial"]}}},
    },
    "flows": [
        {"id": "sensitive-egress", "after": ["reads_sensitive"], "then": ["egress"],
         "action": "require_approval"},
        {"id": "no-writes-after-flagged", "after": ["untrusted"], "then": ["writes"],
         "action": "deny"},
        {"id": "writes-after-web", "after": ["untrusted_source"], "then": ["writes"],
         "action": "require_approval"},
        {"id": "pii-stays-in", "after": ["pii"], "then": ["egress"], "action": "deny"},
        {"id": "finance-stays-in", "after": ["financial"], "then": ["egress"],
         "action": "deny"},
        {"id": "prod-egress-reviewed", "after": ["prod_access"], "then": ["egress"],
         "action": "require_approval", "personas": ["sre"]},
        {"id": "no-egress-after-flagged", "after": ["untrusted"], "then": ["egress"],
         "action": "deny"},
        {"id": "support-pii-writes", "after": ["pii"], "then": ["writes"],
         "action": "require_approval", "personas": ["support"]},
    ],
    "limits": {"max_calls_per_thread": 500},
}


def count_rules(policy: Policy) -> dict[str, int]:
    """Rules = argument constraints + flow rules + approval conditions + budgets."""
    constraints = sum(len(t.args) for t in policy.tools.values())
    constraints += sum(len(pt.args) for p in policy.personas.values() for pt in p.tools.values())
    approvals = 0
    budgets = int(policy.limits.max_calls_per_thread is not None)
    specs = [(t.approval, t.max_calls_per_thread) for t in policy.tools.values()]
    specs += [(pt.approval, pt.max_calls_per_thread)
              for p in policy.personas.values() for pt in p.tools.values()]
    for approval, budget in specs:
        approvals += len(approval.when) if approval.mode == "conditional" else (
            approval.mode == "always")
        budgets += budget is not None
    budgets += sum(p.max_calls_per_thread is not None for p in policy.personas.values())
    counts = {"argument constraints": constraints, "flow rules": len(policy.flows),
              "approval conditions": approvals, "budgets": budgets}
    counts["total"] = sum(counts.values())
    return counts


# --------------------------------------------------------------------------- the call mix


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    persona: str | None
    call: dict[str, Any]
    state: dict[str, Any] | None
    expect: tuple[str, str]  # (action, rule prefix)
    filesystem: bool = False  # the decision resolves symlinks (os.path.realpath)


def _call(tool_name: str, **args: Any) -> dict[str, Any]:
    return {"name": tool_name, "args": args, "id": "c1", "type": "tool_call"}


def _state(*labels: str, total: int = 3, **calls: int) -> dict[str, Any]:
    return {"labels": list(labels), "tool_calls": dict(calls), "total_calls": total}


MIX: list[Case] = [
    # allowed
    Case("allow", "report path (no symlink check)", "analyst",
         _call("read_report", path="/srv/reports/2024/q3/summary.pdf"), None,
         ("allow", "personas.")),
    Case("allow", "log path (resolve_symlinks)", "sre",
         _call("read_log", path="/var/log/nginx/error.log", lines=200), _state(),
         ("allow", "personas."), filesystem=True),
    Case("allow", "url + https", "analyst",
         _call("fetch_url", url="https://en.wikipedia.org/wiki/Confused_deputy_problem"),
         _state(), ("allow", "personas.")),
    Case("allow", "email: items regex x3", "analyst",
         _call("send_email", to=["a@example.com", "b@example.com", "c@example.com"],
               subject="Weekly numbers", body="See the dashboard."), _state(),
         ("allow", "personas.")),
    Case("allow", "kubectl: 2 enums + regex", "sre",
         _call("kubectl_get", verb="get", resource="pods", namespace="api-prod"), _state(),
         ("allow", "personas.")),
    Case("allow", "refund: regex+range+enum", "support",
         _call("refund", order_id="ORD-20240611", amount=42.5, currency="EUR"), _state(),
         ("allow", "personas.")),
    Case("allow", "default persona, 2 constraints", None,
         _call("get_weather", city="Lisbon", units="metric"), None, ("allow", "personas.")),
    Case("allow", "translate (max_length+enum)", "support",
         _call("translate", text="Where is my order?", lang="de"), _state(),
         ("allow", "personas.")),
    # denied by the allowlist
    Case("deny-allowlist", "assistant -> refund", "assistant",
         _call("refund", order_id="ORD-20240611", amount=10, currency="USD"), None,
         ("deny", "personas.assistant.tools")),
    Case("deny-allowlist", "analyst -> restart", "analyst",
         _call("restart_service", service="api", env="prod"), None,
         ("deny", "personas.analyst.tools")),
    Case("deny-allowlist", "unknown tool", "sre", _call("delete_cluster", name="prod"), None,
         ("deny", "personas.sre.tools")),
    # denied by an argument constraint
    Case("deny-constraint", "path traversal", "analyst",
         _call("read_report", path="/srv/reports/../../etc/passwd"), None,
         ("deny", "tools.read_report.args.path")),
    Case("deny-constraint", "url host", "analyst",
         _call("fetch_url", url="https://docs.example.com.evil.io/x"), None,
         ("deny", "tools.fetch_url.args.url")),
    Case("deny-constraint", "range", "support",
         _call("refund", order_id="ORD-20240611", amount=5000, currency="USD"), None,
         ("deny", "tools.refund.args.amount")),
    Case("deny-constraint", "regex", "sre",
         _call("kubectl_get", verb="get", resource="pods", namespace="kube-system"), None,
         ("deny", "tools.kubectl_get.args.namespace")),
    Case("deny-constraint", "items regex", "analyst",
         _call("send_email", to=["a@example.com", "x@evil.io"], subject="s", body="b"), None,
         ("deny", "tools.send_email.args.to")),
    Case("deny-constraint", "max_length", "analyst",
         _call("search_docs", query="q" * 600), None, ("deny", "tools.search_docs.args.query")),
    # flow rules
    Case("flow", "sensitive -> egress (approval)", "analyst",
         _call("post_slack", channel="#data", text="numbers attached"),
         _state("reads_sensitive"), ("require_approval", "flows.sensitive-egress")),
    Case("flow", "flagged -> writes (deny)", "support",
         _call("create_ticket", title="t", priority="p3", project="OPS"),
         _state("untrusted_source", "untrusted"), ("deny", "flows.no-writes-after-flagged")),
    Case("flow", "pii -> egress (deny)", "support",
         _call("send_email", to=["a@example.com"], subject="s", body="b"), _state("pii"),
         ("deny", "flows.pii-stays-in")),
    Case("flow", "persona-scoped (sre)", "sre",
         _call("post_slack", channel="#sre", text="restarted"), _state("prod_access"),
         ("require_approval", "flows.prod-egress-reviewed")),
    # approvals
    Case("approval", "refund >= 100", "support",
         _call("refund", order_id="ORD-20240611", amount=150, currency="USD"), _state(),
         ("require_approval", "tools.refund.approval")),
    Case("approval", "prod restart", "sre",
         _call("restart_service", service="checkout", env="prod"), _state(),
         ("require_approval", "tools.restart_service.approval")),
    Case("approval", "persona: always", "assistant",
         _call("calendar_create", title="1:1", attendees=["a@example.com"]), _state(),
         ("require_approval", "personas.assistant.tools.calendar_create.approval")),
    # budgets
    Case("budget", "tool budget spent", "sre",
         _call("restart_service", service="checkout", env="dev"),
         _state(total=5, restart_service=2), ("deny", "tools.restart_service.max_calls")),
    Case("budget", "persona budget spent", "assistant",
         _call("get_weather", city="Oslo", units="metric"), _state(total=50),
         ("deny", "personas.assistant.max_calls")),
]

SQL_MIX: list[Case] = [
    Case("sql", "simple SELECT (allow)", "analyst",
         _call("run_sql", query="SELECT id, total FROM orders WHERE id = 42"), None,
         ("allow", "personas.")),
    Case("sql", "join + group by (allow)", "analyst",
         _call("run_sql", query=(
             "SELECT c.country, count(*) AS n, sum(o.total) AS revenue FROM orders o "
             "JOIN customers c ON c.id = o.customer_id WHERE o.created_at >= '2024-01-01' "
             "GROUP BY c.country ORDER BY revenue DESC LIMIT 20")), None,
         ("allow", "personas.")),
    Case("sql", "DELETE in a CTE (deny)", "analyst",
         _call("run_sql", query="WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d"),
         None, ("deny", "tools.run_sql.args.query")),
    Case("sql", "two statements (deny)", "analyst",
         _call("run_sql", query="SELECT 1; DROP TABLE orders"), None,
         ("deny", "tools.run_sql.args.query")),
]


def check_mix(engine: PolicyEngine, cases: Sequence[Case]) -> None:
    """Each case must decide as labelled, or the numbers would measure something else."""
    for case in cases:
        decision = engine.decide(case.call, case.persona, case.state)
        action, prefix = case.expect
        if decision.action.value != action or not decision.rule.startswith(prefix):
            raise SystemExit(f"benchmark case {case.name!r} decided {decision.action.value} "
                             f"by {decision.rule}, expected {action} by {prefix}*")


# --------------------------------------------------------------------------- statistics


def pct(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[index]


def summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50": pct(ordered, 50), "p90": pct(ordered, 90),
            "p99": pct(ordered, 99), "max": ordered[-1]}


def timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        samples.append(clock() - t0)
    samples.sort()
    return pct(samples, 50)


# --------------------------------------------------------------------------- (a) decide


def bench_decide(engine: PolicyEngine, cases: Sequence[Case], total: int,
                 warmup: int) -> dict[str, list[float]]:
    """Time ``total`` decisions, round-robin over ``cases``; µs per decision, by case."""
    clock = time.perf_counter_ns
    decide = engine.decide
    prepared = [(c.name, c.call, c.persona, c.state) for c in cases]
    for i in range(warmup):
        _, call, persona, st = prepared[i % len(prepared)]
        decide(call, persona, st)
    by_case: dict[str, list[float]] = {name: [] for name, *_ in prepared}
    gc.collect()
    for i in range(total):
        name, call, persona, st = prepared[i % len(prepared)]
        t0 = clock()
        decide(call, persona, st)
        by_case[name].append((clock() - t0) / 1000)
    return by_case


# --------------------------------------------------------------------------- (b) nodes


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's status."""
    return f"order {order_id}: shipped"


NODE_POLICY: dict[str, Any] = {
    "default_persona": "agent",
    "personas": {"agent": {"tools": ["lookup_order"]}},
    "tools": {"lookup_order": {"args": {"order_id": {"regex": "ORD-[0-9]{8}"}}}},
    # the target excludes audit and scanning: the tool-output door is off here
    "scanning": {"tool_output": {"detectors": []}},
}
NODE_POLICY_SCANNING: dict[str, Any] = {**NODE_POLICY, "scanning": {}}  # default signatures


def _message(n: int) -> dict[str, Any]:
    calls = [{"name": "lookup_order", "args": {"order_id": f"ORD-{20240600 + i:08d}"},
              "id": f"call_{i}", "type": "tool_call"} for i in range(n)]
    # "security" is the graph-state channel GuardedToolNode reads (SecureMessagesState);
    # the bare ToolNode ignores it.
    return {"messages": [AIMessage(content="", tool_calls=calls)], "security": {}}


def make_nodes(scanning: bool = False) -> tuple[ToolNode, GuardedToolNode, dict[str, Any]]:
    guard = Guard(Policy.model_validate(NODE_POLICY_SCANNING if scanning else NODE_POLICY))
    bare = ToolNode([lookup_order])
    guarded = GuardedToolNode([lookup_order], guard=guard)
    # Outside a graph, ToolNode needs the LangGraph runtime in the config (inside a
    # graph Pregel puts it there). Same config for both nodes.
    config: dict[str, Any] = {"configurable": {"__pregel_runtime": Runtime()}}
    return bare, guarded, config


def bench_nodes(n_calls: int, invocations: int, warmup: int,
                scanning: bool = False) -> dict[str, list[float]]:
    """ms per invocation for bare and guarded nodes, interleaved bare, guarded, ..."""
    bare, guarded, config = make_nodes(scanning)
    message = _message(n_calls)
    expected = len(bare.invoke(message, config)["messages"])
    result = guarded.invoke(message, config)["messages"]
    if len(result) != expected or any(m.status != "success" for m in result):
        raise SystemExit("GuardedToolNode refused a call in the benchmark; check NODE_POLICY")
    for _ in range(warmup):
        bare.invoke(message, config)
        guarded.invoke(message, config)
    clock = time.perf_counter_ns
    out: dict[str, list[float]] = {"bare": [], "guarded": []}
    gc.collect()
    for _ in range(invocations):
        t0 = clock()
        bare.invoke(message, config)
        t1 = clock()
        guarded.invoke(message, config)
        t2 = clock()
        out["bare"].append((t1 - t0) / 1e6)
        out["guarded"].append((t2 - t1) / 1e6)
    return out


# --------------------------------------------------------------------------- profiling


def profile(label: str, fn: Callable[[], None], limit: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("tottime")
    stats.print_stats(limit)
    body = "\n".join(line for line in stream.getvalue().splitlines() if line.strip())
    return f"--- cProfile: {label} (sorted by own time) ---\n{body}\n"


# --------------------------------------------------------------------------- report


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [_row(header, widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
            f"langchain-secure {langchain_secure.__version__}; load average {load}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="about 10x fewer samples (a smoke run; numbers are noisier)")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the result tables as Markdown to PATH")
    parser.add_argument("--profile", action="store_true",
                        help="print cProfile output even when every target is met")
    args = parser.parse_args(argv)

    decisions = 6_000 if args.quick else 104_000
    sql_decisions = 400 if args.quick else 8_000
    invocations = 300 if args.quick else 4_000
    warmup = 500 if args.quick else 5_000
    node_warmup = 50 if args.quick else 300

    out: list[str] = []
    md: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        out.append(text)

    say("langchain-secure benchmark: policy engine and GuardedToolNode")
    say(machine())
    say(f"mode: {'quick' if args.quick else 'full'}; timer overhead "
        f"{timer_overhead_ns():.0f} ns per perf_counter_ns pair (included below)")
    say()

    # (a) ------------------------------------------------------------------------
    policy = Policy.model_validate(POLICY)
    engine = PolicyEngine(policy)
    counts = count_rules(policy)
    check_mix(engine, MIX)
    check_mix(engine, SQL_MIX)
    say(f"(a) PolicyEngine.decide: {len(policy.personas)} personas, {len(policy.tools)} "
        f"tools, {counts['total']} rules ("
        + ", ".join(f"{v} {k}" for k, v in counts.items() if k != "total") + ")")
    by_case = bench_decide(engine, MIX, decisions, warmup)
    sql_by_case = bench_decide(engine, SQL_MIX, sql_decisions, max(warmup // 10, 100))

    kinds = list(dict.fromkeys(c.kind for c in MIX))
    header = ["calls", "n", "p50 µs", "p90 µs", "p99 µs", "max µs"]
    rows = []
    everything: list[float] = []
    for kind in kinds:
        samples = [v for c in MIX if c.kind == kind for v in by_case[c.name]]
        everything += samples
        s = summary(samples)
        rows.append([kind, f"{s['n']:,}", fmt(s["p50"]), fmt(s["p90"]), fmt(s["p99"]),
                     fmt(s["max"])])
    overall = summary(everything)
    rows.append(["all (no SQL)", f"{overall['n']:,}", fmt(overall["p50"]),
                 fmt(overall["p90"]), fmt(overall["p99"]), fmt(overall["max"])])
    pure = summary([v for c in MIX if not c.filesystem for v in by_case[c.name]])
    rows.append(["all (no SQL, no realpath)", f"{pure['n']:,}", fmt(pure["p50"]),
                 fmt(pure["p90"]), fmt(pure["p99"]), fmt(pure["max"])])
    sql_all = [v for vs in sql_by_case.values() for v in vs]
    s = summary(sql_all)
    rows.append(["sql (sqlglot parse)", f"{s['n']:,}", fmt(s["p50"]), fmt(s["p90"]),
                 fmt(s["p99"]), fmt(s["max"])])
    say(text_table(header, rows))
    md += [f"**(a) `PolicyEngine.decide`**, {len(policy.personas)} personas, "
           f"{len(policy.tools)} tools, {counts['total']} rules "
           f"({', '.join(f'{v} {k}' for k, v in counts.items() if k != 'total')}); "
           f"{overall['n']:,} timed decisions (+ {s['n']:,} SQL):", "",
           md_table(header, rows), ""]

    say()
    say("per call (p50 µs), slowest first:")
    per_case = sorted(((summary(v)["p50"], summary(v)["p99"], name)
                       for name, v in {**by_case, **sql_by_case}.items()), reverse=True)
    case_rows = [[name, fmt(p50), fmt(p99)] for p50, p99, name in per_case]
    say(text_table(["call", "p50 µs", "p99 µs"], case_rows))
    md += ["<details><summary>per call</summary>", "",
           md_table(["call", "p50 µs", "p99 µs"], case_rows), "", "</details>", ""]
    say()

    # (b) ------------------------------------------------------------------------
    say(f"(b) GuardedToolNode vs ToolNode, {invocations:,} invocations each, interleaved")
    node_rows = []
    overheads: dict[int, float] = {}
    for n_calls, scanning in ((1, False), (4, False), (1, True)):
        times = bench_nodes(n_calls, invocations, node_warmup, scanning)
        b, g = summary(times["bare"]), summary(times["guarded"])
        paired = summary([gv - bv for gv, bv in zip(times["guarded"], times["bare"],
                                                    strict=True)])
        overhead = g["p50"] - b["p50"]
        if not scanning:  # the target excludes scanning
            overheads[n_calls] = overhead / n_calls
        label = "1 call" if n_calls == 1 else f"batch of {n_calls}"
        label += ", output scanned (signatures)" if scanning else ""
        node_rows.append([label, fmt(b["p50"], 3), fmt(b["p99"], 3), fmt(g["p50"], 3),
                          fmt(g["p99"], 3), fmt(overhead, 3), fmt(paired["p50"], 3),
                          fmt(overhead / n_calls, 3), f"{g['p50'] / b['p50']:.2f}x"])
    node_header = ["invocation", "bare p50 ms", "bare p99 ms", "guarded p50 ms",
                   "guarded p99 ms", "overhead ms", "paired diff p50 ms",
                   "overhead/call ms", "ratio"]
    say(text_table(node_header, node_rows))
    md += [f"**(b) `GuardedToolNode` vs bare `ToolNode`**, {invocations:,} invocations each, "
           "interleaved; overhead = guarded p50 - bare p50; paired diff = median of "
           "per-iteration differences:", "", md_table(node_header, node_rows), ""]
    say()

    # targets -------------------------------------------------------------------
    decide_p99 = overall["p99"]
    worst_overhead = max(overheads.values())
    targets = [
        ("decide p99 ≤ 50 µs (50-rule policy, no SQL)", f"{decide_p99:.1f} µs",
         decide_p99 <= DECIDE_P99_TARGET_US, decide_p99 - DECIDE_P99_TARGET_US, "µs"),
        ("GuardedToolNode overhead ≤ 0.3 ms median per call",
         f"{worst_overhead:.3f} ms", worst_overhead <= NODE_OVERHEAD_TARGET_MS,
         worst_overhead - NODE_OVERHEAD_TARGET_MS, "ms"),
    ]
    target_rows = []
    for name, value, met, miss, unit in targets:
        verdict = "met" if met else f"MISSED by {miss:.3g} {unit}"
        target_rows.append([name, value, verdict])
    say("targets:")
    say(text_table(["target", "measured", "result"], target_rows))
    md += ["**Targets:**", "", md_table(["target", "measured", "result"], target_rows), ""]
    if s["p99"] > DECIDE_P99_TARGET_US:
        say(f"note: SQL-constrained decisions are excluded from the decide target; they take "
            f"{s['p50']:.0f} µs p50 / {s['p99']:.0f} µs p99 (sqlglot tokenises and parses "
            "every query).")
        md += [f"SQL-constrained decisions are outside the decide target: {s['p50']:.0f} µs "
               f"p50 / {s['p99']:.0f} µs p99, because sqlglot tokenises and parses every "
               "query.", ""]

    missed = not all(met for *_, met, _, _ in targets)
    if missed or args.profile:
        say()
        calls = [(c.call, c.persona, c.state) for c in MIX]

        def run_decides() -> None:
            for i in range(20_000):
                call, persona, st = calls[i % len(calls)]
                engine.decide(call, persona, st)

        bare, guarded, config = make_nodes()
        message = _message(1)

        def run_guarded() -> None:
            for _ in range(1_000):
                guarded.invoke(message, config)

        def run_bare() -> None:
            for _ in range(1_000):
                bare.invoke(message, config)

        slowest = max(MIX, key=lambda c: summary(by_case[c.name])["p50"])

        def run_slowest() -> None:
            for _ in range(5_000):
                engine.decide(slowest.call, slowest.persona, slowest.state)

        say(profile("20,000 PolicyEngine.decide over the mix", run_decides))
        say(profile(f"5,000 decisions of the slowest non-SQL call ({slowest.name})",
                    run_slowest, limit=12))
        say(profile("1,000 GuardedToolNode.invoke (1 call)", run_guarded))
        say(profile("1,000 ToolNode.invoke (1 call)", run_bare))

    if args.markdown:
        Path(args.markdown).write_text("\n".join(md), encoding="utf-8")
        say(f"markdown written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
