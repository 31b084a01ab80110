"""Frozen, validated configuration values.

Each value checks its arguments when it is built and names the offending
argument in an :class:`~kafka_sink.errors.InvalidArgumentError`, so a mistake
surfaces at the call that made it rather than deep inside the sender.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kafka_sink.constants import (
    KAFKA_SERVER_PORT,
    REQUEST_TIMEOUT,
    RETRY_BACKOFF,
    SEND_MAX_ATTEMPTS,
)
from kafka_sink.errors import InvalidArgumentError

__all__ = ["BrokerAddress", "ConnectionConfig", "parse_broker_list"]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A broker's host and port; IPv6 literals are written ``[::1]:9092``."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str, argument: str = "broker_list") -> BrokerAddress:
        """Parse ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError(argument, f"{text!r} is not a 'host:port' string")
        text = text.strip()
        port_text = ""
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise InvalidArgumentError(argument, f"{text!r} is not a valid '[host]:port'")
            port_text = rest[1:]
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
        elif ":" in text:
            raise InvalidArgumentError(
                argument, f"{text!r}: write IPv6 addresses in brackets, e.g. '[::1]:9092'"
            )
        else:
            host = text
        if not host:
            raise InvalidArgumentError(argument, f"{text!r} has no host")
        port = KAFKA_SERVER_PORT
        if port_text:
            if not port_text.isdigit():
                raise InvalidArgumentError(argument, f"{text!r} has a non-numeric port")
            port = int(port_text)
        _check_port(port, argument)
        return cls(host, port)


def _check_port(port: object, argument: str) -> None:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise InvalidArgumentError(argument, f"port must be an integer 1-65535, got {port!r}")


def parse_broker_list(
    value: str | Sequence[str], argument: str = "broker_list"
) -> tuple[BrokerAddress, ...]:
    """Parse ``"h1:9092,h2:9092"`` or ``["h1:9092", "[::1]:9093"]``."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, (bytes, bytearray)) or not isinstance(items, Sequence):
        raise InvalidArgumentError(argument, f"expected a list of 'host:port', got {value!r}")
    brokers = tuple(BrokerAddress.parse(item, argument) for item in items)
    if not brokers:
        raise InvalidArgumentError(argument, "is empty")
    return brokers


def check_positive_number(value: object, argument: str, *, allow_zero: bool = False) -> float:
    """Validate a finite, positive (or non-negative) real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(argument, f"must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgumentError(
            argument, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}"
        )
    return float(value)


def check_int(value: object, argument: str, low: int, high: int | None = None) -> int:
    """Validate an integer within ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(argument, f"must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise InvalidArgumentError(argument, f"must be {bound}, got {value!r}")
    return value


def check_client_id(value: object, argument: str = "client_id") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(argument, f"must be a non-empty string, got {value!r}")
    if len(value.encode("utf-8")) > 32767:
        raise InvalidArgumentError(argument, "is longer than 32767 bytes")
    return value


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Everything a :class:`~kafka_sink.Connection` needs to reach a cluster.

    ``timeout`` is in seconds and bounds each network operation;
    ``retry_backoff`` is in milliseconds, as in Perl's ``Kafka::Connection``.
    """

    brokers: tuple[BrokerAddress, ...]
    timeout: float = REQUEST_TIMEOUT
    send_max_attempts: int = SEND_MAX_ATTEMPTS
    retry_backoff: int = RETRY_BACKOFF
    auto_create_topics_enable: bool = False
    ip_version: int | None = None
    client_id: str = "kafka-sink"
    max_logged_errors: int = 100

    def __post_init__(self) -> None:
        if not self.brokers:
            raise InvalidArgumentError("broker_list", "is empty")
        check_positive_number(self.timeout, "timeout")
        check_int(self.send_max_attempts, "send_max_attempts", 1)
        check_int(self.retry_backoff, "retry_backoff", 0)
        if not isinstance(self.auto_create_topics_enable, bool):
            raise InvalidArgumentError(
                "auto_create_topics_enable",
                f"must be True or False, got {self.auto_create_topics_enable!r}",
            )
        if self.ip_version not in (None, 4, 6):
            raise InvalidArgumentError(
                "ip_version", f"must be None, 4 or 6, got {self.ip_version!r}"
            )
        check_client_id(self.client_id)
        check_int(self.max_logged_errors, "max_logged_errors", 0)
