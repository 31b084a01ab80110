"""Structure-aware mutational fuzzing of the protocol decoders.

Shared by the fuzz tests (``tests/unit/test_fuzz_*.py``, a few hundred cases
each under Hypothesis) and the long runs of ``python -m tests.bench.fuzz``.

Every case starts from a *valid* encoding: a random message of the schema at
one version, encoded with the library's own encoder by a :class:`MarkingWriter`
that notes where each number (lengths, counts, plain integers) was written;
record batches are assembled here, independently of the library's encoder,
with the same notes for every varint of every record. A mutator then changes
what a decoder trusts: it rewrites lengths and counts (0, -1, the input's own
size, 2**31 - 1, 2**63 - 1...), flips bits, truncates, inserts and deletes
bytes, and for record batches also mutates records *before* compression,
recomputes the CRC so the decoder gets past it, nests one codec in another
and substitutes decompression bombs. So the decoders are exercised well past
the first length field.

The property (:func:`run_case`): decoding returns a value or raises
:class:`~kafka_sink.errors.ProtocolError` (or, for the SASL exchange,
:class:`~kafka_sink.errors.AuthenticationError`); any other exception is a
bug of the decoder.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import gzip
import hashlib
import hmac
import random
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lz4.frame
import snappy
import zstandard
from crc32c import crc32c

from kafka_sink.errors import AuthenticationError, ProtocolError
from kafka_sink.protocol import apis, schema
from kafka_sink.protocol.api_versions import (
    ApiVersionRange,
    ApiVersionsRequest,
    ApiVersionsResponse,
)
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.create_topics import CreateTopicsRequest, CreateTopicsResponse
from kafka_sink.protocol.fetch import FetchRequest, FetchResponse
from kafka_sink.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from kafka_sink.protocol.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.primitives import Writer, encode_uvarint, encode_varint
from kafka_sink.protocol.produce import ProduceRequest, ProduceResponse
from kafka_sink.protocol.records import decode_batches
from kafka_sink.protocol.sasl import (
    PlainMechanism,
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslAuthenticator,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
    ScramMechanism,
)
from kafka_sink.protocol.schema import Message, WireType

__all__ = [
    "FAMILIES",
    "MESSAGE_FAMILIES",
    "Case",
    "Family",
    "Mark",
    "MarkingWriter",
    "Outcome",
    "assemble_batch",
    "encode_records",
    "mutate",
    "run_case",
]

#: What a record-batch decode may decompress in a fuzz case: small, so that a
#: bomb is refused after a megabyte rather than after the default 64 MiB.
FUZZ_DECOMPRESSION_LIMIT = 1 << 20

# -- marks: where the numbers are ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """A number in an encoding: bytes ``start:end``, written as ``kind``.

    ``kind`` is ``i8``, ``i16``, ``i32``, ``i64`` (big-endian, signed), ``uv``
    (unsigned varint) or ``zz`` (zig-zag varint); ``size`` says whether it is
    a length or a count (what decoders trust most) rather than a plain value.
    """

    start: int
    end: int
    kind: str
    size: bool = False

    def shifted(self, offset: int) -> Mark:
        return Mark(self.start + offset, self.end + offset, self.kind, self.size)


_FIXED = {"i8": (1, ">b"), "i16": (2, ">h"), "i32": (4, ">i"), "i64": (8, ">q")}


class MarkingWriter(Writer):
    """A :class:`~kafka_sink.protocol.primitives.Writer` that notes every number it writes."""

    __slots__ = ("marks",)

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[Mark] = []

    def _note(self, start: int, kind: str, size: bool = False) -> None:
        self.marks.append(Mark(start, len(self.buffer), kind, size))

    def int8(self, value: int) -> None:
        start = len(self.buffer)
        super().int8(value)
        self._note(start, "i8")

    def int16(self, value: int) -> None:
        start = len(self.buffer)
        super().int16(value)
        self._note(start, "i16")

    def int32(self, value: int) -> None:
        start = len(self.buffer)
        super().int32(value)
        self._note(start, "i32")

    def int64(self, value: int) -> None:
        start = len(self.buffer)
        super().int64(value)
        self._note(start, "i64")

    def uvarint(self, value: int, size: bool = False) -> None:
        start = len(self.buffer)
        super().uvarint(value)
        self._note(start, "uv", size)

    def tagged_fields(self, fields: dict[int, bytes] | None = None) -> None:
        # As Writer's, with the count and each size marked as sizes (tags are not).
        fields = fields or {}
        self.uvarint(len(fields), size=True)
        for tag in sorted(fields):
            self.uvarint(tag)
            self.uvarint(len(fields[tag]), size=True)
            self.buffer += fields[tag]

    def varint(self, value: int) -> None:
        start = len(self.buffer)
        super().varint(value)
        self._note(start, "zz")

    def _length(self, size: int, flexible: bool, wide: bool) -> None:
        start = len(self.buffer)
        super()._length(size, flexible, wide)
        self._note(start, "uv" if flexible else ("i32" if wide else "i16"), size=True)


def encode_marked(message: Message, version: int) -> tuple[bytes, list[Mark]]:
    """The body of ``message`` at ``version`` and the numbers in it."""
    writer = MarkingWriter()
    schema.encode_into(message, version, writer)
    return bytes(writer.buffer), writer.marks


# -- random valid messages ----------------------------------------------------------------

_WIDTHS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_ALPHABET = "abcxyz-._0189ÅéЖ中😀"


def _random_int(rng: random.Random, bits: int) -> int:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    roll = rng.random()
    if roll < 0.3:
        return rng.choice([0, 1, -1, low, high, min(high, 1000)])
    if roll < 0.6:
        return rng.randint(max(low, -100), min(high, 100))
    return rng.randint(low, high)


def _random_text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 3, 8, 20]) if rng.random() < 0.95 else rng.randint(100, 300)
    return "".join(rng.choice(_ALPHABET) for _ in range(size))


def _random_bytes(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 5, 30]) if rng.random() < 0.95 else rng.randint(100, 400)
    return rng.randbytes(size)


def random_value(
    wire: WireType, version: int, flexible: bool, rng: random.Random, depth: int = 0
) -> Any:
    """A random value of ``wire`` that its encoder takes."""
    name = wire.name
    if wire is schema.RECORDS:
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.45:  # valid framing around records that are not
            return record_batch_case(rng.choice(CODECS), rng).data
        return random_batches(rng)
    if name in _WIDTHS:
        return _random_int(rng, _WIDTHS[name])
    if name == "boolean":
        return rng.random() < 0.5
    if name == "uuid":
        return uuid.UUID(int=0) if rng.random() < 0.3 else uuid.UUID(int=rng.getrandbits(128))
    if name == "float64":
        return rng.random()
    if name in ("string", "nullable_string"):
        return None if wire.nullable and rng.random() < 0.15 else _random_text(rng)
    if name in ("bytes_", "nullable_bytes"):
        return None if wire.nullable and rng.random() < 0.15 else _random_bytes(rng)
    if wire.item is not None:
        if wire.nullable and rng.random() < 0.15:
            return None
        count = rng.choice([0, 1, 1, 2, 3]) if depth < 3 else rng.choice([0, 1])
        return [random_value(wire.item, version, flexible, rng, depth + 1) for _ in range(count)]
    if wire.struct is not None:
        return random_struct(wire.struct, version, flexible, rng, depth + 1)
    raise AssertionError(f"no generator for {wire}")


def random_struct(
    cls: type[Any], version: int, flexible: bool, rng: random.Random, depth: int = 0
) -> Any:
    """A random instance of ``cls``; fields absent from ``version`` keep their defaults."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "wire" not in meta:
            continue
        low, high = meta["span"]
        present = low <= version <= high and (meta["tag"] is None or flexible)
        if present:
            if meta["tag"] is not None and meta["wire"].struct is not None and rng.random() < 0.4:
                values[f.name] = None
            else:
                values[f.name] = random_value(meta["wire"], version, flexible, rng, depth)
        elif f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        else:
            assert f.default_factory is not dataclasses.MISSING
            values[f.name] = f.default_factory()
    return cls(**values)


def random_message(cls: type[Message], version: int, rng: random.Random) -> Message:
    message: Message = random_struct(cls, version, cls.is_flexible(version), rng)
    return message


# -- record batches, assembled here ---------------------------------------------------------

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
_CODEC_IDS = {name: index for index, name in enumerate(CODECS)}
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
# Offsets of the header's fields (Kafka's "Record Batch" layout).
_HEADER_MARKS = (
    Mark(0, 8, "i64"),  # baseOffset
    Mark(8, 12, "i32", size=True),  # batchLength
    Mark(12, 16, "i32"),  # partitionLeaderEpoch
    Mark(16, 17, "i8"),  # magic
    Mark(17, 21, "i32"),  # crc
    Mark(21, 23, "i16"),  # attributes
    Mark(23, 27, "i32"),  # lastOffsetDelta
    Mark(27, 35, "i64"),  # baseTimestamp
    Mark(35, 43, "i64"),  # maxTimestamp
    Mark(43, 51, "i64"),  # producerId
    Mark(51, 53, "i16"),  # producerEpoch
    Mark(53, 57, "i32"),  # baseSequence
    Mark(57, 61, "i32", size=True),  # recordsCount
)


def compress(codec: str, data: bytes) -> bytes:
    """``data`` compressed as Kafka producers write ``codec`` (librdkafka's raw snappy)."""
    if codec == "none":
        return data
    if codec == "gzip":
        return gzip.compress(data, compresslevel=1)
    if codec == "snappy":
        out: bytes = snappy.compress(data)
        return out
    if codec == "lz4":
        frame: bytes = lz4.frame.compress(data, block_linked=False, store_size=False)
        return frame
    blob: bytes = zstandard.ZstdCompressor(level=1).compress(data)
    return blob


def _xerial(data: bytes, block: int = 32 * 1024) -> bytes:
    """The snappy framing of the Java client (snappy-java's xerial format)."""
    parts = [b"\x82SNAPPY\x00", struct.pack(">ii", 1, 1)]
    for start in range(0, max(len(data), 1), block):
        chunk: bytes = snappy.compress(data[start : start + block])
        parts += (struct.pack(">i", len(chunk)), chunk)
    return b"".join(parts)


def encode_records(
    records: Sequence[tuple[int, bytes | None, bytes | None, Sequence[tuple[bytes, bytes | None]]]],
) -> tuple[bytes, list[Mark]]:
    """Records (timestamp delta, key, value, headers) as a RecordBatch writes them, with marks."""
    out = bytearray()
    marks: list[Mark] = []
    for offset_delta, (timestamp_delta, key, value, headers) in enumerate(records):
        body = bytearray(b"\x00")
        inner: list[Mark] = [Mark(0, 1, "i8")]

        def number(
            value: int, size: bool, body: bytearray = body, inner: list[Mark] = inner
        ) -> None:
            start = len(body)
            body += encode_varint(value)
            inner.append(Mark(start, len(body), "zz", size))

        number(timestamp_delta, False)
        number(offset_delta, False)
        for data in (key, value):
            number(-1 if data is None else len(data), True)
            body += data or b""
        number(len(headers), True)
        for name, header_value in headers:
            number(len(name), True)
            body += name
            number(-1 if header_value is None else len(header_value), True)
            body += header_value or b""
        start = len(out)
        out += encode_varint(len(body))
        marks.append(Mark(start, len(out), "zz", size=True))
        base = len(out)
        marks.extend(mark.shifted(base) for mark in inner)
        out += body
    return bytes(out), marks


def random_records(
    rng: random.Random, count: int | None = None
) -> list[tuple[int, bytes | None, bytes | None, list[tuple[bytes, bytes | None]]]]:
    count = rng.choice([1, 1, 2, 3, 5, 12]) if count is None else count
    records = []
    for _ in range(count):
        key = None if rng.random() < 0.3 else _random_bytes(rng)[:20]
        value = None if rng.random() < 0.1 else _random_bytes(rng)
        if rng.random() < 0.1:
            value = bytes(rng.randint(200, 3000))  # compressible
        headers = [
            (_random_text(rng)[:8].encode(), None if rng.random() < 0.2 else _random_bytes(rng)[:8])
            for _ in range(rng.choice([0, 0, 1, 2]))
        ]
        records.append((rng.randint(-5, 5000), key, value, headers))
    return records


def assemble_batch(
    section: bytes,
    count: int,
    codec_id: int,
    *,
    base_offset: int = 0,
    last_offset_delta: int | None = None,
    attributes: int = 0,
    magic: int = 2,
    crc: int | None = None,
    length: int | None = None,
) -> bytes:
    """A RecordBatch around an already encoded (and compressed) records section."""
    attributes = (attributes & ~0x07) | codec_id
    header = BATCH_HEADER.pack(
        base_offset,
        49 + len(section) if length is None else length,
        -1,
        magic,
        0,
        attributes,
        max(count - 1, 0) if last_offset_delta is None else last_offset_delta,
        1_700_000_000_000,
        1_700_000_000_000 + 5000,
        -1,
        -1,
        -1,
        count,
    )
    batch = bytearray(header + section)
    if crc is None:
        crc = crc32c(memoryview(batch)[21:])
    struct.pack_into(">I", batch, 17, crc & 0xFFFFFFFF)
    return bytes(batch)


def fix_crc(batch: bytearray, start: int = 0) -> None:
    """Recompute the CRC of the batch at ``start`` over what its length field claims."""
    if len(batch) - start < 61:
        return
    (length,) = struct.unpack_from(">i", batch, start + 8)
    end = min(len(batch), start + 12 + max(length, 0))
    if end - start < 21:
        return
    struct.pack_into(">I", batch, start + 17, crc32c(memoryview(batch)[start + 21 : end]))


def random_batch(rng: random.Random, codec: str | None = None) -> tuple[bytes, list[Mark]]:
    """One valid batch in ``codec`` (random when None), with its header's marks.

    Records are marked too when the batch is not compressed.
    """
    codec = codec or rng.choice(CODECS)
    records = random_records(rng)
    section, marks = encode_records(records)
    if codec == "snappy" and rng.random() < 0.5:
        payload = _xerial(section)
    else:
        payload = compress(codec, section)
    attributes = rng.choice([0, 0, 0, 0x08, 0x10, 0x20])
    batch = assemble_batch(
        payload,
        len(records),
        _CODEC_IDS[codec],
        base_offset=rng.randint(0, 10**6),
        attributes=attributes,
    )
    all_marks = list(_HEADER_MARKS)
    if codec == "none":
        all_marks += [m.shifted(61) for m in marks]
    return batch, all_marks


def random_batches(rng: random.Random) -> bytes:
    """One to three concatenated batches, in any codecs (for Fetch and Produce bodies)."""
    return b"".join(random_batch(rng)[0] for _ in range(rng.choice([1, 1, 2, 3])))


# -- mutation -----------------------------------------------------------------------------

_BIG = (
    (1 << 31) - 1,
    1 << 31,
    (1 << 32) - 1,
    (1 << 63) - 1,
    1 << 63,
    -(1 << 31),
    -(1 << 63),
    (1 << 15) - 1,
    (1 << 16) - 1,
    (1 << 7) - 1,
    1 << 7,
    (1 << 8) - 1,
)


def _replacement(rng: random.Random, original: int, data_len: int) -> int:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(_BIG)
    if roll < 0.7:
        return rng.choice(
            [0, 1, -1, -2, 2, original + 1, original - 1, original * 2, data_len, data_len + 1]
        )
    if roll < 0.85:
        return original + rng.randint(-16, 16)
    return rng.getrandbits(64) - (1 << 63)


def _read_number(data: bytes | bytearray, mark: Mark) -> int:
    raw = bytes(data[mark.start : mark.end])
    if mark.kind in _FIXED:
        value: int = struct.unpack(_FIXED[mark.kind][1], raw)[0]
        return value
    result = 0
    for shift, byte in enumerate(raw):
        result |= (byte & 0x7F) << (7 * shift)
    if mark.kind == "zz":
        return (result >> 1) ^ -(result & 1)
    return result


def _encode_number(kind: str, value: int, rng: random.Random) -> bytes:
    if kind in _FIXED:
        width, fmt = _FIXED[kind]
        bits = 8 * width
        wrapped = value & ((1 << bits) - 1)
        if wrapped >= 1 << (bits - 1):
            wrapped -= 1 << bits
        return struct.pack(fmt, wrapped)
    if kind == "uv":
        raw = value & ((1 << 64) - 1)
    else:  # zig-zag, of a value wrapped to 64 bits
        wrapped = value & ((1 << 64) - 1)
        if wrapped >= 1 << 63:
            wrapped -= 1 << 64
        raw = ((wrapped << 1) ^ (wrapped >> 63)) & ((1 << 64) - 1)
    encoded = bytearray(encode_uvarint(raw))
    if rng.random() < 0.05:  # an overlong encoding: the same value with padding bytes
        encoded[-1] |= 0x80
        encoded += b"\x80" * rng.randint(0, 8) + b"\x00"
    return bytes(encoded)


def mutate_numbers(
    data: bytes, marks: Sequence[Mark], rng: random.Random, rounds: int = 1
) -> bytes:
    """Rewrite up to ``rounds`` marked numbers (lengths and counts more often than values)."""
    if not marks:
        return data
    sizes = [m for m in marks if m.size]
    chosen: dict[int, Mark] = {}
    for _ in range(rounds):
        pool = sizes if sizes and rng.random() < 0.7 else marks
        mark = rng.choice(pool)
        chosen[mark.start] = mark
    out = bytearray(data)
    for mark in sorted(chosen.values(), key=lambda m: m.start, reverse=True):
        if mark.end > len(out):
            continue
        value = _replacement(rng, _read_number(out, mark), len(data))
        out[mark.start : mark.end] = _encode_number(mark.kind, value, rng)
    return bytes(out)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One byte-level change: flip bits, set, truncate, extend, insert, delete, duplicate."""
    out = bytearray(data)
    op = rng.randrange(8)
    if not out:
        op = 4
    if op == 0:
        for _ in range(rng.choice([1, 1, 2, 8])):
            pos = rng.randrange(len(out))
            out[pos] ^= 1 << rng.randrange(8)
    elif op == 1:
        out[rng.randrange(len(out))] = rng.choice(
            [0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)]
        )
    elif op == 2:
        del out[rng.randrange(len(out)) :]
    elif op == 3:
        del out[len(out) - rng.randint(1, min(len(out), 8)) :]
    elif op == 4:
        pos = rng.randint(0, len(out))
        out[pos:pos] = rng.choice(
            [b"\x00", b"\xff" * 4, b"\x7f\xff\xff\xff", rng.randbytes(rng.randint(1, 16))]
        )
    elif op == 5:
        start = rng.randrange(len(out))
        del out[start : start + rng.randint(1, 16)]
    elif op == 6:
        start = rng.randrange(len(out))
        piece = out[start : start + rng.randint(1, 64)]
        pos = rng.randint(0, len(out))
        out[pos:pos] = piece
    else:
        out += rng.randbytes(rng.randint(1, 32))
    return bytes(out)


def mutate(data: bytes, marks: Sequence[Mark], rng: random.Random) -> bytes:
    """A structural and/or byte-level mutation of a valid encoding (rarely none at all)."""
    roll = rng.random()
    if roll < 0.03:
        return data
    if roll < 0.5:
        return mutate_numbers(data, marks, rng, rounds=rng.choice([1, 1, 1, 2, 3]))
    if roll < 0.75:
        out = mutate_numbers(data, marks, rng)
        return mutate_bytes(out, rng)
    out = data
    for _ in range(rng.choice([1, 1, 2, 4])):
        out = mutate_bytes(out, rng)
    return out


# -- cases and their outcome ----------------------------------------------------------------


@dataclass
class Case:
    """One input for a decoder, and the decoder (a closure over the seed's context)."""

    data: bytes
    decode: Callable[[bytes], object]
    label: str


Outcome = str  # "value", "error" (an allowed exception) or "other"


def run_case(
    case: Case, allowed: tuple[type[BaseException], ...] = (ProtocolError,)
) -> tuple[Outcome, BaseException | None]:
    """Decode ``case``: ("value", None), ("error", the allowed exception) or ("other", it)."""
    try:
        case.decode(case.data)
    except allowed as exc:
        return "error", exc
    except Exception as exc:
        return "other", exc
    return "value", None


@dataclass
class Family:
    """A decoder family: how to make a mutated case of it, and what it may raise."""

    name: str
    make: Callable[[random.Random], Case]
    allowed: tuple[type[BaseException], ...] = (ProtocolError,)
    #: Seeds kept and reused (a seed may be costly: SCRAM derives a key).
    pool_size: int = 200
    _pool: list[Any] = field(default_factory=list, repr=False)


# -- message families -----------------------------------------------------------------------


def _message_seed(cls: type[Message], version: int, rng: random.Random) -> tuple[bytes, list[Mark]]:
    message = random_message(cls, version, rng)
    return encode_marked(message, version)


def _decode_message(cls: type[Message], version: int, strict: bool) -> Callable[[bytes], object]:
    if cls is ApiVersionsResponse:
        return lambda data: ApiVersionsResponse.decode_any(data, version)
    if cls is FetchResponse:

        def fetch(data: bytes) -> object:
            response = schema.decode(FetchResponse, data, version, strict=strict)
            for topic in response.responses:
                for partition in topic.partitions:
                    partition.batches(max_decompressed_bytes=FUZZ_DECOMPRESSION_LIMIT)
            return response

        return fetch
    return lambda data: schema.decode(cls, data, version, strict=strict)


def message_case(cls: type[Message], version: int, rng: random.Random) -> Case:
    """A mutated valid encoding of a random ``cls`` at ``version``."""
    data, marks = _message_seed(cls, version, rng)
    if cls is ApiVersionsResponse and rng.random() < 0.2:
        # KIP-511: an error 35 answer, decoded as v0 whatever was asked.
        data, marks = encode_marked(
            ApiVersionsResponse(35, [ApiVersionRange(18, 0, rng.randint(-2, 5))]), 0
        )
    return Case(
        mutate(data, marks, rng),
        _decode_message(cls, version, rng.random() < 0.3),
        f"{cls.__name__} v{version}",
    )


def _versions(cls: type[Message]) -> list[int]:
    low, high = cls.VERSIONS
    return list(range(low, high + 1))


def _message_family(name: str, classes: Sequence[type[Message]]) -> Family:
    choices = [(cls, v) for cls in classes for v in _versions(cls)]

    def make(rng: random.Random) -> Case:
        cls, version = rng.choice(choices)
        return message_case(cls, version, rng)

    return Family(name, make)


MESSAGE_FAMILIES: dict[str, list[type[Message]]] = {
    "produce": [ProduceResponse],
    "metadata": [MetadataResponse],
    "api_versions": [ApiVersionsResponse],
    "init_producer_id": [InitProducerIdResponse],
    "list_offsets": [ListOffsetsResponse],
    "fetch": [FetchResponse],
    "create_topics": [CreateTopicsResponse],
    "sasl_messages": [SaslHandshakeResponse, SaslAuthenticateResponse],
}


# -- record batches -------------------------------------------------------------------------

# Decompression bombs: a few bytes that stand for more than FUZZ_DECOMPRESSION_LIMIT
# bytes of zeros (each is well within the default limit of 64 MiB, so the fuzz
# limit is what refuses them).
_BOMB_SIZE = 4 * FUZZ_DECOMPRESSION_LIMIT
_bombs: dict[str, bytes] = {}


def bomb(codec: str) -> bytes:
    """Compressed zeros that decompress to four times the fuzz decompression limit."""
    blob = _bombs.get(codec)
    if blob is None:
        zeros = bytes(_BOMB_SIZE)
        blob = _xerial(zeros) if codec == "snappy-xerial" else compress(codec, zeros)
        _bombs[codec] = blob
    return blob


def record_batch_case(codec: str, rng: random.Random) -> Case:
    """A mutated batch (or several) of ``codec``; see the module docstring."""
    codec_id = _CODEC_IDS[codec]
    records = random_records(rng)
    section, marks = encode_records(records)
    count = len(records)
    layer = rng.random()
    crc_fix = rng.random() < 0.85
    header_marks: Sequence[Mark] = ()
    if layer < 0.35:
        # Records mutated before compression: the codec is fine, the records are not.
        section = mutate(section, marks, rng)
        payload = compress(codec, section)
        label = "records"
    elif layer < 0.5:
        # The compressed blob itself corrupted.
        payload = compress(codec, section)
        if codec == "snappy" and rng.random() < 0.5:
            payload = _xerial(section)
        payload = mutate_bytes(payload, rng)
        label = "blob"
    elif layer < 0.6:
        # A bomb, or a nest of codecs: decompressed once, the rest parsed as records.
        if rng.random() < 0.6 and codec != "none":
            payload = bomb("snappy-xerial" if codec == "snappy" and rng.random() < 0.5 else codec)
            count = rng.choice([1, count, 1 << 20, (1 << 31) - 1])
            label = "bomb"
        else:
            inner = compress(rng.choice(CODECS[1:]), section)
            payload = compress(codec, inner)
            label = "nested"
    else:
        payload = compress(codec, section)
        header_marks = list(_HEADER_MARKS) + (
            [m.shifted(61) for m in marks] if codec == "none" else []
        )
        label = "header"
    batch = assemble_batch(
        payload,
        count,
        codec_id,
        base_offset=rng.randint(0, 1 << 40),
        attributes=rng.choice([0, 0x08, 0x10, 0x20]),
    )
    if header_marks:
        batch = mutate(batch, header_marks, rng)
    buffer = bytearray(batch)
    if crc_fix:
        fix_crc(buffer)
    # Neighbours: valid batches before or after, and a cut tail.
    if rng.random() < 0.2:
        buffer = bytearray(random_batch(rng, codec)[0]) + buffer
    if rng.random() < 0.2:
        buffer += random_batch(rng, codec)[0]
    if rng.random() < 0.1:
        del buffer[rng.randrange(len(buffer) + 1) :]
    verify = rng.random() < 0.9
    partial = rng.random() < 0.7

    def decode(data: bytes) -> object:
        return decode_batches(
            data,
            verify_crc=verify,
            max_decompressed_bytes=FUZZ_DECOMPRESSION_LIMIT,
            allow_partial_tail=partial,
        )

    return Case(bytes(buffer), decode, f"records {codec} {label}")


def _records_family(codec: str) -> Family:
    return Family(f"records_{codec}", lambda rng: record_batch_case(codec, rng))


# -- framing: ClientProtocol ------------------------------------------------------------------

_MINIMAL_REQUESTS: dict[int, Message] = {
    0: ProduceRequest(),
    1: FetchRequest(),
    2: ListOffsetsRequest(),
    3: MetadataRequest(None),
    17: SaslHandshakeRequest("PLAIN"),
    18: ApiVersionsRequest(),
    19: CreateTopicsRequest([]),
    22: InitProducerIdRequest(),
    36: SaslAuthenticateRequest(b""),
}


def frame_case(rng: random.Random) -> Case:
    """Response frames (size, header, body) for requests in flight, mutated and fed in pieces."""
    exchanges = []
    frames = bytearray()
    marks: list[Mark] = []
    for correlation_id in range(rng.choice([1, 1, 2, 3])):
        api_key = rng.choice(sorted(_MINIMAL_REQUESTS))
        cls = apis.response_class(api_key)
        version = rng.choice(_versions(cls))
        body, body_marks = _message_seed(cls, version, rng)
        header = MarkingWriter()
        header.int32(correlation_id)
        if cls.is_flexible(version) and api_key != 18:
            header.tagged_fields()
        start = len(frames)
        frames += struct.pack(">i", len(header.buffer) + len(body))
        marks.append(Mark(start, start + 4, "i32", size=True))
        marks += [m.shifted(start + 4) for m in header.marks]
        marks += [m.shifted(start + 4 + len(header.buffer)) for m in body_marks]
        frames += header.buffer + body
        exchanges.append((api_key, version))
    data = mutate(bytes(frames), marks, rng)
    limit = rng.choice([1 << 20, 100 << 20])
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.choice([0, 1, 3])))

    def decode(data: bytes) -> object:
        protocol = ClientProtocol("fuzz", max_response_size=limit)
        for api_key, version in exchanges:
            protocol.frame(_MINIMAL_REQUESTS[api_key], version)
        responses = []
        start = 0
        for cut in [*cuts, len(data)]:
            protocol.receive_data(data[start:cut])
            start = cut
            protocol.bytes_needed()
            while (response := protocol.next_response()) is not None:
                responses.append(response)
        return responses

    return Case(data, decode, "frames")


# -- SASL -------------------------------------------------------------------------------------

CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = CLIENT_NONCE + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
_SASL_VERSIONS = {17: (1, 1), 36: (0, 2)}


@dataclass
class _ScramSeed:
    """A SCRAM exchange up to client-final, and the valid server messages."""

    mechanism: str
    server_first: str
    server_final: str
    after_first: ScramMechanism  # a mechanism in the "final-sent" state


def _server_signature(
    digest: str, password: str, salt: bytes, iterations: int, auth_message: bytes
) -> bytes:
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)
    server_key = hmac.new(salted, b"Server Key", digest).digest()
    return hmac.new(server_key, auth_message, digest).digest()


def scram_seed(rng: random.Random) -> _ScramSeed:
    """A valid SCRAM exchange (SHA-256 or SHA-512) with a random salt and nonce."""
    mechanism = rng.choice(["SCRAM-SHA-256", "SCRAM-SHA-512"])
    digest = "sha256" if mechanism == "SCRAM-SHA-256" else "sha512"
    salt = SALT if rng.random() < 0.5 else rng.randbytes(rng.choice([1, 16, 32]))
    nonce = (
        SERVER_NONCE
        if rng.random() < 0.5
        else CLIENT_NONCE + base64.b64encode(rng.randbytes(12)).decode()
    )
    iterations = 4096
    server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={iterations}"
    client = ScramMechanism(mechanism, "user", "pencil", nonce=CLIENT_NONCE)
    client.initial_response()
    final = client.evaluate(server_first.encode())
    assert final is not None
    without_proof = final.rsplit(b",p=", 1)[0].decode()
    auth_message = f"n=user,r={CLIENT_NONCE},{server_first},{without_proof}".encode()
    signature = _server_signature(digest, "pencil", salt, iterations, auth_message)
    server_final = "v=" + base64.b64encode(signature).decode()
    return _ScramSeed(mechanism, server_first, server_final, client)


_COUNTS = [
    "0", "1", "4095", "4096", "16384", "16385", "2000000000", "2147483647", "2147483648",
    "99999999999", "9" * 19, "1" + "0" * 40, "9" * 5000, "-4096", "+4096", " 4096", "4096 ",
    "4_096", "04096", "٤٠٩٦", "", "0x1000", "4096.0", "1e4",
]  # fmt: skip


def _mutate_scram_text(text: str, rng: random.Random) -> bytes:
    """Mutations of a SCRAM message that keep or break its attribute structure."""
    parts = text.split(",")
    roll = rng.random()
    if roll < 0.3 and any(p.startswith("i=") for p in parts):
        parts = [f"i={rng.choice(_COUNTS)}" if p.startswith("i=") else p for p in parts]
    elif roll < 0.45:
        index = rng.randrange(len(parts))
        name = parts[index][:2]
        parts[index] = name + rng.choice(
            ["", "=", "=3D", "!!!", "é", "\x00", "A" * 3000, parts[index][2:] * 2, "abc=="]
        )
    elif roll < 0.55:
        parts.insert(
            rng.randint(0, len(parts)),
            rng.choice(["m=ext", "x=1", "r=again", "e=other", "", "=", "ab=c"]),
        )
    elif roll < 0.62 and len(parts) > 1:
        del parts[rng.randrange(len(parts))]
    elif roll < 0.68:
        rng.shuffle(parts)
    data = ",".join(parts).encode("utf-8", "surrogatepass")
    if rng.random() < 0.35:
        data = mutate_bytes(data, rng)
    return data


def sasl_case(pool: list[_ScramSeed], rng: random.Random) -> Case:
    """SCRAM server-first/final messages, PLAIN tokens, and whole SASL responses."""
    roll = rng.random()
    if roll < 0.4:
        seed = rng.choice(pool)

        def server_first(data: bytes, mechanism: str = seed.mechanism) -> object:
            client = ScramMechanism(mechanism, "user", "pencil", nonce=CLIENT_NONCE)
            client.initial_response()
            return client.evaluate(data)

        return Case(_mutate_scram_text(seed.server_first, rng), server_first, "scram server-first")
    if roll < 0.7:
        seed = rng.choice(pool)
        text = (
            seed.server_final
            if rng.random() < 0.85
            else f"e={rng.choice(['invalid-proof', 'other-error', 'x' * 500])}"
        )

        def server_final(data: bytes, prepared: ScramMechanism = seed.after_first) -> object:
            return copy.copy(prepared).evaluate(data)

        return Case(_mutate_scram_text(text, rng), server_final, "scram server-final")
    if roll < 0.78:
        token = rng.choice([b"", b"\x00", b"unexpected"])

        def plain(data: bytes) -> object:
            return PlainMechanism("user", "pencil").evaluate(data)

        return Case(mutate_bytes(token, rng) if rng.random() < 0.5 else token, plain, "plain token")
    # Whole responses through the authenticator: handshake, then authenticate,
    # with a broker error message (what PLAIN and OAUTHBEARER failures carry)
    # or a SCRAM token.
    handshake = rng.random() < 0.4
    mechanism = rng.choice(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    if handshake:
        version = 1
        message: Message = SaslHandshakeResponse(
            rng.choice([0, 0, 33, 34, 58, -1, 32767]),
            [_random_text(rng) for _ in range(rng.choice([0, 1, 3, 40]))],
        )
    else:
        version = rng.randint(0, 2)
        seed = rng.choice(pool)
        error = rng.choice([0, 0, 58, 34, -1])
        error_message = rng.choice(
            [
                None,
                "Authentication failed: Invalid username or password",
                '{"status":"invalid_token","scope":"","openid-configuration":""}',
                "x" * 5000,
                _random_text(rng),
            ]
        )
        token = rng.choice([b"", seed.server_first.encode(), seed.server_final.encode()])
        message = SaslAuthenticateResponse(
            error, error_message, token, rng.choice([0, -1, 1 << 62])
        )
    data, marks = encode_marked(message, version)
    data = mutate(data, marks, rng)
    cls = type(message)

    def exchange(data: bytes) -> object:
        response = schema.decode(cls, data, version, strict=False)
        if mechanism == "PLAIN":
            client: Any = PlainMechanism("user", "pencil")
        else:
            client = ScramMechanism(mechanism, "user", "pencil", nonce=CLIENT_NONCE)
        authenticator = SaslAuthenticator(client, "fuzz:9092", dict(_SASL_VERSIONS), user="user")
        if not handshake:
            authenticator.handle(SaslHandshakeResponse(0, [mechanism]))
        return authenticator.handle(response)

    return Case(data, exchange, f"sasl {cls.__name__} v{version}")


def _sasl_family() -> Family:
    family = Family(
        "sasl",
        lambda rng: sasl_case([], rng),
        allowed=(ProtocolError, AuthenticationError),
        pool_size=24,
    )

    def make(rng: random.Random) -> Case:
        pool = family._pool
        if len(pool) < family.pool_size:
            pool.append(scram_seed(rng))
        elif rng.random() < 0.002:
            pool[rng.randrange(len(pool))] = scram_seed(rng)
        return sasl_case(pool, rng)

    family.make = make
    return family


# -- the families ---------------------------------------------------------------------------


def build_families() -> dict[str, Family]:
    families = {name: _message_family(name, classes) for name, classes in MESSAGE_FAMILIES.items()}
    families["sasl_messages"].allowed = (ProtocolError,)
    families["sasl"] = _sasl_family()
    for codec in CODECS:
        families[f"records_{codec}"] = _records_family(codec)
    families["frames"] = Family("frames", frame_case)
    return families


FAMILIES = build_families()
