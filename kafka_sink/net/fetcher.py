"""Reading a topic back: the offsets of its partitions and their records.

:class:`Fetcher` is a small blocking reader on top of a
:class:`~kafka_sink.Connection`, made for tools (``kafka-sink tail``) and
tests rather than for consumer groups: it has no group membership and commits
no offsets. It asks each partition's leader for offsets with ListOffsets and
for records with Fetch, one request per leader for all the partitions that
leader holds.

How it copes with what brokers answer:

- A leader that moved (``NOT_LEADER_OR_FOLLOWER``, ``UNKNOWN_TOPIC_OR_PARTITION``,
  a fenced or unknown leader epoch), a network failure and any other
  retriable error: metadata is refreshed and the request is retried after a
  back-off, up to the connection's ``send_max_attempts`` times in a row;
  the last error is raised after that. Records already returned are not
  returned again: positions only move past records that were handed out.
- ``OFFSET_OUT_OF_RANGE``: the records at the position are gone (retention
  or truncation) or not written yet. A position below the log start moves to
  the log start, one above the end moves to the end, and ``on_offset_reset``
  is told.
- Batches that start before the position (a compressed batch is returned
  whole), control batches (transaction markers) and a partial batch at the
  end of a partition's data are skipped; a partition that returned only a
  partial batch gets a larger byte limit in the next request.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass

from kafka_sink.config import BrokerAddress, check_int, check_topic
from kafka_sink.error_codes import KafkaErrorCode, describe_error
from kafka_sink.errors import (
    BrokerResponseError,
    InvalidArgumentError,
    KafkaSinkError,
    LeaderNotFoundError,
    NetworkError,
)
from kafka_sink.net.cluster import Connection
from kafka_sink.protocol.fetch import (
    FetchPartition,
    FetchPartitionResponse,
    FetchRequest,
    FetchResponse,
    FetchTopic,
)
from kafka_sink.protocol.list_offsets import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    READ_COMMITTED,
    READ_UNCOMMITTED,
    ListOffsetsRequest,
    ListOffsetsResponse,
)
from kafka_sink.protocol.records import Header, TimestampType

__all__ = ["FetchedRecord", "Fetcher", "OffsetRange", "OffsetResetCallback"]

_INT32_MAX = 0x7FFFFFFF

#: ``on_offset_reset(topic, partition, old_position, new_position)``.
OffsetResetCallback = Callable[[str, int, int, int], None]


@dataclass(frozen=True, slots=True)
class OffsetRange:
    """The offsets a partition holds: from ``earliest`` up to, not including, ``latest``.

    ``latest`` is the log end offset: the offset the next record will get.
    """

    earliest: int
    latest: int

    @property
    def size(self) -> int:
        """How many offsets lie in the range (compaction and transaction markers
        mean that fewer records may be read)."""
        return max(0, self.latest - self.earliest)


@dataclass(frozen=True, slots=True)
class FetchedRecord:
    """One record read from a partition; ``timestamp`` is in ms since the epoch."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: TimestampType
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


class Fetcher:
    """Reads records of a topic through a :class:`~kafka_sink.Connection`.

    Example::

        with Connection(broker_list="localhost:9092", timeout=10) as connection:
            fetcher = Fetcher(connection)
            ranges = fetcher.offsets("logs")                 # {0: OffsetRange(0, 42), ...}
            start = {p: max(r.earliest, r.latest - 5) for p, r in ranges.items()}
            end = {p: r.latest for p, r in ranges.items()}
            for record in fetcher.read("logs", start, end=end):  # the last 5 of each partition
                print(record.partition, record.offset, record.value)

    ``max_wait_ms`` is how long a broker may hold a fetch while it has
    nothing new (the long poll of :meth:`read` without an end);
    ``max_bytes`` bounds a response and ``partition_max_bytes`` each
    partition's share of it (both soft: a batch larger than the limit still
    comes whole when it is the first one). ``isolation_level`` 1
    (READ_COMMITTED) hides records of open and aborted transactions.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        max_wait_ms: int = 500,
        max_bytes: int = 8 << 20,
        partition_max_bytes: int = 1 << 20,
        isolation_level: int = READ_UNCOMMITTED,
        on_offset_reset: OffsetResetCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connection = connection
        self.max_wait_ms = check_int(max_wait_ms, "max_wait_ms", 0, _INT32_MAX)
        self.max_bytes = check_int(max_bytes, "max_bytes", 1, _INT32_MAX)
        self.partition_max_bytes = check_int(partition_max_bytes, "partition_max_bytes", 1)
        self.isolation_level = check_int(
            isolation_level, "isolation_level", READ_UNCOMMITTED, READ_COMMITTED
        )
        self._on_offset_reset = on_offset_reset
        self._sleep = sleep
        self._random = random.Random()
        # Per-partition byte limits raised after a partition returned only a
        # partial batch (a batch larger than partition_max_bytes).
        self._limits: dict[tuple[str, int], int] = {}
        self._nonfatal: deque[KafkaSinkError] = deque(
            maxlen=connection.config.max_logged_errors or 1
        )

    def __repr__(self) -> str:
        return f"<Fetcher {self.connection!r}>"

    def nonfatal_errors(self) -> list[KafkaSinkError]:
        """The last Fetch errors that a retry recovered from, oldest first.

        ListOffsets retries are the connection's
        (:meth:`~kafka_sink.Connection.nonfatal_errors`).
        """
        return list(self._nonfatal)

    # -- offsets ------------------------------------------------------------------------

    def list_offsets(
        self, topic: str, timestamp: int, partitions: Iterable[int] | None = None
    ) -> dict[int, int]:
        """The offset of each partition at ``timestamp``.

        ``timestamp`` is milliseconds since the epoch (the first offset whose
        record is at or after it, -1 when there is none), or
        :data:`~kafka_sink.protocol.list_offsets.EARLIEST_TIMESTAMP` /
        :data:`~kafka_sink.protocol.list_offsets.LATEST_TIMESTAMP`.
        ``partitions`` defaults to every partition of the topic.
        """
        check_topic(topic)
        wanted = self._partitions(topic, partitions)
        found: dict[int, int] = {}

        def attempt(refresh: bool) -> dict[int, int]:
            missing = [p for p in wanted if p not in found]
            for address, group in self._by_leader(topic, missing).items():
                request = ListOffsetsRequest.for_partitions(
                    topic, group, timestamp, self.isolation_level
                )
                response: ListOffsetsResponse = self.connection.broker(address).request(
                    request, self.connection.config.timeout
                )
                failure: BrokerResponseError | None = None
                for topic_response in response.topics:
                    if topic_response.name != topic:
                        continue
                    for part in topic_response.partitions:
                        if part.partition_index not in group:
                            continue
                        if part.error_code:
                            failure = failure or _broker_error(
                                part.error_code, topic, part.partition_index
                            )
                        else:
                            found[part.partition_index] = part.offset
                if failure is not None:
                    raise failure
            lost = [p for p in wanted if p not in found]
            if lost:
                raise BrokerResponseError(
                    -1,
                    f"ListOffsets answer leaves out {topic} partitions {lost}",
                    topic=topic,
                    retriable=True,
                )
            return {p: found[p] for p in wanted}

        return self.connection.retrying(attempt, topics=[topic])

    def offsets(
        self, topic: str, partitions: Iterable[int] | None = None
    ) -> dict[int, OffsetRange]:
        """The earliest and latest offset of each partition (default: every partition).

        Both come from ListOffsets; ``latest`` is then checked against the
        high watermark that a Fetch at that offset reports, and the larger
        one is kept: some Kafka-compatible brokers (Tansu 0.6) answer
        ListOffsets with the base offset of the last batch plus one instead
        of the log end offset.
        """
        wanted = self._partitions(topic, partitions)
        earliest = self.list_offsets(topic, EARLIEST_TIMESTAMP, wanted)
        latest = self.list_offsets(topic, LATEST_TIMESTAMP, wanted)
        for partition, watermark in self._high_watermarks(topic, latest).items():
            latest[partition] = max(latest[partition], watermark)
        return {p: OffsetRange(earliest[p], latest[p]) for p in wanted}

    def _high_watermarks(self, topic: str, offsets: dict[int, int]) -> dict[int, int]:
        """The high watermarks that Fetches at ``offsets`` report (a best-effort check).

        A partition whose leader fails to answer, or answers with an error, is
        left out: ListOffsets already answered for it.
        """
        found: dict[int, int] = {}
        for address, group in self._by_leader(topic, offsets).items():
            request = FetchRequest(
                # Not 0: Tansu 0.6 answers a fetch that may not wait with no data at all.
                max_wait_ms=1,
                max_bytes=self.max_bytes,
                isolation_level=self.isolation_level,
                topics=[
                    FetchTopic(topic, [FetchPartition(p, fetch_offset=offsets[p]) for p in group])
                ],
            )
            try:
                response: FetchResponse = self.connection.broker(address).request(
                    request, self.connection.config.timeout
                )
            except NetworkError:
                continue  # keep what ListOffsets said
            for topic_response in response.responses:
                for part in topic_response.partitions:
                    if topic_response.topic == topic and not part.error_code:
                        found[part.partition_index] = _readable_end(part, self.isolation_level)
        return found

    # -- records --------------------------------------------------------------------------

    def read(
        self,
        topic: str,
        start: Mapping[int, int],
        *,
        end: Mapping[int, int] | None = None,
    ) -> Generator[FetchedRecord, None, None]:
        """Yield the records of the partitions in ``start``, from their offsets on.

        With ``end`` (an offset per partition, usually the ``latest`` of
        :meth:`offsets`), each partition stops before its end offset and the
        iterator ends when every partition has; a partition that the broker
        says ends earlier (its log was truncated) stops there. Without
        ``end`` it follows the partitions: it long-polls for new records
        (``max_wait_ms``) and never ends; close it to stop.

        Records of one partition come in offset order; partitions interleave.
        """
        check_topic(topic)
        positions = {_partition(p): _offset(o, "start") for p, o in start.items()}
        stops: dict[int, int] | None = None
        if end is not None:
            stops = {_partition(p): _offset(o, "end") for p, o in end.items()}
            missing = sorted(set(positions) - set(stops))
            if missing:
                raise InvalidArgumentError("end", f"has no offset for partitions {missing}")
        self._partitions(topic, positions)  # the partitions must exist
        failures = 0
        while True:
            active = [p for p in positions if stops is None or positions[p] < stops[p]]
            if not active:
                return
            try:
                groups = self._by_leader(topic, active)
                # A caught-up reader long-polls each leader in turn: share the
                # wait so that one round takes about max_wait_ms in all.
                wait = self.max_wait_ms // len(groups)
                for address, group in groups.items():
                    yield from self._fetch(address, topic, group, positions, stops, wait)
                failures = 0
            except (NetworkError, LeaderNotFoundError, BrokerResponseError) as exc:
                if isinstance(exc, BrokerResponseError) and not exc.retriable:
                    raise
                failures += 1
                if failures >= self.connection.config.send_max_attempts:
                    raise
                if self.connection.config.max_logged_errors:
                    self._nonfatal.append(exc)
                self._backoff(failures)
                # A refresh that fails leaves the next attempt to fail and count.
                with contextlib.suppress(KafkaSinkError):
                    self.connection.refresh_metadata([topic])
            # Rotate the partitions: only the first non-empty one of a response
            # is sure to get a batch larger than its byte limit.
            positions = dict(list(positions.items())[1:] + list(positions.items())[:1])

    def _fetch(
        self,
        address: BrokerAddress,
        topic: str,
        group: list[int],
        positions: dict[int, int],
        stops: dict[int, int] | None,
        wait_ms: int,
    ) -> Iterator[FetchedRecord]:
        """One Fetch to one leader; yields its records and moves ``positions`` past them."""
        request = FetchRequest(
            max_wait_ms=wait_ms,
            max_bytes=self.max_bytes,
            isolation_level=self.isolation_level,
            topics=[
                FetchTopic(
                    topic,
                    [
                        FetchPartition(
                            p,
                            fetch_offset=positions[p],
                            partition_max_bytes=self._limits.get(
                                (topic, p), self.partition_max_bytes
                            ),
                        )
                        for p in group
                    ],
                )
            ],
        )
        timeout = self.connection.config.timeout + wait_ms / 1000.0
        response: FetchResponse = self.connection.broker(address).request(request, timeout)
        if response.error_code:
            raise _broker_error(response.error_code, topic, None)
        failure: BrokerResponseError | None = None
        for topic_response in response.responses:
            if topic_response.topic != topic:
                continue
            for part in topic_response.partitions:
                partition = part.partition_index
                if partition not in group:
                    continue
                if part.error_code == KafkaErrorCode.OFFSET_OUT_OF_RANGE:
                    self._reset(topic, partition, positions)
                elif part.error_code:
                    failure = failure or _broker_error(part.error_code, topic, partition)
                else:
                    yield from self._records(topic, part, positions, stops)
        if failure is not None:
            raise failure

    def _records(
        self,
        topic: str,
        part: FetchPartitionResponse,
        positions: dict[int, int],
        stops: dict[int, int] | None,
    ) -> Iterator[FetchedRecord]:
        partition = part.partition_index
        batches = part.batches()
        key = (topic, partition)
        if not batches:
            if part.records:
                # Only a partial batch came back: the batch is larger than the
                # partition's limit. Ask for twice as much next time.
                current = self._limits.get(key, self.partition_max_bytes)
                self._limits[key] = min(current * 2, self.max_bytes, _INT32_MAX)
            elif (
                stops is not None
                and 0 <= _readable_end(part, self.isolation_level) <= (positions[partition])
            ):
                # Nothing more to read: the log ends before the expected end.
                stops[partition] = positions[partition]
            return
        self._limits.pop(key, None)
        for batch in batches:
            next_position = batch.base_offset + batch.last_offset_delta + 1
            if next_position <= positions[partition]:
                continue  # entirely before the position
            if not batch.is_control:
                for record in batch.records:
                    if record.offset < positions[partition]:
                        continue
                    if stops is not None and record.offset >= stops[partition]:
                        break
                    positions[partition] = record.offset + 1
                    yield FetchedRecord(
                        topic,
                        partition,
                        record.offset,
                        record.timestamp,
                        batch.timestamp_type,
                        record.key,
                        record.value,
                        record.headers,
                    )
            positions[partition] = max(positions[partition], next_position)

    def _reset(self, topic: str, partition: int, positions: dict[int, int]) -> None:
        old = positions[partition]
        bounds = self.offsets(topic, [partition])[partition]
        new = bounds.earliest if old < bounds.earliest else bounds.latest
        positions[partition] = new
        if self._on_offset_reset is not None:
            self._on_offset_reset(topic, partition, old, new)

    # -- helpers --------------------------------------------------------------------------

    def _partitions(self, topic: str, partitions: Iterable[int] | None) -> list[int]:
        known = self.connection.partitions(topic)
        if partitions is None:
            return known
        wanted = [_partition(p) for p in partitions]
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise InvalidArgumentError(
                "partition", f"topic {topic!r} has no partition {unknown} (partitions: {known})"
            )
        return wanted

    def _by_leader(self, topic: str, partitions: Iterable[int]) -> dict[BrokerAddress, list[int]]:
        groups: dict[BrokerAddress, list[int]] = {}
        for partition in partitions:
            address = self.connection.leader_address(topic, partition)
            groups.setdefault(address, []).append(partition)
        return groups

    def _backoff(self, attempt: int) -> None:
        # As Connection.retrying: exponential, +-20 % jitter, at most 10 s.
        base = self.connection.config.retry_backoff / 1000.0 * (2 ** (attempt - 1))
        self._sleep(min(base, 10.0) * self._random.uniform(0.8, 1.2))


def _readable_end(part: FetchPartitionResponse, isolation_level: int) -> int:
    """Where the records a fetch may return end: the high watermark, or the LSO."""
    if isolation_level == READ_COMMITTED and part.last_stable_offset >= 0:
        return part.last_stable_offset
    return part.high_watermark


def _broker_error(code: int, topic: str, partition: int | None) -> BrokerResponseError:
    info = describe_error(code)
    where = topic if partition is None else f"{topic}-{partition}"
    return BrokerResponseError(
        code,
        f"{info.name} ({code}) for {where}: {info.description}",
        topic=topic,
        partition=partition,
    )


def _partition(value: object) -> int:
    return check_int(value, "partition", 0, _INT32_MAX)


def _offset(value: object, argument: str) -> int:
    return check_int(value, argument, 0)
