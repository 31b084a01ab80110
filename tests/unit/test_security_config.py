"""SecurityConfig: validation, the same option names everywhere, secrets kept out of sight;
and the SSL context built from it."""

from __future__ import annotations

import dataclasses
import pickle
import ssl
from pathlib import Path
from typing import Any

import pytest

from kafka_sink import Connection, InvalidArgumentError, SinkConfig
from kafka_sink.config import (
    SECURITY_OPTIONS,
    BrokerAddress,
    ConnectionConfig,
    SecurityConfig,
)
from kafka_sink.errors import AuthenticationError
from kafka_sink.net.client import NetworkClient
from kafka_sink.net.security import (
    InsecureTlsWarning,
    TlsTransport,
    create_ssl_context,
    transport_for,
)
from kafka_sink.net.transport import TcpTransport
from tests.brokers.tls import TestPki, make_test_pki
from tests.fakes import FakeCluster

SECRET = "s3cr3t-Hunter2-zq"
KEY_SECRET = "key-Passphrase-88"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"), keystores=False)


def sasl(**options: Any) -> SecurityConfig:
    values: dict[str, Any] = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SECRET,
    }
    values.update(options)
    return SecurityConfig(**values)


# -- defaults and normalisation -------------------------------------------------------


def test_the_default_is_plaintext_with_nothing_to_check() -> None:
    config = SecurityConfig()
    assert config.security_protocol == "PLAINTEXT"
    assert not config.uses_tls
    assert not config.uses_sasl
    assert config.ssl_check_hostname is True
    assert config.ssl_insecure_skip_verify is False
    assert ConnectionConfig((BrokerAddress("h", 1),)).security == config
    assert SinkConfig.build("h:1").security == config


@pytest.mark.parametrize(
    ("protocol", "tls", "uses_sasl"),
    [
        ("PLAINTEXT", False, False),
        ("ssl", True, False),
        (" Sasl_Plaintext ", False, True),
        ("SASL_SSL", True, True),
    ],
)
def test_protocols_are_normalised(protocol: str, tls: bool, uses_sasl: bool) -> None:
    options: dict[str, Any] = {"security_protocol": protocol}
    if uses_sasl:
        options.update(sasl_mechanism="plain", sasl_plain_username="u", sasl_plain_password=SECRET)
    config = SecurityConfig(**options)
    assert config.security_protocol == protocol.strip().upper()
    assert (config.uses_tls, config.uses_sasl) == (tls, uses_sasl)
    if uses_sasl:
        assert config.sasl_mechanism == "PLAIN"


def test_paths_may_be_path_objects(pki: TestPki) -> None:
    config = SecurityConfig(
        security_protocol="SSL",
        ssl_cafile=pki.ca_file,  # type: ignore[arg-type]  # a Path works as well
        ssl_capath=pki.ca_file.parent,  # type: ignore[arg-type]  # a Path works as well
    )
    assert config.ssl_cafile == str(pki.ca_file)
    assert config.ssl_capath == str(pki.ca_file.parent)


# -- validation names the argument --------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "argument", "problem"),
    [
        ({"security_protocol": "TLS"}, "security_protocol", "must be one of"),
        ({"security_protocol": None}, "security_protocol", "must be one of"),
        ({"security_protocol": "SSL", "ssl_cafile": "/no/such/ca.pem"}, "ssl_cafile", "not an"),
        ({"security_protocol": "SSL", "ssl_capath": "/no/such/dir"}, "ssl_capath", "not an"),
        ({"security_protocol": "SSL", "ssl_cafile": 42}, "ssl_cafile", "must be a path"),
        ({"security_protocol": "SSL", "ssl_check_hostname": "no"}, "ssl_check_hostname", "True"),
        (
            {"security_protocol": "SSL", "ssl_insecure_skip_verify": 1},
            "ssl_insecure_skip_verify",
            "True or False",
        ),
        ({"security_protocol": "SSL", "ssl_context": "ctx"}, "ssl_context", "ssl.SSLContext"),
        ({"ssl_check_hostname": False}, "ssl_check_hostname", "is a TLS option"),
        (
            {"security_protocol": "SASL_PLAINTEXT", "ssl_check_hostname": False},
            "ssl_check_hostname",
            "TLS option",
        ),
        ({"sasl_mechanism": "PLAIN"}, "sasl_mechanism", "is a SASL option"),
        ({"security_protocol": "SSL", "sasl_plain_username": "u"}, "sasl_plain_username", "SASL"),
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism", "is required"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"},
            "sasl_mechanism",
            "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "u",
            },
            "sasl_plain_password",
            "is required",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_password": "p",
            },
            "sasl_plain_username",
            "is required",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "",
                "sasl_plain_password": "p",
            },
            "sasl_plain_username",
            "non-empty",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "a\0b",
                "sasl_plain_password": "p",
            },
            "sasl_plain_username",
            "NUL",
        ),
    ],
)
def test_invalid_options_name_the_argument(
    options: dict[str, Any], argument: str, problem: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=problem) as caught:
        SecurityConfig(**options)
    assert caught.value.argument == argument


def test_client_certificate_options_go_together(pki: TestPki) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SecurityConfig(security_protocol="SSL", ssl_keyfile=str(pki.client_key))
    assert caught.value.argument == "ssl_keyfile"
    with pytest.raises(InvalidArgumentError) as caught:
        SecurityConfig(security_protocol="SSL", ssl_password=KEY_SECRET)
    assert caught.value.argument == "ssl_password"
    assert KEY_SECRET not in caught.value.message


def test_ssl_context_replaces_the_file_options(pki: TestPki) -> None:
    context = ssl.create_default_context()
    assert SecurityConfig(security_protocol="SSL", ssl_context=context).ssl_context is context
    with pytest.raises(InvalidArgumentError, match="ssl_context") as caught:
        SecurityConfig(security_protocol="SSL", ssl_context=context, ssl_cafile=str(pki.ca_file))
    assert caught.value.argument == "ssl_cafile"


@pytest.mark.parametrize("bad", [b"bytes-password", 12345, ""])
@pytest.mark.parametrize("argument", ["sasl_plain_password", "ssl_password"])
def test_a_bad_password_is_refused_without_being_echoed(
    pki: TestPki, argument: str, bad: Any
) -> None:
    options: dict[str, Any] = {"ssl_certfile": str(pki.client_cert), argument: bad}
    with pytest.raises(InvalidArgumentError) as caught:
        sasl(**options)
    assert caught.value.argument == argument
    if bad:
        assert str(bad) not in caught.value.message
        assert repr(bad) not in caught.value.message


# -- secrets are not shown ----------------------------------------------------------------


def test_passwords_are_absent_from_every_repr(pki: TestPki) -> None:
    config = sasl(
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
        ssl_password=KEY_SECRET,
    )
    sink = SinkConfig.build("h:1", security=config)
    connection = ConnectionConfig((BrokerAddress("h", 1),), security=config)
    for text in (repr(config), str(config), repr(sink), repr(connection)):
        assert SECRET not in text
        assert KEY_SECRET not in text
        assert "alice" in text  # the user name is not a secret
    # ...while the values themselves are kept.
    assert config.sasl_plain_password == SECRET
    assert config.ssl_password == KEY_SECRET
    assert pickle.loads(pickle.dumps(SinkConfig.build("h:1", security=sasl()))).security == sasl()


# -- the same names everywhere --------------------------------------------------------------


def test_sink_options_take_the_security_names() -> None:
    config = SinkConfig.build(
        "h:1",
        acks=1,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="scram-sha-256",
        sasl_plain_username="alice",
        sasl_plain_password=SECRET,
    )
    assert config.acks == 1
    assert config.security == SecurityConfig(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="alice",
        sasl_plain_password=SECRET,
    )
    assert set(SECURITY_OPTIONS) == {f.name for f in dataclasses.fields(SecurityConfig)}


def test_sink_options_name_unknown_and_conflicting_options() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SinkConfig.build("h:1", ssl_cafle="/x")
    assert caught.value.argument == "ssl_cafle"
    with pytest.raises(InvalidArgumentError, match="either security or its options") as caught:
        SinkConfig.build("h:1", security=SecurityConfig(), security_protocol="SSL")
    assert caught.value.argument == "security_protocol"
    with pytest.raises(InvalidArgumentError) as caught:
        SinkConfig.build("h:1", security="SSL")
    assert caught.value.argument == "security"
    with pytest.raises(InvalidArgumentError) as caught:
        SinkConfig.build("h:1", security_protocol="SASL_SSL")
    assert caught.value.argument == "sasl_mechanism"


def test_connection_takes_the_same_names() -> None:
    cluster = FakeCluster(1)
    cluster.sasl_users["alice"] = SECRET
    options: dict[str, Any] = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SECRET,
    }
    with Connection(host="fake", port=9001, transport=cluster.transport(), **options) as conn:
        assert conn.config.security == SecurityConfig(**options)
        assert SECRET not in repr(conn)
    with pytest.raises(InvalidArgumentError) as caught:
        Connection(host="fake", port=9001, transport=cluster.transport(), sasl_mechansm="PLAIN")
    assert caught.value.argument == "sasl_mechansm"
    assert "Connection" in caught.value.message
    with pytest.raises(InvalidArgumentError) as caught:
        Connection(
            host="fake",
            port=9001,
            transport=cluster.transport(),
            security=SecurityConfig(),
            security_protocol="SSL",
        )
    assert caught.value.argument == "security_protocol"


def test_connection_raises_a_refused_authentication_at_once() -> None:
    cluster = FakeCluster(3)
    cluster.sasl_users["alice"] = SECRET
    transport = cluster.transport()
    with pytest.raises(AuthenticationError) as caught:
        Connection(
            broker_list=[f"fake:{b.port}" for b in cluster.brokers.values()],
            transport=transport,
            send_max_attempts=4,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username="alice",
            sasl_plain_password="not-" + SECRET,
        )
    # One broker was asked, once: the others take the same credentials.
    assert len(transport.connects) == 1
    assert cluster.sasl_refusals == 1
    assert caught.value.context["mechanism"] == "PLAIN"
    assert caught.value.context["broker"] == "fake:9001"
    assert SECRET not in repr(caught.value)


# -- the SSL context ---------------------------------------------------------------------


def test_the_context_verifies_certificates_and_host_names_by_default(pki: TestPki) -> None:
    context = create_ssl_context(
        SecurityConfig(security_protocol="SSL", ssl_cafile=str(pki.ca_file))
    )
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert any("kafka-sink test CA" in str(ca) for ca in context.get_ca_certs())


def test_host_name_checking_can_be_turned_off_alone(pki: TestPki) -> None:
    context = create_ssl_context(
        SecurityConfig(
            security_protocol="SSL", ssl_cafile=str(pki.ca_file), ssl_check_hostname=False
        )
    )
    assert context is not None
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_skipping_verification_warns(pki: TestPki) -> None:
    with pytest.warns(InsecureTlsWarning, match="not verified"):
        context = create_ssl_context(
            SecurityConfig(security_protocol="SSL", ssl_insecure_skip_verify=True)
        )
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False


def test_no_context_without_tls_and_the_callers_context_as_it_is() -> None:
    assert create_ssl_context(SecurityConfig()) is None
    assert isinstance(transport_for(SecurityConfig()), TcpTransport)
    mine = ssl.create_default_context()
    config = SecurityConfig(
        security_protocol="SASL_SSL",
        ssl_context=mine,
        sasl_mechanism="PLAIN",
        sasl_plain_username="u",
        sasl_plain_password=SECRET,
    )
    assert create_ssl_context(config) is mine
    assert isinstance(transport_for(config), TlsTransport)


def test_the_client_certificate_is_loaded_with_its_password(pki: TestPki) -> None:
    config = SecurityConfig(
        security_protocol="SSL",
        ssl_cafile=str(pki.ca_file),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
        ssl_password=pki.client_key_password,
    )
    assert create_ssl_context(config) is not None


def test_an_encrypted_key_without_its_password_is_an_error_not_a_prompt(pki: TestPki) -> None:
    config = SecurityConfig(
        security_protocol="SSL",
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
    )
    with pytest.raises(InvalidArgumentError, match="encrypted") as caught:
        create_ssl_context(config)
    assert caught.value.argument == "ssl_password"


def test_a_wrong_key_password_names_the_key_without_the_password(pki: TestPki) -> None:
    config = SecurityConfig(
        security_protocol="SSL",
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
        ssl_password=KEY_SECRET,
    )
    with pytest.raises(InvalidArgumentError, match="wrong ssl_password") as caught:
        create_ssl_context(config)
    assert caught.value.argument == "ssl_keyfile"
    assert KEY_SECRET not in str(caught.value)


def test_a_file_that_is_no_ca_bundle_names_the_option(pki: TestPki, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("hello\n")
    with pytest.raises(InvalidArgumentError, match="cannot load CA") as caught:
        create_ssl_context(SecurityConfig(security_protocol="SSL", ssl_cafile=str(bogus)))
    assert caught.value.argument == "ssl_cafile"


def test_the_network_client_builds_its_context_when_it_is_made(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("hello\n")
    with pytest.raises(InvalidArgumentError) as caught:
        NetworkClient(
            client_id="t", security=SecurityConfig(security_protocol="SSL", ssl_cafile=str(bogus))
        )
    assert caught.value.argument == "ssl_cafile"
    with pytest.raises(InvalidArgumentError) as caught:
        NetworkClient(client_id="t", security="SSL")  # type: ignore[arg-type]  # a str on purpose
    assert caught.value.argument == "security"
