"""Round-trips and robustness of every request and response, at every version."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sink.errors import ProtocolError
from kafka_sink.protocol import apis, schema
from kafka_sink.protocol.metadata import MetadataRequest
from kafka_sink.protocol.produce import PartitionProduceData, ProduceRequest, TopicProduceData
from kafka_sink.protocol.schema import Message, WireType

_INTS = {
    "int8": st.integers(-(2**7), 2**7 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
}


def _wire_strategy(wire: WireType, version: int, flexible: bool) -> st.SearchStrategy[Any]:
    if wire.name in _INTS:
        return _INTS[wire.name]
    if wire.name == "boolean":
        return st.booleans()
    if wire.name == "uuid":
        return st.uuids()
    if wire.name in ("string", "nullable_string"):
        text = st.text(max_size=20)
        return st.one_of(st.none(), text) if wire.nullable else text
    if wire.name in ("bytes_", "nullable_bytes"):
        data = st.binary(max_size=40)
        return st.one_of(st.none(), data) if wire.nullable else data
    if wire.item is not None:
        items = st.lists(_wire_strategy(wire.item, version, flexible), max_size=3)
        return st.one_of(st.none(), items) if wire.nullable else items
    if wire.struct is not None:
        return _struct_strategy(wire.struct, version, flexible)
    raise AssertionError(f"no strategy for {wire}")


def _struct_strategy(cls: type[Any], version: int, flexible: bool) -> st.SearchStrategy[Any]:
    """Instances of ``cls`` whose fields absent from ``version`` keep their defaults."""
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        low, high = meta["span"]
        present = low <= version <= high and (meta["tag"] is None or flexible)
        if present:
            strategy = _wire_strategy(meta["wire"], version, flexible)
            if meta["tag"] is not None and meta["wire"].struct is not None:
                strategy = st.one_of(st.none(), strategy)
            kwargs[f.name] = strategy
        elif f.default is not dataclasses.MISSING:
            kwargs[f.name] = st.just(f.default)
        else:
            assert f.default_factory is not dataclasses.MISSING, (cls, f.name, version)
            kwargs[f.name] = st.builds(f.default_factory)
    return st.builds(cls, **kwargs)


def _all_message_versions() -> list[tuple[type[Message], int]]:
    cases: list[tuple[type[Message], int]] = []
    for key in sorted(apis._PAIRS):
        for cls in (apis.request_class(key), apis.response_class(key)):
            low, high = cls.VERSIONS
            cases.extend((cls, v) for v in range(low, high + 1))
    return cases


CASES = _all_message_versions()


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip(cls: type[Message], version: int, data: st.DataObject) -> None:
    message = data.draw(_struct_strategy(cls, version, cls.is_flexible(version)))
    encoded = schema.encode(message, version)
    assert schema.decode(cls, encoded, version) == message


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
@settings(max_examples=60, deadline=None)
@given(blob=st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_protocol_error(
    cls: type[Message], version: int, blob: bytes
) -> None:
    with contextlib.suppress(ProtocolError):
        schema.decode(cls, blob, version)


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_truncated_or_flipped_valid_message(
    cls: type[Message], version: int, data: st.DataObject
) -> None:
    message = data.draw(_struct_strategy(cls, version, cls.is_flexible(version)))
    encoded = bytearray(schema.encode(message, version))
    if encoded:  # an empty body (ApiVersions v0) cannot be truncated
        cut = data.draw(st.integers(0, len(encoded) - 1))
        with pytest.raises(ProtocolError):
            schema.decode(cls, bytes(encoded[:cut]), version)
        where = data.draw(st.integers(0, len(encoded) - 1))
        encoded[where] ^= data.draw(st.integers(1, 255))
        with contextlib.suppress(ProtocolError):
            schema.decode(cls, bytes(encoded), version)


def test_huge_array_count_is_rejected_before_allocation() -> None:
    from kafka_sink.protocol.metadata import MetadataResponse

    # throttle (v3+), then a brokers array claiming 2**31-1 elements in 4 bytes.
    blob = b"\x00\x00\x00\x00" + b"\x7f\xff\xff\xff" + b"\x00" * 4
    with pytest.raises(ProtocolError, match="array claims"):
        schema.decode(MetadataResponse, blob, 5)


def test_trailing_bytes_are_a_protocol_error() -> None:
    from kafka_sink.protocol.init_producer_id import InitProducerIdResponse

    body = schema.encode(InitProducerIdResponse(0, 0, 7, 1), 1)
    with pytest.raises(ProtocolError, match="trailing"):
        schema.decode(InitProducerIdResponse, body + b"\x00", 1)


# Pinned encodings, written field by field from Kafka's message schemas: they
# catch a field declared out of wire order, which a round-trip cannot.
PINNED = [
    ("MetadataRequest v1", MetadataRequest.for_topics(["t"]), 1, "00000001000174"),
    (
        "MetadataRequest v10",
        MetadataRequest.for_topics(["t"]),
        10,
        # compact array(1): topic id (16 zero bytes), compact name "t", tags;
        # allow auto-create, include cluster ops, include topic ops, tags
        "02" + "00" * 16 + "02740000000000",
    ),
    (
        "ProduceRequest v9",
        ProduceRequest(None, -1, 500, [TopicProduceData("t", [PartitionProduceData(3, b"\xab")])]),
        9,
        # null txn id, acks -1, timeout 500, topics[1]: "t", partitions[1]: 3, records(1 byte)
        "00ffff000001f4020274020000000302ab000000",
    ),
    (
        "ProduceRequest v3",
        ProduceRequest(None, 1, 500, [TopicProduceData("t", [PartitionProduceData(3, b"\xab")])]),
        3,
        "ffff0001000001f400000001000174000000010000000300000001ab",
    ),
]


@pytest.mark.parametrize(
    ("name", "message", "version", "hexdump"), PINNED, ids=[p[0] for p in PINNED]
)
def test_pinned_encodings(name: str, message: Message, version: int, hexdump: str) -> None:
    assert schema.encode(message, version).hex() == hexdump
