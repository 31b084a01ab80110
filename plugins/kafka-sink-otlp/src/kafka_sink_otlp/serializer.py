"""One OTLP/JSON ``LogsData`` document per log record or structlog event.

Each Kafka record holds a whole ``LogsData`` message (opentelemetry-proto
``logs/v1/logs.proto``) with one resource, one scope and one log record, so
a consumer can hand it to anything that reads OTLP/JSON: the Collector's
Kafka receiver with ``encoding: otlp_json``, for instance, or an OTLP/HTTP
``/v1/logs`` endpoint (``ExportLogsServiceRequest`` has the same shape).
For example::

    {"resourceLogs":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"shop"}},
        {"key":"host.name","value":{"stringValue":"web-1"}},
        {"key":"process.pid","value":{"intValue":"4242"}}]},
      "scopeLogs":[{"scope":{"name":"shop.pay"},"logRecords":[{
        "timeUnixNano":"1700000000123000000","observedTimeUnixNano":"1700000000200000000",
        "severityNumber":9,"severityText":"INFO","body":{"stringValue":"paid"},
        "attributes":[{"key":"code.filepath","value":{"stringValue":"/srv/shop/pay.py"}},...],
        "traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"}]}]}]}

From a log record:

=================================  ================================================
``created``                        ``timeUnixNano`` (to the microsecond)
(the time of serialisation)        ``observedTimeUnixNano``
``levelno``                        ``severityNumber`` (:func:`severity_number`)
``levelname``                      ``severityText``
``getMessage()``                   ``body.stringValue``
``name``                           ``scope.name``
``process``                        resource ``process.pid``
``pathname``                       ``code.filepath`` (``code.file.path``)
``lineno``                         ``code.lineno`` (``code.line.number``)
``funcName``                       ``code.function`` (``code.function.name``)
``thread``, ``threadName``         ``thread.id``, ``thread.name``
``exc_info``                       ``exception.type`` (module-qualified class
                                   name), ``exception.message``,
                                   ``exception.stacktrace``
``stack_info``                     ``code.stacktrace``
``otelTraceID`` or ``trace_id``    ``traceId`` (hex)
``otelSpanID`` or ``span_id``      ``spanId`` (hex; only beside a ``traceId``)
``otelTraceSampled``               ``flags`` 1 (W3C "sampled")
anything else                      attributes (see ``extra_fields``)
=================================  ================================================

The names in parentheses are those of ``code_attributes="stable"``.

A structlog event dict gives ``event`` (the body: text, or structured when
it is not a string), ``level``, ``logger``, ``timestamp``, ``exc_info``,
``exception`` (text from ``format_exc_info``: ``exception.stacktrace``),
``stack``, ``trace_id``/``span_id`` and the keys of
``CallsiteParameterAdder``; the process and thread default to the
serialising (that is, the logging) thread's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.serialization import (
    ExcInfo,
    exc_info_of,
    exception_fields,
    find_hex_id,
    pop_exc_info,
    record_extras,
    record_message,
    safe_repr,
    safe_str,
    seconds_to_ns,
    timestamp_ns,
    to_json_bytes,
)

from kafka_sink_otlp.options import OtlpOptions, default_service_name
from kafka_sink_otlp.values import any_value, key_value

__all__ = ["OtlpEventSerializer", "OtlpLogSerializer", "severity_number"]

_OTEL_ATTRIBUTES = ("otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName")
_TRACE_ID_KEYS = ("otelTraceID", "trace_id")
_SPAN_ID_KEYS = ("otelSpanID", "span_id")
_CODE_KEYS = {
    "legacy": ("code.filepath", "code.lineno", "code.function"),
    "stable": ("code.file.path", "code.line.number", "code.function.name"),
}

#: structlog level names (``add_log_level``) and their severity numbers.
_LEVEL_NAMES = {
    "trace": 1,
    "debug": 5,
    "info": 9,
    "warn": 13,
    "warning": 13,
    "error": 17,
    "exception": 17,
    "critical": 21,
    "fatal": 21,
}

Document = dict[str, Any]


def severity_number(levelno: int) -> int:
    """The OpenTelemetry severity number of a :mod:`logging` level.

    The standard levels map to the first number of their range (DEBUG 5,
    INFO 9, WARNING 13, ERROR 17, CRITICAL 21); a custom level between two
    standard ones takes the number its distance into the range gives
    (``logging.INFO + 5`` is 11, INFO3). Levels below DEBUG are TRACE
    (1-4); NOTSET is 0, unspecified.
    """
    if levelno <= 0:
        return 0
    if levelno < logging.DEBUG:
        return 1 + (levelno - 1) * 4 // 9
    if levelno >= logging.CRITICAL + 10:
        return 24
    band, offset = divmod(levelno, 10)
    return 4 * band + 1 + offset * 4 // 10


class _Otlp:
    """What the log and event serializers share: the resource and document assembly."""

    __slots__ = ("_clock_ns", "_code_keys", "_options", "_resource", "_resource_pid")

    def __init__(self, options: OtlpOptions | None, clock_ns: Callable[[], int]) -> None:
        options = OtlpOptions() if options is None else options
        if not isinstance(options, OtlpOptions):
            raise InvalidArgumentError(
                "options", f"must be OtlpOptions, got {type(options).__name__}"
            )
        self._options = options
        self._clock_ns = clock_ns
        self._code_keys = _CODE_KEYS[options.code_attributes]
        resource: dict[str, Any] = {"service.name": None}
        if options.hostname is not None:
            resource["host.name"] = options.hostname
        resource["process.pid"] = None  # per record, unless given
        resource.update(options.resource_attributes)
        resource["service.name"] = (
            options.service_name
            or _str_or_none(options.resource_attributes.get("service.name"))
            or default_service_name()
        )
        self._resource_pid = resource["process.pid"] is None
        # Converted once; only process.pid is filled in per record.
        self._resource: tuple[tuple[str, Any], ...] = tuple(
            (key, None if key == "process.pid" and self._resource_pid else any_value(value))
            for key, value in resource.items()
        )

    @property
    def options(self) -> OtlpOptions:
        """The options this serializer was built with."""
        return self._options

    def _document(
        self,
        *,
        time_ns: int | None,
        observed_ns: int,
        severity: int,
        severity_text: str,
        body: Any,
        scope: str,
        pid: int,
        own: Iterable[tuple[str, Any]],
        extras: Iterable[tuple[Any, Any]],
        trace_id: str | None,
        span_id: str | None,
        sampled: bool,
    ) -> Document:
        attributes: dict[str, Any] = {}
        for key, value in own:
            if value is not None:
                attributes[key] = any_value(value)
        if self._options.extra_fields == "attributes":
            prefix = self._options.extra_prefix
            for key, value in extras:
                # An event dict may have keys that are not strings.
                attributes.setdefault(prefix + safe_str(key), any_value(value))
        log_record: Document = {}
        if time_ns is not None:
            log_record["timeUnixNano"] = str(time_ns)
        log_record["observedTimeUnixNano"] = str(observed_ns)
        if severity:
            log_record["severityNumber"] = severity
        if severity_text:
            log_record["severityText"] = severity_text
        log_record["body"] = any_value(body)
        if attributes:
            log_record["attributes"] = [key_value(k, v) for k, v in attributes.items()]
        if trace_id is not None:
            if sampled:
                log_record["flags"] = 1  # W3C trace flags: sampled
            log_record["traceId"] = trace_id
        if span_id is not None:
            log_record["spanId"] = span_id
        return {
            "resourceLogs": [
                {
                    "resource": {"attributes": self._resource_attributes(pid)},
                    "scopeLogs": [
                        {
                            "scope": {"name": scope} if scope else {},
                            "logRecords": [log_record],
                        }
                    ],
                }
            ]
        }

    def _resource_attributes(self, pid: int) -> list[dict[str, Any]]:
        return [
            key_value(key, any_value(pid) if value is None else value)
            for key, value in self._resource
        ]

    def _code(self, path: object, line: object, function: object) -> list[tuple[str, Any]]:
        filepath, lineno, func = self._code_keys
        return [(filepath, path), (lineno, line), (func, function)]

    def _fallback(self, record: object, error: BaseException) -> bytes:
        """A minimal document for a record that could not be serialised otherwise."""
        now = time.time_ns()
        document = {
            "resourceLogs": [
                {
                    "resource": {"attributes": self._resource_attributes(os.getpid())},
                    "scopeLogs": [
                        {
                            "scope": {"name": "kafka_sink_otlp"},
                            "logRecords": [
                                {
                                    "timeUnixNano": str(now),
                                    "observedTimeUnixNano": str(now),
                                    "severityNumber": 17,
                                    "severityText": "ERROR",
                                    "body": {
                                        "stringValue": "kafka_sink_otlp could not serialise "
                                        f"a record: {safe_repr(error)}"
                                    },
                                    "attributes": [
                                        key_value(
                                            "log.record.original",
                                            {"stringValue": safe_repr(record)},
                                        )
                                    ],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
        return to_json_bytes(document)


class OtlpLogSerializer(_Otlp):
    """Turns a :class:`logging.LogRecord` into the bytes of one OTLP/JSON ``LogsData``.

    ``clock_ns`` gives the observed time (nanoseconds since the epoch). Never
    raises for a record: a value with no OTLP type becomes its ``repr``, and
    a record that cannot be read at all still yields a document saying so.

    Example::

        serializer = OtlpLogSerializer(OtlpOptions(service_name="shop"))
        value = serializer(record)  # b'{"resourceLogs":[...]}'
    """

    __slots__ = ()

    def __init__(
        self, options: OtlpOptions | None = None, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        super().__init__(options, clock_ns)

    def __call__(self, record: logging.LogRecord) -> bytes:
        try:
            return to_json_bytes(self.document(record))
        except Exception as error:
            return self._fallback(record, error)

    def document(self, record: logging.LogRecord) -> Document:
        """The ``LogsData`` for ``record``, as a dict (what :meth:`__call__` encodes)."""
        attributes = vars(record)
        trace_key, trace_id = find_hex_id(attributes, _TRACE_ID_KEYS, 16)
        span_key, span_id = _ids_span(attributes, _SPAN_ID_KEYS, trace_id)
        own = self._code(record.pathname, record.lineno, record.funcName)
        own += [("thread.id", record.thread), ("thread.name", record.threadName)]
        exc = exc_info_of(record.exc_info)
        if exc is not None:
            own += _exception(exc, self._options)
        elif record.exc_text:
            # A record that crossed a process boundary keeps only the text.
            own.append(("exception.stacktrace", record.exc_text))
        if record.stack_info:
            own.append(("code.stacktrace", _stack(record.stack_info, self._options)))
        extras = record_extras(record, {*_OTEL_ATTRIBUTES, trace_key, span_key})
        return self._document(
            time_ns=seconds_to_ns(record.created),
            observed_ns=self._clock_ns(),
            severity=severity_number(record.levelno),
            severity_text=safe_str(record.levelname),
            body=record_message(record),
            scope=safe_str(record.name),
            pid=record.process if isinstance(record.process, int) else os.getpid(),
            own=own,
            extras=extras,
            trace_id=trace_id,
            span_id=span_id,
            sampled=attributes.get("otelTraceSampled") is True,
        )


class OtlpEventSerializer(_Otlp):
    """Turns a structlog event dict into the bytes of one OTLP/JSON ``LogsData``.

    ``clock_ns`` gives the observed time, and the event time when the event
    has no ``timestamp``. Never raises for an event.

    Example::

        serializer = OtlpEventSerializer(OtlpOptions(service_name="shop"))
        value = serializer({"event": "paid", "level": "info", "order_id": 17})
    """

    __slots__ = ()

    def __init__(
        self, options: OtlpOptions | None = None, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        super().__init__(options, clock_ns)

    def __call__(self, event: Mapping[str, Any]) -> bytes:
        try:
            return to_json_bytes(self.document(event))
        except Exception as error:
            return self._fallback(event, error)

    def document(self, event: Mapping[str, Any]) -> Document:
        """The ``LogsData`` for ``event``, as a dict (what :meth:`__call__` encodes)."""
        rest = dict(event)
        observed = self._clock_ns()
        body = rest.pop("event", None)
        level = rest.pop("level", None)
        time_ns = timestamp_ns(rest.get("timestamp"))
        if time_ns is None:
            time_ns = observed  # serialised as it is logged: now is when it happened
        else:
            del rest["timestamp"]
        trace_key, trace_id = find_hex_id(rest, ("trace_id",), 16)
        span_key, span_id = _ids_span(rest, ("span_id",), trace_id)
        for key in (trace_key, span_key):
            if key:
                del rest[key]
        thread = threading.current_thread()
        path = _pop(rest, "pathname", str)
        filename = _pop(rest, "filename", str)
        own = self._code(path or filename, _pop(rest, "lineno", int), _pop(rest, "func_name", str))
        own += [
            ("thread.id", _pop(rest, "thread", int) or thread.ident),
            ("thread.name", _pop(rest, "thread_name", str) or thread.name),
        ]
        own += self._error(rest)
        level_text = "" if level is None else safe_str(level)
        return self._document(
            time_ns=time_ns,
            observed_ns=observed,
            severity=_LEVEL_NAMES.get(level_text.lower(), 0),
            severity_text=level_text,
            body=body,
            scope=_pop(rest, "logger", str) or "",
            pid=_pop(rest, "process", int) or os.getpid(),
            own=own,
            extras=((key, value) for key, value in rest.items() if value is not None),
            trace_id=trace_id,
            span_id=span_id,
            sampled=False,
        )

    def _error(self, rest: dict[str, Any]) -> list[tuple[str, Any]]:
        exc = pop_exc_info(rest)
        own: list[tuple[str, Any]] = []
        if exc is not None:
            rest.pop("exception", None)
            own += _exception(exc, self._options)
        elif isinstance(rest.get("exception"), str) and rest["exception"]:
            # Already rendered by structlog.processors.format_exc_info.
            own.append(("exception.stacktrace", rest.pop("exception")))
        stack = rest.get("stack")
        if isinstance(stack, str) and stack:
            own.append(("code.stacktrace", _stack(rest.pop("stack"), self._options)))
        return own


def _exception(exc: ExcInfo, options: OtlpOptions) -> list[tuple[str, Any]]:
    error_type, message, stack = exception_fields(exc, options.formatter)
    return [
        ("exception.type", error_type),
        ("exception.message", message),
        ("exception.stacktrace", stack),
    ]


def _stack(stack: str, options: OtlpOptions) -> str:
    if options.formatter is not None:
        with contextlib.suppress(Exception):  # a formatter's bug must not lose the record
            return options.formatter.formatStack(stack)
    return stack


def _ids_span(
    attributes: Mapping[str, Any], keys: tuple[str, ...], trace_id: str | None
) -> tuple[str, str | None]:
    # The log data model: when SpanId is present, TraceId should be too. A
    # span id without a trace id identifies nothing; it stays an attribute.
    return find_hex_id(attributes, keys, 8) if trace_id is not None else ("", None)


def _pop(rest: dict[str, Any], key: str, kind: type) -> Any:
    """Take ``rest[key]`` if it is of ``kind`` (not a bool), else leave it and return None."""
    value = rest.get(key)
    if isinstance(value, kind) and not isinstance(value, bool):
        del rest[key]
        return value
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
