"""The outcome of one request, as the network clients hand it to a callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kafka_sink.errors import KafkaSinkError
from kafka_sink.protocol.schema import Message

__all__ = ["BodyT", "Callback", "ClientResponse"]

#: The type of a response body: ``ClientResponse[MetadataResponse]``.
BodyT = TypeVar("BodyT")


@dataclass(frozen=True, slots=True)
class ClientResponse(Generic[BodyT]):
    """The outcome of one request, as its callback receives it.

    Exactly one of ``body`` and ``error`` is set, except for requests that get
    no answer (Produce with ``acks=0``): those complete with neither once
    their bytes are written. ``version`` is the version the request was sent
    at (-1 if it was refused before one was chosen). ``latency`` is the time
    from ``send()`` to the completion, in seconds of the client's clock.
    """

    node_id: int
    request: Message
    version: int
    body: BodyT | None
    error: KafkaSinkError | None
    latency: float


#: What a request's outcome is handed to, as a client keeps it beside requests
#: of every API. A client's ``send()`` takes a ``Request[R]`` and a callback of
#: ``ClientResponse[R]``, so the checker matches each callback to its answer.
Callback = Callable[[ClientResponse[Any]], None]
