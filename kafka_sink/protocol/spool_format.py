"""The on-disk format of the durable spool, and its replay: bytes in, typed values out.

Theory of operation. A spool *log* is a directory of numbered *segments*.
Each segment is a pair of files:

``NNNNNNNNNNNNNNNN.seg``
    the records, in the order ``produce()`` accepted them, and the topic
    names they refer to. The file is allocated at its full size before use
    and written through a shared memory mapping, so the unused rest reads as
    zeros: a frame of length 0 ends the segment.
``NNNNNNNNNNNNNNNN.jrn``
    the journal of that segment's records: which batches they were sealed
    into (topic, partition, producer id, epoch, base sequence, the record
    ids), and which records are resolved (acknowledged, dropped, or moved to
    the dead-letter file). Appended with ``write()``.

Both start with a 64-byte :class:`SegmentHeader` (magic, format version,
kind, log id, segment number, the id of the segment's first record, creation
time, CRC-32C). Records are numbered in order within a log; a record's id is
its segment's base id plus its position among the segment's records, so no
id is stored per record. Keeping each segment's journal beside it lets any
segment be deleted once all of its records are resolved, whatever the state
of the others.

After the header come *frames*: ``length`` (u32) ``crc`` (u32) ``body``,
little endian, the CRC-32C of the body seeded with its length. A frame whose
length or CRC is wrong, or that runs past the end of the data, ends the
readable part: what follows is a torn or corrupt tail, reported by
:func:`parse_frames` and cut off by the reader, never an error that stops a
replay.

Bodies start with a kind byte:

==========  ====================================================================
kind        body after the kind byte
==========  ====================================================================
RECORD      topic index u16, timestamp i64, key length i32 (-1: null), value
            length i32 (-1: null), key, value
RECORD_EX   as RECORD, then partition i32 (-1: chosen at send time) and
            headers: count u16, each name length u16, name, value length i32,
            value
TOPIC       index u16, the topic name (UTF-8): what RECORD's index means in
            this segment
SEALED      serial u64, producer id i64, epoch i16, base sequence i32,
            partition i32, count u32, topic length u16, topic, then ``count``
            record ids (i64 each)
RESOLVED    reason u8, serial i64 (-1: none), count u32, then the record ids
CANCEL      serial u64: the sealed batch was refused unwritten and split
NOTE        UTF-8 text (the dead-letter file says why its records are there)
==========  ====================================================================

:class:`LogReplay` turns a log's segments and journals into a
:class:`ReplayPlan`: which records are still unresolved, which of them were
sealed into a batch that may have reached the broker (to be sent again with
the same producer id, epoch and base sequence, so that the broker recognises
a duplicate), and which were never sealed.
"""

from __future__ import annotations

import bisect
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from crc32c import crc32c

from kafka_sink.errors import SpoolError

__all__ = [
    "FORMAT_VERSION",
    "FRAME_SIZE",
    "HEADER_SIZE",
    "KIND_DEAD_LETTER",
    "KIND_JOURNAL",
    "KIND_SEGMENT",
    "MAGIC",
    "REASON_ACKED",
    "REASON_DEAD_LETTER",
    "REASON_DROPPED",
    "CancelEntry",
    "FrameScan",
    "LogReplay",
    "NoteEntry",
    "RecordEntry",
    "ReplayPlan",
    "ResolvedEntry",
    "SealedBatch",
    "SealedEntry",
    "SegmentHeader",
    "SpoolFormatError",
    "SpoolVersionError",
    "TopicEntry",
    "decode_entry",
    "encode_cancel",
    "encode_note",
    "encode_record",
    "encode_resolved",
    "encode_sealed",
    "encode_topic",
    "frame",
    "ids_from_bytes",
    "ids_to_bytes",
    "parse_frames",
]

#: The format this module writes; a segment with a higher version is refused.
FORMAT_VERSION = 1
MAGIC = b"KSSPOOL\x00"
HEADER_SIZE = 64
FRAME_SIZE = 8
#: Largest body a frame may claim: a bound on what a corrupt length can make
#: a reader allocate (a record is at most max_request_size, and a sealed batch
#: lists 8 bytes per record).
MAX_BODY = 256 * 1024 * 1024

KIND_SEGMENT = 1
KIND_JOURNAL = 2
KIND_DEAD_LETTER = 3
_KINDS = (KIND_SEGMENT, KIND_JOURNAL, KIND_DEAD_LETTER)

E_RECORD = 1
E_RECORD_EX = 2
E_TOPIC = 3
E_SEALED = 4
E_RESOLVED = 5
E_CANCEL = 6
E_NOTE = 7
_RECORD_KINDS = frozenset((E_RECORD, E_RECORD_EX))

REASON_ACKED = 1
REASON_DROPPED = 2
REASON_DEAD_LETTER = 3
REASON_NAMES = {REASON_ACKED: "acked", REASON_DROPPED: "dropped", REASON_DEAD_LETTER: "dead_letter"}

_HEADER = struct.Struct("<8sBBHI16sQQq")  # 60 bytes, then the CRC
_HEADER_CRC = struct.Struct("<I")
FRAME = struct.Struct("<II")
#: kind, topic index, timestamp, key length, value length: the common record.
RECORD_HEAD = struct.Struct("<BHqii")
_PARTITION = struct.Struct("<iH")
_HEADER_NAME = struct.Struct("<H")
_HEADER_VALUE = struct.Struct("<i")
_TOPIC = struct.Struct("<BH")
_SEALED = struct.Struct("<BQqhiiIH")
_RESOLVED = struct.Struct("<BBqI")
_CANCEL = struct.Struct("<BQ")

_LITTLE = sys.byteorder == "little"


class SpoolFormatError(SpoolError):
    """A file in a spool directory is not a spool file this library can read."""


class SpoolVersionError(SpoolFormatError):
    """A spool segment was written by a newer version of the format."""


# -- segment header ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """The first 64 bytes of every spool file."""

    kind: int
    log_id: bytes
    number: int
    base_id: int
    created_ms: int
    version: int = FORMAT_VERSION

    def encode(self) -> bytes:
        head = _HEADER.pack(
            MAGIC,
            self.version,
            self.kind,
            0,
            HEADER_SIZE,
            self.log_id,
            self.number,
            self.base_id,
            self.created_ms,
        )
        data = head + _HEADER_CRC.pack(crc32c(head))
        return data + b"\x00" * (HEADER_SIZE - len(data))

    @classmethod
    def decode(cls, data: bytes | memoryview, name: str = "file") -> SegmentHeader:
        """Parse a header; :class:`SpoolFormatError` for anything that is not one.

        The version is checked before the CRC, so that a newer format whose
        header differs is reported as newer rather than as corrupt.
        """
        data = bytes(data[:HEADER_SIZE])
        if len(data) < HEADER_SIZE or data[:8] != MAGIC:
            raise SpoolFormatError(f"{name} is not a kafka_sink spool file", path=name)
        version = data[8]
        if version > FORMAT_VERSION:
            raise SpoolVersionError(
                f"{name} was written in spool format version {version}; this version of "
                f"kafka_sink reads up to version {FORMAT_VERSION}: open the spool with a "
                "newer kafka_sink, or move it out of spool_dir",
                path=name,
                version=version,
            )
        head = data[: _HEADER.size]
        (stored,) = _HEADER_CRC.unpack_from(data, _HEADER.size)
        if crc32c(head) != stored:
            raise SpoolFormatError(f"{name}: the spool header's CRC does not match", path=name)
        _, version, kind, _, _, log_id, number, base_id, created_ms = _HEADER.unpack(head)
        if kind not in _KINDS:
            raise SpoolFormatError(f"{name}: unknown spool file kind {kind}", path=name)
        return cls(kind, log_id, number, base_id, created_ms, version)


# -- frames -----------------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    """A body with its length and CRC-32C in front: what is appended to a file."""
    n = len(body)
    return FRAME.pack(n, crc32c(body, n)) + body


@dataclass(slots=True)
class FrameScan:
    """What :func:`parse_frames` found in a buffer.

    ``bodies`` are ``(offset of the frame, body)`` in order; ``end`` is where
    parsing stopped. ``status`` is ``"end"`` (a zero length: the clean end of a
    preallocated segment, or the end of the data), ``"more"`` (a frame runs past
    the buffer: read more, or at the end of a file it is a torn tail) or
    ``"corrupt"`` (a length or CRC that is wrong).
    """

    bodies: list[tuple[int, bytes]] = field(default_factory=list)
    end: int = 0
    status: str = "end"


def parse_frames(
    buffer: bytes | bytearray | memoryview, start: int = 0, limit: int | None = None
) -> FrameScan:
    """Parse frames from ``buffer[start:]`` (at most ``limit`` of them)."""
    view = memoryview(buffer)
    size = len(view)
    pos = start
    scan = FrameScan()
    bodies = scan.bodies
    unpack = FRAME.unpack_from
    while limit is None or len(bodies) < limit:
        if pos + FRAME_SIZE > size:
            scan.status = "end" if pos == size else "more"
            break
        n, crc = unpack(view, pos)
        if n == 0:
            scan.status = "end"
            break
        if n > MAX_BODY:
            scan.status = "corrupt"
            break
        body_end = pos + FRAME_SIZE + n
        if body_end > size:
            scan.status = "more"
            break
        body = bytes(view[pos + FRAME_SIZE : body_end])
        if crc32c(body, n) != crc:
            scan.status = "corrupt"
            break
        bodies.append((pos, body))
        pos = body_end
    scan.end = pos
    return scan


def count_bits(bitmap: bytearray) -> int:
    """How many bits are set."""
    return int.from_bytes(bitmap, "little").bit_count()


def tail_bytes(buffer: bytes | bytearray | memoryview, end: int) -> int:
    """Bytes after ``end`` up to the last non-zero byte: the size of a torn tail."""
    rest = bytes(memoryview(buffer)[end:])
    return len(rest.rstrip(b"\x00"))


# -- entries ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One record: ``partition`` is None unless the caller chose it."""

    topic_index: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True, slots=True)
class TopicEntry:
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class SealedEntry:
    """Records sealed into a batch with these producer fields (maybe sent)."""

    serial: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    topic: str
    partition: int
    ids: array[int]


@dataclass(frozen=True, slots=True)
class ResolvedEntry:
    """Records that need no delivery any more, and why (``REASON_*``)."""

    reason: int
    serial: int
    ids: array[int]


@dataclass(frozen=True, slots=True)
class CancelEntry:
    serial: int


@dataclass(frozen=True, slots=True)
class NoteEntry:
    text: str


Entry = RecordEntry | TopicEntry | SealedEntry | ResolvedEntry | CancelEntry | NoteEntry


def ids_to_bytes(ids: array[int]) -> bytes:
    """Record ids as little-endian int64s."""
    if _LITTLE:
        return ids.tobytes()
    swapped = array("q", ids)
    swapped.byteswap()
    return swapped.tobytes()


def ids_from_bytes(data: bytes | memoryview) -> array[int]:
    ids = array("q")
    ids.frombytes(data)
    if not _LITTLE:
        ids.byteswap()
    return ids


def encode_record(
    topic_index: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
    partition: int | None = None,
    headers: Sequence[tuple[str, bytes | None]] = (),
) -> bytes:
    """A record's body (the writer inlines the common case of this)."""
    kind = E_RECORD if partition is None and not headers else E_RECORD_EX
    head = RECORD_HEAD.pack(
        kind,
        topic_index,
        timestamp,
        -1 if key is None else len(key),
        -1 if value is None else len(value),
    )
    parts = [head, key or b"", value or b""]
    if kind == E_RECORD_EX:
        parts.append(_PARTITION.pack(-1 if partition is None else partition, len(headers)))
        for name, data in headers:
            encoded = name.encode("utf-8")
            parts.append(_HEADER_NAME.pack(len(encoded)))
            parts.append(encoded)
            parts.append(_HEADER_VALUE.pack(-1 if data is None else len(data)))
            if data:
                parts.append(data)
    return b"".join(parts)


def encode_topic(index: int, name: str) -> bytes:
    return _TOPIC.pack(E_TOPIC, index) + name.encode("utf-8")


def encode_sealed(
    serial: int,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    topic: str,
    partition: int,
    ids: array[int],
) -> bytes:
    name = topic.encode("utf-8")
    head = _SEALED.pack(
        E_SEALED,
        serial,
        producer_id,
        producer_epoch,
        base_sequence,
        partition,
        len(ids),
        len(name),
    )
    return head + name + ids_to_bytes(ids)


def encode_resolved(reason: int, serial: int, ids: array[int]) -> bytes:
    return _RESOLVED.pack(E_RESOLVED, reason, serial, len(ids)) + ids_to_bytes(ids)


def encode_cancel(serial: int) -> bytes:
    return _CANCEL.pack(E_CANCEL, serial)


def encode_note(text: str) -> bytes:
    return bytes([E_NOTE]) + text.encode("utf-8")


def decode_entry(body: bytes) -> Entry:
    """Parse one frame's body; :class:`SpoolFormatError` if it is malformed.

    A body passed its CRC, so a malformed one comes from a writer that does
    not follow this format, never from a torn write.
    """
    try:
        kind = body[0]
        if kind in _RECORD_KINDS:
            return _decode_record(body, kind)
        if kind == E_TOPIC:
            _, index = _TOPIC.unpack_from(body)
            return TopicEntry(index, body[_TOPIC.size :].decode("utf-8"))
        if kind == E_SEALED:
            _, serial, pid, epoch, seq, partition, count, name_len = _SEALED.unpack_from(body)
            pos = _SEALED.size
            topic = body[pos : pos + name_len].decode("utf-8")
            pos += name_len
            ids = ids_from_bytes(body[pos : pos + 8 * count])
            if len(ids) != count:
                raise ValueError("short id list")
            return SealedEntry(serial, pid, epoch, seq, topic, partition, ids)
        if kind == E_RESOLVED:
            _, reason, serial, count = _RESOLVED.unpack_from(body)
            ids = ids_from_bytes(body[_RESOLVED.size : _RESOLVED.size + 8 * count])
            if len(ids) != count:
                raise ValueError("short id list")
            return ResolvedEntry(reason, serial, ids)
        if kind == E_CANCEL:
            return CancelEntry(_CANCEL.unpack_from(body)[1])
        if kind == E_NOTE:
            return NoteEntry(body[1:].decode("utf-8", "replace"))
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise SpoolFormatError(f"a malformed spool entry: {exc}") from None
    raise SpoolFormatError(f"an unknown spool entry kind {kind}")


def _decode_record(body: bytes, kind: int) -> RecordEntry:
    _, topic_index, timestamp, key_len, value_len = RECORD_HEAD.unpack_from(body)
    pos = RECORD_HEAD.size
    key = None
    if key_len >= 0:
        key = body[pos : pos + key_len]
        pos += key_len
    value = None
    if value_len >= 0:
        value = body[pos : pos + value_len]
        pos += value_len
    if kind == E_RECORD:
        if pos != len(body):
            raise ValueError("record length mismatch")
        return RecordEntry(topic_index, timestamp, key, value)
    partition, count = _PARTITION.unpack_from(body, pos)
    pos += _PARTITION.size
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        (name_len,) = _HEADER_NAME.unpack_from(body, pos)
        pos += _HEADER_NAME.size
        name = body[pos : pos + name_len].decode("utf-8")
        pos += name_len
        (data_len,) = _HEADER_VALUE.unpack_from(body, pos)
        pos += _HEADER_VALUE.size
        data = None
        if data_len >= 0:
            data = body[pos : pos + data_len]
            pos += data_len
        headers.append((name, data))
    if pos != len(body):
        raise ValueError("record length mismatch")
    return RecordEntry(
        topic_index, timestamp, key, value, None if partition < 0 else partition, tuple(headers)
    )


# -- replay -----------------------------------------------------------------------------


@dataclass(slots=True)
class SealedBatch:
    """A batch sealed but never acknowledged: it may have reached the broker."""

    serial: int
    topic: str
    partition: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    ids: array[int]


@dataclass(slots=True)
class SegmentState:
    """One segment as the replay sees it."""

    number: int
    base_id: int
    count: int = 0
    resolved: bytearray = field(default_factory=bytearray)

    def mark(self, index: int) -> bool:
        """Mark a record resolved; True if it was not already."""
        byte, bit = index >> 3, 1 << (index & 7)
        if self.resolved[byte] & bit:
            return False
        self.resolved[byte] |= bit
        return True

    def is_resolved(self, index: int) -> bool:
        return bool(self.resolved[index >> 3] & (1 << (index & 7)))


@dataclass(slots=True)
class ReplayPlan:
    """What a log still has to deliver.

    ``segments`` are in order with each record's resolved bit; ``sealed`` the
    unacknowledged sealed batches whose records are all present (sent again
    as they were); ``broken`` those missing records (a torn or corrupt
    segment): their present records are sent as never sealed, and may
    duplicate what reached the broker. ``unresolved`` counts every record
    still to deliver, sealed or not.
    """

    segments: list[SegmentState]
    sealed: list[SealedBatch]
    broken: list[SealedBatch]
    next_serial: int
    next_id: int
    unresolved: int
    bases: list[int] = field(default_factory=list)

    def segment_of(self, record_id: int) -> SegmentState | None:
        index = bisect.bisect_right(self.bases, record_id) - 1
        if index < 0:
            return None
        segment = self.segments[index]
        return segment if record_id < segment.base_id + segment.count else None

    def is_resolved(self, record_id: int) -> bool:
        segment = self.segment_of(record_id)
        return segment is None or segment.is_resolved(record_id - segment.base_id)


class LogReplay:
    """Builds a :class:`ReplayPlan` from a log's files, fed in order.

    Example::

        replay = LogReplay()
        replay.add_segment(header, record_count)     # every segment, in order
        replay.add_journal_entry(entry)              # every journal entry
        plan = replay.finish()
    """

    def __init__(self) -> None:
        self._segments: list[SegmentState] = []
        self._sealed: dict[int, SealedEntry] = {}
        self._done: set[int] = set()
        self._resolutions: list[ResolvedEntry] = []
        self._max_serial = -1

    def add_segment(self, header: SegmentHeader, count: int) -> None:
        """A segment and how many records could be read from it."""
        if self._segments and header.base_id < self._segments[-1].base_id:
            raise SpoolFormatError(f"segment {header.number} starts before the previous one")
        self._segments.append(
            SegmentState(header.number, header.base_id, count, bytearray((count + 7) // 8))
        )

    def add_journal_entry(self, entry: Entry) -> None:
        if isinstance(entry, SealedEntry):
            # A batch sealed again (a new producer id, a sequence given back)
            # is journaled again under its serial: the last one is what counts.
            self._sealed[entry.serial] = entry
            self._max_serial = max(self._max_serial, entry.serial)
        elif isinstance(entry, ResolvedEntry):
            self._resolutions.append(entry)
            if entry.serial >= 0:
                self._done.add(entry.serial)
                self._max_serial = max(self._max_serial, entry.serial)
        elif isinstance(entry, CancelEntry):
            self._done.add(entry.serial)
            self._max_serial = max(self._max_serial, entry.serial)

    def finish(self) -> ReplayPlan:
        segments = self._segments
        bases = [s.base_id for s in segments]

        def locate(record_id: int) -> tuple[SegmentState, int] | None:
            index = bisect.bisect_right(bases, record_id) - 1
            if index < 0:
                return None
            segment = segments[index]
            offset = record_id - segment.base_id
            return (segment, offset) if offset < segment.count else None

        for resolution in self._resolutions:
            for record_id in resolution.ids:
                found = locate(record_id)
                if found is not None:
                    found[0].mark(found[1])
        sealed: list[SealedBatch] = []
        broken: list[SealedBatch] = []
        for serial in sorted(self._sealed):
            if serial in self._done:
                continue
            entry = self._sealed[serial]
            places = [locate(i) for i in entry.ids]
            live = [p for p in places if p is not None and not p[0].is_resolved(p[1])]
            if not live:
                continue  # every record of it was resolved some other way
            batch = SealedBatch(
                serial,
                entry.topic,
                entry.partition,
                entry.producer_id,
                entry.producer_epoch,
                entry.base_sequence,
                entry.ids,
            )
            (sealed if len(live) == len(entry.ids) else broken).append(batch)
        unresolved = 0
        for segment in segments:
            unresolved += segment.count - count_bits(segment.resolved)
        last = segments[-1] if segments else None
        next_id = last.base_id + last.count if last is not None else 0
        return ReplayPlan(
            segments, sealed, broken, self._max_serial + 1, next_id, unresolved, bases
        )
