"""A throw-away PKI for the TLS listeners of the test brokers, made with openssl and keytool.

:func:`make_test_pki` writes into a folder:

* a test CA (``ca.pem``) and a second, unrelated CA (``other-ca.pem``) that
  signed nothing the broker uses, for "untrusted certificate" tests;
* the broker's certificate, issued by the test CA for ``IP:127.0.0.1`` only (so
  that connecting by the name ``localhost`` fails host-name checking), in a
  PKCS#12 keystore made by ``openssl pkcs12``;
* a truststore holding the test CA, made by ``keytool -importcert``, with which
  the broker checks client certificates (mutual TLS);
* a client certificate and its key, the key encrypted with a password.

Every key is fresh for each cluster; nothing is reused between runs. With
``keystores=False`` only the PEM files are made (no Java tool is needed).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.brokers.common import BrokerInstallError
from tests.brokers.install import run_tool

__all__ = ["TestPki", "make_test_pki"]

#: The host (an IP address) the broker certificate is issued for.
BROKER_CERT_HOST = "127.0.0.1"

_REQ_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

_SERVER_EXT = f"""\
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:{BROKER_CERT_HOST}
"""

_CLIENT_EXT = """\
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""


@dataclass(frozen=True, slots=True)
class TestPki:
    """Paths and passwords of the material :func:`make_test_pki` made."""

    __test__ = False  # not a test class, despite its name

    ca_file: Path
    other_ca_file: Path
    broker_cert: Path
    broker_key: Path
    keystore: Path | None
    keystore_password: str
    truststore: Path | None
    truststore_password: str
    client_cert: Path
    client_key: Path
    client_key_password: str


def _openssl(*args: str, what: str) -> None:
    run_tool(["openssl", *args], what=what)


def _make_ca(folder: Path, name: str, cn: str) -> tuple[Path, Path]:
    config = folder / f"{name}.cnf"
    config.write_text(_REQ_CONFIG.format(cn=cn))
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    _openssl(
        "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", str(key), "-out", str(cert), "-days", "30",
        "-config", str(config), "-extensions", "ca",
        what=f"making the {cn}",
    )  # fmt: skip
    return key, cert


def _issue(
    folder: Path,
    name: str,
    cn: str,
    extensions: str,
    ca: tuple[Path, Path],
    key_password: str | None = None,
) -> tuple[Path, Path]:
    config = folder / f"{name}.cnf"
    config.write_text(_REQ_CONFIG.format(cn=cn))
    ext = folder / f"{name}.ext"
    ext.write_text(extensions)
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    protect = ["-passout", f"pass:{key_password}"] if key_password else ["-nodes"]
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", *protect, "-sha256",
        "-keyout", str(key), "-out", str(csr), "-config", str(config),
        what=f"making the key of the {cn}",
    )  # fmt: skip
    ca_key, ca_cert = ca
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "30", "-sha256", "-extfile", str(ext),
        what=f"signing the certificate of the {cn}",
    )  # fmt: skip
    return key, cert


def make_test_pki(folder: Path, *, keystores: bool = True) -> TestPki:
    """Make the CA, broker keystore, truststore and client certificate in ``folder``."""
    for tool in ("openssl", "keytool") if keystores else ("openssl",):
        if shutil.which(tool) is None:
            raise BrokerInstallError(f"{tool} is needed to make the test brokers' TLS material")
    folder.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(folder, "ca", "kafka-sink test CA")
    _, other_ca = _make_ca(folder, "other-ca", "kafka-sink untrusted CA")
    broker_key, broker_cert = _issue(folder, "broker", "kafka-sink test broker", _SERVER_EXT, ca)
    client_password = "client-key-passphrase"
    client_key, client_cert = _issue(
        folder, "client", "kafka-sink test client", _CLIENT_EXT, ca, client_password
    )
    store_password = "broker-store-pass"
    trust_password = "broker-trust-pass"
    if not keystores:
        return TestPki(
            ca_file=ca[1],
            other_ca_file=other_ca,
            broker_cert=broker_cert,
            broker_key=broker_key,
            keystore=None,
            keystore_password=store_password,
            truststore=None,
            truststore_password=trust_password,
            client_cert=client_cert,
            client_key=client_key,
            client_key_password=client_password,
        )
    keystore = folder / "broker.keystore.p12"
    _openssl(
        "pkcs12", "-export", "-in", str(broker_cert), "-inkey", str(broker_key),
        "-certfile", str(ca[1]), "-name", "broker", "-out", str(keystore),
        "-passout", f"pass:{store_password}",
        what="making the broker keystore",
    )  # fmt: skip
    truststore = folder / "broker.truststore.p12"
    run_tool(
        [
            "keytool", "-importcert", "-noprompt", "-alias", "test-ca",
            "-file", str(ca[1]), "-keystore", str(truststore),
            "-storetype", "PKCS12", "-storepass", trust_password,
        ],
        what="making the broker truststore",
    )  # fmt: skip
    return TestPki(
        ca_file=ca[1],
        other_ca_file=other_ca,
        broker_cert=broker_cert,
        broker_key=broker_key,
        keystore=keystore,
        keystore_password=store_password,
        truststore=truststore,
        truststore_password=trust_password,
        client_cert=client_cert,
        client_key=client_key,
        client_key_password=client_password,
    )
