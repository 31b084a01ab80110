"""The options of the ``"otlp"`` serializer, checked once when a handler is built."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, get_args

from kafka_sink.serialization import check_option_names, invalid_option

__all__ = ["CodeAttributes", "ExtraFields", "OtlpOptions", "default_service_name"]


#: What to do with the fields an application adds to a record (``extra=``
#: on a log call, or the keys of a structlog event dict): ``"attributes"``
#: makes each one a log record attribute (a nested mapping becomes a
#: ``kvlistValue``); ``"drop"`` leaves them out. An attribute the serializer
#: writes itself is never replaced.
ExtraFields = Literal["attributes", "drop"]

#: The names of the source-location attributes. ``"legacy"``:
#: ``code.filepath``, ``code.lineno``, ``code.function``, which most
#: receivers know today. ``"stable"``: ``code.file.path``,
#: ``code.line.number``, ``code.function.name``, the names the semantic
#: conventions declared stable (v1.30 onwards) in place of the legacy ones.
CodeAttributes = Literal["legacy", "stable"]


def default_service_name() -> str:
    """``unknown_service:<executable>``, the fallback the OpenTelemetry resource spec asks for."""
    executable = os.path.basename(sys.executable or "")
    return f"unknown_service:{executable}" if executable else "unknown_service"


def _empty_mapping() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class OtlpOptions:
    """Options of the OTLP serializer; give them as ``serializer_options``.

    ``service_name``
        The ``service.name`` resource attribute; by default
        ``unknown_service:<executable>``, as the OpenTelemetry resource
        semantic conventions require.
    ``resource_attributes``
        More resource attributes, e.g. ``{"service.version": "1.4.2",
        "deployment.environment.name": "prod"}``; they may replace
        ``host.name`` and ``process.pid``, but ``service_name`` wins over a
        ``service.name`` given here.
    ``hostname``
        The ``host.name`` resource attribute; by default
        :func:`socket.gethostname`, None leaves it out.
    ``extra_fields``, ``extra_prefix``
        What to do with a record's extra fields (see :data:`ExtraFields`),
        and a prefix for their attribute names (e.g. ``"app."``).
    ``code_attributes``
        Which names the source-location attributes have (see
        :data:`CodeAttributes`).
    ``formatter``
        A :class:`logging.Formatter` whose ``formatException`` and
        ``formatStack`` write ``exception.stacktrace`` and
        ``code.stacktrace``. A handler passes the one given to its
        ``setFormatter``.

    Example::

        handler = KafkaHandler(..., serializer="otlp",
                               serializer_options={"service_name": "checkout"})
    """

    service_name: str | None = None
    resource_attributes: Mapping[str, Any] = field(default_factory=_empty_mapping)
    hostname: str | None = field(default_factory=socket.gethostname)
    extra_fields: ExtraFields = "attributes"
    extra_prefix: str = ""
    code_attributes: CodeAttributes = "legacy"
    formatter: logging.Formatter | None = None

    def __post_init__(self) -> None:
        for name in ("service_name", "hostname"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                invalid_option(name, f"must be a string or None, got {value!r}")
        if self.service_name == "":
            invalid_option("service_name", "must not be empty (None for the default)")
        for name, choices in (
            ("extra_fields", get_args(ExtraFields)),
            ("code_attributes", get_args(CodeAttributes)),
        ):
            value = getattr(self, name)
            if value not in choices:
                invalid_option(
                    name, f"must be one of {', '.join(map(repr, choices))}, got {value!r}"
                )
        if not isinstance(self.extra_prefix, str):
            invalid_option("extra_prefix", f"must be a string, got {self.extra_prefix!r}")
        if not isinstance(self.resource_attributes, Mapping):
            invalid_option(
                "resource_attributes", f"must be a mapping, got {self.resource_attributes!r}"
            )
        for key in self.resource_attributes:
            if not isinstance(key, str) or not key:
                invalid_option(
                    "resource_attributes", f"names must be non-empty strings, got {key!r}"
                )
        # Frozen: keep a read-only copy, so the caller's dict can change freely.
        object.__setattr__(
            self, "resource_attributes", MappingProxyType(dict(self.resource_attributes))
        )
        if self.formatter is not None and not isinstance(self.formatter, logging.Formatter):
            invalid_option("formatter", f"must be a logging.Formatter, got {self.formatter!r}")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> OtlpOptions:
        """Build options from ``serializer_options``; unknown names are an error."""
        return cls(**check_option_names(options, [f.name for f in fields(cls)], "otlp"))
