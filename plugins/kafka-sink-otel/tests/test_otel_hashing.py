"""The resource-attribute key: XXH64 against the reference implementation, the Collector's bytes."""

from __future__ import annotations

import random
import struct

import pytest
import xxhash
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from kafka_sink_otel import resource_attributes_key
from kafka_sink_otel.hashing import xxh64


@pytest.mark.parametrize("seed", [0, 1, 0x9E3779B185EBCA87, 2**64 - 1])
def test_xxh64_matches_the_reference_at_every_length(seed: int) -> None:
    generator = random.Random(seed)
    # Every tail length (0-31) below, at and above one 32-byte stripe, and longer inputs.
    for length in [*range(100), 255, 256, 1000, 4099]:
        data = generator.randbytes(length)
        assert xxh64(data, seed) == xxhash.xxh64_intdigest(data, seed), length


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _reference_key(written: bytes) -> bytes:
    return struct.pack(
        "<QQ", xxhash.xxh64_intdigest(written), xxhash.xxh64_intdigest(written + b"\xf3")
    )


def test_no_attributes_give_sixteen_zero_bytes() -> None:
    assert resource_attributes_key([]) == bytes(16)


def test_the_bytes_hashed_are_those_of_the_collector() -> None:
    # pdatautil.MapHash: keys sorted, a tag byte before each key (0xf4) and
    # value (0xf7 string, 0xfa int64 LE, 0xfb float64 LE, 0xf8/0xf9 bool,
    # 0xf6 bytes, 0xfc..0xfd map, 0xfe..0xff list, 0xf5 empty).
    pairs = [
        _kv("service.name", AnyValue(string_value="checkout")),
        _kv("b.int", AnyValue(int_value=-2)),
        _kv("a.double", AnyValue(double_value=1.5)),
        _kv("c.true", AnyValue(bool_value=True)),
        _kv("c.false", AnyValue(bool_value=False)),
        _kv("d.bytes", AnyValue(bytes_value=b"\x00\xff")),
        _kv(
            "e.map",
            AnyValue(
                kvlist_value=KeyValueList(
                    values=[_kv("z", AnyValue(int_value=1)), _kv("y", AnyValue(string_value=""))]
                )
            ),
        ),
        _kv(
            "f.list",
            AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="x"), AnyValue()])),
        ),
        _kv("g.empty", AnyValue()),
    ]
    written = (
        b"\xf4a.double\xfb"
        + struct.pack("<d", 1.5)
        + b"\xf4b.int\xfa"
        + struct.pack("<q", -2)
        + b"\xf4c.false\xf9"
        + b"\xf4c.true\xf8"
        + b"\xf4d.bytes\xf6\x00\xff"
        + b"\xf4e.map\xfc\xf4y\xf7\xf4z\xfa"
        + struct.pack("<q", 1)
        + b"\xfd"
        + b"\xf4f.list\xfe\xf7x\xf5\xff"
        + b"\xf4g.empty\xf5"
        + b"\xf4service.name\xf7checkout"
    )
    assert resource_attributes_key(pairs) == _reference_key(written)


def test_the_key_ignores_the_order_of_the_attributes() -> None:
    pairs = [_kv(f"k{i}", AnyValue(int_value=i)) for i in range(20)]
    shuffled = list(pairs)
    random.Random(7).shuffle(shuffled)
    assert resource_attributes_key(pairs) == resource_attributes_key(shuffled)


def test_different_resources_get_different_keys() -> None:
    keys = {
        resource_attributes_key([_kv("service.name", AnyValue(string_value=f"svc-{i}"))])
        for i in range(100)
    }
    assert len(keys) == 100
    # A string "1" and an int 1 differ, as their tags do.
    assert resource_attributes_key([_kv("a", AnyValue(string_value="1"))]) != (
        resource_attributes_key([_kv("a", AnyValue(int_value=1))])
    )
