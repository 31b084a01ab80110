"""Structure-aware fuzzing of the SASL exchange: whatever a broker sends, AuthenticationError.

Cases (:func:`tests.fuzzing.sasl_case`) are valid SCRAM server-first and
server-final messages (SHA-256 and SHA-512, computed from the password) with
their attributes rewritten (iteration counts of every kind, salts and nonces
that are not base64 or ASCII, duplicate, missing and reserved attributes)
and their bytes mutated; PLAIN's answer tokens; and whole SaslHandshake and
SaslAuthenticate responses, broker error messages included (what PLAIN and
OAUTHBEARER failures carry), decoded and fed to the
:class:`~kafka_sink.protocol.sasl.SaslAuthenticator`. Decoding may raise
ProtocolError; the exchange may raise only AuthenticationError.
"""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_sink.errors import AuthenticationError, ProtocolError
from kafka_sink.protocol.sasl import ScramMechanism
from tests.fuzzing import CLIENT_NONCE, Case, run_case, sasl_case, scram_seed

# Seeds cost a key derivation each: a few, made once.
POOL = [scram_seed(random.Random(index)) for index in range(6)]
ALLOWED = (ProtocolError, AuthenticationError)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rng=st.randoms(use_true_random=False))
def test_mutated_sasl_answers_end_in_a_value_or_an_authentication_error(
    rng: random.Random,
) -> None:
    case = sasl_case(POOL, rng)
    outcome, error = run_case(case, ALLOWED)
    assert outcome != "other", f"{case.label}: {error!r} on {case.data.hex()}"
    if case.label.startswith("scram") and error is not None:
        assert isinstance(error, AuthenticationError)


def test_the_seeds_complete_a_valid_exchange() -> None:
    for seed in POOL:
        client = ScramMechanism(seed.mechanism, "user", "pencil", nonce=CLIENT_NONCE)
        client.initial_response()
        assert client.evaluate(seed.server_first.encode()) is not None
        assert client.evaluate(seed.server_final.encode()) is None
        assert client.complete


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=" + CLIENT_NONCE.encode() + b"xyz,s=c2FsdA==,i=" + b"9" * 30,  # OverflowError once
        b"r=" + CLIENT_NONCE.encode() + b"xyz,s=c2FsdA==,i=2147483648",  # OverflowError once
        b"r=" + CLIENT_NONCE.encode() + "é,s=c2FsdA==,i=4096".encode(),  # UnicodeEncodeError once
        b"r=" + CLIENT_NONCE.encode() + "xyz,s=é,i=4096".encode(),
        b"r=" + CLIENT_NONCE.encode() + b"xyz,s=c2FsdA==,i=4096,m=ext",
        b"\xff\xfe",
        b"",
    ],
)
def test_what_the_fuzzer_found_in_server_first(server_first: bytes) -> None:
    client = ScramMechanism("SCRAM-SHA-512", "user", "pencil", nonce=CLIENT_NONCE)
    client.initial_response()
    outcome, error = run_case(Case(server_first, client.evaluate, "server-first"), ALLOWED)
    assert outcome == "error"
    assert isinstance(error, AuthenticationError)


@pytest.mark.parametrize("server_final", ["v=ë", "v=" + "A" * 10_001, "e=" + "x" * 10_000, ""])
def test_what_the_fuzzer_found_in_server_final(server_final: str) -> None:
    client = copy.copy(POOL[0].after_first)  # the pool's own stays unused
    outcome, error = run_case(Case(server_final.encode(), client.evaluate, "server-final"), ALLOWED)
    assert outcome == "error"
    assert isinstance(error, AuthenticationError)
    assert len(error.message) < 600
