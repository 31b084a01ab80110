"""The synchronous producer: one ``send()``, one request, the broker's answer.

:class:`Producer` keeps the contract of Perl's ``Kafka::Producer``: a send
takes a topic, a partition and one message or a list of them, with optional
keys, timestamps, headers and a compression codec, and returns what the
broker answered. It encodes the messages into one RecordBatch v2, sends it to
the partition's leader and retries through the :class:`~kafka_sink.Connection`
(new leader, reconnect, back-off) when the error is retriable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from kafka_sink.config import (
    as_bytes,
    check_client_id,
    check_positive_number,
    header_pairs,
    is_header_pair,
)
from kafka_sink.constants import (
    BLOCK_UNTIL_IS_COMMITTED,
    NOT_SEND_ANY_RESPONSE,
    REQUEST_TIMEOUT,
    WAIT_WRITTEN_TO_LOCAL_LOG,
)
from kafka_sink.errors import BrokerResponseError, InvalidArgumentError, UnsupportedVersionError
from kafka_sink.net.cluster import Connection
from kafka_sink.protocol.apis import ApiKey
from kafka_sink.protocol.codecs import Compression, ensure_available
from kafka_sink.protocol.produce import (
    ZSTD_MIN_VERSION,
    PartitionProduceData,
    ProduceRequest,
    ProduceResponse,
    TopicProduceData,
)
from kafka_sink.protocol.records import BatchBuilder, Header

__all__ = ["ProduceResult", "Producer"]

Payload: TypeAlias = str | bytes | bytearray | memoryview
HeaderValue: TypeAlias = str | bytes | bytearray | memoryview | None
HeadersArg: TypeAlias = Mapping[str, HeaderValue] | Sequence[tuple[str, HeaderValue]]

_MAX_TIMEOUT_MS = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ProduceResult:
    """The broker's answer to one :meth:`Producer.send`.

    ``base_offset`` is the offset of the first message (-1 when the broker
    does not answer, with ``required_acks=NOT_SEND_ANY_RESPONSE``);
    ``log_append_time`` is the broker's append time in milliseconds when the
    topic uses LogAppendTime, else -1. A successful answer has ``error_code``
    0: errors are raised as :class:`~kafka_sink.BrokerResponseError`.
    """

    topic: str
    partition: int
    base_offset: int
    log_append_time: int = -1
    log_start_offset: int = -1
    error_code: int = 0
    acknowledged: bool = True
    message_count: int = 0


class Producer:
    """Sends messages to a partition through a :class:`~kafka_sink.Connection`.

    Example::

        connection = Connection(host="localhost")
        producer = Producer(connection)
        producer.send("mytopic", 0, "Single message")
        producer.send("mytopic", 0, ["The first message", "The second message"],
                      keys="user-1", compression_codec=COMPRESSION_LZ4)

    ``required_acks`` is :data:`NOT_SEND_ANY_RESPONSE` (0),
    :data:`WAIT_WRITTEN_TO_LOCAL_LOG` (1) or :data:`BLOCK_UNTIL_IS_COMMITTED`
    (-1); ``timeout`` (seconds) is how long the broker may wait for the
    acknowledgements it was asked for.
    """

    def __init__(
        self,
        connection: Connection,
        client_id: str = "producer",
        required_acks: int = WAIT_WRITTEN_TO_LOCAL_LOG,
        timeout: float = REQUEST_TIMEOUT,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(connection, Connection):
            raise InvalidArgumentError(
                "connection", f"must be a kafka_sink.Connection, got {type(connection).__name__}"
            )
        if required_acks not in (
            NOT_SEND_ANY_RESPONSE,
            WAIT_WRITTEN_TO_LOCAL_LOG,
            BLOCK_UNTIL_IS_COMMITTED,
        ) or isinstance(required_acks, bool):
            raise InvalidArgumentError(
                "required_acks", f"must be 0, 1 or -1, got {required_acks!r}"
            )
        check_positive_number(timeout, "timeout")
        if timeout * 1000 > _MAX_TIMEOUT_MS:
            raise InvalidArgumentError("timeout", f"must be below {_MAX_TIMEOUT_MS // 1000} s")
        self.connection = connection
        self.client_id = check_client_id(client_id)
        self.required_acks = required_acks
        self.timeout = float(timeout)
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return (
            f"<Producer client_id={self.client_id!r} required_acks={self.required_acks} "
            f"timeout={self.timeout}>"
        )

    def send(
        self,
        topic: str,
        partition: int,
        messages: Payload | Sequence[Payload | None] | None,
        keys: Payload | Sequence[Payload | None] | None = None,
        compression_codec: int | None = None,
        timestamps: int | Sequence[int] | None = None,
        headers: HeadersArg | Sequence[HeadersArg | None] | None = None,
    ) -> ProduceResult:
        """Send one message or a list of messages to ``topic``/``partition``.

        ``keys`` is one key for every message or a list as long as
        ``messages``; ``timestamps`` (milliseconds since the epoch; default:
        now) likewise; ``headers`` is one set of ``(name, value)`` pairs (or a
        mapping) for every message, or a list of them, one per message.
        Strings are sent as UTF-8. Returns a :class:`ProduceResult`.
        """
        if not isinstance(topic, str) or not topic:
            raise InvalidArgumentError("topic", f"must be a non-empty string, got {topic!r}")
        if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
            raise InvalidArgumentError(
                "partition", f"must be a non-negative integer, got {partition!r}"
            )
        values = _payloads(messages)
        count = len(values)
        key_list = _per_message(keys, count, "keys", as_bytes)
        stamps = _timestamps(timestamps, count, int(self._wall_clock() * 1000))
        header_list = _headers(headers, count)
        codec = _codec(compression_codec)

        builder = BatchBuilder(codec, max_bytes=2**31 - 1)
        for i in range(count):
            builder.append(stamps[i], key_list[i], values[i], header_list[i])
        batch = builder.build()

        request = ProduceRequest(
            acks=self.required_acks,
            timeout_ms=int(self.timeout * 1000),
            topic_data=[TopicProduceData(topic, [PartitionProduceData(partition, batch)])],
        )
        # The client waits for the network timeout on top of the time the broker
        # was allowed to wait for its replicas.
        client_wait = self.connection.config.timeout + self.timeout

        def attempt(refresh: bool) -> ProduceResult:
            address = self.connection.leader_address(topic, partition, refresh)
            broker = self.connection.broker(address)
            version = broker.version_for(ApiKey.PRODUCE)
            if codec == Compression.ZSTD and version < ZSTD_MIN_VERSION:
                raise UnsupportedVersionError(
                    f"zstd needs Produce v{ZSTD_MIN_VERSION}+, broker {address} speaks v{version}",
                    broker=str(address),
                )
            response: ProduceResponse | None = broker.request(
                request, client_wait, version, client_id=self.client_id
            )
            if response is None:
                return ProduceResult(topic, partition, -1, acknowledged=False, message_count=count)
            return _result(response, topic, partition, count)

        return self.connection.retrying(attempt, topics=[topic])


def _result(response: ProduceResponse, topic: str, partition: int, count: int) -> ProduceResult:
    for topic_response in response.responses:
        if topic_response.name != topic:
            continue
        for part in topic_response.partition_responses:
            if part.index != partition:
                continue
            if part.error_code:
                detail = part.error_message or ", ".join(
                    f"record {e.batch_index}: {e.batch_index_error_message}"
                    for e in part.record_errors
                )
                exc = BrokerResponseError(part.error_code, topic=topic, partition=partition)
                if detail:
                    exc = BrokerResponseError(
                        part.error_code,
                        f"{exc.message} ({detail})",
                        topic=topic,
                        partition=partition,
                    )
                raise exc
            return ProduceResult(
                topic,
                partition,
                part.base_offset,
                part.log_append_time_ms,
                part.log_start_offset,
                message_count=count,
            )
    raise BrokerResponseError(
        -1,
        f"the response names no result for {topic}-{partition}",
        topic=topic,
        partition=partition,
    )


def _payloads(messages: object) -> list[bytes | None]:
    if messages is None or isinstance(messages, (str, bytes, bytearray, memoryview)):
        return [as_bytes(messages, "messages")]
    if not isinstance(messages, Sequence):
        raise InvalidArgumentError(
            "messages", f"must be str, bytes or a list of them, got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidArgumentError("messages", "is an empty list")
    return [as_bytes(m, "messages") for m in messages]


def _per_message(
    value: object, count: int, argument: str, convert: Callable[[object, str], bytes | None]
) -> list[bytes | None]:
    if value is None or isinstance(value, (str, bytes, bytearray, memoryview)):
        one = convert(value, argument)
        return [one] * count
    if not isinstance(value, Sequence):
        raise InvalidArgumentError(argument, f"must be one value or a list, got {value!r}")
    if len(value) != count:
        raise InvalidArgumentError(
            argument, f"has {len(value)} items but there are {count} messages"
        )
    return [convert(v, argument) for v in value]


def _timestamps(value: object, count: int, now: int) -> list[int]:
    def check(stamp: object) -> int:
        if isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 <= stamp < 2**63:
            raise InvalidArgumentError(
                "timestamps", f"must be milliseconds since the epoch (int >= 0), got {stamp!r}"
            )
        return stamp

    if value is None:
        return [now] * count
    if isinstance(value, int):
        return [check(value)] * count
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise InvalidArgumentError("timestamps", f"must be an int or a list of ints, got {value!r}")
    if len(value) != count:
        raise InvalidArgumentError(
            "timestamps", f"has {len(value)} items but there are {count} messages"
        )
    return [check(v) for v in value]


def _headers(value: object, count: int) -> list[tuple[Header, ...]]:
    if value is None:
        return [()] * count
    if isinstance(value, Mapping) or (
        isinstance(value, Sequence) and all(is_header_pair(item) for item in value)
    ):
        one = header_pairs(value)
        return [one] * count
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise InvalidArgumentError("headers", f"must be (name, value) pairs, got {value!r}")
    if len(value) != count:
        raise InvalidArgumentError(
            "headers", f"has {len(value)} header sets but there are {count} messages"
        )
    return [header_pairs(v) for v in value]


def _codec(value: object) -> Compression:
    if value is None:
        return Compression.NONE
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(
            "compression_codec", f"must be one of the COMPRESSION_* constants, got {value!r}"
        )
    try:
        codec = Compression(value)
    except ValueError:
        raise InvalidArgumentError(
            "compression_codec", f"must be one of the COMPRESSION_* constants (0-4), got {value!r}"
        ) from None
    ensure_available(codec)
    return codec
