"""The options of the ``"ecs"`` serializer, checked once when a handler is built."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, get_args

from kafka_sink.serialization import check_option_names, invalid_option

__all__ = ["DEFAULT_ECS_VERSION", "REQUIRED_FIELDS", "EcsOptions", "ExtraFields"]

#: The ECS version written to ``ecs.version``: the one the ECS logging
#: libraries write, whose fields every later 1.x and 8.x release keeps.
DEFAULT_ECS_VERSION = "1.6.0"

#: Fields every ECS logging document has; ``exclude_fields`` cannot remove them.
REQUIRED_FIELDS = ("@timestamp", "log.level", "message", "ecs.version")

#: What to do with the fields an application adds to a record (``extra=``
#: on a log call, or the keys of a structlog event dict):
#:
#: ``"merge"``
#:     Merge them into the document, a dotted name such as
#:     ``"http.request.method"`` becoming nested objects, as the ECS logging
#:     libraries do. A field the serializer writes itself is never replaced.
#: ``"nest"``
#:     Put them, unchanged, in one object named by ``extra_namespace``.
#: ``"labels"``
#:     Put them in ECS ``labels``: nested objects are flattened, and ``.``,
#:     ``*`` and ``\\`` in names become ``_``, as the ECS logging spec requires.
#: ``"drop"``
#:     Leave them out.
ExtraFields = Literal["merge", "nest", "labels", "drop"]


# Top-level names the serializer writes itself: no namespace may take one.
_OWN_TOP_LEVEL = frozenset(
    {"@timestamp", "message", "log", "ecs", "process", "host", "service", "event"}
    | {"trace", "span", "error", "labels"}
)


def _empty_mapping() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class EcsOptions:
    """Options of the ECS serializer; give them as ``serializer_options``.

    ``service_name``, ``service_version``
        ``service.name`` and ``service.version`` of every document.
    ``event_dataset``
        ``event.dataset``; by default ``"<service_name>.log"`` when
        ``service_name`` is set, as the ECS logging spec asks. ``""`` leaves
        it out.
    ``hostname``
        ``host.hostname``; by default :func:`socket.gethostname`, None leaves
        it out.
    ``static_fields``
        Fields added to every document, by dotted name, e.g.
        ``{"service.environment": "prod", "labels.team": "payments"}``.
        A record's own extra fields do not replace them.
    ``extra_fields``, ``extra_namespace``
        What to do with a record's extra fields (see :data:`ExtraFields`) and,
        for ``"nest"``, the name of the object that holds them.
    ``stack_trace_limit``
        At most this many frames per traceback in ``error.stack_trace``
        (None: all of them; 0: no stack trace).
    ``exclude_fields``
        Dotted names of fields (or whole groups, e.g. ``"process"``) to
        leave out of every document.
    ``ecs_version``
        The ``ecs.version`` to write.
    ``formatter``
        A :class:`logging.Formatter` whose ``formatException`` and
        ``formatStack`` write ``error.stack_trace`` (then
        ``stack_trace_limit`` does not apply). A handler passes the one given
        to its ``setFormatter``.

    Example::

        handler = KafkaHandler(..., serializer="ecs",
                               serializer_options={"service_name": "checkout"})
    """

    service_name: str | None = None
    service_version: str | None = None
    event_dataset: str | None = None
    hostname: str | None = field(default_factory=socket.gethostname)
    static_fields: Mapping[str, Any] = field(default_factory=_empty_mapping)
    extra_fields: ExtraFields = "merge"
    extra_namespace: str = "extra"
    stack_trace_limit: int | None = None
    exclude_fields: tuple[str, ...] = ()
    ecs_version: str = DEFAULT_ECS_VERSION
    formatter: logging.Formatter | None = None

    def __post_init__(self) -> None:
        for name in ("service_name", "service_version", "event_dataset", "hostname"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                invalid_option(name, f"must be a string or None, got {value!r}")
        if not isinstance(self.ecs_version, str) or not self.ecs_version:
            invalid_option("ecs_version", f"must be a non-empty string, got {self.ecs_version!r}")
        if self.extra_fields not in get_args(ExtraFields):
            choices = ", ".join(map(repr, get_args(ExtraFields)))
            invalid_option("extra_fields", f"must be one of {choices}, got {self.extra_fields!r}")
        namespace = self.extra_namespace
        if (
            not isinstance(namespace, str)
            or not namespace
            or "." in namespace
            or namespace in _OWN_TOP_LEVEL
        ):
            invalid_option(
                "extra_namespace",
                "must be a top-level name the serializer does not write itself "
                f"(no '.', not one of {sorted(_OWN_TOP_LEVEL)}), got {namespace!r}",
            )
        limit = self.stack_trace_limit
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            invalid_option("stack_trace_limit", f"must be an int or None, got {limit!r}")
        if limit is not None and limit < 0:
            invalid_option("stack_trace_limit", f"must not be negative, got {limit}")
        if not isinstance(self.static_fields, Mapping):
            invalid_option("static_fields", f"must be a mapping, got {self.static_fields!r}")
        for key in self.static_fields:
            if not isinstance(key, str) or not key:
                invalid_option("static_fields", f"names must be non-empty strings, got {key!r}")
        # Frozen: keep a read-only copy, so the caller's dict can change freely.
        object.__setattr__(self, "static_fields", MappingProxyType(dict(self.static_fields)))
        excluded = self.exclude_fields
        if isinstance(excluded, str | bytes) or not isinstance(excluded, tuple | list | frozenset):
            invalid_option(
                "exclude_fields", f"must be a list of dotted field names, got {excluded!r}"
            )
        for name in excluded:
            if not isinstance(name, str) or not name:
                invalid_option("exclude_fields", f"names must be non-empty strings, got {name!r}")
            if any(need == name or need.startswith(name + ".") for need in REQUIRED_FIELDS):
                invalid_option(
                    "exclude_fields", f"{name!r} would remove a field every document needs"
                )
        object.__setattr__(self, "exclude_fields", tuple(excluded))
        if self.formatter is not None and not isinstance(self.formatter, logging.Formatter):
            invalid_option("formatter", f"must be a logging.Formatter, got {self.formatter!r}")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> EcsOptions:
        """Build options from ``serializer_options``; unknown names are an error."""
        return cls(**check_option_names(options, [f.name for f in fields(cls)], "ecs"))
