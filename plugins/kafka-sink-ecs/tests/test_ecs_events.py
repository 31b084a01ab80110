"""ECS documents made from structlog event dicts."""

from __future__ import annotations

import datetime
import json
import os
import threading
import traceback
from collections.abc import Mapping
from typing import Any

import pytest
import structlog

from kafka_sink_ecs import EcsEventSerializer, EcsOptions

NOW = 1_700_000_000.5  # what the injected clock says: 2023-11-14T22:13:20.500Z


def serializer(**options: Any) -> EcsEventSerializer:
    options.setdefault("hostname", "web-1")
    return EcsEventSerializer(EcsOptions(**options), clock=lambda: NOW)


def document(event: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(serializer(**options)(event))
    return decoded


def test_event_exact_bytes() -> None:
    event = {
        "event": "payment accepted",
        "level": "info",
        "logger": "shop.pay",
        "timestamp": 1_700_000_000.123,
        "filename": "pay.py",
        "func_name": "pay",
        "lineno": 42,
        "process": 4242,
        "thread": 1234,
        "thread_name": "worker-1",
        "order_id": 17,
    }

    value = serializer(service_name="shop")(event)

    assert value == (
        b'{"@timestamp":"2023-11-14T22:13:20.123Z","log.level":"info",'
        b'"message":"payment accepted","ecs.version":"1.6.0",'
        b'"log":{"logger":"shop.pay","origin":{"file":{"name":"pay.py","line":42},'
        b'"function":"pay"}},"process":{"pid":4242,"thread":{"id":1234,"name":"worker-1"}},'
        b'"host":{"hostname":"web-1"},"service":{"name":"shop"},"event":{"dataset":"shop.log"},'
        b'"order_id":17}'
    )


def test_the_event_dict_is_not_changed() -> None:
    event = {"event": "x", "level": "info", "timestamp": 1.0, "trace_id": "ab" * 16}
    before = dict(event)

    serializer()(event)

    assert event == before


def test_process_and_thread_default_to_the_logging_thread() -> None:
    seen: list[dict[str, Any]] = []
    thread = threading.Thread(
        target=lambda: seen.append(document({"event": "x"})), name="request-7"
    )
    thread.start()
    thread.join()

    assert seen[0]["process"] == {
        "pid": os.getpid(),
        "thread": {"id": thread.ident, "name": "request-7"},
    }


def test_without_timestamp_the_clock_gives_the_time() -> None:
    doc = document({"event": "x", "level": "debug"})

    assert doc["@timestamp"] == "2023-11-14T22:13:20.500Z"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2023-11-14T22:13:20.123456Z", "2023-11-14T22:13:20.123Z"),
        ("2023-11-14T23:13:20.123+01:00", "2023-11-14T22:13:20.123Z"),
        (
            datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=datetime.timezone.utc),
            "2023-11-14T22:13:20.123Z",
        ),
        (1_700_000_000, "2023-11-14T22:13:20.000Z"),
    ],
)
def test_timestamps_structlog_writes(timestamp: object, expected: str) -> None:
    doc = document({"event": "x", "timestamp": timestamp})

    assert doc["@timestamp"] == expected
    assert "timestamp" not in doc


def test_timestamp_from_structlog_timestamper() -> None:
    event = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {"event": "x"})
    expected = datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))

    doc = document(event)

    assert doc["@timestamp"] == expected.strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{expected.microsecond // 1000:03d}Z"
    )


def test_an_unreadable_timestamp_is_kept_as_an_extra_field() -> None:
    doc = document({"event": "x", "timestamp": "yesterday"})

    assert doc["@timestamp"] == "2023-11-14T22:13:20.500Z"
    assert doc["timestamp"] == "yesterday"


def test_level_and_message_forms() -> None:
    doc = document({"event": {"structured": True}, "level": "WARNING"})

    assert doc["log.level"] == "warning"
    assert doc["message"] == "{'structured': True}"
    assert "log.level" not in document({"event": "no level"})
    assert document({"level": "info"})["message"] == ""


def test_extras_never_replace_the_serializers_own_fields() -> None:
    doc = document(
        {
            "event": "real",
            "level": "info",
            "logger": "shop",
            "message": "forged",
            "ecs.version": "9",
            "log.level": "critical",
            "ecs": "flat",
            "log": {"logger": "forged", "file": {"path": "/var/log/app.log"}},
        }
    )

    assert doc["message"] == "real"
    assert doc["ecs.version"] == "1.6.0"
    assert doc["log.level"] == "info"
    assert "ecs" not in doc
    assert doc["log"] == {"logger": "shop", "file": {"path": "/var/log/app.log"}}


def _fail() -> None:
    raise ValueError("card declined")


def test_exc_info_true_is_the_exception_being_handled() -> None:
    ecs = serializer()
    try:
        _fail()
    except ValueError as error:
        value = ecs({"event": "failed", "level": "error", "exc_info": True})
        expected = "".join(traceback.format_exception(type(error), error, error.__traceback__))

    error_fields = json.loads(value)["error"]

    assert error_fields == {
        "type": "ValueError",
        "message": "card declined",
        "stack_trace": expected.rstrip("\n"),
    }


def test_exc_info_as_an_exception() -> None:
    doc = document({"event": "failed", "exc_info": KeyError("sku")})

    assert doc["error"] == {
        "type": "KeyError",
        "message": "'sku'",
        "stack_trace": "KeyError: 'sku'",
    }
    assert "exc_info" not in doc


def test_exception_text_from_format_exc_info() -> None:
    try:
        _fail()
    except ValueError:
        event = structlog.processors.format_exc_info(
            None, "error", {"event": "failed", "exc_info": True}
        )

    doc = document(event)

    assert doc["error"] == {"stack_trace": event["exception"]}
    assert doc["error"]["stack_trace"].endswith("ValueError: card declined")
    assert "exception" not in doc


def test_stack_from_stack_info_renderer() -> None:
    doc = document({"event": "where am I", "stack": "Stack (most recent call last):\n..."})

    assert doc["error"] == {"stack_trace": "Stack (most recent call last):\n..."}


def test_exc_info_without_an_exception_is_dropped_and_odd_values_kept() -> None:
    assert "exc_info" not in document({"event": "x", "exc_info": False})
    assert "error" not in document({"event": "x", "exc_info": True})  # nothing being handled
    assert document({"event": "x", "exc_info": "text"})["exc_info"] == "text"


def test_trace_ids() -> None:
    doc = document(
        {"event": "x", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": 0xF067AA0BA902B7}
    )

    assert doc["trace"] == {"id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert doc["span"] == {"id": "00f067aa0ba902b7"}
    assert "trace_id" not in doc
    assert "span_id" not in doc


def test_non_utf8_and_unserialisable_values() -> None:
    value = serializer()(
        {
            "event": b"caf\xe9".decode("utf-8", "surrogateescape"),
            "raw": b"\x80abc",
            "obj": object.__new__(type("Opaque", (), {"__repr__": lambda self: "<opaque>"})),
        }
    )

    doc = json.loads(value.decode("utf-8"))

    assert doc["message"] == "caf\\xe9"
    assert doc["raw"] == "\\x80abc"
    assert doc["obj"] == "<opaque>"


@pytest.mark.parametrize("mode", ["merge", "nest", "labels"])
def test_keys_that_are_not_strings(mode: str) -> None:
    event: dict[Any, Any] = {"event": "x", 7: "seven", ("a", "b"): 1}

    doc = document(event, extra_fields=mode)

    found = {"merge": doc, "nest": doc.get("extra", {}), "labels": doc.get("labels", {})}[mode]
    assert found["7"] == "seven"
    assert found["('a', 'b')"] == 1


def test_a_mapping_that_cannot_be_read_still_gives_a_document() -> None:
    class Broken(dict[str, Any]):
        def __iter__(self) -> Any:
            raise RuntimeError("changed during iteration")

        def keys(self) -> Any:
            raise RuntimeError("changed during iteration")

    doc = json.loads(serializer()(Broken(event="x")))

    assert doc["log.level"] == "error"
    assert doc["message"].startswith("kafka_sink_ecs could not serialise a record:")


def test_structlog_pipeline_end_to_end() -> None:
    captured: list[bytes] = []
    ecs = serializer(service_name="shop")

    def ship(_logger: Any, _method: str, event: Any) -> str:
        captured.append(ecs(event))
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

    doc = json.loads(captured[0])
    assert list(doc)[:4] == ["@timestamp", "log.level", "message", "ecs.version"]
    assert doc["log.level"] == "warning"
    assert doc["message"] == "low stock"
    assert doc["sku"] == "A-1"
    assert doc["left"] == 2
    assert doc["service"] == {"name": "shop"}
