"""Where Sink options come from: the call, KAFKA_SINK_* variables, {"env": ...} references,
other clients' names; and the errors, which name what the user wrote but never a secret."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import pickle
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kafka_sink
from kafka_sink import (
    ConfigError,
    InvalidArgumentError,
    KafkaHandler,
    KafkaProcessor,
    MetricsExporter,
    MetricsRegistry,
    SecurityConfig,
    Sink,
    SinkConfig,
)
from kafka_sink.options import ALIASES, ENV_PREFIX, UNSUPPORTED, environment_variable

SECRET = "s3cr3t-Hunter2-zq"

SASL = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "alice",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KAFKA_SINK_* variable of the machine leaks into these tests."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def build(options: dict[str, Any], environ: dict[str, str] | None = None) -> SinkConfig:
    return SinkConfig.from_mapping(
        {"bootstrap_servers": "kafka1:9092", **options}, environ=environ or {}
    )


def all_text(error: BaseException) -> str:
    """Everything an error shows: message, repr, context, pickled form, the traceback chain."""
    parts = [str(error), repr(error), repr(getattr(error, "context", None))]
    parts.append(repr(pickle.loads(pickle.dumps(error))) if hasattr(error, "context") else "")
    parts.extend(traceback.format_exception(error))
    return "\n".join(parts)


# -- the environment -------------------------------------------------------------------


def test_every_option_not_given_is_read_from_its_variable() -> None:
    config = SinkConfig.from_mapping(
        {},
        environ={
            "KAFKA_SINK_BOOTSTRAP_SERVERS": "kafka1:9092,[::1]:9093",
            "KAFKA_SINK_LINGER_MS": "2.5",
            "KAFKA_SINK_BATCH_SIZE": "65_536",
            "KAFKA_SINK_ACKS": "ALL",
            "KAFKA_SINK_ENABLE_IDEMPOTENCE": "Yes",
            "KAFKA_SINK_COMPRESSION_TYPE": "zstd",
            "KAFKA_SINK_IP_VERSION": "6",
            "KAFKA_SINK_CLIENT_ID": "billing",
        },
    )
    assert [str(b) for b in config.bootstrap_servers] == ["kafka1:9092", "[::1]:9093"]
    assert config.linger_ms == 2.5
    assert config.batch_size == 65536
    assert config.acks == -1
    assert config.enable_idempotence is True
    assert config.compression_type == "zstd"
    assert config.ip_version == 6
    assert config.client_id == "billing"


def test_security_options_come_from_the_environment_too() -> None:
    config = SinkConfig.from_mapping(
        {"bootstrap_servers": "kafka1:9093"},
        environ={
            "KAFKA_SINK_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SINK_SASL_MECHANISM": "SCRAM-SHA-256",
            "KAFKA_SINK_SASL_PLAIN_USERNAME": "alice",
            "KAFKA_SINK_SASL_PLAIN_PASSWORD": SECRET,
            "KAFKA_SINK_SSL_CHECK_HOSTNAME": "off",
        },
    )
    assert config.security.security_protocol == "SASL_SSL"
    assert config.security.sasl_mechanism == "SCRAM-SHA-256"
    assert config.security.sasl_plain_password == SECRET
    assert config.security.ssl_check_hostname is False
    assert SECRET not in repr(config)


def test_precedence_is_argument_then_environment_then_default() -> None:
    environ = {"KAFKA_SINK_LINGER_MS": "50", "KAFKA_SINK_BATCH_SIZE": "1000"}
    config = SinkConfig.from_mapping(
        {"linger_ms": 5},
        bootstrap_servers="kafka1:9092",
        defaults={"batch_size": 2000, "max_block_ms": 100.0},
        environ=environ,
    )
    assert config.linger_ms == 5  # the argument
    assert config.batch_size == 1000  # the environment, over the caller's default
    assert config.max_block_ms == 100.0  # the caller's default
    assert config.retry_backoff_ms == 100.0  # SinkConfig's own default


def test_an_empty_variable_counts_as_unset() -> None:
    assert build({}, {"KAFKA_SINK_LINGER_MS": ""}).linger_ms == 10.0


def test_unknown_kafka_sink_variables_are_left_alone() -> None:
    # Other tools (and references like {"env": "KAFKA_SINK_PASSWORD"}) use the prefix too.
    config = build({}, {"KAFKA_SINK_PASSWORD": "x", "KAFKA_SINK_LINGERMS": "nonsense"})
    assert config.linger_ms == 10.0


def test_an_explicit_security_value_replaces_every_security_variable() -> None:
    config = build(
        {"security": SecurityConfig()},
        {"KAFKA_SINK_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SINK_SASL_PLAIN_PASSWORD": SECRET},
    )
    assert config.security == SecurityConfig()


def test_every_option_has_a_variable_but_the_objects() -> None:
    schema = SinkConfig.from_mapping.__globals__["_SINK_OPTIONS"]
    variables = schema.environment_variables()
    unreadable = set(schema.parsers) - set(variables)
    assert unreadable == {"security", "ssl_context", "sasl_oauth_token_provider"}
    assert variables["sasl_plain_password"] == "KAFKA_SINK_SASL_PLAIN_PASSWORD"
    assert variables["bootstrap_servers"] == "KAFKA_SINK_BOOTSTRAP_SERVERS"
    assert environment_variable("linger_ms") == "KAFKA_SINK_LINGER_MS"


@pytest.mark.parametrize(
    ("variable", "text", "problem"),
    [
        ("KAFKA_SINK_LINGER_MS", "soon", "must be a number, got 'soon'"),
        ("KAFKA_SINK_BATCH_SIZE", "1.5", "must be an integer, got '1.5'"),
        ("KAFKA_SINK_ENABLE_IDEMPOTENCE", "maybe", "must be true or false"),
        ("KAFKA_SINK_LINGER_MS", "-1", "must be >= 0, got -1.0"),
        ("KAFKA_SINK_ACKS", "2", "must be 0, 1, -1 or 'all'"),
        ("KAFKA_SINK_SSL_CAFILE", "/nonexistent/ca.pem", "is not an existing file"),
    ],
)
def test_a_bad_variable_is_named_with_its_option(variable: str, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build({}, {variable: text})
    error = caught.value
    assert error.variable == variable
    assert error.argument == variable.removeprefix(ENV_PREFIX).lower()
    assert str(error).startswith(f"environment variable {variable!r} (option {error.argument!r})")
    assert problem in str(error)
    assert isinstance(error, InvalidArgumentError)
    assert isinstance(error, ValueError)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.message, again.variable) == (ConfigError, error.message, variable)


def test_a_secret_from_the_environment_that_does_not_fit_is_named_not_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        build({}, {"KAFKA_SINK_SASL_PLAIN_PASSWORD": SECRET})  # but PLAINTEXT
    assert caught.value.variable == "KAFKA_SINK_SASL_PLAIN_PASSWORD"
    assert "is a SASL option" in str(caught.value)
    assert SECRET not in all_text(caught.value)
    with pytest.raises(ConfigError) as caught:
        build(
            {**SASL, "sasl_mechanism": "PLAIN"},
            {"KAFKA_SINK_SASL_PLAIN_PASSWORD": f"{SECRET}\0x"},
        )
    assert "NUL" in str(caught.value)
    assert SECRET not in all_text(caught.value)


def test_bootstrap_servers_is_required_somewhere() -> None:
    with pytest.raises(InvalidArgumentError, match=r"KAFKA_SINK_BOOTSTRAP_SERVERS"):
        SinkConfig.from_mapping({}, environ={})


# -- {"env": ...} references -------------------------------------------------------------


def test_a_reference_reads_the_variable_and_parses_it() -> None:
    config = build(
        {**SASL, "sasl_plain_password": {"env": "APP_KAFKA_PASSWORD"}, "linger_ms": {"env": "L"}},
        {"APP_KAFKA_PASSWORD": SECRET, "L": "7"},
    )
    assert config.security.sasl_plain_password == SECRET
    assert config.linger_ms == 7.0


def test_a_reference_falls_back_to_its_default() -> None:
    config = build({"linger_ms": {"env": "UNSET_LINGER", "default": 3}}, {})
    assert config.linger_ms == 3
    config = build({"linger_ms": {"env": "UNSET_LINGER", "default": "4"}}, {})
    assert config.linger_ms == 4.0


@pytest.mark.parametrize("environ", [{}, {"APP_KAFKA_PASSWORD": ""}])
def test_a_missing_variable_is_named_and_the_secret_is_not(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        build({**SASL, "sasl_plain_password": {"env": "APP_KAFKA_PASSWORD"}}, environ)
    error = caught.value
    assert error.variable == "APP_KAFKA_PASSWORD"
    assert error.argument == "sasl_plain_password"
    assert ("is empty" if environ else "is not set") in str(error)


def test_a_reference_under_another_clients_name() -> None:
    config = build(
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": "alice",
            "sasl.password": {"env": "APP_KAFKA_PASSWORD"},
        },
        {"APP_KAFKA_PASSWORD": SECRET},
    )
    assert config.security.sasl_plain_password == SECRET
    with pytest.raises(ConfigError, match=r"'APP_KAFKA_PASSWORD' \(option 'sasl.password'\)"):
        build({"sasl.password": {"env": "APP_KAFKA_PASSWORD"}}, {})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"env": "X", "fallback": 1}, "takes 'env' and 'default', not 'fallback'"),
        ({"env": ""}, "'env' must name an environment variable"),
        ({"env": 3}, "'env' must name an environment variable"),
    ],
)
def test_a_malformed_reference_is_refused(value: object, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=problem):
        build({"linger_ms": value})


def test_an_object_option_cannot_be_a_reference() -> None:
    with pytest.raises(InvalidArgumentError, match="cannot be read from an environment variable"):
        build({"ssl_context": {"env": "CTX"}}, {"CTX": "x"})


# -- other clients' names -------------------------------------------------------------------


def test_java_and_librdkafka_names_set_our_options() -> None:
    config = build(
        {
            "linger.ms": 5,
            "batch.size": "65536",  # text, as in a .properties file
            "compression.type": "gzip",
            "max.in.flight.requests.per.connection": 3,
            "enable.idempotence": "false",
            "request.required.acks": "1",
            "client.id": "app",
            "request.timeout.ms": 1000,
            "delivery.timeout.ms": 5000,
            "message.max.bytes": 2048,
            "queue.buffering.max.kbytes": 1024,
            "retry.backoff.ms": 10,
            "metadata.max.age.ms": 60000,
            "broker.address.family": "v4",
        }
    )
    assert config.linger_ms == 5
    assert config.batch_size == 65536
    assert config.compression_type == "gzip"
    assert config.max_in_flight == 3
    assert config.enable_idempotence is False
    assert config.acks == 1
    assert config.client_id == "app"
    assert config.request_timeout_ms == 1000
    assert config.delivery_timeout_ms == 5000
    assert config.max_request_size == 2048
    assert config.buffer_memory == 1024 * 1024
    assert config.retry_backoff_ms == 10
    assert config.metadata_max_age_ms == 60000
    assert config.ip_version == 4


def test_kafka_python_spellings() -> None:
    config = build({"max_in_flight_requests_per_connection": 2, "max_batch_size": 4096})
    assert (config.max_in_flight, config.batch_size) == (2, 4096)


def test_tls_names_that_mean_something_else_are_translated(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read until a connection is made")
    config = build(
        {
            "security.protocol": "SSL",
            "ssl.ca.location": str(ca),
            "enable.ssl.certificate.verification": "false",
            "ssl.endpoint.identification.algorithm": "none",
        }
    )
    assert config.security.ssl_cafile == str(ca)
    assert config.security.ssl_insecure_skip_verify is True
    assert config.security.ssl_check_hostname is False
    config = build({"security.protocol": "SSL", "ssl.ca.location": str(tmp_path)})
    assert config.security.ssl_capath == str(tmp_path)
    config = build({"security.protocol": "SSL", "ssl.ca.location": "probe"})
    assert (config.security.ssl_cafile, config.security.ssl_capath) == (None, None)
    config = build({"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "https"})
    assert config.security.ssl_check_hostname is True


def test_the_aliases_the_issue_names_are_there() -> None:
    for name in (
        "linger.ms",
        "batch.size",
        "compression.type",
        "max.in.flight.requests.per.connection",
        "enable.idempotence",
        "enable.ssl.certificate.verification",
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
        "security.protocol",
        "ssl.ca.location",
        "client.id",
        "bootstrap.servers",
        "request.timeout.ms",
        "delivery.timeout.ms",
        "message.max.bytes",
        "max.request.size",
        "queue.buffering.max.kbytes",
        "buffer.memory",
        "retry.backoff.ms",
        "max_in_flight_requests_per_connection",
    ):
        assert name in ALIASES, name
    assert "retries" in UNSUPPORTED
    assert "transactional.id" in UNSUPPORTED
    # No name is both, and no alias shadows one of our options.
    schema = SinkConfig.from_mapping.__globals__["_SINK_OPTIONS"]
    assert not set(ALIASES) & set(UNSUPPORTED)
    assert not set(ALIASES) & set(schema.parsers)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("transactional.id", "has no transactions"),
        ("retries", "delivery_timeout_ms"),
        ("key.serializer", "serializer="),
        ("sasl.jaas.config", "sasl_plain_username"),
        ("ssl.truststore.location", "PEM files"),
        ("group.id", "consumer option"),
    ],
)
def test_a_known_unsupported_property_says_what_to_do(name: str, hint: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build({name: "x"})
    assert str(caught.value).startswith(f"invalid argument {name!r}: is not supported: ")
    assert hint in str(caught.value)


def test_the_compression_level_alias_reaches_the_option() -> None:
    assert build({"compression.level": 3}).compression_level == 3
    with pytest.raises(InvalidArgumentError, match="from 1 to 9 for gzip"):
        build({"compression.type": "gzip", "compression.level": 12})


@pytest.mark.parametrize(
    ("given", "first", "second"),
    [
        ({"linger_ms": 5, "linger.ms": 5}, "linger.ms", "linger_ms"),
        ({"linger.ms": 5, "linger_ms": 5}, "linger_ms", "linger.ms"),
        (
            {"sasl.mechanism": "PLAIN", "sasl.mechanisms": "PLAIN"},
            "sasl.mechanisms",
            "sasl.mechanism",
        ),
        (
            {"max.in.flight": 1, "max_in_flight_requests_per_connection": 1},
            "max_in_flight_requests_per_connection",
            "max.in.flight",
        ),
    ],
)
def test_one_option_under_two_names_is_an_error_naming_both(
    given: dict[str, Any], first: str, second: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build(given)
    assert caught.value.argument == first
    assert repr(second) in str(caught.value)
    assert "give only one of them" in str(caught.value)


def test_bootstrap_servers_under_two_names() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'bootstrap\.servers'"):
        SinkConfig.from_mapping({"bootstrap.servers": "a:1"}, bootstrap_servers="b:1", environ={})


def test_a_bad_value_under_an_alias_names_the_alias() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build({"linger.ms": -5})
    assert caught.value.argument == "linger.ms"
    assert "must be >= 0" in str(caught.value)
    with pytest.raises(InvalidArgumentError, match=r"'batch\.size': must be an integer, got 'x'"):
        build({"batch.size": "x"})
    with pytest.raises(InvalidArgumentError, match=r"'broker\.address\.family': must be 'any'"):
        build({"broker.address.family": "v5"})


def test_a_secret_under_an_alias_is_never_shown() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build({"sasl.password": SECRET})  # but PLAINTEXT
    assert caught.value.argument == "sasl.password"
    assert SECRET not in all_text(caught.value)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("lingr_ms", "linger_ms"),
        ("LINGER_MS", "linger_ms"),
        ("linger.mss", "linger.ms"),
        ("compresion_type", "compression_type"),
        ("sasl_password", "sasl_plain_password"),
    ],
)
def test_an_unknown_option_suggests_the_nearest_name(name: str, suggestion: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build({name: 1})
    assert str(caught.value) == (
        f"invalid argument {name!r}: is not an option of Sink; did you mean {suggestion!r}?"
    )


def test_an_unknown_option_far_from_any_name_gets_no_suggestion() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build({"zzzzzz": 1})
    assert str(caught.value) == "invalid argument 'zzzzzz': is not an option of Sink"


def test_sink_takes_the_names_as_keywords_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SINK_BATCH_SIZE", "4096")
    dotted: dict[str, Any] = {"linger.ms": 3}
    with Sink("kafka1:9092", **dotted) as sink:
        assert sink.config.linger_ms == 3
        assert sink.config.batch_size == 4096
    with pytest.raises(InvalidArgumentError, match="did you mean 'linger_ms'"):
        Sink("kafka1:9092", lingerms=3)


def test_sink_reads_its_brokers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SINK_BOOTSTRAP_SERVERS", "kafka1:9092")
    with Sink() as sink:
        assert [str(b) for b in sink.config.bootstrap_servers] == ["kafka1:9092"]


# -- the integrations ---------------------------------------------------------------------


def test_a_handler_reads_the_environment_for_the_sink_it_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SINK_BOOTSTRAP_SERVERS", "kafka1:9092")
    monkeypatch.setenv("KAFKA_SINK_LINGER_MS", "42")
    monkeypatch.setenv("KAFKA_SINK_ON_BUFFER_FULL", "block")
    monkeypatch.setenv("KAFKA_SINK_BATCH_SIZE", "9999")
    handler = KafkaHandler("logs", batch_size=1000, sink_options={"compression.type": "zstd"})
    try:
        config = handler.sink.config
        assert [str(b) for b in config.bootstrap_servers] == ["kafka1:9092"]
        assert config.linger_ms == 42  # environment
        assert config.on_buffer_full == "block"  # environment, over the handler's default
        assert config.max_block_ms == 100.0  # the handler's default
        assert config.batch_size == 1000  # argument
        assert config.compression_type == "zstd"  # sink_options
    finally:
        handler.close(0.0)


def test_the_processor_and_the_exporter_read_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SINK_BOOTSTRAP_SERVERS", "kafka1:9092")
    monkeypatch.setenv("KAFKA_SINK_CLIENT_ID", "from-env")
    dotted: dict[str, Any] = {"linger.ms": 1}
    processor = KafkaProcessor("events", contextvars=False, **dotted)
    exporter = MetricsExporter(MetricsRegistry(), "metrics", interval=None)
    try:
        assert processor.sink.config.client_id == "from-env"
        assert processor.sink.config.linger_ms == 1
        assert exporter.sink.config.client_id == "from-env"  # over the exporter's default
        assert exporter.sink.config.buffer_memory == 8 * 1024 * 1024  # the exporter's default
    finally:
        processor.close(0.0)
        exporter.close(0.0, final_export=False)


def test_a_shared_sink_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with Sink("kafka1:9092") as sink:
        monkeypatch.setenv("KAFKA_SINK_LINGER_MS", "not a number")
        handler = KafkaHandler("logs", sink=sink)
        handler.close(0.0)


def test_an_integration_names_its_own_arguments_in_suggestions() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        KafkaHandler("logs", "kafka1:9092", serialiser="json")
    assert str(caught.value) == (
        "invalid argument 'serialiser': is not an option of KafkaHandler; "
        "did you mean 'serializer'?"
    )
    with pytest.raises(InvalidArgumentError, match="of KafkaProcessor; did you mean 'drop'"):
        KafkaProcessor("events", "kafka1:9092", dorp=True)
    with pytest.raises(InvalidArgumentError, match="of MetricsExporter; did you mean 'interval'"):
        MetricsExporter(None, "metrics", "kafka1:9092", intervall=5)


def test_a_handler_without_brokers_says_where_they_may_come_from() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        KafkaHandler("logs")
    assert "is required unless sink= is given" in str(caught.value)
    assert "KAFKA_SINK_BOOTSTRAP_SERVERS" in str(caught.value)


def test_an_option_both_as_keyword_and_in_sink_options() -> None:
    with pytest.raises(InvalidArgumentError, match="both as a keyword argument and in sink_opt"):
        KafkaHandler("logs", "kafka1:9092", linger_ms=1, sink_options={"linger_ms": 2})
    with pytest.raises(InvalidArgumentError, match=r"'linger\.ms': is another name of 'linger_ms'"):
        KafkaHandler("logs", "kafka1:9092", linger_ms=1, sink_options={"linger.ms": 2})
    with pytest.raises(InvalidArgumentError, match="'sink_options': must be a mapping"):
        KafkaHandler(
            "logs",
            "kafka1:9092",
            sink_options=["linger.ms"],  # type: ignore[arg-type]  # a list on purpose
        )


def test_dictconfig_with_dotted_names_and_a_secret_by_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APP_KAFKA_PASSWORD", SECRET)
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "kafka": {
                "class": "kafka_sink.KafkaHandler",
                "topic": "app-logs",
                "bootstrap_servers": "kafka1:9093",
                "sasl_plain_password": {"env": "APP_KAFKA_PASSWORD"},
                "sink_options": {
                    "linger.ms": 50,
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.username": "alice",
                },
            }
        },
        "loggers": {"test.options.dictconfig": {"handlers": ["kafka"], "propagate": False}},
    }
    logging.config.dictConfig(json.loads(json.dumps(config)))
    handler = logging.getLogger("test.options.dictconfig").handlers[0]
    assert isinstance(handler, KafkaHandler)
    try:
        assert handler.sink.config.linger_ms == 50
        assert handler.sink.config.security.sasl_plain_password == SECRET
        assert SECRET not in repr(handler)
        assert SECRET not in repr(handler.sink)
        assert SECRET not in repr(handler.sink.config)
    finally:
        logging.getLogger("test.options.dictconfig").handlers.clear()
        handler.close(0.0)


def test_dictconfig_with_a_missing_secret_names_the_variable() -> None:
    config = {
        "version": 1,
        "handlers": {
            "kafka": {
                "class": "kafka_sink.KafkaHandler",
                "topic": "app-logs",
                "bootstrap_servers": "kafka1:9093",
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "alice",
                "sasl_plain_password": {"env": "APP_KAFKA_PASSWORD_UNSET"},
            }
        },
    }
    with pytest.raises(ValueError, match="Unable to configure handler 'kafka'") as caught:
        logging.config.dictConfig(config)
    cause = caught.value.__cause__
    assert isinstance(cause, ConfigError)
    assert cause.variable == "APP_KAFKA_PASSWORD_UNSET"
    assert "is not set" in str(cause)


# -- secrets stay out of sight ------------------------------------------------------------


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(repr(record.args))
        self.texts.append(repr(record.__dict__))


@pytest.fixture
def every_log_record() -> Iterator[_Everything]:
    capture = _Everything()
    root = logging.getLogger()
    library = logging.getLogger("kafka_sink")
    old_levels = (root.level, library.level)
    root.addHandler(capture)
    library.addHandler(capture)
    root.setLevel(logging.DEBUG)
    library.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    library.removeHandler(capture)
    root.setLevel(old_levels[0])
    library.setLevel(old_levels[1])


def test_no_secret_from_the_environment_reaches_a_repr_an_error_or_a_log_record(
    monkeypatch: pytest.MonkeyPatch, every_log_record: _Everything
) -> None:
    monkeypatch.setenv("KAFKA_SINK_SASL_PLAIN_PASSWORD", SECRET)
    monkeypatch.setenv("APP_KAFKA_PASSWORD", SECRET)
    texts: list[str] = []
    # A sink that tries to authenticate against a port where nobody listens: it
    # connects, fails, retries, and logs what it does.
    sink = Sink(
        "127.0.0.1:9",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        delivery_timeout_ms=300,
        request_timeout_ms=200,
    )
    future = sink.produce("logs", b"hello")
    sink.flush(1.0)
    texts.extend([repr(sink), repr(sink.config), repr(sink.config.security)])
    texts.append(repr(sink.metrics()))
    sink.close(0.5)
    assert future.done()
    error = future.exception()
    assert error is not None
    texts.append(all_text(error))
    handler = KafkaHandler(
        "logs",
        "127.0.0.1:9",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="alice",
        sasl_plain_password={"env": "APP_KAFKA_PASSWORD"},
    )
    texts.extend([repr(handler), repr(handler.sink), repr(handler.metrics())])
    handler.close(0.0)
    for options in (
        {"security_protocol": "PLAINTEXT"},
        {**SASL, "sasl_mechanism": "PLAIN", "sasl.password": f"{SECRET}\0"},
        {**SASL, "linger_ms": -1},
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            SinkConfig.from_mapping({"bootstrap_servers": "a:1", **options})
        texts.append(all_text(caught.value))
    texts.extend(every_log_record.texts)
    assert every_log_record.texts, "the sink logged nothing: the test saw no log record"
    leaked = [text for text in texts if SECRET in text]
    assert not leaked


def test_the_command_line_reads_only_its_own_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An application's KAFKA_SINK_* settings (here a SASL password for a
    # secured cluster) must not leak into `kafka-sink send` against another one.
    from kafka_sink import cli
    from kafka_sink.cli import send as cli_send

    monkeypatch.setenv("KAFKA_SINK_SASL_PLAIN_PASSWORD", SECRET)
    monkeypatch.setenv("KAFKA_SINK_LINGER_MS", "not a number")
    built: list[SinkConfig] = []
    real = SinkConfig.from_mapping

    def spy(*args: Any, **kwargs: Any) -> SinkConfig:
        config = real(*args, **kwargs)
        built.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(SinkConfig, "from_mapping", spy)  # the class cli builds its config with
    # No cluster: the spy stops the command before it sends anything.
    monkeypatch.setattr(cli_send, "Connection", _StubConnection)
    with pytest.raises(SystemExit):
        cli.main(["send", "-t", "logs", "-b", "kafka1:9092", os.devnull])
    assert built[0].security.sasl_plain_password is None
    assert built[0].linger_ms == cli.build_parser().parse_args(["send", "-t", "x"]).linger_ms


class _StubConnection:
    def __init__(self, **options: Any) -> None:
        pass

    def __enter__(self) -> _StubConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def partitions(self, topic: str) -> list[int]:
        return [0]


def test_config_error_is_public() -> None:
    assert kafka_sink.ConfigError is ConfigError
    assert "ConfigError" in kafka_sink.__all__
