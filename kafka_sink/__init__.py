"""kafka_sink: ship application logs, events and metrics to Apache Kafka.

``Sink`` batches records per partition and delivers them from a background
thread::

    with kafka_sink.Sink("localhost:9092") as sink:
        sink.produce("logs", b'{"msg": "hello"}', key=b"user-1")

The synchronous producer core speaks the Kafka protocol itself::

    import kafka_sink

    connection = kafka_sink.Connection(host="localhost")
    producer = kafka_sink.Producer(connection)
    producer.send("mytopic", 0, "Single message")
    producer.send("mytopic", 0, ["The first message", "The second message"])
    connection.close()

``import kafka_sink`` is cheap: each public name is imported the first time
it is used, so a process pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kafka_sink.constants import (
    BLOCK_UNTIL_IS_COMMITTED,
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    KAFKA_SERVER_PORT,
    NOT_SEND_ANY_RESPONSE,
    REQUEST_TIMEOUT,
    RETRY_BACKOFF,
    SEND_MAX_ATTEMPTS,
    WAIT_WRITTEN_TO_LOCAL_LOG,
)
from kafka_sink.errors import (
    AuthenticationError,
    BrokerResponseError,
    BufferFullError,
    ConfigError,
    ConnectError,
    CorrelationIdMismatchError,
    DeliveryError,
    DeliveryTimeoutError,
    ErrorCode,
    InvalidArgumentError,
    KafkaSinkError,
    LeaderNotFoundError,
    MetadataError,
    NetworkError,
    NoKnownBrokersError,
    ProtocolError,
    ReceiveError,
    RecordTooLargeError,
    RequestTimeoutError,
    SendError,
    SinkClosedError,
    SpoolError,
    TlsAuthenticationError,
    TlsError,
    UnsupportedVersionError,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    from kafka_sink._accel import IMPLEMENTATION
    from kafka_sink.config import SecurityConfig, SinkConfig
    from kafka_sink.hooks import DeadLetter, hookimpl, plugin_manager
    from kafka_sink.integrations.handler import KafkaHandler
    from kafka_sink.integrations.logger_factory import KafkaLoggerFactory
    from kafka_sink.integrations.metrics_exporter import MetricsExporter
    from kafka_sink.integrations.processor import KafkaProcessor
    from kafka_sink.metrics import MetricsRegistry
    from kafka_sink.net.cluster import Connection
    from kafka_sink.net.metadata import ClusterMetadata
    from kafka_sink.producer.futures import (
        DeliveryFuture,
        DeliveryReport,
        RecordMetadata,
        UndeliveredRecord,
        confluent_style,
    )
    from kafka_sink.producer.sink import Sink
    from kafka_sink.producer.sync import Producer, ProduceResult
    from kafka_sink.protocol.oauthbearer import OAuthBearerToken

# The public names imported on first use, and their modules. The constants
# and errors above cost little and are imported at once (``except
# kafka_sink.KafkaSinkError`` needs nothing more); the rest waits until it is
# used, so that ``import kafka_sink`` stays cheap for every process that
# imports it: one that only logs loads the handler's modules when dictConfig
# (or the code) looks KafkaHandler up, and the reader, the admin APIs, the
# command line and the metrics exporter only when they are used.
_LAZY: dict[str, str] = {
    "IMPLEMENTATION": "kafka_sink._accel",
    "SecurityConfig": "kafka_sink.config",
    "SinkConfig": "kafka_sink.config",
    "DeadLetter": "kafka_sink.hooks",
    "hookimpl": "kafka_sink.hooks",
    "plugin_manager": "kafka_sink.hooks",
    "KafkaHandler": "kafka_sink.integrations.handler",
    "KafkaLoggerFactory": "kafka_sink.integrations.logger_factory",
    "KafkaProcessor": "kafka_sink.integrations.processor",
    "MetricsExporter": "kafka_sink.integrations.metrics_exporter",
    "MetricsRegistry": "kafka_sink.metrics",
    "ClusterMetadata": "kafka_sink.net.metadata",
    "Connection": "kafka_sink.net.cluster",
    "DeliveryFuture": "kafka_sink.producer.futures",
    "DeliveryReport": "kafka_sink.producer.futures",
    "RecordMetadata": "kafka_sink.producer.futures",
    "UndeliveredRecord": "kafka_sink.producer.futures",
    "confluent_style": "kafka_sink.producer.futures",
    "Sink": "kafka_sink.producer.sink",
    "Producer": "kafka_sink.producer.sync",
    "ProduceResult": "kafka_sink.producer.sync",
    "OAuthBearerToken": "kafka_sink.protocol.oauthbearer",
}


def __getattr__(name: str) -> Any:
    """Import a public name, or a submodule (``kafka_sink.metrics``), on first use."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups do not come here again
        return value
    if not name.startswith("__"):
        # ``import kafka_sink`` used to import most submodules, and code that
        # reaches them as attributes (kafka_sink.hooks.plugin_manager) still works.
        qualified = f"{__name__}.{name}"
        try:
            return importlib.import_module(qualified)
        except ModuleNotFoundError as error:
            if error.name != qualified:
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"

__all__ = [
    "BLOCK_UNTIL_IS_COMMITTED",
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
    "IMPLEMENTATION",
    "KAFKA_SERVER_PORT",
    "NOT_SEND_ANY_RESPONSE",
    "REQUEST_TIMEOUT",
    "RETRY_BACKOFF",
    "SEND_MAX_ATTEMPTS",
    "WAIT_WRITTEN_TO_LOCAL_LOG",
    "AuthenticationError",
    "BrokerResponseError",
    "BufferFullError",
    "ClusterMetadata",
    "ConfigError",
    "ConnectError",
    "Connection",
    "CorrelationIdMismatchError",
    "DeadLetter",
    "DeliveryError",
    "DeliveryFuture",
    "DeliveryReport",
    "DeliveryTimeoutError",
    "ErrorCode",
    "InvalidArgumentError",
    "KafkaHandler",
    "KafkaLoggerFactory",
    "KafkaProcessor",
    "KafkaSinkError",
    "LeaderNotFoundError",
    "MetadataError",
    "MetricsExporter",
    "MetricsRegistry",
    "NetworkError",
    "NoKnownBrokersError",
    "OAuthBearerToken",
    "ProduceResult",
    "Producer",
    "ProtocolError",
    "ReceiveError",
    "RecordMetadata",
    "RecordTooLargeError",
    "RequestTimeoutError",
    "SecurityConfig",
    "SendError",
    "Sink",
    "SinkClosedError",
    "SinkConfig",
    "SpoolError",
    "TlsAuthenticationError",
    "TlsError",
    "UndeliveredRecord",
    "UnsupportedVersionError",
    "WaitTimeoutError",
    "__version__",
    "confluent_style",
    "hookimpl",
    "plugin_manager",
]
