"""compression_level (KIP-390): every codec's levels write batches an independent consumer reads."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_sink import InvalidArgumentError, Sink
from kafka_sink.protocol.codecs import Compression
from kafka_sink.protocol.records import BatchBuilder
from tests.oracle import consume

LEVELS = [("gzip", 1), ("gzip", 9), ("lz4", 1), ("lz4", 12), ("zstd", -5), ("zstd", 19)]


@pytest.mark.parametrize(("codec", "level"), LEVELS, ids=str)
def test_each_level_is_read_back_by_librdkafka(
    mock_cluster: Any, topic_name: str, codec: str, level: int
) -> None:
    mock_cluster.create_topic(topic_name, 1, 3)
    values = [b'{"n": %d, "msg": "%s"}' % (i, b"level test " * (i % 7)) for i in range(60)]
    with Sink(
        mock_cluster.bootstrap_servers, compression_type=codec, compression_level=level
    ) as sink:
        futures = [sink.produce(topic_name, value, key=b"k") for value in values]
        assert sink.flush(30) == 0
    assert [f.result(0).offset for f in futures] == list(range(60))
    got = consume(mock_cluster.bootstrap_servers, topic_name, expected=60)
    assert [r.value for r in got] == values


def test_a_higher_level_writes_smaller_batches() -> None:
    value = b'{"msg": "GET /api/v1/orders 200", "user": "u-%d", "ms": %d}'
    sizes = {}
    for level in (1, 9):
        builder = BatchBuilder(Compression.GZIP, 1 << 20, level)
        for i in range(500):
            builder.append(1_700_000_000_000 + i, None, value % (i % 40, i))
        sizes[level] = len(builder.build())
    assert sizes[9] < sizes[1]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"compression_type": "none", "compression_level": 1}, "none has no compression levels"),
        ({"compression_type": "snappy", "compression_level": 3}, "snappy has no"),
        ({"compression_type": "gzip", "compression_level": 0}, "from 1 to 9 for gzip"),
        ({"compression_type": "lz4", "compression_level": 18}, "from 1 to 17 for lz4"),
        ({"compression_type": "zstd", "compression_level": 23}, "to 22 for zstd"),
        ({"compression_type": "zstd", "compression_level": "3"}, "must be an int"),
    ],
)
def test_a_level_the_codec_does_not_have_is_refused_by_name(
    options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=problem) as caught:
        Sink("127.0.0.1:1", **options)
    assert caught.value.context["argument"] == "compression_level"
