"""SASL authentication: SaslHandshake (key 17), SaslAuthenticate (key 36), mechanisms.

Theory of operation (Kafka protocol guide, "SASL Authentication Sequence";
KIP-43, KIP-152). On a SASL_PLAINTEXT or SASL_SSL listener the client, once
ApiVersions has told it what the broker speaks, sends:

1. ``SaslHandshake`` v1 naming its mechanism. The broker answers with an
   error (UNSUPPORTED_SASL_MECHANISM, with the list of mechanisms it enables)
   or with success. v0 would switch the connection to raw SASL tokens
   without Kafka framing (Kafka 0.10); this library needs v1 (Kafka 1.0+).
2. ``SaslAuthenticate`` requests, each carrying the mechanism's next token,
   until the mechanism is complete. An error answer (58
   SASL_AUTHENTICATION_FAILED, with the broker's message) ends the exchange;
   the broker then closes the connection.

Only then does the broker take ordinary requests on the connection.

Mechanisms, as bytes-in/bytes-out objects:

- PLAIN (RFC 4616): one message ``authzid NUL authcid NUL password`` with an
  empty authorization id; the broker answers with an empty token.
- SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): client-first
  ``n,,n=<user>,r=<nonce>``; the server-first message adds the broker's
  nonce, the salt and the iteration count; client-final carries the proof
  ``ClientKey XOR HMAC(StoredKey, AuthMessage)``; server-final carries
  ``v=<ServerSignature>``, which is checked, so a broker that does not know
  the password is not trusted either. Like Kafka's own client, names and
  passwords are used as UTF-8 without SASLprep; ``=`` and ``,`` in the user
  name are escaped as ``=3D`` and ``=2C``.
- OAUTHBEARER (RFC 7628, KIP-255): a bearer token from the application's
  provider, in :mod:`kafka_sink.protocol.oauthbearer`.

A successful SaslAuthenticate v1 also says how long the session lasts
(KIP-368, ``session_lifetime_ms``): the connection must then run the
exchange again before that time.

:class:`SaslAuthenticator` drives the exchange for one connection without any
I/O, for the blocking and the non-blocking connections alike. Nothing here
ever puts a password into a message, a repr or an exception.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import ClassVar, Protocol

from kafka_sink.config import (
    DEFAULT_MAX_SCRAM_ITERATIONS,
    MIN_SCRAM_ITERATIONS,
    check_scram_max_iterations,
)
from kafka_sink.error_codes import KafkaErrorCode, describe_error
from kafka_sink.errors import AuthenticationError, InvalidArgumentError, UnsupportedVersionError
from kafka_sink.protocol.schema import (
    BYTES,
    INT16,
    INT64,
    NULLABLE_STRING,
    STRING,
    Array,
    Message,
    Request,
    field,
)

__all__ = [
    "DEFAULT_MAX_SCRAM_ITERATIONS",
    "MIN_SCRAM_ITERATIONS",
    "PlainMechanism",
    "SaslAuthenticateRequest",
    "SaslAuthenticateResponse",
    "SaslAuthenticator",
    "SaslHandshakeRequest",
    "SaslHandshakeResponse",
    "SaslMechanism",
    "ScramMechanism",
    "check_scram_max_iterations",
    "create_mechanism",
]

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
# RFC 5802 "posit-number": ASCII digits, no sign, no leading zero. int() alone
# would also take "+4096", " 4096", "4_096" and non-ASCII digits.
_POSITIVE_NUMBER = re.compile(r"[1-9][0-9]*")
# RFC 5802 "printable": ASCII from "!" to "~" except ",".
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
# Broker-supplied text quoted in an error message is cut to this many characters.
_QUOTE_LIMIT = 200


@dataclass(frozen=True, slots=True)
class SaslHandshakeRequest(Request["SaslHandshakeResponse"]):
    """Name the SASL mechanism the client will use."""

    API_KEY: ClassVar[int] = SASL_HANDSHAKE
    VERSIONS: ClassVar[tuple[int, int]] = (0, 1)
    # Never flexible: the version cannot be bumped (KAFKA-9577).
    FLEXIBLE_FROM: ClassVar[int] = 1 << 15

    mechanism: str = field(STRING)


@dataclass(frozen=True, slots=True)
class SaslHandshakeResponse(Message):
    """An error code and the mechanisms the broker enables."""

    API_KEY: ClassVar[int] = SASL_HANDSHAKE
    VERSIONS: ClassVar[tuple[int, int]] = (0, 1)
    FLEXIBLE_FROM: ClassVar[int] = 1 << 15

    error_code: int = field(INT16)
    mechanisms: list[str] = field(Array(STRING))


@dataclass(frozen=True, slots=True, repr=False)
class SaslAuthenticateRequest(Request["SaslAuthenticateResponse"]):
    """One token of the client's side of the SASL exchange."""

    API_KEY: ClassVar[int] = SASL_AUTHENTICATE
    VERSIONS: ClassVar[tuple[int, int]] = (0, 2)
    FLEXIBLE_FROM: ClassVar[int] = 2

    auth_bytes: bytes = field(BYTES)

    def __repr__(self) -> str:
        # A PLAIN token is the password itself: show its size only.
        return f"SaslAuthenticateRequest(auth_bytes=<{len(self.auth_bytes)} bytes>)"


@dataclass(frozen=True, slots=True, repr=False)
class SaslAuthenticateResponse(Message):
    """The broker's token, or an error code and message."""

    API_KEY: ClassVar[int] = SASL_AUTHENTICATE
    VERSIONS: ClassVar[tuple[int, int]] = (0, 2)
    FLEXIBLE_FROM: ClassVar[int] = 2

    error_code: int = field(INT16)
    error_message: str | None = field(NULLABLE_STRING)
    auth_bytes: bytes = field(BYTES)
    session_lifetime_ms: int = field(INT64, versions="1+", default=0)

    def __repr__(self) -> str:
        return (
            f"SaslAuthenticateResponse(error_code={self.error_code}, "
            f"error_message={self.error_message!r}, auth_bytes=<{len(self.auth_bytes)} bytes>, "
            f"session_lifetime_ms={self.session_lifetime_ms})"
        )


class SaslMechanism(Protocol):
    """The client side of one SASL mechanism, for one authentication."""

    #: The mechanism's name as SaslHandshake sends it (e.g. ``"SCRAM-SHA-256"``).
    name: str

    @property
    def complete(self) -> bool:
        """Whether the exchange has ended successfully."""

    def initial_response(self) -> bytes:
        """The first token the client sends."""

    def evaluate(self, challenge: bytes) -> bytes | None:
        """The token answering the broker's ``challenge``; None once complete.

        Raises :class:`~kafka_sink.errors.AuthenticationError` when the
        challenge is malformed or fails verification.
        """


class PlainMechanism:
    """SASL PLAIN (RFC 4616): the user name and the password in one message."""

    __slots__ = ("_password", "_username", "complete")

    name = "PLAIN"

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode("utf-8")
        self._password = password.encode("utf-8")
        self.complete = False

    def __repr__(self) -> str:
        return f"<PlainMechanism user={self._username.decode('utf-8', 'replace')!r}>"

    def initial_response(self) -> bytes:
        return b"\0" + self._username + b"\0" + self._password

    def evaluate(self, challenge: bytes) -> bytes | None:
        # Kafka answers an accepted PLAIN message with an empty token.
        if challenge:
            raise AuthenticationError(
                "unexpected data after the PLAIN message", mechanism=self.name
            )
        self.complete = True
        return None


_SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class ScramMechanism:
    """SASL SCRAM (RFC 5802) with SHA-256 or SHA-512 (RFC 7677).

    ``max_iterations`` bounds the iteration count the broker may ask for
    (:data:`DEFAULT_MAX_SCRAM_ITERATIONS`, Kafka's own maximum, by default):
    the client runs that many rounds of PBKDF2, so a larger count is refused
    with :class:`~kafka_sink.errors.AuthenticationError` naming the count and
    the limit, before any key is derived. Whatever the broker sends,
    :meth:`evaluate` returns a token or raises ``AuthenticationError``.

    ``nonce`` is for tests that replay the RFCs' examples; by default each
    authentication draws 24 random bytes from :mod:`secrets`. ``hash_name``
    may name any :mod:`hashlib` hash for the same reason (``"sha1"`` is
    RFC 5802's example); Kafka uses the two of :data:`_SCRAM_HASHES`.
    """

    __slots__ = (
        "_auth_message",
        "_client_first_bare",
        "_hash",
        "_max_iterations",
        "_nonce",
        "_password",
        "_server_signature",
        "_state",
        "_username",
        "name",
    )

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        nonce: str | None = None,
        hash_name: str | None = None,
        max_iterations: int = DEFAULT_MAX_SCRAM_ITERATIONS,
    ) -> None:
        digest = hash_name or _SCRAM_HASHES.get(mechanism)
        if digest is None:
            raise InvalidArgumentError(
                "sasl_mechanism", f"{mechanism!r} is not a SCRAM mechanism this library speaks"
            )
        self._max_iterations = check_scram_max_iterations(max_iterations)
        self.name = mechanism
        self._hash = digest
        self._username = username
        self._password = password.encode("utf-8")
        self._nonce = nonce if nonce is not None else secrets.token_urlsafe(24)
        self._client_first_bare = ""
        self._auth_message = b""
        self._server_signature = b""
        self._state = "initial"

    def __repr__(self) -> str:
        return f"<ScramMechanism {self.name} user={self._username!r} {self._state}>"

    @property
    def complete(self) -> bool:
        return self._state == "complete"

    def initial_response(self) -> bytes:
        self._client_first_bare = f"n={escape_username(self._username)},r={self._nonce}"
        self._state = "first-sent"
        # GS2 header "n,,": no channel binding, no authorization identity.
        return ("n,," + self._client_first_bare).encode("utf-8")

    @property
    def max_iterations(self) -> int:
        """The largest iteration count accepted from the broker."""
        return self._max_iterations

    def evaluate(self, challenge: bytes) -> bytes | None:
        state = self._state
        try:
            if state == "first-sent":
                return self._client_final(challenge)
            if state == "final-sent":
                self._verify_server_final(challenge)
                return None
        except AuthenticationError:
            raise
        except Exception as exc:
            # Every malformation has its own check above; this only keeps the
            # promise that nothing but AuthenticationError leaves the exchange.
            step = "server-first" if state == "first-sent" else "server-final"
            raise self._fail(
                f"cannot process the SCRAM {step} message ({type(exc).__name__})"
            ) from exc
        raise AuthenticationError(f"unexpected SCRAM message in state {state}", mechanism=self.name)

    def _fail(self, problem: str) -> AuthenticationError:
        self._state = "failed"
        return AuthenticationError(problem, mechanism=self.name)

    def _client_final(self, challenge: bytes) -> bytes:
        try:
            server_first = challenge.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("the SCRAM server-first message is not UTF-8") from None
        attributes = _parse_attributes(server_first)
        if attributes is None or "m" in attributes:
            # "m" is reserved for mandatory extensions, which no client knows.
            raise self._fail("malformed SCRAM server-first message")
        nonce = attributes.get("r", "")
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise self._fail("the broker's SCRAM nonce does not extend the client's")
        if not _PRINTABLE.fullmatch(nonce):
            # The nonce goes back in client-final, which is ASCII (RFC 5802 "printable").
            raise self._fail("the broker's SCRAM nonce has characters outside printable ASCII")
        count = attributes.get("i", "")
        if not _POSITIVE_NUMBER.fullmatch(count):
            raise self._fail(
                "malformed salt or iteration count in SCRAM server-first "
                f"(the iteration count is {_quote(count)})"
            )
        # Compared as text first: a count of thousands of digits is never
        # converted (and 2**63 and more could not even reach PBKDF2).
        limit = self._max_iterations
        if len(count) > len(str(limit)) or int(count) > limit:
            raise self._fail(
                f"the broker asked for {_shorten(count)} SCRAM iterations, more than the limit "
                f"of {limit} (sasl_scram_max_iterations)"
            )
        iterations = int(count)
        if iterations < MIN_SCRAM_ITERATIONS:
            raise self._fail(
                f"the broker asked for {iterations} SCRAM iterations; "
                f"at least {MIN_SCRAM_ITERATIONS} are required"
            )
        try:
            salt = base64.b64decode(attributes.get("s", ""), validate=True)
        except ValueError:  # not base64 (binascii.Error), or text that is not ASCII
            raise self._fail(
                "malformed salt or iteration count in SCRAM server-first (the salt is not base64)"
            ) from None
        if not salt:
            raise self._fail("the SCRAM server-first message has an empty salt")
        salted = hashlib.pbkdf2_hmac(self._hash, self._password, salt, iterations)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        # "biws" is base64("n,,"), the GS2 header sent in client-first.
        without_proof = f"c=biws,r={nonce}"
        self._auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode()
        signature = self._hmac(stored_key, self._auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = self._hmac(self._hmac(salted, b"Server Key"), self._auth_message)
        self._state = "final-sent"
        return f"{without_proof},p={base64.b64encode(proof).decode('ascii')}".encode("ascii")

    def _verify_server_final(self, challenge: bytes) -> None:
        attributes = _parse_attributes(challenge.decode("utf-8", "replace"))
        if attributes is None:
            raise self._fail("malformed SCRAM server-final message")
        if "e" in attributes:
            raise self._fail(f"the broker ended SCRAM with error {_quote(attributes['e'])}")
        try:
            verifier = base64.b64decode(attributes.get("v", ""), validate=True)
        except ValueError:  # not base64 (binascii.Error), or text that is not ASCII
            raise self._fail("malformed signature in SCRAM server-final") from None
        if not hmac.compare_digest(verifier, self._server_signature):
            raise self._fail(
                "the broker's SCRAM signature does not verify: it does not know the password"
            )
        self._state = "complete"

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()


def _quote(text: str) -> str:
    """Broker-supplied text for an error message: quoted, and cut when long."""
    if len(text) <= _QUOTE_LIMIT:
        return repr(text)
    return f"{text[:_QUOTE_LIMIT]!r}... ({len(text)} characters)"


def escape_username(username: str) -> str:
    """A user name as SCRAM writes it (RFC 5802 ``saslname``): ``=`` and ``,`` escaped."""
    return username.replace("=", "=3D").replace(",", "=2C")


def _parse_attributes(message: str) -> dict[str, str] | None:
    """``a=value,b=value`` into a dict; None when malformed."""
    attributes: dict[str, str] = {}
    for part in message.split(","):
        name, sep, value = part.partition("=")
        if not sep or len(name) != 1 or not name.isalpha() or name in attributes:
            return None
        attributes[name] = value
    return attributes


def create_mechanism(
    mechanism: str,
    username: str,
    password: str,
    *,
    scram_max_iterations: int = DEFAULT_MAX_SCRAM_ITERATIONS,
) -> SaslMechanism:
    """A fresh client for one authentication with ``mechanism`` (a name of SASL_MECHANISMS).

    ``scram_max_iterations`` bounds the SCRAM iteration count a broker may ask for.
    """
    if mechanism == "PLAIN":
        return PlainMechanism(username, password)
    return ScramMechanism(mechanism, username, password, max_iterations=scram_max_iterations)


class SaslAuthenticator:
    """The SaslHandshake + SaslAuthenticate exchange of one connection, without I/O.

    Send :meth:`request`, feed the answer to :meth:`handle`, and repeat until
    it returns True. ``api_versions`` are the broker's ranges from
    ApiVersions. Every failure raises
    :class:`~kafka_sink.errors.AuthenticationError` naming the mechanism and
    the broker (or :class:`~kafka_sink.errors.UnsupportedVersionError` for a
    broker older than Kafka 1.0).
    """

    __slots__ = (
        "_auth_version",
        "_broker",
        "_mechanism",
        "_state",
        "_token",
        "_user",
        "session_lifetime_ms",
    )

    def __init__(
        self,
        mechanism: SaslMechanism,
        broker: str,
        api_versions: dict[int, tuple[int, int]],
        *,
        user: str | None = None,
    ) -> None:
        self._mechanism = mechanism
        self._broker = broker
        self._user = user
        handshake = api_versions.get(SASL_HANDSHAKE)
        authenticate = api_versions.get(SASL_AUTHENTICATE)
        if handshake is None or handshake[1] < 1 or authenticate is None:
            raise UnsupportedVersionError(
                f"broker {broker} does not offer SaslHandshake v1 and SaslAuthenticate "
                "(SASL needs Kafka 1.0 or newer)",
                broker=broker,
            )
        low, high = SaslAuthenticateRequest.VERSIONS
        self._auth_version = min(high, authenticate[1])
        if self._auth_version < max(low, authenticate[0]):
            raise UnsupportedVersionError(
                f"no common version of SaslAuthenticate with broker {broker}", broker=broker
            )
        self._state = "handshake"
        self._token = b""
        #: KIP-368: how long the broker keeps the session once authenticated, in ms
        #: (SaslAuthenticate v1 and later; 0: it does not expire).
        self.session_lifetime_ms = 0

    def __repr__(self) -> str:
        return f"<SaslAuthenticator {self._mechanism.name} {self._broker} {self._state}>"

    @property
    def mechanism(self) -> str:
        return self._mechanism.name

    def request(self) -> tuple[SaslHandshakeRequest | SaslAuthenticateRequest, int]:
        """The request to send next and its version."""
        if self._state == "handshake":
            return SaslHandshakeRequest(self._mechanism.name), 1
        return SaslAuthenticateRequest(self._token), self._auth_version

    def handle(self, response: object) -> bool:
        """Take the broker's answer; True once authenticated."""
        if isinstance(response, SaslHandshakeResponse) and self._state == "handshake":
            self._handshake(response)
            return False
        if isinstance(response, SaslAuthenticateResponse) and self._state == "authenticate":
            return self._authenticate(response)
        raise self._error(f"unexpected {type(response).__name__} during the SASL exchange")

    def _handshake(self, response: SaslHandshakeResponse) -> None:
        code = response.error_code
        if code == KafkaErrorCode.UNSUPPORTED_SASL_MECHANISM:
            offered = _quote_list(response.mechanisms)
            raise self._error(
                f"the broker does not enable this mechanism (it offers: {offered})", code=code
            )
        if code == KafkaErrorCode.ILLEGAL_SASL_STATE:
            raise self._error(
                "the broker refused the SASL handshake (ILLEGAL_SASL_STATE): is the listener "
                "a SASL_PLAINTEXT or SASL_SSL one?",
                code=code,
            )
        if code:
            raise self._error(f"the SASL handshake failed: {_describe(code)}", code=code)
        self._token = self._mechanism.initial_response()
        self._state = "authenticate"

    def _authenticate(self, response: SaslAuthenticateResponse) -> bool:
        code = response.error_code
        if code:
            message = response.error_message
            detail = _shorten(message) if message else _describe(code)
            # OAUTHBEARER learns why in the step before (RFC 7628 error JSON).
            failure = getattr(self._mechanism, "failure", None)
            if isinstance(failure, str) and failure not in detail:
                detail = f"{detail} ({failure})"
            raise self._error(f"the broker refused the credentials: {detail}", code=code)
        try:
            token = self._mechanism.evaluate(response.auth_bytes)
        except AuthenticationError as exc:
            raise self._error(exc.message) from None
        except Exception as exc:
            # A mechanism of another author may raise anything; the exchange
            # still ends with the one error its callers handle.
            raise self._error(
                f"the {self._mechanism.name} mechanism failed on the broker's token "
                f"({type(exc).__name__})"
            ) from exc
        if self._mechanism.complete:
            self._state = "complete"
            self._token = b""
            self.session_lifetime_ms = max(0, response.session_lifetime_ms)
            return True
        if token is None:
            raise self._error("the mechanism ended without completing")
        self._token = token
        return False

    def _error(self, problem: str, *, code: int | None = None) -> AuthenticationError:
        self._state = "failed"
        self._token = b""
        who = f" as {self._user!r}" if self._user else ""
        return AuthenticationError(
            f"SASL {self._mechanism.name} authentication{who} with broker {self._broker} "
            f"failed: {problem}",
            code=code,
            broker=self._broker,
            mechanism=self._mechanism.name,
        )


def _describe(code: int) -> str:
    info = describe_error(code)
    return f"{info.name} ({code})"


def _shorten(text: str) -> str:
    """Broker-supplied text for an error message, cut when long."""
    if len(text) <= _QUOTE_LIMIT:
        return text
    return f"{text[:_QUOTE_LIMIT]}... ({len(text)} characters)"


# Mechanism names quoted in an error message, at most this many.
_LIST_LIMIT = 16


def _quote_list(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(_shorten(name) for name in names[:_LIST_LIMIT])
    more = len(names) - _LIST_LIMIT
    return f"{shown} and {more} more" if more > 0 else shown
