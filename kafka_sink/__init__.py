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
"""

from kafka_sink.config import SecurityConfig, SinkConfig
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
    TlsAuthenticationError,
    TlsError,
    UnsupportedVersionError,
)
from kafka_sink.hooks import DeadLetter, hookimpl, plugin_manager
from kafka_sink.integrations.handler import KafkaHandler
from kafka_sink.integrations.processor import KafkaProcessor
from kafka_sink.metrics import MetricsExporter, MetricsRegistry
from kafka_sink.net.cluster import ClusterMetadata, Connection
from kafka_sink.producer.futures import DeliveryFuture, RecordMetadata
from kafka_sink.producer.sink import Sink
from kafka_sink.producer.sync import Producer, ProduceResult

__version__ = "0.1.0"

__all__ = [
    "BLOCK_UNTIL_IS_COMMITTED",
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
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
    "ConnectError",
    "Connection",
    "CorrelationIdMismatchError",
    "DeadLetter",
    "DeliveryError",
    "DeliveryFuture",
    "DeliveryTimeoutError",
    "ErrorCode",
    "InvalidArgumentError",
    "KafkaHandler",
    "KafkaProcessor",
    "KafkaSinkError",
    "LeaderNotFoundError",
    "MetadataError",
    "MetricsExporter",
    "MetricsRegistry",
    "NetworkError",
    "NoKnownBrokersError",
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
    "TlsAuthenticationError",
    "TlsError",
    "UnsupportedVersionError",
    "__version__",
    "hookimpl",
    "plugin_manager",
]
