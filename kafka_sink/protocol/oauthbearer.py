"""SASL/OAUTHBEARER (RFC 7628, KIP-255): a bearer token instead of a password.

Theory of operation. The client asks a token provider (a callable of the
application's: an OAuth client-credentials flow, a cloud IAM token service)
for a token each time it authenticates, and sends it in one client-first
message, as Kafka's own client does::

    n,,\\x01auth=Bearer <token>[\\x01key=value...]\\x01\\x01

(the GS2 header ``n,,``: no channel binding, no authorization identity; then
``auth=`` and any SASL extensions of KIP-342, each ended by ``\\x01``, and a
final ``\\x01``). A broker that accepts the token answers with an empty token.
One that refuses it answers with an RFC 7628 error, a JSON object such as
``{"status":"invalid_token"}``; the client acknowledges it with a lone
``\\x01``, and the broker then fails the SaslAuthenticate request with error
58 (SASL_AUTHENTICATION_FAILED) and its message.

A broker with ``connections.max.reauth.ms`` set (KIP-368) tells the client,
in SaslAuthenticate v1, how long the session lasts; the connection must then
authenticate again before that time, with a fresh token
(:func:`reauthentication_delay` says when).

The token's value is a credential: it never appears in a ``repr()``, an
error message or a log record.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kafka_sink.errors import AuthenticationError, InvalidArgumentError

__all__ = [
    "MIN_REAUTHENTICATION_INTERVAL",
    "OAuthBearerMechanism",
    "OAuthBearerToken",
    "TokenProvider",
    "client_first_message",
    "fetch_token",
    "reauthentication_delay",
]

#: The shortest time between two authentications of one connection, in
#: seconds: a broker announcing a shorter session cannot make the client
#: authenticate (and call the token provider) more often than this.
MIN_REAUTHENTICATION_INTERVAL = 1.0
# Re-authenticate at this fraction of the session lifetime, drawn at random
# between the two so that the connections of many clients do not all
# re-authenticate at once (the Java client uses 85-95 % too).
_REAUTH_FRACTION = (0.85, 0.95)
_SEPARATOR = "\x01"
# RFC 6750 "b64token"; Kafka's broker accepts a subset (no "~", "+", "/", "=").
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 7628 section 3.1 (and Kafka's OAuthBearerClientInitialResponse).
_EXTENSION_KEY = re.compile(r"[A-Za-z]+")
_EXTENSION_VALUE = re.compile(r"[\x21-\x7e \t\r\n]+")
_QUOTE_LIMIT = 200


@dataclass(frozen=True, slots=True, repr=False)
class OAuthBearerToken:
    """A token for SASL/OAUTHBEARER, as a ``sasl_oauth_token_provider`` returns it.

    ``value`` is the token itself (a JWT, for instance): it is sent to the
    broker and never shown, not even by ``repr()``. ``lifetime_ms`` is, as
    in Kafka's Java client, the time the token expires, in milliseconds
    since the epoch (None: not known); a token that has already expired is
    refused before it is sent. ``principal`` names whom the token stands
    for, for error messages. ``extensions`` are SASL extensions (KIP-342)
    sent along with the token: keys of ASCII letters (not ``auth``), values
    of printable ASCII.

    Example::

        def token_provider() -> OAuthBearerToken:
            answer = identity_provider.client_credentials(scope="kafka")
            return OAuthBearerToken(
                answer["access_token"],
                lifetime_ms=int((time.time() + answer["expires_in"]) * 1000),
                principal="logshipper",
            )
    """

    value: str
    lifetime_ms: int | None = None
    principal: str | None = None
    extensions: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        problem = _value_problem(self.value)
        if problem is not None:
            raise InvalidArgumentError("value", f"must be a bearer token (it {problem})")
        lifetime = self.lifetime_ms
        if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int)):
            raise InvalidArgumentError(
                "lifetime_ms",
                f"must be None or the expiry time in ms since the epoch, got {lifetime!r}",
            )
        if self.principal is not None and (
            not isinstance(self.principal, str) or not self.principal
        ):
            raise InvalidArgumentError(
                "principal", f"must be None or a non-empty string, got {self.principal!r}"
            )
        if self.extensions is not None:
            object.__setattr__(self, "extensions", _check_extensions(self.extensions))

    def __repr__(self) -> str:
        return (
            f"OAuthBearerToken(value=<{len(self.value)} characters>, "
            f"lifetime_ms={self.lifetime_ms!r}, principal={self.principal!r}, "
            f"extensions={sorted(self.extensions or ())!r})"
        )


#: What ``sasl_oauth_token_provider`` is: a callable taking no argument and
#: returning an :class:`OAuthBearerToken` or the token's value as a string.
TokenProvider = Callable[[], "OAuthBearerToken | str"]


def _check_extensions(extensions: object) -> Mapping[str, str]:
    if not isinstance(extensions, Mapping):
        raise InvalidArgumentError(
            "extensions", f"must be a mapping of str to str, got {type(extensions).__name__}"
        )
    checked: dict[str, str] = {}
    for key, value in extensions.items():
        if not isinstance(key, str) or not _EXTENSION_KEY.fullmatch(key) or key == "auth":
            raise InvalidArgumentError(
                "extensions",
                f"key {key!r} is not an extension name (ASCII letters, and not 'auth')",
            )
        if not isinstance(value, str) or not _EXTENSION_VALUE.fullmatch(value):
            # The value may be a secret too: name the key only.
            raise InvalidArgumentError(
                "extensions", f"the value of {key!r} must be non-empty printable ASCII"
            )
        checked[key] = value
    return MappingProxyType(checked)


def client_first_message(token: str, extensions: Mapping[str, str] | None = None) -> bytes:
    """The OAUTHBEARER client-first message (RFC 7628 section 3.1) as Kafka expects it."""
    parts = [f"auth=Bearer {token}"]
    parts.extend(f"{key}={value}" for key, value in (extensions or {}).items())
    return ("n,," + _SEPARATOR + _SEPARATOR.join(parts) + _SEPARATOR * 2).encode("ascii")


def fetch_token(
    provider: Callable[[], object], broker: str, *, wall_clock: Callable[[], float]
) -> OAuthBearerToken:
    """Ask ``provider`` for a token to authenticate with ``broker``.

    Whatever goes wrong (the provider raises, returns something that is not
    a token, or a token that has already expired) raises
    :class:`~kafka_sink.errors.AuthenticationError` naming the broker; the
    provider's own exception is its ``__cause__``. ``wall_clock`` (``time.time``
    in the network layer) tells whether the token has expired.
    """
    try:
        token = provider()
    except Exception as exc:
        detail = str(exc)
        if len(detail) > _QUOTE_LIMIT:
            detail = f"{detail[:_QUOTE_LIMIT]}... ({len(detail)} characters)"
        raise _token_error(
            f"the token provider (sasl_oauth_token_provider) raised "
            f"{type(exc).__name__}{': ' + detail if detail else ''}",
            broker,
        ) from exc
    if isinstance(token, str):
        problem = _value_problem(token)
        if problem is not None:
            raise _token_error(
                f"the token provider (sasl_oauth_token_provider) returned a string that {problem}",
                broker,
            )
        token = OAuthBearerToken(token)
    elif not isinstance(token, OAuthBearerToken):
        raise _token_error(
            "the token provider (sasl_oauth_token_provider) returned a "
            f"{type(token).__name__}, not an OAuthBearerToken or a str",
            broker,
        )
    if token.lifetime_ms is not None and token.lifetime_ms <= wall_clock() * 1000.0:
        who = f" for {token.principal!r}" if token.principal else ""
        raise _token_error(
            f"the token provider (sasl_oauth_token_provider) returned a token{who} that expired "
            f"at {token.lifetime_ms} ms since the epoch",
            broker,
        )
    return token


def _value_problem(value: object) -> str | None:
    """What makes ``value`` no bearer token, without showing it (None: nothing)."""
    if not isinstance(value, str):
        return f"is a {type(value).__name__}"
    if not value:
        return "is empty"
    if not _B64TOKEN.fullmatch(value):
        return "has characters a bearer token cannot have (RFC 6750 b64token)"
    return None


def _token_error(problem: str, broker: str) -> AuthenticationError:
    return AuthenticationError(
        f"SASL OAUTHBEARER authentication with broker {broker} failed: {problem}",
        broker=broker,
        mechanism="OAUTHBEARER",
    )


class OAuthBearerMechanism:
    """The client side of SASL/OAUTHBEARER for one authentication, with one token."""

    __slots__ = ("_message", "_state", "failure", "principal")

    name = "OAUTHBEARER"

    def __init__(self, token: OAuthBearerToken) -> None:
        self._message = client_first_message(token.value, token.extensions)
        self.principal = token.principal
        #: What the broker's RFC 7628 error said (its ``status``), once it refused.
        self.failure: str | None = None
        self._state = "initial"

    def __repr__(self) -> str:
        return f"<OAuthBearerMechanism principal={self.principal!r} {self._state}>"

    @property
    def complete(self) -> bool:
        return self._state == "complete"

    def initial_response(self) -> bytes:
        self._state = "sent"
        return self._message

    def evaluate(self, challenge: bytes) -> bytes | None:
        if self._state == "sent":
            self._message = b""
            if not challenge:
                self._state = "complete"
                return None
            # RFC 7628 section 3.2.2: the broker refused the token; the client
            # answers with a lone separator, and the broker then fails the request.
            self.failure = _error_status(challenge)
            self._state = "refused"
            return _SEPARATOR.encode("ascii")
        if self._state == "refused":
            raise AuthenticationError(
                f"the broker refused the token ({self.failure})", mechanism=self.name
            )
        raise AuthenticationError(
            f"unexpected OAUTHBEARER message in state {self._state}", mechanism=self.name
        )


def _error_status(challenge: bytes) -> str:
    """The ``status`` (and ``scope``) of an RFC 7628 error, as text for a message."""
    try:
        error = json.loads(challenge.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "the broker's answer is not an RFC 7628 error"
    if not isinstance(error, dict) or not isinstance(error.get("status"), str):
        return "the broker's answer is not an RFC 7628 error"
    text = f"status {_quote(error['status'])}"
    scope = error.get("scope")
    if isinstance(scope, str) and scope:
        text += f", scope {_quote(scope)}"
    return text


def _quote(text: str) -> str:
    if len(text) <= _QUOTE_LIMIT:
        return repr(text)
    return f"{text[:_QUOTE_LIMIT]!r}... ({len(text)} characters)"


def reauthentication_delay(
    session_lifetime_ms: int, rng: Callable[[float, float], float] = random.uniform
) -> float | None:
    """Seconds until a connection must authenticate again (None: never).

    ``session_lifetime_ms`` is what the broker said in SaslAuthenticate v1
    (0: the session does not expire). The answer is 85 to 95 % of it, at
    random, and never less than :data:`MIN_REAUTHENTICATION_INTERVAL`.
    """
    if session_lifetime_ms <= 0:
        return None
    delay = session_lifetime_ms / 1000.0 * rng(*_REAUTH_FRACTION)
    return max(delay, MIN_REAUTHENTICATION_INTERVAL)
