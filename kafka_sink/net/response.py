"""The outcome of one request (:class:`ClientResponse`) and the running of its callback.

Owns what a caller of :class:`~kafka_sink.net.client.NetworkClient` receives:
the response type, typed by its body, and :func:`run_callbacks`, which runs
completed requests' callbacks in the order they completed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kafka_sink.errors import KafkaSinkError
from kafka_sink.protocol.schema import Message

__all__ = ["BodyT", "Callback", "ClientResponse", "Completed", "run_callbacks"]

#: The decoded response message a request's answer is (``MetadataResponse``, ...).
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


#: What receives a request's outcome.
Callback = Callable[[ClientResponse[Any]], None]
#: A completed request waiting for its callback to run.
Completed = tuple[Callback, ClientResponse[Any]]


def run_callbacks(completed: list[Completed]) -> int:
    """Run the callbacks of ``completed`` in order and remove them; the number that raised.

    A callback may complete more requests (a ``send()`` refused at once):
    they are appended to ``completed`` and run in the same call. Exceptions
    raised by callbacks are counted, otherwise ignored.
    """
    done = 0
    errors = 0
    try:
        while done < len(completed):
            callback, response = completed[done]
            done += 1
            try:
                callback(response)
            except Exception:
                errors += 1
    finally:
        del completed[:done]
    return errors
