"""The built-in plugins, resolved through the plugin manager like any plugin, and the
partitioner chain."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import logging
import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

import pytest

import kafka_sink
from kafka_sink import InvalidArgumentError, hookimpl, plugin_manager
from kafka_sink.integrations.shaping import ChainPartitioner
from kafka_sink.producer.partitioner import (
    Murmur2Partitioner,
    RoundRobinPartitioner,
    StickyPartitioner,
    partition_for_key,
)
from kafka_sink.serialization import to_json_bytes

NO: Mapping[str, Any] = MappingProxyType({})


def _record(
    msg: object = "hello %s",
    args: Any = ("world",),
    *,
    level: int = logging.INFO,
    exc_info: Any = None,
    **extra: Any,
) -> logging.LogRecord:
    return logging.getLogger("app.db").makeRecord(
        "app.db", level, "/src/app/db.py", 42, msg, args, exc_info, "run", extra or None
    )


def _log_serializer(name: str = "json", **options: Any) -> Any:
    hook = plugin_manager(entry_points=False).hook
    return hook.kafka_sink_log_serializer(name=name, options=MappingProxyType(options))


def _json(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))  # strict UTF-8: raises on anything else


# -- JSON of log records --------------------------------------------------------------


def test_json_log_record_has_the_standard_fields_and_extra() -> None:
    record = _record(user_id=7, request="r-1")
    doc = _json(_log_serializer()(record))
    assert doc["level"] == "INFO"
    assert doc["logger"] == "app.db"
    assert doc["message"] == "hello world"
    assert (doc["module"], doc["function"], doc["line"]) == ("db", "run", 42)
    assert doc["process"] == record.process
    assert doc["thread_name"] == record.threadName
    assert doc["user_id"] == 7
    assert doc["request"] == "r-1"
    assert "exception" not in doc
    assert "stack" not in doc
    stamp = datetime.datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))
    assert abs(stamp.timestamp() - record.created) < 1e-5
    assert list(doc)[:4] == ["timestamp", "level", "logger", "message"]


def test_json_fields_rename_static_and_no_extra() -> None:
    serializer = _log_serializer(
        fields=["timestamp", "level", "message"],
        rename={"timestamp": "@timestamp"},
        static={"service": "billing"},
        extra=False,
    )
    doc = _json(serializer(_record(user_id=7)))
    assert set(doc) == {"@timestamp", "level", "message", "service"}


def test_extra_fields_that_clash_with_standard_ones_are_kept_apart() -> None:
    doc = _json(_log_serializer()(_record(level_="x", logger="mine", timestamp="t")))
    assert doc["logger"] == "app.db"
    assert doc["extra"] == {"logger": "mine", "timestamp": "t"}
    assert doc["level_"] == "x"


def test_exception_and_stack_text() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = _record("failed", (), level=logging.ERROR, exc_info=sys.exc_info())
    record.stack_info = "Stack (most recent call last):\n  frame"
    doc = _json(_log_serializer()(record))
    assert doc["exception"].startswith("Traceback (most recent call last):")
    assert doc["exception"].endswith("ValueError: bad value")
    assert doc["stack"] == record.stack_info
    assert record.exc_text == doc["exception"]  # cached for other handlers, as Formatter does


def test_a_formatter_renders_the_exception_text() -> None:
    class Short(logging.Formatter):
        def formatException(self, ei: Any) -> str:
            return f"{ei[0].__name__}!"

    try:
        raise KeyError("k")
    except KeyError:
        record = _record("failed", (), exc_info=sys.exc_info())
    doc = _json(_log_serializer(formatter=Short())(record))
    assert doc["exception"] == "KeyError!"


class _Color(enum.Enum):
    RED = "red"


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_values_json_cannot_hold_are_rendered_as_text() -> None:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    with socket.socket() as sock:
        record = _record(
            raw=b"\xff\xfeok",
            when=datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
            ident=uuid.UUID(int=1),
            amount=decimal.Decimal("1.10"),
            path=PurePosixPath("/tmp/x"),
            color=_Color.RED,
            tags={"a"},
            nan=float("nan"),
            sock=sock,
            broken=_BadRepr(),
            loop=loop,
            weird_keys={(1, 2): "tuple key", b"k": 1},
            text="caf\udce9",  # a lone surrogate (surrogateescape): not UTF-8
        )
        data = _log_serializer()(record)
    doc = _json(data)
    assert doc["raw"] == "\\xff\\xfeok"
    assert doc["when"] == "2024-05-01T12:00:00+00:00"
    assert doc["ident"] == str(uuid.UUID(int=1))
    assert doc["amount"] == "1.10"
    assert doc["path"] == "/tmp/x"
    assert doc["color"] == "red"
    assert doc["tags"] == ["a"]
    assert doc["nan"] == "nan"
    assert doc["sock"].startswith("<socket.socket")
    assert doc["broken"] == "<unrepresentable _BadRepr object>"
    assert doc["loop"] == {"name": "loop", "self": "<circular reference to dict>"}
    assert doc["weird_keys"] == {"(1, 2)": "tuple key", "k": 1}
    # Valid UTF-8 (decoded strictly above) with no surrogate escape in it, which
    # strict decoders refuse: the byte is written as text, its backslash escaped.
    assert b"caf\\\\xe9" in data
    assert b"\\ud" not in data
    assert doc["text"] == "caf\\xe9"
    assert doc["message"] == "hello world"


def test_deep_nesting_does_not_raise() -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    data = to_json_bytes({"deep": deep})
    assert _json(data)["deep"]


def test_a_percent_format_mismatch_is_left_to_the_handler_to_report() -> None:
    with pytest.raises(TypeError):
        _log_serializer()(_record("%d and %d", (1,)))


def test_bytes_message_and_non_string_message() -> None:
    assert _json(_log_serializer()(_record(b"\xff raw", None)))["message"] == "b'\\xff raw'"
    assert _json(_log_serializer()(_record({"a": 1}, None)))["message"] == "{'a': 1}"


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"fields": ["level", "colour"]}, "serializer_options.fields"),
        ({"fields": "level"}, "serializer_options.fields"),
        ({"rename": {"line": "l"}, "fields": ["level"]}, "serializer_options.rename"),
        ({"extra": "yes"}, "serializer_options.extra"),
        ({"static": ["a"]}, "serializer_options.static"),
        ({"formatter": "%(message)s"}, "serializer_options.formatter"),
        ({"indent": 2}, "serializer_options.indent"),
    ],
)
def test_json_options_are_checked(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _log_serializer(**options)
    assert info.value.argument == argument


# -- text ---------------------------------------------------------------------------


def test_text_serializer_uses_a_formatter() -> None:
    record = _record()
    line = _log_serializer("text")(record).decode()
    assert line.endswith(" INFO app.db: hello world")
    custom = _log_serializer("text", format="{levelname}|{message}", style="{")(record)
    assert custom == b"INFO|hello world"
    given = _log_serializer("text", formatter=logging.Formatter("%(name)s"))(record)
    assert given == b"app.db"


def test_text_serializer_escapes_what_is_not_utf8_and_adds_the_traceback() -> None:
    try:
        raise OSError("disk")
    except OSError:
        record = _record("caf\udce9", None, exc_info=sys.exc_info())
    text = _log_serializer("text", format="%(message)s")(record).decode("utf-8")
    assert text.startswith("caf\\udce9\nTraceback")
    assert text.endswith("OSError: disk")


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"style": "#"}, "serializer_options.style"),
        ({"format": "%(message)s", "style": "{"}, "serializer_options.format"),
        ({"formatter": logging.Formatter(), "format": "%(message)s"}, "serializer_options.format"),
        ({"fields": ["level"]}, "serializer_options.fields"),
    ],
)
def test_text_options_are_checked(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _log_serializer("text", **options)
    assert info.value.argument == argument


# -- JSON of event dicts -----------------------------------------------------------


def _event_serializer(**options: Any) -> Any:
    hook = plugin_manager(entry_points=False).hook
    return hook.kafka_sink_event_serializer(name="json", options=MappingProxyType(options))


def test_event_json_leaves_the_dict_unchanged() -> None:
    event = {"event": "login", "user": 7, "level": "info", "raw": b"\xff"}
    before = dict(event)
    doc = _json(_event_serializer()(event))
    assert event == before
    assert doc["event"] == "login"
    assert doc["raw"] == "\\xff"
    assert doc["timestamp"].endswith("Z")


def test_event_json_exception_static_and_existing_timestamp() -> None:
    try:
        raise ValueError("nope")
    except ValueError as error:
        event = {"event": "failed", "exc_info": error, "timestamp": "given"}
    doc = _json(_event_serializer(static={"service": "api"}, timestamp=False)(event))
    assert "exc_info" not in doc
    assert doc["exception"].splitlines()[-1] == "ValueError: nope"
    assert doc["timestamp"] == "given"
    assert doc["service"] == "api"
    assert "exc_info" in event


def test_event_json_without_timestamp_option() -> None:
    assert "timestamp" not in _json(_event_serializer(timestamp=False)({"event": "x"}))
    with pytest.raises(InvalidArgumentError) as info:
        _event_serializer(fields=["a"])
    assert info.value.argument == "serializer_options.fields"


def test_unknown_serializer_names_are_left_to_other_plugins() -> None:
    assert _log_serializer("avro") is None
    hook = plugin_manager(entry_points=False).hook
    assert hook.kafka_sink_event_serializer(name="text", options=NO) is None


# -- overriding and blocking built-ins ------------------------------------------------


class _UpperJson:
    @hookimpl
    def kafka_sink_log_serializer(self, name: str, options: Mapping[str, Any]) -> Any:
        if name == "json":
            return lambda record: record.getMessage().upper().encode()
        return None


def test_a_plugin_overrides_a_built_in_of_the_same_name() -> None:
    hook = plugin_manager([_UpperJson()], entry_points=False).hook
    serializer = hook.kafka_sink_log_serializer(name="json", options=NO)
    assert serializer(_record()) == b"HELLO WORLD"
    text = hook.kafka_sink_log_serializer(name="text", options=NO)  # still the built-in
    assert text(_record()).endswith(b"hello world")


def test_blocked_built_ins_are_not_called() -> None:
    manager = plugin_manager(block=["kafka_sink.hooks.builtin.serializers"], entry_points=False)
    assert manager.hook.kafka_sink_log_serializer(name="json", options=NO) is None
    with pytest.raises(InvalidArgumentError) as info:
        kafka_sink.KafkaHandler(
            "logs",
            "127.0.0.1:1",
            block_plugins=["kafka_sink.hooks.builtin.serializers"],
            entry_points=False,
        )
    assert info.value.argument == "serializer"


# -- partitioners -------------------------------------------------------------------


def _partitioners(name: str, **options: Any) -> list[Any]:
    hook = plugin_manager(entry_points=False).hook
    result: list[Any] = hook.kafka_sink_partitioner(
        kind="log", name=name, options=MappingProxyType(options)
    )
    return result


def test_built_in_partitioners_are_the_producers_classes() -> None:
    (murmur2,) = _partitioners("murmur2")
    (sticky,) = _partitioners("sticky")
    (round_robin,) = _partitioners("round_robin")
    assert isinstance(murmur2, Murmur2Partitioner)
    assert isinstance(sticky, StickyPartitioner)
    assert isinstance(round_robin, RoundRobinPartitioner)
    assert murmur2("t", b"user-42", None, 6) == partition_for_key(b"user-42", 6)
    assert [round_robin("t", b"k", None, 3) for _ in range(4)] == [0, 1, 2, 0]
    assert _partitioners("murmur2")[0] is not murmur2  # state is per sink
    assert _partitioners("by_tenant") == []


def test_built_in_partitioners_take_no_options() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _partitioners("sticky", seed=1)
    assert info.value.argument == "partitioner_options.seed"


def test_chain_first_answer_wins_and_none_defers() -> None:
    calls: list[str] = []

    def internal_first(topic: str, key: bytes | None, value: bytes | None, n: int) -> int | None:
        calls.append("internal")
        return 0 if value == b"internal" else None

    def out_of_range(topic: str, key: bytes | None, value: bytes | None, n: int) -> int | None:
        calls.append("out_of_range")
        return n + 5 if value == b"odd" else None

    def broken(topic: str, key: bytes | None, value: bytes | None, n: int) -> int | None:
        calls.append("broken")
        raise RuntimeError("plugin bug")

    chain = ChainPartitioner([internal_first, out_of_range, broken])
    assert chain("t", b"user-42", b"internal", 6) == 0
    assert calls == ["internal"]
    calls.clear()
    # Deferred by all three (one raised): keyed records go to murmur2.
    assert chain("t", b"user-42", b"odd", 6) == partition_for_key(b"user-42", 6)
    assert calls == ["internal", "out_of_range", "broken"]
    assert chain.errors == 1


def test_chain_passes_new_batch_to_the_partitioners_that_have_it() -> None:
    sticky = StickyPartitioner()
    chain = ChainPartitioner([lambda t, k, v, n: None, sticky])
    first = chain("t", None, b"x", 4)
    chain.on_new_batch("t", first, 4)
    assert chain("t", None, b"x", 4) != first


# -- key and headers ------------------------------------------------------------------


def _key(kind: str, attribute: str) -> Any:
    hook = plugin_manager(entry_points=False).hook
    return hook.kafka_sink_record_key(
        kind=kind, name="attribute", options=MappingProxyType({"attribute": attribute})
    )


def test_key_from_an_attribute_or_an_item() -> None:
    log_key = _key("log", "user")
    assert log_key(_record(user="u-1")) == b"u-1"
    assert log_key(_record(user=42)) == b"42"
    assert log_key(_record(user=b"\x00raw")) == b"\x00raw"
    assert log_key(_record()) is None
    event_key = _key("event", "user")
    assert event_key({"user": "\u00e9"}) == "\u00e9".encode()
    assert event_key({}) is None
    with pytest.raises(InvalidArgumentError) as info:
        _key("log", "")
    assert info.value.argument == "key"


def _headers(kind: str, **options: Any) -> Any:
    hook = plugin_manager(entry_points=False).hook
    (function,) = hook.kafka_sink_record_headers(kind=kind, options=MappingProxyType(options))
    return function


def test_standard_headers_of_a_log_record() -> None:
    host = socket.gethostname().encode()
    headers = _headers("log", fields=("request", "missing"))(
        _record(request="r-1", otelTraceID="4bf92f3577b34da6a3ce929d0e0e4736", otelSpanID="0")
    )
    assert headers == [
        ("level", b"INFO"),
        ("logger", b"app.db"),
        ("host", host),
        ("trace_id", b"4bf92f3577b34da6a3ce929d0e0e4736"),
        ("request", b"r-1"),
    ]
    explicit = _headers("log")(_record(trace_id="t-1", span_id="s-1"))
    assert ("trace_id", b"t-1") in explicit
    assert ("span_id", b"s-1") in explicit


def test_headers_of_an_event_and_only_chosen_fields() -> None:
    event = {"event": "x", "level": "warning", "logger": "api", "span_id": "ab", "tenant": 3}
    headers = _headers("event", fields=("tenant",))(event)
    assert headers[:2] == [("level", b"warning"), ("logger", b"api")]
    assert ("span_id", b"ab") in headers
    assert headers[-1] == ("tenant", b"3")
    only = _headers("event", fields=("tenant",), standard=False)(event)
    assert only == [("tenant", b"3")]
    hook = plugin_manager(entry_points=False).hook
    assert hook.kafka_sink_record_headers(kind="log", options=MappingProxyType({})) != []
    assert (
        hook.kafka_sink_record_headers(kind="log", options=MappingProxyType({"standard": False}))
        == []
    )


def test_no_built_in_topic_router_or_dead_letter() -> None:
    hook = plugin_manager(entry_points=False).hook
    assert hook.kafka_sink_record_topic(kind="log", options=NO) is None
    assert hook.kafka_sink_dead_letter(kind="log", options=NO) == []


def test_naming_a_plugin_that_an_entry_point_already_registered_is_harmless() -> None:
    import kafka_sink_ecs.plugin

    manager = kafka_sink.hooks.plugin_manager(["kafka_sink_ecs.plugin", kafka_sink_ecs.plugin])
    assert manager.is_registered(kafka_sink_ecs.plugin)
    assert manager.hook.kafka_sink_log_serializer(name="ecs", options={}) is not None
