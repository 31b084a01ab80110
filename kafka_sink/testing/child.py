"""The child process of a MockCluster: it owns the mock cluster and answers JSON commands.

:func:`serve` reads one JSON command per line on stdin and writes one JSON
answer per line on a private copy of stdout; :class:`_ClusterServer` holds
the ``rd_kafka_t`` handle the cluster is attached to and runs each command
through librdkafka. The child exits when its stdin closes, or when its
parent goes away.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kafka_sink.testing.native import RD_KAFKA_CONF_OK, RD_KAFKA_PRODUCER, Native, NativeError

__all__ = ["serve"]

# Highest Kafka API key the mock knows of (ConsumerGroupHeartbeat is 68, the
# share group APIs reach 79); resetting clears pushed errors up to here.
_MAX_API_KEY = 100
# librdkafka's variadic error pushes are split in chunks so that one call never
# nears ctypes' limit on the number of arguments; the mock appends each chunk
# to the end of the broker's error stack, so order is kept.
_RTT_CHUNK = 64


class _ClusterServer:
    """Owns one rd_kafka_t and the mock cluster attached to it (child side)."""

    def __init__(self, native: Native, num_brokers: int, debug: str) -> None:
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
            if res != RD_KAFKA_CONF_OK:
                native("rd_kafka_conf_destroy", conf)
                raise NativeError(f"{key}={value!r}: {errstr.value.decode()}", -1)
        # rd_kafka_new() takes ownership of conf only when it succeeds.
        rk = native("rd_kafka_new", RD_KAFKA_PRODUCER, conf, errstr, 512)
        if not rk:
            native("rd_kafka_conf_destroy", conf)
            raise NativeError(f"rd_kafka_new failed: {errstr.value.decode()}", -1)
        self._rk: int = rk
        cluster = native("rd_kafka_mock_cluster_new", rk, num_brokers)
        if not cluster:
            native("rd_kafka_destroy", rk)
            raise NativeError(f"rd_kafka_mock_cluster_new({num_brokers}) failed", -1)
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
            raise NativeError("the mock cluster is closed", -1)
        return self._cluster

    def dispatch(self, op: str, args: Mapping[str, Any]) -> Any:
        handler = self._ops.get(op)
        if handler is None:
            raise NativeError(f"unknown mock cluster command {op!r}", -1)
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
        with contextlib.suppress(NativeError):  # librdkafka without request tracking
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
        except NativeError:
            # Before destroy_array existed, each request and then the array
            # itself were freed separately.
            for i in range(count):
                self._native("rd_kafka_mock_request_destroy", array[i])
            self._native("rd_kafka_mem_free", None, ctypes.cast(array, ctypes.c_void_p))

    def clear_requests(self) -> None:
        self._native("rd_kafka_mock_clear_requests", self.cluster)
        self._kept_requests = []


def serve(library: Path, num_brokers: int, debug: str, owned_log: Path | None) -> int:
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
        native = Native(library)
        server = _ClusterServer(native, num_brokers, debug)
    except NativeError as exc:
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
            except NativeError as exc:
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
