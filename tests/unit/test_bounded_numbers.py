"""Numbers a broker sends are bounded before the network layer acts on them.

A frame size decides how much one ``recv()`` asks for (and ``socket.recv``
allocates what it asks for before anything arrives); the ApiVersions version
a broker offers decides the version of the next request; a port from
Metadata decides where the client connects (``getaddrinfo`` takes 70000 for
4464). Each is checked here with a scripted stream or a real socket.
"""

from __future__ import annotations

import struct
from collections import deque

import pytest

from kafka_sink.config import BrokerAddress
from kafka_sink.errors import ConnectError, RequestTimeoutError
from kafka_sink.net.broker import ApiVersionsNegotiation, BrokerConnection
from kafka_sink.net.client import NetworkClient
from kafka_sink.net.transport import TcpTransport
from kafka_sink.protocol import apis, schema
from kafka_sink.protocol.api_versions import ApiVersionRange, ApiVersionsResponse
from kafka_sink.protocol.metadata import MetadataRequest
from tests.fakes import FakeClock


class ScriptedStream:
    """Gives out scripted chunks, then times out; records what each recv() asked for."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = deque(chunks)
        self.asked: list[int] = []

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float) -> None:
        pass

    def recv(self, max_bytes: int, timeout: float) -> bytes:
        self.asked.append(max_bytes)
        if not self.chunks:
            raise TimeoutError
        return self.chunks.popleft()

    def close(self) -> None:
        pass


class ScriptedTransport:
    def __init__(self, stream: ScriptedStream) -> None:
        self.stream = stream

    def connect(self, host: str, port: int, timeout: float) -> ScriptedStream:
        return self.stream


def _api_versions_frame(correlation_id: int, version: int) -> bytes:
    ranges = [ApiVersionRange(k, *apis.supported_versions(k)) for k in sorted(apis._PAIRS)]
    body = struct.pack(">i", correlation_id) + schema.encode(
        ApiVersionsResponse(0, ranges), version
    )
    return struct.pack(">i", len(body)) + body


def test_a_frame_claiming_100_mib_does_not_make_one_recv_ask_for_it() -> None:
    claim = 100 * 1024 * 1024 - 1  # just within the default response limit
    stream = ScriptedStream(
        [_api_versions_frame(0, 3), struct.pack(">ii", claim, 1) + b"\x00" * 16]
    )
    conn = BrokerConnection(
        BrokerAddress("kafka1", 9092), ScriptedTransport(stream), client_id="t", clock=FakeClock()
    )
    conn.connect(1.0)
    asked_before = len(stream.asked)
    with pytest.raises(RequestTimeoutError):
        conn.request(MetadataRequest(None), 1.0)
    after_claim = stream.asked[asked_before + 1 :]
    assert after_claim, "the connection never read past the claim"
    assert max(after_claim) <= 4 * 1024 * 1024


@pytest.mark.parametrize("offered", [-5, -1, 0])
def test_an_api_versions_fallback_never_goes_below_v0(offered: int) -> None:
    negotiation = ApiVersionsNegotiation("kafka1:9092")
    first = negotiation.version
    answer = ApiVersionsResponse(35, [ApiVersionRange(18, 0, offered)])
    assert negotiation.handle(answer) is None
    assert negotiation.version == 0
    assert first > 0


def test_an_api_versions_fallback_goes_lower_than_what_was_refused() -> None:
    negotiation = ApiVersionsNegotiation("kafka1:9092")
    refused = negotiation.version
    negotiation.handle(ApiVersionsResponse(35, [ApiVersionRange(18, 0, 32767)]))
    assert negotiation.version == refused - 1


@pytest.mark.parametrize("port", [0, 65536, 70000, 2**31 - 1, -1])
def test_a_port_outside_tcp_is_refused_not_wrapped(port: int) -> None:
    with pytest.raises(OSError, match=f"port {port} is not a TCP port"):
        TcpTransport().open_socket("127.0.0.1", port, 1.0)
    conn = BrokerConnection(BrokerAddress("127.0.0.1", port), TcpTransport(), client_id="t")
    with pytest.raises(ConnectError, match=f"port {port} is not a TCP port"):
        conn.connect(1.0)


def test_the_network_client_refuses_a_metadata_port_outside_tcp() -> None:
    client = NetworkClient(client_id="t", clock=FakeClock())
    try:
        client.set_nodes({1: BrokerAddress("127.0.0.1", 70000)})
        assert not client.ready(1)
        assert "port 70000 is not a TCP port" in (client.connection_error(1) or "")
        assert client.connection_states()[1] == "backoff"
    finally:
        client.close()
