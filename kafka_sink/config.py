"""Frozen, validated configuration values.

Each value checks its arguments when it is built and names the offending
argument in an :class:`~kafka_sink.errors.InvalidArgumentError`, so a mistake
surfaces at the call that made it rather than deep inside the sender.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from kafka_sink.constants import (
    KAFKA_SERVER_PORT,
    REQUEST_TIMEOUT,
    RETRY_BACKOFF,
    SEND_MAX_ATTEMPTS,
)
from kafka_sink.errors import InvalidArgumentError
from kafka_sink.options import OptionSchema, environment_variable, resolve_options

if TYPE_CHECKING:
    # Only named in an annotation: the protocol layer sits above the configuration.
    from kafka_sink.protocol.oauthbearer import OAuthBearerToken

__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_OPTIONS",
    "SECURITY_PROTOCOLS",
    "BrokerAddress",
    "ConnectionConfig",
    "SecurityConfig",
    "SinkConfig",
    "as_bytes",
    "check_topic",
    "header_pairs",
    "parse_broker_list",
]


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


#: The levels each codec accepts (KIP-390), as the Java client checks them;
#: lz4 levels 3 and up use LZ4's high-compression mode.
COMPRESSION_LEVELS: dict[str, tuple[int, int]] = {
    "gzip": (1, 9),
    "lz4": (1, 17),
    "zstd": (-131072, 22),
}


#: RFC 7677: "the hash iteration-count ... SHOULD be at least 4096"; Kafka
#: refuses fewer itself, so a broker asking for fewer is not a Kafka broker.
MIN_SCRAM_ITERATIONS = 4096
#: The most SCRAM iterations a broker may ask for, unless configured otherwise
#: (``sasl_scram_max_iterations``): Kafka's own maximum, the most its tools
#: store credentials with. The broker picks the count and the client pays for
#: it (PBKDF2 runs that many rounds), so without a bound a broker could keep a
#: client deriving a key for minutes.
DEFAULT_MAX_SCRAM_ITERATIONS = 16384
#: The largest limit that can be configured: PBKDF2 takes a 32-bit count.
MAX_SCRAM_ITERATIONS_LIMIT = (1 << 31) - 1


def check_scram_max_iterations(value: object) -> int:
    """Validate a ``sasl_scram_max_iterations`` value (an int, 4096 to 2**31 - 1)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_SCRAM_ITERATIONS <= value <= MAX_SCRAM_ITERATIONS_LIMIT
    ):
        raise InvalidArgumentError(
            "sasl_scram_max_iterations",
            f"must be an integer between {MIN_SCRAM_ITERATIONS} and "
            f"{MAX_SCRAM_ITERATIONS_LIMIT}, got {value!r}",
        )
    return value


def check_compression_level(codec: str, level: object) -> int | None:
    """Validate ``compression_level`` for a codec (None: the codec's default)."""
    if level is None:
        return None
    bounds = COMPRESSION_LEVELS.get(codec)
    if bounds is None:
        raise InvalidArgumentError("compression_level", f"{codec} has no compression levels")
    if isinstance(level, bool) or not isinstance(level, int) or not bounds[0] <= level <= bounds[1]:
        raise InvalidArgumentError(
            "compression_level",
            f"must be an int from {bounds[0]} to {bounds[1]} for {codec}, got {level!r}",
        )
    return level


def check_topic(topic: object) -> str:
    """Validate a Kafka topic name (what brokers accept)."""
    if not isinstance(topic, str) or not topic:
        raise InvalidArgumentError("topic", f"must be a non-empty string, got {topic!r}")
    if len(topic) > 249 or topic in (".", ".."):
        raise InvalidArgumentError("topic", f"{topic!r} is not a legal topic name")
    if not all(c.isascii() and (c.isalnum() or c in "._-") for c in topic):
        raise InvalidArgumentError(
            "topic", f"{topic!r} may contain only ASCII letters, digits, '.', '_' and '-'"
        )
    return topic


def as_bytes(value: object, argument: str) -> bytes | None:
    """A key, value or header value as bytes (str is encoded as UTF-8; None stays None)."""
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidArgumentError(argument, f"must be bytes, str or None, got {type(value).__name__}")


def is_header_pair(item: object) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)


def header_pairs(value: object) -> tuple[tuple[str, bytes | None], ...]:
    """Headers given as ``(name, value)`` pairs or a mapping, values as bytes."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items: Sequence[object] = list(value.items())
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = value
    else:
        raise InvalidArgumentError("headers", f"must be (name, value) pairs, got {value!r}")
    out: list[tuple[str, bytes | None]] = []
    for item in items:
        if not isinstance(item, tuple) or not is_header_pair(item):
            raise InvalidArgumentError("headers", f"{item!r} is not a (str, value) pair")
        out.append((item[0], as_bytes(item[1], "headers")))
    return tuple(out)


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


#: The values of ``security_protocol``, as Kafka names its listener kinds.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: The values of ``sasl_mechanism``.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """How connections to brokers are secured: TLS and SASL.

    The options are named as in Kafka's Java client, in snake case, and are
    accepted under the same names by :class:`~kafka_sink.Connection`,
    :class:`~kafka_sink.Sink` (:meth:`SinkConfig.build`) and everything
    built on them. ``security_protocol`` says what the broker's listener
    expects:

    - ``"PLAINTEXT"`` (default): neither TLS nor SASL.
    - ``"SSL"``: TLS.
    - ``"SASL_PLAINTEXT"``: SASL without TLS. The traffic is readable on the
      way, and with the PLAIN mechanism so is the password.
    - ``"SASL_SSL"``: SASL inside TLS.

    TLS verifies the broker's certificate against ``ssl_cafile`` (a PEM
    bundle) and/or ``ssl_capath`` (a hashed directory), or the system's CAs
    when neither is given, and checks that it was issued for the host name
    (or IP address) the client connects to, unless ``ssl_check_hostname`` is
    False. ``ssl_certfile`` and ``ssl_keyfile`` (PEM; ``ssl_password`` when
    the key is encrypted) present a client certificate, for brokers that
    require one (mutual TLS). ``ssl_context`` takes an
    :class:`ssl.SSLContext` built by the caller instead of all these.
    ``ssl_insecure_skip_verify=True`` turns certificate verification off
    altogether, for development only: anyone on the network path can then
    read and change the traffic, SASL passwords included.

    SASL takes ``sasl_mechanism`` (``"PLAIN"``, ``"SCRAM-SHA-256"`` or
    ``"SCRAM-SHA-512"``), ``sasl_plain_username`` and
    ``sasl_plain_password``; the two names serve every mechanism, as in
    kafka-python. SCRAM never sends the password and checks that the broker
    knows it too; PLAIN sends it, so use PLAIN with ``"SASL_SSL"``.
    ``sasl_scram_max_iterations`` (default 16384, Kafka's own maximum; at
    least 4096) is the largest SCRAM iteration count a broker may ask for: the
    client derives its key with that many rounds, so a broker asking for more
    is refused with :class:`~kafka_sink.errors.AuthenticationError` rather
    than keeping the client busy.

    ``sasl_mechanism="OAUTHBEARER"`` (KIP-255) authenticates with a bearer
    token instead of a user and password: ``sasl_oauth_token_provider`` is
    a callable, taking no argument, that returns an
    :class:`~kafka_sink.OAuthBearerToken` or the token as a string. It is
    called on the network thread each time a connection authenticates,
    including the re-authentications a broker with
    ``connections.max.reauth.ms`` asks for (KIP-368), so it should return a
    cached token while that one is valid; whatever it raises fails the
    authentication with :class:`~kafka_sink.errors.AuthenticationError`.

    Passwords are left out of ``repr()`` and never appear in an error
    message or a log record. Example::

        SecurityConfig(
            security_protocol="SASL_SSL",
            ssl_cafile="/etc/kafka/ca.pem",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username="alice",
            sasl_plain_password=os.environ["KAFKA_PASSWORD"],
        )
    """

    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_capath: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    ssl_insecure_skip_verify: bool = False
    ssl_context: ssl.SSLContext | None = None
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = field(default=None, repr=False)
    sasl_scram_max_iterations: int = DEFAULT_MAX_SCRAM_ITERATIONS
    sasl_oauth_token_provider: Callable[[], OAuthBearerToken | str] | None = None

    def __post_init__(self) -> None:
        protocol = self.security_protocol
        if isinstance(protocol, str):
            protocol = protocol.strip().upper()
        if protocol not in SECURITY_PROTOCOLS:
            raise InvalidArgumentError(
                "security_protocol",
                f"must be one of {', '.join(SECURITY_PROTOCOLS)}, got {self.security_protocol!r}",
            )
        object.__setattr__(self, "security_protocol", protocol)
        self._check_tls()
        self._check_sasl()

    @property
    def uses_tls(self) -> bool:
        """Whether connections are wrapped in TLS (SSL, SASL_SSL)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether connections authenticate with SASL (SASL_PLAINTEXT, SASL_SSL)."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def _check_tls(self) -> None:
        for name, kind in (
            ("ssl_cafile", "file"),
            ("ssl_capath", "directory"),
            ("ssl_certfile", "file"),
            ("ssl_keyfile", "file"),
        ):
            object.__setattr__(self, name, _existing_path(getattr(self, name), name, kind))
        _check_secret(self.ssl_password, "ssl_password")
        for name in ("ssl_check_hostname", "ssl_insecure_skip_verify"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise InvalidArgumentError(name, f"must be True or False, got {value!r}")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise InvalidArgumentError(
                "ssl_context", f"must be an ssl.SSLContext, got {type(self.ssl_context).__name__}"
            )
        changed = [
            name
            for name in _TLS_OPTIONS
            if getattr(self, name) != SecurityConfig.__dataclass_fields__[name].default
        ]
        if changed and not self.uses_tls:
            raise InvalidArgumentError(
                changed[0],
                f"is a TLS option but security_protocol is {self.security_protocol!r} "
                "(use 'SSL' or 'SASL_SSL')",
            )
        if self.ssl_context is not None and len(changed) > 1:
            other = next(name for name in changed if name != "ssl_context")
            raise InvalidArgumentError(
                other, "cannot be combined with ssl_context (configure the context instead)"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise InvalidArgumentError("ssl_keyfile", "needs ssl_certfile (the client certificate)")
        if self.ssl_password is not None and self.ssl_certfile is None:
            raise InvalidArgumentError(
                "ssl_password", "is the password of a client key: give ssl_certfile/ssl_keyfile"
            )

    def _check_sasl(self) -> None:
        mechanism = self.sasl_mechanism
        if isinstance(mechanism, str):
            mechanism = mechanism.strip().upper()
        if mechanism is not None and mechanism not in SASL_MECHANISMS:
            raise InvalidArgumentError(
                "sasl_mechanism",
                f"must be one of {', '.join(SASL_MECHANISMS)}, got {self.sasl_mechanism!r}",
            )
        object.__setattr__(self, "sasl_mechanism", mechanism)
        username = self.sasl_plain_username
        if username is not None and (not isinstance(username, str) or not username):
            raise InvalidArgumentError(
                "sasl_plain_username", f"must be a non-empty string, got {username!r}"
            )
        _check_secret(self.sasl_plain_password, "sasl_plain_password")
        check_scram_max_iterations(self.sasl_scram_max_iterations)
        provider = self.sasl_oauth_token_provider
        if provider is not None and not callable(provider):
            raise InvalidArgumentError(
                "sasl_oauth_token_provider",
                f"must be a callable returning a token, got {type(provider).__name__}",
            )
        if not self.uses_sasl:
            if provider is not None:
                raise InvalidArgumentError(
                    "sasl_oauth_token_provider",
                    f"is a SASL option but security_protocol is {self.security_protocol!r} "
                    "(use 'SASL_SSL' or 'SASL_PLAINTEXT')",
                )
            if self.sasl_scram_max_iterations != DEFAULT_MAX_SCRAM_ITERATIONS:
                raise InvalidArgumentError(
                    "sasl_scram_max_iterations",
                    f"is a SASL option but security_protocol is {self.security_protocol!r} "
                    "(use 'SASL_SSL' or 'SASL_PLAINTEXT')",
                )
            for name in _SASL_OPTIONS:
                if getattr(self, name) is not None:
                    raise InvalidArgumentError(
                        name,
                        f"is a SASL option but security_protocol is {self.security_protocol!r} "
                        "(use 'SASL_SSL' or 'SASL_PLAINTEXT')",
                    )
            return
        if mechanism == "OAUTHBEARER":
            self._check_oauthbearer()
            return
        if provider is not None:
            raise InvalidArgumentError(
                "sasl_oauth_token_provider",
                f"is used with sasl_mechanism 'OAUTHBEARER' only, not {mechanism!r}",
            )
        for name in _SASL_OPTIONS:
            if getattr(self, name) is None:
                raise InvalidArgumentError(
                    name, f"is required with security_protocol {self.security_protocol!r}"
                )
        if mechanism == "PLAIN":
            # RFC 4616 separates the fields with NUL: one inside would shift them.
            for name in ("sasl_plain_username", "sasl_plain_password"):
                if "\0" in getattr(self, name):
                    raise InvalidArgumentError(name, "cannot contain a NUL character with PLAIN")

    def _check_oauthbearer(self) -> None:
        if self.sasl_oauth_token_provider is None:
            raise InvalidArgumentError(
                "sasl_oauth_token_provider",
                "is required with sasl_mechanism 'OAUTHBEARER' (a callable returning a token)",
            )
        for name in ("sasl_plain_username", "sasl_plain_password"):
            if getattr(self, name) is not None:
                raise InvalidArgumentError(
                    name,
                    "is not used with sasl_mechanism 'OAUTHBEARER' (the token from "
                    "sasl_oauth_token_provider names the principal)",
                )

    @classmethod
    def from_options(cls, options: Mapping[str, object], owner: str) -> SecurityConfig:
        """Build from keyword options; a name that is not an option of ``owner`` is named."""
        for name in options:
            if name not in SECURITY_OPTIONS:
                raise InvalidArgumentError(name, f"is not an option of {owner}")
        return cls(**options)  # type: ignore[arg-type]  # __post_init__ checks the values


_TLS_OPTIONS = (
    "ssl_cafile",
    "ssl_capath",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_check_hostname",
    "ssl_insecure_skip_verify",
    "ssl_context",
)
_SASL_OPTIONS = ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
#: The option names of :class:`SecurityConfig`, accepted wherever options are.
SECURITY_OPTIONS = tuple(f.name for f in fields(SecurityConfig))


def _existing_path(value: object, argument: str, kind: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(argument, f"must be a path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(argument, f"must be a non-empty path, got {value!r}")
    exists = os.path.isfile(path) if kind == "file" else os.path.isdir(path)
    if not exists:
        raise InvalidArgumentError(argument, f"{path!r} is not an existing {kind}")
    return path


def _check_secret(value: object, argument: str) -> None:
    # Never echo the value: it is a password, and this message may be logged.
    if value is not None and (not isinstance(value, str) or not value):
        problem = "is empty" if isinstance(value, str) else f"is a {type(value).__name__}"
        raise InvalidArgumentError(argument, f"must be a non-empty string (it {problem})")


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
    security: SecurityConfig = SecurityConfig()

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
        _check_security(self.security)


_ACKS = {0: 0, 1: 1, -1: -1, "all": -1, "0": 0, "1": 1, "-1": -1}
_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
_BUFFER_FULL = ("block", "drop_newest", "drop_oldest")
_SPOOL_FSYNC = ("never", "interval", "always")
# A segment must hold its 64-byte header and a few records.
_MIN_SPOOL_SEGMENT = 4096


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """Options of a :class:`~kafka_sink.Sink`, named as in Kafka's Java producer.

    The defaults suit shipping logs and events from an application that must
    not be slowed down by them:

    - ``acks="all"`` with idempotence (``enable_idempotence`` defaults to on
      exactly when acks is "all"): a retry never writes a duplicate and an
      acknowledged record survives a broker failure.
    - ``compression_type="lz4"``: log lines compress about 2.7x for about
      0.2 us of CPU per 150-byte record (gzip costs ten times more).
      ``compression_level`` (KIP-390; gzip 1-9, lz4 1-17, zstd -131072-22)
      trades CPU for size; None keeps each codec's default.
    - ``linger_ms=10``: a record waits up to 10 ms for others to share its
      request, and at the rates of a busy service that, not ``batch_size``,
      is what groups records: at a steady 5,000 records/s each request
      carries about 20 records (2 with ``linger_ms=0``), the Sink spends
      about 3.5x less CPU per record than with ``linger_ms=0``, and 99% of
      records are delivered within 13 ms on a local broker. An idle
      application waits at most 10 ms to ship a lone record.
    - ``batch_size=131072``: batches fill only in bursts (at 5,000 records/s
      they hold about ten records); then 128 KiB batches carry about 1.4x
      the records per second of 16 KiB ones, and larger ones add nothing.
    - ``buffer_memory=32 MiB`` with ``on_buffer_full="drop_oldest"``: when
      Kafka is unreachable for long, memory stays bounded and the newest
      records (the ones that describe the present) are kept; every dropped
      record is counted and its future fails with a
      :class:`~kafka_sink.BufferFullError`. ``"block"`` waits up to
      ``max_block_ms`` for space instead, ``"drop_newest"`` refuses the new
      record.
    - ``delivery_timeout_ms=120000``: a record is retried (with back-off from
      ``retry_backoff_ms``) for two minutes before it is reported failed.
    - ``close_timeout_ms=5000``: ``close()`` without a timeout, and the
      interpreter's exit, wait at most five seconds for delivery.
    - ``spool_dir=None``: records are kept in memory only. Naming a
      directory writes every record to append-only segment files there as it
      is produced, so that it survives a Kafka outage longer than the buffer,
      a crash of the process and a restart, and is delivered once
      (docs/spool.md). ``spool_max_bytes`` (1 GiB) bounds the disk it takes,
      with the ``on_buffer_full`` policy; ``spool_segment_bytes`` (16 MiB) is
      the size of one segment file; ``spool_fsync`` says when the files are
      forced to the disk: ``"never"`` (by the operating system),
      ``"interval"`` (every ``spool_fsync_interval_ms``, 1 s) or ``"always"``
      (before ``produce()`` returns).
    """

    bootstrap_servers: tuple[BrokerAddress, ...]
    client_id: str = "kafka-sink"
    acks: int = -1
    compression_type: str = "lz4"
    compression_level: int | None = None
    linger_ms: float = 10.0
    batch_size: int = 131072
    buffer_memory: int = 32 * 1024 * 1024
    max_block_ms: float = 1000.0
    on_buffer_full: str = "drop_oldest"
    max_in_flight: int = 5
    request_timeout_ms: float = 30000.0
    delivery_timeout_ms: float = 120000.0
    retry_backoff_ms: float = 100.0
    retry_backoff_max_ms: float = 1000.0
    enable_idempotence: bool | None = None
    max_request_size: int = 1048576
    metadata_max_age_ms: float = 300000.0
    close_timeout_ms: float = 5000.0
    ip_version: int | None = None
    spool_dir: str | None = None
    spool_max_bytes: int = 1024 * 1024 * 1024
    spool_segment_bytes: int = 16 * 1024 * 1024
    spool_fsync: str = "interval"
    spool_fsync_interval_ms: float = 1000.0
    security: SecurityConfig = SecurityConfig()

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise InvalidArgumentError("bootstrap_servers", "is empty")
        check_client_id(self.client_id)
        acks = _ACKS.get(self.acks) if isinstance(self.acks, (int, str)) else None
        if acks is None or isinstance(self.acks, bool):
            raise InvalidArgumentError("acks", f"must be 0, 1, -1 or 'all', got {self.acks!r}")
        object.__setattr__(self, "acks", acks)
        codec = self.compression_type.lower() if isinstance(self.compression_type, str) else None
        if codec not in _CODECS:
            raise InvalidArgumentError(
                "compression_type",
                f"must be one of {', '.join(_CODECS)}, got {self.compression_type!r}",
            )
        object.__setattr__(self, "compression_type", codec)
        check_compression_level(codec, self.compression_level)
        check_positive_number(self.linger_ms, "linger_ms", allow_zero=True)
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.buffer_memory, "buffer_memory", 1)
        check_positive_number(self.max_block_ms, "max_block_ms", allow_zero=True)
        if self.on_buffer_full not in _BUFFER_FULL:
            raise InvalidArgumentError(
                "on_buffer_full",
                f"must be one of {', '.join(_BUFFER_FULL)}, got {self.on_buffer_full!r}",
            )
        check_int(self.max_in_flight, "max_in_flight", 1)
        check_positive_number(self.request_timeout_ms, "request_timeout_ms")
        check_positive_number(self.delivery_timeout_ms, "delivery_timeout_ms")
        check_positive_number(self.retry_backoff_ms, "retry_backoff_ms", allow_zero=True)
        check_positive_number(self.retry_backoff_max_ms, "retry_backoff_max_ms", allow_zero=True)
        if self.enable_idempotence is None:
            object.__setattr__(self, "enable_idempotence", self.acks == -1)
        if not isinstance(self.enable_idempotence, bool):
            raise InvalidArgumentError(
                "enable_idempotence", f"must be True or False, got {self.enable_idempotence!r}"
            )
        check_int(self.max_request_size, "max_request_size", 1024)
        check_positive_number(self.metadata_max_age_ms, "metadata_max_age_ms")
        check_positive_number(self.close_timeout_ms, "close_timeout_ms", allow_zero=True)
        if self.ip_version not in (None, 4, 6):
            raise InvalidArgumentError(
                "ip_version", f"must be None, 4 or 6, got {self.ip_version!r}"
            )
        if self.enable_idempotence:
            if self.acks != -1:
                raise InvalidArgumentError(
                    "acks", "must be 'all' (-1) when enable_idempotence is True"
                )
            if self.max_in_flight > 5:
                raise InvalidArgumentError(
                    "max_in_flight", "must be at most 5 when enable_idempotence is True"
                )
        self._check_spool()
        _check_security(self.security)

    def _check_spool(self) -> None:
        spool_dir = self.spool_dir
        if spool_dir is not None:
            if not isinstance(spool_dir, (str, os.PathLike)):
                raise InvalidArgumentError(
                    "spool_dir", f"must be a directory path, got {type(spool_dir).__name__}"
                )
            path = os.fspath(spool_dir)
            if not isinstance(path, str) or not path:
                raise InvalidArgumentError(
                    "spool_dir", f"must be a non-empty path, got {spool_dir!r}"
                )
            object.__setattr__(self, "spool_dir", path)
        check_int(self.spool_segment_bytes, "spool_segment_bytes", _MIN_SPOOL_SEGMENT)
        check_int(self.spool_max_bytes, "spool_max_bytes", 1)
        if self.spool_max_bytes < 2 * self.spool_segment_bytes:
            raise InvalidArgumentError(
                "spool_max_bytes",
                f"must be at least twice spool_segment_bytes ({self.spool_segment_bytes}), "
                f"got {self.spool_max_bytes}",
            )
        if self.spool_fsync not in _SPOOL_FSYNC:
            raise InvalidArgumentError(
                "spool_fsync", f"must be one of {', '.join(_SPOOL_FSYNC)}, got {self.spool_fsync!r}"
            )
        check_positive_number(self.spool_fsync_interval_ms, "spool_fsync_interval_ms")

    @classmethod
    def build(
        cls, bootstrap_servers: str | Sequence[str] | None = None, **options: object
    ) -> SinkConfig:
        """Build from keyword options, as :meth:`from_mapping` does."""
        return cls.from_mapping(options, bootstrap_servers=bootstrap_servers)

    @classmethod
    def from_mapping(
        cls,
        options: Mapping[str, object],
        *,
        bootstrap_servers: str | Sequence[str] | None = None,
        defaults: Mapping[str, object] | None = None,
        environ: Mapping[str, str] | None = None,
        owner: str = "Sink",
        owner_options: Iterable[str] = (),
    ) -> SinkConfig:
        """Build from options under any of their names, the environment and defaults.

        Each option comes from ``options`` (``bootstrap_servers`` may also be
        given apart) when it is there, else from its ``KAFKA_SINK_*``
        variable in ``environ`` (default: :data:`os.environ`), else from
        ``defaults``, else from this class. Names may be ours or those of
        the Java client, librdkafka and kafka-python (``linger.ms``,
        ``sasl.mechanisms``...), and any value may be ``{"env": "NAME"}``;
        :mod:`kafka_sink.options` lists the names and says how text is
        parsed. The options of :class:`SecurityConfig` are accepted by name,
        as an alternative to a ``security`` value (which then replaces them
        all, the environment's included). Example::

            SinkConfig.from_mapping({
                "bootstrap.servers": "kafka1:9093",
                "linger.ms": 5,
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "app",
                "sasl.password": {"env": "KAFKA_PASSWORD"},
            })

        An unknown name raises :class:`~kafka_sink.InvalidArgumentError`
        naming it and the nearest known name; a bad value names the option
        as it was given, or the variable it was read from
        (:class:`~kafka_sink.ConfigError`), never showing a password.
        """
        if bootstrap_servers is not None:
            if "bootstrap_servers" in options:
                raise InvalidArgumentError(
                    "bootstrap_servers", "is given twice (as an argument and as an option)"
                )
            options = {"bootstrap_servers": bootstrap_servers, **options}
        resolved = resolve_options(
            options,
            _SINK_OPTIONS,
            defaults=defaults or {},
            environ=environ,
            owner=owner,
            owner_options=owner_options,
            replaces={"security": SECURITY_OPTIONS},
        )
        # Any: parse_broker_list and SinkConfig.__post_init__ check each value.
        values: dict[str, Any] = dict(resolved.values)
        with resolved.naming_sources():
            servers = values.pop("bootstrap_servers", None)
            if servers is None:
                variable = environment_variable("bootstrap_servers")
                raise InvalidArgumentError("bootstrap_servers", f"is required (or set ${variable})")
            security = {name: values.pop(name) for name in SECURITY_OPTIONS if name in values}
            if security:
                if "security" in values:
                    raise InvalidArgumentError(
                        next(iter(security)), "pass either security or its options, not both"
                    )
                values["security"] = SecurityConfig.from_options(security, owner)
            return cls(parse_broker_list(servers, "bootstrap_servers"), **values)


#: The options SinkConfig.from_mapping takes, with how each is read from text.
_SINK_OPTIONS = OptionSchema.of(SinkConfig, SecurityConfig)


def _check_security(value: object) -> None:
    if not isinstance(value, SecurityConfig):
        raise InvalidArgumentError(
            "security", f"must be a SecurityConfig, got {type(value).__name__}"
        )
