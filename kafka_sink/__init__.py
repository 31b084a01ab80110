"""kafka_sink: ship application logs, events and metrics to Apache Kafka.

The producer core speaks the Kafka protocol itself::

    import kafka_sink

    connection = kafka_sink.Connection(host="localhost")
    producer = kafka_sink.Producer(connection)
    producer.send("mytopic", 0, "Single message")
    producer.send("mytopic", 0, ["The first message", "The second message"])
    connection.close()
"""

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
    BrokerResponseError,
    ConnectError,
    CorrelationIdMismatchError,
    ErrorCode,
    InvalidArgumentError,
    KafkaSinkError,
    LeaderNotFoundError,
    MetadataError,
    NetworkError,
    NoKnownBrokersError,
    ProtocolError,
    ReceiveError,
    RequestTimeoutError,
    SendError,
    UnsupportedVersionError,
)
from kafka_sink.net.cluster import ClusterMetadata, Connection
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
    "BrokerResponseError",
    "ClusterMetadata",
    "ConnectError",
    "Connection",
    "CorrelationIdMismatchError",
    "ErrorCode",
    "InvalidArgumentError",
    "KafkaSinkError",
    "LeaderNotFoundError",
    "MetadataError",
    "NetworkError",
    "NoKnownBrokersError",
    "ProduceResult",
    "Producer",
    "ProtocolError",
    "ReceiveError",
    "RequestTimeoutError",
    "SendError",
    "UnsupportedVersionError",
    "__version__",
]
