"""The APIs the library speaks and how a version is chosen for each.

For every API the client uses the highest version that both it and the broker
support (the broker's ranges come from ApiVersions).
"""

from __future__ import annotations

import enum

from kafka_sink.errors import UnsupportedVersionError
from kafka_sink.protocol.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka_sink.protocol.create_topics import CreateTopicsRequest, CreateTopicsResponse
from kafka_sink.protocol.fetch import FetchRequest, FetchResponse
from kafka_sink.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse
from kafka_sink.protocol.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.produce import ProduceRequest, ProduceResponse
from kafka_sink.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from kafka_sink.protocol.schema import Message

__all__ = ["ApiKey", "choose_version", "request_class", "response_class", "supported_versions"]


class ApiKey(enum.IntEnum):
    """Kafka API keys used by the library."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    INIT_PRODUCER_ID = 22
    SASL_AUTHENTICATE = 36


_PAIRS: dict[int, tuple[type[Message], type[Message]]] = {
    ApiKey.PRODUCE: (ProduceRequest, ProduceResponse),
    ApiKey.FETCH: (FetchRequest, FetchResponse),
    ApiKey.LIST_OFFSETS: (ListOffsetsRequest, ListOffsetsResponse),
    ApiKey.METADATA: (MetadataRequest, MetadataResponse),
    ApiKey.API_VERSIONS: (ApiVersionsRequest, ApiVersionsResponse),
    ApiKey.CREATE_TOPICS: (CreateTopicsRequest, CreateTopicsResponse),
    ApiKey.INIT_PRODUCER_ID: (InitProducerIdRequest, InitProducerIdResponse),
    ApiKey.SASL_HANDSHAKE: (SaslHandshakeRequest, SaslHandshakeResponse),
    ApiKey.SASL_AUTHENTICATE: (SaslAuthenticateRequest, SaslAuthenticateResponse),
}


def register(request: type[Message], response: type[Message]) -> None:
    """Make a request/response pair known to the framing layer (used by optional APIs)."""
    _PAIRS[request.API_KEY] = (request, response)


def request_class(api_key: int) -> type[Message]:
    return _PAIRS[api_key][0]


def response_class(api_key: int) -> type[Message]:
    return _PAIRS[api_key][1]


def supported_versions(api_key: int) -> tuple[int, int]:
    """The versions of an API this library implements."""
    return _PAIRS[api_key][0].VERSIONS


def choose_version(api_key: int, broker_ranges: dict[int, tuple[int, int]]) -> int:
    """The highest version of ``api_key`` that both sides support.

    Raises :class:`UnsupportedVersionError` when the ranges do not overlap or
    the broker does not offer the API at all.
    """
    ours = supported_versions(api_key)
    theirs = broker_ranges.get(api_key)
    name = _name(api_key)
    if theirs is None:
        raise UnsupportedVersionError(f"the broker does not support the {name} API")
    high = min(ours[1], theirs[1])
    if high < max(ours[0], theirs[0]):
        raise UnsupportedVersionError(
            f"no common version of {name}: the library speaks {ours[0]}-{ours[1]}, "
            f"the broker {theirs[0]}-{theirs[1]}"
        )
    return high


def _name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name
    except ValueError:
        return f"API {api_key}"
