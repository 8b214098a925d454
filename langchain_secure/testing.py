"""Fakes to test guarded agents with: no network, no keys, deterministic.

:class:`ScriptedChatModel` is a tool-calling chat model that replays a script.
The reply it gives depends only on its input (the number of AI messages already
in the conversation), never on hidden counters, so a graph that is interrupted,
checkpointed and resumed in another process gets the same replies.

Example:
    ```python
    from langchain_secure.testing import ScriptedChatModel, tool_call

    model = ScriptedChatModel(script=[
        [tool_call("search", query="refund policy")],   # turn 1: one tool call
        "Refunds take five days.",                        # turn 2: a plain answer
    ])
    first = model.invoke("How long do refunds take?")
    first.tool_calls[0]["name"]  # 'search'
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Union

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

__all__ = ["ScriptStep", "ScriptedChatModel", "tool_call"]

ScriptStep = Union[  # noqa: UP007 - pydantic needs a runtime type here
    AIMessage,
    str,
    Sequence[ToolCall],
    Callable[[Sequence[BaseMessage]], AIMessage],
]
"""One reply: a message, a text, a list of tool calls, or a function of the input."""

EXHAUSTED_MESSAGE = (
    "ScriptedChatModel has no step {index} (the script has {length} steps); "
    "add a step or set exhausted='stop'"
)


def tool_call(name: str, *, id: str | None = None, **args: Any) -> ToolCall:
    """A tool call for a script step; the id is filled in when omitted."""
    return ToolCall(name=name, args=args, id=id, type="tool_call")


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays a script of replies, one per model turn.

    Step ``n`` answers the conversation that already holds ``n`` AI messages.
    Tool calls without an id get ``call_<step>_<index>``. ``bind_tools`` is
    accepted and records the tools, so the model drops into any agent.

    Args:
        script: The replies, in order.
        exhausted: When the script runs out: ``"raise"`` (default) a
            ``ValueError``, or ``"stop"``: reply with an empty message and no
            tool calls, which ends a ReAct loop.

    Example:
        ```python
        from langchain_secure.testing import ScriptedChatModel

        ScriptedChatModel(script=["hello"]).invoke("hi").content  # 'hello'
        ```
    """

    script: list[Any] = Field(default_factory=list)
    exhausted: str = "raise"
    bound_tools: list[Any] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """Return a copy that remembers the tools; replies are unaffected."""
        return self.model_copy(update={"bound_tools": list(tools)})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        index = sum(isinstance(m, AIMessage) for m in messages)
        if index >= len(self.script):
            if self.exhausted == "stop":
                return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
            raise ValueError(EXHAUSTED_MESSAGE.format(index=index, length=len(self.script)))
        message = self._message(self.script[index], messages, index)
        return ChatResult(generations=[ChatGeneration(message=message)])

    @staticmethod
    def _message(step: Any, messages: list[BaseMessage], index: int) -> AIMessage:
        if isinstance(step, AIMessage):
            message = step
        elif isinstance(step, str):
            message = AIMessage(content=step)
        elif callable(step):
            message = step(messages)
        else:
            message = AIMessage(content="", tool_calls=list(step))
        if any(call.get("id") is None for call in message.tool_calls):
            calls = [
                {**call, "id": call.get("id") or f"call_{index}_{n}"}
                for n, call in enumerate(message.tool_calls)
            ]
            message = message.model_copy(update={"tool_calls": calls})
        return message
