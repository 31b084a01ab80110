"""The JSON serializers' orjson path writes what the stdlib path writes, byte for byte.

orjson is used only for values ``kafka_sink._speedups.plain_json`` accepts
(None, bool, int, str, and lists, tuples and str-keyed dicts of those); the
stdlib encoder of :mod:`kafka_sink.serialization` is the reference for all.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sink import _speedups
from kafka_sink import serialization as serialization_module
from kafka_sink.serialization import _stdlib_json_bytes, to_json_bytes

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(),  # every code point: control characters, quotes, U+2028, lone surrogates
)
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(value=plain)
def test_orjson_writes_the_stdlib_bytes_for_every_plain_value(value: Any) -> None:
    assert _speedups.plain_json(value)
    reference = _stdlib_json_bytes(value)
    try:
        fast = orjson.dumps(value)
    except orjson.JSONEncodeError:  # lone surrogates: to_json_bytes takes the stdlib path
        fast = reference
    assert fast == reference
    assert to_json_bytes(value) == reference


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


class Level(enum.IntEnum):
    INFO = 20


class Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        [1e16],
        {"nan": float("nan")},
        {1: "int key"},
        {("a",): 1},
        2**64,
        Level.INFO,
        Text("a str subclass"),
        {"set": {1, 2}},
        b"bytes",
        _nested(70),  # deeper than plain_json looks
    ],
    ids=repr,
)
def test_values_orjson_writes_differently_take_the_stdlib_path(value: Any) -> None:
    assert not _speedups.plain_json(value)
    assert to_json_bytes(value) == _stdlib_json_bytes(value)


def test_the_serializers_use_orjson_on_the_compiled_path() -> None:
    from kafka_sink._accel import IMPLEMENTATION

    expected = orjson.dumps if IMPLEMENTATION == "compiled" else None
    assert serialization_module._orjson_dumps is expected
