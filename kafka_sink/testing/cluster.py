"""The embedded cluster API: :class:`MockCluster`, its brokers, topics and fault injection.

Each method checks its arguments here, in the parent, then runs as one
command in the child process (:mod:`kafka_sink.testing.process`), where
librdkafka carries it out (:mod:`kafka_sink.testing.child`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from kafka_sink.errors import InvalidArgumentError
from kafka_sink.testing.library import find_librdkafka
from kafka_sink.testing.process import ClusterProcess

__all__ = ["MockCluster", "MockRequest"]


class MockRequest(NamedTuple):
    """One request a mock broker received while request tracking was on.

    A named tuple rather than a dataclass so that tests can unpack it as the
    ``(broker_id, api_key, timestamp_us)`` triple they usually want.
    """

    broker_id: int
    api_key: int
    timestamp_us: int
    """When the broker received the request, in microseconds of librdkafka's
    monotonic clock: only differences between timestamps are meaningful."""


class MockCluster:
    """librdkafka's in-memory Kafka cluster, in a child process, with fault injection.

    Brokers have ids ``1..num_brokers`` and listen on ``127.0.0.1`` (ephemeral
    ports). ``topics`` maps topic names to partition counts, created with
    ``replication_factor`` replicas (default ``min(3, num_brokers)``).

    Use it as a context manager, or call :meth:`close` (idempotent)::

        from confluent_kafka import Producer
        from kafka_sink.testing import MockCluster

        with MockCluster(3, topics={"logs": 2}) as cluster:
            producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
            cluster.set_partition_leader("logs", 0, broker_id=2)
            cluster.push_request_errors(0, [6])  # the next Produce: NOT_LEADER_OR_FOLLOWER
            producer.produce("logs", b"hello", partition=0)
            producer.flush(10)

    ``api_key`` arguments are Kafka API keys (Produce is 0, Metadata 3) and
    error codes are Kafka's (or librdkafka's negative local codes, e.g. -195
    ``_TRANSPORT`` to make the broker drop the connection). All methods are
    thread-safe and raise :class:`~kafka_sink.testing.MockClusterError` when
    the cluster refuses the command or its process has died (the message then
    ends with its log).
    """

    def __init__(
        self,
        num_brokers: int = 3,
        *,
        topics: Mapping[str, int] | None = None,
        replication_factor: int | None = None,
        debug: str = "",
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        command_timeout: float = 30.0,
    ) -> None:
        if not isinstance(num_brokers, int) or num_brokers < 1:
            raise InvalidArgumentError("num_brokers", f"must be an int >= 1, not {num_brokers!r}")
        self._num_brokers = num_brokers
        if replication_factor is None:
            replication_factor = min(3, num_brokers)
        self._check_replication_factor(replication_factor)
        for name, partitions in (topics or {}).items():
            self._check_topic(name, partitions)
        self._topics_with_errors: set[str] = set()
        self._child = ClusterProcess(
            find_librdkafka(),
            num_brokers,
            debug=debug,
            log_path=log_path,
            command_timeout=command_timeout,
        )
        try:
            ready = self._child.wait_ready(startup_timeout)
            self._bootstrap_servers: str = ready["bootstrap_servers"]
            self._librdkafka_version: str = ready["librdkafka_version"]
            for name, partitions in (topics or {}).items():
                self.create_topic(name, partitions, replication_factor)
        except BaseException:
            self.close()
            raise

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Destroy the cluster and end its process; safe to call more than once.

        The child is asked to exit by closing its stdin; it is killed if it has
        not exited after ``timeout`` seconds.
        """
        self._child.close(timeout)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._child.closed

    # -- facts -------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:port1,127.0.0.1:port2,..."``, one entry per broker."""
        return self._bootstrap_servers

    @property
    def num_brokers(self) -> int:
        return self._num_brokers

    @property
    def broker_ids(self) -> tuple[int, ...]:
        """The brokers' ids: ``1..num_brokers``."""
        return tuple(range(1, self._num_brokers + 1))

    @property
    def pid(self) -> int:
        """The process id of the child process that runs the cluster."""
        return self._child.pid

    @property
    def librdkafka_version(self) -> str:
        """The version of the librdkafka that runs the cluster, e.g. ``"2.16.0"``."""
        return self._librdkafka_version

    @property
    def log_path(self) -> Path:
        """Where the child process writes librdkafka's log (see ``debug``)."""
        return self._child.log_path

    # -- topics ------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> None:
        """Create ``name`` with ``partitions`` partitions, leaders spread over the brokers.

        Example::

            cluster.create_topic("logs", partitions=3, replication_factor=3)
        """
        self._check_topic(name, partitions)
        self._check_replication_factor(replication_factor)
        self._child.call(
            "create_topic",
            topic=name,
            partitions=partitions,
            replication_factor=replication_factor,
        )

    def set_partition_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Move the leadership of a partition (creating the topic if unknown).

        ``broker_id`` -1 leaves the partition without a leader. Clients learn
        of the move from ``NOT_LEADER_OR_FOLLOWER`` answers and new metadata.

        Example::

            cluster.set_partition_leader("logs", 0, broker_id=3)
        """
        if broker_id != -1:
            self._check_broker(broker_id, allow_all=False)
        self._child.call(
            "set_partition_leader", topic=topic, partition=partition, broker_id=broker_id
        )

    def topic_set_error(self, topic: str, error_code: int) -> None:
        """Make Metadata answers carry ``error_code`` for ``topic`` (0 clears it).

        Example::

            cluster.topic_set_error("logs", 29)  # TOPIC_AUTHORIZATION_FAILED
        """
        self._child.call("topic_set_error", topic=topic, error_code=int(error_code))
        if error_code:
            self._topics_with_errors.add(topic)
        else:
            self._topics_with_errors.discard(topic)

    # -- brokers -----------------------------------------------------------

    def broker_down(self, broker_id: int) -> None:
        """Disconnect a broker's clients and refuse new connections (-1: all brokers).

        Leadership does not move: partitions led by the broker become
        unavailable until :meth:`broker_up` or :meth:`set_partition_leader`.

        Example::

            cluster.broker_down(1)
        """
        self._check_broker(broker_id, allow_all=True)
        self._child.call("broker_down", broker_id=broker_id)

    def broker_up(self, broker_id: int) -> None:
        """Let a broker that was set down accept connections again (-1: all brokers)."""
        self._check_broker(broker_id, allow_all=True)
        self._child.call("broker_up", broker_id=broker_id)

    def set_broker_rtt(self, broker_id: int, rtt_ms: int) -> None:
        """Delay every response of a broker by ``rtt_ms`` milliseconds (-1: all brokers).

        Example::

            cluster.set_broker_rtt(2, 500)
        """
        self._check_broker(broker_id, allow_all=True)
        if rtt_ms < 0:
            raise InvalidArgumentError("rtt_ms", f"must be >= 0, not {rtt_ms}")
        self._child.call("set_broker_rtt", broker_id=broker_id, rtt_ms=rtt_ms)

    # -- errors and versions -----------------------------------------------

    def push_request_errors(self, api_key: int, errors: Sequence[int]) -> None:
        """Fail the next ``len(errors)`` requests of ``api_key``, on any broker, in order.

        Each listed error code answers one request (0 lets it through). The
        cluster-wide stack is used after any per-broker stack.

        Example::

            cluster.push_request_errors(0, [7, 7])  # two Produce: REQUEST_TIMED_OUT
        """
        codes = [int(code) for code in errors]
        if codes:
            self._child.call("push_request_errors", api_key=int(api_key), errors=codes)

    def broker_push_request_error_rtts(
        self, broker_id: int, api_key: int, errors_and_rtts: Sequence[tuple[int, int]]
    ) -> None:
        """Answer the next requests of ``api_key`` on one broker with (error, delay ms) pairs.

        Example::

            # the next Produce on broker 1 waits 2 s, then succeeds
            cluster.broker_push_request_error_rtts(1, 0, [(0, 2000)])
        """
        self._check_broker(broker_id, allow_all=False)
        pairs = [[int(err), int(rtt)] for err, rtt in errors_and_rtts]
        if any(rtt < 0 for _, rtt in pairs):
            raise InvalidArgumentError("errors_and_rtts", "delays must be >= 0")
        if pairs:
            self._child.call(
                "broker_push_request_error_rtts",
                broker_id=broker_id,
                api_key=int(api_key),
                errors_and_rtts=pairs,
            )

    def broker_error_stack_count(self, broker_id: int, api_key: int) -> int:
        """How many pushed (error, delay) pairs a broker still holds for ``api_key``."""
        self._check_broker(broker_id, allow_all=False)
        return int(
            self._child.call("broker_error_stack_count", broker_id=broker_id, api_key=api_key)
        )

    def clear_request_errors(self, api_key: int) -> None:
        """Drop the errors still pushed cluster-wide for ``api_key``."""
        self._child.call("clear_request_errors", api_key=int(api_key))

    def set_api_version(self, api_key: int, min_version: int, max_version: int) -> None:
        """Change the version range advertised for an API (-1, -1 removes the API).

        ``max_version`` must not exceed what the mock implements.

        Example::

            cluster.set_api_version(0, 0, 3)  # Produce v0-v3 only
        """
        self._child.call(
            "set_api_version",
            api_key=int(api_key),
            min_version=int(min_version),
            max_version=int(max_version),
        )

    def set_controller(self, broker_id: int) -> None:
        """Name ``broker_id`` as the controller in Metadata answers.

        Until this is called the mock reports controller id 0, which is no
        broker (broker ids start at 1).
        """
        self._check_broker(broker_id, allow_all=False)
        self._child.call("set_controller", broker_id=broker_id)

    def reset(self) -> None:
        """Undo fault injection, to share one cluster between independent tests.

        Brings every broker up, removes added latency, drops the errors pushed
        cluster-wide (:meth:`push_request_errors`) and topic errors, and stops
        and clears request tracking. Not undone: errors pushed on one broker
        (:meth:`broker_push_request_error_rtts`, the mock offers no way to drop
        them), moved leaders, changed API versions, the controller, and data.
        """
        self._child.call("reset", topics_with_errors=sorted(self._topics_with_errors))
        self._topics_with_errors.clear()

    # -- request tracking --------------------------------------------------

    def start_request_tracking(self) -> None:
        """Record every request the brokers receive from now on (see :meth:`requests`).

        Example::

            cluster.start_request_tracking()
            ...  # produce
            produce_brokers = {r.broker_id for r in cluster.requests() if r.api_key == 0}
        """
        self._child.call("start_request_tracking")

    def stop_request_tracking(self) -> None:
        """Stop recording requests; the ones recorded so far are kept."""
        self._child.call("stop_request_tracking")

    def requests(self) -> list[MockRequest]:
        """The requests recorded since tracking started (or the last :meth:`clear_requests`)."""
        return [MockRequest(*row) for row in self._child.call("requests")]

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        self._child.call("clear_requests")

    # -- internals ---------------------------------------------------------

    def _check_broker(self, broker_id: int, *, allow_all: bool) -> None:
        if allow_all and broker_id == -1:
            return
        if not 1 <= broker_id <= self._num_brokers:
            raise InvalidArgumentError(
                "broker_id", f"{broker_id} is not one of 1..{self._num_brokers}"
            )

    def _check_replication_factor(self, replication_factor: int) -> None:
        # The mock cannot place more replicas than brokers.
        if not 1 <= replication_factor <= self._num_brokers:
            raise InvalidArgumentError(
                "replication_factor",
                f"must be between 1 and num_brokers ({self._num_brokers}), "
                f"not {replication_factor}",
            )

    @staticmethod
    def _check_topic(name: str, partitions: int) -> None:
        if not name:
            raise InvalidArgumentError("name", "a topic name must not be empty")
        if partitions < 1:
            raise InvalidArgumentError("partitions", f"must be >= 1, not {partitions}")
