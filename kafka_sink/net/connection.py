"""One broker node of the non-blocking client: its connection's byte streams and requests.

Theory of operation
-------------------
A :class:`NodeConnection` is what :class:`~kafka_sink.net.client.NetworkClient`
keeps per broker node: the address, the socket, the connection's state (it
*is* a :class:`~kafka_sink.net.state.ConnectionSetup`, so only events move it
on), and two byte streams.

Output. :meth:`NodeConnection.queue` frames a request (through the
connection's :class:`~kafka_sink.protocol.client.ClientProtocol`) and
appends the frame to ``out``; :meth:`NodeConnection.write_plain` and
:meth:`NodeConnection.write_tls` hand as much of ``out`` to the socket as it
takes without blocking. Frames are written from the buffers they were encoded
into, several per ``sendmsg`` call, never copied; TLS has no ``sendmsg``, so
small frames are joined into one write of up to 64 KiB, and after
``SSLWantWrite`` OpenSSL is given the very same bytes again. ``queued`` and
``written`` count the bytes of the stream since the connection opened, and
each request remembers where its frame ends (``end``): a request whose end
is written has left the client (a Produce with ``acks=0`` is then done), and
on a failure, one whose end is not written was never sent.

Input. Responses come back in the order of the requests (``awaiting``); the
client reads, and the protocol object matches each frame to the oldest
request by correlation id.

Nothing here fails a connection: a write that fails returns why, and the
client decides (see ``NetworkClient._fail``).
"""

from __future__ import annotations

import itertools
import math
import socket
import ssl
from collections import deque
from typing import Any

from kafka_sink.config import BrokerAddress
from kafka_sink.net.broker import ApiVersionsNegotiation, describe_os_error
from kafka_sink.net.response import Callback
from kafka_sink.net.state import ConnectionSetup
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.sasl import SaslAuthenticator
from kafka_sink.protocol.schema import Message

__all__ = ["NodeConnection", "PendingRequest"]

# Frames handed to one sendmsg() call (the kernel's limit is 1024 on Linux).
_MAX_IOV = 64
# Small frames joined into one TLS write (TLS has no sendmsg), up to this size.
_TLS_CHUNK = 64 * 1024
_TLS_RETRY = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)
_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")

AddrInfo = tuple[Any, ...]  # (family, type, proto, canonname, sockaddr) from getaddrinfo


class PendingRequest:
    """A request queued or in flight on one connection."""

    __slots__ = ("callback", "end", "request", "sent_at", "version")

    def __init__(
        self, callback: Callback | None, request: Message, version: int, sent_at: float, end: int
    ) -> None:
        self.callback = callback  # None: the connection's own ApiVersions or SASL
        self.request = request
        self.version = version
        self.sent_at = sent_at
        self.end = end  # offset, in the connection's output stream, of its last byte + 1


class NodeConnection(ConnectionSetup):
    """One broker node: its address and its connection, whose state
    (:class:`~kafka_sink.net.state.ConnectionSetup`) only events move on."""

    __slots__ = (
        "address",
        "addresses",
        "api_versions",
        "auth",
        "awaiting",
        "broker",
        "deadline",
        "failures",
        "fresh",
        "last_error",
        "mask",
        "negotiation",
        "node_id",
        "out",
        "out_pos",
        "paused",
        "protocol",
        "queued",
        "reauth_at",
        "retry_at",
        "sock",
        "tls_out",
        "unanswered",
        "versions",
        "written",
    )

    def __init__(self, node_id: int, address: BrokerAddress, *, tls: bool, sasl: bool) -> None:
        super().__init__(tls=tls, sasl=sasl)
        self.node_id = node_id
        self.address = address
        self.broker = str(address)
        self.sock: socket.socket | None = None
        self.mask = 0  # the selector events the socket is registered for
        self.protocol: ClientProtocol | None = None
        self.negotiation: ApiVersionsNegotiation | None = None
        self.auth: SaslAuthenticator | None = None
        self.api_versions: dict[int, tuple[int, int]] = {}
        self.versions: dict[int, int] = {}  # chosen version by API key, cached
        # Output: frames not yet completely written; out_pos bytes of the first
        # one are. queued and written count bytes since the connection opened.
        self.out: deque[bytearray] = deque()
        self.out_pos = 0
        # TLS: the bytes of the write under way. After SSLWantWrite, OpenSSL
        # must be given the same bytes again, even if more frames were queued.
        self.tls_out: bytes | bytearray | memoryview | None = None
        self.queued = 0
        self.written = 0
        self.awaiting: deque[PendingRequest] = deque()  # in the order the answers will come
        self.unanswered: deque[PendingRequest] = deque()  # acks=0: done once written
        self.deadline = 0.0  # end of the connection setup (connecting, negotiating)
        self.failures = 0
        self.fresh = False  # ready, and no response since (see NetworkClient._hint)
        self.retry_at = 0.0
        self.addresses: list[AddrInfo] = []  # resolved addresses not yet tried
        self.last_error: str | None = None
        # KIP-368: when the SASL session must be renewed (inf: never); paused:
        # that time has come, so nothing more is sent until the requests in
        # flight are answered and the connection has authenticated again.
        self.reauth_at = math.inf
        self.paused = False

    def pending(self) -> int:
        return len(self.awaiting) + len(self.unanswered)

    # -- output -----------------------------------------------------------------------

    def queue(self, request: Message, version: int, callback: Callback | None, now: float) -> None:
        """Frame ``request`` at ``version`` and append it to the output stream."""
        protocol = self.protocol
        assert protocol is not None
        _, frame = protocol.frame(request, version)
        self.queued += len(frame)
        entry = PendingRequest(callback, request, version, now, self.queued)
        if request.expects_response():
            self.awaiting.append(entry)
        else:
            self.unanswered.append(entry)
        self.out.append(frame)

    def write_plain(self, sock: socket.socket) -> str | None:
        """Write frames straight from their buffers; the reason, when the connection failed."""
        out = self.out
        while out:
            pos = self.out_pos
            try:
                if len(out) == 1 or not _HAS_SENDMSG:
                    first = out[0]
                    asked = len(first) - pos
                    sent = sock.send(memoryview(first)[pos:] if pos else first)
                else:
                    buffers: list[bytearray | memoryview] = list(itertools.islice(out, _MAX_IOV))
                    asked = sum(map(len, buffers)) - pos
                    if pos:
                        buffers[0] = memoryview(buffers[0])[pos:]
                    sent = sock.sendmsg(buffers)
            except BlockingIOError:
                break
            except OSError as exc:
                return f"cannot send: {describe_os_error(exc)}"
            self.written += sent
            pos += sent
            while out and pos >= len(out[0]):
                pos -= len(out.popleft())
            self.out_pos = pos
            if sent < asked:  # the socket's buffer is full
                break
        return None

    def write_tls(self, sock: socket.socket) -> str | None:
        """The TLS variant of :meth:`write_plain`."""
        out = self.out
        while out:
            chunk = self.tls_out
            if chunk is None:
                chunk = self.tls_out = _tls_chunk(out, self.out_pos)
            try:
                sent = sock.send(chunk)
            except _TLS_RETRY:
                break
            except OSError as exc:
                return f"cannot send: {describe_os_error(exc)}"
            self.tls_out = memoryview(chunk)[sent:] if sent < len(chunk) else None
            self.written += sent
            pos = self.out_pos + sent
            while out and pos >= len(out[0]):
                pos -= len(out.popleft())
            self.out_pos = pos
        return None

    def take_in_flight(self) -> list[PendingRequest]:
        """Every request queued or in flight, in stream order; the connection keeps none."""
        entries = sorted((*self.awaiting, *self.unanswered), key=lambda e: e.end)
        self.awaiting.clear()
        self.unanswered.clear()
        return entries

    def forget_streams(self) -> None:
        """Forget what belonged to the connection that just closed."""
        self.sock = None
        self.protocol = None
        self.paused = False
        self.reauth_at = math.inf
        self.mask = 0
        self.out.clear()
        self.tls_out = None
        self.out_pos = self.queued = self.written = 0
        self.negotiation = None
        self.auth = None
        self.api_versions = {}
        self.versions = {}


def _tls_chunk(out: deque[bytearray], pos: int) -> bytes | bytearray | memoryview:
    """The next bytes to hand to one TLS write: the first frame, or small frames joined."""
    first = out[0]
    if len(out) == 1 or len(first) - pos >= _TLS_CHUNK:
        return memoryview(first)[pos:] if pos else first
    parts: list[bytearray | memoryview] = [memoryview(first)[pos:] if pos else first]
    size = len(parts[0])
    for frame in itertools.islice(out, 1, _MAX_IOV):
        if size + len(frame) > _TLS_CHUNK:
            break
        parts.append(frame)
        size += len(frame)
    return parts[0] if len(parts) == 1 else b"".join(parts)
