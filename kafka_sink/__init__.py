"""kafka_sink: ship application logs, events and metrics to Apache Kafka."""

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

__version__ = "0.1.0"

__all__ = [
    "BrokerResponseError",
    "ConnectError",
    "CorrelationIdMismatchError",
    "ErrorCode",
    "InvalidArgumentError",
    "KafkaSinkError",
    "LeaderNotFoundError",
    "MetadataError",
    "NetworkError",
    "NoKnownBrokersError",
    "ProtocolError",
    "ReceiveError",
    "RequestTimeoutError",
    "SendError",
    "UnsupportedVersionError",
    "__version__",
]
