"""Structure-aware fuzzing of every response decoder, at every version the library speaks.

Each case is a valid encoding of a random response (:mod:`tests.fuzzing`)
whose lengths and counts are rewritten (0, -1, the input's size, 2**31 - 1,
2**63 - 1...) and whose bytes are flipped, cut and spliced; Fetch responses
carry record batches, valid or mutated, that are decoded too, and response
frames go through :class:`~kafka_sink.protocol.client.ClientProtocol` in
pieces. Decoding must return a value or raise ProtocolError. The long runs of
the same fuzzers are ``python -m tests.bench.fuzz``.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sink.errors import ProtocolError
from kafka_sink.protocol import apis, schema
from kafka_sink.protocol.api_versions import ApiVersionsResponse
from kafka_sink.protocol.client import ClientProtocol
from kafka_sink.protocol.fetch import FetchPartitionResponse, FetchResponse, FetchTopicResponse
from kafka_sink.protocol.metadata import MetadataRequest, MetadataResponse
from kafka_sink.protocol.primitives import encode_uvarint
from kafka_sink.protocol.schema import Message
from tests.fuzzing import (
    MESSAGE_FAMILIES,
    Mark,
    encode_marked,
    frame_case,
    message_case,
    random_message,
    run_case,
)

CASES = [
    (cls, version)
    for classes in MESSAGE_FAMILIES.values()
    for cls in classes
    for version in range(cls.VERSIONS[0], cls.VERSIONS[1] + 1)
]
IDS = [f"{cls.__name__}-v{version}" for cls, version in CASES]
FAST = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
randoms = st.randoms(use_true_random=False)


def test_every_response_decoder_is_fuzzed() -> None:
    fuzzed = {cls for cls, _ in CASES}
    assert fuzzed == {apis.response_class(key) for key in apis._PAIRS}


@pytest.mark.parametrize(("cls", "version"), CASES, ids=IDS)
@FAST
@given(rng=randoms)
def test_seeds_are_valid_and_their_marks_are_numbers(
    cls: type[Message], version: int, rng: random.Random
) -> None:
    message = random_message(cls, version, rng)
    data, marks = encode_marked(message, version)
    assert schema.decode(cls, data, version) == message
    for mark in marks:
        assert 0 <= mark.start < mark.end <= len(data)


@pytest.mark.parametrize(("cls", "version"), CASES, ids=IDS)
@FAST
@given(rng=randoms)
def test_mutated_responses_decode_or_raise_protocol_error(
    cls: type[Message], version: int, rng: random.Random
) -> None:
    case = message_case(cls, version, rng)
    outcome, error = run_case(case)
    assert outcome != "other", f"{case.label}: {error!r} on {case.data.hex()}"


@settings(max_examples=200, deadline=None, database=None)
@given(rng=randoms)
def test_mutated_frames_fed_in_pieces_decode_or_raise_protocol_error(rng: random.Random) -> None:
    case = frame_case(rng)
    outcome, error = run_case(case)
    assert outcome != "other", f"{case.label}: {error!r} on {case.data.hex()}"


# -- huge counts are refused before anything is allocated for them ------------------------------

# The largest claim each kind of length or count can make (a compact one is
# its uvarint less one).
HUGE = {"i16": ((1 << 15) - 1,), "i32": ((1 << 31) - 1,), "uv": (1 << 31, 1 << 32)}


def _with_number(data: bytes, mark: Mark, value: int) -> bytes:
    if mark.kind == "uv":
        raw = encode_uvarint(value)
    else:
        width = {"i16": ">h", "i32": ">i", "i64": ">q", "i8": ">b"}[mark.kind]
        bits = 8 * struct.calcsize(width)
        wrapped = value & ((1 << bits) - 1)
        raw = struct.pack(width, wrapped - (1 << bits) if wrapped >> (bits - 1) else wrapped)
    return data[: mark.start] + raw + data[mark.end :]


def _peak(decode: Callable[[bytes], object], data: bytes) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    try:
        decode(data)
        error = None
    except ProtocolError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


ALLOCATION_CASES = [
    (cls, version)
    for cls, version in CASES
    if version in (cls.VERSIONS[0], cls.VERSIONS[1]) and cls is not ApiVersionsResponse
]


@pytest.mark.parametrize(
    ("cls", "version"), ALLOCATION_CASES, ids=[f"{c.__name__}-v{v}" for c, v in ALLOCATION_CASES]
)
def test_every_length_and_count_set_huge_is_refused_without_allocating_for_it(
    cls: type[Message], version: int
) -> None:
    rng = random.Random(f"{cls.__name__}{version}")
    message = random_message(cls, version, rng)
    data, marks = encode_marked(message, version)
    sizes = [m for m in marks if m.size]
    # Only InitProducerId v0-v1 has no length at all (fixed-width fields only).
    assert sizes or (cls.__name__ == "InitProducerIdResponse" and version < 2)
    for mark in sizes:
        for value in HUGE[mark.kind]:
            mutated = _with_number(data, mark, value)
            peak, error = _peak(lambda d: schema.decode(cls, d, version), mutated)
            # A claim the input cannot hold is refused; nothing it claims is
            # allocated (a few KiB of decoding state, whatever the claim).
            assert error is not None, (mark, value)
            assert peak < 64 * 1024 + 16 * len(mutated), (mark, value, peak)


def test_a_compact_array_claiming_two_billion_elements_allocates_nothing_for_them() -> None:
    # MetadataResponse v12: throttle, then brokers as a compact array of 2**31 - 1.
    body = b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff\x07" + b"\x00" * 8
    peak, error = _peak(lambda d: schema.decode(MetadataResponse, d, 12), body)
    assert isinstance(error, ProtocolError)
    assert "array claims 2147483646 elements" in str(error)
    assert peak < 16 * 1024


def test_a_fetch_records_field_claiming_two_gigabytes_allocates_nothing_for_it() -> None:
    response = FetchResponse(
        responses=[FetchTopicResponse("t", [FetchPartitionResponse(0, 0, 10, records=b"x" * 70)])]
    )
    data = schema.encode(response, 4)
    claim = data.index(struct.pack(">i", 70) + b"x" * 70)
    mutated = data[:claim] + struct.pack(">i", (1 << 31) - 1) + data[claim + 4 :]
    peak, error = _peak(lambda d: schema.decode(FetchResponse, d, 4), mutated)
    assert isinstance(error, ProtocolError)
    assert peak < 16 * 1024


def test_a_frame_claiming_a_huge_size_is_refused_before_any_buffer_grows() -> None:
    protocol = ClientProtocol("fuzz", max_response_size=1 << 20)
    protocol.frame(MetadataRequest(None), 1)
    protocol.receive_data(struct.pack(">i", (1 << 31) - 1) + b"\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        protocol.bytes_needed()
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        protocol.next_response()
