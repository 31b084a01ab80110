"""ECS logging documents from log records and structlog event dicts.

The document follows the ECS logging spec (github.com/elastic/ecs-logging,
``spec/spec.json``): ``@timestamp``, ``log.level``, ``message`` and
``ecs.version`` come first, in that order, with ``log.level`` and
``ecs.version`` written as dotted names; every other field is a nested
object (``{"log": {"logger": ...}}``), which Elasticsearch reads the same as
the dotted name. For example::

    {"@timestamp":"2023-11-14T22:13:20.123Z","log.level":"info","message":"paid",
     "ecs.version":"1.6.0","log":{"logger":"shop","origin":{"file":{"name":"pay.py",
     "line":42},"function":"pay"}},"process":{"pid":4242,"thread":{"id":1,
     "name":"MainThread"}},"host":{"hostname":"web-1"},"service":{"name":"shop"},
     "event":{"dataset":"shop.log"},"order_id":17}

Field by field (log record attribute -> ECS field):

=================================  ==============================================
``created``                        ``@timestamp`` (UTC, milliseconds)
``levelname``                      ``log.level`` (lower case, as ecs-logging-python)
``getMessage()``                   ``message``
``name``                           ``log.logger``
``filename``                       ``log.origin.file.name``
``lineno``                         ``log.origin.file.line``
``funcName``                       ``log.origin.function``
``process``                        ``process.pid``
``thread``                         ``process.thread.id``
``threadName``                     ``process.thread.name``
``exc_info``                       ``error.type`` (module-qualified class name),
                                   ``error.message``, ``error.stack_trace``
``stack_info``                     ``error.stack_trace`` when there is no exception
``trace_id`` or ``otelTraceID``    ``trace.id`` (hex)
``span_id`` or ``otelSpanID``      ``span.id`` (hex)
``otelServiceName``                ``service.name``, unless the option is set
anything else                      extra fields (see :data:`~kafka_sink_ecs.options.ExtraFields`)
=================================  ==============================================

A structlog event dict gives ``event`` (message), ``level``, ``logger``,
``timestamp`` (epoch seconds, datetime or ISO-8601; the time of
serialisation when absent), ``exc_info``, ``exception`` (text from
``format_exc_info``), ``stack``, ``trace_id``/``span_id`` and the keys of
``CallsiteParameterAdder`` (``filename``, ``func_name``, ``lineno``,
``thread``, ``thread_name``, ``process``); the process and thread default
to the serialising (that is, the logging) thread's. Every other key is an
extra field.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.serialization import (
    ExcInfo,
    exc_info_of,
    exception_fields,
    find_hex_id,
    iso_timestamp,
    jsonable,
    pop_exc_info,
    record_extras,
    record_message,
    safe_repr,
    safe_str,
    timestamp_ns,
    to_json_bytes,
)

from kafka_sink_ecs.options import EcsOptions

__all__ = ["EcsEventSerializer", "EcsLogSerializer"]

# OpenTelemetry's logging instrumentation adds these; they say nothing once
# the trace and span ids are in their own fields.
_OTEL_ATTRIBUTES = ("otelTraceID", "otelSpanID", "otelTraceSampled", "otelServiceName")
_TRACE_ID_KEYS = ("trace_id", "otelTraceID")
_SPAN_ID_KEYS = ("span_id", "otelSpanID")

Document = dict[str, Any]
Path = tuple[str, ...]


class _Ecs:
    """What the log and event serializers share: options and document assembly."""

    __slots__ = ("_excluded", "_options", "_static", "_static_extras")

    def __init__(self, options: EcsOptions | None) -> None:
        options = EcsOptions() if options is None else options
        if not isinstance(options, EcsOptions):
            raise InvalidArgumentError(
                "options", f"must be EcsOptions, got {type(options).__name__}"
            )
        self._options = options
        dataset = options.event_dataset
        if dataset is None and options.service_name:
            dataset = f"{options.service_name}.log"
        static = [
            (("host", "hostname"), options.hostname),
            (("service", "name"), options.service_name),
            (("service", "version"), options.service_version),
            (("event", "dataset"), dataset or None),
        ]
        self._static: tuple[tuple[Path, Any], ...] = tuple(
            (path, value) for path, value in static if value is not None
        )
        # Converted once: the per-record path only copies the leaves.
        self._static_extras: tuple[tuple[Path, Any], ...] = tuple(
            (tuple(name.split(".")), leaf)
            for key, value in options.static_fields.items()
            for name, leaf in _leaves(key, jsonable(value))
        )
        self._excluded: tuple[Path, ...] = tuple(
            tuple(name.split(".")) for name in options.exclude_fields
        )

    @property
    def options(self) -> EcsOptions:
        """The options this serializer was built with."""
        return self._options

    def _assemble(
        self, seconds: float, message: str, own: Document, extras: Iterable[tuple[Any, Any]]
    ) -> Document:
        """Put the fields together; ``own`` fields are never replaced by extras.

        ``own`` holds the serializer's fields as nested objects (``log.level``
        in ``log``); None values and the objects they leave empty are dropped.
        """
        document: Document = {"@timestamp": iso_timestamp(seconds, 3), "message": message}
        document["ecs"] = {"version": self._options.ecs_version}
        document.update(_pruned(own))
        for path, value in self._static:
            _insert(document, path, value)
        for path, value in self._static_extras:
            _insert(document, path, value)
        self._add_extras(document, extras)
        for path in self._excluded:
            _remove(document, path)
        return _ordered(document)

    def _add_extras(self, document: Document, extras: Iterable[tuple[Any, Any]]) -> None:
        mode = self._options.extra_fields
        if mode == "drop":
            return
        # An event dict may have keys that are not strings.
        extras = ((safe_str(key), value) for key, value in extras)
        if mode == "nest":
            target = document.setdefault(self._options.extra_namespace, {})
            if isinstance(target, dict):  # a static field may have taken the name
                for key, value in extras:
                    target.setdefault(key, jsonable(value))
            return
        for key, value in extras:
            if mode == "merge" and "." not in key and isinstance(value, str | int | float):
                # The common case, a plain name and a scalar: no path to walk.
                if key not in document:
                    document[key] = jsonable(value)
                continue
            for name, leaf in _leaves(key, jsonable(value)):
                if mode == "merge":
                    _insert(document, tuple(name.split(".")), leaf)
                else:
                    labels = document.setdefault("labels", {})
                    if isinstance(labels, dict):
                        labels.setdefault(_label_name(name), _label_value(leaf))

    def _fallback(self, record: object, error: BaseException) -> bytes:
        """A minimal document for a record that could not be serialised otherwise."""
        document = {
            "@timestamp": iso_timestamp(time.time(), 3),
            "log.level": "error",
            "message": f"kafka_sink_ecs could not serialise a record: {safe_repr(error)}",
            "ecs.version": self._options.ecs_version,
            "event": {"original": safe_repr(record)},
        }
        return to_json_bytes(document)


class EcsLogSerializer(_Ecs):
    """Turns a :class:`logging.LogRecord` into the bytes of one ECS JSON document.

    Never raises for a record: a value that is not JSON becomes its ``repr``,
    and a record that cannot be read at all still yields a document saying so.

    Example::

        serializer = EcsLogSerializer(EcsOptions(service_name="shop"))
        value = serializer(record)  # b'{"@timestamp":...}'
    """

    __slots__ = ()

    def __init__(self, options: EcsOptions | None = None) -> None:
        super().__init__(options)

    def __call__(self, record: logging.LogRecord) -> bytes:
        try:
            return to_json_bytes(self.document(record))
        except Exception as error:
            return self._fallback(record, error)

    def document(self, record: logging.LogRecord) -> Document:
        """The document for ``record``, as a dict (what :meth:`__call__` encodes)."""
        attributes = vars(record)
        trace_key, trace_id = find_hex_id(attributes, _TRACE_ID_KEYS, 16)
        span_key, span_id = find_hex_id(attributes, _SPAN_ID_KEYS, 8)
        own: Document = {
            "log": {
                "level": safe_str(record.levelname).lower(),
                "logger": record.name,
                "origin": {
                    "file": {"name": record.filename, "line": record.lineno},
                    "function": record.funcName,
                },
            },
            "process": {
                "pid": record.process,
                "thread": {"id": record.thread, "name": record.threadName},
            },
            "trace": {"id": trace_id},
            "span": {"id": span_id},
            "error": self._error(record),
        }
        service = attributes.get("otelServiceName")
        if self._options.service_name is None and isinstance(service, str) and service:
            own["service"] = {"name": service}
        extras = record_extras(record, {*_OTEL_ATTRIBUTES, trace_key, span_key})
        return self._assemble(record.created, record_message(record), own, extras)

    def _error(self, record: logging.LogRecord) -> Document | None:
        exc = exc_info_of(record.exc_info)
        if exc is not None:
            return _error_fields(exc, self._options)
        # A record that crossed a process boundary (SocketHandler, a queue)
        # keeps only the text a Formatter made of its exception.
        if record.exc_text:
            return {"stack_trace": record.exc_text}
        if record.stack_info:
            return _stack_fields(record.stack_info, self._options)
        return None


class EcsEventSerializer(_Ecs):
    """Turns a structlog event dict into the bytes of one ECS JSON document.

    ``clock`` gives the time for events without a ``timestamp`` (seconds
    since the epoch). Never raises for an event.

    Example::

        serializer = EcsEventSerializer(EcsOptions(service_name="shop"))
        value = serializer({"event": "paid", "level": "info", "order_id": 17})
    """

    __slots__ = ("_clock",)

    def __init__(
        self, options: EcsOptions | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(options)
        self._clock = clock

    def __call__(self, event: Mapping[str, Any]) -> bytes:
        try:
            return to_json_bytes(self.document(event))
        except Exception as error:
            return self._fallback(event, error)

    def document(self, event: Mapping[str, Any]) -> Document:
        """The document for ``event``, as a dict (what :meth:`__call__` encodes)."""
        rest = dict(event)
        message = rest.pop("event", None)
        level = rest.pop("level", None)
        nanoseconds = timestamp_ns(rest.get("timestamp"))
        if nanoseconds is None:
            seconds = self._clock()
        else:
            seconds = nanoseconds / 1e9
            del rest["timestamp"]
        trace_key, trace_id = find_hex_id(rest, ("trace_id",), 16)
        span_key, span_id = find_hex_id(rest, ("span_id",), 8)
        for key in (trace_key, span_key):
            if key:
                del rest[key]
        thread = threading.current_thread()
        own: Document = {
            "log": {
                "level": None if level is None else safe_str(level).lower(),
                "logger": _pop(rest, "logger", str),
                "origin": {
                    "file": {
                        "name": _pop(rest, "filename", str),
                        "line": _pop(rest, "lineno", int),
                    },
                    "function": _pop(rest, "func_name", str),
                },
            },
            "process": {
                "pid": _pop(rest, "process", int) or os.getpid(),
                "thread": {
                    "id": _pop(rest, "thread", int) or thread.ident,
                    "name": _pop(rest, "thread_name", str) or thread.name,
                },
            },
            "trace": {"id": trace_id},
            "span": {"id": span_id},
            "error": self._error(rest),
        }
        extras = ((key, value) for key, value in rest.items() if value is not None)
        return self._assemble(seconds, "" if message is None else safe_str(message), own, extras)

    def _error(self, rest: dict[str, Any]) -> Document | None:
        exc = pop_exc_info(rest)
        if exc is not None:
            rest.pop("exception", None)
            return _error_fields(exc, self._options)
        text = rest.get("exception")
        if isinstance(text, str) and text:
            # Already rendered by structlog.processors.format_exc_info.
            del rest["exception"]
            return {"stack_trace": text}
        stack = rest.get("stack")
        if isinstance(stack, str) and stack:
            del rest["stack"]
            return _stack_fields(stack, self._options)
        return None


def _error_fields(exc: ExcInfo, options: EcsOptions) -> Document:
    error_type, message, stack = exception_fields(
        exc, options.formatter, limit=options.stack_trace_limit
    )
    return {"type": error_type, "message": message, "stack_trace": stack}


def _stack_fields(stack: str, options: EcsOptions) -> Document | None:
    """``error.stack_trace`` of a stack without an exception (``stack_info``)."""
    if options.formatter is not None:
        with contextlib.suppress(Exception):  # a formatter's bug must not lose the record
            stack = options.formatter.formatStack(stack)
    elif options.stack_trace_limit == 0:
        return None
    return {"stack_trace": stack}


def _pop(rest: dict[str, Any], key: str, kind: type) -> Any:
    """Take ``rest[key]`` if it is of ``kind`` (not a bool), else leave it and return None."""
    value = rest.get(key)
    if isinstance(value, kind) and not isinstance(value, bool):
        del rest[key]
        return value
    return None


def _pruned(node: Document) -> Document:
    """A copy of ``node`` without None values, nor the objects left empty by them."""
    kept: Document = {}
    for key, value in node.items():
        if isinstance(value, dict):
            value = _pruned(value)  # noqa: PLW2901 - the pruned copy replaces it
            if not value:
                continue
        elif value is None:
            continue
        kept[key] = value
    return kept


def _leaves(key: str, value: Any) -> Iterator[tuple[str, Any]]:
    """Flatten converted JSON data to ``(dotted name, leaf)``; empty objects are leaves."""
    if isinstance(value, dict) and value:
        for sub, item in value.items():
            yield from _leaves(f"{key}.{sub}", item)
    else:
        yield key, value


def _insert(document: Document, path: Path, value: Any) -> bool:
    """Set ``path`` to ``value`` unless the path is taken (a leaf on the way or at the end)."""
    node = document
    for name in path[:-1]:
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            return False
        node = child
    if path[-1] in node:
        return False
    # A fresh dict for an empty-object leaf: static leaves are shared by
    # every document, and a later extra may insert into this one.
    node[path[-1]] = {} if isinstance(value, dict) and not value else value
    return True


def _remove(document: Document, path: Path) -> None:
    """Delete ``path`` and any object it leaves empty."""
    trail = []
    node: Any = document
    for name in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(name), dict):
            return
        trail.append((node, name))
        node = node[name]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, name in reversed(trail):
        if parent[name]:
            break
        del parent[name]


def _ordered(document: Document) -> Document:
    """Move ``log.level`` and ``ecs.version`` to the front as dotted names (spec order)."""
    log = document.get("log")
    level = log.pop("level", None) if isinstance(log, dict) else None
    if log == {}:
        del document["log"]
    ecs = document.pop("ecs")
    version = ecs.pop("version")
    ordered: Document = {"@timestamp": document.pop("@timestamp")}
    if level is not None:
        ordered["log.level"] = level
    ordered["message"] = document.pop("message")
    ordered["ecs.version"] = version
    if ecs:
        ordered["ecs"] = ecs
    ordered.update(document)
    return ordered


def _label_name(name: str) -> str:
    return name.replace(".", "_").replace("*", "_").replace("\\", "_")


def _label_value(leaf: Any) -> Any:
    # Labels hold keywords: scalars stay, a list or an empty object becomes
    # its JSON text rather than a nested value the labels mapping rejects.
    if isinstance(leaf, list | dict):
        return to_json_bytes(leaf).decode("utf-8")
    return leaf
