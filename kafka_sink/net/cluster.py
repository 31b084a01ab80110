"""A connection to a Kafka cluster: metadata, leaders, retries.

:class:`Connection` is the counterpart of Perl's ``Kafka::Connection``: it is
built from one host or a broker list, bootstraps from any reachable broker,
keeps the cluster's metadata (brokers, topics, partitions, leaders) and one
connection per broker, and sends requests to the right broker, refreshing
metadata and retrying with back-off when Kafka says the error is retriable or
that cached metadata is stale (``kafka_sink.error_codes``).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kafka_sink.config import (
    BrokerAddress,
    ConnectionConfig,
    SecurityConfig,
    check_topic,
    parse_broker_list,
)
from kafka_sink.constants import (
    KAFKA_SERVER_PORT,
    REQUEST_TIMEOUT,
    RETRY_BACKOFF,
    SEND_MAX_ATTEMPTS,
)
from kafka_sink.error_codes import KafkaErrorCode
from kafka_sink.errors import (
    AuthenticationError,
    BrokerResponseError,
    ConnectError,
    InvalidArgumentError,
    KafkaSinkError,
    LeaderNotFoundError,
    MetadataError,
    NetworkError,
    NoKnownBrokersError,
    ProtocolError,
    TlsError,
)
from kafka_sink.net.broker import BrokerConnection
from kafka_sink.net.metadata import ClusterMetadata
from kafka_sink.net.security import transport_for
from kafka_sink.net.transport import Clock, Transport, monotonic
from kafka_sink.protocol.apis import ApiKey
from kafka_sink.protocol.create_topics import (
    CreatableTopic,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse, PartitionMetadata
from kafka_sink.protocol.schema import AnswerT, Request

__all__ = ["ClusterMetadata", "Connection"]

T = TypeVar("T")


class Connection:
    """A connection to a Kafka cluster, from one host or a list of brokers.

    Example::

        connection = Connection(host="localhost")              # localhost:9092
        connection = Connection(broker_list=["h1:9092", "[::1]:9093"], timeout=3)
        connection.partitions("logs")                             # [0, 1, 2]
        connection.close()

    It bootstraps from the first broker that answers and raises
    :class:`~kafka_sink.ConnectError` when none does within ``timeout``
    seconds. ``send_max_attempts`` and ``retry_backoff`` (milliseconds,
    doubled at each retry with jitter) govern retries of retriable errors;
    with ``auto_create_topics_enable`` a topic missing on first use is created
    by a broker that allows it, and waited for, instead of failing.

    TLS and SASL take the options of :class:`~kafka_sink.config.SecurityConfig`
    by name (or a ``security`` value)::

        connection = Connection(
            broker_list=["kafka1:9093"],
            security_protocol="SASL_SSL",
            ssl_cafile="/etc/kafka/ca.pem",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="alice",
            sasl_plain_password=password,
        )

    A broker that refuses the credentials or the TLS handshake raises
    :class:`~kafka_sink.AuthenticationError` at once, without retrying.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int = KAFKA_SERVER_PORT,
        *,
        broker_list: str | Sequence[str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
        send_max_attempts: int = SEND_MAX_ATTEMPTS,
        retry_backoff: int = RETRY_BACKOFF,
        auto_create_topics_enable: bool = False,
        ip_version: int | None = None,
        client_id: str = "kafka-sink",
        max_logged_errors: int = 100,
        transport: Transport | None = None,
        clock: Clock = monotonic,
        sleep: Callable[[float], None] = time.sleep,
        security: SecurityConfig | None = None,
        **security_options: Any,
    ) -> None:
        brokers: list[BrokerAddress] = []
        if host is not None:
            if not isinstance(host, str) or not host:
                raise InvalidArgumentError("host", f"must be a non-empty string, got {host!r}")
            brokers.append(BrokerAddress.parse(_join(host, port), "host"))
        if broker_list is not None:
            brokers.extend(parse_broker_list(broker_list))
        if not brokers:
            brokers.append(BrokerAddress("localhost", _checked_port(port)))
        if security_options:
            if security is not None:
                raise InvalidArgumentError(
                    next(iter(security_options)), "pass either security or its options, not both"
                )
            security = SecurityConfig.from_options(security_options, "Connection")
        self.config = ConnectionConfig(
            brokers=tuple(dict.fromkeys(brokers)),
            timeout=timeout,
            send_max_attempts=send_max_attempts,
            retry_backoff=retry_backoff,
            auto_create_topics_enable=auto_create_topics_enable,
            ip_version=ip_version,
            client_id=client_id,
            max_logged_errors=max_logged_errors,
            security=SecurityConfig() if security is None else security,
        )
        self._transport = transport or transport_for(self.config.security, ip_version)
        self._clock = clock
        self._sleep = sleep
        self._random = random.Random()
        self._by_address: dict[BrokerAddress, BrokerConnection] = {}
        self._metadata = ClusterMetadata()
        self._nonfatal: deque[KafkaSinkError] = deque(maxlen=self.config.max_logged_errors or 1)
        self._closed = False
        self.refresh_metadata(None)

    def __repr__(self) -> str:
        brokers = ",".join(str(b) for b in self.config.brokers)
        return f"<Connection brokers={brokers} known={len(self._metadata.brokers)}>"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what the connection knows ---------------------------------------

    @property
    def metadata(self) -> ClusterMetadata:
        """The latest metadata snapshot."""
        return self._metadata

    def get_known_servers(self) -> list[str]:
        """``host:port`` of every broker known from the broker list or metadata."""
        known = dict.fromkeys([*self.config.brokers, *self._metadata.brokers.values()])
        return [str(address) for address in known]

    def is_server_known(self, server: str) -> bool:
        """Whether ``host:port`` is a broker of the list or of the metadata."""
        return str(BrokerAddress.parse(server, "server")) in self.get_known_servers()

    def is_server_connected(self, server: str) -> bool:
        """Whether a connection to ``host:port`` is open."""
        conn = self._by_address.get(BrokerAddress.parse(server, "server"))
        return conn is not None and conn.connected

    def partitions(self, topic: str) -> list[int]:
        """The partition ids of ``topic``, sorted (metadata is fetched when unknown)."""
        return sorted(self._topic_partitions(topic))

    def leader(self, topic: str, partition: int) -> str:
        """``host:port`` of the leader of a partition."""
        return str(self.leader_address(topic, partition, refresh=False))

    def nonfatal_errors(self) -> list[KafkaSinkError]:
        """The last errors that a retry recovered from, oldest first."""
        return list(self._nonfatal)

    def clear_nonfatals(self) -> None:
        self._nonfatal.clear()

    def cluster_errors(self) -> dict[str, KafkaSinkError]:
        """The last network error of each broker connection that had one."""
        return {
            str(address): conn.last_error
            for address, conn in self._by_address.items()
            if conn.last_error is not None
        }

    # -- requests -----------------------------------------------------------

    def request_to_leader(self, topic: str, partition: int, request: Request[AnswerT]) -> AnswerT:
        """Send ``request`` to the leader of a partition, retrying as configured.

        ``check`` errors in the response are the caller's: this retries only
        network failures and missing leaders. See :meth:`retrying` for the
        policy shared with response-level errors.
        """
        return self.retrying(
            lambda refresh: self.broker(self.leader_address(topic, partition, refresh)).request(
                request, self.config.timeout
            ),
            topics=[topic],
        )

    def request_to_any(self, request: Request[AnswerT]) -> AnswerT:
        """Send ``request`` to any reachable broker (bootstrap brokers first)."""
        return self._any_broker(lambda conn: conn.request(request, self.config.timeout))

    def retrying(self, attempt: Callable[[bool], T], topics: Sequence[str] | None = None) -> T:
        """Run ``attempt`` up to ``send_max_attempts`` times.

        ``attempt(refresh)`` is told whether metadata was just invalidated.
        Network errors, missing leaders and retriable broker errors are kept
        as non-fatal and retried after a back-off (metadata is refreshed first
        when the error says it is stale); the last error is raised when every
        attempt failed. Other errors, authentication failures among them, are
        raised at once.
        """
        attempts = self.config.send_max_attempts
        refresh = False
        for number in range(1, attempts + 1):
            try:
                return attempt(refresh)
            except AuthenticationError:
                raise  # the same credentials would fail again
            except (NetworkError, LeaderNotFoundError, BrokerResponseError) as exc:
                if isinstance(exc, BrokerResponseError) and not exc.retriable:
                    raise
                if number == attempts or self._closed:
                    raise
                self._note(exc)
                refresh = not isinstance(exc, BrokerResponseError) or exc.invalid_metadata
                self._backoff(number)
                if refresh and topics is not None:
                    try:
                        self.refresh_metadata(list(topics))
                    except KafkaSinkError as meta_exc:
                        self._note(meta_exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> None:
        # Exponential back-off with +-20 % jitter, so that producers that failed
        # together do not retry together.
        base = self.config.retry_backoff / 1000.0 * (2 ** (attempt - 1))
        self._sleep(min(base, 10.0) * self._random.uniform(0.8, 1.2))

    def _note(self, exc: KafkaSinkError) -> None:
        if self.config.max_logged_errors:
            self._nonfatal.append(exc)

    # -- metadata -------------------------------------------------------------

    def refresh_metadata(self, topics: Sequence[str] | None) -> ClusterMetadata:
        """Fetch metadata for ``topics`` (None: every topic) from any broker."""
        request = MetadataRequest.for_topics(
            None if topics is None else list(topics),
            allow_auto_topic_creation=self.config.auto_create_topics_enable,
        )
        response: MetadataResponse = self._any_broker(
            lambda conn: conn.request(request, self.config.timeout)
        )
        if not response.brokers:
            raise NoKnownBrokersError("the cluster's metadata names no broker")
        newer = ClusterMetadata.from_response(response)
        self._metadata = self._metadata.merged(newer, topics)
        self._forget_departed_brokers()
        return self._metadata

    def _forget_departed_brokers(self) -> None:
        live = set(self._metadata.brokers.values()) | set(self.config.brokers)
        for address in [a for a in self._by_address if a not in live]:
            self._by_address.pop(address).close()

    def _topic_partitions(self, topic: str) -> dict[int, PartitionMetadata]:
        check_topic(topic)
        partitions = self._metadata.topics.get(topic)
        if partitions:
            return partitions
        deadline = self._clock() + self.config.timeout
        attempt = 0
        while True:
            metadata = self.refresh_metadata([topic])
            partitions = metadata.topics.get(topic)
            error = metadata.topic_errors.get(topic, 0)
            if partitions and not error:
                return partitions
            creating = self.config.auto_create_topics_enable and error in (
                0,
                KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                KafkaErrorCode.LEADER_NOT_AVAILABLE,
            )
            if not creating or self._clock() >= deadline:
                if error:
                    raise BrokerResponseError(error, topic=topic)
                raise MetadataError(f"no partitions known for topic {topic!r}", topic=topic)
            # The broker is creating the topic: wait for it, bounded by the timeout.
            attempt += 1
            self._sleep(min(0.05 * attempt, max(0.0, deadline - self._clock())))

    def leader_address(self, topic: str, partition: int, refresh: bool = False) -> BrokerAddress:
        """The leader of a partition, from cached metadata unless ``refresh``."""
        if refresh:
            self.refresh_metadata([topic])
        partitions = self._topic_partitions(topic)
        info = partitions.get(partition)
        if info is None:
            raise InvalidArgumentError(
                "partition",
                f"topic {topic!r} has no partition {partition} (partitions: {sorted(partitions)})",
            )
        address = self._metadata.brokers.get(info.leader_id)
        if info.leader_id < 0 or address is None:
            raise LeaderNotFoundError(
                f"no leader for {topic}-{partition}", topic=topic, partition=partition
            )
        return address

    # -- broker connections ---------------------------------------------------

    def broker(self, address: BrokerAddress) -> BrokerConnection:
        """The (connected) connection to the broker at ``address``."""
        if self._closed:
            raise ConnectError("the connection is closed")
        conn = self._by_address.get(address)
        if conn is None:
            node_id = next((n for n, a in self._metadata.brokers.items() if a == address), None)
            conn = BrokerConnection(
                address,
                self._transport,
                client_id=self.config.client_id,
                node_id=node_id,
                clock=self._clock,
                security=self.config.security,
            )
            self._by_address[address] = conn
        if not conn.connected:
            conn.connect(self.config.timeout)
        return conn

    def _any_broker(self, call: Callable[[BrokerConnection], T]) -> T:
        """Run ``call`` on the first broker that works, within one timeout overall.

        Connected brokers are tried first, then the broker list, then the
        brokers that metadata named.
        """
        deadline = self._clock() + self.config.timeout
        candidates = list(
            dict.fromkeys(
                [
                    *(a for a, c in self._by_address.items() if c.connected),
                    *self.config.brokers,
                    *self._metadata.brokers.values(),
                ]
            )
        )
        failures: list[str] = []
        last: KafkaSinkError | None = None
        all_tls = True
        for address in candidates:
            if self._clock() >= deadline and failures:
                break
            try:
                return call(self.broker(address))
            except AuthenticationError:
                # Every broker takes the same credentials: do not try each one.
                raise
            except (NetworkError, ProtocolError) as exc:
                failures.append(exc.message)
                last = exc
                all_tls = all_tls and isinstance(exc, TlsError)
                self._note(exc)
        if isinstance(last, ProtocolError):
            raise last
        # Every broker failed the TLS handshake: say so by the error's class too.
        error = TlsError if failures and all_tls else ConnectError
        raise error(
            "cannot connect to any broker: " + "; ".join(failures or ["no broker to try"]),
            brokers=[str(a) for a in candidates],
        )

    # -- topics (tests and tools) ----------------------------------------------

    def create_topic(
        self, name: str, partitions: int = 1, replication_factor: int = 1, timeout_ms: int = 10000
    ) -> None:
        """Create a topic through the controller; an existing topic is not an error."""
        check_topic(name)
        request = CreateTopicsRequest(
            [CreatableTopic(name, partitions, replication_factor)], timeout_ms=timeout_ms
        )
        controller = self._metadata.brokers.get(self._metadata.controller_id)
        if controller is not None:
            response: CreateTopicsResponse = self.broker(controller).request(
                request, self.config.timeout + timeout_ms / 1000
            )
        else:
            response = self.request_to_any(request)
        for result in response.topics:
            if result.error_code not in (KafkaErrorCode.NONE, KafkaErrorCode.TOPIC_ALREADY_EXISTS):
                raise BrokerResponseError(
                    result.error_code,
                    result.error_message,
                    topic=result.name,
                )
        # Wait until every partition has a leader, bounded by the timeout.
        deadline = self._clock() + max(self.config.timeout, timeout_ms / 1000)
        while True:
            metadata = self.refresh_metadata([name])
            ready = metadata.topics.get(name, {})
            if len(ready) >= partitions and all(p.leader_id >= 0 for p in ready.values()):
                return
            if self._clock() >= deadline:
                raise MetadataError(f"topic {name!r} has no leaders yet", topic=name)
            self._sleep(0.05)

    def api_versions(self, server: str | None = None) -> dict[int, tuple[int, int]]:
        """The API version ranges that a broker (default: any) supports."""
        if server is None:
            return self._any_broker(lambda conn: conn.api_versions)
        return self.broker(BrokerAddress.parse(server, "server")).api_versions

    def version_for(self, api_key: ApiKey, server: str) -> int:
        return self.broker(BrokerAddress.parse(server, "server")).version_for(api_key)

    # -- lifecycle --------------------------------------------------------------

    def close_connection(self, server: str) -> None:
        """Close the connection to one broker (it reopens on the next request)."""
        conn = self._by_address.get(BrokerAddress.parse(server, "server"))
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close every broker connection. Idempotent."""
        self._closed = True
        for conn in self._by_address.values():
            conn.close()
        self._by_address.clear()


def _join(host: str, port: int) -> str:
    if host.startswith("[") or host.count(":") == 1:
        return host
    return f"[{host}]:{_checked_port(port)}" if ":" in host else f"{host}:{_checked_port(port)}"


def _checked_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidArgumentError("port", f"must be an integer 1-65535, got {port!r}")
    return port
