"""Byte streams to brokers: the only module that opens sockets.

A :class:`Transport` opens a :class:`Stream` to ``host:port``; everything above
it speaks to that small interface, so tests inject an in-memory transport and
the TLS layer wraps the plain one. All waits are bounded by deadlines taken
from an injectable monotonic clock.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "SocketStream", "Stream", "TcpTransport", "Transport", "monotonic"]

#: A monotonic clock in seconds.
Clock = Callable[[], float]
monotonic: Clock = time.monotonic


class Stream(Protocol):
    """A connected, ordered byte stream to one broker."""

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float) -> None:
        """Write every byte or raise ``OSError`` (``TimeoutError`` past ``timeout`` seconds)."""

    def recv(self, max_bytes: int, timeout: float) -> bytes:
        """Read up to ``max_bytes``; ``b""`` means the peer closed the stream."""

    def close(self) -> None:
        """Close the stream; never raises."""


class Transport(Protocol):
    """Opens streams to brokers."""

    def connect(self, host: str, port: int, timeout: float) -> Stream:
        """Connect within ``timeout`` seconds or raise ``OSError``.

        A transport that sets up TLS raises :class:`~kafka_sink.errors.TlsError`
        (or :class:`~kafka_sink.errors.TlsAuthenticationError`) when the
        handshake fails.
        """


class SocketStream:
    """A :class:`Stream` over a connected socket (plain or TLS)."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float) -> None:
        self._sock.settimeout(max(timeout, 0.0001))
        self._sock.sendall(data)

    def recv(self, max_bytes: int, timeout: float) -> bytes:
        self._sock.settimeout(max(timeout, 0.0001))
        return self._sock.recv(max_bytes)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class TcpTransport:
    """Plain TCP, optionally restricted to IPv4 (``ip_version=4``) or IPv6 (``6``)."""

    __slots__ = ("_family",)

    def __init__(self, ip_version: int | None = None) -> None:
        self._family = {None: socket.AF_UNSPEC, 4: socket.AF_INET, 6: socket.AF_INET6}[ip_version]

    def connect(self, host: str, port: int, timeout: float) -> Stream:
        return SocketStream(self.open_socket(host, port, timeout))

    def open_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        """A connected TCP socket (each resolved address tried in turn) or ``OSError``."""
        if not 0 < port < 65536:
            # Ports come from the brokers' metadata; getaddrinfo would take
            # 70000 for 4464 and connect to the wrong port.
            raise OSError(errno.EINVAL, f"port {port} is not a TCP port (1-65535)")
        deadline = time.monotonic() + timeout
        last: OSError | None = None
        infos = socket.getaddrinfo(host, port, self._family, socket.SOCK_STREAM)
        for family, kind, proto, _, address in infos:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(remaining)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise last or TimeoutError(f"timed out connecting to {host}:{port}")
