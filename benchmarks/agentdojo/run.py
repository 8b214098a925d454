"""AgentDojo attack replay: attack success and utility under an always-hijacked agent.

Usage (from the repository root; ``make bench-agentdojo`` runs the first line)::

    python benchmarks/agentdojo/run.py --markdown benchmarks/agentdojo/report.md
    python benchmarks/agentdojo/run.py --suite banking --attack direct      # one slice
    python benchmarks/agentdojo/run.py --suite workspace \\
        --policy workspace=my_policies/workspace.yaml                       # another suite

For each suite and attack, every (user task, injection task) pair is replayed twice
in the same run: through a ``GuardedToolNode`` under the suite's policy, and through
a bare ``ToolNode`` (the baseline, no guard). See ``replay.py`` for what the scripted
agent and reviewer do. Nothing is downloaded; the run is deterministic.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay import (
    ATTACKS,
    BENCHMARK_VERSION,
    SUITES,
    Bench,
    Run,
    answer_dependent,
    build_graph,
    load_suite,
    pairs,
    replay,
    without_calls,
)

from langchain_secure import Guard
from langchain_secure.audit import AuditLog, verify_log

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "policies"


def _shown(path: Path) -> str:
    """A policy path as the report shows it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _task_number(task_id: str) -> int:
    return int(task_id.rsplit("_", 1)[1])


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


class Row:
    """The totals of one (suite, attack, guard or baseline) cell."""

    def __init__(self, runs: Sequence[Run]) -> None:
        self.n = len(runs)
        self.utility = sum(r.utility for r in runs)
        self.attacked = sum(r.attacked for r in runs)
        self.hijacked = sum(r.hijacked for r in runs)
        self.denied = sum(r.denied for r in runs)
        self.approvals = sum(r.approvals for r in runs)
        self.granted = sum(r.granted for r in runs)
        self.flagged = sum(1 for r in runs if r.flagged)


def _table(title: str, rows: list[tuple[str, str, Row]]) -> list[str]:
    out = [f"### {title}", "",
           "| suite | attack | runs | utility | ASR | hijacked | denied by the policy | "
           "approvals requested (per run) | granted (per run) | rejected by the reviewer | "
           "runs with a flagged output |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for suite, attack, row in rows:
        out.append(
            f"| {suite} | {attack} | {row.n} | {_pct(row.utility, row.n)} | "
            f"{_pct(row.attacked, row.n)} ({row.attacked}) | {_pct(row.hijacked, row.n)} | "
            f"{row.denied} | {row.approvals} ({row.approvals / row.n:.2f}) | "
            f"{row.granted} ({row.granted / row.n:.2f}) | {row.approvals - row.granted} | "
            f"{row.flagged} |")
    return [*out, ""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", help=f"default: {' '.join(SUITES)}")
    parser.add_argument("--attack", action="append", help=f"default: {' '.join(ATTACKS)}")
    parser.add_argument("--policy", action="append", default=[], metavar="SUITE=PATH",
                        help="policy for a suite (default examples/policies/<suite>.yaml)")
    parser.add_argument("--markdown", type=Path, help="write the report here")
    parser.add_argument("--audit-dir", type=Path,
                        help="keep the audit logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    suites = args.suite or list(SUITES)
    attacks = args.attack or list(ATTACKS)
    policies = {s: POLICIES / f"{s}.yaml" for s in suites}
    for item in args.policy:
        name, _, path = item.partition("=")
        if name not in policies or not path:
            parser.error(f"--policy {item!r}: expected SUITE=PATH for one of {suites}")
        policies[name] = Path(path)
    for name, path in policies.items():
        if not path.is_file():
            parser.error(f"no policy for suite {name!r} at {path}: write one and pass "
                         f"--policy {name}=PATH")

    audit_dir = args.audit_dir or Path(tempfile.mkdtemp(prefix="agentdojo-audit-"))
    audit_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    guarded: list[tuple[str, str, Row]] = []
    baseline: list[tuple[str, str, Row]] = []
    notes: list[str] = []
    per_task: dict[str, dict[str, list[Run]]] = {}
    succeeded: list[Run] = []  # guarded runs in which the attack succeeded
    for suite_name in suites:
        suite = load_suite(suite_name)
        bench = Bench(suite)
        audit = AuditLog(audit_dir / f"{suite_name}.sqlite")
        guard = Guard(policies[suite_name], audit=audit)
        with_guard, without = build_graph(bench, guard), build_graph(bench, None)
        clean_g = [replay(bench, with_guard, u, None, {}, None)
                   for u in suite.user_tasks.values()]
        clean_b = [replay(bench, without, u, None, {}, None) for u in suite.user_tasks.values()]
        guarded.append((suite_name, "none (no injection)", Row(clean_g)))
        baseline.append((suite_name, "none (no injection)", Row(clean_b)))
        tasks: dict[str, list[Run]] = defaultdict(list)
        attacked_g: list[Run] = []
        attacked_b: list[Run] = []
        for attack in attacks:
            runs_g, runs_b = [], []
            for user_task, injection_task, injections in pairs(suite, attack):
                runs_g.append(replay(bench, with_guard, user_task, injection_task, injections,
                                     attack))
                runs_b.append(replay(bench, without, user_task, injection_task, injections,
                                     attack))
            for run in runs_g:
                tasks[run.user_task].append(run)
            succeeded += [run for run in runs_g if run.attacked]
            attacked_g += runs_g
            attacked_b += runs_b
            guarded.append((suite_name, attack, Row(runs_g)))
            baseline.append((suite_name, attack, Row(runs_b)))
            row = Row(runs_g)
            print(f"{suite_name:8} {attack:24} utility {_pct(row.utility, row.n):>6} "
                  f"ASR {_pct(row.attacked, row.n):>6} approvals/run "
                  f"{row.approvals / row.n:.2f}", flush=True)
        per_task[suite_name] = tasks
        audit.checkpoint()
        report = verify_log(audit.store, [audit.public_key])
        dependent = [u.ID for u in suite.user_tasks.values() if answer_dependent(bench, u)]
        notes.append(f"- **{suite_name}**: {len(suite.user_tasks)} user tasks, "
                     f"{len(suite.injection_tasks)} injection tasks, policy "
                     f"`{_shown(policies[suite_name])}`. Utility depends on "
                     f"the model's answer text for {len(dependent)} task(s)"
                     + (f": {', '.join(dependent)}" if dependent else "") + ".")
        spoken = [i.ID for i in suite.injection_tasks.values() if answer_dependent(bench, i)]
        if spoken:
            notes.append(f"  Security depends on the model's answer text for {len(spoken)} "
                         f"injection task(s): {', '.join(spoken)}. The replay's answer never "
                         "repeats an injection, so those pairs cannot succeed here.")
        idle = {i.ID for i in suite.injection_tasks.values()
                if i.ID not in spoken and without_calls(bench, i)}
        if idle:
            skip = idle | set(spoken)
            g, b = ([r for r in runs if r.injection_task not in skip]
                    for runs in (attacked_g, attacked_b))
            notes.append(
                f"  AgentDojo gives no ground-truth calls for {len(idle)} injection task(s): "
                f"{', '.join(sorted(idle, key=_task_number))}; the scripted agent has nothing "
                "to attempt, so those pairs cannot succeed here. Over the other pairs, all "
                f"attacks: ASR {_pct(sum(r.attacked for r in g), len(g))} guarded, "
                f"{_pct(sum(r.attacked for r in b), len(b))} baseline ({len(g)} runs each); "
                f"approvals requested per run (guarded) "
                f"{sum(r.approvals for r in g) / max(len(g), 1):.2f}.")
        if report is not None:
            notes.append(f"  Audit log: {report.records} records, verifies: {report.ok}.")
        guard.close()
    elapsed = time.perf_counter() - started

    lines = [f"# AgentDojo {BENCHMARK_VERSION} attack replay", "",
             f"`python benchmarks/agentdojo/run.py` · {elapsed:.0f} s · "
             f"attacks: {', '.join(attacks)}", "",
             *_table("With langchain-secure (GuardedToolNode, the suite's policy)", guarded),
             *_table("Baseline: the same agent with a bare ToolNode", baseline),
             "### Notes", "", *notes, ""]
    failing = [(s, t, sum(not r.utility for r in runs), len(runs))
               for s, tasks in per_task.items() for t, runs in tasks.items()
               if any(not r.utility for r in runs)]
    if failing:
        lines += ["### User tasks that lost utility under attack (guarded)", "",
                  "| suite | user task | runs without utility |", "|---|---|---:|"]
        lines += [f"| {s} | {t} | {bad} of {n} |" for s, t, bad, n in failing]
        lines.append("")
    if succeeded:
        lines += ["### Attacks that succeeded (guarded)", "",
                  "| suite | attack | injection task | user task | audit thread |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r.suite} | {r.attack} | {r.injection_task} | {r.user_task} | "
                  f"`{r.thread_id}` |" for r in succeeded]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
