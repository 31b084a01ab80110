"""Application events with a schema: typed, validated, versioned, keyed by their entity.

    python3 examples/app_events.py

Each kind of event is a frozen dataclass that checks itself when it is
built, so an invalid event fails in the code that makes it, never in a
consumer. :func:`encode` makes a Kafka record of it: the value is JSON, the
key the entity's id (so that all the events of one order land on one
partition, in order), and the headers name the event type, its schema
version and the content type. :func:`decode` is the consumer's side: it
picks the class from the headers, refuses a version it does not know, and
validates again. Events go through a :class:`kafka_sink.Sink` directly,
with a delivery future each.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from _cluster import example_cluster, headers

import kafka_sink
from kafka_sink.net.fetcher import FetchedRecord

TOPIC = "shop-events"
_ID = re.compile(r"[a-z]+-[0-9]+")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class OrderPlaced:
    TYPE: ClassVar[str] = "order.placed"
    VERSION: ClassVar[int] = 2  # version 2 added currency

    order_id: str
    user_id: str
    amount_cents: int
    currency: str
    items: tuple[str, ...]

    def __post_init__(self) -> None:
        _check(bool(_ID.fullmatch(self.order_id)), f"order_id {self.order_id!r} is not an id")
        _check(bool(_ID.fullmatch(self.user_id)), f"user_id {self.user_id!r} is not an id")
        _check(self.amount_cents > 0, f"amount_cents must be positive, got {self.amount_cents}")
        _check(self.currency in ("EUR", "USD"), f"unknown currency {self.currency!r}")
        _check(len(self.items) > 0, "an order has at least one item")

    @property
    def key(self) -> str:
        return self.order_id


@dataclass(frozen=True)
class OrderShipped:
    TYPE: ClassVar[str] = "order.shipped"
    VERSION: ClassVar[int] = 1

    order_id: str
    carrier: str
    tracking: str

    def __post_init__(self) -> None:
        _check(bool(_ID.fullmatch(self.order_id)), f"order_id {self.order_id!r} is not an id")
        _check(bool(self.tracking), "tracking must not be empty")

    @property
    def key(self) -> str:
        return self.order_id


Event = OrderPlaced | OrderShipped
EVENT_TYPES: dict[str, type[OrderPlaced] | type[OrderShipped]] = {
    cls.TYPE: cls for cls in (OrderPlaced, OrderShipped)
}


def encode(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The key, value and headers of the Kafka record of ``event``."""
    value = json.dumps(dataclasses.asdict(event), separators=(",", ":")).encode()
    return (
        event.key.encode(),
        value,
        [
            ("event-type", event.TYPE.encode()),
            ("schema-version", str(event.VERSION).encode()),
            ("content-type", b"application/json"),
        ],
    )


def decode(record: FetchedRecord) -> Event:
    """The event a record holds; ValueError for an unknown type or schema version."""
    meta = headers(record)
    cls = EVENT_TYPES.get(meta.get("event-type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {meta.get('event-type')!r}")
    if meta.get("schema-version") != str(cls.VERSION):
        raise ValueError(f"{cls.TYPE}: schema version {meta.get('schema-version')} unknown")
    fields: dict[str, Any] = json.loads(record.value or b"")
    if "items" in fields:
        fields["items"] = tuple(fields["items"])  # JSON has lists only
    return cls(**fields)


def main() -> int:
    events: list[Event] = [
        OrderPlaced("order-1", "user-7", 4999, "EUR", ("sku-1", "sku-2")),
        OrderPlaced("order-2", "user-8", 1250, "USD", ("sku-3",)),
        OrderShipped("order-1", "dhl", "JD0001"),
        OrderPlaced("order-3", "user-7", 800, "EUR", ("sku-4",)),
        OrderShipped("order-2", "ups", "1Z999"),
    ]
    try:
        OrderPlaced("order-4", "user-9", -5, "EUR", ("sku-5",))
    except ValueError as error:
        print(f"refused before it was sent: {error}")

    with example_cluster(TOPIC) as cluster:
        with kafka_sink.Sink(cluster.bootstrap_servers, acks="all", linger_ms=5) as sink:
            futures = []
            for event in events:
                key, value, record_headers = encode(event)
                futures.append(sink.produce(TOPIC, value, key=key, headers=record_headers))
            for event, future in zip(events, futures, strict=True):
                metadata = future.result(timeout=10)
                print(f"sent {event.TYPE} {event.key} -> partition {metadata.partition}")
        records = cluster.read(TOPIC)

    print(f"\nread back from {TOPIC}:")
    received = []
    for record in records:
        event = decode(record)
        received.append(event)
        print(f"  partition {record.partition} offset {record.offset} {headers(record)}")
        print(f"    {event}")

    def of_order(sequence: list[Event], order_id: str) -> list[Event]:
        return [event for event in sequence if event.key == order_id]

    # Keyed by order id: one partition per order, so its events keep their order.
    in_order = all(of_order(received, e.key) == of_order(events, e.key) for e in events)
    print(
        f"{len(received)} of {len(events)} events read back and validated; "
        f"each order's events in the order sent: {in_order}"
    )
    same = sorted(map(repr, received)) == sorted(map(repr, events))
    return 0 if same and in_order else 1


if __name__ == "__main__":
    sys.exit(main())
