"""Built-in record functions: the key from an attribute, and the standard headers.

Key (``key="user_id"`` on a handler or processor, which asks for the
``"attribute"`` key function with ``{"attribute": "user_id"}``): that
attribute of a log record (given with ``extra=``) or that item of a
structlog event dict. Bytes are used as they are, text is encoded as UTF-8,
anything else is written with ``str()``; a record without it has no key.

Headers, every value UTF-8 text:

``level``, ``logger``
    The record's level name and logger name (an event dict's ``level`` and
    ``logger`` items, when it has them).
``host``
    This machine's host name.
``trace_id``, ``span_id``
    When the record has them: ``trace_id`` / ``span_id`` attributes or
    items, or the ``otelTraceID`` / ``otelSpanID`` attributes that
    OpenTelemetry's logging instrumentation sets (an all-zero id means no
    span and is left out).
the ``header_fields``
    Each of these ``extra`` attributes (event dict items) that the record has.

Options (set by the handler or processor): ``fields``, the names of the
header fields; ``standard``, False to leave out all but those. There is no
built-in topic router (records go to the configured topic) and no built-in
dead-letter function (failures are counted in ``metrics()``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.hooks.specs import HeadersFunction, KeyFunction, Kind, hookimpl
from kafka_sink.serialization import safe_str

__all__ = ["kafka_sink_record_headers", "kafka_sink_record_key", "text_bytes"]

Header = tuple[str, bytes | None]


@hookimpl
def kafka_sink_record_key(kind: Kind, name: str, options: Mapping[str, Any]) -> KeyFunction | None:
    """``"attribute"``: the key is ``options["attribute"]`` of the record."""
    if name != "attribute" or kind not in ("log", "event"):
        return None
    attribute = options.get("attribute")
    if not isinstance(attribute, str) or not attribute:
        raise InvalidArgumentError("key", f"must name an attribute, got {attribute!r}")
    for option in options:
        if option != "attribute":
            raise InvalidArgumentError(
                f"key_options.{option}", "is not an option of the 'attribute' key"
            )
    if kind == "log":
        return _AttributeKey(attribute)
    return _ItemKey(attribute)


class _AttributeKey:
    __slots__ = ("_attribute",)

    def __init__(self, attribute: str) -> None:
        self._attribute = attribute

    def __call__(self, record: Any) -> bytes | None:
        return text_bytes(getattr(record, self._attribute, None))


class _ItemKey:
    __slots__ = ("_item",)

    def __init__(self, item: str) -> None:
        self._item = item

    def __call__(self, event: Any) -> bytes | None:
        return text_bytes(event.get(self._item))


def text_bytes(value: object) -> bytes | None:
    """A key or header value as bytes: bytes as they are, anything else as UTF-8 text."""
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    # A broken __str__ must not lose the record: safe_str falls back to repr().
    return safe_str(value).encode("utf-8", "backslashreplace")


@hookimpl
def kafka_sink_record_headers(kind: Kind, options: Mapping[str, Any]) -> HeadersFunction | None:
    """The standard headers and the chosen ``extra`` fields (see the module docstring)."""
    if kind not in ("log", "event"):
        return None
    fields = options.get("fields", ())
    if isinstance(fields, (str, bytes)) or not isinstance(fields, Sequence):
        raise InvalidArgumentError("header_fields", f"must be a list of names, got {fields!r}")
    for field in fields:
        if not isinstance(field, str) or not field:
            raise InvalidArgumentError("header_fields", f"must hold names, got {field!r}")
    standard = options.get("standard", True)
    if not standard and not fields:
        return None
    host = text_bytes(socket.gethostname()) if standard else None
    if kind == "log":
        return _LogHeaders(tuple(fields), host)
    return _EventHeaders(tuple(fields), host)


# Level and logger names repeat: encode each once (bounded, in case names are
# made up per record).
_encoded: dict[str, bytes] = {}
_ENCODED_MAX = 4096


def _name_bytes(name: str) -> bytes:
    data = _encoded.get(name)
    if data is None:
        data = name.encode("utf-8", "backslashreplace")
        if len(_encoded) < _ENCODED_MAX:
            _encoded[name] = data
    return data


def _span_id(value: object) -> bytes | None:
    """An id to write, or None when absent (OpenTelemetry writes "0" for no span)."""
    if value is None or (type(value) is int and value == 0):
        return None
    if isinstance(value, str) and not value.strip("0"):  # "", "0", "0000..."
        return None
    return text_bytes(value)


# Where a log record keeps its ids: given with extra=, or set by OpenTelemetry.
_LOG_TRACE_NAMES = ("trace_id", "otelTraceID")
_LOG_SPAN_NAMES = ("span_id", "otelSpanID")


class _LogHeaders:
    __slots__ = ("_fields", "_host")

    def __init__(self, fields: tuple[str, ...], host: bytes | None) -> None:
        self._fields = fields
        self._host = host

    def __call__(self, record: Any) -> list[Header]:
        headers: list[Header] = []
        if self._host is not None:
            headers.append(("level", _name_bytes(record.levelname)))
            headers.append(("logger", _name_bytes(record.name)))
            headers.append(("host", self._host))
            _add_ids(headers, record.__dict__.get, _LOG_TRACE_NAMES, _LOG_SPAN_NAMES)
        _add_fields(headers, self._fields, record.__dict__.get)
        return headers


class _EventHeaders:
    __slots__ = ("_fields", "_host")

    def __init__(self, fields: tuple[str, ...], host: bytes | None) -> None:
        self._fields = fields
        self._host = host

    def __call__(self, event: Any) -> list[Header]:
        headers: list[Header] = []
        if self._host is not None:
            get = event.get
            for name in ("level", "logger"):
                value = get(name)
                if value is not None:
                    headers.append(
                        (name, _name_bytes(value) if isinstance(value, str) else text_bytes(value))
                    )
            headers.append(("host", self._host))
            _add_ids(headers, get, ("trace_id",), ("span_id",))
        _add_fields(headers, self._fields, event.get)
        return headers


def _add_ids(
    headers: list[Header],
    get: Callable[[str], Any],
    trace_names: tuple[str, ...],
    span_names: tuple[str, ...],
) -> None:
    for header, names in (("trace_id", trace_names), ("span_id", span_names)):
        for name in names:
            value = _span_id(get(name))
            if value is not None:
                headers.append((header, value))
                break


def _add_fields(headers: list[Header], fields: tuple[str, ...], get: Callable[[str], Any]) -> None:
    for name in fields:
        value = get(name)
        if value is not None:
            headers.append((name, text_bytes(value)))
