"""Compression codecs of Kafka record batches, with bounded decompression.

A RecordBatch (magic 2) names its codec in bits 0-2 of ``attributes``; with a
codec, everything after ``recordsCount`` is one compressed blob. What each codec
means on the wire, as the Java client and librdkafka write and read it:

* gzip: one gzip stream (RFC 1952). Readers accept concatenated members.
* snappy: the Java client writes the framing of xerial's snappy-java: the
  header ``b"\\x82SNAPPY\\x00"``, an int32 version (1), an int32 compatible
  version (1), then blocks, each an int32 length followed by a raw snappy block
  of at most 32 KiB of input. librdkafka writes one raw snappy block. Readers on
  both sides accept either, and so does :func:`decompress`; :func:`compress`
  writes the xerial framing.
* lz4: one LZ4 frame with independent 64 KiB blocks and neither content size
  nor checksums (FLG ``0x60``, BD ``0x40``), which is exactly what the Java
  client's LZ4 output stream and librdkafka write. The Java reader rejects
  frames with linked blocks.
* zstd: one zstd frame (ProduceRequest v7 and later). The ``zstandard``
  package is optional: install ``kafka-sink[zstd]``.

:func:`decompress` never trusts the compressed data: it produces at most
``max_size`` bytes, feeding the decompressor in steps so that no single step can
allocate much more than what is left of that budget, and it turns every failure
of a compression library into :class:`~kafka_sink.errors.ProtocolError`.

Example::

    >>> codec = Compression.from_name("lz4")
    >>> blob = compress(codec, b"log line " * 100)
    >>> decompress(codec, blob, max_size=1 << 20) == b"log line " * 100
    True
"""

from __future__ import annotations

import enum
import struct
import zlib
from typing import Any

import lz4.frame as _lz4f
import snappy as _snappy

from kafka_sink.config import check_compression_level
from kafka_sink.errors import InvalidArgumentError, ProtocolError

_zstd: Any
try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover - exercised by a test that hides the module
    _zstd = None

__all__ = ["Compression", "compress", "decompress", "ensure_available"]

Buffer = bytes | bytearray | memoryview


class Compression(enum.IntEnum):
    """A record batch codec; the value is the codec id in the batch attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4

    @classmethod
    def from_name(cls, name: str) -> Compression:
        """Parse a codec name as Kafka's ``compression.type`` spells it.

        Accepts ``none``, ``gzip``, ``snappy``, ``lz4`` and ``zstd`` in any
        case, and checks that the codec can be used here (``zstd`` needs the
        optional ``zstandard`` package)::

            >>> Compression.from_name("GZIP")
            <Compression.GZIP: 1>
        """
        if not isinstance(name, str):
            raise InvalidArgumentError(
                "compression", f"expected a codec name (str), got {type(name).__name__}"
            )
        codec = _BY_NAME.get(name.strip().lower())
        if codec is None:
            raise InvalidArgumentError(
                "compression",
                f"unknown codec {name!r}; expected one of none, gzip, snappy, lz4, zstd",
            )
        ensure_available(codec)
        return codec


_BY_NAME = {codec.name.lower(): codec for codec in Compression}


def ensure_available(codec: Compression) -> None:
    """Raise :class:`InvalidArgumentError` if ``codec`` cannot be used in this process."""
    if codec == Compression.ZSTD and _zstd is None:
        raise InvalidArgumentError(
            "compression",
            "zstd needs the optional 'zstandard' package: install kafka-sink[zstd]",
        )


def _codec(value: int) -> Compression:
    try:
        return Compression(value)
    except ValueError:
        raise InvalidArgumentError("compression", f"unknown codec id {value!r}") from None


# -- compression -------------------------------------------------------------

# zlib's default level, which the Java client and librdkafka use too.
# gzip.compress defaults to 9: about twice as slow for some 4 % smaller output
# on JSON log lines.
_GZIP_LEVEL = 6
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_I32 = struct.Struct(">i")

_ZSTD_LEVEL = 3
# Compressor objects are costly to create (about three times the cost of
# compressing a 16 KiB batch) and must not be shared by two threads at once.
# list.pop and list.append are atomic, so this pool hands each caller its own
# compressor without a lock.
# One pool per level in use (a producer uses one level).
_zstd_pools: dict[int | None, list[Any]] = {}
_ZSTD_POOL_SIZE = 4


def check_level(codec: Compression, level: int | None) -> int | None:
    """Validate a compression level for ``codec`` (None: the codec's default)."""
    return check_compression_level(codec.name.lower(), level)


def compress(codec: Compression, data: Buffer, level: int | None = None) -> bytes:
    """Compress ``data`` as ``codec`` writes it into a Kafka record batch.

    ``level`` (checked by :func:`check_level`) trades speed for size; None
    keeps each codec's default: gzip 6, lz4's fast mode, zstd 3.
    """
    if type(codec) is not Compression:
        codec = _codec(codec)
    if codec == Compression.NONE:
        return bytes(data)
    if codec == Compression.GZIP:
        zobj = zlib.compressobj(_GZIP_LEVEL if level is None else level, zlib.DEFLATED, _GZIP_WBITS)
        return zobj.compress(data) + zobj.flush()
    if codec == Compression.SNAPPY:
        return _xerial_compress(data)
    if codec == Compression.LZ4:
        out: bytes = _lz4f.compress(
            data,
            compression_level=0 if level is None else level,
            block_size=_lz4f.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            block_checksum=False,
            store_size=False,
        )
        return out
    ensure_available(codec)
    pool = _zstd_pools.get(level)
    if pool is None:
        pool = _zstd_pools.setdefault(level, [])
    try:
        compressor = pool.pop()
    except IndexError:
        compressor = _zstd.ZstdCompressor(level=_ZSTD_LEVEL if level is None else level)
    out = compressor.compress(data)
    if len(pool) < _ZSTD_POOL_SIZE:
        pool.append(compressor)
    return out


def _xerial_compress(data: Buffer) -> bytes:
    view = memoryview(data)
    parts = [_XERIAL_HEADER]
    pack = _I32.pack
    for start in range(0, len(view), _XERIAL_BLOCK):
        block: bytes = _snappy.compress(view[start : start + _XERIAL_BLOCK])
        parts.append(pack(len(block)))
        parts.append(block)
    return b"".join(parts)


# -- bounded decompression ---------------------------------------------------

# The largest output a single decompression step may produce (when the budget
# allows that much); steps start smaller and grow, so small batches stay cheap.
_MAX_STEP = 4 << 20
_MIN_STEP = 64 << 10


def decompress(codec: Compression, data: Buffer, max_size: int) -> bytes:
    """Decompress one compressed records section, producing at most ``max_size`` bytes.

    Raises :class:`ProtocolError` when the data is corrupt or truncated, or
    when it would decompress to more than ``max_size`` bytes (a decompression
    bomb); memory use stays close to ``max_size`` whatever the input claims.
    """
    codec = _codec(codec)
    if not isinstance(max_size, int) or max_size < 0:
        raise InvalidArgumentError("max_size", f"expected an int >= 0, got {max_size!r}")
    if codec == Compression.NONE:
        if len(data) > max_size:
            raise _too_big(codec, max_size)
        return bytes(data)
    if codec == Compression.ZSTD:
        ensure_available(codec)
    decoder = _DECODERS[codec]
    try:
        return decoder(memoryview(data).cast("B"), max_size)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"corrupt {codec.name.lower()} data: {exc}") from exc


def _too_big(codec: Compression, max_size: int) -> ProtocolError:
    return ProtocolError(
        f"{codec.name.lower()} data decompresses to more than {max_size} bytes "
        "(limit reached; possible decompression bomb)"
    )


def _gunzip(view: memoryview, max_size: int) -> bytes:
    out: list[bytes] = []
    produced = 0
    step = min(max(_MIN_STEP, 8 * len(view)), _MAX_STEP)
    rest: bytes | memoryview = view
    while True:
        zobj = zlib.decompressobj(_GZIP_WBITS)
        pending = rest
        while not zobj.eof:
            # max_length bounds each step's output; what zlib could not write
            # yet stays in unconsumed_tail (or in its window) for the next step.
            chunk = zobj.decompress(pending, min(step, max_size - produced + 1))
            produced += len(chunk)
            if produced > max_size:
                raise _too_big(Compression.GZIP, max_size)
            if not chunk and not pending:
                raise ProtocolError("truncated gzip data")
            out.append(chunk)
            pending = zobj.unconsumed_tail
            step = min(step * 2, _MAX_STEP)
        rest = zobj.unused_data
        if not rest:
            return b"".join(out)
        if rest[:2] != b"\x1f\x8b":
            raise ProtocolError(f"{len(rest)} bytes of garbage after the gzip stream")


def _unsnappy(view: memoryview, max_size: int) -> bytes:
    if view[:8] != _XERIAL_MAGIC:
        return _snappy_block(view, max_size, max_size)
    if len(view) < len(_XERIAL_HEADER):
        raise ProtocolError("truncated xerial snappy header")
    out: list[bytes] = []
    budget = max_size
    pos = len(_XERIAL_HEADER)
    end = len(view)
    while pos < end:
        if end - pos < 4:
            raise ProtocolError("truncated xerial snappy block length")
        (size,) = _I32.unpack_from(view, pos)
        pos += 4
        if size <= 0 or size > end - pos:
            raise ProtocolError(
                f"xerial snappy block of {size} bytes at offset {pos - 4}, {end - pos} bytes left"
            )
        block = _snappy_block(view[pos : pos + size], budget, max_size)
        budget -= len(block)
        out.append(block)
        pos += size
    return b"".join(out)


# The most output one byte of a snappy block can stand for: its longest copy
# (64 bytes) takes a 3-byte element.
_SNAPPY_MAX_EXPANSION = 22


def _snappy_block(view: memoryview, budget: int, max_size: int) -> bytes:
    # A raw snappy block starts with its uncompressed length as a base-128
    # varint of at most 32 bits: check it before the library allocates it.
    length = 0
    for index in range(5):
        if index >= len(view):
            raise ProtocolError("truncated snappy block length")
        byte = view[index]
        length |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            break
    else:
        raise ProtocolError("snappy block length is longer than 5 bytes")
    if length > budget:
        raise _too_big(Compression.SNAPPY, max_size)
    if length > _SNAPPY_MAX_EXPANSION * len(view):
        # The library allocates the claimed length before it looks at the
        # data: a few bytes claiming megabytes must be refused first.
        raise ProtocolError(
            f"snappy block of {len(view)} bytes claims {length} bytes, "
            "more than snappy can encode in it"
        )
    try:
        out: bytes = _snappy.uncompress(view)
    except Exception as exc:
        raise ProtocolError(f"corrupt snappy block: {exc}") from exc
    if len(out) != length:  # the library checks this too; never trust it blindly
        raise ProtocolError(f"snappy block claims {length} bytes, decompressed to {len(out)}")
    return out


# The most output one byte of an LZ4 frame can stand for: a match length grows
# by 255 per extra byte.
_LZ4_MAX_EXPANSION = 256


def _unlz4(view: memoryview, max_size: int) -> bytes:
    context = _lz4f.create_decompression_context()
    out: list[bytes] = []
    produced = 0
    pos = 0
    end = len(view)
    # decompress_chunk allocates max_length up front: no more than the input
    # can stand for, so that a few bytes never cost the first step's 64 KiB.
    step = min(max(_MIN_STEP, 8 * end), _MAX_STEP, _LZ4_MAX_EXPANSION * end + 64)
    while True:
        # decompress_chunk allocates max_length up front, never more, and
        # ignores the content size a frame header may claim.
        chunk, consumed, eof = _lz4f.decompress_chunk(
            context, view[pos:], max_length=min(step, max_size - produced + 1)
        )
        pos += consumed
        produced += len(chunk)
        if produced > max_size:
            raise _too_big(Compression.LZ4, max_size)
        out.append(chunk)
        if eof:
            break
        if not chunk and not consumed:
            raise ProtocolError("truncated lz4 frame")
        step = min(step * 2, _MAX_STEP)
    if pos != end:
        raise ProtocolError(f"{end - pos} bytes of garbage after the lz4 frame")
    return b"".join(out)


# A zstd block of a few bytes can stand for up to 128 KiB of output (an RLE
# block), so feeding the decoder n input bytes at a time bounds one step's
# output to about n * 2**15 bytes.
_ZSTD_RATIO = 1 << 15
_ZSTD_MIN_WRITE = 4 << 10
_ZSTD_MAX_WRITE = 128 << 10


def _unzstd(view: memoryview, max_size: int) -> bytes:
    out: list[bytes] = []
    produced = 0
    pos = 0
    end = len(view)
    dctx = _zstd.ZstdDecompressor()
    # The output buffer of each decompress() call, allocated whatever it
    # produces: 128 KiB by default, more than a small batch needs.
    write_size = min(max(_ZSTD_MIN_WRITE, 8 * end), _ZSTD_MAX_WRITE)
    while pos < end:
        # One frame per decompression object; concatenated frames are accepted
        # as the Java client's and librdkafka's readers accept them.
        dobj = dctx.decompressobj(write_size=write_size)
        while not dobj.eof:
            if pos >= end:
                raise ProtocolError("truncated zstd frame")
            feed = max(16, min((max_size - produced) // _ZSTD_RATIO + 1, 1 << 16))
            piece = view[pos : pos + feed]
            pos += len(piece)
            chunk = dobj.decompress(piece)
            produced += len(chunk)
            if produced > max_size:
                raise _too_big(Compression.ZSTD, max_size)
            out.append(chunk)
        # The object keeps what it read past the end of the frame.
        pos -= len(dobj.unused_data)
    if not out:
        raise ProtocolError("empty zstd data")
    return b"".join(out)


_DECODERS = {
    Compression.GZIP: _gunzip,
    Compression.SNAPPY: _unsnappy,
    Compression.LZ4: _unlz4,
    Compression.ZSTD: _unzstd,
}
