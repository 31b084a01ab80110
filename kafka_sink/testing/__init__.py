"""A throw-away Kafka cluster for tests: librdkafka's mock cluster, driven from Python.

Theory of operation
-------------------
librdkafka (the C client under confluent-kafka) ships a *mock cluster*: a set of
in-memory brokers that speak the Kafka protocol on loopback sockets and accept
fault injection (brokers going down, leaders moving, errors pushed onto request
types, added latency). :class:`MockCluster` loads the librdkafka shared library
bundled in the ``confluent-kafka`` wheel through :mod:`ctypes` (nothing of
confluent-kafka's Python API is imported) and runs the cluster in a **child
process**. The parent sends one JSON command per line on the child's stdin and
reads one JSON answer per line from its stdout. This keeps a crash in C out of
the test process, and ties the cluster's life to its owner: the child exits when
its stdin closes, which the operating system does for us when the parent dies.

What the mock cluster does (librdkafka 2.16)
--------------------------------------------
* **Unknown topics** are created on the first Metadata request that allows it
  (Metadata v0-v3, or v4+ with ``allow_auto_topic_creation``), with 4 partitions
  and a replication factor of ``min(3, num_brokers)``. A Produce request for an
  unknown topic is answered with ``UNKNOWN_TOPIC_OR_PARTITION`` and creates
  nothing.
* **acks** is read and ignored: every Produce request gets a response, even with
  ``acks=0`` (a real broker sends none), and ``acks=1`` and ``acks=-1`` behave
  the same (replicas are only bookkeeping). Batches are stored as sent, without
  checking their CRC; only magic 2 (v2 record batches) is accepted.
* Each partition keeps at most 5 MiB or 100 000 batches; older batches are
  dropped and the log start offset moves on.
* There is no CreateTopics (19) nor SASL (17, 36): create topics with
  :meth:`MockCluster.create_topic`. ApiVersions answers v0-v2; Produce goes to
  v10, Metadata to v13, InitProducerId to v4.
* Metadata names controller id 0, which is no broker, until
  :meth:`MockCluster.set_controller` is called. Produce answers carry a
  log-append time of 1234 whatever the topic's timestamp type.

The ``rd_kafka_mock_*`` functions are an experimental librdkafka API, outside its
stability guarantees; this module checks that each function it needs exists and
names the missing one otherwise.

Run ``python -m kafka_sink.testing --brokers 3 --topic logs:6`` for a standalone
cluster that prints its bootstrap servers and runs until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from kafka_sink.errors import InvalidArgumentError, KafkaSinkError

__all__ = ["MockCluster", "MockClusterError", "MockRequest", "find_librdkafka"]

#: Environment variable naming an explicit librdkafka shared library to load.
LIBRARY_ENV_VAR = "KAFKA_SINK_LIBRDKAFKA"

_LIBRARY_PATTERNS = ("librdkafka*.so*", "librdkafka*.dylib", "librdkafka*.dll", "rdkafka*.dll")


class MockClusterError(KafkaSinkError):
    """The mock cluster could not be started, or refused or failed a command.

    ``code`` is librdkafka's error code when the C API returned one (for example
    -190, ``_UNKNOWN_BROKER``), else -1.
    """


class MockRequest(NamedTuple):
    """One request a mock broker received while request tracking was on.

    A named tuple rather than a dataclass so that tests can unpack it as the
    ``(broker_id, api_key, timestamp_us)`` triple they usually want.
    """

    broker_id: int
    api_key: int
    timestamp_us: int
    """When the broker received the request, in microseconds of librdkafka's
    monotonic clock: only differences between timestamps are meaningful."""


# ---------------------------------------------------------------------------
# Locating librdkafka
# ---------------------------------------------------------------------------


def find_librdkafka() -> Path:
    """Return the path of the librdkafka shared library to load.

    Looks, in order, at ``$KAFKA_SINK_LIBRDKAFKA``, at the copy bundled in the
    installed ``confluent-kafka`` wheel (``confluent_kafka.libs/`` on Linux,
    ``.dylibs/`` on macOS), then at a system-wide ``librdkafka``. The
    confluent-kafka package is located without being imported.

    Raises :class:`MockClusterError` naming every place it looked.

    Example::

        >>> find_librdkafka().name  # doctest: +SKIP
        'librdkafka-0cb94173.so.1'
    """
    override = os.environ.get(LIBRARY_ENV_VAR)
    if override:
        path = Path(override)
        if not path.is_file():
            raise MockClusterError(f"${LIBRARY_ENV_VAR}={override!r} is not a file")
        return path

    searched: list[str] = []
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is not None and spec.submodule_search_locations:
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        # auditwheel (Linux) and delvewheel (Windows) put vendored libraries
        # beside the package, delocate (macOS) puts them inside it.
        for folder in (
            package_dir.parent / "confluent_kafka.libs",
            package_dir / ".dylibs",
            package_dir,
        ):
            searched.append(str(folder))
            for pattern in _LIBRARY_PATTERNS:
                found = sorted(folder.glob(pattern))
                if found:
                    return found[0]
    else:
        searched.append("the confluent_kafka package (not installed)")

    system = ctypes.util.find_library("rdkafka")
    searched.append("the system library path")
    if system:
        return Path(system)
    raise MockClusterError(
        "librdkafka was not found; install the test dependency with "
        "`pip install confluent-kafka` or set "
        f"${LIBRARY_ENV_VAR} to a librdkafka shared library. Looked in: " + ", ".join(searched)
    )


# ---------------------------------------------------------------------------
# The C side (runs in the child process)
# ---------------------------------------------------------------------------

_c_void_pp = ctypes.POINTER(ctypes.c_void_p)

# (restype, argtypes) of each function used, checked against rdkafka.h and
# rdkafka_mock.h of librdkafka 2.16. rd_kafka_resp_err_t is a C enum: an int.
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "rd_kafka_version_str": (ctypes.c_char_p, []),
    "rd_kafka_err2str": (ctypes.c_char_p, [ctypes.c_int]),
    "rd_kafka_err2name": (ctypes.c_char_p, [ctypes.c_int]),
    "rd_kafka_conf_new": (ctypes.c_void_p, []),
    "rd_kafka_conf_destroy": (None, [ctypes.c_void_p]),
    "rd_kafka_conf_set": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t],
    ),
    "rd_kafka_new": (
        ctypes.c_void_p,
        [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t],
    ),
    "rd_kafka_destroy": (None, [ctypes.c_void_p]),
    "rd_kafka_mem_free": (None, [ctypes.c_void_p, ctypes.c_void_p]),
    "rd_kafka_mock_cluster_new": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
    "rd_kafka_mock_cluster_destroy": (None, [ctypes.c_void_p]),
    "rd_kafka_mock_cluster_bootstraps": (ctypes.c_char_p, [ctypes.c_void_p]),
    "rd_kafka_mock_topic_create": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int],
    ),
    "rd_kafka_mock_topic_set_error": (None, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]),
    "rd_kafka_mock_broker_set_down": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int32]),
    "rd_kafka_mock_broker_set_up": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int32]),
    "rd_kafka_mock_broker_set_rtt": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int],
    ),
    "rd_kafka_mock_partition_set_leader": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32],
    ),
    "rd_kafka_mock_push_request_errors_array": (
        None,
        [ctypes.c_void_p, ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)],
    ),
    # Variadic: (err, rtt_ms) int pairs follow the fixed arguments. ctypes
    # passes extra arguments with the platform's default promotions, which is
    # what a C variadic callee expects on x86-64 and aarch64 Linux.
    "rd_kafka_mock_broker_push_request_error_rtts": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int16, ctypes.c_size_t],
    ),
    "rd_kafka_mock_broker_error_stack_cnt": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int16, ctypes.POINTER(ctypes.c_size_t)],
    ),
    "rd_kafka_mock_clear_request_errors": (None, [ctypes.c_void_p, ctypes.c_int16]),
    "rd_kafka_mock_set_controller_id": (None, [ctypes.c_void_p, ctypes.c_int32]),
    "rd_kafka_mock_set_apiversion": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.c_int16, ctypes.c_int16, ctypes.c_int16],
    ),
    "rd_kafka_mock_start_request_tracking": (None, [ctypes.c_void_p]),
    "rd_kafka_mock_stop_request_tracking": (None, [ctypes.c_void_p]),
    "rd_kafka_mock_get_requests": (_c_void_pp, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]),
    "rd_kafka_mock_clear_requests": (None, [ctypes.c_void_p]),
    "rd_kafka_mock_request_id": (ctypes.c_int32, [ctypes.c_void_p]),
    "rd_kafka_mock_request_api_key": (ctypes.c_int16, [ctypes.c_void_p]),
    "rd_kafka_mock_request_timestamp": (ctypes.c_int64, [ctypes.c_void_p]),
    "rd_kafka_mock_request_destroy": (None, [ctypes.c_void_p]),
    "rd_kafka_mock_request_destroy_array": (None, [_c_void_pp, ctypes.c_size_t]),
}

# Functions without which no cluster can be started; the others are checked
# when first used so that an older librdkafka still gives a working cluster.
_REQUIRED = (
    "rd_kafka_version_str",
    "rd_kafka_err2str",
    "rd_kafka_conf_new",
    "rd_kafka_conf_destroy",
    "rd_kafka_conf_set",
    "rd_kafka_new",
    "rd_kafka_destroy",
    "rd_kafka_mock_cluster_new",
    "rd_kafka_mock_cluster_destroy",
    "rd_kafka_mock_cluster_bootstraps",
)

_RD_KAFKA_PRODUCER = 0
# Highest Kafka API key the mock knows of (ConsumerGroupHeartbeat is 68, the
# share group APIs reach 79); resetting clears pushed errors up to here.
_MAX_API_KEY = 100
_RD_KAFKA_CONF_OK = 0
# librdkafka's variadic error pushes are split in chunks so that one call never
# nears ctypes' limit on the number of arguments; the mock appends each chunk
# to the end of the broker's error stack, so order is kept.
_RTT_CHUNK = 64


class _NativeError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Native:
    """librdkafka's functions with their C prototypes declared."""

    def __init__(self, path: Path) -> None:
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise _NativeError(f"cannot load librdkafka from {path}: {exc}", -1) from exc
        self.path = path
        missing = [name for name in _REQUIRED if not hasattr(self._lib, name)]
        if missing:
            raise _NativeError(f"{path} lacks the mock cluster API ({', '.join(missing)})", -1)

    def __call__(self, name: str, *args: Any) -> Any:
        try:
            function = getattr(self._lib, name)
        except AttributeError:
            raise _NativeError(
                f"this librdkafka ({self.version}) has no {name}(); a newer confluent-kafka "
                "is needed for this mock cluster feature",
                -1,
            ) from None
        restype, argtypes = _PROTOTYPES[name]
        function.restype = restype
        function.argtypes = argtypes
        return function(*args)

    @property
    def version(self) -> str:
        version: bytes = self("rd_kafka_version_str")
        return version.decode()

    def check(self, what: str, err: int) -> None:
        """Raise for a non-zero rd_kafka_resp_err_t."""
        if err:
            text = self("rd_kafka_err2str", err).decode()
            raise _NativeError(f"{what}: {text} (error {err})", err)


class _ClusterServer:
    """Owns one rd_kafka_t and the mock cluster attached to it (child side)."""

    def __init__(self, native: _Native, num_brokers: int, debug: str) -> None:
        self._native = native
        conf = native("rd_kafka_conf_new")
        errstr = ctypes.create_string_buffer(512)
        # The handle only exists to own the cluster; it never connects anywhere.
        # Its "no bootstrap.servers" notice is below log level 4.
        settings = {"log_level": "4"}
        if debug:
            settings["debug"] = debug
        for key, value in settings.items():
            res = native("rd_kafka_conf_set", conf, key.encode(), value.encode(), errstr, 512)
            if res != _RD_KAFKA_CONF_OK:
                native("rd_kafka_conf_destroy", conf)
                raise _NativeError(f"{key}={value!r}: {errstr.value.decode()}", -1)
        # rd_kafka_new() takes ownership of conf only when it succeeds.
        rk = native("rd_kafka_new", _RD_KAFKA_PRODUCER, conf, errstr, 512)
        if not rk:
            native("rd_kafka_conf_destroy", conf)
            raise _NativeError(f"rd_kafka_new failed: {errstr.value.decode()}", -1)
        self._rk: int = rk
        cluster = native("rd_kafka_mock_cluster_new", rk, num_brokers)
        if not cluster:
            native("rd_kafka_destroy", rk)
            raise _NativeError(f"rd_kafka_mock_cluster_new({num_brokers}) failed", -1)
        self._cluster: int | None = cluster
        self.bootstrap_servers: str = native("rd_kafka_mock_cluster_bootstraps", cluster).decode()
        self._tracking = False
        self._kept_requests: list[list[int]] = []
        self._ops: dict[str, Callable[..., Any]] = {
            "create_topic": self.create_topic,
            "broker_down": self.broker_down,
            "broker_up": self.broker_up,
            "set_broker_rtt": self.set_broker_rtt,
            "set_partition_leader": self.set_partition_leader,
            "push_request_errors": self.push_request_errors,
            "broker_push_request_error_rtts": self.broker_push_request_error_rtts,
            "broker_error_stack_count": self.broker_error_stack_count,
            "clear_request_errors": self.clear_request_errors,
            "topic_set_error": self.topic_set_error,
            "set_api_version": self.set_api_version,
            "set_controller": self.set_controller,
            "reset": self.reset,
            "start_request_tracking": self.start_request_tracking,
            "stop_request_tracking": self.stop_request_tracking,
            "requests": self.requests,
            "clear_requests": self.clear_requests,
        }

    @property
    def cluster(self) -> int:
        if self._cluster is None:
            raise _NativeError("the mock cluster is closed", -1)
        return self._cluster

    def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        handler = self._ops.get(op)
        if handler is None:
            raise _NativeError(f"unknown mock cluster command {op!r}", -1)
        return handler(**args)

    def close(self) -> None:
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            self._native("rd_kafka_mock_cluster_destroy", cluster)
            self._native("rd_kafka_destroy", self._rk)

    # -- commands: arguments were validated by the parent ------------------

    def create_topic(self, topic: str, partitions: int, replication_factor: int) -> None:
        err = self._native(
            "rd_kafka_mock_topic_create",
            self.cluster,
            topic.encode(),
            partitions,
            replication_factor,
        )
        self._native.check(f"create_topic({topic!r})", err)

    def broker_down(self, broker_id: int) -> None:
        err = self._native("rd_kafka_mock_broker_set_down", self.cluster, broker_id)
        self._native.check(f"broker_down({broker_id})", err)

    def broker_up(self, broker_id: int) -> None:
        err = self._native("rd_kafka_mock_broker_set_up", self.cluster, broker_id)
        self._native.check(f"broker_up({broker_id})", err)

    def set_broker_rtt(self, broker_id: int, rtt_ms: int) -> None:
        err = self._native("rd_kafka_mock_broker_set_rtt", self.cluster, broker_id, rtt_ms)
        self._native.check(f"set_broker_rtt({broker_id})", err)

    def set_partition_leader(self, topic: str, partition: int, broker_id: int) -> None:
        err = self._native(
            "rd_kafka_mock_partition_set_leader",
            self.cluster,
            topic.encode(),
            partition,
            broker_id,
        )
        self._native.check(f"set_partition_leader({topic!r}, {partition})", err)

    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        array = (ctypes.c_int * len(errors))(*errors)
        self._native(
            "rd_kafka_mock_push_request_errors_array", self.cluster, api_key, len(errors), array
        )

    def broker_push_request_error_rtts(
        self, broker_id: int, api_key: int, errors_and_rtts: list[list[int]]
    ) -> None:
        for start in range(0, len(errors_and_rtts), _RTT_CHUNK):
            chunk = errors_and_rtts[start : start + _RTT_CHUNK]
            flat = [ctypes.c_int(value) for pair in chunk for value in pair]
            err = self._native(
                "rd_kafka_mock_broker_push_request_error_rtts",
                self.cluster,
                broker_id,
                api_key,
                len(chunk),
                *flat,
            )
            self._native.check(f"broker_push_request_error_rtts({broker_id})", err)

    def broker_error_stack_count(self, broker_id: int, api_key: int) -> int:
        count = ctypes.c_size_t(0)
        err = self._native(
            "rd_kafka_mock_broker_error_stack_cnt",
            self.cluster,
            broker_id,
            api_key,
            ctypes.byref(count),
        )
        self._native.check(f"broker_error_stack_count({broker_id})", err)
        return count.value

    def clear_request_errors(self, api_key: int) -> None:
        self._native("rd_kafka_mock_clear_request_errors", self.cluster, api_key)

    def topic_set_error(self, topic: str, error_code: int) -> None:
        self._native("rd_kafka_mock_topic_set_error", self.cluster, topic.encode(), error_code)

    def set_api_version(self, api_key: int, min_version: int, max_version: int) -> None:
        err = self._native(
            "rd_kafka_mock_set_apiversion", self.cluster, api_key, min_version, max_version
        )
        self._native.check(f"set_api_version({api_key})", err)

    def set_controller(self, broker_id: int) -> None:
        self._native("rd_kafka_mock_set_controller_id", self.cluster, broker_id)

    def reset(self, topics_with_errors: list[str]) -> None:
        self.broker_up(-1)
        self.set_broker_rtt(-1, 0)
        for api_key in range(_MAX_API_KEY + 1):
            self.clear_request_errors(api_key)
        for topic in topics_with_errors:
            self.topic_set_error(topic, 0)
        with contextlib.suppress(_NativeError):  # librdkafka without request tracking
            self.stop_request_tracking()
            self.clear_requests()

    def start_request_tracking(self) -> None:
        self._native("rd_kafka_mock_start_request_tracking", self.cluster)
        self._tracking = True
        self._kept_requests = []

    def stop_request_tracking(self) -> None:
        # librdkafka 2.16 drops the recorded requests when tracking stops (its
        # header says otherwise); keep a copy so that they can still be read.
        self._kept_requests = self.requests()
        self._native("rd_kafka_mock_stop_request_tracking", self.cluster)
        self._tracking = False

    def requests(self) -> list[list[int]]:
        if not self._tracking:
            return self._kept_requests
        count = ctypes.c_size_t(0)
        array = self._native("rd_kafka_mock_get_requests", self.cluster, ctypes.byref(count))
        if not array:
            return []
        try:
            return [
                [
                    int(self._native("rd_kafka_mock_request_id", array[i])),
                    int(self._native("rd_kafka_mock_request_api_key", array[i])),
                    int(self._native("rd_kafka_mock_request_timestamp", array[i])),
                ]
                for i in range(count.value)
            ]
        finally:
            self._free_requests(array, count.value)

    def _free_requests(self, array: Any, count: int) -> None:
        try:
            self._native("rd_kafka_mock_request_destroy_array", array, count)
        except _NativeError:
            # Before destroy_array existed, each request and then the array
            # itself were freed separately.
            for i in range(count):
                self._native("rd_kafka_mock_request_destroy", array[i])
            self._native("rd_kafka_mem_free", None, ctypes.cast(array, ctypes.c_void_p))

    def clear_requests(self) -> None:
        self._native("rd_kafka_mock_clear_requests", self.cluster)
        self._kept_requests = []


def _serve(library: Path, num_brokers: int, debug: str, owned_log: Path | None) -> int:
    """Child main loop: one JSON command per stdin line, one answer per stdout line.

    ``owned_log`` is a log file nobody else will delete if the parent dies: it
    is removed on an orderly exit. After a crash it stays, for the parent to
    quote.
    """
    # Keep the protocol on a private copy of stdout and point fd 1 at stderr,
    # so that anything else printing to stdout (C code included) cannot
    # corrupt the answers.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # A Ctrl-C in the terminal reaches the whole process group; the parent
    # decides when the cluster ends (by closing stdin), not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def send(message: Mapping[str, Any]) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    try:
        native = _Native(library)
        server = _ClusterServer(native, num_brokers, debug)
    except _NativeError as exc:
        send({"event": "error", "error": str(exc)})
        return 1
    _exit_when_orphaned(owned_log)
    send(
        {
            "event": "ready",
            "bootstrap_servers": server.bootstrap_servers,
            "librdkafka_version": native.version,
        }
    )
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            try:
                result = server.dispatch(request["op"], request.get("args", {}))
            except _NativeError as exc:
                send({"id": request.get("id"), "ok": False, "error": str(exc), "code": exc.code})
            except Exception as exc:  # a bug or a bad argument: report it, keep serving
                text = f"{request.get('op')}: {type(exc).__name__}: {exc}"
                send({"id": request.get("id"), "ok": False, "error": text, "code": -1})
            else:
                send({"id": request.get("id"), "ok": True, "result": result})
    finally:
        server.close()
        if owned_log is not None:
            with contextlib.suppress(OSError):
                owned_log.unlink()
    return 0


def _exit_when_orphaned(owned_log: Path | None) -> None:
    """Exit if the parent process goes away.

    Stdin reaching end-of-file is the normal signal, but a process the parent
    forked may have inherited the pipe and keep it open; watching the parent's
    pid covers that case.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                if owned_log is not None:
                    with contextlib.suppress(OSError):
                        owned_log.unlink()
                os._exit(0)

    threading.Thread(target=watch, name="mock-cluster-orphan-watch", daemon=True).start()


# ---------------------------------------------------------------------------
# The parent side
# ---------------------------------------------------------------------------


def _stop_child(process: subprocess.Popen[str], log_path: Path, owns_log: bool) -> None:
    """Finalizer for a MockCluster that was never closed: end the child, quickly."""
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
    if owns_log:
        with contextlib.suppress(OSError):
            log_path.unlink()


class MockCluster:
    """librdkafka's in-memory Kafka cluster, in a child process, with fault injection.

    Brokers have ids ``1..num_brokers`` and listen on ``127.0.0.1`` (ephemeral
    ports). ``topics`` maps topic names to partition counts, created with
    ``replication_factor`` replicas (default ``min(3, num_brokers)``).

    Use it as a context manager, or call :meth:`close` (idempotent)::

        from confluent_kafka import Producer
        from kafka_sink.testing import MockCluster

        with MockCluster(3, topics={"logs": 2}) as cluster:
            producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
            cluster.set_partition_leader("logs", 0, broker_id=2)
            cluster.push_request_errors(0, [6])  # the next Produce: NOT_LEADER_OR_FOLLOWER
            producer.produce("logs", b"hello", partition=0)
            producer.flush(10)

    ``api_key`` arguments are Kafka API keys (Produce is 0, Metadata 3) and
    error codes are Kafka's (or librdkafka's negative local codes, e.g. -195
    ``_TRANSPORT`` to make the broker drop the connection). All methods are
    thread-safe and raise :class:`MockClusterError` when the cluster refuses the
    command or its process has died (the message then ends with its log).
    """

    def __init__(
        self,
        num_brokers: int = 3,
        *,
        topics: Mapping[str, int] | None = None,
        replication_factor: int | None = None,
        debug: str = "",
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        command_timeout: float = 30.0,
    ) -> None:
        if not isinstance(num_brokers, int) or num_brokers < 1:
            raise InvalidArgumentError("num_brokers", f"must be an int >= 1, not {num_brokers!r}")
        self._num_brokers = num_brokers
        if replication_factor is None:
            replication_factor = min(3, num_brokers)
        self._check_replication_factor(replication_factor)
        for name, partitions in (topics or {}).items():
            self._check_topic(name, partitions)
        self._command_timeout = command_timeout
        self._lock = threading.Lock()
        self._next_id = 0
        self._closed = False
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._topics_with_errors: set[str] = set()

        library = find_librdkafka()
        self._owns_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="kafka-sink-mock-", suffix=".log")
            os.close(fd)
            log_path = name
        self._log_path = Path(log_path)
        argv = [
            sys.executable,
            "-m",
            "kafka_sink.testing",
            "--serve",
            "--library",
            str(library),
            "--brokers",
            str(num_brokers),
        ]
        if debug:
            argv += ["--debug", debug]
        if self._owns_log:
            argv += ["--owned-log", str(self._log_path)]
        # The child must import this very kafka_sink, even when the parent
        # found it through a sys.path entry the child would not have.
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        # O_APPEND: the child writes at the end whatever the parent reads.
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        self._finalizer = weakref.finalize(
            self, _stop_child, self._process, self._log_path, self._owns_log
        )
        self._reader = threading.Thread(
            target=self._read_answers, name=f"mock-cluster-{self._process.pid}", daemon=True
        )
        self._reader.start()
        try:
            ready = self._wait_ready(startup_timeout)
            self._bootstrap_servers: str = ready["bootstrap_servers"]
            self._librdkafka_version: str = ready["librdkafka_version"]
            for name, partitions in (topics or {}).items():
                self.create_topic(name, partitions, replication_factor)
        except BaseException:
            self.close()
            raise

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Destroy the cluster and end its process; safe to call more than once.

        The child is asked to exit by closing its stdin; it is killed if it has
        not exited after ``timeout`` seconds.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer.detach()
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=timeout)
        if self._process.stdout is not None:
            self._process.stdout.close()
        if self._owns_log:
            with contextlib.suppress(OSError):
                self._log_path.unlink()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    # -- facts -------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:port1,127.0.0.1:port2,..."``, one entry per broker."""
        return self._bootstrap_servers

    @property
    def num_brokers(self) -> int:
        return self._num_brokers

    @property
    def broker_ids(self) -> tuple[int, ...]:
        """The brokers' ids: ``1..num_brokers``."""
        return tuple(range(1, self._num_brokers + 1))

    @property
    def pid(self) -> int:
        """The process id of the child process that runs the cluster."""
        return self._process.pid

    @property
    def librdkafka_version(self) -> str:
        """The version of the librdkafka that runs the cluster, e.g. ``"2.16.0"``."""
        return self._librdkafka_version

    @property
    def log_path(self) -> Path:
        """Where the child process writes librdkafka's log (see ``debug``)."""
        return self._log_path

    # -- topics ------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, replication_factor: int = 1) -> None:
        """Create ``name`` with ``partitions`` partitions, leaders spread over the brokers.

        Example::

            cluster.create_topic("logs", partitions=3, replication_factor=3)
        """
        self._check_topic(name, partitions)
        self._check_replication_factor(replication_factor)
        self._call(
            "create_topic",
            topic=name,
            partitions=partitions,
            replication_factor=replication_factor,
        )

    def set_partition_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Move the leadership of a partition (creating the topic if unknown).

        ``broker_id`` -1 leaves the partition without a leader. Clients learn
        of the move from ``NOT_LEADER_OR_FOLLOWER`` answers and new metadata.

        Example::

            cluster.set_partition_leader("logs", 0, broker_id=3)
        """
        if broker_id != -1:
            self._check_broker(broker_id, allow_all=False)
        self._call("set_partition_leader", topic=topic, partition=partition, broker_id=broker_id)

    def topic_set_error(self, topic: str, error_code: int) -> None:
        """Make Metadata answers carry ``error_code`` for ``topic`` (0 clears it).

        Example::

            cluster.topic_set_error("logs", 29)  # TOPIC_AUTHORIZATION_FAILED
        """
        self._call("topic_set_error", topic=topic, error_code=int(error_code))
        if error_code:
            self._topics_with_errors.add(topic)
        else:
            self._topics_with_errors.discard(topic)

    # -- brokers -----------------------------------------------------------

    def broker_down(self, broker_id: int) -> None:
        """Disconnect a broker's clients and refuse new connections (-1: all brokers).

        Leadership does not move: partitions led by the broker become
        unavailable until :meth:`broker_up` or :meth:`set_partition_leader`.

        Example::

            cluster.broker_down(1)
        """
        self._check_broker(broker_id, allow_all=True)
        self._call("broker_down", broker_id=broker_id)

    def broker_up(self, broker_id: int) -> None:
        """Let a broker that was set down accept connections again (-1: all brokers)."""
        self._check_broker(broker_id, allow_all=True)
        self._call("broker_up", broker_id=broker_id)

    def set_broker_rtt(self, broker_id: int, rtt_ms: int) -> None:
        """Delay every response of a broker by ``rtt_ms`` milliseconds (-1: all brokers).

        Example::

            cluster.set_broker_rtt(2, 500)
        """
        self._check_broker(broker_id, allow_all=True)
        if rtt_ms < 0:
            raise InvalidArgumentError("rtt_ms", f"must be >= 0, not {rtt_ms}")
        self._call("set_broker_rtt", broker_id=broker_id, rtt_ms=rtt_ms)

    # -- errors and versions -----------------------------------------------

    def push_request_errors(self, api_key: int, errors: Sequence[int]) -> None:
        """Fail the next ``len(errors)`` requests of ``api_key``, on any broker, in order.

        Each listed error code answers one request (0 lets it through). The
        cluster-wide stack is used after any per-broker stack.

        Example::

            cluster.push_request_errors(0, [7, 7])  # two Produce: REQUEST_TIMED_OUT
        """
        codes = [int(code) for code in errors]
        if codes:
            self._call("push_request_errors", api_key=int(api_key), errors=codes)

    def broker_push_request_error_rtts(
        self, broker_id: int, api_key: int, errors_and_rtts: Sequence[tuple[int, int]]
    ) -> None:
        """Answer the next requests of ``api_key`` on one broker with (error, delay ms) pairs.

        Example::

            # the next Produce on broker 1 waits 2 s, then succeeds
            cluster.broker_push_request_error_rtts(1, 0, [(0, 2000)])
        """
        self._check_broker(broker_id, allow_all=False)
        pairs = [[int(err), int(rtt)] for err, rtt in errors_and_rtts]
        if any(rtt < 0 for _, rtt in pairs):
            raise InvalidArgumentError("errors_and_rtts", "delays must be >= 0")
        if pairs:
            self._call(
                "broker_push_request_error_rtts",
                broker_id=broker_id,
                api_key=int(api_key),
                errors_and_rtts=pairs,
            )

    def broker_error_stack_count(self, broker_id: int, api_key: int) -> int:
        """How many pushed (error, delay) pairs a broker still holds for ``api_key``."""
        self._check_broker(broker_id, allow_all=False)
        return int(self._call("broker_error_stack_count", broker_id=broker_id, api_key=api_key))

    def clear_request_errors(self, api_key: int) -> None:
        """Drop the errors still pushed cluster-wide for ``api_key``."""
        self._call("clear_request_errors", api_key=int(api_key))

    def set_api_version(self, api_key: int, min_version: int, max_version: int) -> None:
        """Change the version range advertised for an API (-1, -1 removes the API).

        ``max_version`` must not exceed what the mock implements.

        Example::

            cluster.set_api_version(0, 0, 3)  # Produce v0-v3 only
        """
        self._call(
            "set_api_version",
            api_key=int(api_key),
            min_version=int(min_version),
            max_version=int(max_version),
        )

    def set_controller(self, broker_id: int) -> None:
        """Name ``broker_id`` as the controller in Metadata answers.

        Until this is called the mock reports controller id 0, which is no
        broker (broker ids start at 1).
        """
        self._check_broker(broker_id, allow_all=False)
        self._call("set_controller", broker_id=broker_id)

    def reset(self) -> None:
        """Undo fault injection, to share one cluster between independent tests.

        Brings every broker up, removes added latency, drops the errors pushed
        cluster-wide (:meth:`push_request_errors`) and topic errors, and stops
        and clears request tracking. Not undone: errors pushed on one broker
        (:meth:`broker_push_request_error_rtts`, the mock offers no way to drop
        them), moved leaders, changed API versions, the controller, and data.
        """
        self._call("reset", topics_with_errors=sorted(self._topics_with_errors))
        self._topics_with_errors.clear()

    # -- request tracking --------------------------------------------------

    def start_request_tracking(self) -> None:
        """Record every request the brokers receive from now on (see :meth:`requests`).

        Example::

            cluster.start_request_tracking()
            ...  # produce
            produce_brokers = {r.broker_id for r in cluster.requests() if r.api_key == 0}
        """
        self._call("start_request_tracking")

    def stop_request_tracking(self) -> None:
        """Stop recording requests; the ones recorded so far are kept."""
        self._call("stop_request_tracking")

    def requests(self) -> list[MockRequest]:
        """The requests recorded since tracking started (or the last :meth:`clear_requests`)."""
        return [MockRequest(*row) for row in self._call("requests")]

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        self._call("clear_requests")

    # -- internals ---------------------------------------------------------

    def _check_broker(self, broker_id: int, *, allow_all: bool) -> None:
        if allow_all and broker_id == -1:
            return
        if not 1 <= broker_id <= self._num_brokers:
            raise InvalidArgumentError(
                "broker_id", f"{broker_id} is not one of 1..{self._num_brokers}"
            )

    def _check_replication_factor(self, replication_factor: int) -> None:
        # The mock cannot place more replicas than brokers.
        if not 1 <= replication_factor <= self._num_brokers:
            raise InvalidArgumentError(
                "replication_factor",
                f"must be between 1 and num_brokers ({self._num_brokers}), "
                f"not {replication_factor}",
            )

    @staticmethod
    def _check_topic(name: str, partitions: int) -> None:
        if not name:
            raise InvalidArgumentError("name", "a topic name must not be empty")
        if partitions < 1:
            raise InvalidArgumentError("partitions", f"must be >= 1, not {partitions}")

    def _read_answers(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        with contextlib.suppress(ValueError, OSError):  # closed under us by close()
            for line in stdout:
                self._answers.put(line)
        self._answers.put(None)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _died(self, doing: str) -> MockClusterError:
        try:
            status = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            how = "stopped answering"
        elif status < 0:
            how = f"was killed by signal {-status}"
        else:
            how = f"exited with status {status}"
        tail = self._log_tail()
        return MockClusterError(
            f"the mock cluster process (pid {self._process.pid}) {how} while {doing}"
            + (f"; its log ends with:\n{tail}" if tail else "")
        )

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise MockClusterError(
                f"the mock cluster did not start within {timeout} s"
                + (f"; its log ends with:\n{self._log_tail()}" if self._log_tail() else "")
            ) from None
        if line is None:
            raise self._died("starting")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") != "ready":
            raise MockClusterError(f"the mock cluster could not start: {message.get('error')}")
        return message

    def _call(self, op: str, **args: Any) -> Any:
        with self._lock:
            if self._closed:
                raise MockClusterError(f"{op}: the mock cluster is closed")
            self._next_id += 1
            request_id = self._next_id
            stdin = self._process.stdin
            assert stdin is not None
            try:
                stdin.write(json.dumps({"id": request_id, "op": op, "args": args}) + "\n")
                stdin.flush()
            except (BrokenPipeError, ValueError):
                raise self._died(f"sending {op}") from None
            deadline = time.monotonic() + self._command_timeout
            while True:
                remaining = deadline - time.monotonic()
                try:
                    line = self._answers.get(timeout=max(remaining, 0.0))
                except queue.Empty:
                    raise MockClusterError(
                        f"{op}: no answer from the mock cluster within {self._command_timeout} s"
                    ) from None
                if line is None:
                    # Leave the end marker for whoever asks next.
                    self._answers.put(None)
                    raise self._died(f"running {op}")
                answer: dict[str, Any] = json.loads(line)
                if answer.get("id") != request_id:
                    continue  # the late answer of a command that timed out
                if answer["ok"]:
                    return answer.get("result")
                raise MockClusterError(answer["error"], code=answer.get("code"))


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _topic_spec(text: str) -> tuple[str, int]:
    name, _, partitions = text.rpartition(":")
    if not name or not partitions.isdigit() or int(partitions) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME:PARTITIONS, not {text!r}")
    return name, int(partitions)


def _run_standalone(args: argparse.Namespace) -> int:
    topics = dict(args.topic)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        cluster = MockCluster(
            args.brokers,
            topics=topics,
            replication_factor=args.replication_factor,
            debug=args.debug,
        )
    except KafkaSinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with cluster:
        print(f"bootstrap.servers={cluster.bootstrap_servers}", flush=True)
        print(
            f"librdkafka {cluster.librdkafka_version} mock cluster, {args.brokers} broker(s); "
            "Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a standalone mock cluster (or, with ``--serve``, a MockCluster's child)."""
    parser = argparse.ArgumentParser(
        prog="python -m kafka_sink.testing",
        description="Run librdkafka's mock Kafka cluster on loopback until interrupted.",
    )
    parser.add_argument("--brokers", type=int, default=3, help="number of brokers (default 3)")
    parser.add_argument(
        "--topic",
        type=_topic_spec,
        action="append",
        default=[],
        metavar="NAME:PARTITIONS",
        help="create a topic (repeatable)",
    )
    parser.add_argument("--replication-factor", type=int, default=None)
    parser.add_argument("--debug", default="", help="librdkafka debug contexts, e.g. mock,protocol")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--library", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--owned-log", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.library or find_librdkafka(), args.brokers, args.debug, args.owned_log)
    return _run_standalone(args)
