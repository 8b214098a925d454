from __future__ import annotations

import datetime as dt
import hashlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_secure.audit.canonical import canonical_json, utc_timestamp
from langchain_secure.audit.chain import (
    chain_hash,
    genesis_hash,
    inclusion_path,
    merkle_root,
    root_from_path,
)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é", None, True]}) == (
        '{"a":[1.5,"é",null,true],"b":1}'.encode())


def test_canonical_json_of_awkward_values() -> None:
    moment = dt.datetime(2026, 11, 21, 6, 50, 0, 123456, tzinfo=dt.timezone.utc)
    assert canonical_json({"t": moment, "b": b"\x00\xff", "s": {2, 1}, "n": math.nan,
                           "k": {1: "x"}}) == (
        b'{"b":{"$bytes":"AP8="},"k":{"1":"x"},"n":{"$float":"nan"},"s":[1,2],'
        b'"t":"2026-11-21T06:50:00.123456Z"}')


def test_utc_timestamp_of_naive_and_aware() -> None:
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert utc_timestamp(naive) == "2026-01-02T03:04:05.000000Z"
    plus_one = dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert utc_timestamp(plus_one) == "2026-01-02T03:04:05.000000Z"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=15)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_canonical_json_round_trips_to_the_same_bytes(value: object) -> None:
    import json

    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once


def test_chain_hash_binds_prev_seq_and_data() -> None:
    g = genesis_hash("log-a")
    assert g != genesis_hash("log-b")
    h = chain_hash(g, 1, b"{}")
    assert h == hashlib.sha256(g + (1).to_bytes(8, "big") + b"{}").digest()
    assert h != chain_hash(g, 2, b"{}")
    assert h != chain_hash(g, 1, b"{ }")


def test_merkle_root_of_one_and_two() -> None:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    leaf = lambda h: hashlib.sha256(b"\x00" + h).digest()  # noqa: E731
    assert merkle_root([a]) == leaf(a)
    assert merkle_root([a, b]) == hashlib.sha256(b"\x01" + leaf(a) + leaf(b)).digest()
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle_root([])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_path_leads_to_the_root(size_index: tuple[int, int]) -> None:
    size, index = size_index
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    root = merkle_root(hashes)
    path = inclusion_path(hashes, index)
    assert root_from_path(hashes[index], index, size, path) == root
    # any other leaf, or any changed sibling, leads elsewhere
    other = hashlib.sha256(b"other").digest()
    assert root_from_path(other, index, size, path) != root
    for i in range(len(path)):
        bad = list(path)
        bad[i] = other
        assert root_from_path(hashes[index], index, size, bad) != root


def test_malformed_paths_are_errors() -> None:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    path = inclusion_path(hashes, 2)
    with pytest.raises(ValueError, match="too short"):
        root_from_path(hashes[2], 2, 5, path[:-1])
    with pytest.raises(ValueError, match="too long"):
        root_from_path(hashes[2], 2, 5, [*path, hashes[0]])
    with pytest.raises(ValueError, match="outside"):
        root_from_path(hashes[2], 5, 5, path)
