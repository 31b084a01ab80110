"""OTLP/JSON LogsData made from log records: exact output, checked by the protobuf oracle."""

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
from collections.abc import Callable
from typing import Any

import pytest
from kafka_sink import InvalidArgumentError
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from kafka_sink_otlp import OtlpLogSerializer, OtlpOptions, severity_number

# The "oracle" fixture (conftest.py): parses with protobuf, fails unless OTLP/JSON.
Oracle = Callable[[bytes], LogsData]

CREATED = 1_700_000_000.123  # 2023-11-14T22:13:20.123Z
OBSERVED = 1_700_000_000_200_000_001


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
    record.thread = 1234
    record.threadName = "worker-1"
    # What logger.info(..., extra=...) does: extra fields become attributes.
    record.__dict__.update(extra or {}, **attributes)
    return record


def serializer(**options: Any) -> OtlpLogSerializer:
    options.setdefault("hostname", "web-1")
    options.setdefault("service_name", "shop")
    return OtlpLogSerializer(OtlpOptions(**options), clock_ns=lambda: OBSERVED)


def log_record(value: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(value)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    return record


def attributes(value: bytes) -> dict[str, Any]:
    return {kv["key"]: kv["value"] for kv in log_record(value).get("attributes", [])}


def resource(value: bytes) -> dict[str, Any]:
    return {
        kv["key"]: kv["value"]
        for kv in json.loads(value)["resourceLogs"][0]["resource"]["attributes"]
    }


def test_plain_record_exact_bytes(oracle: Oracle) -> None:
    value = serializer()(make_record())

    assert value == (
        b'{"resourceLogs":[{"resource":{"attributes":['
        b'{"key":"service.name","value":{"stringValue":"shop"}},'
        b'{"key":"host.name","value":{"stringValue":"web-1"}},'
        b'{"key":"process.pid","value":{"intValue":"4242"}}]},'
        b'"scopeLogs":[{"scope":{"name":"shop.pay"},"logRecords":[{'
        b'"timeUnixNano":"1700000000123000000","observedTimeUnixNano":"1700000000200000001",'
        b'"severityNumber":9,"severityText":"INFO",'
        b'"body":{"stringValue":"payment #17 accepted"},"attributes":['
        b'{"key":"code.filepath","value":{"stringValue":"/srv/shop/pay.py"}},'
        b'{"key":"code.lineno","value":{"intValue":"42"}},'
        b'{"key":"code.function","value":{"stringValue":"pay"}},'
        b'{"key":"thread.id","value":{"intValue":"1234"}},'
        b'{"key":"thread.name","value":{"stringValue":"worker-1"}}]}]}]}]}'
    )
    message = oracle(value)
    parsed = message.resource_logs[0].scope_logs[0].log_records[0]
    assert parsed.time_unix_nano == 1_700_000_000_123_000_000
    assert parsed.observed_time_unix_nano == OBSERVED
    assert parsed.severity_number == 9
    assert parsed.body.string_value == "payment #17 accepted"
    assert message.resource_logs[0].scope_logs[0].scope.name == "shop.pay"


@pytest.mark.parametrize(
    ("levelno", "expected"),
    [
        (logging.NOTSET, 0),
        (1, 1),
        (5, 2),
        (9, 4),
        (logging.DEBUG, 5),
        (15, 7),
        (19, 8),
        (logging.INFO, 9),
        (25, 11),
        (logging.WARNING, 13),
        (logging.ERROR, 17),
        (45, 19),
        (logging.CRITICAL, 21),
        (59, 24),
        (60, 24),
        (1000, 24),
    ],
)
def test_severity_numbers(levelno: int, expected: int) -> None:
    assert severity_number(levelno) == expected


def test_standard_levels_on_the_wire(oracle: Oracle) -> None:
    for level, number, text in [
        (logging.DEBUG, 5, "DEBUG"),
        (logging.INFO, 9, "INFO"),
        (logging.WARNING, 13, "WARNING"),
        (logging.ERROR, 17, "ERROR"),
        (logging.CRITICAL, 21, "CRITICAL"),
    ]:
        value = serializer()(make_record(level=level))
        assert (log_record(value)["severityNumber"], log_record(value)["severityText"]) == (
            number,
            text,
        )
        assert oracle(value).resource_logs[0].scope_logs[0].log_records[0].severity_number == number


def test_notset_has_no_severity_number(oracle: Oracle) -> None:
    value = serializer()(make_record(level=logging.NOTSET))

    assert "severityNumber" not in log_record(value)
    assert log_record(value)["severityText"] == "NOTSET"
    oracle(value)


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


def test_exception_attributes(oracle: Oracle) -> None:
    exc_info = _exc_info()
    value = serializer()(make_record(level=logging.ERROR, exc_info=exc_info))

    attrs = attributes(value)

    assert attrs["exception.type"] == {"stringValue": f"{PaymentError.__module__}.PaymentError"}
    assert attrs["exception.message"] == {"stringValue": "payment failed"}
    stack = attrs["exception.stacktrace"]["stringValue"]
    assert stack == "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    assert stack.startswith("Traceback (most recent call last):\n")
    assert f'File "{__file__}", line {DECLINE_LINE}, in _decline\n' in stack
    assert "The above exception was the direct cause of the following exception:" in stack
    oracle(value)


def test_exception_without_message_and_exc_text(oracle: Oracle) -> None:
    bare = serializer()(make_record(exc_info=(KeyError, KeyError(), None)))
    record = make_record()
    record.exc_text = "Traceback (most recent call last):\nValueError: x"
    text_only = serializer()(record)

    assert {k: v for k, v in attributes(bare).items() if k.startswith("exception.")} == {
        "exception.type": {"stringValue": "KeyError"},
        "exception.stacktrace": {"stringValue": "KeyError"},
    }
    assert attributes(text_only)["exception.stacktrace"] == {"stringValue": record.exc_text}
    oracle(bare)
    oracle(text_only)


class ShortFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return f"short: {ei[1]}"

    def formatStack(self, stack_info: str) -> str:
        return f"stack: {len(stack_info.splitlines())} lines"


def test_a_formatter_renders_the_stack_traces(oracle: Oracle) -> None:
    record = make_record(exc_info=_exc_info(), sinfo="Stack (most recent call last):\n  x")

    value = serializer(formatter=ShortFormatter())(record)

    attrs = attributes(value)
    assert attrs["exception.stacktrace"] == {"stringValue": "short: payment failed"}
    assert attrs["code.stacktrace"] == {"stringValue": "stack: 2 lines"}
    oracle(value)


def test_stack_info_is_code_stacktrace(oracle: Oracle) -> None:
    value = serializer()(make_record(sinfo="Stack (most recent call last):\n  ..."))

    assert attributes(value)["code.stacktrace"] == {
        "stringValue": "Stack (most recent call last):\n  ..."
    }
    oracle(value)


def test_stable_code_attribute_names(oracle: Oracle) -> None:
    value = serializer(code_attributes="stable")(make_record())

    attrs = attributes(value)

    assert attrs["code.file.path"] == {"stringValue": "/srv/shop/pay.py"}
    assert attrs["code.line.number"] == {"intValue": "42"}
    assert attrs["code.function.name"] == {"stringValue": "pay"}
    assert "code.filepath" not in attrs
    oracle(value)


class Color(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_any_value_typing(oracle: Oracle) -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    record = make_record(
        count=17,
        ratio=0.25,
        whole=1.0,
        flag=False,
        label="café",
        blob=b"\xff\xfe\x00ok",
        nothing_inside=[None],
        items=["a", 2, 3.5, True, None],
        nested={"a": {"b": [1, {"c": "d"}]}, 7: "int key"},
        empty_map={},
        empty_list=(),
        int64_max=2**63 - 1,
        int64_min=-(2**63),
        too_big=2**63,
        nan=math.nan,
        inf=math.inf,
        minus_inf=-math.inf,
        when=datetime.date(2023, 11, 14),
        point=Unprintable(),
        cyclic=cyclic,
        ident=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        amount=decimal.Decimal("12.50"),
        where=pathlib.PurePosixPath("/srv/shop"),
        color=Color.RED,
        size=Size.LARGE,
        problem=KeyError("sku"),
    )

    value = serializer()(record)
    attrs = attributes(value)

    assert attrs["count"] == {"intValue": "17"}
    assert attrs["ratio"] == {"doubleValue": 0.25}
    assert attrs["whole"] == {"doubleValue": 1.0}
    assert attrs["flag"] == {"boolValue": False}
    assert attrs["label"] == {"stringValue": "café"}
    assert attrs["blob"] == {"bytesValue": "//4Ab2s="}
    assert attrs["nothing_inside"] == {"arrayValue": {"values": [{}]}}
    assert attrs["items"] == {
        "arrayValue": {
            "values": [
                {"stringValue": "a"},
                {"intValue": "2"},
                {"doubleValue": 3.5},
                {"boolValue": True},
                {},
            ]
        }
    }
    assert attrs["nested"] == {
        "kvlistValue": {
            "values": [
                {
                    "key": "a",
                    "value": {
                        "kvlistValue": {
                            "values": [
                                {
                                    "key": "b",
                                    "value": {
                                        "arrayValue": {
                                            "values": [
                                                {"intValue": "1"},
                                                {
                                                    "kvlistValue": {
                                                        "values": [
                                                            {
                                                                "key": "c",
                                                                "value": {"stringValue": "d"},
                                                            }
                                                        ]
                                                    }
                                                },
                                            ]
                                        }
                                    },
                                }
                            ]
                        }
                    },
                },
                {"key": "7", "value": {"stringValue": "int key"}},
            ]
        }
    }
    assert attrs["empty_map"] == {"kvlistValue": {}}
    assert attrs["empty_list"] == {"arrayValue": {}}
    assert attrs["int64_max"] == {"intValue": "9223372036854775807"}
    assert attrs["int64_min"] == {"intValue": "-9223372036854775808"}
    assert attrs["too_big"] == {"stringValue": "9223372036854775808"}
    assert attrs["nan"] == {"doubleValue": "NaN"}
    assert attrs["inf"] == {"doubleValue": "Infinity"}
    assert attrs["minus_inf"] == {"doubleValue": "-Infinity"}
    assert attrs["when"] == {"stringValue": "2023-11-14"}
    assert attrs["point"] == {"stringValue": "<unrepresentable Unprintable object>"}
    assert attrs["ident"] == {"stringValue": "12345678-1234-5678-1234-567812345678"}
    assert attrs["amount"] == {"stringValue": "12.50"}
    assert attrs["where"] == {"stringValue": "/srv/shop"}
    assert attrs["color"] == {"stringValue": "red"}
    assert attrs["size"] == {"intValue": "3"}
    assert attrs["problem"] == {"stringValue": "KeyError: 'sku'"}
    assert attrs["cyclic"] == {
        "arrayValue": {
            "values": [{"intValue": "1"}, {"stringValue": "<circular reference to list>"}]
        }
    }

    parsed = {
        kv.key: kv.value
        for kv in oracle(value).resource_logs[0].scope_logs[0].log_records[0].attributes
    }
    assert parsed["blob"].bytes_value == b"\xff\xfe\x00ok"
    assert parsed["int64_max"].int_value == 2**63 - 1
    assert parsed["int64_min"].int_value == -(2**63)
    assert math.isnan(parsed["nan"].double_value)
    assert parsed["minus_inf"].double_value == -math.inf
    assert parsed["nested"].kvlist_value.values[0].value.kvlist_value.values[0].key == "b"


def test_non_utf8_text_gives_valid_utf8(oracle: Oracle) -> None:
    escaped = b"caf\xe9".decode("utf-8", "surrogateescape")  # as os.fsdecode() gives
    record = make_record("file %s", (escaped,), path=escaped, lone="a\ud800b")

    value = serializer()(record)
    message = oracle(value)  # decodes the bytes as strict UTF-8 first

    log = message.resource_logs[0].scope_logs[0].log_records[0]
    assert log.body.string_value == "file caf\\xe9"
    parsed = {kv.key: kv.value.string_value for kv in log.attributes}
    assert parsed["path"] == "caf\\xe9"
    assert parsed["lone"] == "a\\ud800b"


def test_message_that_cannot_be_formatted_is_kept_unformatted(oracle: Oracle) -> None:
    value = serializer()(make_record("%s and %s", ("one",)))

    assert log_record(value)["body"] == {"stringValue": "%s and %s % ('one',)"}
    oracle(value)


def test_trace_context_from_opentelemetry_attributes(oracle: Oracle) -> None:
    record = make_record(
        otelTraceID="4BF92F3577B34DA6A3CE929D0E0E4736",
        otelSpanID="00f067aa0ba902b7",
        otelTraceSampled=True,
        otelServiceName="ignored",
    )

    value = serializer()(record)
    log = log_record(value)

    assert log["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert log["spanId"] == "00f067aa0ba902b7"
    assert log["flags"] == 1
    assert not [key for key in attributes(value) if key.startswith("otel")]
    parsed = oracle(value).resource_logs[0].scope_logs[0].log_records[0]
    assert parsed.trace_id == bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
    assert parsed.span_id == bytes.fromhex("00f067aa0ba902b7")
    assert parsed.flags == 1


def test_trace_ids_as_ints_unsampled(oracle: Oracle) -> None:
    value = serializer()(make_record(trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0xF067))

    log = log_record(value)

    assert log["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert log["spanId"] == "000000000000f067"
    assert "flags" not in log
    assert "trace_id" not in attributes(value)
    oracle(value)


def test_invalid_ids_stay_attributes(oracle: Oracle) -> None:
    value = serializer()(make_record(trace_id="0" * 32, span_id="00f067aa0ba902b7"))

    log = log_record(value)

    assert "traceId" not in log
    assert "spanId" not in log  # a span id without a trace id identifies nothing
    assert attributes(value)["trace_id"] == {"stringValue": "0" * 32}
    assert attributes(value)["span_id"] == {"stringValue": "00f067aa0ba902b7"}
    oracle(value)


def test_extra_fields_never_replace_the_serializers_own(oracle: Oracle) -> None:
    record = make_record(extra={"code.lineno": "forged", "thread.name": "forged", "order": 1})

    attrs = attributes(serializer()(record))

    assert attrs["code.lineno"] == {"intValue": "42"}
    assert attrs["thread.name"] == {"stringValue": "worker-1"}
    assert attrs["order"] == {"intValue": "1"}
    oracle(serializer()(record))


def test_extra_fields_prefixed_or_dropped(oracle: Oracle) -> None:
    record = make_record(order=1, empty=None)

    prefixed = attributes(serializer(extra_prefix="app.")(record))
    dropped = attributes(serializer(extra_fields="drop")(record))

    assert prefixed["app.order"] == {"intValue": "1"}
    assert "order" not in prefixed
    assert "app.empty" not in prefixed  # None extras are left out
    assert list(dropped) == [
        "code.filepath",
        "code.lineno",
        "code.function",
        "thread.id",
        "thread.name",
    ]
    oracle(serializer(extra_prefix="app.")(record))


def test_resource_attributes(oracle: Oracle) -> None:
    value = OtlpLogSerializer(
        OtlpOptions(
            service_name="shop",
            hostname=None,
            resource_attributes={
                "service.name": "loses to service_name",
                "service.version": "1.4.2",
                "process.pid": 1,
                "deployment.environment.name": "prod",
            },
        )
    )(make_record())

    assert resource(value) == {
        "service.name": {"stringValue": "shop"},
        "process.pid": {"intValue": "1"},
        "service.version": {"stringValue": "1.4.2"},
        "deployment.environment.name": {"stringValue": "prod"},
    }
    oracle(value)


def test_default_service_name_is_unknown_service() -> None:
    value = OtlpLogSerializer(OtlpOptions(hostname=None))(make_record())
    named = OtlpLogSerializer(OtlpOptions(resource_attributes={"service.name": "from-resource"}))(
        make_record()
    )

    assert resource(value)["service.name"]["stringValue"].startswith("unknown_service")
    assert resource(named)["service.name"] == {"stringValue": "from-resource"}


def test_a_record_that_cannot_be_read_still_gives_a_document(oracle: Oracle) -> None:
    record = make_record()
    record.created = "yesterday"  # type: ignore[assignment]  # a broken record on purpose

    value = serializer()(record)

    log = oracle(value).resource_logs[0].scope_logs[0].log_records[0]
    assert log.severity_number == 17
    assert log.body.string_value.startswith(
        "kafka_sink_otlp could not serialise a record: TypeError("
    )
    assert log.attributes[0].key == "log.record.original"
    assert resource(value)["service.name"] == {"stringValue": "shop"}


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"service_name": 1}, "service_name"),
        ({"service_name": ""}, "service_name"),
        ({"hostname": 1}, "hostname"),
        ({"extra_fields": "merge"}, "extra_fields"),
        ({"extra_prefix": None}, "extra_prefix"),
        ({"code_attributes": "new"}, "code_attributes"),
        ({"resource_attributes": ["x"]}, "resource_attributes"),
        ({"resource_attributes": {"": 1}}, "resource_attributes"),
        ({"formatter": "%(message)s"}, "formatter"),
    ],
)
def test_invalid_options_name_the_argument(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        OtlpOptions(**options)

    expected = f"serializer_options.{argument}"
    assert caught.value.argument == expected


def test_unknown_option_names_are_an_error() -> None:
    with pytest.raises(InvalidArgumentError, match="is not an option of the") as caught:
        OtlpOptions.from_mapping({"service": "shop"})

    expected = "serializer_options.service"
    assert caught.value.argument == expected
