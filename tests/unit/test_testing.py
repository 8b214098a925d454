from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_secure.testing import ScriptedChatModel, tool_call


def test_steps_follow_the_number_of_ai_messages() -> None:
    model = ScriptedChatModel(script=[[tool_call("search", q="x")], "answer"])
    first = model.invoke([HumanMessage("q")])
    assert first.tool_calls == [{"name": "search", "args": {"q": "x"}, "id": "call_0_0",
                                 "type": "tool_call"}]
    second = model.invoke([HumanMessage("q"), first,
                           ToolMessage("r", tool_call_id="call_0_0")])
    assert second.content == "answer"
    # replaying the same input gives the same reply: no hidden counter
    assert model.invoke([HumanMessage("q")]).tool_calls == first.tool_calls


def test_explicit_ids_and_messages_and_callables() -> None:
    model = ScriptedChatModel(script=[
        [tool_call("a", id="mine")],
        AIMessage("literal"),
        lambda messages: AIMessage(f"saw {len(messages)}"),
    ])
    assert model.invoke("x").tool_calls[0]["id"] == "mine"
    history = [HumanMessage("x"), AIMessage("1")]
    assert model.invoke(history).content == "literal"
    assert model.invoke([*history, AIMessage("2")]).content == "saw 3"


def test_exhausted() -> None:
    with pytest.raises(ValueError, match="has no step 1 \\(the script has 1 steps\\)"):
        ScriptedChatModel(script=["a"]).invoke([AIMessage("a")])
    stop = ScriptedChatModel(script=[], exhausted="stop").invoke("x")
    assert (stop.content, stop.tool_calls) == ("", [])


def test_bind_tools_returns_a_model() -> None:
    model = ScriptedChatModel(script=["a"])
    bound = model.bind_tools([lambda: None])
    assert isinstance(bound, ScriptedChatModel)
    assert len(bound.bound_tools) == 1
    assert bound.invoke("x").content == "a"
