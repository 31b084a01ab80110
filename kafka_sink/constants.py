"""Constants of the producer contract, named as in Perl's ``Kafka`` distribution."""

from __future__ import annotations

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
]

#: required_acks: the broker sends no response at all.
NOT_SEND_ANY_RESPONSE = 0
#: required_acks: the leader answers once the records are in its local log.
WAIT_WRITTEN_TO_LOCAL_LOG = 1
#: required_acks: the leader answers once every in-sync replica has the records.
BLOCK_UNTIL_IS_COMMITTED = -1

#: Compression codecs, as numbered in a RecordBatch's attributes.
COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4

#: Seconds to wait for the network (and, as the producer's timeout, for acks).
REQUEST_TIMEOUT = 1.5
#: How many times a request is tried before its error is raised.
SEND_MAX_ATTEMPTS = 4
#: Milliseconds to wait between two attempts (doubled at each retry, with jitter).
RETRY_BACKOFF = 200
#: The port Kafka brokers listen on by default.
KAFKA_SERVER_PORT = 9092
