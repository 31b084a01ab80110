"""OTLP/JSON LogsData made from structlog event dicts, checked by the protobuf oracle."""

from __future__ import annotations

import datetime
import json
import os
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import structlog
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from kafka_sink_otlp import OtlpEventSerializer, OtlpOptions

# The "oracle" fixture (conftest.py): parses with protobuf, fails unless OTLP/JSON.
Oracle = Callable[[bytes], LogsData]

NOW_NS = 1_700_000_000_500_000_000  # what the injected clock says


def serializer(**options: Any) -> OtlpEventSerializer:
    options.setdefault("hostname", "web-1")
    options.setdefault("service_name", "shop")
    return OtlpEventSerializer(OtlpOptions(**options), clock_ns=lambda: NOW_NS)


def log_record(value: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(value)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    return record


def attributes(value: bytes) -> dict[str, Any]:
    return {kv["key"]: kv["value"] for kv in log_record(value).get("attributes", [])}


def serialize(event: Mapping[str, Any], **options: Any) -> bytes:
    return serializer(**options)(event)


def test_event_exact_bytes(oracle: Oracle) -> None:
    event = {
        "event": "payment accepted",
        "level": "info",
        "logger": "shop.pay",
        "timestamp": "2023-11-14T22:13:20.123456Z",
        "pathname": "/srv/shop/pay.py",
        "filename": "pay.py",
        "func_name": "pay",
        "lineno": 42,
        "process": 4242,
        "thread": 1234,
        "thread_name": "worker-1",
        "order_id": 17,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
    }

    value = serialize(event)

    assert value == (
        b'{"resourceLogs":[{"resource":{"attributes":['
        b'{"key":"service.name","value":{"stringValue":"shop"}},'
        b'{"key":"host.name","value":{"stringValue":"web-1"}},'
        b'{"key":"process.pid","value":{"intValue":"4242"}}]},'
        b'"scopeLogs":[{"scope":{"name":"shop.pay"},"logRecords":[{'
        b'"timeUnixNano":"1700000000123456000","observedTimeUnixNano":"1700000000500000000",'
        b'"severityNumber":9,"severityText":"info",'
        b'"body":{"stringValue":"payment accepted"},"attributes":['
        b'{"key":"code.filepath","value":{"stringValue":"/srv/shop/pay.py"}},'
        b'{"key":"code.lineno","value":{"intValue":"42"}},'
        b'{"key":"code.function","value":{"stringValue":"pay"}},'
        b'{"key":"thread.id","value":{"intValue":"1234"}},'
        b'{"key":"thread.name","value":{"stringValue":"worker-1"}},'
        b'{"key":"order_id","value":{"intValue":"17"}}],'
        b'"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"}]}]}]}'
    )
    oracle(value)


def test_the_event_dict_is_not_changed() -> None:
    event = {"event": "x", "level": "info", "timestamp": 1.0, "trace_id": "ab" * 16}
    before = dict(event)

    serialize(event)

    assert event == before


@pytest.mark.parametrize(
    ("level", "number"),
    [
        ("debug", 5),
        ("info", 9),
        ("warning", 13),
        ("warn", 13),
        ("error", 17),
        ("exception", 17),
        ("critical", 21),
        ("CRITICAL", 21),
        ("notice", 0),
    ],
)
def test_structlog_levels(oracle: Oracle, level: str, number: int) -> None:
    value = serialize({"event": "x", "level": level})

    assert log_record(value).get("severityNumber", 0) == number
    assert log_record(value)["severityText"] == level
    oracle(value)


def test_without_timestamp_the_event_time_is_the_observed_time(oracle: Oracle) -> None:
    value = serialize({"event": "x"})

    assert log_record(value)["timeUnixNano"] == log_record(value)["observedTimeUnixNano"]
    assert log_record(value)["timeUnixNano"] == str(NOW_NS)
    assert "severityNumber" not in log_record(value)
    assert json.loads(value)["resourceLogs"][0]["scopeLogs"][0]["scope"] == {}
    oracle(value)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2023-11-14T23:13:20.123456+01:00", 1_700_000_000_123_456_000),
        (
            datetime.datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=datetime.timezone.utc),
            1_700_000_000_000_001_000,
        ),
        (1_700_000_000.123, 1_700_000_000_123_000_000),
        (1_700_000_000, 1_700_000_000_000_000_000),
    ],
)
def test_timestamps(timestamp: object, expected: int) -> None:
    value = serialize({"event": "x", "timestamp": timestamp})

    assert log_record(value)["timeUnixNano"] == str(expected)
    assert "timestamp" not in attributes(value)


def test_an_unreadable_timestamp_stays_an_attribute() -> None:
    value = serialize({"event": "x", "timestamp": "yesterday"})

    assert log_record(value)["timeUnixNano"] == str(NOW_NS)
    assert attributes(value)["timestamp"] == {"stringValue": "yesterday"}


def test_a_structured_event_is_a_structured_body(oracle: Oracle) -> None:
    value = serialize({"event": {"action": "pay", "amount": 12.5}})

    assert log_record(value)["body"] == {
        "kvlistValue": {
            "values": [
                {"key": "action", "value": {"stringValue": "pay"}},
                {"key": "amount", "value": {"doubleValue": 12.5}},
            ]
        }
    }
    oracle(value)


def test_process_and_thread_default_to_the_logging_thread() -> None:
    seen: list[bytes] = []
    thread = threading.Thread(target=lambda: seen.append(serialize({"event": "x"})), name="req-7")
    thread.start()
    thread.join()

    assert attributes(seen[0])["thread.name"] == {"stringValue": "req-7"}
    assert attributes(seen[0])["thread.id"] == {"intValue": str(thread.ident)}
    resource = json.loads(seen[0])["resourceLogs"][0]["resource"]["attributes"]
    assert {"key": "process.pid", "value": {"intValue": str(os.getpid())}} in resource


def _fail() -> None:
    raise ValueError("card declined")


def test_exc_info_true_is_the_exception_being_handled(oracle: Oracle) -> None:
    otlp = serializer()
    try:
        _fail()
    except ValueError as error:
        value = otlp({"event": "failed", "level": "error", "exc_info": True})
        expected = "".join(traceback.format_exception(type(error), error, error.__traceback__))

    attrs = attributes(value)

    assert attrs["exception.type"] == {"stringValue": "ValueError"}
    assert attrs["exception.message"] == {"stringValue": "card declined"}
    assert attrs["exception.stacktrace"] == {"stringValue": expected.rstrip("\n")}
    assert "exc_info" not in attrs
    oracle(value)


def test_exception_text_from_format_exc_info(oracle: Oracle) -> None:
    try:
        _fail()
    except ValueError:
        event = structlog.processors.format_exc_info(
            None, "error", {"event": "failed", "exc_info": True}
        )

    value = serialize(event)

    assert attributes(value)["exception.stacktrace"] == {"stringValue": event["exception"]}
    assert "exception" not in attributes(value)
    oracle(value)


def test_odd_exc_info_values(oracle: Oracle) -> None:
    assert "exc_info" not in attributes(serialize({"event": "x", "exc_info": False}))
    assert "exception.type" not in attributes(serialize({"event": "x", "exc_info": True}))
    kept = serialize({"event": "x", "exc_info": "text", "stack": "Stack:\n..."})
    assert attributes(kept)["exc_info"] == {"stringValue": "text"}
    assert attributes(kept)["code.stacktrace"] == {"stringValue": "Stack:\n..."}
    oracle(kept)


def test_non_utf8_and_unserialisable_values(oracle: Oracle) -> None:
    value = serialize(
        {
            "event": b"caf\xe9".decode("utf-8", "surrogateescape"),
            "raw": b"\x80abc",
            "obj": object.__new__(type("Opaque", (), {"__repr__": lambda self: "<opaque>"})),
        }
    )

    log = oracle(value).resource_logs[0].scope_logs[0].log_records[0]
    assert log.body.string_value == "caf\\xe9"
    parsed = {kv.key: kv.value for kv in log.attributes}
    assert parsed["raw"].bytes_value == b"\x80abc"
    assert parsed["obj"].string_value == "<opaque>"


def test_keys_that_are_not_strings(oracle: Oracle) -> None:
    event: dict[Any, Any] = {"event": "x", 7: "seven", ("a", "b"): 1}

    value = serialize(event, extra_prefix="app.")

    assert attributes(value)["app.7"] == {"stringValue": "seven"}
    assert attributes(value)["app.('a', 'b')"] == {"intValue": "1"}
    oracle(value)


def test_a_mapping_that_cannot_be_read_still_gives_a_document(oracle: Oracle) -> None:
    class Broken(dict[str, Any]):
        def __iter__(self) -> Any:
            raise RuntimeError("changed during iteration")

        def keys(self) -> Any:
            raise RuntimeError("changed during iteration")

    log = oracle(serialize(Broken(event="x"))).resource_logs[0].scope_logs[0].log_records[0]

    assert log.body.string_value.startswith("kafka_sink_otlp could not serialise a record:")


def test_structlog_pipeline_end_to_end(oracle: Oracle) -> None:
    captured: list[bytes] = []
    stamps: list[str] = []
    otlp = serializer()

    def ship(_logger: Any, _method: str, event: Any) -> str:
        stamps.append(event["timestamp"])
        captured.append(otlp(event))
        return ""

    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            ship,
        ],
    )
    log.warning("low stock", sku="A-1", left=2)

    record = oracle(captured[0]).resource_logs[0].scope_logs[0].log_records[0]
    assert record.severity_number == 13
    assert record.severity_text == "warning"
    assert record.body.string_value == "low stock"
    assert {kv.key: kv.value for kv in record.attributes}["left"].int_value == 2
    stamp = datetime.datetime.fromisoformat(stamps[0].replace("Z", "+00:00"))
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    assert record.time_unix_nano == (stamp - epoch) // datetime.timedelta(microseconds=1) * 1000
