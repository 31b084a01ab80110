"""Fixtures for the test brokers: each one starts on first use, once per session.

=====================  =========  ===============================================
fixture                scope      what it gives
=====================  =========  ===============================================
``mock_cluster``       session    :class:`~kafka_sink.testing.MockCluster`, 3 brokers
``new_mock_cluster``   function   factory ``(num_brokers=3, **options) -> MockCluster``,
                                  closed after the test (for fault injection)
``kafka23``            session    :class:`~tests.brokers.kafka23.Kafka23Cluster`, 1 broker
``kafka23_cluster``    session    :class:`~tests.brokers.kafka23.Kafka23Cluster`, 3 brokers
``kafka23_secure``     session    :class:`~tests.brokers.kafka23.Kafka23Cluster`, 1 broker
                                  with SSL, mutual TLS, SASL_PLAINTEXT and SASL_SSL
                                  listeners (``security=True``)
``tansu``              session    :class:`~tests.brokers.tansu.TansuBroker`
``broker``             function   :class:`~tests.brokers.BrokerUnderTest`, parametrized
                                  over "mock", "kafka23" and "tansu"
``topic_name``         function   a topic name no other test uses
=====================  =========  ===============================================

Tests that use a broker fixture are marked automatically (``integration`` plus
``mock``, ``kafka23`` or ``tansu``), so ``-m "not kafka23"`` skips the JVM
broker, for example. A broker that cannot be installed or started makes the
tests that need it error out; nothing is skipped silently.

The session ``mock_cluster`` is shared: after each test that used it, its
fault injection is undone (:meth:`~kafka_sink.testing.MockCluster.reset`).
Tests that move leaders, change API versions or push per-broker errors should
take a private cluster from ``new_mock_cluster`` instead.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kafka_sink.testing import MockCluster
from tests.brokers import BrokerUnderTest
from tests.brokers.kafka23 import Kafka23Cluster
from tests.brokers.tansu import TansuBroker

BROKER_KINDS = ("mock", "kafka23", "tansu")

# Which marker each broker fixture implies.
_FIXTURE_MARKERS = {
    "mock_cluster": "mock",
    "new_mock_cluster": "mock",
    "kafka23": "kafka23",
    "kafka23_cluster": "kafka23",
    "kafka23_secure": "kafka23",
    "tansu": "tansu",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        kinds = {_FIXTURE_MARKERS[name] for name in fixtures if name in _FIXTURE_MARKERS}
        for kind in sorted(kinds):
            item.add_marker(getattr(pytest.mark, kind))
        if kinds:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mock_cluster() -> Iterator[MockCluster]:
    with MockCluster(3) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def _reset_shared_mock_cluster(request: pytest.FixtureRequest) -> Iterator[None]:
    if "mock_cluster" not in request.fixturenames:
        yield
        return
    cluster: MockCluster = request.getfixturevalue("mock_cluster")
    yield
    if not cluster.closed:
        cluster.reset()


@pytest.fixture
def new_mock_cluster() -> Iterator[Callable[..., MockCluster]]:
    clusters: list[MockCluster] = []

    def factory(num_brokers: int = 3, **options: Any) -> MockCluster:
        cluster = MockCluster(num_brokers, **options)
        clusters.append(cluster)
        return cluster

    yield factory
    for cluster in clusters:
        cluster.close()


@pytest.fixture(scope="session")
def kafka23() -> Iterator[Kafka23Cluster]:
    with Kafka23Cluster(1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kafka23_cluster() -> Iterator[Kafka23Cluster]:
    with Kafka23Cluster(3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kafka23_secure() -> Iterator[Kafka23Cluster]:
    with Kafka23Cluster(1, security=True) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def tansu() -> Iterator[TansuBroker]:
    with TansuBroker() as broker:
        yield broker


@pytest.fixture(
    params=[
        pytest.param(kind, id=kind, marks=[pytest.mark.integration, getattr(pytest.mark, kind)])
        for kind in BROKER_KINDS
    ]
)
def broker(request: pytest.FixtureRequest) -> Iterator[BrokerUnderTest]:
    kind: str = request.param
    backend = request.getfixturevalue("mock_cluster" if kind == "mock" else kind)
    yield BrokerUnderTest(kind=kind, bootstrap_servers=backend.bootstrap_servers, backend=backend)
    if isinstance(backend, MockCluster) and not backend.closed:
        backend.reset()


def unique_topic_name(hint: str = "topic") -> str:
    """A valid, unique topic name: letters, digits and dashes, at most 200 characters."""
    # Dots and underscores collide in Kafka's metric names; dashes do not.
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", hint).strip("-")[:160] or "topic"
    return f"{cleaned}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    return unique_topic_name(request.node.name)
