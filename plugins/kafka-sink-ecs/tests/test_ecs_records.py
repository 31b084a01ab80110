"""ECS documents made from log records: exact output for fixed records."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import logging
import math
import pathlib
import sys
import traceback
import uuid
from typing import Any

import pytest
from kafka_sink import InvalidArgumentError

from kafka_sink_ecs import EcsLogSerializer, EcsOptions

# 2023-11-14T22:13:20.123Z; the float closest to it is a hair below, which
# must still give .123 and not .122.
CREATED = 1_700_000_000.123


def make_record(
    msg: object = "payment %s accepted",
    args: Any = ("#17",),
    *,
    level: int = logging.INFO,
    exc_info: Any = None,
    sinfo: str | None = None,
    extra: dict[str, Any] | None = None,
    **attributes: Any,
) -> logging.LogRecord:
    record = logging.LogRecord(
        "shop.pay", level, "/srv/shop/pay.py", 42, msg, args, exc_info, func="pay", sinfo=sinfo
    )
    record.created = CREATED
    record.msecs = 123.0
    record.process = 4242
    record.processName = "MainProcess"
    record.thread = 1234
    record.threadName = "worker-1"
    # What logger.info(..., extra=...) does: extra fields become attributes.
    record.__dict__.update(extra or {}, **attributes)
    return record


def serializer(**options: Any) -> EcsLogSerializer:
    options.setdefault("hostname", "web-1")
    return EcsLogSerializer(EcsOptions(**options))


def document(record: logging.LogRecord, **options: Any) -> dict[str, Any]:
    value = serializer(**options)(record)
    assert isinstance(value, bytes)
    decoded: dict[str, Any] = json.loads(value.decode("utf-8"))
    return decoded


BASE = (
    '{"@timestamp":"2023-11-14T22:13:20.123Z","log.level":"info",'
    '"message":"payment #17 accepted","ecs.version":"1.6.0",'
    '"log":{"logger":"shop.pay","origin":{"file":{"name":"pay.py","line":42},"function":"pay"}},'
    '"process":{"pid":4242,"thread":{"id":1234,"name":"worker-1"}}'
)


def test_plain_record_exact_bytes() -> None:
    value = serializer(service_name="shop", service_version="1.4.2")(make_record())

    assert (
        value
        == (
            BASE + ',"host":{"hostname":"web-1"},"service":{"name":"shop","version":"1.4.2"},'
            '"event":{"dataset":"shop.log"}}'
        ).encode()
    )


def test_required_fields_come_first_in_spec_order() -> None:
    keys = list(document(make_record(order_id=17)))

    assert keys[:4] == ["@timestamp", "log.level", "message", "ecs.version"]


def test_without_service_or_host_only_the_record_fields() -> None:
    assert serializer(hostname=None)(make_record()) == (BASE + "}").encode()


def test_event_dataset_can_be_set_or_left_out() -> None:
    assert document(make_record(), service_name="shop", event_dataset="shop.audit")["event"] == {
        "dataset": "shop.audit"
    }
    assert "event" not in document(make_record(), service_name="shop", event_dataset="")


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.999_9, "2023-11-14T22:13:20.999Z"),
        (951_782_400.5, "2000-02-29T00:00:00.500Z"),
        (-0.25, "1969-12-31T23:59:59.750Z"),
    ],
)
def test_timestamp_is_utc_with_milliseconds(created: float, expected: str) -> None:
    record = make_record()
    record.created = created

    assert document(record)["@timestamp"] == expected


def test_level_names_are_lower_case() -> None:
    assert document(make_record(level=logging.WARNING))["log.level"] == "warning"
    assert document(make_record(level=25))["log.level"] == "level 25"


def test_extra_fields_merge_dotted_names_into_objects() -> None:
    record = make_record(
        order_id=17,
        http={"request": {"method": "POST"}},
        extra={"http.response.status_code": 402, "user.id": "u-1"},
    )

    doc = document(record)

    assert doc["order_id"] == 17
    assert doc["http"] == {"request": {"method": "POST"}, "response": {"status_code": 402}}
    assert doc["user"] == {"id": "u-1"}


def test_extra_fields_never_replace_the_serializers_own() -> None:
    record = make_record(
        message="forged",
        log="a string where an object is",
        extra={
            "log.level": "critical",
            "@timestamp": "then",
            "ecs.version": "9",
            "service.name": "x",
            "process.pid": 1,
            "process.args": ["-v"],
        },
    )

    doc = document(record, service_name="shop")

    assert doc["message"] == "payment #17 accepted"
    assert doc["log.level"] == "info"
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123Z"
    assert doc["ecs.version"] == "1.6.0"
    assert doc["log"]["logger"] == "shop.pay"
    # process.pid is the serializer's; process.args is new, so it is merged.
    assert doc["process"] == {
        "pid": 4242,
        "thread": {"id": 1234, "name": "worker-1"},
        "args": ["-v"],
    }
    assert doc["service"] == {"name": "shop"}


def test_extra_fields_nested_under_a_namespace() -> None:
    record = make_record(order_id=17, extra={"http.method": "GET", "log.level": "forged"})

    doc = document(record, extra_fields="nest", extra_namespace="app")

    assert doc["app"] == {"order_id": 17, "http.method": "GET", "log.level": "forged"}
    assert "http" not in doc
    assert doc["log.level"] == "info"


def test_extra_fields_as_labels_are_de_dotted() -> None:
    record = make_record(
        order_id=17, cart={"items": 3, "tags": ["a", "b"]}, extra={"a.b*c\\d": "x", "empty": {}}
    )

    doc = document(record, extra_fields="labels")

    assert doc["labels"] == {
        "order_id": 17,
        "cart_items": 3,
        "cart_tags": '["a","b"]',
        "a_b_c_d": "x",
        "empty": "{}",
    }
    assert "order_id" not in doc


def test_extra_fields_dropped() -> None:
    doc = document(make_record(order_id=17), extra_fields="drop")

    assert "order_id" not in doc
    assert list(doc) == [
        *("@timestamp", "log.level", "message", "ecs.version"),
        *("log", "process", "host"),
    ]


def test_none_extras_are_left_out() -> None:
    assert "order_id" not in document(make_record(order_id=None))


def test_static_fields_are_added_and_extras_do_not_replace_them() -> None:
    doc = document(
        make_record(extra={"service.environment": "dev", "labels.region": "us"}),
        static_fields={"service.environment": "prod", "labels": {"team": "payments"}},
    )

    assert doc["service"] == {"environment": "prod"}
    assert doc["labels"] == {"team": "payments", "region": "us"}


def test_static_fields_are_copied_per_document() -> None:
    ecs = serializer(static_fields={"meta": {}})

    first = json.loads(ecs(make_record(extra={"meta.request": 1})))
    second = json.loads(ecs(make_record()))

    assert first["meta"] == {"request": 1}
    assert second["meta"] == {}


def test_exclude_fields_removes_fields_and_groups() -> None:
    doc = document(
        make_record(order_id=17),
        exclude_fields=["process", "log.origin.file.line", "order_id"],
    )

    assert "process" not in doc
    assert "order_id" not in doc
    assert doc["log"] == {
        "logger": "shop.pay",
        "origin": {"file": {"name": "pay.py"}, "function": "pay"},
    }


def test_exclude_fields_removes_emptied_parents() -> None:
    doc = document(make_record(), exclude_fields=["log.logger", "log.origin"])

    assert "log" not in doc
    assert doc["log.level"] == "info"


class PaymentError(Exception):
    pass


def _decline() -> None:
    raise ValueError("card declined")


DECLINE_LINE = _decline.__code__.co_firstlineno + 1


def _exc_info() -> Any:
    try:
        try:
            _decline()
        except ValueError as error:
            raise PaymentError("payment failed") from error
    except PaymentError:
        return sys.exc_info()


def test_exception_fields() -> None:
    exc_info = _exc_info()
    record = make_record(level=logging.ERROR, exc_info=exc_info)

    doc = document(record)

    assert doc["error"]["type"] == f"{PaymentError.__module__}.PaymentError"
    assert doc["error"]["message"] == "payment failed"
    stack = doc["error"]["stack_trace"]
    assert stack == "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    assert stack.startswith("Traceback (most recent call last):\n")
    assert f'File "{__file__}", line {DECLINE_LINE}, in _decline\n' in stack
    assert "The above exception was the direct cause of the following exception:" in stack
    assert stack.endswith(f"\n{PaymentError.__module__}.PaymentError: payment failed")


def test_builtin_exception_type_is_the_bare_name() -> None:
    doc = document(make_record(exc_info=(KeyError, KeyError("sku"), None)))

    assert doc["error"] == {
        "type": "KeyError",
        "message": "'sku'",
        "stack_trace": "KeyError: 'sku'",
    }


def test_stack_trace_limit() -> None:
    exc_info = _exc_info()

    limited = document(make_record(exc_info=exc_info), stack_trace_limit=1)["error"]
    none = document(make_record(exc_info=exc_info), stack_trace_limit=0)["error"]

    assert limited["stack_trace"] == "".join(traceback.format_exception(*exc_info, limit=1)).rstrip(
        "\n"
    )
    assert f"line {DECLINE_LINE}" not in limited["stack_trace"]
    assert none == {"type": f"{PaymentError.__module__}.PaymentError", "message": "payment failed"}


class ShortFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return f"short: {ei[1]}"

    def formatStack(self, stack_info: str) -> str:
        return f"stack: {len(stack_info.splitlines())} lines"


def test_a_formatter_renders_the_stack_trace() -> None:
    with_exception = make_record(exc_info=_exc_info())
    with_stack = make_record(sinfo="Stack (most recent call last):\n  x")

    ecs = serializer(formatter=ShortFormatter(), stack_trace_limit=0)

    assert json.loads(ecs(with_exception))["error"] == {
        "type": f"{PaymentError.__module__}.PaymentError",
        "message": "payment failed",
        "stack_trace": "short: payment failed",
    }
    assert json.loads(ecs(with_stack))["error"] == {"stack_trace": "stack: 2 lines"}


def test_exception_text_of_a_record_that_lost_its_exc_info() -> None:
    record = make_record()
    record.exc_text = "Traceback (most recent call last):\nValueError: x"

    assert document(record)["error"] == {"stack_trace": record.exc_text}


def test_stack_info_without_exception() -> None:
    record = make_record(sinfo='Stack (most recent call last):\n  File "a.py", line 1')

    assert document(record)["error"] == {"stack_trace": record.stack_info}


def test_no_exception_no_error_fields() -> None:
    assert "error" not in document(make_record(exc_info=(None, None, None)))


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Color(enum.Enum):
    RED = "red"


class Point:
    def __repr__(self) -> str:
        return "Point(1, 2)"


def test_unserialisable_extras_are_rendered_safely() -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    deep: Any = "bottom"
    for _ in range(20):
        deep = [deep]
    record = make_record(
        point=Point(),
        unprintable=Unprintable(),
        floats=[math.nan, math.inf, -math.inf, 1.5],
        when=datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc),
        tupled=(1, "two"),
        keyed={("a", 1): "tuple key", 2: "int key"},
        cyclic=cyclic,
        deep=deep,
        big=2**70,
        ident=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        amount=decimal.Decimal("12.50"),
        where=pathlib.PurePosixPath("/srv/shop"),
        color=Color.RED,
        problem=KeyError("sku"),
    )

    doc = document(record)

    assert doc["point"] == "Point(1, 2)"
    assert doc["unprintable"] == "<unrepresentable Unprintable object>"
    assert doc["floats"] == ["nan", "inf", "-inf", 1.5]
    assert doc["when"] == "2023-11-14T22:13:20+00:00"
    assert doc["tupled"] == [1, "two"]
    assert doc["keyed"] == {"('a', 1)": "tuple key", "2": "int key"}
    assert doc["cyclic"] == [1, "<circular reference to list>"]
    level, nested = 0, doc["deep"]
    while isinstance(nested, list):
        level, nested = level + 1, nested[0]
    assert level == 16
    assert nested == "[[[['bottom']]]]"  # the 4 levels below the 16 converted
    assert doc["big"] == 2**70
    assert doc["ident"] == "12345678-1234-5678-1234-567812345678"
    assert doc["amount"] == "12.50"
    assert doc["where"] == "/srv/shop"
    assert doc["color"] == "red"
    assert doc["problem"] == "KeyError: 'sku'"


def test_message_that_cannot_be_formatted_is_kept_unformatted() -> None:
    assert document(make_record("%s and %s", ("one",)))["message"] == "%s and %s % ('one',)"
    assert document(make_record(Unprintable(), ()))["message"] == (
        "<unrepresentable Unprintable object> % ()"
    )


def test_non_utf8_bytes_and_surrogates_give_valid_utf8() -> None:
    escaped = b"caf\xe9".decode("utf-8", "surrogateescape")  # as os.fsdecode() gives
    record = make_record("file %s", (escaped,), raw=b"\xff\xfeok", path=escaped, lone="a\ud800b")

    value = serializer()(record)
    value.decode("utf-8")  # strict: raises if the document is not valid UTF-8
    doc = json.loads(value)

    assert doc["message"] == "file caf\\xe9"
    assert doc["raw"] == "\\xff\\xfeok"
    assert doc["path"] == "caf\\xe9"
    assert doc["lone"] == "a\\ud800b"


def test_unicode_is_written_as_utf8_not_escaped() -> None:
    value = serializer()(make_record("paid %s", ("5 €",)))

    assert '"message":"paid 5 €"'.encode() in value


def test_trace_and_span_ids_from_opentelemetry_attributes() -> None:
    record = make_record(
        otelTraceID="4BF92F3577B34DA6A3CE929D0E0E4736",
        otelSpanID="00f067aa0ba902b7",
        otelTraceSampled=True,
        otelServiceName="shop-otel",
    )

    doc = document(record)

    assert doc["trace"] == {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert doc["span"] == {"id": "00f067aa0ba902b7"}
    assert doc["service"] == {"name": "shop-otel"}
    assert not [key for key in doc if key.startswith("otel")]


def test_trace_ids_as_ints_and_invalid_ids() -> None:
    record = make_record(trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id="not-a-span")

    doc = document(record, service_name="shop")

    assert doc["trace"] == {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert "span" not in doc
    assert doc["span_id"] == "not-a-span"  # not an id: kept as an extra field
    assert doc["service"] == {"name": "shop"}  # the option wins over otelServiceName


def test_no_span_opentelemetry_zero_ids_are_left_out() -> None:
    doc = document(make_record(otelTraceID="0", otelSpanID="0", otelTraceSampled=False))

    assert "trace" not in doc
    assert "span" not in doc


def test_a_record_that_cannot_be_read_still_gives_a_document() -> None:
    record = make_record()
    record.created = "yesterday"  # type: ignore[assignment]  # a broken record on purpose

    doc = document(record)

    assert list(doc)[:4] == ["@timestamp", "log.level", "message", "ecs.version"]
    assert doc["log.level"] == "error"
    assert doc["message"].startswith("kafka_sink_ecs could not serialise a record: TypeError(")
    assert doc["event"]["original"].startswith("<LogRecord: shop.pay, 20, /srv/shop/pay.py, 42,")


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"service_name": 1}, "service_name"),
        ({"extra_fields": "flatten"}, "extra_fields"),
        ({"extra_namespace": "log"}, "extra_namespace"),
        ({"extra_namespace": "a.b"}, "extra_namespace"),
        ({"stack_trace_limit": -1}, "stack_trace_limit"),
        ({"stack_trace_limit": True}, "stack_trace_limit"),
        ({"exclude_fields": "process"}, "exclude_fields"),
        ({"exclude_fields": ["log.level"]}, "exclude_fields"),
        ({"exclude_fields": ["ecs"]}, "exclude_fields"),
        ({"static_fields": {1: "x"}}, "static_fields"),
        ({"static_fields": ["x"]}, "static_fields"),
        ({"ecs_version": ""}, "ecs_version"),
        ({"formatter": "%(message)s"}, "formatter"),
    ],
)
def test_invalid_options_name_the_argument(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        EcsOptions(**options)

    expected = f"serializer_options.{argument}"
    assert caught.value.argument == expected


def test_unknown_option_names_are_an_error() -> None:
    with pytest.raises(InvalidArgumentError, match="is not an option of the") as caught:
        EcsOptions.from_mapping({"service": "shop"})

    expected = "serializer_options.service"
    assert caught.value.argument == expected


def test_options_keep_a_copy_of_static_fields() -> None:
    static = {"labels.team": "payments"}
    options = EcsOptions(static_fields=static)
    static["labels.team"] = "changed"

    assert options.static_fields == {"labels.team": "payments"}
