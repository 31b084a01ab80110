"""Every Produce and Metadata version the library implements, on real brokers.

The client's own supported range is clamped to one version, so that version is
negotiated with the broker (the test checks it was); what it writes must be
read back by librdkafka. Each broker is swept over the versions it speaks.
"""

from __future__ import annotations

from typing import Any

import pytest

from kafka_sink import COMPRESSION_LZ4, Connection, Producer
from kafka_sink.protocol.apis import ApiKey
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.produce import ProduceRequest, ProduceResponse
from tests.oracle import consume

pytestmark = pytest.mark.integration

# What each test broker speaks (see tests/brokers): Produce / Metadata maxima.
PRODUCE_MAX = {"kafka23": 7, "mock": 10, "tansu": 11}
METADATA_MAX = {"kafka23": 8, "mock": 12, "tansu": 12}

# librdkafka's mock cluster omits LogStartOffset from Produce v5 responses
# (Kafka's schema has it from v5 on, the mock writes it from v6 on).
MOCK_PRODUCE_V5 = pytest.mark.xfail(
    reason="librdkafka's mock writes no LogStartOffset in Produce v5 responses", strict=True
)


def _cases(maxima: dict[str, int], low: int) -> list[Any]:
    cases = []
    for kind in ("kafka23", "mock", "tansu"):
        for version in range(low, maxima[kind] + 1):
            marks = [getattr(pytest.mark, kind)]
            if (kind, version) == ("mock", 5) and maxima is PRODUCE_MAX:
                marks.append(MOCK_PRODUCE_V5)
            cases.append(pytest.param(kind, version, marks=marks, id=f"{kind}-v{version}"))
    return cases


@pytest.fixture
def only_version(monkeypatch: pytest.MonkeyPatch) -> Any:
    def clamp(request: Any, response: Any, version: int) -> None:
        monkeypatch.setattr(request, "VERSIONS", (version, version))
        monkeypatch.setattr(response, "VERSIONS", (version, version))

    return clamp


@pytest.mark.parametrize(("kind", "version"), _cases(PRODUCE_MAX, 3))
def test_each_produce_version(
    request: pytest.FixtureRequest, only_version: Any, topic_name: str, kind: str, version: int
) -> None:
    backend = request.getfixturevalue("mock_cluster" if kind == "mock" else kind)
    backend.create_topic(topic_name, 1, 1)
    only_version(ProduceRequest, ProduceResponse, version)
    with Connection(broker_list=backend.bootstrap_servers, timeout=10) as connection:
        address = connection.leader_address(topic_name, 0)
        assert connection.broker(address).version_for(ApiKey.PRODUCE) == version
        result = Producer(connection).send(
            topic_name,
            0,
            ["a", "b"],
            keys="k",
            timestamps=[1_700_000_000_000, 1_700_000_000_001],
            headers={"v": str(version)},
            compression_codec=COMPRESSION_LZ4,
        )
    assert result.base_offset == 0
    records = consume(backend.bootstrap_servers, topic_name, expected=2)
    assert [(r.key, r.value, r.timestamp_ms, list(r.headers)) for r in records] == [
        (b"k", b"a", 1_700_000_000_000, [("v", str(version).encode())]),
        (b"k", b"b", 1_700_000_000_001, [("v", str(version).encode())]),
    ]


@pytest.mark.parametrize(("kind", "version"), _cases(METADATA_MAX, 1))
def test_each_metadata_version(
    request: pytest.FixtureRequest, only_version: Any, topic_name: str, kind: str, version: int
) -> None:
    backend = request.getfixturevalue("mock_cluster" if kind == "mock" else kind)
    backend.create_topic(topic_name, 3, 1)
    only_version(MetadataRequest, MetadataResponse, version)
    with Connection(broker_list=backend.bootstrap_servers, timeout=10) as connection:
        assert connection.version_for(ApiKey.METADATA, connection.get_known_servers()[0]) == version
        assert connection.partitions(topic_name) == [0, 1, 2]
        for partition in range(3):
            assert connection.leader(topic_name, partition) in connection.get_known_servers()


@pytest.mark.mock
def test_ip_version_restricts_the_address_family(mock_cluster: Any) -> None:
    from kafka_sink import ConnectError

    port = mock_cluster.bootstrap_servers.split(",")[0].rsplit(":", 1)[1]
    with Connection(broker_list=[f"localhost:{port}"], ip_version=4, timeout=10) as connection:
        assert connection.get_known_servers()
    # The mock listens on 127.0.0.1 only: an IPv6-only client cannot reach it.
    with pytest.raises(ConnectError):
        Connection(broker_list=[f"localhost:{port}"], ip_version=6, timeout=2)
