"""ApiVersions (key 18): which versions of which APIs a broker speaks.

Kafka protocol guide, "ApiVersions"; KIP-511 for the fallback: a broker that
does not know the requested ApiVersions version answers with a *v0* body,
error UNSUPPORTED_VERSION (35), whose list still holds the ApiVersions range it
supports, so the client retries with that version. The response header of
ApiVersions is always header v0, even for flexible versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kafka_sink.errors import ProtocolError
from kafka_sink.protocol.primitives import Reader
from kafka_sink.protocol.schema import (
    INT16,
    INT32,
    STRING,
    Array,
    Message,
    Request,
    Struct,
    decode,
    field,
)

__all__ = ["ApiVersionRange", "ApiVersionsRequest", "ApiVersionsResponse"]

UNSUPPORTED_VERSION = 35


@dataclass(frozen=True, slots=True)
class ApiVersionsRequest(Request["ApiVersionsResponse"]):
    """Ask a broker for the API versions it supports."""

    API_KEY: ClassVar[int] = 18
    VERSIONS: ClassVar[tuple[int, int]] = (0, 3)
    FLEXIBLE_FROM: ClassVar[int] = 3

    client_software_name: str = field(STRING, versions="3+", default="kafka-sink")
    client_software_version: str = field(STRING, versions="3+", default="0")


@dataclass(frozen=True, slots=True)
class ApiVersionRange:
    """The versions of one API a broker supports (inclusive)."""

    api_key: int = field(INT16)
    min_version: int = field(INT16)
    max_version: int = field(INT16)


@dataclass(frozen=True, slots=True)
class ApiVersionsResponse(Message):
    """The broker's answer: an error code and the supported version ranges."""

    API_KEY: ClassVar[int] = 18
    VERSIONS: ClassVar[tuple[int, int]] = (0, 3)
    FLEXIBLE_FROM: ClassVar[int] = 3

    error_code: int = field(INT16)
    api_keys: list[ApiVersionRange] = field(Array(Struct(ApiVersionRange)))
    throttle_time_ms: int = field(INT32, versions="1+", default=0)

    @classmethod
    def decode_any(cls, data: bytes | memoryview, version: int) -> ApiVersionsResponse:
        """Decode a response to a request sent at ``version``, honouring KIP-511.

        When the broker did not know ``version`` it answers at v0 with
        UNSUPPORTED_VERSION; that body is decoded as v0. Some brokers (the
        librdkafka mock cluster, for one) send a list that decodes at no
        version: then only the error is kept, with no ranges, and the client
        falls back to v0, which every broker speaks.
        """
        if version > 0 and Reader(data).int16() == UNSUPPORTED_VERSION:
            try:
                return decode(cls, data, 0)
            except ProtocolError:
                return cls(UNSUPPORTED_VERSION, [])
        return decode(cls, data, version)

    def ranges(self) -> dict[int, tuple[int, int]]:
        """The supported ranges by API key."""
        return {k.api_key: (k.min_version, k.max_version) for k in self.api_keys}
