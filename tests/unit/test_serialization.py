"""kafka_sink.serialization: values as JSON that never raises and is always valid UTF-8."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import logging
import math
import uuid
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sink import InvalidArgumentError
from kafka_sink.serialization import (
    LOG_RECORD_ATTRIBUTES,
    MAX_DEPTH,
    check_option_names,
    exc_info_of,
    exception_fields,
    find_hex_id,
    hex_id,
    invalid_option,
    iso_timestamp,
    jsonable,
    plain_data,
    pop_exc_info,
    qualified_name,
    record_extras,
    record_message,
    safe_repr,
    safe_str,
    seconds_to_ns,
    timestamp_ns,
    to_json_bytes,
)


def _strict(data: bytes) -> Any:
    """Decode as a strict reader would: UTF-8, then JSON without lone surrogates."""
    doc = json.loads(data.decode("utf-8"))
    # Python's decoder turns a "\\udce9" escape into a lone surrogate; strict
    # decoders refuse it. Encoding the result again finds any.
    json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return doc


class _Color(enum.Enum):
    RED = "red"
    RAW = b"\xff"


class _Level(enum.IntEnum):
    HIGH = 3


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "<bad str>"


class _BadDate(datetime.date):
    def isoformat(self) -> str:
        raise RuntimeError("no isoformat")


class _BadMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("cannot iterate")

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return "<bad mapping>"


class _AppError(Exception):
    pass


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (7, 7),
        (1.5, 1.5),
        ("text", "text"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (b"\xff\xfeok", "\\xff\\xfeok"),
        (bytearray(b"ab"), "ab"),
        (memoryview(b"cd"), "cd"),
        (
            datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
            "2024-05-01T12:00:00+00:00",
        ),
        (datetime.date(2024, 5, 1), "2024-05-01"),
        (datetime.time(12, 30), "12:30:00"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (decimal.Decimal("1.10"), "1.10"),
        (PurePosixPath("/tmp/x"), "/tmp/x"),
        (_Color.RED, "red"),
        (_Color.RAW, "\\xff"),
        (_Level.HIGH, 3),
        (ValueError("nope"), "ValueError: nope"),
        (_AppError("boom"), f"{__name__}._AppError: boom"),
        ((1, "a"), [1, "a"]),
        (frozenset({2}), [2]),
        (MappingProxyType({"k": 1}), {"k": 1}),
        (
            {1: "int", False: "bool", None: "none", 1.5: "float"},
            {"1": "int", "false": "bool", "null": "none", "1.5": "float"},
        ),
        ({b"k": 1, (1, 2): 2}, {"k": 1, "(1, 2)": 2}),
        (_BadRepr(), "<unrepresentable _BadRepr object>"),
        (_BadDate(2024, 5, 1), "_BadDate(2024, 5, 1)"),
        (_BadMapping(), "<bad mapping>"),
        ({_BadStr(): 1}, {"<bad str>": 1}),
    ],
)
def test_jsonable_writes_each_type_as_documented(value: object, expected: object) -> None:
    assert jsonable(value) == expected
    # to_json_bytes writes the same, whether or not the encoder can take the value as is.
    assert _strict(to_json_bytes(value)) == expected


def test_plain_data_keeps_bytes_and_non_finite_floats() -> None:
    data = plain_data({"raw": bytearray(b"\xff"), "nan": float("nan"), "tags": {"a"}})
    assert data["raw"] == b"\xff"
    assert type(data["raw"]) is bytes
    assert math.isnan(data["nan"])
    assert data["tags"] == ["a"]


def test_cycles_and_depth_are_cut_short() -> None:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    assert jsonable(loop) == {"name": "loop", "self": "<circular reference to dict>"}
    # The same list twice side by side is no cycle.
    shared = [1]
    assert jsonable([shared, shared]) == [[1], [1]]

    deep: list[Any] = []
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node.append([])
        node = node[0]
    cut = jsonable(deep)
    for _ in range(MAX_DEPTH):
        assert isinstance(cut, list)
        cut = cut[0]
    assert cut == "[" * 6 + "]" * 6  # the rest, as its repr


def test_to_json_bytes_never_raises_on_what_the_encoder_refuses() -> None:
    loop: list[Any] = [1]
    loop.append(MappingProxyType({"again": loop}))
    deep: list[Any] = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    value = {"loop": loop, "deep": deep, "nan": float("nan"), "bad": _BadMapping()}
    doc = _strict(to_json_bytes(value))
    assert doc["loop"] == [1, {"again": "<circular reference to list>"}]
    assert doc["nan"] == "nan"
    assert doc["bad"] == "<bad mapping>"
    assert doc["deep"]


def test_lone_surrogates_become_text_that_strict_readers_accept() -> None:
    name = b"caf\xe9".decode("utf-8", "surrogateescape")  # what os.fsdecode() gives
    data = to_json_bytes({"file": name, "high": "x\ud800y", name: 1})
    # Read back as text with a backslash, never as a surrogate escape such as
    # "\\udce9", which strict decoders refuse.
    assert _strict(data) == {"file": "caf\\xe9", "high": "x\\ud800y", "caf\\xe9": 1}
    assert b'"caf\\\\xe9"' in data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text() | st.integers() | st.none(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_to_json_bytes_writes_what_jsonable_makes_of_the_value(value: object) -> None:
    assert _strict(to_json_bytes(value)) == jsonable(value)


def test_safe_repr_str_and_qualified_name() -> None:
    assert safe_repr(_BadRepr()) == "<unrepresentable _BadRepr object>"
    assert safe_str(_BadStr()) == "<bad str>"
    assert safe_str(3) == "3"
    assert qualified_name(ValueError) == "ValueError"
    assert qualified_name(_AppError) == f"{__name__}._AppError"


# -- log records and exceptions ----------------------------------------------------------


def _record(msg: object, args: Any, **extra: Any) -> logging.LogRecord:
    return logging.getLogger("app").makeRecord(
        "app", logging.INFO, "/src/app.py", 1, msg, args, None, extra=extra or None
    )


def test_log_record_attributes_are_those_of_every_record() -> None:
    record = _record("hello", None, user_id=7)
    assert set(vars(record)) - LOG_RECORD_ATTRIBUTES == {"user_id"}
    assert {"msg", "args", "message", "asctime", "taskName"} <= LOG_RECORD_ATTRIBUTES


def test_record_extras_are_the_added_fields_in_order() -> None:
    record = _record("hello", None, user_id=7, empty=None, otelSpanID="ab", request="r-1")
    assert list(record_extras(record)) == [("user_id", 7), ("otelSpanID", "ab"), ("request", "r-1")]
    assert list(record_extras(record, {"otelSpanID"})) == [("user_id", 7), ("request", "r-1")]


def test_record_message_keeps_a_record_whose_format_fails() -> None:
    assert record_message(_record("hello %s", ("world",))) == "hello world"
    assert record_message(_record("%d and %d", (1,))) == "%d and %d % (1,)"


def _raised() -> BaseException:
    try:
        raise ValueError("disk full")
    except ValueError as error:
        return error


def test_exc_info_of_exceptions_and_tuples() -> None:
    error = _raised()
    assert exc_info_of(error) == (ValueError, error, error.__traceback__)
    assert exc_info_of((ValueError, error, None)) == (ValueError, error, None)
    for value in (None, True, (None, None, None), "text", (1, 2, 3)):
        assert exc_info_of(value) is None


def test_pop_exc_info_takes_what_structlog_means() -> None:
    error = _raised()
    event: dict[str, Any] = {"event": "failed", "exc_info": error}
    assert pop_exc_info(event) == (ValueError, error, error.__traceback__)
    assert event == {"event": "failed"}
    try:
        raise KeyError("sku")
    except KeyError:
        event = {"exc_info": True}
        exc = pop_exc_info(event)  # True: the exception being handled, on this thread
    assert exc is not None
    assert exc[0] is KeyError
    assert event == {}
    for nothing in (None, False, True, (None, None, None)):  # True: nothing is being handled
        event = {"exc_info": nothing}
        assert pop_exc_info(event) is None
        assert event == {}
    event = {"exc_info": "not an exception"}
    assert pop_exc_info(event) is None
    assert event == {"exc_info": "not an exception"}  # left, an ordinary field


def test_exception_fields() -> None:
    exc = exc_info_of(_raised())
    assert exc is not None
    name, message, stack = exception_fields(exc)
    assert (name, message) == ("ValueError", "disk full")
    assert stack is not None
    assert stack.startswith("Traceback (most recent call last):")
    assert stack.endswith("ValueError: disk full")
    assert exception_fields(exc, limit=0) == ("ValueError", "disk full", None)

    class Upper(logging.Formatter):
        def formatException(self, ei: Any) -> str:
            return "FORMATTED\n"

    assert exception_fields(exc, Upper(), limit=0)[2] == "FORMATTED"

    class Broken(logging.Formatter):
        def formatException(self, ei: Any) -> str:
            raise RuntimeError("formatter bug")

    assert exception_fields(exc, Broken())[2] == "ValueError: disk full"
    empty = exc_info_of(ValueError())
    assert empty is not None
    assert exception_fields(empty)[1] is None


# -- timestamps ------------------------------------------------------------------------


def test_iso_timestamp_rounds_to_the_microsecond() -> None:
    # 1700000000.123 is stored as 1700000000.12299990654...: still .123.
    assert iso_timestamp(1_700_000_000.123) == "2023-11-14T22:13:20.123000Z"
    assert iso_timestamp(1_700_000_000.123, 3) == "2023-11-14T22:13:20.123Z"
    assert iso_timestamp(1_700_000_000.9999996) == "2023-11-14T22:13:21.000000Z"
    assert iso_timestamp(0.0) == "1970-01-01T00:00:00.000000Z"


def test_timestamp_ns_reads_what_structlog_writes() -> None:
    assert seconds_to_ns(1_700_000_000.123) == 1_700_000_000_123_000_000
    assert timestamp_ns(1_700_000_000) == 1_700_000_000_000_000_000
    assert timestamp_ns("2023-11-14T22:13:20.123456Z") == 1_700_000_000_123_456_000
    aware = datetime.datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=datetime.timezone.utc)
    assert timestamp_ns(aware) == 1_700_000_000_000_001_000
    naive = datetime.datetime(2023, 11, 14, 22, 13, 20)
    assert timestamp_ns(naive) == seconds_to_ns(naive.timestamp())  # local time
    for value in (None, True, float("nan"), "yesterday", b"1700000000"):
        assert timestamp_ns(value) is None


# -- trace context -------------------------------------------------------------------


def test_hex_id_and_find_hex_id() -> None:
    assert hex_id(0x4BF92F3577B34DA6A3CE929D0E0E4736, 16) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert hex_id("00F067AA0BA902B7", 8) == "00f067aa0ba902b7"
    assert hex_id(bytes(range(1, 9)), 8) == "0102030405060708"
    for value in (0, "0" * 16, True, "xyz", b"short", 1 << 64):
        assert hex_id(value, 8) is None
    attributes = {"trace_id": "not hex", "otelTraceID": "ab" * 16}
    assert find_hex_id(attributes, ("trace_id", "otelTraceID"), 16) == ("otelTraceID", "ab" * 16)
    assert find_hex_id({}, ("trace_id",), 16) == ("", None)


# -- options ---------------------------------------------------------------------------


def test_check_option_names_names_the_culprit() -> None:
    assert check_option_names({"a": 1}, ("a", "b"), "mine") == {"a": 1}
    with pytest.raises(InvalidArgumentError) as info:
        check_option_names({"a": 1, "c": 2}, ("a", "b"), "mine")
    assert info.value.argument == "serializer_options.c"
    assert "'mine' serializer (options: a, b)" in str(info.value)
    with pytest.raises(InvalidArgumentError) as info:
        check_option_names(["a"], ("a",), "mine")
    assert info.value.argument == "serializer_options"
    with pytest.raises(InvalidArgumentError) as info:
        invalid_option("depth", "must be an int")
    assert info.value.argument == "serializer_options.depth"
