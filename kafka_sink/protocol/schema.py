"""Declarative message schemas: typed dataclasses that know their own wire layout.

Kafka defines every request and response as a versioned schema (the JSON files
under ``clients/src/main/resources/common/message/`` of Apache Kafka): an ordered
list of fields, each present in a range of versions, with "flexible" versions
(KIP-482) switching strings, bytes and arrays to their compact forms and adding
a tagged-field section to every struct.

Here each message is a frozen dataclass whose fields are declared with
:func:`field`, naming the wire type, the versions the field exists in and, for
tagged fields, its tag. :func:`encode` and :func:`decode` walk a plan compiled
once per (message class, version) and cached, so a message is defined in
exactly one place and every version of it is encoded and decoded by the same
code. Fields absent from a version take their default on decode and are not
written on encode.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from kafka_sink.errors import InvalidArgumentError, ProtocolError
from kafka_sink.protocol.primitives import Reader, Writer

__all__ = [
    "BOOL",
    "BYTES",
    "FLOAT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "NULLABLE_BYTES",
    "NULLABLE_STRING",
    "RECORDS",
    "STRING",
    "UUID",
    "AnswerT",
    "Array",
    "Message",
    "Request",
    "ResponseT_co",
    "Struct",
    "WireType",
    "decode",
    "encode",
    "field",
]

M = TypeVar("M")
#: What a request is answered with: ``MetadataRequest`` is a ``Request[MetadataResponse]``.
ResponseT_co = TypeVar("ResponseT_co", covariant=True)
#: The same, for the functions that take a ``Request[AnswerT]`` and give back its ``AnswerT``.
AnswerT = TypeVar("AnswerT")


class WireType:
    """How one field's value is read from and written to the wire."""

    __slots__ = ("item", "name", "nullable", "read", "struct", "write")

    def __init__(
        self,
        name: str,
        read: Callable[[Reader, int, bool], Any],
        write: Callable[[Writer, Any, int, bool], None],
        *,
        item: WireType | None = None,
        struct: type[Any] | None = None,
        nullable: bool = False,
    ) -> None:
        self.name = name
        self.read = read
        self.write = write
        # Structure, for tools that walk a schema (test data generators, docs).
        self.item = item
        self.struct = struct
        self.nullable = nullable

    def __repr__(self) -> str:
        return self.name


def _fixed(name: str) -> WireType:
    def read(r: Reader, version: int, flexible: bool) -> Any:
        return getattr(r, name)()

    def write(w: Writer, value: Any, version: int, flexible: bool) -> None:
        getattr(w, name)(value)

    return WireType(name, read, write)


def _sized(name: str, nullable: bool = False) -> WireType:
    def read(r: Reader, version: int, flexible: bool) -> Any:
        return getattr(r, name)(flexible)

    def write(w: Writer, value: Any, version: int, flexible: bool) -> None:
        getattr(w, name)(value, flexible)

    return WireType(name, read, write, nullable=nullable)


INT8 = _fixed("int8")
INT16 = _fixed("int16")
INT32 = _fixed("int32")
INT64 = _fixed("int64")
FLOAT64 = _fixed("float64")
BOOL = _fixed("boolean")
UUID = _fixed("uuid")
STRING = _sized("string")
NULLABLE_STRING = _sized("nullable_string", nullable=True)
BYTES = _sized("bytes_")
NULLABLE_BYTES = _sized("nullable_bytes", nullable=True)
#: A ``records`` field: nullable bytes holding encoded record batches.
RECORDS = _sized("nullable_bytes", nullable=True)


def Array(item: WireType, *, nullable: bool = False) -> WireType:
    """An array of ``item`` (a list on decode; any sequence on encode)."""

    def read(r: Reader, version: int, flexible: bool) -> Any:
        count = r.array_length(flexible)
        if count < 0:
            if nullable:
                return None
            raise ProtocolError("null where a non-nullable array is required")
        item_read = item.read
        return [item_read(r, version, flexible) for _ in range(count)]

    def write(w: Writer, value: Any, version: int, flexible: bool) -> None:
        if value is None:
            if not nullable:
                raise InvalidArgumentError("array", "None where a list is required")
            w.array_length(None, flexible)
            return
        w.array_length(len(value), flexible)
        item_write = item.write
        for element in value:
            item_write(w, element, version, flexible)

    return WireType(f"[]{item.name}", read, write, item=item, nullable=nullable)


def Struct(cls: type[Any]) -> WireType:
    """A nested struct, itself a dataclass declared with :func:`field`."""

    def read(r: Reader, version: int, flexible: bool) -> Any:
        return _decode_struct(cls, r, version, flexible)

    def write(w: Writer, value: Any, version: int, flexible: bool) -> None:
        _encode_struct(value, w, version, flexible)

    return WireType(cls.__name__, read, write, struct=cls)


_MISSING: Any = dataclasses.MISSING


def field(
    wire: WireType,
    *,
    versions: str = "0+",
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    tag: int | None = None,
) -> Any:
    """Declare a message field: its wire type, the versions it exists in, its tag.

    ``versions`` is written as in Kafka's schemas: ``"3+"`` or ``"8-10"``.
    Tagged fields (``tag`` set) only exist in flexible versions.
    """
    low, _, high = versions.partition("-")
    if low.endswith("+"):
        span = (int(low[:-1]), 1 << 15)
    elif high:
        span = (int(low), int(high))
    else:
        span = (int(low), int(low))
    meta = {"wire": wire, "span": span, "tag": tag}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Message:
    """Base of every top-level request and response.

    ``API_KEY`` names the API, ``VERSIONS`` the (inclusive) range the library
    implements, ``FLEXIBLE_FROM`` the first flexible version.
    """

    __slots__ = ()

    API_KEY: ClassVar[int]
    VERSIONS: ClassVar[tuple[int, int]]
    FLEXIBLE_FROM: ClassVar[int]

    def expects_response(self) -> bool:
        """Whether the broker answers this request (a Produce with acks=0 gets no answer)."""
        return True

    @classmethod
    def is_flexible(cls, version: int) -> bool:
        return version >= cls.FLEXIBLE_FROM


class Request(Message, Generic[ResponseT_co]):
    """Base of every top-level request: a ``Request[R]`` is answered with an ``R``.

    The parameter is for the type checker, so that a connection's
    ``request()`` and a client's callbacks see the type of the answer; the
    framing layer finds the class it decodes an answer into by the API key
    (:func:`kafka_sink.protocol.apis.response_class`). A request that may get
    no answer says so in its parameter (``Request[ProduceResponse | None]``).
    """

    __slots__ = ()


# A compiled plan: the regular fields in wire order and the tagged fields by tag.
_Plan = tuple[
    tuple[tuple[str, WireType, Any], ...],
    dict[int, tuple[str, WireType]],
    tuple[tuple[str, Any], ...],
]
_plans: dict[tuple[type[Any], int, bool], _Plan] = {}


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory
    return _MISSING


def _plan(cls: type[Any], version: int, flexible: bool) -> _Plan:
    key = (cls, version, flexible)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    regular: list[tuple[str, WireType, Any]] = []
    tagged: dict[int, tuple[str, WireType]] = {}
    absent: list[tuple[str, Any]] = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "wire" not in meta:
            continue
        low, high = meta["span"]
        present = low <= version <= high and (meta["tag"] is None or flexible)
        if not present:
            absent.append((f.name, _default_of(f)))
        elif meta["tag"] is None:
            regular.append((f.name, meta["wire"], _default_of(f)))
        else:
            tagged[meta["tag"]] = (f.name, meta["wire"])
            absent.append((f.name, _default_of(f)))
    plan = (tuple(regular), tagged, tuple(absent))
    _plans[key] = plan
    return plan


def _decode_struct(cls: type[M], r: Reader, version: int, flexible: bool) -> M:
    regular, tagged, absent = _plan(cls, version, flexible)
    values: dict[str, Any] = {}
    for name, default in absent:
        if default is _MISSING:
            continue
        values[name] = default() if callable(default) else default
    for name, wire, _ in regular:
        values[name] = wire.read(r, version, flexible)
    if flexible:
        for tag, raw in r.tagged_fields().items():
            known = tagged.get(tag)
            if known is not None:
                name, wire = known
                sub = Reader(raw)
                values[name] = wire.read(sub, version, flexible)
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is absent from this version
        raise ProtocolError(f"cannot build {cls.__name__} v{version}: {exc}") from None


def _encode_struct(value: Any, w: Writer, version: int, flexible: bool) -> None:
    regular, tagged, absent = _plan(type(value), version, flexible)
    for name, wire, _ in regular:
        wire.write(w, getattr(value, name), version, flexible)
    if flexible:
        fields: dict[int, bytes] = {}
        defaults = dict(absent)
        for tag, (name, wire) in tagged.items():
            current = getattr(value, name)
            default = defaults.get(name, _MISSING)
            if callable(default):
                default = default()
            if current is None or current == default:
                continue
            sub = Writer()
            wire.write(sub, current, version, flexible)
            fields[tag] = bytes(sub.buffer)
        w.tagged_fields(fields)


def encode(message: Message, version: int) -> bytes:
    """Encode a top-level message body (no header) at ``version``."""
    low, high = message.VERSIONS
    if not low <= version <= high:
        raise InvalidArgumentError(
            "version", f"{type(message).__name__} supports versions {low}-{high}, not {version}"
        )
    w = Writer()
    _encode_struct(message, w, version, message.is_flexible(version))
    return bytes(w.buffer)


def encode_into(message: Message, version: int, w: Writer) -> None:
    """Encode a top-level message body into an existing writer."""
    _encode_struct(message, w, version, message.is_flexible(version))


def decode(
    cls: type[M],
    data: bytes | bytearray | memoryview | Reader,
    version: int,
    *,
    strict: bool = True,
) -> M:
    """Decode a top-level message body of ``cls`` at ``version``.

    With ``strict`` the whole buffer must be consumed: trailing bytes mean the
    version or the framing is wrong, and raise :class:`ProtocolError` like any
    other malformation. Responses are decoded with ``strict=False``, as
    Kafka's own client does, because some brokers pad them (the librdkafka
    mock cluster adds a byte to Metadata v12); the frame size bounds them.
    """
    r = data if isinstance(data, Reader) else Reader(data)
    flexible = version >= getattr(cls, "FLEXIBLE_FROM", 1 << 15)
    value = _decode_struct(cls, r, version, flexible)
    if strict and r.remaining:
        raise ProtocolError(
            f"{r.remaining} unexpected trailing bytes after {cls.__name__} v{version}"
        )
    return value


def uuid_or_none(value: uuid.UUID | None) -> uuid.UUID | None:
    """Kafka encodes "no topic id" as the all-zero UUID."""
    return None if value is None or value.int == 0 else value
