"""Tests of kafka_sink.protocol.records: RecordBatch v2 on the wire.

The pinned vector below was written out by hand from the protocol guide, field
by field; its CRC was computed over those hand-written bytes with two separate
CRC-32C implementations (``crc32c`` and ``google_crc32c``). Property tests
compare the encoder with a deliberately plain reference encoder written here
from the same guide.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from typing import Any

import crc32c
import google_crc32c
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kafka_sink.errors import InvalidArgumentError, ProtocolError
from kafka_sink.protocol import records as records_module
from kafka_sink.protocol.codecs import Compression, decompress
from kafka_sink.protocol.codecs import compress as real_compress
from kafka_sink.protocol.primitives import encode_varint
from kafka_sink.protocol.records import (
    BATCH_HEADER_SIZE,
    BatchBuilder,
    Header,
    Record,
    RecordBatch,
    TimestampType,
    decode_batches,
    encode_batch,
)

T0 = 1_700_000_000_000  # 0x0000018BCFE56800
CODECS = list(Compression)

# -- the pinned vector ---------------------------------------------------------
#
# Three records, uncompressed, producer id 42, epoch 3, base sequence 7:
#   0: timestamp T0,      key b"key", value b"value", no headers
#   1: timestamp T0 - 5,  null key,   value b"v1",    headers h1=b"x", h2=null
#   2: timestamp T0 + 10, key b"k",   null value,     no headers

RECORD_0 = bytes.fromhex(
    "1c"  # length 14 (zig-zag 28)
    "00"  # attributes
    "00"  # timestampDelta 0
    "00"  # offsetDelta 0
    "06 6b6579"  # keyLength 3, "key"
    "0a 76616c7565"  # valueLength 5, "value"
    "00"  # headersCount 0
)
RECORD_1 = bytes.fromhex(
    "22"  # length 17 (zig-zag 34)
    "00"  # attributes
    "09"  # timestampDelta -5 (zig-zag 9)
    "02"  # offsetDelta 1
    "01"  # keyLength -1: null key
    "04 7631"  # valueLength 2, "v1"
    "04"  # headersCount 2
    "04 6831 02 78"  # "h1" = b"x"
    "04 6832 01"  # "h2" = null
)
RECORD_2 = bytes.fromhex(
    "0e"  # length 7 (zig-zag 14)
    "00"  # attributes
    "14"  # timestampDelta 10 (zig-zag 20)
    "04"  # offsetDelta 2
    "02 6b"  # keyLength 1, "k"
    "01"  # valueLength -1: null value
    "00"  # headersCount 0
)
PINNED_CRC = 0x43648523
PINNED_BATCH = (
    bytes.fromhex(
        "0000000000000000"  # baseOffset 0
        "0000005a"  # batchLength 90 = 49 + 41 bytes of records
        "ffffffff"  # partitionLeaderEpoch -1
        "02"  # magic 2
        "43648523"  # crc
        "0000"  # attributes: no codec, CreateTime, not transactional
        "00000002"  # lastOffsetDelta 2
        "0000018bcfe56800"  # baseTimestamp T0
        "0000018bcfe5680a"  # maxTimestamp T0 + 10
        "000000000000002a"  # producerId 42
        "0003"  # producerEpoch 3
        "00000007"  # baseSequence 7
        "00000003"  # recordsCount 3
    )
    + RECORD_0
    + RECORD_1
    + RECORD_2
)
PINNED_INPUT: list[tuple[int, bytes | None, bytes | None, Sequence[Header]]] = [
    (T0, b"key", b"value", ()),
    (T0 - 5, None, b"v1", [("h1", b"x"), ("h2", None)]),
    (T0 + 10, b"k", None, ()),
]


def test_pinned_vector_is_self_consistent() -> None:
    assert int.from_bytes(bytes.fromhex("0000018bcfe56800"), "big") == T0
    assert len(RECORD_0) == 15
    assert len(RECORD_1) == 18
    assert len(RECORD_2) == 8
    assert len(PINNED_BATCH) == BATCH_HEADER_SIZE + 41
    covered = PINNED_BATCH[21:]
    assert crc32c.crc32c(covered) == PINNED_CRC
    assert google_crc32c.value(covered) == PINNED_CRC


def test_encoder_writes_the_pinned_vector() -> None:
    wire = encode_batch(PINNED_INPUT, producer_id=42, producer_epoch=3, base_sequence=7)
    assert wire.hex() == PINNED_BATCH.hex()


def test_builder_writes_the_pinned_vector() -> None:
    builder = BatchBuilder()
    for timestamp, key, value, headers in PINNED_INPUT:
        assert builder.append(timestamp, key, value, headers)
    assert builder.size_in_bytes == len(PINNED_BATCH)
    assert builder.build(42, 3, 7) == PINNED_BATCH


def test_header_layout_field_by_field() -> None:
    wire = encode_batch(
        [(T0, None, b"x", ()), (T0 + 3, None, b"y", ())],
        compression=Compression.LZ4,
        producer_id=0x0102030405060708,
        producer_epoch=0x1122,
        base_sequence=0x33445566,
    )
    assert struct.unpack_from(">q", wire, 0) == (0,)  # baseOffset
    assert struct.unpack_from(">i", wire, 8) == (len(wire) - 12,)  # batchLength
    assert struct.unpack_from(">i", wire, 12) == (-1,)  # partitionLeaderEpoch
    assert wire[16] == 2  # magic
    assert struct.unpack_from(">I", wire, 17) == (crc32c.crc32c(wire[21:]),)
    assert struct.unpack_from(">h", wire, 21) == (3,)  # attributes: lz4
    assert struct.unpack_from(">i", wire, 23) == (1,)  # lastOffsetDelta
    assert struct.unpack_from(">q", wire, 27) == (T0,)  # baseTimestamp
    assert struct.unpack_from(">q", wire, 35) == (T0 + 3,)  # maxTimestamp
    assert struct.unpack_from(">q", wire, 43) == (0x0102030405060708,)  # producerId
    assert struct.unpack_from(">h", wire, 51) == (0x1122,)  # producerEpoch
    assert struct.unpack_from(">i", wire, 53) == (0x33445566,)  # baseSequence
    assert struct.unpack_from(">i", wire, 57) == (2,)  # recordsCount, not compressed
    records = decompress(Compression.LZ4, wire[61:], 1000)
    assert records == bytes.fromhex("0e 00 00 00 01 02 78 00  0e 00 06 02 01 02 79 00")


def test_decoder_reads_the_pinned_vector() -> None:
    [batch] = decode_batches(PINNED_BATCH)
    assert batch == RecordBatch(
        base_offset=0,
        partition_leader_epoch=-1,
        magic=2,
        crc=PINNED_CRC,
        attributes=0,
        compression=Compression.NONE,
        timestamp_type=TimestampType.CREATE_TIME,
        is_transactional=False,
        is_control=False,
        last_offset_delta=2,
        base_timestamp=T0,
        max_timestamp=T0 + 10,
        producer_id=42,
        producer_epoch=3,
        base_sequence=7,
        records=(
            Record(0, T0, b"key", b"value", ()),
            Record(1, T0 - 5, None, b"v1", (("h1", b"x"), ("h2", None))),
            Record(2, T0 + 10, b"k", None, ()),
        ),
    )


def test_decoder_applies_the_base_offset() -> None:
    moved = struct.pack(">q", 1000) + PINNED_BATCH[8:]  # baseOffset is not under the CRC
    [batch] = decode_batches(moved)
    assert [r.offset for r in batch.records] == [1000, 1001, 1002]


# -- a plain reference encoder -------------------------------------------------


def reference_record(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[Header],
) -> bytes:
    body = b"\x00" + encode_varint(timestamp_delta) + encode_varint(offset_delta)
    for data in (key, value):
        body += encode_varint(-1) if data is None else encode_varint(len(data)) + data
    body += encode_varint(len(headers))
    for name, header_value in headers:
        raw = name.encode("utf-8")
        body += encode_varint(len(raw)) + raw
        if header_value is None:
            body += encode_varint(-1)
        else:
            body += encode_varint(len(header_value)) + header_value
    return encode_varint(len(body)) + body


def reference_records(
    rows: Sequence[tuple[int, bytes | None, bytes | None, Sequence[Header]]],
) -> bytes:
    base = rows[0][0]
    return b"".join(
        reference_record(i, ts - base, key, value, headers)
        for i, (ts, key, value, headers) in enumerate(rows)
    )


# -- strategies ----------------------------------------------------------------

# Big payloads (just past the 8 KiB varint table) are built cheaply from a
# size and a byte, so that hypothesis does not have to draw every byte.
big_payloads = st.builds(
    lambda size, byte: bytes([byte]) * size, st.integers(8185, 8200), st.integers(0, 255)
)
payloads = st.none() | st.binary(max_size=200) | big_payloads
header_lists = st.lists(
    st.tuples(st.text(max_size=20), st.none() | st.binary(max_size=30)), max_size=4
)
deltas = st.integers(-3, 300) | st.integers(8180, 8200) | st.integers(-(2**40), 2**40)


@st.composite
def record_rows(draw: st.DrawFn) -> list[tuple[int, bytes | None, bytes | None, list[Header]]]:
    base = draw(st.integers(-(2**60), 2**60) | st.integers(0, 2**42))
    count = draw(st.integers(1, 12))
    rows = []
    for _ in range(count):
        rows.append(
            (
                base + draw(deltas),
                draw(payloads),
                draw(payloads),
                draw(st.just([]) | header_lists),
            )
        )
    rows[0] = (base, *rows[0][1:])
    return rows


ids = st.integers(-1, 2**63 - 1)
epochs = st.integers(-1, 2**15 - 1)
sequences = st.integers(-1, 2**31 - 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=record_rows(), codec=st.sampled_from(CODECS), pid=ids, epoch=epochs, seq=sequences)
def test_round_trip(
    rows: list[tuple[int, bytes | None, bytes | None, list[Header]]],
    codec: Compression,
    pid: int,
    epoch: int,
    seq: int,
) -> None:
    builder = BatchBuilder(codec, max_bytes=1 << 30)
    for timestamp, key, value, headers in rows:
        assert builder.append(timestamp, key, value, headers)
    wire = builder.build(pid, epoch, seq)
    expected_records = reference_records(rows)
    assert builder.size_in_bytes == BATCH_HEADER_SIZE + len(expected_records)
    assert builder.record_count == len(rows)
    assert builder.first_timestamp == rows[0][0]
    assert builder.max_timestamp == max(r[0] for r in rows)
    if codec == Compression.NONE:
        assert wire[61:] == expected_records
    else:
        assert decompress(codec, wire[61:], 1 << 30) == expected_records
    [batch] = decode_batches(wire)
    assert batch.compression == codec
    assert batch.attributes == int(codec)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (pid, epoch, seq)
    assert batch.last_offset_delta == len(rows) - 1
    assert batch.base_timestamp == rows[0][0]
    assert batch.max_timestamp == max(r[0] for r in rows)
    assert batch.records == tuple(
        Record(i, ts, key, value, tuple(headers))
        for i, (ts, key, value, headers) in enumerate(rows)
    )
    assert encode_batch(rows, codec, pid, epoch, seq) == wire


@settings(max_examples=40, deadline=None)
@given(rows=record_rows(), codec=st.sampled_from(CODECS))
def test_concatenated_batches(
    rows: list[tuple[int, bytes | None, bytes | None, list[Header]]], codec: Compression
) -> None:
    first = encode_batch(rows, codec)
    second = encode_batch(rows[:1], Compression.GZIP)
    batches = decode_batches(first + second + first)
    assert [len(b.records) for b in batches] == [len(rows), 1, len(rows)]


def test_many_records_past_the_varint_table() -> None:
    builder = BatchBuilder(max_bytes=1 << 30)
    for i in range(20_000):
        assert builder.append(T0 + i, None, b"%d" % i)
    [batch] = decode_batches(builder.build())
    assert len(batch.records) == 20_000
    assert batch.records[-1] == Record(19_999, T0 + 19_999, None, b"19999", ())
    assert batch.last_offset_delta == 19_999
    rows: list[tuple[int, bytes | None, bytes | None, Sequence[Header]]] = [
        (T0 + i, None, b"%d" % i, ()) for i in range(20_000)
    ]
    assert builder.build()[61:] == reference_records(rows)


def test_large_values_keys_and_headers() -> None:
    big = bytes(range(256)) * 400  # 100 KiB
    rows: list[tuple[int, bytes | None, bytes | None, Sequence[Header]]] = [
        (T0, big, big, [("h" * 9000, big), ("e", b"")]),
        (T0 + 100_000, None, big[:9000], ()),
        (T0 - 100_000, b"", b"", [("", None)]),
        (T0 + 2**40, b"k", None, [("ü-ß-€-𝄞", b"\x00")]),
    ]
    builder = BatchBuilder(Compression.ZSTD, max_bytes=1 << 30)
    for row in rows:
        assert builder.append(*row)
    assert builder.size_in_bytes == BATCH_HEADER_SIZE + len(reference_records(rows))
    [batch] = decode_batches(builder.build())
    assert [(r.timestamp, r.key, r.value, r.headers) for r in batch.records] == [
        (ts, k, v, tuple(h)) for ts, k, v, h in rows
    ]


def test_many_headers() -> None:
    headers = [(f"h{i}", b"v" if i % 2 else None) for i in range(9000)]
    [batch] = decode_batches(encode_batch([(T0, None, b"x", headers)]))
    assert batch.records[0].headers == tuple(headers)


# -- the builder ---------------------------------------------------------------


def test_builder_properties() -> None:
    builder = BatchBuilder(Compression.SNAPPY, max_bytes=10_000)
    assert builder.compression is Compression.SNAPPY
    assert builder.max_bytes == 10_000
    assert builder.record_count == 0
    assert len(builder) == 0
    assert builder.size_in_bytes == BATCH_HEADER_SIZE
    assert builder.first_timestamp is None
    assert builder.max_timestamp is None
    builder.append(T0 + 5, None, b"a")
    builder.append(T0 + 9, None, b"b")
    builder.append(T0 - 1, None, b"c")
    assert builder.record_count == 3
    assert builder.first_timestamp == T0 + 5
    assert builder.max_timestamp == T0 + 9
    assert "SNAPPY" in repr(builder)


def test_append_refuses_what_does_not_fit_and_changes_nothing() -> None:
    record_size = len(reference_record(0, 0, None, b"x" * 100, ()))  # 105
    builder = BatchBuilder(max_bytes=BATCH_HEADER_SIZE + 2 * record_size)
    assert builder.append(T0, None, b"x" * 100)
    assert builder.append(T0 + 1, None, b"x" * 100)
    assert builder.size_in_bytes == builder.max_bytes
    before = (builder.record_count, builder.size_in_bytes, builder.max_timestamp)
    assert not builder.append(T0 + 50, None, b"x")
    assert not builder.append(T0 + 50, b"k", b"x", [("h", b"v")])
    assert (builder.record_count, builder.size_in_bytes, builder.max_timestamp) == before
    [batch] = decode_batches(builder.build())
    assert len(batch.records) == 2


def test_oversized_first_record_is_accepted_alone() -> None:
    builder = BatchBuilder(max_bytes=100)
    assert builder.append(T0, None, b"x" * 1000)
    assert builder.size_in_bytes > 100
    assert not builder.append(T0, None, b"")
    assert len(decode_batches(builder.build())[0].records) == 1


def test_build_compresses_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counting(codec: Compression, data: Any, level: int | None = None) -> bytes:
        calls.append(len(data))
        return real_compress(codec, data, level)

    monkeypatch.setattr(records_module, "compress", counting)
    builder = BatchBuilder(Compression.GZIP)
    for i in range(50):
        builder.append(T0 + i, b"key", b"value %d" % i)
    first = builder.build(1000, 0, 0)
    retry = builder.build(1000, 1, 0, transactional=True)
    other = builder.build(2000, 5, 50)
    assert len(calls) == 1
    assert first[61:] == retry[61:] == other[61:]
    assert first[17:21] != retry[17:21] != other[17:21]  # the CRC covers the new fields
    decoded = [decode_batches(w)[0] for w in (first, retry, other)]
    assert [(b.producer_id, b.producer_epoch, b.base_sequence) for b in decoded] == [
        (1000, 0, 0),
        (1000, 1, 0),
        (2000, 5, 50),
    ]
    assert [b.is_transactional for b in decoded] == [False, True, False]
    assert decoded[0].records == decoded[1].records == decoded[2].records
    # Appending after a build is allowed: the next build covers the new record.
    builder.append(T0 + 99, None, b"late")
    again = builder.build(2000, 5, 50)
    assert len(calls) == 2
    assert decode_batches(again)[0].records[-1].value == b"late"


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda b: b.append(T0, "text", b"v"), "key"),
        (lambda b: b.append(T0, None, "text"), "value"),
        (lambda b: b.append(T0, None, 5), "value"),
        (lambda b: b.append(1.5, None, b"v"), "timestamp"),
        (lambda b: b.append(None, None, b"v"), "timestamp"),
        (lambda b: b.append(True, None, b"v"), "timestamp"),
        (lambda b: b.append(2**63, None, b"v"), "timestamp"),
        (lambda b: b.append(T0, None, b"v", [("k", "text")]), "headers"),
        (lambda b: b.append(T0, None, b"v", [(b"k", b"v")]), "headers"),
        (lambda b: b.append(T0, None, b"v", [("k",)]), "headers"),
        (lambda b: b.append(T0, None, b"v", ["kv"]), "headers"),
        (lambda b: b.append(T0, None, b"v", [("\udc80", None)]), "headers"),
        (lambda b: b.append(T0, None, b"v", 5), "headers"),
        (lambda b: b.build(), "records"),
    ],
)
def test_invalid_append_arguments(call: Any, argument: str) -> None:
    builder = BatchBuilder()
    with pytest.raises(InvalidArgumentError) as info:
        call(builder)
    assert info.value.argument == argument
    assert builder.record_count == 0


@pytest.mark.parametrize(
    ("later", "argument"),
    [
        (lambda b: b.append(T0 + 1.0, None, b"v"), "timestamp"),
        (lambda b: b.append(T0 - 0.5, None, b"v"), "timestamp"),
        (lambda b: b.append("x", None, b"v"), "timestamp"),
        (lambda b: b.append(T0 - 2**63 - 1, None, b"v"), "timestamp"),
        (lambda b: b.append(T0 + 10**6, "text", b"v"), "key"),
        (lambda b: b.append(T0, b"k", b"v" * 9000 + b"\x00", [("k", 1)]), "headers"),
    ],
)
def test_invalid_later_records(later: Any, argument: str) -> None:
    builder = BatchBuilder()
    builder.append(T0, None, b"first")
    with pytest.raises(InvalidArgumentError) as info:
        later(builder)
    assert info.value.argument == argument
    assert builder.record_count == 1
    assert len(decode_batches(builder.build())[0].records) == 1


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"producer_id": 2**63}, "producer_id"),
        ({"producer_epoch": 2**15}, "producer_epoch"),
        ({"producer_epoch": -(2**15) - 1}, "producer_epoch"),
        ({"base_sequence": 2**31}, "base_sequence"),
        ({"base_sequence": "0"}, "base_sequence"),
    ],
)
def test_invalid_build_arguments(kwargs: dict[str, Any], argument: str) -> None:
    builder = BatchBuilder()
    builder.append(T0, None, b"v")
    with pytest.raises(InvalidArgumentError) as info:
        builder.build(**kwargs)
    assert info.value.argument == argument


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": "big"}, "max_bytes"),
        ({"compression": 9}, "compression"),
        ({"compression": "brotli"}, "compression"),
    ],
)
def test_invalid_builder_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        BatchBuilder(**kwargs)
    assert info.value.argument == argument


def test_builder_accepts_codec_names_and_ids() -> None:
    by_name = BatchBuilder("lz4")  # type: ignore[arg-type]  # a codec name works as well
    by_id = BatchBuilder(2)  # type: ignore[arg-type]  # and so does a codec id
    assert by_name.compression is Compression.LZ4
    assert by_id.compression is Compression.SNAPPY


# -- decoding: malformed input -------------------------------------------------


def with_crc(batch: bytes | bytearray) -> bytes:
    """Recompute a batch's CRC so that a deliberate change reaches the parser."""
    out = bytearray(batch)
    out[17:21] = struct.pack(">I", crc32c.crc32c(bytes(out[21:])))
    return bytes(out)


def make_batch(records: bytes, count: int, attributes: int = 0, magic: int = 2) -> bytes:
    header = struct.pack(
        ">qiibIhiqqqhii", 0, 49 + len(records), -1, magic, 0, attributes, count - 1,
        T0, T0, -1, -1, -1, count,
    )  # fmt: skip
    return with_crc(header + records)


def test_crc_mismatch() -> None:
    damaged = bytearray(PINNED_BATCH)
    damaged[-10] ^= 0x01  # header key "h2" becomes "h3": still a valid batch
    with pytest.raises(ProtocolError) as info:
        decode_batches(bytes(damaged))
    message = str(info.value)
    assert "CRC" in message
    assert "0x43648523" in message
    assert f"0x{crc32c.crc32c(bytes(damaged[21:])):08x}" in message
    [batch] = decode_batches(bytes(damaged), verify_crc=False)
    assert len(batch.records) == 3


def test_crc_covers_the_header_fields() -> None:
    damaged = bytearray(PINNED_BATCH)
    damaged[50] ^= 0x01  # producerId
    with pytest.raises(ProtocolError, match="CRC"):
        decode_batches(bytes(damaged))


@pytest.mark.parametrize("magic", [0, 1, 3, -1])
def test_other_magic_is_refused(magic: int) -> None:
    with pytest.raises(ProtocolError, match=f"magic {magic}"):
        decode_batches(make_batch(RECORD_0, 1, magic=magic))


def test_partial_tail_is_skipped_or_refused() -> None:
    data = PINNED_BATCH + PINNED_BATCH[:70]
    assert len(decode_batches(data)) == 1
    with pytest.raises(ProtocolError, match="truncated"):
        decode_batches(data, allow_partial_tail=False)
    for cut in (1, 11, 12, 20, 60, 61, len(PINNED_BATCH) - 1):
        assert decode_batches(PINNED_BATCH[:cut]) == []
        with pytest.raises(ProtocolError):
            decode_batches(PINNED_BATCH[:cut], allow_partial_tail=False)
    assert decode_batches(b"") == []


def test_impossible_batch_length() -> None:
    for length in (-1, 0, 48):
        bad = PINNED_BATCH[:8] + struct.pack(">i", length) + PINNED_BATCH[12:]
        with pytest.raises(ProtocolError, match="claims"):
            decode_batches(bad)
        with pytest.raises(ProtocolError, match="claims"):
            decode_batches(bad[:30])


@pytest.mark.parametrize(
    ("records", "count", "match"),
    [
        (RECORD_0, 3, "records claimed"),
        (RECORD_0, 2, "truncated varint"),
        (RECORD_0, 2**31 - 1, "records claimed"),
        (RECORD_0, -1, "negative record count"),
        (RECORD_0 + RECORD_2, 1, "left over"),
        (b"\x7f" + RECORD_0[1:], 1, "record length"),
        (b"\x01" + RECORD_0[1:], 1, "record length"),
        (b"\x10" + RECORD_0[1:], 1, "value of"),
        (b"\x0a" + RECORD_0[1:], 1, "record length 5"),
        (b"\xff\xff\xff\xff\xff\xff" + bytes(10), 1, "varint"),
        (bytes.fromhex("0e 00 00 00 03 00 00 00"), 1, "negative key length"),
        (bytes.fromhex("0e 00 00 00 7e 00 00 00"), 1, "key of"),
        (bytes.fromhex("0e 00 00 00 01 7e 00 00"), 1, "value of"),
        (bytes.fromhex("0e 00 00 00 01 05 00 00"), 1, "negative value length"),
        (bytes.fromhex("0e 00 00 00 01 01 7e 00"), 1, "headers claimed"),
        (bytes.fromhex("0e 00 00 00 01 01 01 00"), 1, "headers claimed"),
        (bytes.fromhex("12 00 00 00 01 01 02 04 ff fe"), 1, "UTF-8"),
        (bytes.fromhex("10 00 00 00 01 01 02 03 00 00"), 1, "header key length"),
        (bytes.fromhex("10 00 00 00 01 01 02 00 7e 00"), 1, "header value of"),
        (bytes.fromhex("10 00 00 00 01 01 02 00 05 00"), 1, "negative header value"),
        (bytes.fromhex("10 00 00 00 01 01 00 00 00 00"), 1, "fields end"),
    ],
)
def test_malformed_records(records: bytes, count: int, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_batches(make_batch(records, count))


def test_unknown_codec() -> None:
    with pytest.raises(ProtocolError, match="codec"):
        decode_batches(make_batch(RECORD_0, 1, attributes=5))


def test_log_append_time_uses_the_max_timestamp() -> None:
    batch = bytearray(PINNED_BATCH)
    batch[22] |= 0x08  # attributes bit 3: LogAppendTime
    [decoded] = decode_batches(with_crc(batch))
    assert decoded.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert {r.timestamp for r in decoded.records} == {T0 + 10}


def test_attribute_flags() -> None:
    batch = bytearray(PINNED_BATCH)
    batch[22] |= 0x30  # transactional, control
    [decoded] = decode_batches(with_crc(batch))
    assert decoded.is_transactional
    assert decoded.is_control
    assert decoded.attributes == 0x30


def test_compressed_bomb_in_a_batch_is_bounded() -> None:
    builder = BatchBuilder(Compression.LZ4, max_bytes=1 << 30)
    for i in range(200):
        builder.append(T0 + i, None, bytes(100_000))  # 20 MB of zeros, ~80 KB on the wire
    wire = builder.build()
    assert len(wire) < 200_000
    with pytest.raises(ProtocolError, match="decompression bomb"):
        decode_batches(wire, max_decompressed_bytes=1 << 20)
    # The budget covers the whole call, not each batch.
    small = encode_batch([(T0, None, bytes(600_000), ())], Compression.GZIP)
    assert len(decode_batches(small + small, max_decompressed_bytes=1_300_000)) == 2
    with pytest.raises(ProtocolError, match="decompression bomb"):
        decode_batches(small + small, max_decompressed_bytes=1_000_000)
    with pytest.raises(InvalidArgumentError):
        decode_batches(small, max_decompressed_bytes=-1)


@pytest.mark.parametrize("codec", [c for c in CODECS if c != Compression.NONE])
def test_corrupt_compressed_section(codec: Compression) -> None:
    wire = bytearray(encode_batch([(T0, None, b"x" * 1000, ())], codec))
    wire[80:90] = bytes(10)  # inside the compressed data, past every codec header
    with pytest.raises(ProtocolError):
        decode_batches(with_crc(wire))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    for verify in (True, False):
        with contextlib.suppress(ProtocolError):
            decode_batches(data, verify_crc=verify)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(-2, 40), records=st.binary(max_size=300), attributes=st.integers(0, 63))
def test_arbitrary_records_sections_decode_or_raise(
    count: int, records: bytes, attributes: int
) -> None:
    with contextlib.suppress(ProtocolError):
        decode_batches(make_batch(records, count, attributes=attributes))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=record_rows(),
    codec=st.sampled_from(CODECS),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=4),
    cut=st.none() | st.integers(0, 10**6),
    fix_crc=st.booleans(),
)
def test_damaged_batches_decode_or_raise_protocol_error(
    rows: list[tuple[int, bytes | None, bytes | None, list[Header]]],
    codec: Compression,
    flips: list[tuple[int, int]],
    cut: int | None,
    fix_crc: bool,
) -> None:
    wire = bytearray(encode_batch(rows, codec))
    assume(flips or cut is not None)
    for where, xor in flips:
        wire[where % len(wire)] ^= xor
    if cut is not None:
        del wire[cut % (len(wire) + 1) :]
    data = with_crc(wire) if fix_crc and len(wire) >= 21 else bytes(wire)
    for partial in (True, False):
        try:
            batches = decode_batches(
                data, allow_partial_tail=partial, max_decompressed_bytes=1 << 22
            )
        except ProtocolError:
            continue
        assert len(batches) <= 1
