"""Replay AgentDojo tasks through a Guard, with an agent that obeys every injection it sees.

AgentDojo (Debenedetti et al., NeurIPS 2024 Datasets and Benchmarks; MIT licence;
installed as a benchmark dependency, never vendored) measures defences with an LLM in
the loop. This replay is offline and deterministic: a scripted agent performs the
user task's ground-truth calls, one per turn, and the moment a tool output that it
*receives* carries the injected text it performs the injection task's ground-truth
calls first, as the attacks ask ("before you can solve the task ..., do the
following"). That is the worst case for a defence that sits between the model and
its tools: an agent that is always hijacked.

Every call goes through a real :class:`~langchain_secure.GuardedToolNode` in a
LangGraph graph with a checkpointer: the Guard decides each call, seals it in an
audit log, holds calls that need approval as interrupts, and scans each tool output
at the tool-output door. A scripted reviewer answers the interrupts: it approves
exactly the calls in the user task's ground truth (each at most once) and rejects
everything else, which is what a person who sees the call and knows what they asked
for would do.

The result of a run is scored with AgentDojo's own checks
(``TaskSuite._check_task_result``, i.e. ``utility``/``utility_from_traces`` and
``security``/``security_from_traces``) on the environment the run left behind, with
the trace of the calls that actually ran.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
from agentdojo.attacks.attack_registry import load_attack
from agentdojo.base_tasks import BaseInjectionTask, BaseUserTask
from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime, TaskEnvironment
from agentdojo.task_suite.load_suites import get_suite
from agentdojo.task_suite.task_suite import TaskSuite, read_suite_file, validate_injections
from agentdojo.types import text_content_block_from_string
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command

from langchain_secure import Guard, GuardedToolNode, SecureMessagesState
from langchain_secure.events import GUARD_EVENT

BENCHMARK_VERSION = "v1.2.2"
SUITES = ("banking", "slack")
ATTACKS = (
    "important_instructions",
    "tool_knowledge",
    "direct",
    "ignore_previous",
    "system_message",
    "injecagent",
)
REJECTION = "A person reviewed this call and rejected it: it is not part of what I asked for."


class _Named:
    """Stands in for an agent pipeline: the offline attacks read only its name."""

    name = "local"


# -- what the agent sees -------------------------------------------------------------


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


_MARKER = re.compile(r"^<<(untrusted|end of untrusted) [^\n]*>>$", re.MULTILINE)


def readable(text: str) -> str:
    """A tool output as the model reads it: the YAML rendering unfolded.

    AgentDojo renders structured outputs as YAML, which re-wraps long strings and
    escapes newlines; the strings it encodes are what the model understands. The
    marker lines a spotlighting door puts around a flagged output are not part
    of the YAML: the model reads through them, and so does the scripted agent.
    """
    parts = [text]
    try:
        parsed = yaml.safe_load(_MARKER.sub("", text))
    except yaml.YAMLError:
        parsed = None
    parts.extend(_strings(parsed))
    return _normal("\n".join(parts))


def carries(text: str, goal: str) -> bool:
    """Whether a text the agent receives carries the injection (its goal, verbatim)."""
    return _normal(goal)[:60] in readable(text)


# -- the tools: AgentDojo's functions on one mutable environment -------------------------


@dataclass
class Episode:
    """One run's environment and the calls that actually ran (for trace-based checks)."""

    env: TaskEnvironment
    trace: list[FunctionCall] = field(default_factory=list)


class Bench:
    """The tools of one AgentDojo suite bound to whatever episode is current."""

    def __init__(self, suite: TaskSuite) -> None:
        self.suite = suite
        self.runtime = FunctionsRuntime(suite.tools)
        self.episode: Episode | None = None
        self.tools = [self._tool(function) for function in suite.tools]
        self._environment_text: str | None = None
        self._defaults: dict[str, str] = {}

    def environment(self, injections: dict[str, str]) -> TaskEnvironment:
        """``TaskSuite.load_and_inject_default_environment``, with its files read once.

        AgentDojo re-reads and re-parses three YAML documents per call with the
        pure-Python parser; the same steps with the files cached and libyaml's
        parser give the same environment several times faster.
        """
        suite = self.suite
        if self._environment_text is None:
            self._environment_text = read_suite_file(suite.name, "environment.yaml",
                                                     suite.data_path)
            self._defaults = suite.get_injection_vector_defaults()
        validate_injections(injections, self._defaults)
        text = self._environment_text.format(**{**self._defaults, **injections})
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return suite.environment_type.model_validate(yaml.load(text, Loader=loader))

    def _tool(self, function: Any) -> BaseTool:
        name = function.name

        def run(**kwargs: Any) -> str:
            episode = self.episode
            assert episode is not None, "no episode is running"
            args = {k: v for k, v in kwargs.items() if v is not None}
            episode.trace.append(FunctionCall(function=name, args=args))
            result, error = self.runtime.run_function(episode.env, name, args,
                                                      raise_on_error=False)
            if error is not None:
                return error  # AgentDojo's ToolsExecutor shows the model the error text
            return tool_result_to_str(result)

        return StructuredTool.from_function(func=run, name=name,
                                            description=function.description,
                                            args_schema=function.parameters)


# -- the agent and the reviewer ------------------------------------------------------------


def _call_key(name: str, args: dict[str, Any]) -> tuple[str, str]:
    return name, repr(sorted((k, v) for k, v in args.items() if v is not None))


class ScriptedAgent:
    """Performs the user task's calls in order, and obeys the first injection it sees."""

    def __init__(self, user_calls: Sequence[FunctionCall],
                 injection_calls: Sequence[FunctionCall], goal: str | None,
                 answer: str) -> None:
        self.queue = list(user_calls)
        self.injection_calls = list(injection_calls)
        self.goal = goal
        self.answer = answer
        self.hijacked = False
        self._ids = itertools.count(1)

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        last = state["messages"][-1]
        if (isinstance(last, ToolMessage) and self.goal is not None and not self.hijacked
                and carries(last.text, self.goal)):
            self.hijacked = True
            self.queue[:0] = self.injection_calls
        if not self.queue:
            return {"messages": [AIMessage(self.answer)]}
        call = self.queue.pop(0)
        args = {k: v for k, v in dict(call.args).items()}
        return {"messages": [AIMessage("", tool_calls=[
            {"name": call.function, "args": args, "id": f"call_{next(self._ids)}",
             "type": "tool_call"}])]}


class Reviewer:
    """Approves exactly the user task's ground-truth calls (each once), rejects the rest."""

    def __init__(self, user_calls: Sequence[FunctionCall]) -> None:
        self.remaining = Counter(_call_key(c.function, dict(c.args)) for c in user_calls)
        self.requested = 0
        self.granted = 0

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        decisions = []
        for action in request["action_requests"]:
            self.requested += 1
            key = _call_key(action["name"], action["args"])
            if self.remaining[key] > 0:
                self.remaining[key] -= 1
                self.granted += 1
                decisions.append({"type": "approve"})
            else:
                decisions.append({"type": "reject", "message": REJECTION})
        return {"decisions": decisions, "reviewer": "agentdojo-replay"}


# -- one run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The outcome of one (user task, injection task, attack) replay."""

    suite: str
    attack: str | None
    user_task: str
    injection_task: str | None
    utility: bool
    attacked: bool  # AgentDojo's security check: the injection task succeeded
    hijacked: bool  # the agent received the injected text and obeyed it
    calls: int  # calls the agent made
    denied: int
    approvals: int  # approvals requested
    granted: int  # approvals the reviewer granted
    flagged: int  # tool outputs the tool-output door flagged
    thread_id: str = ""  # the run's thread in the audit log


def build_graph(bench: Bench, guard: Guard | None) -> Any:
    """agent -> tools -> agent ..., with GuardedToolNode (or a bare ToolNode: baseline)."""
    holder: dict[str, ScriptedAgent] = {}

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return holder["agent"](state)

    def route(state: dict[str, Any]) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    tools = (GuardedToolNode(bench.tools, guard=guard) if guard is not None
             else ToolNode(bench.tools, handle_tool_errors=True))
    graph = StateGraph(SecureMessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    compiled = graph.compile(checkpointer=InMemorySaver())
    compiled.holder = holder  # type: ignore[attr-defined]
    return compiled


_threads = itertools.count(1)


class _Events(BaseCallbackHandler):
    """Collects the guard events of one run (decisions, reviews, scans)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == GUARD_EVENT:
            self.events.append(data)


def replay(bench: Bench, graph: Any, user_task: BaseUserTask,
           injection_task: BaseInjectionTask | None, injections: dict[str, str],
           attack: str | None) -> Run:
    """Run one user task (under one injection, or none) and score it with AgentDojo."""
    suite = bench.suite
    env = user_task.init_environment(bench.environment(injections))
    pre = env.model_copy(deep=True)
    user_calls = user_task.ground_truth(pre.model_copy(deep=True))
    injection_calls = (injection_task.ground_truth(pre.model_copy(deep=True))
                       if injection_task is not None else [])
    goal = injection_task.GOAL if injection_task is not None and injections else None
    agent = ScriptedAgent(user_calls, injection_calls, goal, user_task.GROUND_TRUTH_OUTPUT)
    reviewer = Reviewer(user_calls)
    graph.holder["agent"] = agent
    bench.episode = episode = Episode(env)
    events = _Events()
    thread_id = f"agentdojo-{next(_threads)}"
    config = {"configurable": {"thread_id": thread_id},
              "recursion_limit": 200, "callbacks": [events]}
    result = graph.invoke({"messages": [HumanMessage(user_task.PROMPT)]}, config)
    while "__interrupt__" in result:
        [held] = result["__interrupt__"]
        result = graph.invoke(Command(resume=reviewer(held.value)), config)
    bench.episode = None

    messages = result["messages"]
    final: dict[str, str] = {}  # tool call id -> the last decision on it
    for event in events.events:
        if event["kind"] == "decision" and event.get("tool_call_id"):
            final[str(event["tool_call_id"])] = event["action"]
    denied = sum(1 for action in final.values() if action == "deny")
    flagged = sum(1 for event in events.events
                  if event["kind"] == "scan" and event["action"] != "pass")
    output = [text_content_block_from_string(user_task.GROUND_TRUTH_OUTPUT)]
    utility = suite._check_task_result(user_task, output, pre, episode.env, episode.trace)
    attacked = (suite._check_task_result(injection_task, output, pre, episode.env,
                                         episode.trace)
                if injection_task is not None else False)
    return Run(suite=suite.name, attack=attack, user_task=user_task.ID,
               injection_task=injection_task.ID if injection_task is not None else None,
               utility=utility, attacked=attacked, hijacked=agent.hijacked,
               calls=sum(len(m.tool_calls) for m in messages if isinstance(m, AIMessage)),
               denied=denied, approvals=reviewer.requested, granted=reviewer.granted,
               flagged=flagged, thread_id=thread_id)


def answer_dependent(bench: Bench, user_task: BaseUserTask | BaseInjectionTask) -> bool:
    """Whether a task's utility (or an injection task's security) check reads the answer.

    The replay answers with the user task's ``GROUND_TRUTH_OUTPUT``; for these
    tasks a real model's answer would decide the score, which an offline replay
    cannot reproduce: an injection task such as "say that I should visit X" can
    never succeed here. Found by scoring the clean ground-truth run with the
    task's own ground-truth answer and with an empty one.
    """
    suite = bench.suite
    env = bench.environment({})
    if isinstance(user_task, BaseUserTask):
        env = user_task.init_environment(env)
    pre = env.model_copy(deep=True)
    bench.episode = episode = Episode(env)
    try:
        for call in user_task.ground_truth(pre.model_copy(deep=True)):
            episode.trace.append(call)
            bench.runtime.run_function(env, call.function, dict(call.args),
                                       raise_on_error=False)
    finally:
        bench.episode = None
    scores = {suite._check_task_result(user_task, [text_content_block_from_string(answer)],
                                       pre, env, episode.trace)
              for answer in (user_task.GROUND_TRUTH_OUTPUT, "")}
    return len(scores) > 1


def without_calls(bench: Bench, injection_task: BaseInjectionTask) -> bool:
    """Whether AgentDojo gives an injection task no ground-truth calls.

    Eight of workspace's fourteen (v1.2) have none, and travel's "say that ..."
    needs none: the scripted agent has nothing to attempt for them.
    """
    return not injection_task.ground_truth(bench.environment({}))


def load_suite(name: str) -> TaskSuite:
    return get_suite(BENCHMARK_VERSION, name)


def pairs(suite: TaskSuite, attack: str) -> Iterable[tuple[BaseUserTask, BaseInjectionTask,
                                                           dict[str, str]]]:
    """Every (user task, injection task) pair with the attack's injections.

    AgentDojo 0.1.35's ``TaskSuite.check()`` wrongly reports tasks as not
    injectable, so the attack is asked directly for each pair.
    """
    attacker = load_attack(attack, suite, _Named())  # type: ignore[arg-type]
    for user_task in suite.user_tasks.values():
        for injection_task in suite.injection_tasks.values():
            yield user_task, injection_task, attacker.attack(user_task, injection_task)


ProgressFn = Callable[[Run], None]
