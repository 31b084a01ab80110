"""What an exporter writes where: its options, checked once when it is built."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

from kafka_sink.config import check_topic, header_pairs
from kafka_sink.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOPICS",
    "Encoding",
    "ExporterOptions",
    "HeaderInput",
    "MessageKey",
    "Signal",
]

#: The three signals, named as in the Collector's configuration.
Signal = Literal["traces", "logs", "metrics"]

#: How each message's value is written, named as in the Collector's Kafka
#: exporter and receiver. ``"otlp_proto"``: the binary protobuf encoding of
#: one ``Export{Trace,Logs,Metrics}ServiceRequest``. ``"otlp_json"``: the
#: same message in the OTLP/JSON encoding (lowerCamelCase field names,
#: 64-bit integers as decimal strings, enums as integers, trace and span ids
#: as hex).
Encoding = Literal["otlp_proto", "otlp_json"]

#: What each message is keyed by. ``"none"``: no key (the sink's sticky
#: partitioner spreads the messages). ``"trace_id"``: one message per trace,
#: keyed by the trace id in lowercase hex, so a trace's spans (or logs) land
#: on one partition. ``"resource_attributes"``: one message per resource,
#: keyed by the 16-byte hash of its attributes that the Collector computes.
MessageKey = Literal["none", "trace_id", "resource_attributes"]

#: The Collector's default topic of each signal.
DEFAULT_TOPICS: Mapping[Signal, str] = MappingProxyType(
    {"traces": "otlp_spans", "logs": "otlp_logs", "metrics": "otlp_metrics"}
)

#: Seconds an export may take, as the OTLP exporters' default
#: (``OTEL_EXPORTER_OTLP_TIMEOUT``).
DEFAULT_TIMEOUT = 10.0

#: The Collector's ``producer.max_message_bytes``: a larger request is split
#: into several messages, and Kafka's default ``message.max.bytes``
#: (1,000,012) takes every one of them.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000

# Which keys make sense for which signal: spans always have a trace id,
# log records may, and metric data points have none.
_KEYS_OF: Mapping[Signal, tuple[MessageKey, ...]] = MappingProxyType(
    {
        "traces": ("none", "trace_id"),
        "logs": ("none", "trace_id", "resource_attributes"),
        "metrics": ("none", "resource_attributes"),
    }
)


#: Headers as a mapping or ``(name, value)`` pairs; values are text, bytes or None.
HeaderInput = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]]


def _no_headers() -> HeaderInput:
    return ()


@dataclass(frozen=True, slots=True)
class ExporterOptions:
    """The options of one exporter (the exporters' keyword arguments of the same names).

    ``signal``
        ``"traces"``, ``"logs"`` or ``"metrics"``.
    ``topic``
        The topic of every message whose resource names no topic of its own
        (the exporters default to the Collector's, :data:`DEFAULT_TOPICS`).
    ``encoding``
        ``"otlp_proto"`` or ``"otlp_json"`` (see :data:`Encoding`).
    ``key``
        What messages are keyed by (see :data:`MessageKey`).
    ``topic_from_attribute``
        A resource attribute whose (non-empty, string) value is the topic of
        that resource's telemetry; resources without it go to ``topic``.
    ``timeout``
        Seconds an export may take, from the SDK's call to the brokers'
        acknowledgement of every message; later, the export fails.
    ``max_message_bytes``
        Encoded requests larger than this are split into several messages
        (never a span, log record or metric apart).
    ``record_headers``
        Headers added to every message, as a mapping or ``(name, value)``
        pairs; values are text or bytes.
    """

    signal: Signal
    topic: str
    encoding: Encoding = "otlp_proto"
    key: MessageKey = "none"
    topic_from_attribute: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    record_headers: HeaderInput = field(default_factory=_no_headers)

    def __post_init__(self) -> None:
        if self.signal not in DEFAULT_TOPICS:
            raise InvalidArgumentError(
                "signal", f"must be one of {', '.join(DEFAULT_TOPICS)}, got {self.signal!r}"
            )
        check_topic(self.topic)
        if self.encoding not in get_args(Encoding):
            raise InvalidArgumentError(
                "encoding", f"must be one of {', '.join(get_args(Encoding))}, got {self.encoding!r}"
            )
        keys = _KEYS_OF[self.signal]
        if self.key not in keys:
            raise InvalidArgumentError(
                "key", f"must be one of {', '.join(keys)} for {self.signal}, got {self.key!r}"
            )
        if self.topic_from_attribute is not None and (
            not isinstance(self.topic_from_attribute, str) or not self.topic_from_attribute
        ):
            raise InvalidArgumentError(
                "topic_from_attribute",
                f"must be None or an attribute name, got {self.topic_from_attribute!r}",
            )
        timeout = self.timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise InvalidArgumentError(
                "timeout", f"must be a number of seconds > 0, got {timeout!r}"
            )
        object.__setattr__(self, "timeout", float(timeout))
        size = self.max_message_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidArgumentError(
                "max_message_bytes", f"must be an integer >= 1, got {size!r}"
            )
        try:
            headers = header_pairs(self.record_headers)
        except InvalidArgumentError as error:
            raise InvalidArgumentError("record_headers", error.message) from None
        object.__setattr__(self, "record_headers", headers)

    @property
    def headers(self) -> tuple[tuple[str, bytes | None], ...]:
        """``record_headers`` as ``(name, bytes)`` pairs."""
        return header_pairs(self.record_headers)
