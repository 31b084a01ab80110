"""Sink's arguments and options: every mistake raises at the call, naming the argument."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_sink import InvalidArgumentError, Sink, SinkClosedError, SinkConfig


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"acks": 2}, "acks"),
        ({"acks": True}, "acks"),
        ({"compression_type": "brotli"}, "compression_type"),
        ({"linger_ms": -1}, "linger_ms"),
        ({"batch_size": 0}, "batch_size"),
        ({"buffer_memory": "lots"}, "buffer_memory"),
        ({"on_buffer_full": "explode"}, "on_buffer_full"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 6}, "max_in_flight"),  # idempotence allows at most 5
        ({"acks": 1, "enable_idempotence": True}, "acks"),
        ({"request_timeout_ms": 0}, "request_timeout_ms"),
        ({"delivery_timeout_ms": float("nan")}, "delivery_timeout_ms"),
        ({"max_request_size": 10}, "max_request_size"),
        ({"client_id": ""}, "client_id"),
        ({"ip_version": 5}, "ip_version"),
        ({"lingerms": 5}, "lingerms"),  # a typo is named, not ignored
    ],
)
def test_invalid_options_name_the_option(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Sink("localhost:9092", **options)
    assert info.value.argument == argument


def test_bootstrap_servers_are_checked() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Sink("host:notaport")
    assert info.value.argument == "bootstrap_servers"
    with pytest.raises(InvalidArgumentError):
        Sink()


def test_defaults_follow_acks() -> None:
    assert SinkConfig.build("h:1").enable_idempotence is True
    assert SinkConfig.build("h:1", acks=1).enable_idempotence is False
    assert SinkConfig.build("h:1", acks="all").acks == -1
    assert SinkConfig.build("h:1", compression_type="LZ4").compression_type == "lz4"


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda s: s.produce("", b"v"), "topic"),
        (lambda s: s.produce("bad topic", b"v"), "topic"),
        (lambda s: s.produce(7, b"v"), "topic"),
        (lambda s: s.produce("t", 42), "value"),
        (lambda s: s.produce("t", b"v", key=1.5), "key"),
        (lambda s: s.produce("t", b"v", partition=-1), "partition"),
        (lambda s: s.produce("t", b"v", partition="0"), "partition"),
        (lambda s: s.produce("t", b"v", timestamp=-3), "timestamp"),
        (lambda s: s.produce("t", b"v", timestamp=1.5), "timestamp"),
        (lambda s: s.produce("t", b"v", headers=[("k", 3)]), "headers"),
        (lambda s: s.produce("t", b"v", headers="k=v"), "headers"),
        (lambda s: s.produce("t", b"v", on_delivery="print"), "on_delivery"),
    ],
)
def test_invalid_produce_arguments_raise_at_the_call(call: Any, argument: str) -> None:
    sink = Sink("127.0.0.1:1")
    try:
        with pytest.raises(InvalidArgumentError) as info:
            call(sink)
        assert info.value.argument == argument
    finally:
        sink.close(0)


def test_produce_after_close_raises() -> None:
    sink = Sink("127.0.0.1:1")
    sink.close(0)
    sink.close(0)  # idempotent
    assert sink.closed
    with pytest.raises(SinkClosedError):
        sink.produce("t", b"v")


def test_a_first_produce_racing_close_starts_no_sender() -> None:
    # The first produce() of a thread that passed the closed check as close()
    # ran would start the sender thread; after the close it must not.
    sink = Sink("127.0.0.1:1")
    sink.close(0)
    with pytest.raises(SinkClosedError):
        sink._start()  # where that produce() goes next
    assert sink._thread is None


def test_repr_and_metrics_hold_no_record_content() -> None:
    # Distinctive content in every part of a record, so that any of it would show.
    content = ["key-7f3a", "value-9c1e", "header-name-41d2", "header-value-e8b5"]
    sink = Sink("127.0.0.1:1", client_id="app")  # nothing listens: records stay buffered
    try:
        futures = [
            sink.produce(
                "audit",
                f"{content[1]} {i}".encode(),
                key=content[0].encode(),
                headers=[(content[2], content[3].encode())],
            )
            for i in range(5)
        ]
        futures.append(
            sink.produce("audit", content[1], key=content[0], headers={content[2]: content[3]})
        )
        while_buffered = sink.metrics()
        texts = [repr(sink), repr(while_buffered), str(while_buffered)]
    finally:
        sink.close(0)
    assert all(f.exception(timeout=10) is not None for f in futures)  # failed by close()
    after_close = sink.metrics()
    texts += [repr(sink), repr(after_close), str(after_close)]
    # The snapshots were taken with the records held, then failed: the claim is
    # checked against a sink that had their content.
    assert while_buffered["records_incomplete"] == 6
    assert while_buffered["buffer_bytes_used"] > 0
    assert after_close["records_failed_total"] == 6
    for text in texts:
        for piece in content:
            assert piece not in text, f"{piece!r} in {text[:500]!r}"
    assert "127.0.0.1:1" in texts[0]
    assert "app" in texts[0]
