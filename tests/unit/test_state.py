from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from langchain_secure import merge_security_state
from langchain_secure.state import state_delta

labels = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6)
counts = st.dictionaries(st.sampled_from(["t1", "t2", "t3"]), st.integers(0, 5), max_size=3)
states = st.fixed_dictionaries(
    {"labels": labels.map(lambda xs: list(dict.fromkeys(xs))), "tool_calls": counts,
     "total_calls": st.integers(0, 20)})


def test_merge_unions_labels_in_order_and_adds_counts() -> None:
    merged = merge_security_state(
        {"labels": ["x", "y"], "tool_calls": {"a": 1}, "total_calls": 1},
        {"labels": ["y", "z"], "tool_calls": {"a": 2, "b": 1}, "total_calls": 3},
    )
    assert merged == {"labels": ["x", "y", "z"], "tool_calls": {"a": 3, "b": 1},
                      "total_calls": 4}


def test_merge_of_nothing() -> None:
    empty = {"labels": [], "tool_calls": {}, "total_calls": 0}
    assert merge_security_state(None, None) == empty
    assert merge_security_state({}, {}) == empty


def test_state_delta() -> None:
    assert state_delta([("read", ["reads_sensitive"]), ("send", ["egress"]), ("read", [])]) == {
        "labels": ["reads_sensitive", "egress"], "tool_calls": {"read": 2, "send": 1},
        "total_calls": 3}


@given(states, states, states)
def test_merge_is_associative_and_never_forgets(a, b, c) -> None:
    left = merge_security_state(merge_security_state(a, b), c)
    right = merge_security_state(a, merge_security_state(b, c))
    assert left == right
    assert set(a["labels"]) | set(b["labels"]) | set(c["labels"]) == set(left["labels"])
    assert len(left["labels"]) == len(set(left["labels"]))
    assert left["total_calls"] == a["total_calls"] + b["total_calls"] + c["total_calls"]


@given(states, states)
def test_merge_does_not_modify_inputs(a, b) -> None:
    before = (repr(a), repr(b))
    merge_security_state(a, b)
    assert (repr(a), repr(b)) == before
