"""Python values as OTLP/JSON ``AnyValue`` objects.

The OTLP/JSON encoding (opentelemetry-proto ``docs/specification.md``, "JSON
Protobuf Encoding") is protobuf's JSON mapping with lowerCamelCase names,
64-bit integers as decimal strings, enums as integers, and trace and span
ids as hex rather than base64. An ``AnyValue`` holds exactly one of
``stringValue``, ``boolValue``, ``intValue``, ``doubleValue``,
``arrayValue``, ``kvlistValue`` or ``bytesValue``; :func:`any_value` picks
it from the Python type:

==========================  ===================================================
``bool``                    ``boolValue``
``int``                     ``intValue`` (a string); outside int64, ``stringValue``
``float``                   ``doubleValue``; NaN and infinities as protobuf
                            writes them (``"NaN"``, ``"Infinity"``, ``"-Infinity"``)
``str``                     ``stringValue``
bytes-like                  ``bytesValue`` (base64, the bytes exactly)
mapping                     ``kvlistValue`` (keys as text)
list, tuple, set            ``arrayValue``
``None``                    ``{}`` (an empty value)
date, time                  ``stringValue``, ISO-8601
UUID, Decimal, path         ``stringValue``, its ``str``
enum member                 its value, converted
exception                   ``stringValue``, ``"Type: message"``
anything else               ``stringValue``, its ``repr``
==========================  ===================================================

Anything but a scalar is first converted with
:func:`kafka_sink.serialization.plain_data`, so containers are cut at
:data:`~kafka_sink.serialization.MAX_DEPTH` levels and a container inside
itself is written as text: nothing an application logs raises.
:func:`kafka_sink.serialization.to_json_bytes` then writes the document as
valid UTF-8, lone surrogates included.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from kafka_sink.serialization import plain_data

__all__ = ["any_value", "key_value"]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def any_value(value: object) -> dict[str, Any]:
    """``value`` as an OTLP/JSON ``AnyValue`` object."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return _any_value(value)  # already plain: the common case, in one step
    return _any_value(plain_data(value))


def key_value(key: str, value: dict[str, Any]) -> dict[str, Any]:
    """An OTLP/JSON ``KeyValue`` of an already converted ``AnyValue``."""
    return {"key": key, "value": value}


def _any_value(value: Any) -> dict[str, Any]:
    """The ``AnyValue`` of plain data (what :func:`plain_data` returns)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        number = int(value)  # an IntEnum member's str() is its name on older Pythons
        if _INT64_MIN <= number <= _INT64_MAX:
            return {"intValue": str(number)}
        return {"stringValue": str(number)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": float(value)}
        return {
            "doubleValue": "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
        }
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        pairs = [key_value(key, _any_value(item)) for key, item in value.items()]
        # protobuf's JSON writer leaves out an empty repeated field.
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    if isinstance(value, list):
        items = [_any_value(item) for item in value]
        return {"arrayValue": {"values": items} if items else {}}
    return {"stringValue": value}
