"""The client side of one broker connection, without any I/O.

Theory of operation (Kafka protocol guide, "Protocol", "Requests and responses"):
every request is a frame ``int32 size`` + request header + body, and the broker
answers the requests of one connection *in the order they were sent*, each
response echoing the request's correlation id. Request header v1 carries
``api_key, api_version, correlation_id, client_id``; header v2 (flexible
request versions) adds a tagged-field section. Response header v0 is just the
correlation id; v1 (flexible) adds tagged fields, except for ApiVersions,
whose response header is always v0.

:class:`ClientProtocol` turns typed requests into frames (:meth:`send`) and
bytes received into typed responses (:meth:`receive_data` then
:meth:`next_response`). It owns the correlation ids and the queue of requests
awaiting an answer, and it checks that each response answers the oldest of
them, so the network layer only moves bytes.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from kafka_sink.errors import CorrelationIdMismatchError, ProtocolError
from kafka_sink.protocol.api_versions import ApiVersionsResponse
from kafka_sink.protocol.apis import response_class
from kafka_sink.protocol.primitives import Reader, Writer
from kafka_sink.protocol.schema import Message, decode, encode_into

__all__ = ["DEFAULT_MAX_RESPONSE_SIZE", "ClientProtocol", "InFlight", "Response"]

_I32 = struct.Struct(">i")
_HEADER_V1 = struct.Struct(">hhi")

#: Responses larger than this are refused before any buffer is grown for them.
DEFAULT_MAX_RESPONSE_SIZE = 100 * 1024 * 1024
_API_VERSIONS_KEY = 18
_UNANSWERED_WINDOW = 4096
# The content types of TLS records a broker sends to a client that does not speak
# TLS: alert (21) and handshake (22).
_TLS_RECORD_TYPES = (21, 22)


@dataclass(frozen=True, slots=True)
class InFlight:
    """A request sent and not yet answered."""

    correlation_id: int
    api_key: int
    version: int
    request: Message


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded response and the request it answers."""

    correlation_id: int
    request: Message
    version: int
    body: Message


class ClientProtocol:
    """Frames requests and parses responses for one broker connection."""

    __slots__ = (
        "_buffer",
        "_client_id",
        "_in_flight",
        "_max_response_size",
        "_next_correlation_id",
        "_unanswered",
    )

    def __init__(
        self,
        client_id: str | None,
        *,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        first_correlation_id: int = 0,
    ) -> None:
        self._client_id = None if client_id is None else client_id.encode("utf-8")
        self._max_response_size = max_response_size
        self._next_correlation_id = first_correlation_id
        self._in_flight: deque[InFlight] = deque()
        # Correlation ids of requests sent without expecting an answer (Produce
        # with acks=0). Some brokers (librdkafka's mock, Tansu) answer them all
        # the same; such answers are recognised and dropped. Bounded: an id
        # older than the window is forgotten.
        self._unanswered: deque[int] = deque(maxlen=_UNANSWERED_WINDOW)
        self._buffer = bytearray()

    @property
    def in_flight(self) -> int:
        """Requests sent that still await a response."""
        return len(self._in_flight)

    def send(
        self, request: Message, version: int, client_id: str | None = None
    ) -> tuple[int, bytes]:
        """Frame ``request`` at ``version``; return its correlation id and the bytes to write.

        ``client_id`` overrides the connection's client id for this request.
        Requests that get no answer (Produce with acks=0) are not queued.
        """
        correlation_id, frame = self.frame(request, version, client_id)
        return correlation_id, bytes(frame)

    def frame(
        self, request: Message, version: int, client_id: str | None = None
    ) -> tuple[int, bytearray]:
        """Like :meth:`send`, but return the frame in the buffer it was encoded into.

        This spares a copy of the whole frame (record batches included); the
        caller owns the buffer and must not change it before it is written.
        """
        correlation_id = self._next_correlation_id
        # Correlation ids are int32 on the wire; wrap rather than overflow.
        self._next_correlation_id = (correlation_id + 1) & 0x7FFFFFFF
        w = Writer()
        buf = w.buffer
        buf += b"\0\0\0\0"  # size, patched below
        buf += _HEADER_V1.pack(request.API_KEY, version, correlation_id)
        raw_id = self._client_id if client_id is None else client_id.encode("utf-8")
        if raw_id is None:
            buf += b"\xff\xff"
        else:
            buf += struct.pack(">h", len(raw_id))
            buf += raw_id
        if request.is_flexible(version):
            buf.append(0)  # header v2: empty tagged-field section
        encode_into(request, version, w)
        _I32.pack_into(buf, 0, len(buf) - 4)
        if request.expects_response():
            self._in_flight.append(InFlight(correlation_id, request.API_KEY, version, request))
        else:
            self._unanswered.append(correlation_id)
        return correlation_id, buf

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket."""
        self._buffer += data

    def bytes_needed(self) -> int:
        """How many more bytes complete the next frame (at least 1 while one is expected)."""
        buf = self._buffer
        if len(buf) < 4:
            return 4 - len(buf)
        size = self._frame_size()
        return max(0, 4 + size - len(buf))

    def _frame_size(self) -> int:
        size: int = _I32.unpack_from(self._buffer, 0)[0]
        if size < 4:
            raise ProtocolError(f"response frame size {size} is too small")
        if size > self._max_response_size:
            if self._buffer[0] in _TLS_RECORD_TYPES and self._buffer[1] == 3:
                # A TLS record (alert or handshake, version 3.x) where a size should
                # be: the listener speaks TLS and this connection does not.
                raise ProtocolError(
                    "the broker answered with TLS, not a Kafka response: the listener "
                    "expects TLS (security_protocol 'SSL' or 'SASL_SSL')"
                )
            raise ProtocolError(
                f"response frame of {size} bytes exceeds the limit of "
                f"{self._max_response_size} bytes"
            )
        return size

    def next_response(self) -> Response | None:
        """Return the next complete response, or None until more bytes arrive."""
        while True:
            buf = self._buffer
            if len(buf) < 4:
                return None
            size = self._frame_size()
            if len(buf) < 4 + size:
                return None
            frame = bytes(buf[4 : 4 + size])
            del buf[: 4 + size]
            correlation_id: int = _I32.unpack_from(frame, 0)[0]
            if not self._drop_if_unanswered(correlation_id):
                return self._match(correlation_id, frame)

    def _drop_if_unanswered(self, correlation_id: int) -> bool:
        """Whether the frame answers a request that expected no answer."""
        if correlation_id not in self._unanswered:
            return False
        # Answers come in request order: the ids before this one will get none.
        while self._unanswered.popleft() != correlation_id:
            pass
        return True

    def _match(self, correlation_id: int, frame: bytes) -> Response:
        if not self._in_flight:
            raise CorrelationIdMismatchError(
                f"response with correlation id {correlation_id} but no request is in flight",
                correlation_id=correlation_id,
            )
        expected = self._in_flight[0]
        if correlation_id != expected.correlation_id:
            raise CorrelationIdMismatchError(
                f"response correlation id {correlation_id} does not match "
                f"the request in flight ({expected.correlation_id})",
                correlation_id=correlation_id,
                expected=expected.correlation_id,
            )
        self._in_flight.popleft()
        return Response(
            correlation_id, expected.request, expected.version, self._decode(expected, frame)
        )

    @staticmethod
    def _decode(expected: InFlight, frame: bytes) -> Message:
        cls = response_class(expected.api_key)
        body = memoryview(frame)[4:]
        if expected.api_key == _API_VERSIONS_KEY:
            return ApiVersionsResponse.decode_any(body, expected.version)
        if cls.is_flexible(expected.version):
            # Response header v1: skip its tagged-field section.
            reader = Reader(body)
            reader.tagged_fields()
            return decode(cls, reader, expected.version, strict=False)
        return decode(cls, body, expected.version, strict=False)

    def fail_all(self) -> list[InFlight]:
        """Forget every request in flight (the connection is gone); return them."""
        pending = list(self._in_flight)
        self._in_flight.clear()
        self._unanswered.clear()
        self._buffer.clear()
        return pending
