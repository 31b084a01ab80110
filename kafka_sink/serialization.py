"""Helpers for serializers: any Python value as JSON, never raising, always valid UTF-8.

A serializer runs on the thread that logs, so it must not raise for odd
input, and whatever reads the topic must be able to decode what it wrote.
The built-in ``"json"`` serializer is made of these helpers, and so are the
``kafka-sink-ecs`` and ``kafka-sink-otlp`` plugins; a plugin of your own can
use them too.

Values (:func:`jsonable`, :func:`to_json_bytes`):

============================  ====================================================
``None``, bool, int, str      kept
float                         kept; NaN and infinities, which JSON cannot hold,
                              as text (``"nan"``, ``"inf"``, ``"-inf"``)
bytes-like                    text: UTF-8, each undecodable byte as ``\\xNN``
date, time, datetime          ISO 8601 text
UUID, Decimal, path           its ``str``
enum member                   its value, converted
exception                     ``"Type: message"`` (``module.Type`` outside builtins)
mapping                       an object; keys as text (``1`` as ``"1"``, bytes decoded)
list, tuple, set, frozenset   an array
anything else                 its ``repr``, or ``"<unrepresentable Type object>"``
                              when that raises
============================  ====================================================

A container inside itself is written as ``"<circular reference to list>"``,
and :func:`jsonable` writes containers nested deeper than :data:`MAX_DEPTH`
levels as their ``repr`` (:func:`to_json_bytes` turns to it only for a value
the JSON encoder refuses; one it takes is written whole, however deep).

Text that is not valid Unicode: a string may hold lone surrogates (a
non-UTF-8 file name decoded by :func:`os.fsdecode` does, through the
``surrogateescape`` error handler), which UTF-8 cannot encode, and which a
JSON ``\\udcXX`` escape would hand to strict decoders that refuse it. So
:func:`to_json_bytes` writes each one as text: an escaped byte as ``\\xNN``
(as ``bytes.decode("utf-8", "backslashreplace")`` shows it), any other as
``\\uNNNN``, with the backslash escaped in the JSON. The name ``caf\\udce9``
reads back as the seven characters ``caf\\xe9``, and the bytes are always
valid UTF-8 JSON.

The other helpers are what log serializers share: the attributes every
:class:`logging.LogRecord` has (the others are ``extra`` fields), its message
without raising, exceptions, timestamps, trace ids, and the checking of
``serializer_options``.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import logging
import math
import pathlib
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, MutableMapping
from types import TracebackType
from typing import Any, Literal, NoReturn

from kafka_sink._accel import speedups as _speedups
from kafka_sink.errors import InvalidArgumentError

__all__ = [
    "LOG_RECORD_ATTRIBUTES",
    "MAX_DEPTH",
    "ExcInfo",
    "check_option_names",
    "exc_info_of",
    "exception_fields",
    "find_hex_id",
    "hex_id",
    "invalid_option",
    "iso_timestamp",
    "jsonable",
    "plain_data",
    "pop_exc_info",
    "qualified_name",
    "record_extras",
    "record_message",
    "safe_repr",
    "safe_str",
    "seconds_to_ns",
    "timestamp_ns",
    "to_json_bytes",
]

#: Containers nested deeper than this are written as their ``repr``.
MAX_DEPTH = 16

#: The attributes every :class:`logging.LogRecord` has, and those
#: :meth:`logging.Formatter.format` adds: any other attribute of a record came
#: from ``extra=`` (or a filter). Read from a real record, so that those a
#: later Python adds (``taskName`` in 3.12) are never taken for extra fields.
LOG_RECORD_ATTRIBUTES: frozenset[str] = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

# Values whose str() is their value; repr() would wrap it in the class name.
_STR_TYPES = (uuid.UUID, decimal.Decimal, pathlib.PurePath)
_SURROGATE = re.compile("[\ud800-\udfff]")
_HEX = re.compile("[0-9a-f]+")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_OPTIONS = "serializer_options"


# ---------------------------------------------------------------------------
# Values as JSON
# ---------------------------------------------------------------------------


def safe_repr(value: object) -> str:
    """``repr(value)``, or ``"<unrepresentable Type object>"`` if that raises."""
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__} object>"


def safe_str(value: object) -> str:
    """``str(value)``, falling back to :func:`safe_repr` if that raises."""
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class; builtins by their bare name (``ValueError``)."""
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    if not module or module == "builtins":
        return str(name)
    return f"{module}.{name}"


def jsonable(value: object) -> Any:
    """``value`` as JSON data: dicts with text keys, lists, text, ints, finite floats, bools, None.

    See the module docstring for how each type is written. Never raises.

    Example::

        >>> jsonable({"on": datetime.date(2024, 5, 1), "raw": b"\\xff", 7: {(1, 2)}})
        {'on': '2024-05-01', 'raw': '\\\\xff', '7': [[1, 2]]}
    """
    return _plain(value, 0, set(), False)


def plain_data(value: object) -> Any:
    """Like :func:`jsonable`, but bytes stay ``bytes`` and NaN and infinities stay floats.

    For formats that can hold both (protobuf's JSON mapping writes bytes as
    base64 and NaN as ``"NaN"``): convert with this, then map each plain
    type (None, bool, int, float, str, bytes, list, dict) to the format's.
    """
    return _plain(value, 0, set(), True)


def _plain(value: object, depth: int, active: set[int], raw: bool) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if raw or math.isfinite(value) else repr(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if depth >= MAX_DEPTH:
            return safe_repr(value)
        marker = id(value)
        if marker in active:
            return f"<circular reference to {type(value).__name__}>"
        active.add(marker)
        try:
            # Copied first (list()): another thread may change the container.
            if isinstance(value, Mapping):
                return {
                    _key_text(key): _plain(item, depth + 1, active, raw)
                    for key, item in list(value.items())
                }
            return [_plain(item, depth + 1, active, raw) for item in list(value)]
        except Exception:  # e.g. a mapping whose items() raises
            return safe_repr(value)
        finally:
            active.discard(marker)
    if isinstance(value, enum.Enum):
        inner = value.value
        if inner is value or depth >= MAX_DEPTH:
            return safe_repr(value)
        return _plain(inner, depth + 1, active, raw)
    if raw and isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value)
        except Exception:  # e.g. a released memoryview
            return safe_repr(value)
    return _text(value)


def _text(value: object) -> str:
    """A value JSON has no type for (not a container, not an enum), as text."""
    try:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).decode("utf-8", "backslashreplace")
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()
        if isinstance(value, _STR_TYPES):
            return str(value)
        if isinstance(value, BaseException):
            return f"{qualified_name(type(value))}: {safe_str(value)}"
        return repr(value)
    except Exception:  # e.g. a datetime subclass whose isoformat() raises
        return safe_repr(value)


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, int | float):
        # As the JSON encoder writes such keys itself (True as "true").
        return json.dumps(key)
    if isinstance(key, bytes | bytearray | memoryview):
        return _text(key)
    return safe_str(key)


def _default(value: object) -> object:
    """What the encoder writes for a value it has no type for (encoded in turn)."""
    if isinstance(value, Mapping):
        return dict(value.items())
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, enum.Enum):
        inner = value.value
        return safe_repr(value) if inner is value else inner
    return _text(value)


# One encoder for every call: json.dumps() with arguments builds a new one
# each time. encode() keeps no state between calls, so threads may share it.
_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default
).encode


def _load_orjson() -> Callable[[Any], bytes] | None:
    """orjson's dumps, where orjson is installed and the compiled path runs."""
    if _speedups is None:
        return None
    try:
        import orjson  # noqa: PLC0415 - optional (kafka_sink[orjson])
    except ImportError:
        return None
    dumps: Callable[[Any], bytes] = orjson.dumps
    return dumps


# orjson writes a record about ten times faster than the stdlib's encoder, and
# byte for byte alike for the values plain_json() accepts (no float: orjson
# writes 1e16 where json writes 1e+16; nothing through a default hook).
_orjson_dumps = _load_orjson()
_plain_json = None if _speedups is None else _speedups.plain_json


def to_json_bytes(value: object) -> bytes:
    """``value`` as compact JSON in UTF-8; never raises, and the bytes are always valid UTF-8.

    The JSON encoder writes ``value`` as it is when it can (the common case,
    in one pass); a value it refuses (a cycle, NaN, a key such as a tuple,
    nesting deeper than it can go) is converted with :func:`jsonable` first.

    Example::

        >>> to_json_bytes({"n": 1, "raw": b"\\xff", "nan": float("nan")})
        b'{"n":1,"raw":"\\\\xff","nan":"nan"}'
    """
    if _orjson_dumps is not None and _plain_json is not None and _plain_json(value):
        try:
            # Copied to its size: orjson's bytes keep the capacity they were
            # written into (8 KiB for a 1 KiB record), and a record may wait
            # in the buffer, where its length is what buffer_memory counts.
            return bytes(memoryview(_orjson_dumps(value)))
        except Exception:  # a lone surrogate: the stdlib path escapes it
            pass
    return _stdlib_json_bytes(value)


def _stdlib_json_bytes(value: object) -> bytes:
    """:func:`to_json_bytes` through the stdlib's encoder: the reference."""
    try:
        text = _encode(value)
    except Exception:
        text = _encode(jsonable(value))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates occur only inside JSON strings (the encoder escapes
        # everything else), so text with an escaped backslash keeps it valid.
        return _SURROGATE.sub(_escape_surrogate, text).encode("utf-8")


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        # A byte that was not UTF-8, smuggled in by the surrogateescape
        # error handler: show the byte, as bytes.decode(backslashreplace) does.
        return f"\\\\x{code - 0xDC00:02x}"
    return f"\\\\u{code:04x}"


# ---------------------------------------------------------------------------
# Log records and exceptions
# ---------------------------------------------------------------------------


def record_message(record: logging.LogRecord) -> str:
    """``record.getMessage()``; when ``msg % args`` fails, both of them, unformatted.

    For serializers that must write every record. (The built-in ones let
    the error reach the handler, which reports it as the standard handlers do.)
    """
    try:
        return record.getMessage()
    except Exception:
        return f"{safe_str(record.msg)} % {safe_repr(record.args)}"


def record_extras(
    record: logging.LogRecord, skip: Container[str] = ()
) -> Iterator[tuple[str, Any]]:
    """The fields an application added to ``record`` (with ``extra=``, or a filter), in order.

    Those of :data:`LOG_RECORD_ATTRIBUTES`, those named in ``skip`` and None
    values are left out.
    """
    return (
        (key, value)
        for key, value in vars(record).items()
        if key not in LOG_RECORD_ATTRIBUTES and key not in skip and value is not None
    )


def exc_info_of(value: object) -> ExcInfo | None:
    """The ``(type, value, traceback)`` of an exception or an ``exc_info`` tuple, or None."""
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if (
        isinstance(value, tuple)
        and len(value) == 3
        and isinstance(value[1], BaseException)
        and isinstance(value[0], type)
    ):
        return value[0], value[1], value[2]
    return None


def pop_exc_info(event: MutableMapping[str, Any]) -> ExcInfo | None:
    """Take a structlog event dict's ``exc_info``: the exception it names, or None.

    ``True`` names the exception being handled on this thread (structlog's
    convention; a serializer runs on the logging thread). The item is removed
    when it names an exception or none (None, False, nothing being handled);
    any other value is left, for the serializer to write as an ordinary field.
    """
    exc_info = event.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = exc_info_of(exc_info)
    if exc is not None or exc_info in (None, False, (None, None, None)):
        event.pop("exc_info", None)
    return exc


def exception_fields(
    exc: ExcInfo, formatter: logging.Formatter | None = None, *, limit: int | None = None
) -> tuple[str, str | None, str | None]:
    """``(type, message, stack trace)`` of an exception; never raises.

    The type is module-qualified (:func:`qualified_name`) and the message
    None when empty. The stack trace is what ``formatter.formatException``
    makes of it or else what :func:`traceback.print_exception` prints
    (chained causes included), without the final newline; ``limit`` caps the
    frames per traceback (0: no stack trace, None).
    """
    etype, evalue, etb = exc
    name, message = qualified_name(etype), safe_str(evalue) or None
    if limit == 0 and formatter is None:
        return name, message, None
    try:
        if formatter is not None:
            stack = formatter.formatException(exc)
        else:
            stack = "".join(traceback.format_exception(etype, evalue, etb, limit=limit))
    except Exception:  # a formatter's bug must not lose the record
        stack = f"{name}: {message or ''}"
    return name, message, stack.rstrip("\n") or None


# ---------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------

# The date and time of day change once a second, the fraction every record:
# keep the last second's text (a tuple swapped whole: safe to share).
_last_second: tuple[int, str] = (-1, "")


def iso_timestamp(seconds: float, digits: Literal[3, 6] = 6) -> str:
    """Seconds since the epoch as ISO 8601 UTC: ``2024-05-01T12:00:00.123456Z``.

    ``digits=3`` writes milliseconds (``2024-05-01T12:00:00.123Z``). The time
    is rounded to the microsecond first: a float near 1.7e9 holds about a
    quarter of a microsecond, and 1700000000.123 is stored as
    1700000000.1229999065..., which must still give ``.123``.
    """
    global _last_second  # noqa: PLW0603 - a one-entry cache replaced whole
    whole, micros = divmod(round(seconds * 1_000_000), 1_000_000)
    cached = _last_second
    if cached[0] != whole:
        cached = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
        _last_second = cached
    if digits == 3:
        return f"{cached[1]}.{micros // 1000:03d}Z"
    return f"{cached[1]}.{micros:06d}Z"


def seconds_to_ns(seconds: float) -> int:
    """Float seconds since the epoch as integer nanoseconds, to the microsecond.

    A float near 1.7e9 holds about a quarter of a microsecond: finer digits
    would be noise (1700000000.123 is stored as 1700000000.1229999065...).
    """
    return round(seconds * 1_000_000) * 1000


def timestamp_ns(value: object) -> int | None:
    """A structlog ``timestamp`` (epoch seconds, datetime or ISO 8601 text) as nanoseconds.

    Naive datetimes and text without an offset are local time (what
    ``structlog.processors.TimeStamper(utc=False)`` writes). Returns None for
    anything else.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return seconds_to_ns(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"  # fromisoformat() reads "Z" only from 3.11 on
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, datetime.datetime):
        try:
            delta = (value if value.tzinfo else value.astimezone()) - _EPOCH
        except (OverflowError, OSError, ValueError):
            return None
        # Whole microseconds, exactly: no float on the way.
        return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000
    return None


# ---------------------------------------------------------------------------
# Trace context
# ---------------------------------------------------------------------------


def hex_id(value: object, size: int) -> str | None:
    """A trace id (``size`` 16) or span id (``size`` 8) as lowercase hex, or None.

    Accepts an int (as OpenTelemetry's span context holds it), ``size`` bytes,
    or hex text; ids that are all zero are invalid, as in W3C trace context.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return format(value, f"0{2 * size}x") if 0 < value < 1 << (8 * size) else None
    if isinstance(value, bytes | bytearray):
        return value.hex() if len(value) == size and any(value) else None
    if isinstance(value, str):
        text = value.lower()
        if len(text) == 2 * size and _HEX.fullmatch(text) and text.strip("0"):
            return text
    return None


def find_hex_id(
    attributes: Mapping[str, Any], keys: Iterable[str], size: int
) -> tuple[str, str | None]:
    """The first of ``keys`` holding a valid id (:func:`hex_id`): ``(key, hex)``, or ``("", None)``.

    Example::

        key, trace_id = find_hex_id(vars(record), ("trace_id", "otelTraceID"), 16)
    """
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            hex_value = hex_id(value, size)
            if hex_value is not None:
                return key, hex_value
    return "", None


# ---------------------------------------------------------------------------
# serializer_options
# ---------------------------------------------------------------------------


def invalid_option(name: str, problem: str) -> NoReturn:
    """Raise :class:`~kafka_sink.InvalidArgumentError` for ``serializer_options.<name>``."""
    raise InvalidArgumentError(f"{_OPTIONS}.{name}", problem)


def check_option_names(options: object, known: Iterable[str], serializer: str) -> dict[str, Any]:
    """``options`` as a dict, if it is a mapping of ``known`` names; else raise, naming it.

    Example, for a frozen dataclass of options::

        @classmethod
        def from_mapping(cls, options: Mapping[str, Any]) -> MyOptions:
            return cls(**check_option_names(options, [f.name for f in fields(cls)], "mine"))
    """
    if not isinstance(options, Mapping):
        raise InvalidArgumentError(_OPTIONS, f"must be a mapping, got {type(options).__name__}")
    names = tuple(known)
    for key in options:
        if key not in names:
            invalid_option(
                key if isinstance(key, str) else repr(key),
                f"is not an option of the {serializer!r} serializer (options: {', '.join(names)})",
            )
    return dict(options)
