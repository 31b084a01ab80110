"""Decoding bytes written by an independent implementation: librdkafka 2.16.0.

The hex below was captured by ``python -m tests.capture_librdkafka`` (run it
again to refresh it):

- ``BATCHES``: the RecordBatch of each ProduceRequest that librdkafka's
  producer (confluent-kafka, ``compression.codec`` none, gzip, snappy, lz4
  and zstd) sent to a loopback broker, for the three records of
  :data:`RECORDS`, all with timestamp :data:`TIMESTAMP`.
- ``RESPONSES``: the bodies (response header removed) of what librdkafka's
  mock cluster answered: Fetch v4 and v12 responses holding the batches that
  producer wrote to it (one codec per fetch), Produce v3, v8 and v9 responses
  to a kafka_sink ProduceRequest, Metadata v1 and v12 responses.

Nothing of kafka_sink wrote these bytes, so they catch a decoder that only
agrees with kafka_sink's own encoder.
"""

from __future__ import annotations

import pytest

from kafka_sink.errors import ProtocolError
from kafka_sink.protocol import schema
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.fetch import FetchResponse
from kafka_sink.protocol.metadata import MetadataResponse
from kafka_sink.protocol.produce import ProduceResponse
from kafka_sink.protocol.records import RecordBatch, TimestampType, decode_batches
from tests.capture_librdkafka import RECORDS, TIMESTAMP

CODECS = {
    "none": Compression.NONE,
    "gzip": Compression.GZIP,
    "snappy": Compression.SNAPPY,
    "lz4": Compression.LZ4,
    "zstd": Compression.ZSTD,
}

# fmt: off
BATCHES = {
    "RecordBatch none": (
        "0000000000000000000001a80000000002a9c820a00000000000020000018bcfe568000000018bcfe56800ff"
        "ffffffffffffffffffffffffff000000034a000000046b311666697273742076616c7565020c736f75726365"
        "146c696272646b61666b61fe0400000201f0047365636f6e642076616c7565207365636f6e642076616c7565"
        "207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f"
        "6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e64207661"
        "6c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c75652073"
        "65636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e64"
        "2076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c75"
        "65207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c756520736563"
        "6f6e642076616c7565207365636f6e642076616c756520001e000004046b3301020a747261636501"
    ),
    "RecordBatch gzip": (
        "00000000000000000000009000000000028a06276d0001000000020000018bcfe568000000018bcfe56800ff"
        "ffffffffffffffffffffffffff000000031f8b0800000000000003f362606060c936144bcb2c2a2e51284bcc"
        "294d65e229ce2f2d4a4e15c9c94c2a4ac94e4ccb4efcc7c2c0c0c4f881a53835393f2f05a24c619443348741"
        "0e18ca2cd9c68c4c5c254589c9a98c0093bbc9d777010000"
    ),
    "RecordBatch snappy": (
        "00000000000000000000008f0000000002b0c4300d0002000000020000018bcfe568000000018bcfe56800ff"
        "ffffffffffffffffffffffffff00000003f702d04a000000046b311666697273742076616c7565020c736f75"
        "726365146c696272646b61666b61fe0400000201f0047365636f6e64200527042073fe0d00fe0d00fe0d00fe"
        "0d00a60d0040001e000004046b3301020a747261636501"
    ),
    "RecordBatch lz4": (
        "00000000000000000000009100000000023b1fc0100003000000020000018bcfe568000000018bcfe56800ff"
        "ffffffffffffffffffffffffff0000000304224d1860408251000000f2254a000000046b3116666972737420"
        "76616c7565020c736f75726365146c696272646b61666b61fe0400000201f0047365636f6e6427001f200d00"
        "ff19f002001e000004046b3301020a74726163650100000000"
    ),
    "RecordBatch zstd": (
        "00000000000000000000008b00000000029e99bb0e0004000000020000018bcfe568000000018bcfe56800ff"
        "ffffffffffffffffffffffffff0000000328b52ffd00588d020064044a000000046b31166669727374207661"
        "6c7565020c736f75726365146c696272646b61666b61fe0400000201f0047365636f6e6420001e000004046b"
        "3301020a747261636501020028309520852928"
    ),
}

RESPONSES = {
    "FetchResponse v4 none": (
        "0000000000000001000670696e6e656400000001000000000000000000000000000f000000000000000f0000"
        "0000000001b40000000000000000000001a80000000002a9c820a00000000000020000018bcfe56800000001"
        "8bcfe56800ffffffffffffffffffffffffffff000000034a000000046b311666697273742076616c7565020c"
        "736f75726365146c696272646b61666b61fe0400000201f0047365636f6e642076616c7565207365636f6e64"
        "2076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c75"
        "65207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c756520736563"
        "6f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076"
        "616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c756520"
        "7365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e"
        "642076616c7565207365636f6e642076616c7565207365636f6e642076616c7565207365636f6e642076616c"
        "7565207365636f6e642076616c7565207365636f6e642076616c756520001e000004046b3301020a74726163"
        "6501"
    ),
    "FetchResponse v12 gzip": (
        "00000000000000000000020770696e6e656402000000000000000000000000000f000000000000000f000000"
        "000000000001ffffffff9d0100000000000000030000009000000000028a06276d0001000000020000018bcf"
        "e568000000018bcfe56800ffffffffffffffffffffffffffff000000031f8b0800000000000003f362606060"
        "c936144bcb2c2a2e51284bcc294d65e229ce2f2d4a4e15c9c94c2a4ac94e4ccb4efcc7c2c0c0c4f881a53835"
        "393f2f05a24c6194433487410e18ca2cd9c68c4c5c254589c9a98c0093bbc9d777010000000000"
    ),
    "FetchResponse v12 snappy": (
        "00000000000000000000020770696e6e656402000000000000000000000000000f000000000000000f000000"
        "000000000001ffffffff9c0100000000000000060000008f0000000002b0c4300d0002000000020000018bcf"
        "e568000000018bcfe56800ffffffffffffffffffffffffffff00000003f702d04a000000046b311666697273"
        "742076616c7565020c736f75726365146c696272646b61666b61fe0400000201f0047365636f6e6420052704"
        "2073fe0d00fe0d00fe0d00fe0d00a60d0040001e000004046b3301020a747261636501000000"
    ),
    "FetchResponse v12 lz4": (
        "00000000000000000000020770696e6e656402000000000000000000000000000f000000000000000f000000"
        "000000000001ffffffff9e0100000000000000090000009100000000023b1fc0100003000000020000018bcf"
        "e568000000018bcfe56800ffffffffffffffffffffffffffff0000000304224d1860408251000000f2254a00"
        "0000046b311666697273742076616c7565020c736f75726365146c696272646b61666b61fe0400000201f004"
        "7365636f6e6427001f200d00ff19f002001e000004046b3301020a74726163650100000000000000"
    ),
    "FetchResponse v12 zstd": (
        "00000000000000000000020770696e6e656402000000000000000000000000000f000000000000000f000000"
        "000000000001ffffffff9801000000000000000c0000008b00000000029e99bb0e0004000000020000018bcf"
        "e568000000018bcfe56800ffffffffffffffffffffffffffff0000000328b52ffd00588d020064044a000000"
        "046b311666697273742076616c7565020c736f75726365146c696272646b61666b61fe0400000201f0047365"
        "636f6e6420001e000004046b3301020a747261636501020028309520852928000000"
    ),
    "ProduceResponse v3": (
        "00000001000670696e6e656400000001000000000000000000000000000f00000000000004d200000000"
    ),
    "ProduceResponse v8": (
        "00000001000670696e6e656400000001000000000000000000000000001000000000000004d2000000000000"
        "000000000000ffff00000000"
    ),
    "ProduceResponse v9": (
        "020770696e6e656402000000000000000000000000001100000000000004d200000000000000000100000000"
        "00000000"
    ),
    "MetadataResponse v1": (
        "000000010000000100093132372e302e302e310000909fffff00000000000000010000000670696e6e656400"
        "000000010000000000000000000100000001000000010000000100000001"
    ),
    "MetadataResponse v12": (
        "0000000002000000010a3132372e302e302e310000909f0000186d6f636b436c757374657231353563386663"
        "3134643230000000000200000770696e6e656449559554fce847a9862ad9f2b9c5ac71000200000000000000"
        "0000010000000002000000010200000001010080000000000000"
    ),
}
# fmt: on


def _hex(parts: tuple[str, ...] | str) -> bytes:
    return bytes.fromhex("".join(parts))


def _check_records(batch: RecordBatch, base_offset: int) -> None:
    assert batch.base_offset == base_offset
    assert batch.timestamp_type == TimestampType.CREATE_TIME
    assert batch.producer_id == -1
    assert not batch.is_transactional
    assert not batch.is_control
    assert [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch.records] == [
        (base_offset + index, TIMESTAMP, key, value, headers)
        for index, (key, value, headers) in enumerate(RECORDS)
    ]


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_librdkafka_record_batches_decode_in_every_codec(codec: str) -> None:
    [batch] = decode_batches(_hex(BATCHES[f"RecordBatch {codec}"]), allow_partial_tail=False)
    assert batch.compression == CODECS[codec]
    assert batch.magic == 2
    _check_records(batch, 0)


@pytest.mark.parametrize("name", [n for n in RESPONSES if n.startswith("FetchResponse")])
def test_mock_cluster_fetch_responses_decode_with_their_batches(name: str) -> None:
    _, version_text, codec = name.split()
    version = int(version_text[1:])
    response = schema.decode(FetchResponse, _hex(RESPONSES[name]), version, strict=False)
    assert response.error_code == 0
    [topic] = response.responses
    assert topic.topic == "pinned"
    [partition] = topic.partitions
    assert (partition.partition_index, partition.error_code) == (0, 0)
    assert partition.high_watermark == 3 * len(CODECS)
    [batch] = partition.batches()
    assert batch.compression == CODECS[codec]
    _check_records(batch, 3 * list(CODECS).index(codec))


@pytest.mark.parametrize(("version", "offset"), [(3, 15), (8, 16), (9, 17)])
def test_mock_cluster_produce_responses_decode(version: int, offset: int) -> None:
    response = schema.decode(
        ProduceResponse, _hex(RESPONSES[f"ProduceResponse v{version}"]), version, strict=False
    )
    [topic] = response.responses
    [partition] = topic.partition_responses
    assert (topic.name, partition.index, partition.error_code) == ("pinned", 0, 0)
    assert partition.base_offset == offset
    assert partition.log_append_time_ms == 1234  # what the mock always answers
    assert response.throttle_time_ms == 0


@pytest.mark.parametrize("version", [1, 12])
def test_mock_cluster_metadata_responses_decode(version: int) -> None:
    data = _hex(RESPONSES[f"MetadataResponse v{version}"])
    response = schema.decode(MetadataResponse, data, version, strict=False)
    [broker] = response.brokers
    assert (broker.node_id, broker.host) == (1, "127.0.0.1")
    [topic] = response.topics
    assert (topic.error_code, topic.name) == (0, "pinned")
    [partition] = topic.partitions
    assert (partition.partition_index, partition.leader_id) == (0, 1)
    if version == 12:
        assert topic.topic_id is not None
        # The mock pads Metadata v12 with one byte, which is why responses are
        # decoded without the trailing-bytes check.
        with pytest.raises(ProtocolError, match="1 unexpected trailing bytes"):
            schema.decode(MetadataResponse, data, version)
