"""Guard events as Langfuse ``guardrail`` observations in the agent's own trace.

:class:`LangfuseGuardrails` is a LangChain callback handler that goes next to
``langfuse.langchain.CallbackHandler``. The Langfuse handler turns each
LangChain run (the graph, the ``tools`` node, a tool, a model call) into an
observation and keeps them by run id; every guard event arrives here with the
id of the run it happened in, so its guardrail observation becomes a child of
that run's observation, in the same trace.

Tracing never slows or breaks the agent: observations are created in memory and
exported by the SDK's background span processor; no exception leaves a callback;
an unreachable Langfuse costs one warning; :meth:`LangfuseGuardrails.flush` and
:meth:`LangfuseGuardrails.shutdown` return within their bound.

Langfuse SDK internals relied on (``langfuse>=3``, checked against 5.0.4), each
with a fallback:

* ``CallbackHandler._runs`` (run id -> observation) and ``_run_states`` (run id ->
  parent and root run ids), to find the observation of the run an event happened
  in (and the root's, to tag the trace). Without them, the observation is
  parented to the current OpenTelemetry span.
* ``LangfuseObservationWrapper._otel_span``, to add the ``langfuse.trace.tags``
  attribute (the SDK has no public trace-tag update since v4).
* ``CallbackHandler._langfuse_client``, the client the handler exports with.
  Without it, ``langfuse.get_client(public_key=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from langchain_secure.events import GUARD_EVENT
from langchain_secure.tracing.observation import GuardObservation, guard_observation

if TYPE_CHECKING:
    from langfuse import Langfuse

__all__ = ["INSTALL_MESSAGE", "LangfuseGuardrails", "thread_trace_id"]

INSTALL_MESSAGE = ("LangfuseGuardrails needs the Langfuse SDK; install with: "
                   "pip install 'langchain-secure[langfuse]'")
"""The ``ImportError`` message when the ``langfuse`` extra is missing."""

UNREACHABLE_MESSAGE = ("Langfuse did not take the traces within %.1f s (is %s reachable?); "
                       "the agent is unaffected and export goes on in the background")
FAILED_MESSAGE = "could not trace a guard event in Langfuse (%s); the agent is unaffected"
UNPARENTED_MESSAGE = ("a guard event's run has no Langfuse observation (add "
                      "langfuse.langchain.CallbackHandler to the same callbacks); it is "
                      "traced under the current span or in a trace of its own")

_TRACE_TAGS = "langfuse.trace.tags"
_MAX_ANCESTORS = 64
logger = logging.getLogger("langchain_secure.tracing")


def _langfuse_handler_class() -> type[Any]:
    try:
        from langfuse.langchain import CallbackHandler
    except ImportError:
        raise ImportError(INSTALL_MESSAGE) from None
    return CallbackHandler


def _runs(handler: Any) -> Any:
    """The handler's run id -> observation map (``_runs`` in SDK 5, ``runs`` before)."""
    runs = getattr(handler, "_runs", None)
    return runs if isinstance(runs, dict) else getattr(handler, "runs", None)


def thread_trace_id(thread_id: str, *, turn: str | None = None) -> str:
    """The Langfuse trace id of a conversation thread (or of one turn of it), in any process.

    The Langfuse LangChain handler starts a new trace for every ``invoke``; a
    LangGraph interrupt ends the first one, so the resume would land in a trace
    of its own. Give both runs the same trace id instead:
    ``CallbackHandler(trace_context={"trace_id": thread_trace_id(tid)})``. It is
    derived from the thread id alone, so a resume from another process (or
    another handler instance) joins the trace of the interrupted run.

    Args:
        thread_id: The LangGraph ``thread_id``.
        turn: Something the application knows on both the first run and the
            resume of one turn (a request id, the id of the user's message), for
            a trace per turn instead of one per thread.

    Returns:
        32 lowercase hex digits (``Langfuse.create_trace_id(seed=...)``).

    Raises:
        ImportError: The ``langfuse`` extra is not installed.
        ValueError: ``thread_id`` or ``turn`` is empty.
    """
    if not isinstance(thread_id, str) or not thread_id:
        raise ValueError(f"thread_id must be a non-empty string, got {thread_id!r}")
    if turn is not None and (not isinstance(turn, str) or not turn):
        raise ValueError(f"turn must be a non-empty string or None, got {turn!r}")
    _langfuse_handler_class()
    from langfuse import Langfuse

    seed = f"langchain-secure:thread:{thread_id}" + (f":turn:{turn}" if turn else "")
    return Langfuse.create_trace_id(seed=seed)


class LangfuseGuardrails(BaseCallbackHandler):
    """Every guard decision, review and scan as a ``guardrail`` observation in Langfuse.

    Add it next to the Langfuse LangChain handler; each guard event becomes a
    child of the observation of the run it happened in (the ``tools`` node, a
    tool, a model call) with the call as input (arguments as the guard
    published them: hash-only ones keyed-hashed, secrets redacted), the
    action, rule and reason as output, persona, thread, audit receipt and risk
    as metadata, and a level: ``ERROR`` (denied, blocked, quarantined),
    ``WARNING`` (held for approval, flagged but passed) or ``DEFAULT``. The trace
    gets the score ``injection_risk`` (the highest scan risk seen in it) and the
    tag ``blocked`` when anything was denied or blocked.

    Args:
        handler: The ``langfuse.langchain.CallbackHandler`` of the same run; with
            ``None`` it is looked up among the run's callbacks at each event.
        public_key: The Langfuse project, for events with no handler to take
            the client from (and :meth:`flush` without one).
        dedupe: Trace a call's decision once even though the node publishes it
            again when it re-runs after an interrupt (keyed by thread, call,
            kind and action).
        score_name: The trace score that holds the highest risk seen.
        blocked_tag: The trace tag added when anything was denied or blocked.
        flush_timeout_s: The default bound of :meth:`flush` and :meth:`shutdown`.
        max_tracked: How many traces and calls are remembered (for the score and
            for ``dedupe``), oldest forgotten first.

    Raises:
        ImportError: The ``langfuse`` extra is not installed.
        TypeError: ``handler`` is not a Langfuse LangChain ``CallbackHandler``.
        ValueError: An option is out of range.

    Example:
        ```python
        from langfuse import Langfuse
        from langfuse.langchain import CallbackHandler

        from langchain_secure.tracing import LangfuseGuardrails, TraceRedactor

        Langfuse(public_key="pk-lf-doc", secret_key="sk-lf-doc",  # or the environment
                 base_url="http://127.0.0.1:9", mask_otel_spans=TraceRedactor(secrets="off"))
        langfuse_handler = CallbackHandler(public_key="pk-lf-doc")
        guardrails = LangfuseGuardrails(langfuse_handler)
        config = {"callbacks": [langfuse_handler, guardrails],
                  "configurable": {"thread_id": "t1"}}
        # graph.invoke(inputs, config) ... then, at exit:
        delivered = guardrails.flush(timeout_s=0.1)  # never hangs
        assert delivered in (True, False)
        ```
    """

    raise_error = False
    run_inline = True

    def __init__(self, handler: Any = None, *, public_key: str | None = None,
                 dedupe: bool = True, score_name: str = "injection_risk",
                 blocked_tag: str = "blocked", flush_timeout_s: float = 5.0,
                 max_tracked: int = 4096) -> None:
        handler_class = _langfuse_handler_class()
        if handler is not None and not isinstance(handler, handler_class):
            raise TypeError("handler must be a langfuse.langchain.CallbackHandler, got "
                            f"{type(handler).__name__}")
        if public_key is not None and (not isinstance(public_key, str) or not public_key):
            raise ValueError(f"public_key must be a non-empty string, got {public_key!r}")
        if not isinstance(dedupe, bool):
            raise ValueError(f"dedupe must be a bool, got {dedupe!r}")
        for option, value in (("score_name", score_name), ("blocked_tag", blocked_tag)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{option} must be a non-empty string, got {value!r}")
        if (isinstance(flush_timeout_s, bool) or not isinstance(flush_timeout_s, int | float)
                or not 0 < flush_timeout_s <= 600):
            raise ValueError(f"flush_timeout_s must be in (0, 600], got {flush_timeout_s!r}")
        if isinstance(max_tracked, bool) or not isinstance(max_tracked, int) or max_tracked < 1:
            raise ValueError(f"max_tracked must be a positive int, got {max_tracked!r}")
        self.handler = handler
        self.public_key = public_key
        self.dedupe = dedupe
        self.score_name = score_name
        self.blocked_tag = blocked_tag
        self.flush_timeout_s = float(flush_timeout_s)
        self.max_tracked = max_tracked
        self._handler_class = handler_class
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._risk: OrderedDict[str, float] = OrderedDict()
        self._warned: set[str] = set()
        self.traced = 0
        """Guardrail observations created."""
        self.duplicates = 0
        """Events skipped as re-published after an interrupt (``dedupe``)."""
        self.unparented = 0
        """Observations created without the observation of their run."""
        self.failures = 0
        """Events that could not be traced (each logged at debug level; one warning)."""

    # -- the callback --------------------------------------------------------------------

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID,
                        tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                        **kwargs: Any) -> None:
        """Trace a guard event; never raises."""
        if name != GUARD_EVENT:
            return
        try:
            self._trace(data, run_id)
        except Exception as exc:  # tracing never breaks the agent
            with self._lock:
                self.failures += 1
            logger.debug("could not trace a guard event", exc_info=True)
            self._warn_once("failed", FAILED_MESSAGE, type(exc).__name__)

    def _trace(self, data: Any, run_id: UUID) -> None:
        obs = guard_observation(data)
        if self.dedupe and obs.key is not None:
            with self._lock:
                if obs.key in self._seen:
                    self.duplicates += 1
                    return
                self._remember(self._seen, obs.key, None)
        handler = self._find_handler()
        parent = self._parent_observation(handler, run_id) if handler is not None else None
        fields: dict[str, Any] = {
            "name": obs.name, "as_type": "guardrail", "input": obs.input,
            "output": obs.output, "metadata": obs.metadata, "level": obs.level,
            "status_message": obs.status_message}
        if parent is not None:
            span = parent.start_observation(**fields)
        else:
            with self._lock:
                self.unparented += 1
            self._warn_once("unparented", UNPARENTED_MESSAGE)
            span = self._client(handler).start_observation(**fields)
        try:
            if obs.blocked:
                self._tag(span)
                root = self._root_observation(handler, run_id) if handler is not None else None
                if root is not None:  # the trace's own attributes, as the root span carries them
                    self._tag(root)
        finally:
            span.end()
        with self._lock:
            self.traced += 1
        self._score(span, obs)

    def _tag(self, observation: Any) -> None:
        otel_span = observation._otel_span
        if not otel_span.is_recording():
            return
        current = getattr(otel_span, "attributes", None) or {}
        tags = list(current.get(_TRACE_TAGS) or ())
        if self.blocked_tag not in tags:
            otel_span.set_attribute(_TRACE_TAGS, [*tags, self.blocked_tag])

    def _score(self, span: Any, obs: GuardObservation) -> None:
        if obs.risk is None:
            return
        trace_id = str(span.trace_id)
        with self._lock:
            highest = self._risk.get(trace_id)
            if highest is not None and highest >= obs.risk:
                return
            self._remember(self._risk, trace_id, obs.risk)
        from langfuse import Langfuse

        # one score per trace, updated in place: the same id every time
        span.score_trace(name=self.score_name, value=obs.risk, data_type="NUMERIC",
                         score_id=Langfuse.create_trace_id(
                             seed=f"{trace_id}:{self.score_name}"),
                         comment=f"highest guard scan risk, from {obs.name}")

    def _remember(self, table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.max_tracked:
            table.popitem(last=False)

    # -- finding the run's observation ---------------------------------------------------

    def _find_handler(self) -> Any:
        if self.handler is not None:
            return self.handler
        from langchain_core.runnables.config import var_child_runnable_config

        config = var_child_runnable_config.get()
        callbacks = config.get("callbacks") if config else None
        if callbacks is None:
            return None
        handlers = (list(callbacks) if isinstance(callbacks, list)
                    else [*getattr(callbacks, "handlers", ()),
                          *getattr(callbacks, "inheritable_handlers", ())])
        return next((h for h in handlers if isinstance(h, self._handler_class)), None)

    @staticmethod
    def _parent_observation(handler: Any, run_id: UUID) -> Any:
        runs = _runs(handler)
        states = getattr(handler, "_run_states", None)
        if not isinstance(runs, dict):
            return None
        current: UUID | None = run_id
        for _ in range(_MAX_ANCESTORS):
            if current is None:
                break
            if current in runs:
                return runs[current]
            state = states.get(current) if isinstance(states, dict) else None
            current = getattr(state, "parent_run_id", None)
        return None

    @staticmethod
    def _root_observation(handler: Any, run_id: UUID) -> Any:
        runs, states = _runs(handler), getattr(handler, "_run_states", None)
        state = states.get(run_id) if isinstance(states, dict) else None
        root = getattr(state, "root_run_id", None)
        return runs.get(root) if isinstance(runs, dict) and root is not None else None

    def _client(self, handler: Any) -> Langfuse:
        client = getattr(handler, "_langfuse_client", None) if handler is not None else None
        if client is None:
            from langfuse import get_client

            client = get_client(public_key=self.public_key)
        return client

    # -- delivery ------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send what is buffered; return within ``timeout_s`` whatever Langfuse does.

        Args:
            timeout_s: The bound, in seconds (default: ``flush_timeout_s``).

        Returns:
            ``True`` when everything was handed to Langfuse in time, ``False`` when
            the bound passed first (logged once as a warning; export goes on in a
            background thread).
        """
        return self._bounded("flush", lambda client: client.flush(), timeout_s)

    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Flush and stop the Langfuse client's background threads, within ``timeout_s``.

        Args:
            timeout_s: The bound, in seconds (default: ``flush_timeout_s``).

        Returns:
            ``True`` when the client shut down in time, ``False`` otherwise.
        """
        return self._bounded("shutdown", lambda client: client.shutdown(), timeout_s)

    async def aflush(self, timeout_s: float | None = None) -> bool:
        """:meth:`flush` without blocking the event loop."""
        return await asyncio.to_thread(self.flush, timeout_s)

    async def ashutdown(self, timeout_s: float | None = None) -> bool:
        """:meth:`shutdown` without blocking the event loop."""
        return await asyncio.to_thread(self.shutdown, timeout_s)

    def _bounded(self, what: str, call: Callable[[Any], None], timeout_s: float | None) -> bool:
        bound = self.flush_timeout_s if timeout_s is None else timeout_s
        if isinstance(bound, bool) or not isinstance(bound, int | float) or bound <= 0:
            raise ValueError(f"timeout_s must be a positive number, got {timeout_s!r}")
        done, succeeded = threading.Event(), []
        try:
            client = self._client(self.handler)
        except Exception:
            logger.debug("no Langfuse client to %s", what, exc_info=True)
            return False

        def run() -> None:
            try:
                call(client)
                succeeded.append(True)
            except Exception:
                logger.debug("Langfuse %s failed", what, exc_info=True)
            finally:
                done.set()

        threading.Thread(target=run, name=f"langchain-secure-langfuse-{what}",
                         daemon=True).start()
        if done.wait(bound) and succeeded:
            return True
        self._warn_once("unreachable", UNREACHABLE_MESSAGE, bound,
                        getattr(client, "_base_url", "the Langfuse host"))
        return False

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        logger.warning(message, *args)
