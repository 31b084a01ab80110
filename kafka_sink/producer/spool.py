"""The durable spool: every record on disk from ``produce()`` until Kafka has it.

Theory of operation
-------------------
With ``spool_dir`` set, a :class:`~kafka_sink.Sink` writes each record it
accepts to a segment file before ``produce()`` (or ``enqueue()``) returns,
and journals what becomes of it: sealed into a batch with a producer id,
epoch and base sequence (before that batch is first sent), then resolved
(acknowledged, dropped by the ``on_buffer_full`` policy, or moved to the
dead-letter file). :mod:`kafka_sink.protocol.spool_format` describes the
files. A segment is deleted once every record in it is resolved.

Directories. ``spool_dir`` holds one subdirectory (a *log*) per process
that uses it, named after its creation time and pid, each with a ``lock``
file that its owner holds with ``flock(LOCK_EX)`` while it lives. A log is
created under a hidden name and locked before it is renamed into place, so
no other process ever sees it unlocked. Processes never share a log: two
live processes on one ``spool_dir`` write two logs side by side, which keeps
the hot path free of any cross-process coordination. A Sink that opens a
spool *adopts* every log whose lock is free (its owner died, or closed with
records undelivered): it replays them, oldest first, before its own new
records, and deletes each once it is drained. A forked child never touches
its parent's log: it closes its copy of the lock file without unlocking it,
and opens a log of its own on first use.

Writing. The open segment is allocated at its full size
(``posix_fallocate``, so that a full disk is an error when a segment is
started, never a ``SIGBUS`` later) and written through a shared memory
mapping: a record is in the page cache, and so survives the death of the
process, the moment ``produce()`` returns, without a system call per record.
``spool_fsync`` decides when the page cache is forced to the disk: never,
every ``spool_fsync_interval_ms`` (a background thread), or before
``produce()`` returns and before a sealed batch is sent.

Memory. The accumulator's ``buffer_memory`` becomes a window onto the spool:
while it has room, records go to their batches as usual; once it is full
(or while older records are still on disk only), new records are written to
the spool alone and counted as undelivered, and the sender thread reads
them back into batches, in order, as acknowledgements free memory. The
``on_buffer_full`` policy applies when the spool itself reaches
``spool_max_bytes``.

Exactly once. A batch that was sealed but never acknowledged may or may not
have reached the broker. On replay it is sent again as it was: the same
records, producer id, epoch and base sequence, so that the broker answers
``DUPLICATE_SEQUENCE_NUMBER`` (or success with the original offset) if it
already has it. If the broker no longer knows that producer, the batch is
sent under the current producer id and its records are counted in
``spool_duplicate_risk_records``. Records never sealed are batched afresh.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import json
import mmap
import os
import re
import secrets
import socket
import threading
import time
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crc32c import crc32c

from kafka_sink.config import SinkConfig
from kafka_sink.errors import SpoolError
from kafka_sink.producer.accumulator import ProducerBatch, SpoolFull
from kafka_sink.producer.futures import DeliveryFuture, DeliveryReport, UndeliveredRecord
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.records import Header
from kafka_sink.protocol.spool_format import (
    E_RECORD,
    E_RECORD_EX,
    E_TOPIC,
    FRAME,
    FRAME_SIZE,
    HEADER_SIZE,
    KIND_DEAD_LETTER,
    KIND_JOURNAL,
    KIND_SEGMENT,
    REASON_ACKED,
    REASON_DEAD_LETTER,
    REASON_DROPPED,
    RECORD_HEAD,
    LogReplay,
    NoteEntry,
    RecordEntry,
    ReplayPlan,
    SealedBatch,
    SegmentHeader,
    SpoolFormatError,
    SpoolVersionError,
    TopicEntry,
    count_bits,
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

__all__ = [
    "LoadedRecord",
    "LogAnalysis",
    "Spool",
    "analyze_log",
    "inspect_spool",
]

LOCK_FILE = "lock"
DEAD_LETTER_DIR = "dead-letter"
_LOG_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-p\d+-[0-9a-f]{8}$")
_SEGMENT_FILE = re.compile(r"^(\d{16})\.(seg|jrn)$")
_TMP_PREFIX = ".new-"
#: Bytes read at a time when records are read back from a segment.
_READ_CHUNK = 1024 * 1024
_RECORD_KINDS = frozenset((E_RECORD, E_RECORD_EX))
_RECORD_HEAD_PACK = RECORD_HEAD.pack
_FRAME_PACK_INTO = FRAME.pack_into


def _now_ms() -> int:
    return int(time.time() * 1000)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


# -- reading a log's files (shared by replay, adoption and ``kafka-sink spool inspect``) --


@dataclass(slots=True)
class SegmentFile:
    """One segment of a log on disk, as far as it could be read."""

    number: int
    path: Path
    header: SegmentHeader
    records: int
    valid_end: int
    size: int
    torn_bytes: int
    first_timestamp: int | None
    journal_path: Path | None = None
    journal_size: int = 0


@dataclass(slots=True)
class LogAnalysis:
    """What a log directory holds: its segments, journals and replay plan."""

    path: Path
    log_id: bytes | None
    segments: list[SegmentFile]
    plan: ReplayPlan
    truncated_entries: int = 0
    truncated_bytes: int = 0
    foreign: list[str] = field(default_factory=list)
    owner: dict[str, Any] = field(default_factory=dict)
    #: What a crash left half made: a segment allocated but never started, a
    #: journal whose segment was deleted. The adopter deletes them.
    leftovers: list[Path] = field(default_factory=list)

    @property
    def disk_bytes(self) -> int:
        return sum(s.size + s.journal_size for s in self.segments)


def _read_file(path: Path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


def analyze_log(path: Path) -> LogAnalysis:
    """Read a log directory without changing it.

    A newer format raises :class:`~kafka_sink.protocol.spool_format.SpoolVersionError`;
    files that are not spool files are listed in ``foreign`` and left alone;
    a torn or corrupt tail ends its file and is counted.
    """
    segments: dict[int, Path] = {}
    journals: dict[int, Path] = {}
    foreign: list[str] = []
    leftovers: list[Path] = []
    for entry in sorted(os.listdir(path)):
        match = _SEGMENT_FILE.match(entry)
        if match:
            (segments if match.group(2) == "seg" else journals)[int(match.group(1))] = path / entry
        elif entry != LOCK_FILE:
            foreign.append(entry)
    owner: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        owner = json.loads(_read_file(path / LOCK_FILE) or b"{}")
    replay = LogReplay()
    files: list[SegmentFile] = []
    truncated_entries = truncated_bytes = 0
    log_id: bytes | None = None
    for number in sorted(segments):
        seg_path = segments[number]
        data = _read_file(seg_path)
        try:
            header = SegmentHeader.decode(data, str(seg_path))
        except SpoolVersionError:
            raise
        except SpoolFormatError:
            if not data.strip(b"\x00"):
                leftovers.append(seg_path)  # allocated, never started: a crash while rolling
            else:
                foreign.append(seg_path.name)
            continue
        if header.kind != KIND_SEGMENT or (log_id is not None and header.log_id != log_id):
            foreign.append(seg_path.name)
            continue
        log_id = header.log_id
        scan = parse_frames(data, HEADER_SIZE)
        count = 0
        first_ts: int | None = None
        for _, body in scan.bodies:
            kind = body[0]
            if kind in _RECORD_KINDS:
                if first_ts is None:
                    first_ts = RECORD_HEAD.unpack_from(body)[2]
                count += 1
        torn = tail_bytes(data, scan.end) if scan.status != "end" or scan.end < len(data) else 0
        if torn:
            truncated_entries += 1
            truncated_bytes += torn
        replay.add_segment(header, count)
        files.append(
            SegmentFile(number, seg_path, header, count, scan.end, len(data), torn, first_ts)
        )
    by_number = {f.number: f for f in files}
    for number in sorted(journals):
        jpath = journals[number]
        owner_segment = by_number.get(number)
        data = _read_file(jpath)
        try:
            header = SegmentHeader.decode(data, str(jpath))
        except SpoolVersionError:
            raise
        except SpoolFormatError:
            if owner_segment is None and not data.strip(b"\x00"):
                leftovers.append(jpath)
            else:
                foreign.append(jpath.name)
            continue
        if header.kind != KIND_JOURNAL or (log_id is not None and header.log_id != log_id):
            foreign.append(jpath.name)
            continue
        if owner_segment is None:
            # Its segment was deleted first (a crash between the two unlinks).
            leftovers.append(jpath)
            continue
        owner_segment.journal_path = jpath
        owner_segment.journal_size = len(data)
        scan = parse_frames(data, HEADER_SIZE)
        if scan.status != "end" or scan.end < len(data):
            truncated_entries += 1
            truncated_bytes += len(data) - scan.end
        for _, body in scan.bodies:
            try:
                replay.add_journal_entry(decode_entry(body))
            except SpoolFormatError:
                truncated_entries += 1
                break
    plan = replay.finish()
    return LogAnalysis(
        path,
        log_id,
        files,
        plan,
        truncated_entries,
        truncated_bytes,
        foreign,
        owner,
        leftovers,
    )


@dataclass(slots=True)
class LoadedRecord:
    """A record read back from a log, to be placed into a batch."""

    log: SpoolLog
    record_id: int
    topic: str
    partition: int | None
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def size(self) -> int:
        size = (len(self.key) if self.key else 0) + (len(self.value) if self.value else 0)
        for name, data in self.headers:
            size += len(name) + (len(data) if data else 0)
        return size


def iter_records(
    data: bytes, start: int = HEADER_SIZE, end: int | None = None
) -> Iterator[tuple[int, str, RecordEntry]]:
    """``(index within the segment, topic, record)`` of a segment's bytes, in order."""
    topics: dict[int, str] = {}
    index = 0
    view = data if end is None else data[:end]
    for _, body in parse_frames(view, start).bodies:
        kind = body[0]
        if kind == E_TOPIC:
            entry = decode_entry(body)
            assert isinstance(entry, TopicEntry)
            topics[entry.index] = entry.name
        elif kind in _RECORD_KINDS:
            record = decode_entry(body)
            assert isinstance(record, RecordEntry)
            yield index, topics.get(record.topic_index, ""), record
            index += 1


# -- one log ----------------------------------------------------------------------------


class _Segment:
    """A live segment: how many records it holds and how many are resolved."""

    __slots__ = (
        "base",
        "closed",
        "count",
        "first_timestamp",
        "jfd",
        "jsize",
        "number",
        "path",
        "resolved",
        "size",
        "valid_end",
    )

    def __init__(self, number: int, base: int, path: Path) -> None:
        self.number = number
        self.base = base
        self.path = path
        self.count = 0
        self.resolved = 0
        self.size = 0
        self.valid_end = HEADER_SIZE
        self.closed = False
        self.jfd: int | None = None
        self.jsize = 0
        self.first_timestamp: int | None = None

    @property
    def journal_path(self) -> Path:
        return self.path.with_suffix(".jrn")


class _Cursor:
    """Where a log is read back from: the next record not yet loaded into memory."""

    __slots__ = ("fd", "frames", "index", "next_id", "scan_pos", "topics")

    def __init__(self, index: int, pos: int, next_id: int, topics: dict[int, str]) -> None:
        self.index = index  # position in the log's segment list
        self.scan_pos = pos  # file offset after the frames read so far
        self.next_id = next_id  # the id of the next record frame
        self.topics = topics
        self.fd: int | None = None
        # Frames read from the file, not looked at yet.
        self.frames: deque[bytes] = deque()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.frames.clear()


class SpoolLog:
    """One log directory, owned by this process through its lock.

    The primary log takes this Sink's new records; adopted logs only drain.
    """

    def __init__(
        self,
        spool: Spool,
        path: Path,
        lock_fd: int,
        log_id: bytes,
        *,
        primary: bool,
    ) -> None:
        self.spool = spool
        self.path = path
        self.name = path.name
        self.lock_fd: int | None = lock_fd
        self.log_id = log_id
        self.primary = primary
        self.fsync_always = spool.fsync_always
        self.segments: list[_Segment] = []
        self.bases: list[int] = []
        self.next_serial = 0
        self.next_id = 0
        self.cursor: _Cursor | None = None
        self.plan: ReplayPlan | None = None
        self.pinned_ids: set[int] = set()
        # A record read back that did not fit in memory yet.
        self.held: LoadedRecord | None = None
        self.finished = False
        # The writer (primary log only): the open segment's mapping.
        self.fd = -1
        self.mm: mmap.mmap | None = None
        self.pos = HEADER_SIZE
        self.limit = 0
        self.topics: dict[str, int] = {}
        self.segment: _Segment | None = None

    def __repr__(self) -> str:
        return f"<SpoolLog {self.path} segments={len(self.segments)} next_id={self.next_id}>"

    # -- writing records (the callers' threads, under the accumulator's lock) ------------

    def write_record(
        self,
        topic: str,
        partition: int | None,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[Header],
    ) -> int:
        """Append a record; return its id. Raises :class:`SpoolFull`."""
        index = self.topics.get(topic)
        if index is None:
            index = self._define_topic(topic)
        if partition is None and not headers and key is not None and value is not None:
            body = _RECORD_HEAD_PACK(E_RECORD, index, timestamp, len(key), len(value)) + key + value
        else:
            body = encode_record(index, timestamp, key, value, partition, headers)
        n = len(body)
        pos = self.pos
        end = pos + FRAME_SIZE + n
        if end > self.limit:
            self._roll(FRAME_SIZE + n)
            return self.write_record(topic, partition, timestamp, key, value, headers)
        mm = self.mm
        assert mm is not None
        # The body first, its frame header last: a write cut short by the
        # death of the process leaves a zero length (the end) or a frame whose
        # CRC fails, never a frame that reads as a different record.
        mm[pos + FRAME_SIZE : end] = body
        _FRAME_PACK_INTO(mm, pos, n, crc32c(body, n))
        self.pos = end
        segment = self.segment
        assert segment is not None
        if not segment.count:
            segment.first_timestamp = timestamp
        segment.count += 1
        record_id = self.next_id
        self.next_id = record_id + 1
        if self.fsync_always:
            os.fdatasync(self.fd)
        return record_id

    def _define_topic(self, topic: str) -> int:
        index = len(self.topics)
        body = encode_topic(index, topic)
        end = self.pos + FRAME_SIZE + len(body)
        if end > self.limit:
            self._roll(FRAME_SIZE + len(body))
            return self._define_topic(topic)
        mm = self.mm
        assert mm is not None
        mm[self.pos : end] = frame(body)
        self.pos = end
        self.topics[topic] = index
        return index

    def open_segment(self, needed: int = 0) -> None:
        """Start a new segment (allocated in full, mapped for writing)."""
        spool = self.spool
        size = max(spool.segment_bytes, HEADER_SIZE + needed)
        number = self.segments[-1].number + 1 if self.segments else 0
        path = self.path / f"{number:016d}.seg"
        header = SegmentHeader(KIND_SEGMENT, self.log_id, number, self.next_id, _now_ms())
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            spool.allocate(fd, size)
            os.pwrite(fd, header.encode(), 0)
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        segment = _Segment(number, self.next_id, path)
        segment.size = size
        with spool.lock:
            self.fd, self.mm, self.pos, self.limit = fd, mm, HEADER_SIZE, size
            self.topics = {}
            self.segment = segment
            self.segments.append(segment)
            self.bases.append(segment.base)
            spool.disk_bytes += size
        if spool.fsync_mode != "never":
            spool.dirty_dirs.add(self.path)
            if spool.fsync_always:
                _fsync_dir(self.path)

    def _roll(self, needed: int) -> None:
        """Close the open segment and start the next one (or raise :class:`SpoolFull`)."""
        spool = self.spool
        size = max(spool.segment_bytes, HEADER_SIZE + needed)
        with spool.lock:
            closing = self.segment
            # The closed segment shrinks to what it holds.
            after = spool.disk_bytes - (closing.size - self.pos if closing else 0) + size
        if after > spool.max_bytes:
            spool.run_pending_deletes()
            with spool.lock:
                after = spool.disk_bytes - (closing.size - self.pos if closing else 0) + size
            if after > spool.max_bytes:
                raise SpoolFull(
                    "spool_full",
                    f"the spool is full (spool_max_bytes={spool.max_bytes} bytes)",
                )
        self.close_segment()
        try:
            self.open_segment(needed)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SpoolFull(
                    "spool_disk_full",
                    f"the disk of spool_dir has no room for a new segment: {_describe(exc)}",
                ) from None
            raise SpoolFull(
                "spool_io_error", f"cannot start a spool segment: {_describe(exc)}"
            ) from None

    def close_segment(self) -> None:
        """Stop writing the open segment: shrink it to its records and unmap it."""
        segment = self.segment
        if segment is None:
            return
        spool = self.spool
        mm, fd, pos = self.mm, self.fd, self.pos
        if mm is not None:
            mm.close()
        with contextlib.suppress(OSError):
            os.ftruncate(fd, pos)
        with spool.lock:
            spool.disk_bytes -= segment.size - pos
            segment.size = pos
            segment.valid_end = pos
            segment.closed = True
            self.segment = None
            self.mm = None
            self.fd = -1
            self.limit = 0
        if spool.fsync_mode == "never":
            os.close(fd)
        else:
            spool.to_sync.append(fd)
            if spool.fsync_always:
                spool.sync_now()
        self.maybe_delete(segment)

    # -- journal (sender thread, or a caller's thread for drops) -------------------------

    def _journal(self, segment: _Segment, body: bytes) -> None:
        """Append an entry to a segment's journal (under the spool's lock)."""
        spool = self.spool
        fd = segment.jfd
        if fd is None:
            path = segment.journal_path
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            segment.jfd = fd
            if os.fstat(fd).st_size == 0:
                header = SegmentHeader(
                    KIND_JOURNAL, self.log_id, segment.number, segment.base, _now_ms()
                ).encode()
                os.write(fd, header)
                segment.jsize = len(header)
                spool.disk_bytes += len(header)
                if spool.fsync_always:
                    _fsync_dir(self.path)
                else:
                    spool.dirty_dirs.add(self.path)
            else:
                segment.jsize = os.fstat(fd).st_size
        data = frame(body)
        os.write(fd, data)
        segment.jsize += len(data)
        spool.disk_bytes += len(data)
        if spool.fsync_always:
            os.fdatasync(fd)

    def segment_index(self, record_id: int) -> int:
        return bisect.bisect_right(self.bases, record_id) - 1

    def sealed(self, batch: ProducerBatch, producer_id: int, epoch: int, sequence: int) -> None:
        ids = batch.spool_ids
        assert ids is not None
        with self.spool.lock:
            if batch.spool_serial < 0:
                batch.spool_serial = self.next_serial
                self.next_serial += 1
            index = self.segment_index(ids[0])
            self._journal(
                self.segments[index],
                encode_sealed(
                    batch.spool_serial,
                    producer_id,
                    epoch,
                    sequence,
                    batch.topic,
                    batch.partition,
                    ids,
                ),
            )

    def cancel(self, batch: ProducerBatch) -> None:
        ids = batch.spool_ids
        if ids is None or batch.spool_serial < 0:
            return
        with self.spool.lock:
            self._journal(
                self.segments[self.segment_index(ids[0])], encode_cancel(batch.spool_serial)
            )

    def resolve(self, ids: array[int], reason: int, serial: int = -1) -> None:
        """Records need no delivery any more: journal it, delete what it frees."""
        spool = self.spool
        freed: list[_Segment] = []
        with spool.lock:
            i, n = 0, len(ids)
            segments, bases = self.segments, self.bases
            while i < n:
                index = bisect.bisect_right(bases, ids[i]) - 1
                if index < 0:
                    i += 1
                    continue
                segment = segments[index]
                upper = bases[index + 1] if index + 1 < len(bases) else None
                j = n if upper is None else bisect.bisect_left(ids, upper, i)
                self._journal(segment, encode_resolved(reason, serial, ids[i:j]))
                segment.resolved += j - i
                if segment.closed and segment.resolved >= segment.count:
                    freed.append(segment)
                i = j
            if reason == REASON_ACKED:
                spool.resolved_acked += n
        for segment in freed:
            self.maybe_delete(segment)

    def maybe_delete(self, segment: _Segment) -> None:
        """Delete a closed segment whose records are all resolved and read."""
        spool = self.spool
        with spool.lock:
            if not segment.closed or segment.resolved < segment.count:
                return
            if segment not in self.segments:
                return
            index = self.segments.index(segment)
            cursor = self.cursor
            if cursor is not None and cursor.index <= index:
                return  # records in it are still to be read back
            # The records go first: a journal without its segment describes
            # nothing, a segment without its journal would be sent again.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(segment.path)
            if segment.jfd is not None:
                os.close(segment.jfd)
                segment.jfd = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(segment.journal_path)
            del self.segments[index]
            del self.bases[index]
            if cursor is not None:
                cursor.index -= 1
            spool.disk_bytes -= segment.size + segment.jsize
            spool.segments_deleted += 1
            if self.primary or self.segments or (cursor is not None):
                return
        self.finish()

    def unresolved(self) -> int:
        return sum(s.count - s.resolved for s in self.segments)

    def finish(self) -> None:
        """Delete the emptied log directory and let go of its lock."""
        if self.finished:
            return
        self.finished = True
        for segment in self.segments:
            if segment.jfd is not None:
                os.close(segment.jfd)
                segment.jfd = None
            for path in (segment.path, segment.journal_path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        with self.spool.lock:
            self.spool.disk_bytes -= sum(s.size + s.jsize for s in self.segments)
        self.segments.clear()
        self.bases.clear()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path / LOCK_FILE)
        with contextlib.suppress(OSError):
            os.rmdir(self.path)
        self.release()

    def release(self) -> None:
        if self.lock_fd is not None:
            # Closing, not unlocking: in a forked child the lock is the
            # parent's, and closing our copy leaves it held.
            os.close(self.lock_fd)
            self.lock_fd = None

    def close_files(self) -> None:
        """Close every descriptor and mapping (keeping the files)."""
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for segment in self.segments:
            if segment.jfd is not None:
                os.close(segment.jfd)
                segment.jfd = None
        if self.cursor is not None:
            self.cursor.close()

    # -- reading records back (sender thread) ----------------------------------------

    def has_backlog(self) -> bool:
        cursor = self.cursor
        return self.held is not None or (cursor is not None and cursor.next_id < self.next_id)

    def start_backlog(self) -> None:
        """The next record written is the first one not placed in memory (primary log)."""
        segment = self.segment
        assert segment is not None
        self.cursor = _Cursor(
            len(self.segments) - 1,
            self.pos,
            self.next_id,
            {index: name for name, index in self.topics.items()},
        )

    def read(self, budget: int, limit: int, overhead: int, take_one: bool) -> list[LoadedRecord]:
        """Up to ``limit`` records from the cursor on, costing at most ``budget`` bytes.

        A record costs its payload plus ``overhead``. With ``take_one`` the
        first record is taken whatever its cost (a record larger than the
        whole buffer must still be delivered); one that does not fit waits
        for the next call.
        """
        out: list[LoadedRecord] = []
        spent = 0
        while len(out) < limit:
            record = self.held
            if record is None:
                record = self._next_record()
                if record is None:
                    break
            cost = record.size + overhead
            if spent + cost > budget and not (take_one and not out):
                self.held = record
                break
            self.held = None
            out.append(record)
            spent += cost
        return out

    def _next_record(self) -> LoadedRecord | None:
        cursor = self.cursor
        if cursor is None:
            return None
        plan = self.plan
        pinned = self.pinned_ids
        while True:
            frames = cursor.frames
            while frames:
                body = frames.popleft()
                kind = body[0]
                if kind == E_TOPIC:
                    entry = decode_entry(body)
                    assert isinstance(entry, TopicEntry)
                    cursor.topics[entry.index] = entry.name
                    continue
                if kind not in _RECORD_KINDS:
                    continue
                record_id = cursor.next_id
                cursor.next_id += 1
                if plan is not None and (record_id in pinned or plan.is_resolved(record_id)):
                    continue
                record = decode_entry(body)
                assert isinstance(record, RecordEntry)
                return LoadedRecord(
                    self,
                    record_id,
                    cursor.topics.get(record.topic_index, ""),
                    record.partition,
                    record.timestamp,
                    record.key,
                    record.value,
                    record.headers,
                )
            if cursor.next_id >= self.next_id or not self._read_frames(cursor):
                return None

    def _read_frames(self, cursor: _Cursor) -> bool:
        """Read the next frames into the cursor; False when there is nothing more yet."""
        with self.spool.lock:
            # Segments before the cursor may be deleted meanwhile (by another
            # thread), which shifts the indices: look up under the lock.
            if cursor.index >= len(self.segments):
                return False
            segment = self.segments[cursor.index]
            current = segment is self.segment
            end = self.pos if current else segment.valid_end
            if cursor.scan_pos >= end:
                if current or cursor.index + 1 >= len(self.segments):
                    return False  # the writer has not gone further yet
                cursor.close()
                cursor.index += 1
                following = self.segments[cursor.index]
                cursor.scan_pos = HEADER_SIZE
                cursor.next_id = following.base
                cursor.topics = {}
                # The segment just left may have been waiting for the cursor.
                self.spool.pending_deletes.append((self, segment))
                return True
        if cursor.fd is None:
            cursor.fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
        available = end - cursor.scan_pos
        data = os.pread(cursor.fd, min(_READ_CHUNK, available), cursor.scan_pos)
        scan = parse_frames(data)
        if not scan.bodies and scan.status == "more" and len(data) < available:
            # A frame larger than a chunk: read it whole.
            data = os.pread(cursor.fd, available, cursor.scan_pos)
            scan = parse_frames(data)
        if not scan.bodies:
            # What is left of the segment cannot be read (a torn or corrupt
            # tail, counted when the log was adopted): cut it off.
            cursor.scan_pos = end
            return True
        cursor.frames.extend(body for _, body in scan.bodies)
        cursor.scan_pos += scan.end
        return True

    def read_records(self, wanted: set[int]) -> dict[int, LoadedRecord]:
        """The records with these ids (for the sealed batches of a replay)."""
        found: dict[int, LoadedRecord] = {}
        if not wanted:
            return found
        low, high = min(wanted), max(wanted)
        for segment in self.segments:
            if segment.base > high or segment.base + segment.count <= low:
                continue
            data = _read_file(segment.path)
            for index, topic, record in iter_records(data, end=segment.valid_end):
                record_id = segment.base + index
                if record_id in wanted:
                    found[record_id] = LoadedRecord(
                        self,
                        record_id,
                        topic,
                        record.partition,
                        record.timestamp,
                        record.key,
                        record.value,
                        record.headers,
                    )
        return found


# -- the spool of a Sink ----------------------------------------------------------------


class _ReplayReport:
    """The report of records replayed from a log: they have no future any more."""

    __slots__ = ("_spool",)

    def __init__(self, spool: Spool) -> None:
        self._spool = spool

    def delivered(self, count: int) -> None:
        self._spool.replayed_delivered += count

    def failed(self, error: Any, records: Sequence[UndeliveredRecord]) -> None:
        self._spool.replayed_failed += len(records)


class Spool:
    """The spool of one :class:`~kafka_sink.Sink`: its own log and the logs it adopted.

    Built by :meth:`open`; used by the accumulator (writing, reading back),
    the sender (journal) and the Sink (metrics, close). See the module
    docstring.
    """

    def __init__(self, config: SinkConfig, root: Path) -> None:
        self.root = root
        self.segment_bytes = config.spool_segment_bytes
        self.max_bytes = config.spool_max_bytes
        self.fsync_mode = config.spool_fsync
        self.fsync_always = config.spool_fsync == "always"
        self.fsync_interval = config.spool_fsync_interval_ms / 1000.0
        self.compression = Compression.from_name(config.compression_type)
        self.batch_size = config.batch_size
        self.lock = threading.Lock()
        self.owner_pid = os.getpid()
        self.primary: SpoolLog | None = None
        self.adopted: list[SpoolLog] = []
        self.disk_bytes = 0
        self.dirty_dirs: set[Path] = set()
        self.to_sync: list[int] = []
        self.pending_deletes: list[tuple[SpoolLog, _Segment]] = []
        #: True while records go straight to their batches; False while some
        #: are on disk only (the buffer was full, or adopted logs are draining).
        self.direct = True
        self.owners: deque[list[Any]] = deque()
        self.backlog = 0
        self.replay_report = _ReplayReport(self)
        self.pinned: list[ProducerBatch] = []
        self.broken: list[ProducerBatch] = []
        # Counters for metrics().
        self.replayed_records = 0
        self.replayed_batches = 0
        self.replayed_delivered = 0
        self.replayed_failed = 0
        self.truncated_entries = 0
        self.truncated_bytes = 0
        self.duplicate_risk = 0
        self.dead_lettered = 0
        self.resolved_acked = 0
        self.segments_deleted = 0
        self.fsyncs = 0
        self.foreign_files = 0
        self.adopted_logs = 0
        self.journal_errors = 0
        self.dead_letter_fd: int | None = None
        self.dead_letter_topics: dict[str, int] = {}
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, config: SinkConfig) -> Spool:
        """Create this process's log in ``spool_dir`` and adopt the orphaned ones.

        Raises :class:`~kafka_sink.SpoolError` when the directory cannot be
        used; nothing of the spool is changed then.
        """
        assert config.spool_dir is not None
        root = Path(config.spool_dir)
        spool = cls(config, root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(
                f"cannot create spool_dir {str(root)!r}: {_describe(exc)}", path=str(root)
            ) from None
        if not root.is_dir():
            raise SpoolError(f"spool_dir {str(root)!r} is not a directory", path=str(root))
        spool._clean_stale_new_logs()
        orphans = spool._lock_orphans()
        try:
            analyses = [(path, fd, analyze_log(path)) for path, fd in orphans]
            spool.primary = spool._create_log()
            while analyses:
                path, fd, analysis = analyses.pop(0)
                orphans.remove((path, fd))
                spool._adopt(path, fd, analysis)
        except BaseException as exc:
            for _, fd in orphans:
                os.close(fd)
            spool.abandon()
            if spool.primary is not None:
                spool.primary.finish()
            if isinstance(exc, SpoolVersionError):
                raise SpoolError(exc.message, path=exc.context.get("path")) from None
            if isinstance(exc, OSError):
                raise SpoolError(
                    f"cannot write to spool_dir {str(root)!r}: {_describe(exc)}", path=str(root)
                ) from None
            raise
        if not spool.direct:
            # Records produced while adopted logs drain wait behind them, on disk.
            spool.primary.start_backlog()
        if spool.fsync_mode == "interval":
            spool._start_syncer()
        return spool

    def _clean_stale_new_logs(self) -> None:
        # A process that died between creating its log and renaming it into place.
        for entry in os.listdir(self.root):
            if not entry.startswith(_TMP_PREFIX):
                continue
            path = self.root / entry
            fd = _try_lock(path)
            if fd is None:
                continue
            try:
                if set(os.listdir(path)) <= {LOCK_FILE}:
                    with contextlib.suppress(OSError):
                        os.unlink(path / LOCK_FILE)
                        os.rmdir(path)
            finally:
                os.close(fd)

    def _lock_orphans(self) -> list[tuple[Path, int]]:
        found: list[tuple[Path, int]] = []
        for entry in sorted(os.listdir(self.root)):
            path = self.root / entry
            if not _LOG_NAME.match(entry):
                if entry != DEAD_LETTER_DIR and not entry.startswith(_TMP_PREFIX):
                    self.foreign_files += 1
                continue
            fd = _try_lock(path)
            if fd is not None:
                found.append((path, fd))
        return found

    def _create_log(self) -> SpoolLog:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        micros = int(time.time() * 1_000_000) % 1_000_000
        name = f"{stamp}.{micros:06d}Z-p{os.getpid()}-{secrets.token_hex(4)}"
        hidden = self.root / f"{_TMP_PREFIX}{name}"
        final = self.root / name
        os.mkdir(hidden)
        fd = -1
        try:
            fd = os.open(
                hidden / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
            )
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_owner(fd)
            os.rename(hidden, final)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(hidden / LOCK_FILE)
            with contextlib.suppress(OSError):
                os.rmdir(hidden)
            raise
        log = SpoolLog(self, final, fd, secrets.token_bytes(16), primary=True)
        try:
            log.open_segment()
        except BaseException:
            log.finish()  # an empty log: nothing of it may stay
            raise
        if self.fsync_mode != "never":
            _fsync_dir(self.root)
        return log

    def _adopt(self, path: Path, fd: int, analysis: LogAnalysis) -> None:
        plan = analysis.plan
        self.truncated_entries += analysis.truncated_entries
        self.truncated_bytes += analysis.truncated_bytes
        self.foreign_files += len(analysis.foreign)
        for leftover in analysis.leftovers:
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        _write_owner(fd)
        log = SpoolLog(self, path, fd, analysis.log_id or b"\x00" * 16, primary=False)
        log.plan = plan
        log.next_serial = plan.next_serial
        log.next_id = plan.next_id
        by_number = {f.number: f for f in analysis.segments}
        for state in plan.segments:
            info = by_number[state.number]
            segment = _Segment(state.number, state.base_id, info.path)
            segment.count = state.count
            segment.resolved = count_bits(state.resolved)
            segment.size = info.size
            segment.valid_end = info.valid_end
            segment.closed = True
            segment.first_timestamp = info.first_timestamp
            segment.jsize = info.journal_size
            log.segments.append(segment)
            log.bases.append(segment.base)
            self.disk_bytes += segment.size + segment.jsize
        self.adopted_logs += 1
        if not plan.unresolved:
            log.finish()
            return
        # Sealed batches first: they go back to the front of their partitions.
        wanted = {i for batch in plan.sealed for i in batch.ids}
        records = log.read_records(wanted)
        for sealed in plan.sealed:
            batch = self._pinned_batch(log, sealed, records)
            if batch is None:
                continue
            self.pinned.append(batch)
            log.pinned_ids.update(sealed.ids)
        for broken in plan.broken:
            # Some of its records are gone (a torn segment): what is left is
            # sent as never sealed, and may repeat what reached the broker.
            self.duplicate_risk += len(broken.ids)
        first = log.segments[0] if log.segments else None
        if first is not None:
            log.cursor = _Cursor(0, HEADER_SIZE, first.base, {})
            self.direct = False
        self.backlog += plan.unresolved - sum(
            b.record_count for b in self.pinned if b.spool_log is log
        )
        self.adopted.append(log)

    def _pinned_batch(
        self, log: SpoolLog, sealed: SealedBatch, records: dict[int, LoadedRecord]
    ) -> ProducerBatch | None:
        if any(i not in records for i in sealed.ids):
            self.duplicate_risk += len(sealed.ids)
            return None
        batch = ProducerBatch(sealed.topic, sealed.partition, self.compression, 2**31 - 1, 0.0)
        for record_id in sealed.ids:
            record = records[record_id]
            batch.builder.append(record.timestamp, record.key, record.value, record.headers)
            batch.add(None, self.replay_report)
            batch.reserved += record.size
        batch.spool_log = log
        batch.spool_ids = array("q", sealed.ids)
        batch.spool_serial = sealed.serial
        batch.pinned = True
        batch.sealed = True
        batch.producer_id = sealed.producer_id
        batch.producer_epoch = sealed.producer_epoch
        batch.sequence = sealed.base_sequence
        batch.attempts = 1  # it may have been sent: never evicted, never re-sequenced
        self.replayed_batches += 1
        self.replayed_records += len(sealed.ids)
        return batch

    # -- the callers' threads (under the accumulator's lock) -----------------------------

    def spill(
        self, record_id: int, future: DeliveryFuture | None, report: DeliveryReport | None
    ) -> None:
        """A record written to the spool only: remember who hears of its outcome."""
        owners = self.owners
        if future is None and owners:
            last = owners[-1]
            if last[2] is None and last[3] is report and last[0] + last[1] == record_id:
                last[1] += 1
                self.backlog += 1
                return
        owners.append([record_id, 1, future, report])
        self.backlog += 1

    def take_owner(self, record_id: int) -> tuple[DeliveryFuture | None, DeliveryReport | None]:
        """The future or report of a spilled record being placed (in id order)."""
        owners = self.owners
        while owners:
            head = owners[0]
            first, count = head[0], head[1]
            if record_id < first:
                break
            if record_id >= first + count:
                owners.popleft()  # dropped while on disk
                continue
            if record_id + 1 >= first + count:
                owners.popleft()
            else:
                head[0] = record_id + 1
                head[1] = first + count - record_id - 1
            return head[2], head[3]
        return None, self.replay_report

    def run_pending_deletes(self) -> None:
        pending, self.pending_deletes = self.pending_deletes, []
        for log, segment in pending:
            log.maybe_delete(segment)

    # -- reading back (sender thread) -----------------------------------------------------

    def read_backlog(
        self, budget: int, limit: int, overhead: int, take_one: bool
    ) -> list[LoadedRecord]:
        """The next records that are on disk only: adopted logs first, oldest first.

        See :meth:`SpoolLog.read` for ``budget``, ``overhead`` and ``take_one``.
        """
        out: list[LoadedRecord] = []
        spent = 0
        for log in list(self.adopted):
            if log.cursor is None:
                continue
            got = log.read(budget - spent, limit - len(out), overhead, take_one and not out)
            out.extend(got)
            spent += sum(r.size + overhead for r in got)
            if log.has_backlog():
                return out  # an older log comes first, wholly
            # Read to its end: what is left of it is in memory.
            log.cursor.close()
            log.cursor = None
            for segment in list(log.segments):
                log.maybe_delete(segment)
            if not log.segments:
                log.finish()
        primary = self.primary
        if primary is not None and primary.cursor is not None and len(out) < limit:
            out.extend(
                primary.read(budget - spent, limit - len(out), overhead, take_one and not out)
            )
        self.run_pending_deletes()
        return out

    def logs(self) -> list[SpoolLog]:
        """The adopted logs, oldest first, then this Sink's own."""
        own = [self.primary] if self.primary is not None else []
        return [log for log in self.adopted if not log.finished] + own

    def has_room(self) -> bool:
        """Whether a new segment fits within ``spool_max_bytes``."""
        return self.disk_bytes + self.segment_bytes <= self.max_bytes

    def adopted_pending(self) -> bool:
        return any(log.cursor is not None for log in self.adopted)

    def backlog_done(self) -> bool:
        """Nothing is on disk only any more (under the accumulator's lock)."""
        if self.adopted_pending():
            return False
        primary = self.primary
        return primary is None or not primary.has_backlog()

    def stop_backlog(self) -> None:
        primary = self.primary
        if primary is not None and primary.cursor is not None:
            primary.cursor.close()
            primary.cursor = None
            for segment in list(primary.segments):
                primary.maybe_delete(segment)
        self.direct = True

    # -- journal (sender thread) ----------------------------------------------------------

    def sealed(self, batch: ProducerBatch, producer_id: int, epoch: int, sequence: int) -> None:
        log = batch.spool_log
        if log is not None and self._mine():
            log.sealed(batch, producer_id, epoch, sequence)

    def acked(self, batch: ProducerBatch) -> None:
        log = batch.spool_log
        if log is not None and batch.spool_ids is not None and self._mine():
            try:
                log.resolve(batch.spool_ids, REASON_ACKED, batch.spool_serial)
            except OSError:
                # Not journaled (a full disk): a replay would send the batch
                # again, and the broker recognises it as long as it knows the
                # producer. Counted; delivery goes on.
                self.journal_errors += 1

    def cancelled(self, batch: ProducerBatch) -> None:
        log = batch.spool_log
        if log is not None and self._mine():
            try:
                log.cancel(batch)
            except OSError:
                self.journal_errors += 1

    def dropped(self, log: SpoolLog, ids: array[int]) -> None:
        if self._mine() and len(ids):
            try:
                log.resolve(ids, REASON_DROPPED)
            except OSError:
                self.journal_errors += 1

    def dead_letter(
        self,
        log: SpoolLog | None,
        ids: array[int] | None,
        records: Sequence[tuple[str, int, int, bytes | None, bytes | None, Sequence[Header]]],
        why: str,
        serial: int = -1,
    ) -> None:
        """Move records that can never be delivered to the dead-letter file.

        ``records`` are ``(topic, partition, timestamp, key, value, headers)``.
        They are written there before they are resolved in their log, so a
        crash in between keeps them in both places, never in neither.
        """
        if not self._mine() or log is None or ids is None:
            return
        try:
            self._write_dead_letters(log, records, why)
            log.resolve(ids, REASON_DEAD_LETTER, serial)
        except OSError:
            # Kept where they are (unresolved) rather than lost: the next Sink
            # on the spool tries again.
            self.journal_errors += 1

    def _write_dead_letters(
        self,
        log: SpoolLog,
        records: Sequence[tuple[str, int, int, bytes | None, bytes | None, Sequence[Header]]],
        why: str,
    ) -> None:
        with self.lock:
            fd = self._dead_letter_fd(log)
            chunks = [frame(encode_note(why))]
            for topic, partition, timestamp, key, value, headers in records:
                index = self.dead_letter_topics.get(topic)
                if index is None:
                    index = len(self.dead_letter_topics)
                    self.dead_letter_topics[topic] = index
                    chunks.append(frame(encode_topic(index, topic)))
                chunks.append(
                    frame(encode_record(index, timestamp, key, value, partition, tuple(headers)))
                )
            data = b"".join(chunks)
            os.write(fd, data)
            if self.fsync_mode != "never":
                os.fsync(fd)
            self.dead_lettered += len(records)

    def _dead_letter_fd(self, log: SpoolLog) -> int:
        if self.dead_letter_fd is None:
            folder = self.root / DEAD_LETTER_DIR
            folder.mkdir(exist_ok=True)
            path = folder / f"{self.primary.name if self.primary else log.name}.seg"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            if os.fstat(fd).st_size == 0:
                header = SegmentHeader(KIND_DEAD_LETTER, log.log_id, 0, 0, _now_ms()).encode()
                os.write(fd, header)
            self.dead_letter_fd = fd
            self.dead_letter_topics = {}
        return self.dead_letter_fd

    def add_duplicate_risk(self, count: int) -> None:
        self.duplicate_risk += count

    def _mine(self) -> bool:
        # A forked child never writes to its parent's files.
        return os.getpid() == self.owner_pid

    # -- disk -----------------------------------------------------------------------------

    def allocate(self, fd: int, size: int) -> None:
        """Reserve a segment's blocks (a seam for tests that simulate a full disk)."""
        os.posix_fallocate(fd, 0, size)

    def sync_now(self) -> None:
        """Force what was written to the disk (the open segment, journals, directories)."""
        with self.lock:
            fds = []
            primary = self.primary
            if primary is not None and primary.fd >= 0:
                fds.append(os.dup(primary.fd))
            for log in [primary, *self.adopted]:
                if log is None:
                    continue
                for segment in log.segments:
                    if segment.jfd is not None:
                        fds.append(os.dup(segment.jfd))
            closing, self.to_sync = self.to_sync, []
            dirs, self.dirty_dirs = self.dirty_dirs, set()
        for fd in fds + closing:
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)
        for path in dirs:
            with contextlib.suppress(OSError):
                _fsync_dir(path)
        self.fsyncs += 1

    def _start_syncer(self) -> None:
        thread = threading.Thread(
            target=self._sync_loop, name="kafka-sink-spool-fsync", daemon=True
        )
        self._syncer = thread
        thread.start()

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.fsync_interval):
            if not self._mine():
                return
            with contextlib.suppress(Exception):  # never let the thread die: counted below
                self.sync_now()

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Make the files durable, delete the logs with nothing left, release the locks."""
        if not self._mine():
            self.abandon()
            return
        self._stop.set()
        syncer = self._syncer
        if syncer is not None and syncer is not threading.current_thread():
            syncer.join(5.0)
        primary = self.primary
        if primary is not None:
            primary.close_segment()
        if self.fsync_mode != "never":
            self.sync_now()
        for fd in self.to_sync:
            os.close(fd)
        self.to_sync = []
        for log in [primary, *self.adopted]:
            if log is None or log.finished:
                continue
            if log.cursor is not None:
                log.cursor.close()
                log.cursor = None
            for segment in list(log.segments):
                log.maybe_delete(segment)
            if not log.segments or log.unresolved() == 0:
                log.finish()
            else:
                log.close_files()
                log.release()
        if self.dead_letter_fd is not None:
            os.close(self.dead_letter_fd)
            self.dead_letter_fd = None

    def abandon(self) -> None:
        """Drop every descriptor without touching the files (a forked child's copy)."""
        self._stop.set()
        for log in [self.primary, *self.adopted]:
            if log is None:
                continue
            with contextlib.suppress(OSError, BufferError, ValueError):
                log.close_files()
            with contextlib.suppress(OSError):
                log.release()
        for fd in self.to_sync:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.to_sync = []
        if self.dead_letter_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.dead_letter_fd)
            self.dead_letter_fd = None

    # -- metrics ----------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        with self.lock:
            logs = [log for log in [self.primary, *self.adopted] if log is not None]
            segments = sum(len(log.segments) for log in logs)
            oldest: int | None = None
            for log in logs:
                for segment in log.segments:
                    if segment.resolved < segment.count and segment.first_timestamp is not None:
                        if oldest is None or segment.first_timestamp < oldest:
                            oldest = segment.first_timestamp
                        break
            unresolved = sum(log.unresolved() for log in logs)
        age = max(0.0, time.time() - oldest / 1000.0) if oldest is not None else 0.0
        return {
            "spool_dir": str(self.primary.path) if self.primary is not None else str(self.root),
            "spool_bytes": self.disk_bytes,
            "spool_bytes_limit": self.max_bytes,
            "spool_segments": segments,
            "spool_records_unresolved": unresolved,
            "spool_records_on_disk_only": self.backlog,
            "spool_oldest_record_age_s": round(age, 3),
            "spool_adopted_logs": self.adopted_logs,
            "spool_replayed_records": self.replayed_records,
            "spool_replayed_batches": self.replayed_batches,
            "spool_replayed_delivered": self.replayed_delivered,
            "spool_truncated_entries": self.truncated_entries,
            "spool_truncated_bytes": self.truncated_bytes,
            "spool_duplicate_risk_records": self.duplicate_risk,
            "spool_dead_letter_records": self.dead_lettered,
            "spool_foreign_files": self.foreign_files,
            "spool_segments_deleted": self.segments_deleted,
            "spool_fsyncs": self.fsyncs,
            "spool_journal_errors": self.journal_errors,
        }


def _try_lock(path: Path) -> int | None:
    """The lock of a log whose owner is gone, held; None if it is alive (or not a log)."""
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The lock file must still be the directory's: a process finishing the
        # log deletes it after we opened it.
        mine, now = os.fstat(fd), os.stat(path / LOCK_FILE)
        if (mine.st_ino, mine.st_dev) != (now.st_ino, now.st_dev):
            raise BlockingIOError
    except OSError:
        os.close(fd)
        return None
    return fd


def _write_owner(fd: int) -> None:
    """Who holds the lock, for ``kafka-sink spool inspect``."""
    text = json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "since_ms": _now_ms()}
    ).encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)


def lock_state(path: Path) -> str:
    """``"live"`` when a process holds the log's lock, ``"orphaned"`` when nobody does."""
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return "no lock file"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return "live"
    finally:
        os.close(fd)
    return "orphaned"


def inspect_spool(root: Path) -> dict[str, Any]:
    """A read-only description of a spool directory (``kafka-sink spool inspect``).

    ``root`` is a ``spool_dir`` or one log directory in it.
    """
    log_dirs: list[Path] = []
    foreign: list[str] = []
    if (root / LOCK_FILE).exists() or any(_SEGMENT_FILE.match(e) for e in os.listdir(root)):
        log_dirs.append(root)
    else:
        for entry in sorted(os.listdir(root)):
            if _LOG_NAME.match(entry):
                log_dirs.append(root / entry)
            elif entry != DEAD_LETTER_DIR and not entry.startswith(_TMP_PREFIX):
                foreign.append(entry)
    logs = []
    for path in log_dirs:
        logs.append(_describe_log(path))
    dead: list[dict[str, Any]] = []
    dead_dir = root / DEAD_LETTER_DIR
    if dead_dir.is_dir():
        for entry in sorted(os.listdir(dead_dir)):
            dead.append(_describe_dead_letters(dead_dir / entry))
    return {"path": str(root), "logs": logs, "dead_letter": dead, "foreign": foreign}


def _describe_log(path: Path) -> dict[str, Any]:
    state = lock_state(path)
    try:
        analysis = analyze_log(path)
    except SpoolFormatError as exc:
        return {"path": str(path), "state": state, "error": exc.message}
    plan = analysis.plan
    topics: dict[str, dict[str, Any]] = {}
    for info, segment in zip(analysis.segments, plan.segments, strict=True):
        data = _read_file(info.path)
        for index, topic, record in iter_records(data, end=info.valid_end):
            if segment.is_resolved(index):
                continue
            entry = topics.setdefault(topic, {"unresolved": 0, "oldest_timestamp_ms": None})
            entry["unresolved"] += 1
            oldest = entry["oldest_timestamp_ms"]
            if oldest is None or record.timestamp < oldest:
                entry["oldest_timestamp_ms"] = record.timestamp
    return {
        "path": str(path),
        "state": state,
        "owner": analysis.owner,
        "segments": [
            {
                "file": info.path.name,
                "version": info.header.version,
                "records": info.records,
                "unresolved": segment.count - count_bits(segment.resolved),
                "bytes": info.size + info.journal_size,
                "torn_bytes": info.torn_bytes,
            }
            for info, segment in zip(analysis.segments, plan.segments, strict=True)
        ],
        "records": sum(s.count for s in plan.segments),
        "unresolved": plan.unresolved,
        "sealed_unacknowledged": [
            {
                "topic": b.topic,
                "partition": b.partition,
                "producer_id": b.producer_id,
                "producer_epoch": b.producer_epoch,
                "base_sequence": b.base_sequence,
                "records": len(b.ids),
            }
            for b in plan.sealed
        ],
        "sealed_incomplete": len(plan.broken),
        "topics": topics,
        "truncated_entries": analysis.truncated_entries,
        "truncated_bytes": analysis.truncated_bytes,
        "bytes": analysis.disk_bytes,
        "foreign": analysis.foreign,
    }


def _describe_dead_letters(path: Path) -> dict[str, Any]:
    data = _read_file(path)
    try:
        SegmentHeader.decode(data, str(path))
    except SpoolFormatError as exc:
        return {"file": path.name, "error": exc.message}
    topics: dict[str, int] = {}
    reasons: list[str] = []
    names: dict[int, str] = {}
    for _, body in parse_frames(data, HEADER_SIZE).bodies:
        entry = decode_entry(body)
        if isinstance(entry, NoteEntry):
            if entry.text not in reasons:
                reasons.append(entry.text)
        elif isinstance(entry, TopicEntry):
            names[entry.index] = entry.name
        elif isinstance(entry, RecordEntry):
            name = names.get(entry.topic_index, "")
            topics[name] = topics.get(name, 0) + 1
    return {
        "file": path.name,
        "records": sum(topics.values()),
        "topics": topics,
        "reasons": reasons,
    }
