"""How ``kafka-sink tail`` shows a record: value formats and the text and JSON lines.

A *value format* (``tail --value-format``) is a list of decoders, each
turning a record's value into a JSON-compatible structure or declining it;
the first that accepts wins and raw bytes are the fallback.
:func:`register_value_format` adds one (``auto``, the default, tries every
decoder registered with ``auto=True``). :class:`RecordFormatter` turns a
record into one line: tab-separated text, or a JSON object.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.metrics.encodings import ENCODING_HEADER, as_data, describe
from kafka_sink.net.fetcher import FetchedRecord
from kafka_sink.protocol.records import TimestampType

# -- value formats ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decoded:
    """A value a decoder understood, as a JSON-compatible structure.

    ``text``, when given, is how the text format shows it (else ``data`` as JSON).
    """

    data: Any
    text: str | None = None


#: ``decoder(record)``: a :class:`Decoded` value, or None to leave the record to others.
ValueDecoder = Callable[[FetchedRecord], Decoded | None]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json_value(record: FetchedRecord) -> Decoded | None:
    """The value parsed as JSON, or None when it is not JSON."""
    if record.value is None:
        return None
    try:
        return Decoded(json.loads(record.value, parse_constant=_reject_constant))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
        return None


#: The default value format: every decoder registered with ``auto=True``.
AUTO = "auto"
# name -> decoders tried in order; "auto" is resolved from _AUTO_DECODERS at use,
# so that a decoder registered with auto=True later still takes part.
_VALUE_FORMATS: dict[str, tuple[ValueDecoder, ...]] = {
    AUTO: (),
    "raw": (),
    "json": (decode_json_value,),
}
_AUTO_DECODERS: list[ValueDecoder] = []


def decode_metrics_value(record: FetchedRecord) -> Decoded | None:
    """A metrics exporter's record (it carries the ``metrics-encoding`` header), or None."""
    encoding = next((v for name, v in record.headers if name == ENCODING_HEADER), None)
    if encoding is None or record.value is None:
        return None
    name = encoding.decode("utf-8", "replace")
    data = as_data(record.value, name)
    if data is None:
        return None
    text = describe(record.value, name)
    return Decoded(data, None if text is None else text.replace("\n", " | "))


def register_value_format(name: str, decoder: ValueDecoder, *, auto: bool = False) -> None:
    """Make ``tail --value-format NAME`` show values through ``decoder``.

    With ``auto`` the default format (``auto``) tries ``decoder`` too, after
    those registered before it. Register before :func:`~kafka_sink.cli.build_parser` runs
    (at import time of the module that defines the decoder)::

        def decode_gauge(record):
            if dict(record.headers).get("content-type") != b"application/x-gauge":
                return None
            return Decoded({"gauge": struct.unpack(">d", record.value)[0]})

        register_value_format("gauge", decode_gauge, auto=True)
    """
    if not isinstance(name, str) or not name.isidentifier() or name == AUTO:
        raise InvalidArgumentError("name", f"{name!r} cannot name a value format")
    if not callable(decoder):
        raise InvalidArgumentError("decoder", "must be callable")
    _VALUE_FORMATS[name] = (decoder,)
    if auto:
        _AUTO_DECODERS.append(decoder)


def _decoders(value_format: str) -> tuple[ValueDecoder, ...]:
    if value_format == AUTO:
        return tuple(_AUTO_DECODERS)
    try:
        return _VALUE_FORMATS[value_format]
    except KeyError:
        known = ", ".join(sorted(_VALUE_FORMATS))
        raise InvalidArgumentError(
            "--value-format", f"unknown format {value_format!r} (known: {known})"
        ) from None


def value_format_names() -> list[str]:
    """The names ``tail --value-format`` accepts, as registered when it is called."""
    return sorted(_VALUE_FORMATS)


# The metrics exporter's encodings are recognised by their header, so a log
# line that happens to look like Influx line protocol is left alone.
register_value_format("metrics", decode_metrics_value, auto=True)


# -- rendering --------------------------------------------------------------------------

# C0 controls and DEL would break the one-line-per-record, tab-separated layout.
_ESCAPES: dict[int, str] = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}
_ESCAPES.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def render_text(data: bytes | str | None) -> str:
    """Bytes as one line of text: UTF-8 decoded, invalid bytes and controls escaped.

    >>> render_text(b'caf\\xc3\\xa9\\tbar\\xff')
    'café\\\\tbar\\\\xff'
    """
    if data is None:
        return ""
    text = data if isinstance(data, str) else data.decode("utf-8", "backslashreplace")
    return text.translate(_ESCAPES)


def format_timestamp(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC; "" for -1 (no timestamp).

    >>> format_timestamp(1_700_000_000_123)
    '2023-11-14T22:13:20.123Z'
    """
    if ms < 0:
        return ""
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:  # beyond year 9999: show the number
        return str(ms)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _json_bytes(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


_TIMESTAMP_TYPES = {
    TimestampType.CREATE_TIME: "CreateTime",
    TimestampType.LOG_APPEND_TIME: "LogAppendTime",
}


class RecordFormatter:
    """Turns a fetched record into one line of output (without the newline).

    ``line_format`` is ``"text"`` (tab-separated columns) or ``"json"`` (one
    JSON object); ``value_format`` names the decoders tried on the value.
    """

    __slots__ = ("_decoders", "_json")

    def __init__(self, line_format: str = "text", value_format: str = AUTO) -> None:
        if line_format not in ("text", "json"):
            raise InvalidArgumentError("--format", f"must be text or json, got {line_format!r}")
        self._json = line_format == "json"
        self._decoders = _decoders(value_format)

    def _decode(self, record: FetchedRecord) -> Decoded | None:
        for decoder in self._decoders:
            try:
                decoded = decoder(record)
            except Exception:  # a broken decoder must not stop the listing: show raw bytes
                continue
            if decoded is not None:
                return decoded
        return None

    def __call__(self, record: FetchedRecord) -> str:
        decoded = self._decode(record)
        if self._json:
            return json.dumps(
                {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": format_timestamp(record.timestamp) or None,
                    "timestamp_ms": record.timestamp,
                    "timestamp_type": _TIMESTAMP_TYPES.get(record.timestamp_type),
                    "key": _json_bytes(record.key),
                    "headers": [[name, _json_bytes(value)] for name, value in record.headers],
                    "value": _json_bytes(record.value) if decoded is None else decoded.data,
                },
                ensure_ascii=False,
            )
        if decoded is None:
            value = render_text(record.value)
        else:
            text = decoded.text
            value = render_text(
                json.dumps(decoded.data, ensure_ascii=False) if text is None else text
            )
        headers = ",".join(
            render_text(name) if data is None else f"{render_text(name)}={render_text(data)}"
            for name, data in record.headers
        )
        return "\t".join(
            (
                str(record.partition),
                str(record.offset),
                format_timestamp(record.timestamp),
                render_text(record.key),
                headers,
                value,
            )
        )
