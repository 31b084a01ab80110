"""Structure-aware fuzzing of the record batch decoder, in every codec.

Batches are assembled by :mod:`tests.fuzzing` (not by the library's encoder)
with every varint of every record marked, then mutated: records before
compression (the codec is sound, the records are not), the compressed blob,
the header's numbers, with the CRC recomputed most of the time so that the
decoder gets past it; nested codecs and decompression bombs replace the
records now and then. Decoding must return batches or raise ProtocolError,
allocate nothing for a count or length it has not checked, and refuse a bomb
by its size.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
import zlib
from collections.abc import Callable

import lz4.frame
import pytest
import snappy
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sink.errors import ProtocolError
from kafka_sink.protocol.codecs import Compression, decompress
from kafka_sink.protocol.records import DEFAULT_MAX_DECOMPRESSED_BYTES, decode_batches
from tests.fuzzing import (
    CODECS,
    FUZZ_DECOMPRESSION_LIMIT,
    assemble_batch,
    bomb,
    compress,
    encode_records,
    random_records,
    record_batch_case,
    run_case,
)

CODEC_IDS = {name: index for index, name in enumerate(CODECS)}


@pytest.mark.parametrize("codec", CODECS)
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rng=st.randoms(use_true_random=False))
def test_mutated_batches_decode_or_raise_protocol_error(codec: str, rng: random.Random) -> None:
    case = record_batch_case(codec, rng)
    outcome, error = run_case(case)
    assert outcome != "other", f"{case.label}: {error!r} on {case.data.hex()}"


@pytest.mark.parametrize("codec", CODECS)
def test_assembled_batches_decode_to_their_records(codec: str) -> None:
    rng = random.Random(codec)
    for _ in range(20):
        records = random_records(rng)
        section, _ = encode_records(records)
        batch = assemble_batch(compress(codec, section), len(records), CODEC_IDS[codec])
        [decoded] = decode_batches(batch)
        assert [(r.key, r.value) for r in decoded.records] == [(k, v) for _, k, v, _ in records]
        assert [r.offset for r in decoded.records] == list(range(len(records)))


# -- bombs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["gzip", "snappy", "snappy-xerial", "lz4", "zstd"])
def test_a_bomb_is_refused_by_size_with_little_memory(codec: str) -> None:
    name = "snappy" if codec == "snappy-xerial" else codec
    batch = assemble_batch(bomb(codec), 1, CODEC_IDS[name])
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="possible decompression bomb"):
            decode_batches(batch, max_decompressed_bytes=FUZZ_DECOMPRESSION_LIMIT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The bomb stands for four times the limit: what was decompressed before
    # the refusal stays near the limit.
    assert peak < 3 * FUZZ_DECOMPRESSION_LIMIT


def _zeros_bomb(codec: str, size: int) -> bytes:
    """Compressed zeros standing for ``size`` bytes, built without allocating ``size``."""
    chunk = 1 << 20
    if codec == "gzip":  # concatenated members, as gzip readers accept
        return compress("gzip", bytes(chunk)) * (size // chunk)
    if codec == "zstd":  # concatenated frames, likewise
        return zstandard.ZstdCompressor().compress(bytes(chunk)) * (size // chunk)
    if codec == "snappy-xerial":
        block: bytes = snappy.compress(bytes(32 * 1024))
        header = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
        return header + (struct.pack(">i", len(block)) + block) * (size // (32 * 1024))
    compressor = lz4.frame.LZ4FrameCompressor(block_linked=False)
    parts = [compressor.begin()]
    parts += [compressor.compress(bytes(chunk)) for _ in range(size // chunk)]
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.mark.parametrize("codec", ["gzip", "snappy-xerial", "lz4", "zstd"])
def test_the_default_limit_refuses_a_bomb_just_past_it(codec: str) -> None:
    blob = _zeros_bomb(codec, DEFAULT_MAX_DECOMPRESSED_BYTES + (1 << 20))
    assert len(blob) < DEFAULT_MAX_DECOMPRESSED_BYTES // 20
    name = "snappy" if codec == "snappy-xerial" else codec
    with pytest.raises(ProtocolError, match="decompresses to more than 67108864 bytes"):
        decode_batches(assemble_batch(blob, 1, CODEC_IDS[name]))


def test_a_raw_snappy_block_claiming_more_than_it_can_hold_is_refused_first() -> None:
    # 65011712 bytes claimed by a 5-byte block: snappy cannot expand that much
    # (a 3-byte copy makes at most 64 bytes), so the library never allocates it.
    with pytest.raises(ProtocolError, match="more than snappy can encode"):
        decompress(Compression.SNAPPY, b"\x80\x80\x80\x1f\x00", DEFAULT_MAX_DECOMPRESSED_BYTES)
    big = snappy.compress(bytes(1 << 20))  # about 21x: within what snappy can encode
    assert decompress(Compression.SNAPPY, big, DEFAULT_MAX_DECOMPRESSED_BYTES) == bytes(1 << 20)


def test_nested_codecs_are_decompressed_once() -> None:
    records = random_records(random.Random(7), 3)
    section, _ = encode_records(records)
    inner = zlib.compress(section)
    batch = assemble_batch(compress("lz4", compress("gzip", inner)), 3, CODEC_IDS["lz4"])
    # The gzip blob inside is taken for records, and refused as such.
    with pytest.raises(ProtocolError):
        decode_batches(batch)


# -- counts and lengths: refused before anything is allocated for them --------------------------


def _peak(decode: Callable[[bytes], object], data: bytes) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    try:
        decode(data)
        error = None
    except ProtocolError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


def _record(body: bytes) -> bytes:
    """A record: its zig-zag length, then the body."""
    return bytes(((2 * len(body)) & 0x7F,)) + body if len(body) < 64 else b""


# attributes, timestamp delta 0, offset delta 0, then what follows
HUGE_RECORDS = {
    "record count": (b"\x0c" + b"\x00\x00\x00\x01\x01\x00", (1 << 31) - 1),
    "key length": (_record(b"\x00\x00\x00" + b"\xfe\xff\xff\xff\x0f" + b"\x01\x00"), 1),
    "value length": (_record(b"\x00\x00\x00\x01" + b"\xfe\xff\xff\xff\x0f" + b"\x00"), 1),
    "header count": (_record(b"\x00\x00\x00\x01\x01" + b"\xfe\xff\xff\xff\x0f"), 1),
    "header key length": (_record(b"\x00\x00\x00\x01\x01\x02" + b"\xfe\xff\xff\xff\x0f"), 1),
    "record length": (b"\xfe\xff\xff\xff\x0f" + b"\x00" * 7, 1),
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("what", sorted(HUGE_RECORDS))
def test_a_count_or_length_of_two_billion_allocates_nothing_for_it(codec: str, what: str) -> None:
    section, count = HUGE_RECORDS[what]
    assert section
    batch = assemble_batch(compress(codec, section), count, CODEC_IDS[codec])
    peak, error = _peak(decode_batches, batch)
    assert isinstance(error, ProtocolError), what
    # A fixed cost (the codec's state and buffers), nothing near 2**31.
    assert peak < 256 * 1024, (what, peak)


def test_a_batch_length_of_two_gigabytes_is_a_partial_tail_or_an_error() -> None:
    records = random_records(random.Random(3), 2)
    section, _ = encode_records(records)
    batch = assemble_batch(section, 2, 0, length=(1 << 31) - 1)
    assert decode_batches(batch) == []  # a Fetch response may cut its last batch
    with pytest.raises(ProtocolError, match="truncated batch"):
        decode_batches(batch, allow_partial_tail=False)


@pytest.mark.parametrize(
    ("varint", "field"),
    [
        (b"\xfe\xff\xff\xff\x1f", "offset delta"),  # 2**32 - 1 after zig-zag: not an int32
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "timestamp delta"),  # 70 bits
    ],
)
def test_a_varint_wider_than_its_field_is_refused(varint: bytes, field: str) -> None:
    if field == "offset delta":
        body = b"\x00\x00" + varint + b"\x01\x01\x00"
    else:
        body = b"\x00" + varint + b"\x00\x01\x01\x00"
    section = bytes((2 * len(body),)) + body
    with pytest.raises(ProtocolError, match="does not fit in"):
        decode_batches(assemble_batch(section, 1, 0))
