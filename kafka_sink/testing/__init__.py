"""A throw-away Kafka cluster for tests: librdkafka's mock cluster, driven from Python.

Theory of operation
-------------------
librdkafka (the C client under confluent-kafka) ships a *mock cluster*: a set of
in-memory brokers that speak the Kafka protocol on loopback sockets and accept
fault injection (brokers going down, leaders moving, errors pushed onto request
types, added latency). :class:`MockCluster` loads the librdkafka shared library
bundled in the ``confluent-kafka`` wheel through :mod:`ctypes` (nothing of
confluent-kafka's Python API is imported) and runs the cluster in a **child
process**. The parent sends one JSON command per line on the child's stdin and
reads one JSON answer per line from its stdout. This keeps a crash in C out of
the test process, and ties the cluster's life to its owner: the child exits when
its stdin closes, which the operating system does for us when the parent dies.

What the mock cluster does (librdkafka 2.16)
--------------------------------------------
* **Unknown topics** are created on the first Metadata request that allows it
  (Metadata v0-v3, or v4+ with ``allow_auto_topic_creation``), with 4 partitions
  and a replication factor of ``min(3, num_brokers)``. A Produce request for an
  unknown topic is answered with ``UNKNOWN_TOPIC_OR_PARTITION`` and creates
  nothing.
* **acks** is read and ignored: every Produce request gets a response, even with
  ``acks=0`` (a real broker sends none), and ``acks=1`` and ``acks=-1`` behave
  the same (replicas are only bookkeeping). Batches are stored as sent, without
  checking their CRC; only magic 2 (v2 record batches) is accepted.
* Each partition keeps at most 5 MiB or 100 000 batches; older batches are
  dropped and the log start offset moves on.
* There is no CreateTopics (19) nor SASL (17, 36): create topics with
  :meth:`MockCluster.create_topic`. ApiVersions answers v0-v2; Produce goes to
  v10, Metadata to v13, InitProducerId to v4.
* Metadata names controller id 0, which is no broker, until
  :meth:`MockCluster.set_controller` is called. Produce answers carry a
  log-append time of 1234 whatever the topic's timestamp type.

The ``rd_kafka_mock_*`` functions are an experimental librdkafka API, outside its
stability guarantees; the binding (:mod:`~kafka_sink.testing.native`) checks that
each function it needs exists and names the missing one otherwise.

Run ``python -m kafka_sink.testing --brokers 3 --topic logs:6`` for a standalone
cluster that prints its bootstrap servers and runs until interrupted.

The modules
-----------
* :mod:`~kafka_sink.testing.cluster`: :class:`MockCluster`, the API tests
  use; it checks each command's arguments and sends it to the child;
* :mod:`~kafka_sink.testing.process`: the child process seen from the
  parent: starting it, the JSON line protocol, its log, ending it;
* :mod:`~kafka_sink.testing.child`: the child's main loop and the commands
  it runs on the mock cluster;
* :mod:`~kafka_sink.testing.native`: librdkafka's C functions through
  :mod:`ctypes`;
* :mod:`~kafka_sink.testing.library`: where librdkafka is found;
* :mod:`~kafka_sink.testing.errors`: :class:`MockClusterError`;
* :mod:`~kafka_sink.testing.command`: ``python -m kafka_sink.testing``.
"""

from __future__ import annotations

from kafka_sink.testing.cluster import MockCluster, MockRequest
from kafka_sink.testing.command import main as main
from kafka_sink.testing.errors import MockClusterError
from kafka_sink.testing.library import LIBRARY_ENV_VAR as LIBRARY_ENV_VAR
from kafka_sink.testing.library import find_librdkafka

__all__ = ["MockCluster", "MockClusterError", "MockRequest", "find_librdkafka"]
