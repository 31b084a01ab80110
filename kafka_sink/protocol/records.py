# Record Batch, magic 2 (Kafka protocol documentation, "Message Format" ->
# "Record Batch", "Record" and "Record Header"; introduced by KIP-98).
#
#   RecordBatch                            offset  size
#     baseOffset            int64               0     8
#     batchLength           int32               8     4   bytes after this field
#     partitionLeaderEpoch  int32              12     4
#     magic                 int8               16     1   2
#     crc                   uint32             17     4   CRC-32C of offset 21..end
#     attributes            int16              21     2   bits 0-2 codec, 3 timestamp
#                                                          type, 4 transactional, 5 control
#     lastOffsetDelta       int32              23     4
#     baseTimestamp         int64              27     8   first record's timestamp
#     maxTimestamp          int64              35     8
#     producerId            int64              43     8
#     producerEpoch         int16              51     2
#     baseSequence          int32              53     4
#     recordsCount          int32              57     4
#     records               ...                61         compressed as one blob when
#                                                          the codec is not none
#   Record
#     length                varint                  bytes after this field
#     attributes            int8                    unused, 0
#     timestampDelta        varlong                 from baseTimestamp, may be negative
#     offsetDelta           varint                  from baseOffset
#     keyLength             varint                  -1 for a null key
#     key                   bytes
#     valueLength           varint                  -1 for a null value
#     value                 bytes
#     headersCount          varint
#     headers               [headerKeyLength varint, headerKey utf-8,
#                            headerValueLength varint (-1 for null), headerValue]
#
# Varints are zig-zag encoded base-128 integers, as in Protocol Buffers.
#
# BatchBuilder is the producer's hot path: it turns each record into its final
# bytes as soon as it is appended (one bytes.join, small varints taken from a
# precomputed table) and keeps them in a list; build() joins and compresses
# that list once and only writes the 61-byte header per call.
"""Kafka record batches (magic 2): an incremental encoder and a defensive decoder.

:class:`BatchBuilder` encodes records as the producer accepts them;
:func:`encode_batch` encodes a whole batch at once; :func:`decode_batches`
decodes the ``records`` field of a Fetch response (or anything else holding
concatenated batches) and raises :class:`~kafka_sink.errors.ProtocolError` for
anything malformed.

Example::

    >>> builder = BatchBuilder(Compression.LZ4)
    >>> builder.append(1_700_000_000_000, b"key", b"value", [("trace", b"42")])
    True
    >>> wire = builder.build(producer_id=7, producer_epoch=0, base_sequence=0)
    >>> [batch] = decode_batches(wire)
    >>> batch.records[0].value, batch.records[0].headers
    (b'value', (('trace', b'42'),))
"""

from __future__ import annotations

import enum
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crc32c import crc32c as _crc32c

from kafka_sink._accel import speedups as _speedups
from kafka_sink.errors import InvalidArgumentError, ProtocolError
from kafka_sink.protocol.codecs import (
    Compression,
    check_level,
    compress,
    decompress,
    ensure_available,
)

__all__ = [
    "BATCH_HEADER_SIZE",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "BatchBuilder",
    "Header",
    "PureBatchBuilder",
    "Record",
    "RecordBatch",
    "TimestampType",
    "decode_batches",
    "encode_batch",
]

Header = tuple[str, bytes | None]
"""A record header: a UTF-8 key and a value that may be null."""

BATCH_HEADER_SIZE = 61
"""Bytes of a RecordBatch before its first record."""

DEFAULT_MAX_DECOMPRESSED_BYTES = 64 << 20
"""Default bound on what one :func:`decode_batches` call may decompress."""

_MAGIC = 2
_CODEC_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20

# baseOffset, batchLength, partitionLeaderEpoch, magic, crc
_PREFIX = struct.Struct(">qiibI")
# attributes .. recordsCount: everything the CRC covers before the records
_SUFFIX = struct.Struct(">hiqqqhii")
_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH_OVERHEAD = 12  # baseOffset + batchLength
_CRC_START = _PREFIX.size  # 21
# The smallest record: length, attributes, timestamp delta, offset delta, key
# length, value length and header count, one byte each.
_MIN_RECORD_SIZE = 7

_INT16_MIN, _INT16_MAX = -(1 << 15), (1 << 15) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class TimestampType(enum.IntEnum):
    """Bit 3 of the batch attributes: who set the records' timestamps."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded record; ``offset`` and ``timestamp`` (ms) are absolute."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """One decoded record batch with its header fields and records."""

    base_offset: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    compression: Compression
    timestamp_type: TimestampType
    is_transactional: bool
    is_control: bool
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records: tuple[Record, ...]


# -- varints -------------------------------------------------------------------


def _encode_varint(value: int) -> bytes:
    """Zig-zag varint of a signed 64-bit integer (Kafka's varint and varlong)."""
    raw = (value << 1) ^ (value >> 63)
    if raw < 0x4000:
        if raw < 0x80:
            return bytes((raw,))
        return bytes(((raw & 0x7F) | 0x80, raw >> 7))
    if raw < 0x200000:  # offset deltas past the table land here: spell them out
        return bytes(((raw & 0x7F) | 0x80, ((raw >> 7) & 0x7F) | 0x80, raw >> 14))
    out = bytearray()
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


# Zig-zag varints of 0 .. 8191: every value that fits in one or two bytes, which
# covers offset deltas, key and value lengths and record lengths of ordinary
# records, and timestamp deltas of batches that span up to 8 s. The table costs
# about 350 KB; a lookup is more than ten times faster than encoding.
_SMALL = 8192
_VARINT: tuple[bytes, ...] = tuple(_encode_varint(value) for value in range(_SMALL))
_NULL = b"\x01"  # length -1: a null key, value or header value
# A module-level name for bytes.join saves an attribute lookup per record.
_join = b"".join


def _varint(value: int) -> bytes:
    if 0 <= value < _SMALL:
        return _VARINT[value]
    return _encode_varint(value)


def _encode_headers(headers: Sequence[Header]) -> bytes:
    """headersCount and headers of one record."""
    # Fast path for well-formed headers with short keys and values; anything
    # else (a wrong type, a length beyond the table) takes the checked path.
    try:
        parts = [_VARINT[len(headers)]]
        for name, value in headers:
            raw = name.encode()
            if value is None:
                parts += (_VARINT[len(raw)], raw, b"\x01")
            else:
                parts += (_VARINT[len(raw)], raw, _VARINT[len(value)], value)
        return b"".join(parts)
    except (AttributeError, IndexError, TypeError, ValueError):
        return _encode_headers_checked(headers)


def _encode_headers_checked(headers: Sequence[Header]) -> bytes:
    try:
        items = list(headers)
    except TypeError:
        raise InvalidArgumentError(
            "headers", f"expected a sequence of (str, bytes | None), got {type(headers).__name__}"
        ) from None
    parts = [_varint(len(items))]
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                "headers", f"a header must be a (str, bytes | None) pair, got {item!r:.80}"
            ) from None
        if not isinstance(name, str):
            raise InvalidArgumentError(
                "headers", f"a header key must be str, got {type(name).__name__}"
            )
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError("headers", f"header key {name!r:.80}: {exc}") from None
        parts.append(_varint(len(raw)))
        parts.append(raw)
        if value is None:
            parts.append(_NULL)
        elif isinstance(value, (bytes, bytearray)):
            parts.append(_varint(len(value)))
            parts.append(value)
        else:
            raise InvalidArgumentError(
                "headers", f"a header value must be bytes or None, got {type(value).__name__}"
            )
    return b"".join(parts)


def _check_bytes(argument: str, data: object) -> None:
    if data is not None and not isinstance(data, (bytes, bytearray)):
        raise InvalidArgumentError(argument, f"expected bytes or None, got {type(data).__name__}")


def _encode_record(
    offset_delta: int,
    timestamp: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header],
) -> bytes:
    """Encode one record with full checks: the path for whatever the fast path skips."""
    _check_timestamp(timestamp)
    if not _INT64_MIN <= timestamp_delta <= _INT64_MAX:
        raise InvalidArgumentError(
            "timestamp", f"{timestamp_delta} ms from the batch's first record overflows int64"
        )
    if offset_delta > _INT32_MAX:
        raise InvalidArgumentError("records", "a batch holds at most 2**31 - 1 records")
    _check_bytes("key", key)
    _check_bytes("value", value)
    parts = [b"", b"\x00", _varint(timestamp_delta), _varint(offset_delta)]
    size = 1
    for data in (key, value):
        if data is None:
            parts.append(_NULL)
            size += 1
        else:
            prefix = _varint(len(data))
            parts += (prefix, data)
            size += len(prefix) + len(data)
    headers_block = _encode_headers(headers) if headers else b"\x00"
    parts.append(headers_block)
    size += len(parts[2]) + len(parts[3]) + len(headers_block)
    # One join with the length in front: big values are copied once here.
    parts[0] = _varint(size)
    return b"".join(parts)


# -- encoding ------------------------------------------------------------------


class PureBatchBuilder:
    """Accumulates records into one RecordBatch (magic 2), encoding each on append.

    This is the reference implementation; :data:`BatchBuilder` is the compiled
    twin (``kafka_sink._speedups``) where it is built, and this class otherwise.

    ``max_bytes`` bounds the uncompressed size of the batch (header included):
    :meth:`append` refuses a record that would exceed it unless the batch is
    empty, so a single oversized record still gets a batch of its own and the
    caller decides what to do with it. :meth:`build` compresses the records
    once; building again (a retry with a new producer epoch, say) rewrites only
    the header and the CRC.

    A builder is not thread-safe; the producer owns each builder from one thread
    at a time.

    Example::

        >>> builder = BatchBuilder(Compression.GZIP, max_bytes=16_384)
        >>> builder.append(1_700_000_000_000, None, b'{"msg": "started"}')
        True
        >>> builder.record_count, builder.size_in_bytes
        (1, 86)
        >>> wire = builder.build()
    """

    __slots__ = (
        "_base_timestamp",
        "_compression",
        "_level",
        "_max_bytes",
        "_max_timestamp",
        "_payload",
        "_payload_count",
        "_records",
        "_size",
    )

    def __init__(
        self,
        compression: Compression = Compression.NONE,
        max_bytes: int = 1_048_576,
        compression_level: int | None = None,
    ) -> None:
        self._compression, self._max_bytes, self._level = _builder_args(
            compression, max_bytes, compression_level
        )
        self._records: list[bytes] = []
        self._size = BATCH_HEADER_SIZE
        self._base_timestamp = 0
        self._max_timestamp = 0
        self._payload = b""
        self._payload_count = 0

    @property
    def compression(self) -> Compression:
        """The codec the batch is built with."""
        return self._compression

    @property
    def max_bytes(self) -> int:
        """The bound on :attr:`size_in_bytes` that :meth:`append` enforces."""
        return self._max_bytes

    @property
    def record_count(self) -> int:
        """Records appended so far."""
        return len(self._records)

    @property
    def size_in_bytes(self) -> int:
        """Uncompressed size of the batch so far, the 61-byte header included."""
        return self._size

    @property
    def first_timestamp(self) -> int | None:
        """Timestamp (ms) of the first record, the batch's baseTimestamp; None if empty."""
        return self._base_timestamp if self._records else None

    @property
    def max_timestamp(self) -> int | None:
        """Largest record timestamp (ms) so far; None if empty."""
        return self._max_timestamp if self._records else None

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return (
            f"BatchBuilder(compression={self._compression.name}, records={len(self._records)}, "
            f"size_in_bytes={self._size}, max_bytes={self._max_bytes})"
        )

    def append(
        self,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header] = (),
    ) -> bool:
        """Encode a record into the batch; return False if it does not fit.

        ``timestamp`` is in milliseconds; it may be earlier than the first
        record's. A record that would push :attr:`size_in_bytes` past
        ``max_bytes`` is refused (nothing changes) unless the batch is empty.
        """
        records = self._records
        count = len(records)
        if not count:
            if type(timestamp) is not int or not _INT64_MIN <= timestamp <= _INT64_MAX:
                _check_timestamp(timestamp)
            self._base_timestamp = self._max_timestamp = timestamp
        # The fast path: every varint comes from the table, so a record costs
        # one join and one concatenation. IndexError sends records whose
        # numbers do not fit the table (and negative timestamp deltas, which are
        # mapped to an impossible index) to the general encoder; TypeError
        # means an argument of the wrong type.
        try:
            delta = timestamp - self._base_timestamp
            ts = _VARINT[delta if delta >= 0 else _SMALL]
            # Batches of many small records pass 8192 records: encode those
            # offset deltas here rather than through the exception below.
            od = _VARINT[count] if count < _SMALL else _encode_varint(count)
            hb = _encode_headers(headers) if headers else b"\x00"
            if key is None:
                if value is None:
                    body = _join((b"\x00", ts, od, b"\x01\x01", hb))
                else:
                    body = _join((b"\x00", ts, od, b"\x01", _VARINT[len(value)], value, hb))
            elif value is None:
                body = _join((b"\x00", ts, od, _VARINT[len(key)], key, b"\x01", hb))
            else:
                body = _join(
                    (
                        b"\x00",
                        ts,
                        od,
                        _VARINT[len(key)],
                        key,
                        _VARINT[len(value)],
                        value,
                        hb,
                    )
                )
            record = _VARINT[len(body)] + body
        except IndexError:
            record = _record_bytes_checked(
                count, timestamp, self._base_timestamp, key, value, headers
            )
        except TypeError:
            _check_timestamp(timestamp)
            _check_bytes("key", key)
            _check_bytes("value", value)
            raise
        size = self._size + len(record)
        if size > self._max_bytes and count:
            return False
        records.append(record)
        self._size = size
        if timestamp > self._max_timestamp:  # noqa: PLR1730 - several times cheaper than max()
            self._max_timestamp = timestamp
        return True

    def build(
        self,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        transactional: bool = False,
    ) -> bytes:
        """Return the batch's bytes, ready for a ProduceRequest.

        The records section is compressed on the first call and reused by later
        calls (unless records were appended in between), which only rewrite the
        header and the CRC: retrying with a new producer epoch or sequence is
        cheap. Non-idempotent producers keep the defaults (-1).
        """
        count = len(self._records)
        if not count:
            raise InvalidArgumentError("records", "a record batch needs at least one record")
        _check_range("producer_id", producer_id, _INT64_MIN, _INT64_MAX)
        _check_range("producer_epoch", producer_epoch, _INT16_MIN, _INT16_MAX)
        _check_range("base_sequence", base_sequence, _INT32_MIN, _INT32_MAX)
        if self._payload_count != count:
            records = b"".join(self._records)
            if self._compression:
                records = compress(self._compression, records, self._level)
            self._payload = records
            self._payload_count = count
        payload = self._payload
        attributes = int(self._compression)
        if transactional:
            attributes |= _TRANSACTIONAL_BIT
        max_timestamp = self._max_timestamp
        if not _INT64_MIN <= max_timestamp <= _INT64_MAX:
            raise InvalidArgumentError("timestamp", f"{max_timestamp} does not fit in int64")
        suffix = _SUFFIX.pack(
            attributes,
            count - 1,
            self._base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
        crc = _crc32c(payload, _crc32c(suffix))
        prefix = _PREFIX.pack(
            0, BATCH_HEADER_SIZE - _LENGTH_OVERHEAD + len(payload), -1, _MAGIC, crc
        )
        return b"".join((prefix, suffix, payload))


def _builder_args(
    compression: Compression | str | int = Compression.NONE,
    max_bytes: int = 1_048_576,
    compression_level: int | None = None,
) -> tuple[Compression, int, int | None]:
    """A builder's codec, size bound and level, checked (both builders call this)."""
    # A producer opens a builder per batch with the same three arguments:
    # checked once, then remembered (keyed by type too: True == 1).
    key = (
        type(compression),
        compression,
        type(max_bytes),
        max_bytes,
        type(compression_level),
        compression_level,
    )
    try:
        return _CHECKED_BUILDER_ARGS[key]
    except (KeyError, TypeError):  # TypeError: an unhashable (and so invalid) argument
        pass
    checked = _check_builder_args(compression, max_bytes, compression_level)
    if len(_CHECKED_BUILDER_ARGS) < 64:
        _CHECKED_BUILDER_ARGS[key] = checked
    return checked


_CHECKED_BUILDER_ARGS: dict[tuple[object, ...], tuple[Compression, int, int | None]] = {}


def _check_builder_args(
    compression: Compression | str | int,
    max_bytes: int,
    compression_level: int | None,
) -> tuple[Compression, int, int | None]:
    if not isinstance(compression, Compression):
        if isinstance(compression, str):
            compression = Compression.from_name(compression)
        else:
            try:
                compression = Compression(compression)
            except ValueError:
                raise InvalidArgumentError(
                    "compression", f"unknown codec {compression!r}"
                ) from None
    ensure_available(compression)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise InvalidArgumentError("max_bytes", f"expected an int > 0, got {max_bytes!r}")
    if compression == Compression.NONE and compression_level is None:
        return compression, max_bytes, None
    return compression, max_bytes, check_level(compression, compression_level)


def _record_bytes_checked(
    offset_delta: int,
    timestamp: int,
    base_timestamp: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header] | None,
) -> bytes:
    """One record's bytes with every check, or the typed error of the bad argument.

    The general path of both builders: records whose numbers are too large for
    the fast encoders, and arguments of the wrong type.
    """
    _check_timestamp(timestamp)
    return _encode_record(
        offset_delta, timestamp, timestamp - base_timestamp, key, value, headers or ()
    )


def _check_timestamp(timestamp: object) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise InvalidArgumentError(
            "timestamp", f"expected an int (milliseconds), got {type(timestamp).__name__}"
        )
    if not _INT64_MIN <= timestamp <= _INT64_MAX:
        raise InvalidArgumentError("timestamp", f"{timestamp} does not fit in int64")


def _check_range(argument: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(argument, f"expected an int in [{low}, {high}], got {value!r}")


def encode_batch(
    records: Iterable[tuple[int, bytes | None, bytes | None, Sequence[Header]]],
    compression: Compression = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> bytes:
    """Encode ``(timestamp, key, value, headers)`` tuples as one record batch.

    Example::

        >>> wire = encode_batch([(1_700_000_000_000, None, b"hello", ())])
        >>> decode_batches(wire)[0].records[0].value
        b'hello'
    """
    builder = BatchBuilder(compression, max_bytes=_INT32_MAX)
    for timestamp, key, value, headers in records:
        builder.append(timestamp, key, value, headers)
    return builder.build(producer_id, producer_epoch, base_sequence)


if TYPE_CHECKING:
    BatchBuilder = PureBatchBuilder
elif _speedups is not None:
    # The compiled builder calls this module's helpers (the general record
    # encoder, the argument checks, the codecs) for everything off its fast path.
    _speedups.configure(records=sys.modules[__name__], invalid_argument=InvalidArgumentError)
    BatchBuilder = _speedups.BatchBuilder
else:
    BatchBuilder = PureBatchBuilder
"""The record batch encoder the producer uses: compiled where built, else the pure one."""


# -- decoding ------------------------------------------------------------------


def decode_batches(
    data: bytes | bytearray | memoryview,
    *,
    verify_crc: bool = True,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    allow_partial_tail: bool = True,
) -> list[RecordBatch]:
    """Decode concatenated record batches, as in a Fetch response's ``records``.

    A broker may cut the last batch of a Fetch response short; with
    ``allow_partial_tail`` that batch is skipped, otherwise it is an error.
    ``max_decompressed_bytes`` bounds the bytes decompression may produce over
    the whole call. Raises :class:`ProtocolError` for anything malformed
    (magic other than 2, bad lengths, CRC mismatch, corrupt or oversized
    compressed data), and :class:`~kafka_sink.errors.InvalidArgumentError` for
    a zstd batch when the optional ``zstandard`` package is missing.

    Example::

        >>> wire = encode_batch([(1_700_000_000_000, b"k", b"v", [("h", None)])])
        >>> decode_batches(wire)[0].records
        (Record(offset=0, timestamp=1700000000000, key=b'k', value=b'v', headers=(('h', None),)),)
    """
    if (
        isinstance(max_decompressed_bytes, bool)
        or not isinstance(max_decompressed_bytes, int)
        or max_decompressed_bytes < 0
    ):
        raise InvalidArgumentError(
            "max_decompressed_bytes", f"expected an int >= 0, got {max_decompressed_bytes!r}"
        )
    buf = bytes(data)
    end = len(buf)
    pos = 0
    budget = max_decompressed_bytes
    batches: list[RecordBatch] = []
    while pos < end:
        if end - pos < BATCH_HEADER_SIZE:
            if end - pos >= _LENGTH_OVERHEAD:
                (length,) = struct.unpack_from(">i", buf, pos + 8)
                if length < BATCH_HEADER_SIZE - _LENGTH_OVERHEAD:
                    raise ProtocolError(f"batch at offset {pos} claims {length} bytes")
            if allow_partial_tail:
                break
            raise ProtocolError(f"truncated batch header at offset {pos}: {end - pos} bytes left")
        (
            base_offset,
            length,
            leader_epoch,
            magic,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        ) = _HEADER.unpack_from(buf, pos)
        if length < BATCH_HEADER_SIZE - _LENGTH_OVERHEAD:
            raise ProtocolError(f"batch at offset {pos} claims {length} bytes")
        batch_end = pos + _LENGTH_OVERHEAD + length
        if batch_end > end:
            if allow_partial_tail:
                break
            raise ProtocolError(
                f"truncated batch at offset {pos}: claims {length} bytes, "
                f"{end - pos - _LENGTH_OVERHEAD} left"
            )
        if magic != _MAGIC:
            raise ProtocolError(
                f"unsupported message format: magic {magic} at offset {pos} "
                "(only magic 2 record batches are supported)"
            )
        if verify_crc:
            actual = _crc32c(memoryview(buf)[pos + _CRC_START : batch_end])
            if actual != crc:
                raise ProtocolError(
                    f"CRC mismatch in batch at offset {pos}: "
                    f"stored 0x{crc:08x}, computed 0x{actual:08x}"
                )
        codec_id = attributes & _CODEC_MASK
        if codec_id > Compression.ZSTD:
            raise ProtocolError(f"unknown compression codec {codec_id} in batch at offset {pos}")
        codec = Compression(codec_id)
        if count < 0:
            raise ProtocolError(f"negative record count {count} in batch at offset {pos}")
        section = buf[pos + BATCH_HEADER_SIZE : batch_end]
        if codec:
            section = decompress(codec, section, budget)
            budget -= len(section)
        log_append = bool(attributes & _TIMESTAMP_TYPE_BIT)
        records = _decode_records(
            section,
            count,
            base_offset,
            base_timestamp,
            max_timestamp if log_append else None,
        )
        batches.append(
            RecordBatch(
                base_offset=base_offset,
                partition_leader_epoch=leader_epoch,
                magic=magic,
                crc=crc,
                attributes=attributes,
                compression=codec,
                timestamp_type=(
                    TimestampType.LOG_APPEND_TIME if log_append else TimestampType.CREATE_TIME
                ),
                is_transactional=bool(attributes & _TRANSACTIONAL_BIT),
                is_control=bool(attributes & _CONTROL_BIT),
                last_offset_delta=last_offset_delta,
                base_timestamp=base_timestamp,
                max_timestamp=max_timestamp,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                base_sequence=base_sequence,
                records=records,
            )
        )
        pos = batch_end
    return batches


def _read_varint(buf: bytes, pos: int, end: int, max_len: int) -> tuple[int, int]:
    """Decode a zig-zag varint of at most ``max_len`` bytes ending before ``end``."""
    raw = 0
    shift = 0
    limit = min(end, pos + max_len)
    while pos < limit:
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            # Five bytes carry 35 bits and ten carry 70: what does not fit the
            # field's int32 (varint) or int64 (varlong) is not Kafka's.
            if shift >= 28 and raw >> (32 if max_len == 5 else 64):
                raise ProtocolError(
                    f"varint at offset {pos - 1 - shift // 7} does not fit in "
                    f"{32 if max_len == 5 else 64} bits"
                )
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
    if pos >= end:
        raise ProtocolError(f"truncated varint at offset {pos}")
    raise ProtocolError(f"varint longer than {max_len} bytes at offset {pos - max_len}")


def _decode_records(
    buf: bytes,
    count: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None,
) -> tuple[Record, ...]:
    end = len(buf)
    # Every record takes at least 7 bytes: a count the bytes cannot hold is a
    # lie, rejected before anything is allocated for it.
    if count * _MIN_RECORD_SIZE > end:
        raise ProtocolError(f"{count} records claimed in only {end} bytes")
    records: list[Record] = []
    pos = 0
    for _ in range(count):
        length, pos = _read_varint(buf, pos, end, 5)
        if length < _MIN_RECORD_SIZE - 1 or length > end - pos:
            raise ProtocolError(f"record length {length} at offset {pos}, {end - pos} bytes left")
        stop = pos + length
        pos += 1  # attributes, unused
        timestamp_delta, pos = _read_varint(buf, pos, stop, 10)
        offset_delta, pos = _read_varint(buf, pos, stop, 5)
        key_length, pos = _read_varint(buf, pos, stop, 5)
        if key_length < 0:
            if key_length != -1:
                raise ProtocolError(f"negative key length {key_length}")
            key = None
        else:
            if key_length > stop - pos:
                raise ProtocolError(f"key of {key_length} bytes, {stop - pos} left in record")
            key = buf[pos : pos + key_length]
            pos += key_length
        value_length, pos = _read_varint(buf, pos, stop, 5)
        if value_length < 0:
            if value_length != -1:
                raise ProtocolError(f"negative value length {value_length}")
            value = None
        else:
            if value_length > stop - pos:
                raise ProtocolError(f"value of {value_length} bytes, {stop - pos} left in record")
            value = buf[pos : pos + value_length]
            pos += value_length
        header_count, pos = _read_varint(buf, pos, stop, 5)
        if header_count < 0 or 2 * header_count > stop - pos:
            raise ProtocolError(f"{header_count} headers claimed, {stop - pos} bytes left")
        headers: list[Header] = []
        for _ in range(header_count):
            name_length, pos = _read_varint(buf, pos, stop, 5)
            if name_length < 0 or name_length > stop - pos:
                raise ProtocolError(f"header key length {name_length}, {stop - pos} bytes left")
            try:
                name = buf[pos : pos + name_length].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"header key is not valid UTF-8: {exc}") from None
            pos += name_length
            header_length, pos = _read_varint(buf, pos, stop, 5)
            header_value: bytes | None
            if header_length < 0:
                if header_length != -1:
                    raise ProtocolError(f"negative header value length {header_length}")
                header_value = None
            else:
                if header_length > stop - pos:
                    raise ProtocolError(
                        f"header value of {header_length} bytes, {stop - pos} left in record"
                    )
                header_value = buf[pos : pos + header_length]
                pos += header_length
            headers.append((name, header_value))
        if pos != stop:
            raise ProtocolError(
                f"record declares {length} bytes but its fields end {stop - pos} early"
            )
        timestamp = base_timestamp + timestamp_delta if log_append_time is None else log_append_time
        records.append(Record(base_offset + offset_delta, timestamp, key, value, tuple(headers)))
    if pos != end:
        raise ProtocolError(f"{end - pos} bytes left over after {count} records")
    return tuple(records)
