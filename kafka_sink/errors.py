"""Exceptions raised by kafka_sink.

Every exception derives from :class:`KafkaSinkError` and carries a numeric
``code`` and a human-readable ``message``, like the ``Kafka::Exception``
objects of Perl's ``Kafka`` distribution. The classes are split by cause, so
callers catch what they can act on::

    try:
        producer.send("logs", 0, "hello")
    except kafka_sink.BrokerResponseError as exc:
        print(exc.code, exc.name, exc.retriable)
    except kafka_sink.KafkaSinkError as exc:
        print(exc.code, exc.message)

Codes at or above -1 are Kafka's own broker error codes; the library's own
causes use the negative codes of :class:`ErrorCode`. Exceptions keep their
context (topic, partition, broker) as attributes and survive pickling.
"""

from __future__ import annotations

import enum
import sys
from typing import Any

from kafka_sink.error_codes import describe_error

if sys.version_info < (3, 11):
    # Before 3.11, concurrent.futures has a TimeoutError of its own.
    import concurrent.futures

__all__ = [
    "AuthenticationError",
    "BrokerResponseError",
    "BufferFullError",
    "ConfigError",
    "ConnectError",
    "CorrelationIdMismatchError",
    "DeliveryError",
    "DeliveryTimeoutError",
    "ErrorCode",
    "IllegalStateTransitionError",
    "InvalidArgumentError",
    "KafkaSinkError",
    "LeaderNotFoundError",
    "MetadataError",
    "NetworkError",
    "NoKnownBrokersError",
    "ProtocolError",
    "ReceiveError",
    "RecordTooLargeError",
    "RequestTimeoutError",
    "SendError",
    "SinkClosedError",
    "SpoolError",
    "TlsAuthenticationError",
    "TlsError",
    "UnsupportedVersionError",
    "WaitTimeoutError",
]


class ErrorCode(enum.IntEnum):
    """Codes of the library's own error causes (Kafka's broker codes are >= -1)."""

    INVALID_ARGUMENT = -1000
    CANNOT_SEND = -1001
    CANNOT_RECEIVE = -1003
    CANNOT_CONNECT = -1004
    PROTOCOL = -1006
    CANNOT_GET_METADATA = -1007
    LEADER_NOT_FOUND = -1008
    CORRELATION_ID_MISMATCH = -1009
    NO_KNOWN_BROKERS = -1010
    REQUEST_TIMEOUT = -1011
    UNSUPPORTED_VERSION = -1012
    AUTHENTICATION_FAILED = -1013
    TLS_FAILED = -1014
    DELIVERY_FAILED = -1020
    BUFFER_FULL = -1021
    RECORD_TOO_LARGE = -1022
    DELIVERY_TIMEOUT = -1023
    SINK_CLOSED = -1024
    WAIT_TIMEOUT = -1025
    SPOOL = -1030


class KafkaSinkError(Exception):
    """Root of every exception raised by kafka_sink.

    ``code`` is an :class:`ErrorCode` for the library's own causes or Kafka's
    error code for errors reported by a broker; ``message`` says what went wrong.
    """

    default_code: int = -1

    def __init__(self, message: str, *, code: int | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code
        self.context = dict(context)
        for key, value in context.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.code, self.context))

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


def _rebuild(
    cls: type[KafkaSinkError], message: str, code: int, context: dict[str, Any]
) -> KafkaSinkError:
    exc = cls.__new__(cls)
    KafkaSinkError.__init__(exc, message, code=code, **context)
    return exc


class InvalidArgumentError(KafkaSinkError, ValueError):
    """An argument is invalid; the message names the argument and what is wrong."""

    default_code = ErrorCode.INVALID_ARGUMENT
    #: The name of the invalid argument (set by the constructor, from ``**context``).
    argument: str

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"invalid argument {argument!r}: {problem}", argument=argument)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.code, self.context))


class ConfigError(InvalidArgumentError):
    """An option read from the environment is missing or invalid.

    ``variable`` names the environment variable and ``argument`` the option
    it was read for (a ``KAFKA_SINK_*`` variable, or one that a
    ``{"env": "NAME"}`` value names). The message never holds the value of
    a secret (a password), only the variable's name.
    """

    #: The name of the environment variable (set by the constructor, from ``**context``).
    variable: str

    def __init__(self, argument: str, variable: str, problem: str) -> None:
        KafkaSinkError.__init__(
            self,
            f"environment variable {variable!r} (option {argument!r}) {problem}",
            argument=argument,
            variable=variable,
        )


class ProtocolError(KafkaSinkError):
    """Bytes from a broker do not follow the Kafka protocol (malformed or truncated)."""

    default_code = ErrorCode.PROTOCOL


class UnsupportedVersionError(ProtocolError):
    """The broker and the library share no version of an API the library needs."""

    default_code = ErrorCode.UNSUPPORTED_VERSION


class CorrelationIdMismatchError(ProtocolError):
    """A response arrived with a correlation id that matches no request in flight."""

    default_code = ErrorCode.CORRELATION_ID_MISMATCH


class IllegalStateTransitionError(ProtocolError):
    """A connection was driven out of the protocol's order of set-up steps.

    Raised by :class:`~kafka_sink.net.state.ConnectionSetup` for an event its
    state does not take: a bug in the client that reported the event, which
    stops instead of carrying on in a state nobody meant.
    """


class NetworkError(KafkaSinkError):
    """Root of the errors raised while talking to a broker over the network."""

    default_code = ErrorCode.CANNOT_SEND


class ConnectError(NetworkError):
    """No connection could be made to a broker (or to any broker of the list)."""

    default_code = ErrorCode.CANNOT_CONNECT


class SendError(NetworkError):
    """A request could not be written to the broker's socket."""

    default_code = ErrorCode.CANNOT_SEND


class ReceiveError(NetworkError):
    """A response could not be read from the broker's socket."""

    default_code = ErrorCode.CANNOT_RECEIVE


class RequestTimeoutError(ReceiveError):
    """The broker did not answer within the client-side timeout."""

    default_code = ErrorCode.REQUEST_TIMEOUT


class AuthenticationError(KafkaSinkError):
    """The client and a broker could not authenticate each other; never retried.

    Raised when a broker refuses the SASL mechanism or credentials (``code``
    is then Kafka's error code, e.g. 58 SASL_AUTHENTICATION_FAILED), when a
    broker's SCRAM signature does not verify, and, as
    :class:`TlsAuthenticationError`, when a TLS handshake is refused.
    ``broker`` names the broker and ``mechanism`` the SASL mechanism; no
    message ever contains a password. The same settings cannot succeed on a
    retry: a :class:`~kafka_sink.Connection` raises it at once, and a
    :class:`~kafka_sink.Sink` fails the records it holds with a
    :class:`DeliveryError` whose ``cause`` it is.
    """

    default_code = ErrorCode.AUTHENTICATION_FAILED


class TlsError(ConnectError):
    """A TLS connection to a broker could not be set up.

    This class on its own means the handshake did not complete (the broker
    closed or reset the connection, or it timed out): often a listener that
    does not speak TLS. Like any :class:`ConnectError` it may be retried.
    """

    default_code = ErrorCode.TLS_FAILED


class TlsAuthenticationError(TlsError, AuthenticationError):
    """The TLS handshake was refused; not retried.

    The broker's certificate is not signed by a trusted CA or was not issued
    for the broker's host name, or the broker refused the client's
    certificate (or offered no protocol version or cipher in common).
    """

    default_code = ErrorCode.TLS_FAILED


class MetadataError(KafkaSinkError):
    """Cluster metadata could not be obtained."""

    default_code = ErrorCode.CANNOT_GET_METADATA


class LeaderNotFoundError(MetadataError):
    """The metadata names no leader for a topic partition."""

    default_code = ErrorCode.LEADER_NOT_FOUND


class NoKnownBrokersError(MetadataError):
    """The connection knows no broker to send a request to."""

    default_code = ErrorCode.NO_KNOWN_BROKERS


class BrokerResponseError(KafkaSinkError):
    """A broker answered with a Kafka error code.

    ``code`` is Kafka's error code, ``name`` its symbolic name (for example
    ``NOT_LEADER_OR_FOLLOWER``), ``retriable`` whether the same request may
    succeed later, and ``invalid_metadata`` whether cached metadata should be
    refreshed before trying again.
    """

    def __init__(
        self,
        code: int,
        message: str | None = None,
        **context: Any,
    ) -> None:
        info = describe_error(code)
        text = message or f"{info.name} ({code}): {info.description}"
        context.setdefault("name", info.name)
        context.setdefault("retriable", info.retriable)
        context.setdefault("invalid_metadata", info.invalid_metadata)
        super().__init__(text, code=code, **context)
        self.name: str = context["name"]
        self.retriable: bool = context["retriable"]
        self.invalid_metadata: bool = context["invalid_metadata"]


class DeliveryError(KafkaSinkError):
    """A record was not delivered; ``reason`` says why in one word.

    Delivery futures fail with this class or a subclass; ``cause`` (when set)
    is the underlying error, e.g. the :class:`BrokerResponseError` of the last
    attempt.
    """

    default_code = ErrorCode.DELIVERY_FAILED
    reason = "failed"


class BufferFullError(DeliveryError):
    """The record was dropped because the buffer was full (``reason``: the policy)."""

    default_code = ErrorCode.BUFFER_FULL
    reason = "buffer_full"


class RecordTooLargeError(DeliveryError):
    """The record is larger than ``max_request_size`` (or the broker's limit)."""

    default_code = ErrorCode.RECORD_TOO_LARGE
    reason = "too_large"


class DeliveryTimeoutError(DeliveryError):
    """The record was not acknowledged within ``delivery_timeout_ms``."""

    default_code = ErrorCode.DELIVERY_TIMEOUT
    reason = "timeout"


class SinkClosedError(DeliveryError):
    """The sink was closed before the record could be delivered."""

    default_code = ErrorCode.SINK_CLOSED
    reason = "closed"


class SpoolError(KafkaSinkError):
    """The durable spool (``spool_dir``) cannot be used as configured.

    Raised when a :class:`~kafka_sink.Sink` opens its spool: the directory
    cannot be created or written (a read-only file system, no permission),
    the disk has no room for a first segment, or a segment was written by a
    newer version of the spool format. ``path`` names the file or directory.
    Nothing in the spool is changed or deleted when it is raised.
    """

    default_code = ErrorCode.SPOOL


if sys.version_info >= (3, 11):

    class _FuturesTimeoutError(TimeoutError):
        pass

else:
    # What concurrent.futures raises when a wait runs out, before it became
    # the builtin: code written for either catches a WaitTimeoutError.
    class _FuturesTimeoutError(TimeoutError, concurrent.futures.TimeoutError):
        pass


class WaitTimeoutError(KafkaSinkError, _FuturesTimeoutError):
    """A wait for a delivery future ran out; the record is still in flight.

    Raised by ``future.result(timeout)`` and ``future.exception(timeout)``.
    It is a :class:`TimeoutError`, as a ``concurrent.futures`` wait that runs
    out raises, and not a :class:`DeliveryError`: the delivery goes on, and a
    later wait may still see the record delivered. A record that was not
    acknowledged within ``delivery_timeout_ms`` fails instead, with
    :class:`DeliveryTimeoutError`. ``timeout`` is the wait, in seconds.
    """

    default_code = ErrorCode.WAIT_TIMEOUT
    #: The wait that ran out, in seconds (set by its raisers, through ``**context``).
    timeout: float
