"""Kafka's primitive wire types: fixed-width integers, varints, strings, arrays.

The Kafka protocol guide ("Protocol Primitive Types") defines big-endian
fixed-width integers, zig-zag varints as in Protocol Buffers, int16-prefixed
strings and int32-prefixed bytes/arrays, and, for "flexible" message versions
(KIP-482), compact forms whose length is an unsigned varint of ``length + 1``
(0 meaning null) plus a tagged-field section at the end of every struct.

:class:`Reader` never trusts a length it reads: before it allocates anything it
checks the length against the bytes that are actually left, and every failure
is a :class:`~kafka_sink.errors.ProtocolError`. A hostile or corrupt response
therefore cannot make the client allocate more than the response's own size.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from kafka_sink.errors import ProtocolError

__all__ = [
    "Reader",
    "Writer",
    "decode_varint",
    "encode_uvarint",
    "encode_varint",
    "zigzag",
]

T = TypeVar("T")

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")

_NULL_UUID = uuid.UUID(int=0)


def zigzag(value: int) -> int:
    """Map a signed 64-bit integer to its zig-zag unsigned form."""
    return (value << 1) ^ (value >> 63)


def encode_uvarint(value: int) -> bytes:
    """Encode an unsigned integer as a base-128 varint."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_varint(value: int) -> bytes:
    """Encode a signed integer as a zig-zag varint (Kafka's varint and varlong)."""
    return encode_uvarint((value << 1) ^ (value >> 63))


def decode_varint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode a zig-zag varint at ``pos``; return ``(value, next_pos)``."""
    raw, pos = _decode_uvarint(data, pos)
    return (raw >> 1) ^ -(raw & 1), pos


def _decode_uvarint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise ProtocolError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("varint is longer than 10 bytes")


class Reader:
    """Reads primitive types from a buffer, checking every length against what is left."""

    __slots__ = ("_data", "_end", "pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self._data = memoryview(data)
        self._end = len(self._data)
        self.pos = pos

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return self._end - self.pos

    def _take(self, size: int) -> memoryview:
        pos = self.pos
        if size < 0 or pos + size > self._end:
            raise ProtocolError(f"need {size} bytes at offset {pos}, only {self._end - pos} left")
        self.pos = pos + size
        return self._data[pos : pos + size]

    def _unpack(self, fmt: struct.Struct) -> int:
        pos = self.pos
        if pos + fmt.size > self._end:
            raise ProtocolError(
                f"need {fmt.size} bytes at offset {pos}, only {self._end - pos} left"
            )
        self.pos = pos + fmt.size
        value: int = fmt.unpack_from(self._data, pos)[0]
        return value

    def int8(self) -> int:
        return self._unpack(_I8)

    def int16(self) -> int:
        return self._unpack(_I16)

    def uint16(self) -> int:
        return self._unpack(_U16)

    def int32(self) -> int:
        return self._unpack(_I32)

    def uint32(self) -> int:
        return self._unpack(_U32)

    def int64(self) -> int:
        return self._unpack(_I64)

    def float64(self) -> float:
        pos = self.pos
        if pos + 8 > self._end:
            raise ProtocolError(f"need 8 bytes at offset {pos}, only {self._end - pos} left")
        self.pos = pos + 8
        value: float = _F64.unpack_from(self._data, pos)[0]
        return value

    def boolean(self) -> bool:
        return self._unpack(_I8) != 0

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=bytes(self._take(16)))

    def uvarint(self) -> int:
        value, self.pos = _decode_uvarint(self._data, self.pos)
        return value

    def varint(self) -> int:
        value, self.pos = decode_varint(self._data, self.pos)
        return value

    def raw(self, size: int) -> bytes:
        """Read exactly ``size`` bytes."""
        return bytes(self._take(size))

    def view(self, size: int) -> memoryview:
        """Read exactly ``size`` bytes without copying."""
        return self._take(size)

    def rest(self) -> memoryview:
        """Everything not yet read, without copying."""
        return self._take(self._end - self.pos)

    # -- strings and bytes -------------------------------------------------

    def _length(self, flexible: bool, wide: bool) -> int:
        """Read a length prefix; -1 means null."""
        if flexible:
            return self.uvarint() - 1
        return self.int32() if wide else self.int16()

    def string(self, flexible: bool = False) -> str:
        value = self.nullable_string(flexible)
        if value is None:
            raise ProtocolError("null where a non-nullable string is required")
        return value

    def nullable_string(self, flexible: bool = False) -> str | None:
        size = self._length(flexible, wide=False)
        if size == -1:
            return None
        if size < -1:
            raise ProtocolError(f"negative string length {size}")
        try:
            return str(self._take(size), "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"string is not valid UTF-8: {exc}") from None

    def bytes_(self, flexible: bool = False) -> bytes:
        value = self.nullable_bytes(flexible)
        if value is None:
            raise ProtocolError("null where non-nullable bytes are required")
        return value

    def nullable_bytes(self, flexible: bool = False) -> bytes | None:
        size = self._length(flexible, wide=True)
        if size == -1:
            return None
        if size < -1:
            raise ProtocolError(f"negative bytes length {size}")
        return bytes(self._take(size))

    # -- arrays ------------------------------------------------------------

    def array_length(self, flexible: bool = False) -> int:
        """Read an array's element count (-1 for null), bounded by the bytes left.

        Every element takes at least one byte on the wire, so a count larger
        than what remains cannot be honest and is rejected before any list is
        built.
        """
        count = self._length(flexible, wide=True)
        if count < -1:
            raise ProtocolError(f"negative array length {count}")
        if count > self._end - self.pos:
            raise ProtocolError(
                f"array claims {count} elements but only {self._end - self.pos} bytes are left"
            )
        return count

    def array(self, read_item: Callable[[Reader], T], flexible: bool = False) -> list[T]:
        count = self.array_length(flexible)
        if count < 0:
            raise ProtocolError("null where a non-nullable array is required")
        return [read_item(self) for _ in range(count)]

    def nullable_array(
        self, read_item: Callable[[Reader], T], flexible: bool = False
    ) -> list[T] | None:
        count = self.array_length(flexible)
        if count < 0:
            return None
        return [read_item(self) for _ in range(count)]

    def tagged_fields(self) -> dict[int, bytes]:
        """Read a tagged-field section; unknown tags are kept as raw bytes."""
        count = self.uvarint()
        if count > self._end - self.pos:
            raise ProtocolError(f"{count} tagged fields claimed, {self.remaining} bytes left")
        fields: dict[int, bytes] = {}
        last = -1
        for _ in range(count):
            tag = self.uvarint()
            if tag <= last:
                raise ProtocolError("tagged fields out of order")
            last = tag
            fields[tag] = self.raw(self.uvarint())
        return fields


class Writer:
    """Accumulates primitive types into a ``bytearray``."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self.buffer)

    def int8(self, value: int) -> None:
        self.buffer += _I8.pack(value)

    def int16(self, value: int) -> None:
        self.buffer += _I16.pack(value)

    def uint16(self, value: int) -> None:
        self.buffer += _U16.pack(value)

    def int32(self, value: int) -> None:
        self.buffer += _I32.pack(value)

    def uint32(self, value: int) -> None:
        self.buffer += _U32.pack(value)

    def int64(self, value: int) -> None:
        self.buffer += _I64.pack(value)

    def float64(self, value: float) -> None:
        self.buffer += _F64.pack(value)

    def boolean(self, value: bool) -> None:
        self.buffer.append(1 if value else 0)

    def uuid(self, value: uuid.UUID | None) -> None:
        self.buffer += (value or _NULL_UUID).bytes

    def uvarint(self, value: int) -> None:
        self.buffer += encode_uvarint(value)

    def varint(self, value: int) -> None:
        self.buffer += encode_varint(value)

    def raw(self, data: bytes | bytearray | memoryview) -> None:
        self.buffer += data

    def _length(self, size: int, flexible: bool, wide: bool) -> None:
        if flexible:
            self.buffer += encode_uvarint(size + 1)
        elif wide:
            self.buffer += _I32.pack(size)
        else:
            self.buffer += _I16.pack(size)

    def string(self, value: str, flexible: bool = False) -> None:
        self.nullable_string(value, flexible)

    def nullable_string(self, value: str | None, flexible: bool = False) -> None:
        if value is None:
            self._length(-1, flexible, wide=False)
            return
        data = value.encode("utf-8")
        self._length(len(data), flexible, wide=False)
        self.buffer += data

    def bytes_(self, value: bytes | bytearray | memoryview, flexible: bool = False) -> None:
        self.nullable_bytes(value, flexible)

    def nullable_bytes(
        self, value: bytes | bytearray | memoryview | None, flexible: bool = False
    ) -> None:
        if value is None:
            self._length(-1, flexible, wide=True)
            return
        self._length(len(value), flexible, wide=True)
        self.buffer += value

    def array_length(self, count: int | None, flexible: bool = False) -> None:
        self._length(-1 if count is None else count, flexible, wide=True)

    def array(
        self,
        items: Sequence[T] | None,
        write_item: Callable[[Writer, T], None],
        flexible: bool = False,
    ) -> None:
        if items is None:
            self.array_length(None, flexible)
            return
        self.array_length(len(items), flexible)
        for item in items:
            write_item(self, item)

    def tagged_fields(self, fields: dict[int, bytes] | None = None) -> None:
        if not fields:
            self.buffer.append(0)
            return
        self.uvarint(len(fields))
        for tag in sorted(fields):
            self.uvarint(tag)
            self.uvarint(len(fields[tag]))
            self.buffer += fields[tag]
