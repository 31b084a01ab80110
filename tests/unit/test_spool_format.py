"""The spool's segment format: frames, entries, headers and the replay plan (no I/O)."""

from __future__ import annotations

import struct
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sink.errors import SpoolError
from kafka_sink.protocol.spool_format import (
    FORMAT_VERSION,
    FRAME_SIZE,
    HEADER_SIZE,
    KIND_JOURNAL,
    KIND_SEGMENT,
    REASON_ACKED,
    REASON_DROPPED,
    CancelEntry,
    LogReplay,
    NoteEntry,
    RecordEntry,
    ResolvedEntry,
    SealedEntry,
    SegmentHeader,
    SpoolFormatError,
    SpoolVersionError,
    TopicEntry,
    decode_entry,
    encode_cancel,
    encode_note,
    encode_record,
    encode_resolved,
    encode_sealed,
    encode_topic,
    frame,
    parse_frames,
    tail_bytes,
)

LOG_ID = bytes(range(16))

headers_st = st.lists(
    st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=16))), max_size=3
)


@given(
    topic_index=st.integers(0, 65535),
    timestamp=st.integers(-(2**63), 2**63 - 1),
    key=st.one_of(st.none(), st.binary(max_size=64)),
    value=st.one_of(st.none(), st.binary(max_size=256)),
    partition=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    headers=headers_st,
)
def test_a_record_round_trips(
    topic_index: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
    partition: int | None,
    headers: list[tuple[str, bytes | None]],
) -> None:
    body = encode_record(topic_index, timestamp, key, value, partition, headers)
    entry = decode_entry(body)
    assert entry == RecordEntry(topic_index, timestamp, key, value, partition, tuple(headers))


def test_journal_entries_round_trip() -> None:
    ids = array("q", [3, 5, 8, 2**40])
    assert decode_entry(encode_topic(7, "logs-é")) == TopicEntry(7, "logs-é")
    assert decode_entry(encode_sealed(9, 4000, 2, 120, "logs", 3, ids)) == SealedEntry(
        9, 4000, 2, 120, "logs", 3, ids
    )
    assert decode_entry(encode_resolved(REASON_ACKED, 9, ids)) == ResolvedEntry(
        REASON_ACKED, 9, ids
    )
    assert decode_entry(encode_cancel(9)) == CancelEntry(9)
    assert decode_entry(encode_note("why")) == NoteEntry("why")


def test_frames_round_trip_and_end_at_zeros() -> None:
    bodies = [encode_topic(0, "t"), encode_record(0, 1, b"k", b"v"), encode_cancel(1)]
    data = b"".join(frame(b) for b in bodies) + b"\x00" * 100  # a preallocated tail
    scan = parse_frames(data)
    assert [body for _, body in scan.bodies] == bodies
    assert scan.status == "end"
    assert tail_bytes(data, scan.end) == 0


@pytest.mark.parametrize("cut", [1, FRAME_SIZE - 1, FRAME_SIZE, FRAME_SIZE + 3])
def test_a_torn_last_frame_is_detected_and_the_rest_kept(cut: int) -> None:
    good = frame(encode_record(0, 1, b"k", b"first"))
    torn = frame(encode_record(0, 2, b"k", b"second"))[:cut]
    scan = parse_frames(good + torn)
    assert len(scan.bodies) == 1
    assert scan.status == "more"
    assert scan.end == len(good)
    # Written into a preallocated (zeroed) file, the same tear reads the same way.
    padded = good + torn + b"\x00" * 64
    scan = parse_frames(padded)
    assert len(scan.bodies) == 1
    assert scan.status in ("corrupt", "end")
    assert tail_bytes(padded, scan.end) == len(torn.rstrip(b"\x00"))


def test_a_flipped_byte_fails_the_crc_and_ends_the_readable_part() -> None:
    frames = [frame(encode_record(0, i, b"k", b"value %d" % i)) for i in range(3)]
    data = bytearray(b"".join(frames))
    data[len(frames[0]) + FRAME_SIZE + 5] ^= 0x40  # inside the second record's body
    scan = parse_frames(bytes(data))
    assert len(scan.bodies) == 1
    assert scan.status == "corrupt"


def test_a_length_beyond_the_bound_is_corrupt_not_an_allocation() -> None:
    data = struct.pack("<II", 0xFFFFFFF0, 0) + b"\x01" * 16
    assert parse_frames(data).status == "corrupt"


def test_the_length_is_covered_by_the_crc() -> None:
    body = encode_record(0, 1, b"k", b"value")
    data = bytearray(frame(body) + b"\x00" * 8)
    struct.pack_into("<I", data, 0, len(body) + 4)  # claims four more bytes (zeros)
    assert parse_frames(bytes(data)).status == "corrupt"


def test_a_header_round_trips() -> None:
    header = SegmentHeader(KIND_SEGMENT, LOG_ID, 12, 4096, 1_700_000_000_000)
    data = header.encode()
    assert len(data) == HEADER_SIZE
    assert SegmentHeader.decode(data) == header


def test_a_newer_version_is_refused_as_such() -> None:
    data = bytearray(SegmentHeader(KIND_JOURNAL, LOG_ID, 0, 0, 0).encode())
    data[8] = FORMAT_VERSION + 1
    with pytest.raises(SpoolVersionError, match="version 2") as raised:
        SegmentHeader.decode(bytes(data), "0000000000000000.jrn")
    assert isinstance(raised.value, SpoolError)
    assert "newer kafka_sink" in raised.value.message


@pytest.mark.parametrize(
    "data",
    [b"", b"not a spool file at all" * 4, b"\x00" * HEADER_SIZE],
    ids=["empty", "text", "zeros"],
)
def test_anything_else_is_not_a_spool_file(data: bytes) -> None:
    with pytest.raises(SpoolFormatError, match="not a kafka_sink spool file"):
        SegmentHeader.decode(data, "x.seg")


def test_a_corrupt_header_is_refused() -> None:
    data = bytearray(SegmentHeader(KIND_SEGMENT, LOG_ID, 0, 0, 0).encode())
    data[20] ^= 1
    with pytest.raises(SpoolFormatError, match="CRC"):
        SegmentHeader.decode(bytes(data))


def test_a_malformed_body_with_a_good_crc_is_a_format_error() -> None:
    with pytest.raises(SpoolFormatError):
        decode_entry(bytes([1, 0, 0]))
    with pytest.raises(SpoolFormatError):
        decode_entry(bytes([99]))


# -- replay -------------------------------------------------------------------------------


def _segment(number: int, base: int) -> SegmentHeader:
    return SegmentHeader(KIND_SEGMENT, LOG_ID, number, base, 0)


def test_the_plan_separates_acked_sealed_and_never_sealed_records() -> None:
    replay = LogReplay()
    replay.add_segment(_segment(0, 0), 10)
    replay.add_segment(_segment(1, 10), 5)
    acked = array("q", [0, 2, 4])
    in_flight = array("q", [1, 3, 11])
    replay.add_journal_entry(SealedEntry(0, 77, 0, 0, "t", 0, acked))
    replay.add_journal_entry(ResolvedEntry(REASON_ACKED, 0, acked))
    replay.add_journal_entry(SealedEntry(1, 77, 0, 3, "t", 1, in_flight))
    replay.add_journal_entry(ResolvedEntry(REASON_DROPPED, -1, array("q", [5, 6])))
    plan = replay.finish()
    assert [(b.serial, b.producer_id, b.base_sequence, list(b.ids)) for b in plan.sealed] == [
        (1, 77, 3, [1, 3, 11])
    ]
    assert plan.broken == []
    assert plan.unresolved == 15 - 5
    assert plan.next_serial == 2
    assert plan.next_id == 15
    assert [i for i in range(15) if not plan.is_resolved(i)] == [1, 3, 7, 8, 9, 10, 11, 12, 13, 14]


def test_a_batch_sealed_again_counts_by_its_last_journal_entry() -> None:
    replay = LogReplay()
    replay.add_segment(_segment(0, 0), 3)
    ids = array("q", [0, 1, 2])
    replay.add_journal_entry(SealedEntry(4, 10, 0, 0, "t", 0, ids))
    replay.add_journal_entry(SealedEntry(4, 11, 0, 0, "t", 0, ids))  # a new producer id
    plan = replay.finish()
    assert [b.producer_id for b in plan.sealed] == [11]


def test_a_cancelled_batch_is_not_sent_again_as_sealed() -> None:
    replay = LogReplay()
    replay.add_segment(_segment(0, 0), 2)
    ids = array("q", [0, 1])
    replay.add_journal_entry(SealedEntry(0, 10, 0, 0, "t", 0, ids))
    replay.add_journal_entry(CancelEntry(0))
    plan = replay.finish()
    assert plan.sealed == []
    assert plan.unresolved == 2


def test_a_sealed_batch_missing_records_is_broken() -> None:
    replay = LogReplay()
    replay.add_segment(_segment(0, 0), 2)  # the third record was torn off
    replay.add_journal_entry(SealedEntry(0, 10, 0, 0, "t", 0, array("q", [0, 1, 2])))
    plan = replay.finish()
    assert plan.sealed == []
    assert [list(b.ids) for b in plan.broken] == [[0, 1, 2]]


def test_references_to_deleted_segments_are_ignored() -> None:
    replay = LogReplay()
    replay.add_segment(_segment(3, 100), 4)
    replay.add_journal_entry(ResolvedEntry(REASON_ACKED, 0, array("q", [98, 99, 100])))
    plan = replay.finish()
    assert plan.unresolved == 3
    assert plan.is_resolved(50)  # long gone
    assert not plan.is_resolved(101)
