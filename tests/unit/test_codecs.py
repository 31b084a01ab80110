"""Tests of kafka_sink.protocol.codecs: wire formats, round trips, bounded decompression.

The wire formats are checked against code that does not share the compressor
under test: the LZ4 frame is parsed here field by field (with a small xxHash32
for the header checksum) and its blocks decoded by ``lz4.block``; snappy blocks
are decoded by the small pure-Python decoder below; ``cramjam``'s own bindings
and the standard library's ``gzip`` decode what we write and write what we read.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import cramjam
import lz4.block
import lz4.frame
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sink.errors import InvalidArgumentError, ProtocolError
from kafka_sink.protocol import codecs
from kafka_sink.protocol.codecs import Compression, compress, decompress

CODECS = [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]
ALL_CODECS = [Compression.NONE, *CODECS]
XERIAL_HEADER = bytes.fromhex("82 53 4e 41 50 50 59 00 00000001 00000001")
LZ4_KAFKA_HEADER = bytes.fromhex("04 22 4d 18 60 40 82")
MiB = 1 << 20


def log_lines(count: int) -> bytes:
    return b"".join(
        b'{"ts":"2024-05-01T12:00:%02d.%03dZ","level":"INFO","logger":"app.http",'
        b'"msg":"GET /api/v1/items/%d 200","ms":%d}\n' % (i % 60, i % 1000, i * 7919, i % 97)
        for i in range(count)
    )


# -- independent reference implementations -----------------------------------------


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32, written from the algorithm's description (for the LZ4 header checksum)."""
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    mask = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    def lane(v: int, word: int) -> int:
        return rotl((v + word * p2) & mask, 13) * p1 & mask

    n = len(data)
    pos = 0
    if n >= 16:
        v = [(seed + p1 + p2) & mask, (seed + p2) & mask, seed, (seed - p1) & mask]
        while pos + 16 <= n:
            for i in range(4):
                v[i] = lane(v[i], int.from_bytes(data[pos : pos + 4], "little"))
                pos += 4
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & mask
    else:
        h = (seed + p5) & mask
    h = (h + n) & mask
    while pos + 4 <= n:
        h = (h + int.from_bytes(data[pos : pos + 4], "little") * p3) & mask
        h = rotl(h, 17) * p4 & mask
        pos += 4
    while pos < n:
        h = (h + data[pos] * p5) & mask
        h = rotl(h, 11) * p1 & mask
        pos += 1
    h ^= h >> 15
    h = h * p2 & mask
    h ^= h >> 13
    h = h * p3 & mask
    h ^= h >> 16
    return h


def test_xxh32_reference_values() -> None:
    # Published test values of xxHash32.
    assert xxh32(b"") == 0x02CC5D05
    assert xxh32(b"a") == 0x550D7456
    assert xxh32(b"abc") == 0x32D153FF
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F


def parse_kafka_lz4_frame(frame: bytes) -> list[bytes]:
    """Parse an LZ4 frame as Kafka's Java reader would; return the decoded blocks."""
    assert frame[:4] == b"\x04\x22\x4d\x18", "LZ4 frame magic"
    flg, bd, hc = frame[4], frame[5], frame[6]
    assert flg >> 6 == 1, "version 01"
    assert flg & 0x20, "independent blocks (the Java reader rejects linked blocks)"
    assert not flg & 0x10, "no block checksums"
    assert not flg & 0x08, "no content size"
    assert not flg & 0x04, "no content checksum"
    assert bd == 0x40, "64 KiB maximum block size"
    assert hc == (xxh32(frame[4:6]) >> 8) & 0xFF, "header checksum over FLG and BD only"
    pos = 7
    blocks = []
    while True:
        (size,) = struct.unpack_from("<I", frame, pos)
        pos += 4
        if size == 0:
            break
        stored = size & 0x80000000
        size &= 0x7FFFFFFF
        assert size <= 65536
        block = frame[pos : pos + size]
        assert len(block) == size
        pos += size
        decoded = block if stored else lz4.block.decompress(block, uncompressed_size=65536)
        assert len(decoded) <= 65536
        blocks.append(decoded)
    assert pos == len(frame), "nothing after the end mark"
    return blocks


def snappy_decode_block(block: bytes) -> bytes:
    """Decode one raw snappy block (format_description.txt of the snappy project)."""
    length = 0
    shift = 0
    pos = 0
    while True:
        byte = block[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    out = bytearray()
    while pos < len(block):
        tag = block[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                size = int.from_bytes(block[pos : pos + extra], "little")
                pos += extra
            size += 1
            out += block[pos : pos + size]
            pos += size
            continue
        if kind == 1:
            size = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | block[pos]
            pos += 1
        elif kind == 2:
            size = (tag >> 2) + 1
            offset = int.from_bytes(block[pos : pos + 2], "little")
            pos += 2
        else:
            size = (tag >> 2) + 1
            offset = int.from_bytes(block[pos : pos + 4], "little")
            pos += 4
        assert 0 < offset <= len(out)
        for _ in range(size):  # copies may overlap their own output
            out.append(out[-offset])
    assert len(out) == length
    return bytes(out)


def snappy_literal_block(data: bytes) -> bytes:
    """A valid raw snappy block made of literals only (no compressor involved)."""
    out = bytearray()
    n = len(data)
    while True:
        out.append((n & 0x7F) | (0x80 if n >= 0x80 else 0))
        n >>= 7
        if not n:
            break
    for start in range(0, len(data), 60):
        chunk = data[start : start + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def parse_xerial(stream: bytes) -> list[bytes]:
    assert stream[:16] == XERIAL_HEADER
    pos = 16
    blocks = []
    while pos < len(stream):
        (size,) = struct.unpack_from(">i", stream, pos)
        pos += 4
        blocks.append(stream[pos : pos + size])
        pos += size
    assert pos == len(stream)
    return blocks


def xerial(blocks: list[bytes]) -> bytes:
    return XERIAL_HEADER + b"".join(struct.pack(">i", len(b)) + b for b in blocks)


# -- names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("none", Compression.NONE),
        ("gzip", Compression.GZIP),
        ("GZIP", Compression.GZIP),
        ("Snappy", Compression.SNAPPY),
        ("lz4", Compression.LZ4),
        ("zstd", Compression.ZSTD),
        (" zstd ", Compression.ZSTD),
    ],
)
def test_from_name(name: str, codec: Compression) -> None:
    assert Compression.from_name(name) is codec


def test_codec_ids_are_the_attribute_values() -> None:
    assert [int(c) for c in ALL_CODECS] == [0, 1, 2, 3, 4]
    assert [c.name for c in ALL_CODECS] == ["NONE", "GZIP", "SNAPPY", "LZ4", "ZSTD"]


@pytest.mark.parametrize("name", ["", "lz4hc", "brotli", "producer", "uncompressed", 3, None])
def test_from_name_rejects_others(name: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Compression.from_name(name)  # type: ignore[arg-type]  # wrong names and types on purpose
    argument = info.value.argument
    assert argument == "compression"
    assert "compression" in str(info.value)


# -- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("codec", ALL_CODECS)
@pytest.mark.parametrize("size", [0, 1, 100, 32 * 1024, 32 * 1024 + 1, 65536, 200_000])
def test_round_trip_sizes(codec: Compression, size: int) -> None:
    data = (log_lines(size // 100 + 1) + bytes(range(256)) * 4)[:size]
    blob = compress(codec, data)
    assert isinstance(blob, bytes)
    assert decompress(codec, blob, max_size=size) == data


@settings(max_examples=60, deadline=None)
@given(codec=st.sampled_from(ALL_CODECS), data=st.binary(max_size=5000))
def test_round_trip_property(codec: Compression, data: bytes) -> None:
    assert decompress(codec, compress(codec, data), max_size=len(data)) == data


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_accepts_any_buffer(codec: Compression) -> None:
    data = log_lines(20)
    for buffer in (bytearray(data), memoryview(data)):
        blob = compress(codec, buffer)
        assert decompress(codec, memoryview(blob), len(data)) == data
        assert decompress(codec, bytearray(blob), len(data)) == data


def test_compress_accepts_codec_ids() -> None:
    data = log_lines(3)
    blob = compress(3, data)  # type: ignore[arg-type]  # a codec id works as well
    assert decompress(3, blob, 10_000) == data  # type: ignore[arg-type]  # so it does here
    with pytest.raises(InvalidArgumentError):
        compress(7, data)  # type: ignore[arg-type]  # an unknown codec id on purpose
    with pytest.raises(InvalidArgumentError):
        decompress(Compression.GZIP, b"", max_size=-1)


# -- gzip ----------------------------------------------------------------------


def test_gzip_is_a_gzip_stream_at_level_6() -> None:
    data = log_lines(200)
    blob = compress(Compression.GZIP, data)
    assert blob[:3] == b"\x1f\x8b\x08"  # gzip magic, deflate
    assert blob[8] == 0  # XFL: neither the fastest (4) nor the best (2) level
    assert gzip.decompress(blob) == data
    zobj = zlib.compressobj(6, zlib.DEFLATED, 31)
    assert blob == zobj.compress(data) + zobj.flush()


def test_gzip_reads_foreign_streams_and_members() -> None:
    data = log_lines(50)
    assert decompress(Compression.GZIP, gzip.compress(data, 9), len(data)) == data
    two = gzip.compress(data[:100]) + gzip.compress(data[100:])
    assert decompress(Compression.GZIP, two, len(data)) == data
    assert decompress(Compression.GZIP, bytes(cramjam.gzip.compress(data)), len(data)) == data


# -- lz4 -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, 65536, 65537, 300_000])
def test_lz4_frame_is_what_kafka_writes(size: int) -> None:
    data = (log_lines(size // 100 + 1) + bytes(range(256)) * 200)[:size]
    frame = compress(Compression.LZ4, data)
    assert frame[:7] == LZ4_KAFKA_HEADER
    blocks = parse_kafka_lz4_frame(frame)
    assert b"".join(blocks) == data
    assert all(len(b) == 65536 for b in blocks[:-1])
    assert bytes(cramjam.lz4.decompress(frame)) == data


def test_lz4_header_checksum_pinned() -> None:
    # FLG 0x60 (version 1, independent blocks), BD 0x40 (64 KiB): HC is 0x82.
    assert (xxh32(b"\x60\x40") >> 8) & 0xFF == 0x82


def test_lz4_incompressible_block_is_stored() -> None:
    data = bytes(cramjam.zstd.compress(log_lines(2000)))[:50_000]  # looks random
    frame = compress(Compression.LZ4, data)
    assert b"".join(parse_kafka_lz4_frame(frame)) == data


@pytest.mark.parametrize(
    "options",
    [
        {},  # the library's defaults: linked blocks, content size stored
        {"block_linked": False, "store_size": False},
        {"content_checksum": True, "block_checksum": True},
        {"block_size": lz4.frame.BLOCKSIZE_MAX4MB, "compression_level": 9},
    ],
)
def test_lz4_reads_other_frame_flavours(options: dict[str, object]) -> None:
    data = log_lines(3000)
    frame = lz4.frame.compress(data, **options)
    assert decompress(Compression.LZ4, frame, len(data)) == data


def test_lz4_reads_cramjam_frames() -> None:
    data = log_lines(3000)
    frame = bytes(cramjam.lz4.compress(data))
    assert decompress(Compression.LZ4, frame, len(data)) == data


# -- snappy --------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 32 * 1024, 32 * 1024 + 1, 100_000])
def test_snappy_writes_xerial_framing(size: int) -> None:
    data = (log_lines(size // 100 + 1) + bytes(range(256)) * 100)[:size]
    stream = compress(Compression.SNAPPY, data)
    assert stream[:16] == XERIAL_HEADER
    blocks = parse_xerial(stream)
    decoded = [snappy_decode_block(b) for b in blocks]
    assert [bytes(cramjam.snappy.decompress_raw(b)) for b in blocks] == decoded
    assert b"".join(decoded) == data
    assert all(len(d) == 32 * 1024 for d in decoded[:-1])
    assert all(0 < len(d) <= 32 * 1024 for d in decoded)
    assert len(blocks) == -(-size // (32 * 1024))


def test_snappy_reads_raw_blocks_as_librdkafka_writes() -> None:
    data = log_lines(500)
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert decompress(Compression.SNAPPY, raw, len(data)) == data
    assert decompress(Compression.SNAPPY, snappy_literal_block(data), len(data)) == data


def test_snappy_reads_xerial_built_elsewhere() -> None:
    data = log_lines(1000)
    chunks = [data[i : i + 20_000] for i in range(0, len(data), 20_000)]
    foreign = xerial([bytes(cramjam.snappy.compress_raw(c)) for c in chunks])
    assert decompress(Compression.SNAPPY, foreign, len(data)) == data
    literal = xerial([snappy_literal_block(c) for c in chunks])
    assert decompress(Compression.SNAPPY, literal, len(data)) == data
    assert decompress(Compression.SNAPPY, XERIAL_HEADER, 0) == b""


@pytest.mark.parametrize(
    "stream",
    [
        XERIAL_HEADER[:12],
        XERIAL_HEADER + b"\x00\x00",
        XERIAL_HEADER + struct.pack(">i", 0),
        XERIAL_HEADER + struct.pack(">i", -5) + b"abc",
        XERIAL_HEADER + struct.pack(">i", 100) + b"abc",
        b"",
        b"\x80",
        b"\xff\xff\xff\xff\xff\x01",
        b"\x05ab",
        b"\x0a\x00",
    ],
)
def test_snappy_rejects_malformed(stream: bytes) -> None:
    with pytest.raises(ProtocolError):
        decompress(Compression.SNAPPY, stream, 1000)


# -- zstd ----------------------------------------------------------------------


def test_zstd_is_one_frame() -> None:
    data = log_lines(500)
    blob = compress(Compression.ZSTD, data)
    assert blob[:4] == b"\x28\xb5\x2f\xfd"
    assert zstandard.frame_content_size(blob) == len(data)
    assert bytes(cramjam.zstd.decompress(blob)) == data
    assert zstandard.ZstdDecompressor().decompress(blob, read_across_frames=False) == data


def test_zstd_reads_foreign_and_streamed_frames() -> None:
    data = log_lines(2000)
    assert decompress(Compression.ZSTD, bytes(cramjam.zstd.compress(data)), len(data)) == data
    cobj = zstandard.ZstdCompressor(level=19, write_content_size=False).compressobj()
    streamed = cobj.compress(data) + cobj.flush()
    assert zstandard.frame_content_size(streamed) == -1
    assert decompress(Compression.ZSTD, streamed, len(data)) == data
    two = compress(Compression.ZSTD, data[:1000]) + compress(Compression.ZSTD, data[1000:])
    assert decompress(Compression.ZSTD, two, len(data)) == data


def test_zstd_compressors_are_reused() -> None:
    data = log_lines(10)
    for _ in range(20):
        compress(Compression.ZSTD, data)
    assert 1 <= len(codecs._zstd_pools[None]) <= codecs._ZSTD_POOL_SIZE


# -- corrupt input ---------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_input_is_a_protocol_error(codec: Compression) -> None:
    data = log_lines(300)
    blob = compress(codec, data)
    for cut in (1, 2, 5, len(blob) // 2, len(blob) - 1):
        with pytest.raises(ProtocolError):
            decompress(codec, blob[:cut], len(data))


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_trailing_garbage_is_a_protocol_error(codec: Compression) -> None:
    data = log_lines(30)
    with pytest.raises(ProtocolError, match=r"garbage|corrupt"):
        decompress(codec, compress(codec, data) + b"garbage!", len(data))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codec=st.sampled_from(CODECS), data=st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_protocol_error(codec: Compression, data: bytes) -> None:
    try:
        out = decompress(codec, data, 10_000)
    except ProtocolError:
        return
    assert len(out) <= 10_000


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    codec=st.sampled_from(CODECS),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4),
    cut=st.none() | st.integers(0, 10**6),
)
def test_damaged_streams_decode_or_raise_protocol_error(
    codec: Compression, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = log_lines(80)
    blob = bytearray(compress(codec, data))
    for where, xor in flips:
        blob[where % len(blob)] ^= xor
    if cut is not None:
        del blob[cut % (len(blob) + 1) :]
    try:
        out = decompress(codec, bytes(blob), 2 * len(data))
    except ProtocolError:
        return
    assert len(out) <= 2 * len(data)


# -- decompression bombs -------------------------------------------------------


def zeros_bomb(codec: Compression, size: int) -> bytes:
    """``size`` zero bytes compressed, produced in slices to keep memory low."""
    chunk = bytes(MiB)
    if codec == Compression.GZIP:
        zobj = zlib.compressobj(6, zlib.DEFLATED, 31)
        return b"".join([zobj.compress(chunk) for _ in range(size // MiB)] + [zobj.flush()])
    if codec == Compression.LZ4:
        lz = lz4.frame.LZ4FrameCompressor(block_linked=False)
        parts = [lz.begin()] + [lz.compress(chunk) for _ in range(size // MiB)]
        return b"".join([*parts, lz.flush()])
    if codec == Compression.ZSTD:
        zstd = zstandard.ZstdCompressor(write_content_size=False).compressobj()
        return b"".join([zstd.compress(chunk) for _ in range(size // MiB)] + [zstd.flush()])
    block = bytes(cramjam.snappy.compress_raw(bytes(32 * 1024)))
    return xerial([block] * (size // (32 * 1024)))


@pytest.mark.parametrize("codec", CODECS)
def test_bomb_is_refused_within_budget(codec: Compression) -> None:
    bomb = zeros_bomb(codec, 64 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="more than 1048576 bytes"):
            decompress(codec, bomb, max_size=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB + 2 * len(bomb)


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_output_of_exactly_max_size_is_accepted(codec: Compression) -> None:
    data = log_lines(100)
    blob = compress(codec, data)
    assert decompress(codec, blob, len(data)) == data
    with pytest.raises(ProtocolError, match="decompression bomb"):
        decompress(codec, blob, len(data) - 1)


def test_snappy_length_claims_are_checked_before_allocating() -> None:
    claim = b"\xff\xff\xff\xff\x0f" + b"\x00" * 10  # 4 GiB - 1 claimed
    with pytest.raises(ProtocolError, match="decompression bomb"):
        decompress(Compression.SNAPPY, claim, MiB)
    with pytest.raises(ProtocolError, match="decompression bomb"):
        decompress(Compression.SNAPPY, xerial([claim]), MiB)


def test_zstd_content_size_claims_do_not_allocate() -> None:
    data = bytes(10 * MiB)
    blob = zstandard.ZstdCompressor().compress(data)  # declares 10 MiB
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError):
            decompress(Compression.ZSTD, blob, MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB


def test_lz4_content_size_claims_do_not_allocate() -> None:
    # A frame that declares 1 TiB of content but holds 10 bytes.
    descriptor = bytes([0x68, 0x40]) + (1 << 40).to_bytes(8, "little")
    header = b"\x04\x22\x4d\x18" + descriptor + bytes([(xxh32(descriptor) >> 8) & 0xFF])
    frame = header + struct.pack("<I", 0x8000000A) + b"0123456789" + b"\x00" * 4
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError):
            decompress(Compression.LZ4, frame, MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB


@pytest.mark.parametrize("codec", CODECS)
def test_bomb_memory_in_a_fresh_process(codec: Compression, tmp_path: Path) -> None:
    """Peak RSS, which counts every allocator (Rust, C), stays near the budget."""
    path = tmp_path / "bomb"
    path.write_bytes(zeros_bomb(codec, 256 * MiB))
    script = textwrap.dedent(
        f"""
        import resource, sys
        from kafka_sink.errors import ProtocolError
        from kafka_sink.protocol.codecs import Compression, decompress
        bomb = open({str(path)!r}, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            decompress(Compression({int(codec)}), bomb, {4 * MiB})
        except ProtocolError:
            pass
        else:
            sys.exit("no error")
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr + result.stdout
    grown_kib = int(result.stdout.strip())
    assert grown_kib < 40 * 1024, f"peak RSS grew by {grown_kib} KiB"


# -- optional zstandard --------------------------------------------------------


def test_zstd_without_zstandard(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = compress(Compression.ZSTD, b"data")
    monkeypatch.setattr(codecs, "_zstd", None)
    calls: list[Callable[[], object]] = [
        lambda: Compression.from_name("zstd"),
        lambda: codecs.ensure_available(Compression.ZSTD),
        lambda: compress(Compression.ZSTD, b"data"),
        lambda: decompress(Compression.ZSTD, blob, 100),
    ]
    for call in calls:
        with pytest.raises(InvalidArgumentError, match=r"kafka-sink\[zstd\]") as info:
            call()
        argument = info.value.argument
        assert argument == "compression"
    assert decompress(Compression.LZ4, compress(Compression.LZ4, b"data"), 4) == b"data"


def test_imports_and_works_without_zstandard() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["zstandard"] = None  # makes "import zstandard" fail
        from kafka_sink.errors import InvalidArgumentError
        from kafka_sink.protocol.codecs import Compression, compress, decompress
        from kafka_sink.protocol.records import BatchBuilder, decode_batches, encode_batch
        for codec in (Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4):
            wire = encode_batch([(1, b"k", b"v", ())], codec)
            assert decode_batches(wire)[0].records[0].value == b"v"
        try:
            BatchBuilder(Compression.ZSTD)
        except InvalidArgumentError as exc:
            assert exc.argument == "compression" and "kafka-sink[zstd]" in str(exc)
        else:
            raise SystemExit("zstd accepted")
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
