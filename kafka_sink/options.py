"""Where a Sink's options come from, and the names they go by.

Theory of operation
-------------------
A :class:`~kafka_sink.Sink` (through :meth:`~kafka_sink.SinkConfig.build` or
:meth:`~kafka_sink.SinkConfig.from_mapping`), and the Sink that a
:class:`~kafka_sink.KafkaHandler`, :class:`~kafka_sink.KafkaProcessor` or
:class:`~kafka_sink.MetricsExporter` builds, takes each option from the
first place that has it:

1. the call: a keyword argument, or an item of an options mapping (the
   integrations' ``sink_options=``, a dictConfig entry);
2. the environment: ``KAFKA_SINK_`` followed by the option's name in capitals,
   e.g. ``KAFKA_SINK_BOOTSTRAP_SERVERS``, ``KAFKA_SINK_LINGER_MS``,
   ``KAFKA_SINK_SASL_PLAIN_PASSWORD`` (an empty variable counts as unset);
3. the defaults: the handler's or exporter's own, then
   :class:`~kafka_sink.SinkConfig`'s.

An explicit ``security=SecurityConfig(...)`` replaces every security option:
no ``KAFKA_SINK_SSL_*``/``KAFKA_SINK_SASL_*`` variable is read then.

Names. Besides ours (the Java client's, in snake case), an option may be
given under the name the Java client, librdkafka (confluent-kafka) or
kafka-python gives it, as listed in :data:`ALIASES`: ``linger.ms``,
``sasl.mechanisms``, ``enable.ssl.certificate.verification``,
``max_in_flight_requests_per_connection``... Some are translated:
``queue.buffering.max.kbytes`` is in KiB (``buffer_memory`` in bytes),
``enable.ssl.certificate.verification=false`` is
``ssl_insecure_skip_verify=True``, ``ssl.ca.location`` is ``ssl_cafile`` or,
for a directory, ``ssl_capath``. A known property that kafka_sink does not
implement (:data:`UNSUPPORTED`) raises an error saying what to do instead;
an unknown name suggests the nearest known one. Giving one option twice
(``linger.ms`` and ``linger_ms``) is an error naming both.

Text. A value read from the environment, or given as text under another
client's name (as in a ``.properties`` file), is parsed per the option's
type: integers, numbers, booleans (``true``/``false``, ``yes``/``no``,
``on``/``off``, ``1``/``0``, in any case) or text.

Secrets by reference. Any option's value may be ``{"env": "NAME"}``: the
value of the environment variable ``NAME``, parsed as above, so that a
configuration file names a password instead of holding it::

    sasl_plain_password: {env: KAFKA_PASSWORD}
    bootstrap_servers: {env: KAFKA_BROKERS, default: "localhost:9092"}

``default`` is used when the variable is unset or empty; without one, that
raises :class:`~kafka_sink.ConfigError` naming the variable.

Errors name the option as the caller wrote it (``'linger.ms'``), or the
variable it was read from (:class:`~kafka_sink.ConfigError`); they never
hold the value of a secret.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from kafka_sink.errors import ConfigError, InvalidArgumentError

__all__ = [
    "ALIASES",
    "ENV_PREFIX",
    "UNSUPPORTED",
    "Alias",
    "OptionSchema",
    "ResolvedOptions",
    "environment_variable",
    "resolve_options",
]

#: The prefix of the environment variables options are read from.
ENV_PREFIX = "KAFKA_SINK_"

#: Turns a value given under an alias into ``(our option, our value)``, or None
#: when there is nothing to set. Raises :class:`_BadValue` on a bad value.
Converter = Callable[[object], tuple[str, object] | None]
#: Parses the text of an environment variable (or a property) for one option.
TextParser = Callable[[str], object]

_NO_VALUES: Mapping[str, object] = MappingProxyType({})


class _BadValue(Exception):
    """A value that cannot be parsed; ``problem`` says why (without a secret's value)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


# -- parsing text ------------------------------------------------------------------------

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _parse_text(text: str) -> object:
    return text


def _parse_int(text: str) -> object:
    try:
        return int(text.strip())
    except ValueError:
        raise _BadValue(f"must be an integer, got {text!r}") from None


def _parse_float(text: str) -> object:
    try:
        return float(text.strip())
    except ValueError:
        raise _BadValue(f"must be a number, got {text!r}") from None


def _parse_bool(text: str) -> object:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _BadValue(f"must be true or false (yes/no, on/off, 1/0), got {text!r}")


def _parse_acks(text: str) -> object:
    # SinkConfig takes "all", "0", "1" and "-1" as text already.
    return text.strip().lower()


# The parser of each type annotation that text can hold; options of any other
# type (an ssl.SSLContext, a SecurityConfig) are never read from text.
_PARSERS: Mapping[str, TextParser] = MappingProxyType(
    {
        "str": _parse_text,
        "str | None": _parse_text,
        "int": _parse_int,
        "int | None": _parse_int,
        "float": _parse_float,
        "float | None": _parse_float,
        "bool": _parse_bool,
        "bool | None": _parse_bool,
    }
)
# Options whose annotation says less than what their text may be.
_PARSER_OVERRIDES: Mapping[str, TextParser] = MappingProxyType(
    {"acks": _parse_acks, "bootstrap_servers": _parse_text}
)


def _as(parser: TextParser, value: object) -> object:
    """``value`` parsed when it is text, unchanged otherwise (the config checks its type)."""
    return parser(value) if isinstance(value, str) else value


# -- aliases -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alias:
    """Another client's name for one of our options.

    ``convert`` translates the value when the two differ in unit or meaning;
    without it the value is our option's, parsed from text if it is text.
    """

    option: str
    convert: Converter | None = field(default=None, compare=False)


def _kbytes(value: object) -> tuple[str, object]:
    kib = _as(_parse_int, value)
    if isinstance(kib, bool) or not isinstance(kib, int):
        raise _BadValue(f"must be an integer number of KiB, got {value!r}")
    return "buffer_memory", kib * 1024


def _certificate_verification(value: object) -> tuple[str, object]:
    verify = _as(_parse_bool, value)
    if not isinstance(verify, bool):
        raise _BadValue(f"must be true or false, got {value!r}")
    return "ssl_insecure_skip_verify", not verify


def _endpoint_identification(value: object) -> tuple[str, object]:
    # librdkafka: "https" or "none"; the Java client: "https" or "" (off).
    word = value.strip().lower() if isinstance(value, str) else None
    if word == "https":
        return "ssl_check_hostname", True
    if word in ("", "none"):
        return "ssl_check_hostname", False
    raise _BadValue(f"must be 'https' or 'none', got {value!r}")


def _address_family(value: object) -> tuple[str, object]:
    families: dict[str, int | None] = {"any": None, "v4": 4, "v6": 6}
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in families:
        raise _BadValue(f"must be 'any', 'v4' or 'v6', got {value!r}")
    return "ip_version", families[word]


def _ca_location(value: object) -> tuple[str, object] | None:
    # librdkafka's one option is a PEM file, a directory of them, or "probe"
    # (the system's CAs: what kafka_sink uses when neither is given).
    if isinstance(value, str) and value.strip().lower() == "probe":
        return None
    if isinstance(value, (str, os.PathLike)) and os.path.isdir(value):
        return "ssl_capath", value
    return "ssl_cafile", value


#: Names of the Java client, librdkafka (confluent-kafka) and kafka-python or
#: aiokafka that differ from ours, and the option each one sets.
ALIASES: Mapping[str, Alias] = MappingProxyType(
    {
        # Java client and librdkafka
        "bootstrap.servers": Alias("bootstrap_servers"),
        "metadata.broker.list": Alias("bootstrap_servers"),
        "client.id": Alias("client_id"),
        "request.required.acks": Alias("acks"),
        "compression.type": Alias("compression_type"),
        "compression.codec": Alias("compression_type"),
        "compression.level": Alias("compression_level"),
        "linger.ms": Alias("linger_ms"),
        "queue.buffering.max.ms": Alias("linger_ms"),
        "batch.size": Alias("batch_size"),
        "buffer.memory": Alias("buffer_memory"),
        "queue.buffering.max.kbytes": Alias("buffer_memory", _kbytes),
        "max.block.ms": Alias("max_block_ms"),
        "max.in.flight.requests.per.connection": Alias("max_in_flight"),
        "max.in.flight": Alias("max_in_flight"),
        "request.timeout.ms": Alias("request_timeout_ms"),
        "delivery.timeout.ms": Alias("delivery_timeout_ms"),
        "message.timeout.ms": Alias("delivery_timeout_ms"),
        "retry.backoff.ms": Alias("retry_backoff_ms"),
        "retry.backoff.max.ms": Alias("retry_backoff_max_ms"),
        "enable.idempotence": Alias("enable_idempotence"),
        "max.request.size": Alias("max_request_size"),
        "message.max.bytes": Alias("max_request_size"),
        "metadata.max.age.ms": Alias("metadata_max_age_ms"),
        "broker.address.family": Alias("ip_version", _address_family),
        "security.protocol": Alias("security_protocol"),
        "ssl.ca.location": Alias("ssl_cafile", _ca_location),
        "ssl.certificate.location": Alias("ssl_certfile"),
        "ssl.key.location": Alias("ssl_keyfile"),
        "ssl.key.password": Alias("ssl_password"),
        "enable.ssl.certificate.verification": Alias(
            "ssl_insecure_skip_verify", _certificate_verification
        ),
        "ssl.endpoint.identification.algorithm": Alias(
            "ssl_check_hostname", _endpoint_identification
        ),
        "sasl.mechanism": Alias("sasl_mechanism"),
        "sasl.mechanisms": Alias("sasl_mechanism"),
        "sasl.username": Alias("sasl_plain_username"),
        "sasl.password": Alias("sasl_plain_password"),
        # kafka-python and aiokafka
        "max_in_flight_requests_per_connection": Alias("max_in_flight"),
        "max_batch_size": Alias("batch_size"),
    }
)

_TRANSACTIONS = (
    "kafka_sink has no transactions; it delivers at least once, and "
    "enable_idempotence (on with acks='all') keeps retries from writing duplicates"
)
_RETRIES = (
    "a record is retried until delivery_timeout_ms (delivery.timeout.ms) runs out: set that instead"
)
_SERIALIZERS = (
    "records are bytes or text: serialize before produce(), or give a handler or "
    "processor its serializer="
)
_KEY_STORES = (
    "Java key stores are not read: give PEM files as ssl_cafile (ssl.ca.location), "
    "ssl_certfile and ssl_keyfile"
)
_SSL_CONTEXT = "build an ssl.SSLContext with it and give that as ssl_context"
_CONSUMER = (
    "it is a consumer option, and kafka_sink only produces (kafka-sink tail reads without a group)"
)
_SOCKET_BUFFERS = "the operating system's socket buffer sizes are used"
_RECONNECT = "the Sink backs off between reconnections on its own"

#: Known properties of other clients that kafka_sink does not implement, and
#: what to do instead.
UNSUPPORTED: Mapping[str, str] = MappingProxyType(
    {
        "transactional.id": _TRANSACTIONS,
        "transactional_id": _TRANSACTIONS,
        "transaction.timeout.ms": _TRANSACTIONS,
        "retries": _RETRIES,
        "message.send.max.retries": _RETRIES,
        "key.serializer": _SERIALIZERS,
        "value.serializer": _SERIALIZERS,
        "key_serializer": _SERIALIZERS,
        "value_serializer": _SERIALIZERS,
        "partitioner.class": (
            "give a partitioner function to Sink(partitioner=...), or a partitioner= name "
            "to a handler or processor"
        ),
        "interceptor.classes": "write a kafka_sink plugin (see kafka_sink.hooks) instead",
        "batch.num.messages": "batches are bounded in bytes: set batch_size (batch.size)",
        "queue.buffering.max.messages": (
            "the buffer is bounded in bytes: set buffer_memory (buffer.memory)"
        ),
        "sasl.jaas.config": (
            "give sasl_mechanism, sasl_plain_username and sasl_plain_password "
            "(sasl.mechanism, sasl.username, sasl.password)"
        ),
        "sasl.kerberos.service.name": "GSSAPI (Kerberos) is not one of the SASL mechanisms",
        "sasl_kerberos_service_name": "GSSAPI (Kerberos) is not one of the SASL mechanisms",
        "ssl.truststore.location": _KEY_STORES,
        "ssl.truststore.password": _KEY_STORES,
        "ssl.truststore.type": _KEY_STORES,
        "ssl.keystore.location": _KEY_STORES,
        "ssl.keystore.password": _KEY_STORES,
        "ssl.keystore.type": _KEY_STORES,
        "ssl.ca.pem": "give a file as ssl_cafile, or an ssl.SSLContext as ssl_context",
        "ssl.certificate.pem": "give files as ssl_certfile and ssl_keyfile",
        "ssl.key.pem": "give files as ssl_certfile and ssl_keyfile",
        "ssl.crl.location": _SSL_CONTEXT,
        "ssl_crlfile": _SSL_CONTEXT,
        "ssl.cipher.suites": _SSL_CONTEXT,
        "ssl_ciphers": _SSL_CONTEXT,
        "api_version": "versions are negotiated with each broker (ApiVersions): nothing to set",
        "api.version.request": "versions are negotiated with each broker (ApiVersions)",
        "group.id": _CONSUMER,
        "group_id": _CONSUMER,
        "enable.auto.commit": _CONSUMER,
        "auto.offset.reset": _CONSUMER,
        "auto_offset_reset": _CONSUMER,
        "statistics.interval.ms": (
            "read Sink.metrics(), or ship them with MetricsExporter(sink_metrics=True)"
        ),
        "debug": (
            "kafka_sink logs through the logging module: set the level of the 'kafka_sink' logger"
        ),
        "socket.timeout.ms": "set request_timeout_ms (request.timeout.ms)",
        "reconnect.backoff.ms": _RECONNECT,
        "reconnect.backoff.max.ms": _RECONNECT,
        "reconnect_backoff_ms": _RECONNECT,
        "reconnect_backoff_max_ms": _RECONNECT,
        "send.buffer.bytes": _SOCKET_BUFFERS,
        "receive.buffer.bytes": _SOCKET_BUFFERS,
        "socket.send.buffer.bytes": _SOCKET_BUFFERS,
        "socket.receive.buffer.bytes": _SOCKET_BUFFERS,
        "send_buffer_bytes": _SOCKET_BUFFERS,
        "receive_buffer_bytes": _SOCKET_BUFFERS,
    }
)


def environment_variable(option: str) -> str:
    """The variable an option is read from: ``linger_ms`` -> ``KAFKA_SINK_LINGER_MS``."""
    return ENV_PREFIX + option.upper()


# -- the options of a config ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionSchema:
    """The options a configuration takes, and how text becomes each one's value.

    ``parsers`` maps every option to its text parser, or to None for an
    option text cannot hold (it is then never read from the environment);
    ``secrets`` are the options whose values no message may show (the fields
    left out of ``repr()``).
    """

    parsers: Mapping[str, TextParser | None]
    secrets: frozenset[str]

    @classmethod
    def of(cls, *classes: type[Any], exclude: Collection[str] = ()) -> OptionSchema:
        """The schema of the fields of dataclasses, less ``exclude``.

        A field's parser follows its annotation (``int``, ``float``,
        ``bool``, ``str``, optional or not); a field that is not in
        ``repr()`` is a secret.
        """
        parsers: dict[str, TextParser | None] = {}
        secrets: set[str] = set()
        for cls_ in classes:
            for f in fields(cls_):
                if f.name in exclude:
                    continue
                annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
                parsers[f.name] = _PARSER_OVERRIDES.get(f.name) or _PARSERS.get(annotation)
                if not f.repr:
                    secrets.add(f.name)
        return cls(MappingProxyType(parsers), frozenset(secrets))

    def environment_variables(self) -> dict[str, str]:
        """Every option read from the environment, and its variable."""
        return {
            option: environment_variable(option)
            for option, parser in self.parsers.items()
            if parser is not None
        }


@dataclass(frozen=True, slots=True)
class ResolvedOptions:
    """Options under our names, merged from the call, the environment and the defaults.

    ``named`` maps an option to the name it was given under when that was
    not ours (``"linger.ms"``); ``variables`` maps an option to the
    environment variable it was read from. :meth:`naming_sources` uses both
    to name, in an error raised while the options are checked, what the
    user wrote.
    """

    values: Mapping[str, object]
    named: Mapping[str, str]
    variables: Mapping[str, str]

    @contextlib.contextmanager
    def naming_sources(self) -> Iterator[None]:
        """Re-raise an :class:`~kafka_sink.InvalidArgumentError` under the name the user gave.

        An option read from the environment is reported as a
        :class:`~kafka_sink.ConfigError` naming its variable; one given under
        an alias names the alias.
        """
        try:
            yield
        except ConfigError:
            raise
        except InvalidArgumentError as error:
            argument = error.context.get("argument")
            if not isinstance(argument, str):
                raise
            variable = self.variables.get(argument)
            if variable is not None:
                raise ConfigError(argument, variable, _problem(error)) from None
            alias = self.named.get(argument)
            if alias is not None:
                raise InvalidArgumentError(alias, _problem(error)) from None
            raise


def _problem(error: InvalidArgumentError) -> str:
    """What an InvalidArgumentError says is wrong, without the argument's name."""
    prefix = f"invalid argument {error.context.get('argument')!r}: "
    message = error.message
    return message[len(prefix) :] if message.startswith(prefix) else message


def resolve_options(
    options: Mapping[str, object],
    schema: OptionSchema,
    *,
    defaults: Mapping[str, object] = _NO_VALUES,
    environ: Mapping[str, str] | None = None,
    owner: str = "Sink",
    owner_options: Iterable[str] = (),
    replaces: Mapping[str, Collection[str]] | None = None,
) -> ResolvedOptions:
    """Our options from ``options`` (any names), ``environ`` and ``defaults``, in that order.

    ``options`` are the caller's, under our names or those of
    :data:`ALIASES`, values possibly ``{"env": "NAME"}``; ``environ``
    (default :data:`os.environ`) is searched for the ``KAFKA_SINK_*``
    variable of each option not given; ``defaults`` (under our names) fill in
    the rest. ``replaces`` maps an option to those it stands for as a whole
    (``security`` to the security options): when it is given, those are not
    read from the environment. ``owner`` and ``owner_options`` (its other
    arguments, offered as suggestions) word the error for an unknown name.

    Raises :class:`~kafka_sink.InvalidArgumentError` naming the first name
    that is unknown, unsupported or given twice, and
    :class:`~kafka_sink.ConfigError` for a variable that is missing or
    cannot be parsed.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    given: dict[str, object] = {}
    given_as: dict[str, str] = {}
    variables: dict[str, str] = {}
    for name in options:
        if not isinstance(name, str):
            raise InvalidArgumentError(repr(name), f"option names must be text, not {name!r}")
        # Item by item: dictConfig's ConvertingDict resolves values when looked up.
        raw = options[name]
        setting = _setting(name, raw, schema, env, owner, owner_options)
        if setting is None:
            continue
        option, value, variable = setting
        if option in given:
            first = given_as[option]
            if first == option:
                problem = f"is another name of {first!r}, which is given too"
            elif name == option:
                problem = f"is given too as {first!r}"
            else:
                problem = f"sets {option!r}, as {first!r} does"
            raise InvalidArgumentError(name, f"{problem}: give only one of them")
        given[option] = value
        given_as[option] = name
        if variable is not None:
            variables[option] = variable
    skipped = {
        member for key, members in (replaces or {}).items() if key in given for member in members
    }
    from_env: dict[str, object] = {}
    for option, parser in schema.parsers.items():
        if parser is None or option in given or option in skipped:
            continue
        variable = environment_variable(option)
        text = env.get(variable)
        if not text:
            continue
        from_env[option] = _parse(parser, text, option, variable, schema)
        variables[option] = variable
    values = {
        **{k: v for k, v in defaults.items() if k not in skipped},
        **from_env,
        **given,
    }
    named = {option: name for option, name in given_as.items() if name != option}
    return ResolvedOptions(
        MappingProxyType(values), MappingProxyType(named), MappingProxyType(variables)
    )


def _setting(
    name: str,
    raw: object,
    schema: OptionSchema,
    env: Mapping[str, str],
    owner: str,
    owner_options: Iterable[str],
) -> tuple[str, object, str | None] | None:
    """``(option, value, variable it was read from)`` for one given name, or None."""
    if name in schema.parsers:
        return _our_setting(name, raw, schema, env)
    alias = ALIASES.get(name)
    if alias is not None:
        return _alias_setting(name, alias, raw, schema, env)
    why = UNSUPPORTED.get(name)
    if why is not None:
        raise InvalidArgumentError(name, f"is not supported: {why}")
    raise InvalidArgumentError(name, _unknown(name, schema, owner, owner_options))


def _our_setting(
    name: str, raw: object, schema: OptionSchema, env: Mapping[str, str]
) -> tuple[str, object, str | None]:
    reference = _reference(name, raw)
    if reference is None:
        return name, raw, None
    parser = schema.parsers[name]
    if parser is None:
        raise InvalidArgumentError(name, "cannot be read from an environment variable")
    variable, value = _dereference(name, reference, env)
    if isinstance(value, str):  # a default that is not text is a value already
        value = _parse(parser, value, name, variable, schema)
    return name, value, variable


def _alias_setting(
    name: str, alias: Alias, raw: object, schema: OptionSchema, env: Mapping[str, str]
) -> tuple[str, object, str | None] | None:
    if alias.option not in schema.parsers:
        raise InvalidArgumentError(
            name, f"is not supported: this version has no {alias.option} option"
        )
    reference = _reference(name, raw)
    variable, value = (None, raw) if reference is None else _dereference(name, reference, env)
    try:
        if alias.convert is not None:
            converted = alias.convert(value)
            return None if converted is None else (*converted, variable)
        parser = schema.parsers[alias.option]
        if parser is not None and isinstance(value, str):
            value = parser(value)
    except _BadValue as bad:
        # Never echo a secret, even one that failed to parse.
        problem = "cannot be parsed" if alias.option in schema.secrets else bad.problem
        if variable is not None:
            raise ConfigError(name, variable, problem) from None
        raise InvalidArgumentError(name, problem) from None
    return alias.option, value, variable


def _reference(name: str, value: object) -> tuple[str, object] | None:
    """``(variable, default)`` when ``value`` is ``{"env": NAME[, "default": ...]}``."""
    if not isinstance(value, Mapping) or "env" not in value:
        return None
    for key in value:
        if key not in ("env", "default"):
            raise InvalidArgumentError(
                name, f"an environment reference takes 'env' and 'default', not {key!r}"
            )
    variable = value["env"]
    if not isinstance(variable, str) or not variable or "=" in variable or "\0" in variable:
        raise InvalidArgumentError(
            name, f"'env' must name an environment variable, got {variable!r}"
        )
    return variable, value.get("default", _MISSING)


_MISSING = object()


def _dereference(
    name: str, reference: tuple[str, object], env: Mapping[str, str]
) -> tuple[str, object]:
    variable, default = reference
    text = env.get(variable)
    if text:
        return variable, text
    if default is _MISSING:
        state = "is empty" if text == "" else "is not set"
        raise ConfigError(name, variable, state)
    return variable, default


def _parse(
    parser: TextParser, text: str, option: str, variable: str, schema: OptionSchema
) -> object:
    try:
        return parser(text)
    except _BadValue as bad:
        # Never echo a secret, even one that failed to parse.
        problem = "cannot be parsed" if option in schema.secrets else bad.problem
        raise ConfigError(option, variable, problem) from None


def _unknown(name: str, schema: OptionSchema, owner: str, owner_options: Iterable[str]) -> str:
    import difflib  # noqa: PLC0415 - only an unknown option pays for it

    # What a guess may look like, and the name to suggest for it: our names,
    # the aliases as they are, and the aliases in snake case, which suggest
    # our name ("sasl_password": did you mean 'sasl_plain_password'?).
    suggest: dict[str, str] = {}
    for alias, target in ALIASES.items():
        suggest[alias.replace(".", "_")] = target.option
    suggest.update((alias, alias) for alias in ALIASES)
    suggest.update((option, option) for option in (*schema.parsers, *owner_options))
    lowered = {guess.lower(): suggestion for guess, suggestion in suggest.items()}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    problem = f"is not an option of {owner}"
    if matches:
        problem += f"; did you mean {lowered[matches[0]]!r}?"
    return problem
