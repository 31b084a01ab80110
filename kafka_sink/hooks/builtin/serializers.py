"""Built-in serializers: log records and structlog event dicts as bytes.

``"json"`` (log records and event dicts) writes one JSON object per record;
``"text"`` (log records) writes what a :class:`logging.Formatter` makes of it.

Nothing a record holds makes them raise: the JSON is written by
:func:`kafka_sink.serialization.to_json_bytes`, which writes a value JSON
cannot represent as text (``repr()``, or ``str()`` for values whose text is
their value, such as UUIDs, decimals and paths; bytes decoded as UTF-8 with
``\\x..`` escapes), a cycle or a non-string key as text too, NaN and
infinities as strings (so the output stays strict JSON), and text that is
not valid Unicode (lone surrogates from ``surrogateescape``) as escaped
text, so the bytes are always valid UTF-8 that strict decoders accept. The
one error
left to the caller is a log call whose ``%``-format does not match its
arguments: :meth:`logging.LogRecord.getMessage` raises, and the handler
reports the record (as the standard handlers do) instead of guessing.

JSON of a log record, with the default fields::

    {"timestamp": "2024-05-01T12:00:00.123456Z", "level": "ERROR", "logger": "app.db",
     "message": "query failed", "module": "db", "function": "run", "line": 42,
     "thread_name": "MainThread", "process": 4242,
     "exception": "Traceback (most recent call last): ...", "user_id": 7}

``exception`` and ``stack`` appear when the record has them; ``extra``
fields (``user_id`` above) follow the standard ones. Options
(``serializer_options``):

``fields``
    The standard fields to write, in order, among :data:`LOG_FIELDS`
    (default :data:`DEFAULT_LOG_FIELDS`).
``rename``
    ``{field: name}``: write a standard field under another name, e.g.
    ``{"timestamp": "@timestamp"}``.
``extra``
    Write the record's ``extra`` fields (default True). One whose name is
    taken by a standard field goes into an ``"extra"`` object instead.
``static``
    Fields added to every record, e.g. ``{"service": "billing"}``.
``formatter``
    A :class:`logging.Formatter` whose ``formatException`` and
    ``formatStack`` render the exception and stack text (the handler passes
    the one given to ``setFormatter``).

The ``"text"`` serializer takes ``formatter``, or ``format``, ``datefmt``
and ``style`` as :class:`logging.Formatter` does (default format:
:data:`DEFAULT_TEXT_FORMAT`). The ``"json"`` serializer of event dicts takes
``timestamp`` (add an ISO 8601 ``"timestamp"`` when the event has none,
default True) and ``static``; it writes ``exc_info`` as ``"exception"`` text.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.hooks.specs import EventSerializer, LogSerializer, hookimpl
from kafka_sink.serialization import (
    LOG_RECORD_ATTRIBUTES,
    check_option_names,
    exception_fields,
    invalid_option,
    iso_timestamp,
    pop_exc_info,
    to_json_bytes,
)

__all__ = [
    "DEFAULT_LOG_FIELDS",
    "DEFAULT_TEXT_FORMAT",
    "LOG_FIELDS",
    "JsonEventSerializer",
    "JsonLogSerializer",
    "TextLogSerializer",
    "kafka_sink_event_serializer",
    "kafka_sink_log_serializer",
]


@hookimpl
def kafka_sink_log_serializer(name: str, options: Mapping[str, Any]) -> LogSerializer | None:
    """``"json"`` and ``"text"``."""
    if name == "json":
        return JsonLogSerializer(**check_option_names(options, _JSON_LOG_OPTIONS, name))
    if name == "text":
        return TextLogSerializer(**check_option_names(options, _TEXT_OPTIONS, name))
    return None


@hookimpl
def kafka_sink_event_serializer(name: str, options: Mapping[str, Any]) -> EventSerializer | None:
    """``"json"``."""
    if name == "json":
        return JsonEventSerializer(**check_option_names(options, _JSON_EVENT_OPTIONS, name))
    return None


# ---------------------------------------------------------------------------
# Log records
# ---------------------------------------------------------------------------

#: The standard fields of a log record the JSON serializer can write.
LOG_FIELDS: Mapping[str, Callable[[logging.LogRecord], Any]] = MappingProxyType(
    {
        "timestamp": lambda record: iso_timestamp(record.created),
        "level": operator.attrgetter("levelname"),
        "level_number": operator.attrgetter("levelno"),
        "logger": operator.attrgetter("name"),
        "message": logging.LogRecord.getMessage,
        "module": operator.attrgetter("module"),
        "function": operator.attrgetter("funcName"),
        "line": operator.attrgetter("lineno"),
        "path": operator.attrgetter("pathname"),
        "file": operator.attrgetter("filename"),
        "thread": operator.attrgetter("thread"),
        "thread_name": operator.attrgetter("threadName"),
        "process": operator.attrgetter("process"),
        "process_name": operator.attrgetter("processName"),
        "task_name": lambda record: getattr(record, "taskName", None),
        # Written only when the record has them; computed by the serializer.
        "exception": lambda record: None,
        "stack": lambda record: None,
    }
)
#: What the JSON serializer writes unless told otherwise.
DEFAULT_LOG_FIELDS: tuple[str, ...] = (
    "timestamp",
    "level",
    "logger",
    "message",
    "module",
    "function",
    "line",
    "thread_name",
    "process",
    "exception",
    "stack",
)
_JSON_LOG_OPTIONS = ("fields", "rename", "extra", "static", "formatter")


class JsonLogSerializer:
    """A log record as one JSON object (see the module docstring for the fields).

    Example::

        serializer = JsonLogSerializer(fields=["timestamp", "level", "message"],
                                       rename={"timestamp": "@timestamp"},
                                       static={"service": "billing"})
        serializer(record)  # b'{"service":"billing","@timestamp":"...","level":"INFO",...}'
    """

    __slots__ = ("_exception", "_extra", "_formatter", "_getters", "_stack", "_static")

    def __init__(
        self,
        fields: Sequence[str] = DEFAULT_LOG_FIELDS,
        rename: Mapping[str, str] | None = None,
        extra: bool = True,
        static: Mapping[str, Any] | None = None,
        formatter: logging.Formatter | None = None,
    ) -> None:
        names = _string_list(fields, "fields")
        for name in names:
            if name not in LOG_FIELDS:
                invalid_option(
                    "fields",
                    f"{name!r} is not a log record field (fields: {', '.join(LOG_FIELDS)})",
                )
        renamed = _string_mapping(rename, "rename")
        for name in renamed:
            if name not in names:
                invalid_option("rename", f"{name!r} is not one of the fields written")
        if not isinstance(extra, bool):
            invalid_option("extra", f"must be True or False, got {extra!r}")
        if formatter is not None and not isinstance(formatter, logging.Formatter):
            invalid_option("formatter", f"must be a logging.Formatter, got {formatter!r}")
        self._static = dict(_string_mapping(static, "static", values=False))
        self._getters = tuple(
            (renamed.get(name, name), LOG_FIELDS[name])
            for name in names
            if name not in ("exception", "stack")
        )
        self._exception = renamed.get("exception", "exception") if "exception" in names else None
        self._stack = renamed.get("stack", "stack") if "stack" in names else None
        self._extra = extra
        self._formatter = formatter or logging.Formatter()

    def __call__(self, record: logging.LogRecord) -> bytes:
        out: dict[str, Any] = dict(self._static) if self._static else {}
        for name, get in self._getters:
            out[name] = get(record)
        if self._exception is not None and record.exc_info and record.exc_info[0] is not None:
            # Formatter.format() caches the text on the record; so does this,
            # and a later handler reuses it.
            if not record.exc_text:
                record.exc_text = self._formatter.formatException(record.exc_info)
            out[self._exception] = record.exc_text
        elif self._exception is not None and record.exc_text:
            out[self._exception] = record.exc_text
        if self._stack is not None and record.stack_info:
            out[self._stack] = self._formatter.formatStack(record.stack_info)
        if self._extra:
            attributes = record.__dict__
            extra = attributes.keys() - LOG_RECORD_ATTRIBUTES
            if extra:
                clashes: dict[str, Any] = {}
                for name in sorted(extra):
                    if name in out:
                        clashes[name] = attributes[name]
                    else:
                        out[name] = attributes[name]
                if clashes:
                    out.setdefault("extra", {}).update(clashes)
        return to_json_bytes(out)


#: The ``"text"`` serializer's format unless told otherwise.
DEFAULT_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TEXT_OPTIONS = ("formatter", "format", "datefmt", "style")
_STYLES: dict[str, Literal["%", "{", "$"]] = {"%": "%", "{": "{", "$": "$"}


class TextLogSerializer:
    """A log record as the text a :class:`logging.Formatter` makes of it, in UTF-8.

    Example::

        TextLogSerializer(format="%(levelname)s %(message)s")(record)  # b"INFO hello"
    """

    __slots__ = ("_format",)

    def __init__(
        self,
        formatter: logging.Formatter | None = None,
        format: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
    ) -> None:
        if formatter is not None:
            if not isinstance(formatter, logging.Formatter):
                invalid_option("formatter", f"must be a logging.Formatter, got {formatter!r}")
            if format is not None or datefmt is not None:
                invalid_option("format", "give either a formatter or a format, not both")
        else:
            style_name = _STYLES.get(style) if isinstance(style, str) else None
            if style_name is None:
                invalid_option("style", f"must be one of '%', '{{', '$', got {style!r}")
            try:
                formatter = logging.Formatter(
                    DEFAULT_TEXT_FORMAT if format is None else format, datefmt, style_name
                )
            except (ValueError, TypeError, KeyError) as error:
                raise InvalidArgumentError("serializer_options.format", str(error)) from None
        self._format = formatter.format

    def __call__(self, record: logging.LogRecord) -> bytes:
        return self._format(record).encode("utf-8", "backslashreplace")


# ---------------------------------------------------------------------------
# structlog event dicts
# ---------------------------------------------------------------------------

_JSON_EVENT_OPTIONS = ("timestamp", "static")


class JsonEventSerializer:
    """A structlog event dict as one JSON object; the dict itself is left unchanged.

    Example::

        JsonEventSerializer()({"event": "login", "user": 7, "level": "info"})
        # b'{"event":"login","user":7,"level":"info","timestamp":"2024-...Z"}'
    """

    __slots__ = ("_static", "_timestamp")

    def __init__(self, timestamp: bool = True, static: Mapping[str, Any] | None = None) -> None:
        if not isinstance(timestamp, bool):
            invalid_option("timestamp", f"must be True or False, got {timestamp!r}")
        self._timestamp = timestamp
        self._static = dict(_string_mapping(static, "static", values=False))

    def __call__(self, event: Mapping[str, Any]) -> bytes:
        payload: Mapping[str, Any] = event
        exc_info = event.get("exc_info")
        if self._static or exc_info is not None or (self._timestamp and "timestamp" not in event):
            out = {**self._static, **event}
            exc = pop_exc_info(out)
            if exc is not None:
                out.setdefault("exception", exception_fields(exc)[2])
            if self._timestamp and "timestamp" not in out:
                out["timestamp"] = iso_timestamp(time.time())
            payload = out
        return to_json_bytes(payload)


# ---------------------------------------------------------------------------
# Option checks
# ---------------------------------------------------------------------------


def _string_list(value: object, option: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        invalid_option(option, f"must be a list of names, got {value!r}")
    for item in value:
        if not isinstance(item, str):
            invalid_option(option, f"must hold names, got {item!r}")
    return tuple(value)


def _string_mapping(value: object, option: str, *, values: bool = True) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        invalid_option(option, f"must be a mapping, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or (values and not isinstance(item, str)):
            what = "names to names" if values else "names to values"
            invalid_option(option, f"must map {what}, got {key!r}: {item!r}")
    return value
