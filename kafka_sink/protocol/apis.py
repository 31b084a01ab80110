"""The APIs the library speaks and how a version is chosen for each.

For every API the client uses the highest version that both it and the broker
support (the broker's ranges come from ApiVersions).

Each API's message classes are imported the first time the framing layer
needs them: a process that only produces never imports Fetch, ListOffsets
or CreateTopics (the reader's and the admin APIs), whose schemas are among
the costliest modules to import.
"""

from __future__ import annotations

import enum
import importlib

from kafka_sink.errors import UnsupportedVersionError
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


_PROTOCOL = "kafka_sink.protocol"

#: Every API the library speaks: the module of its messages, and their names.
_PAIRS: dict[int, tuple[str, str, str]] = {
    ApiKey.PRODUCE: (f"{_PROTOCOL}.produce", "ProduceRequest", "ProduceResponse"),
    ApiKey.FETCH: (f"{_PROTOCOL}.fetch", "FetchRequest", "FetchResponse"),
    ApiKey.LIST_OFFSETS: (f"{_PROTOCOL}.list_offsets", "ListOffsetsRequest", "ListOffsetsResponse"),
    ApiKey.METADATA: (f"{_PROTOCOL}.metadata", "MetadataRequest", "MetadataResponse"),
    ApiKey.API_VERSIONS: (f"{_PROTOCOL}.api_versions", "ApiVersionsRequest", "ApiVersionsResponse"),
    ApiKey.CREATE_TOPICS: (
        f"{_PROTOCOL}.create_topics",
        "CreateTopicsRequest",
        "CreateTopicsResponse",
    ),
    ApiKey.INIT_PRODUCER_ID: (
        f"{_PROTOCOL}.init_producer_id",
        "InitProducerIdRequest",
        "InitProducerIdResponse",
    ),
    ApiKey.SASL_HANDSHAKE: (f"{_PROTOCOL}.sasl", "SaslHandshakeRequest", "SaslHandshakeResponse"),
    ApiKey.SASL_AUTHENTICATE: (
        f"{_PROTOCOL}.sasl",
        "SaslAuthenticateRequest",
        "SaslAuthenticateResponse",
    ),
}
# The classes of the APIs imported so far.
_CLASSES: dict[int, tuple[type[Message], type[Message]]] = {}


def register(request: type[Message], response: type[Message]) -> None:
    """Make a request/response pair known to the framing layer (used by optional APIs)."""
    _PAIRS[request.API_KEY] = (request.__module__, request.__name__, response.__name__)
    _CLASSES[request.API_KEY] = (request, response)


def _classes(api_key: int) -> tuple[type[Message], type[Message]]:
    pair = _CLASSES.get(api_key)
    if pair is None:
        module_name, request, response = _PAIRS[api_key]
        module = importlib.import_module(module_name)
        pair = _CLASSES[api_key] = (getattr(module, request), getattr(module, response))
    return pair


def request_class(api_key: int) -> type[Message]:
    return _classes(api_key)[0]


def response_class(api_key: int) -> type[Message]:
    return _classes(api_key)[1]


def supported_versions(api_key: int) -> tuple[int, int]:
    """The versions of an API this library implements."""
    return _classes(api_key)[0].VERSIONS


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
