"""librdkafka's C functions through :mod:`ctypes`, with their prototypes declared.

Only the child process of a :class:`~kafka_sink.testing.MockCluster` loads
the library. :class:`Native` checks at load time that the functions every
cluster needs exist, and names a missing optional one when it is first called,
so that an older librdkafka still runs a cluster without the newer features.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

__all__ = ["RD_KAFKA_CONF_OK", "RD_KAFKA_PRODUCER", "Native", "NativeError"]

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

# rd_kafka_type_t's RD_KAFKA_PRODUCER, and rd_kafka_conf_res_t's RD_KAFKA_CONF_OK.
RD_KAFKA_PRODUCER = 0
RD_KAFKA_CONF_OK = 0


class NativeError(Exception):
    """A failed C call; ``code`` is librdkafka's error code, or -1."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Native:
    """librdkafka's functions with their C prototypes declared."""

    def __init__(self, path: Path) -> None:
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise NativeError(f"cannot load librdkafka from {path}: {exc}", -1) from exc
        self.path = path
        missing = [name for name in _REQUIRED if not hasattr(self._lib, name)]
        if missing:
            raise NativeError(f"{path} lacks the mock cluster API ({', '.join(missing)})", -1)

    def __call__(self, name: str, *args: Any) -> Any:
        try:
            function = getattr(self._lib, name)
        except AttributeError:
            raise NativeError(
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
            raise NativeError(f"{what}: {text} (error {err})", err)
