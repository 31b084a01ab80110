"""The Collector's key for "partition by resource attributes": a 16-byte hash of the attributes.

The Collector's Kafka exporter keys each message of a resource with
``pdatautil.MapHash`` of the resource's attributes: the attributes, sorted
by key, are written into one byte string (a tag byte before each key and
each value, values little-endian where they are numbers), and the key is
the XXH64 hash of that string followed by the XXH64 hash of the same string
with one more byte, both little-endian. The same bytes here mean that a
resource's telemetry gets the key the Collector would give it, whoever
writes it.

XXH64 is written out in Python (a few dozen lines), so the plugin needs no
compiled hashing package; resource attributes are short and each is hashed
once per export.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["resource_attributes_key", "xxh64"]

_MASK = 0xFFFF_FFFF_FFFF_FFFF
_P1 = 0x9E37_79B1_85EB_CA87
_P2 = 0xC2B2_AE3D_27D4_EB4F
_P3 = 0x1656_67B1_9E37_79F9
_P4 = 0x85EB_CA77_C2B2_AE63
_P5 = 0x27D4_EB2F_1656_67C5

_STRIPE = struct.Struct("<4Q")
_LANE = struct.Struct("<Q")
_HALF_LANE = struct.Struct("<I")


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _MASK
    return (_rotl(acc, 31) * _P1) & _MASK


def _merge(acc: int, value: int) -> int:
    acc ^= _round(0, value)
    return (acc * _P1 + _P4) & _MASK


def xxh64(data: bytes, seed: int = 0) -> int:
    """The XXH64 hash of ``data``: an unsigned 64-bit integer, as the reference computes it."""
    length = len(data)
    offset = 0
    if length >= 32:
        v1 = (seed + _P1 + _P2) & _MASK
        v2 = (seed + _P2) & _MASK
        v3 = seed & _MASK
        v4 = (seed - _P1) & _MASK
        while offset + 32 <= length:
            a, b, c, d = _STRIPE.unpack_from(data, offset)
            v1 = _round(v1, a)
            v2 = _round(v2, b)
            v3 = _round(v3, c)
            v4 = _round(v4, d)
            offset += 32
        acc = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _MASK
        for v in (v1, v2, v3, v4):
            acc = _merge(acc, v)
    else:
        acc = (seed + _P5) & _MASK
    acc = (acc + length) & _MASK
    while offset + 8 <= length:
        (lane,) = _LANE.unpack_from(data, offset)
        acc ^= _round(0, lane)
        acc = (_rotl(acc, 27) * _P1 + _P4) & _MASK
        offset += 8
    if offset + 4 <= length:
        (half,) = _HALF_LANE.unpack_from(data, offset)
        acc ^= (half * _P1) & _MASK
        acc = (_rotl(acc, 23) * _P2 + _P3) & _MASK
        offset += 4
    while offset < length:
        acc ^= (data[offset] * _P5) & _MASK
        acc = (_rotl(acc, 11) * _P1) & _MASK
        offset += 1
    acc ^= acc >> 33
    acc = (acc * _P2) & _MASK
    acc ^= acc >> 29
    acc = (acc * _P3) & _MASK
    acc ^= acc >> 32
    return acc


# The tag bytes of pdatautil's hash writer, one before each key and value.
_EXTRA = b"\xf3"
_KEY = b"\xf4"
_EMPTY = b"\xf5"
_BYTES = b"\xf6"
_STRING = b"\xf7"
_TRUE = b"\xf8"
_FALSE = b"\xf9"
_INT = b"\xfa"
_DOUBLE = b"\xfb"
_MAP = b"\xfc"
_MAP_END = b"\xfd"
_LIST = b"\xfe"
_LIST_END = b"\xff"
_INT64 = struct.Struct("<q")
_FLOAT64 = struct.Struct("<d")


def _utf8(text: str) -> bytes:
    # Go strings are bytes; text that is not valid Unicode keeps its code points.
    return text.encode("utf-8", "surrogatepass")


def _write_map(out: bytearray, pairs: Sequence[KeyValue]) -> None:
    first: dict[str, AnyValue] = {}
    for pair in pairs:
        # A map that holds a key twice answers lookups with the first value.
        first.setdefault(pair.key, pair.value)
    # Every key is written, a repeated one as often as it occurs, in byte order.
    for key in sorted((pair.key for pair in pairs), key=_utf8):
        out += _KEY
        out += _utf8(key)
        _write_value(out, first[key])


def _write_value(out: bytearray, value: AnyValue) -> None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        out += _STRING
        out += _utf8(value.string_value)
    elif kind == "bool_value":
        out += _TRUE if value.bool_value else _FALSE
    elif kind == "int_value":
        out += _INT
        out += _INT64.pack(value.int_value)
    elif kind == "double_value":
        out += _DOUBLE
        out += _FLOAT64.pack(value.double_value)
    elif kind == "kvlist_value":
        out += _MAP
        _write_map(out, value.kvlist_value.values)
        out += _MAP_END
    elif kind == "array_value":
        out += _LIST
        for item in value.array_value.values:
            _write_value(out, item)
        out += _LIST_END
    elif kind == "bytes_value":
        out += _BYTES
        out += value.bytes_value
    else:
        out += _EMPTY


def resource_attributes_key(attributes: Sequence[KeyValue]) -> bytes:
    """The 16-byte message key the Collector gives the telemetry of a resource with ``attributes``.

    No attributes give 16 zero bytes, as in the Collector.
    """
    if not attributes:
        return bytes(16)
    written = bytearray()
    _write_map(written, attributes)
    first = xxh64(bytes(written))
    written += _EXTRA
    return _LANE.pack(first) + _LANE.pack(xxh64(bytes(written)))
