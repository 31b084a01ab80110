"""The oracle: protobuf's own JSON parser and the LogsData message of opentelemetry-proto.

``json_format.Parse`` rejects unknown field names, wrong value types and
malformed 64-bit integers, so a document it accepts is valid protobuf JSON
for ``LogsData``. Writing the parsed message back (``MessageToDict``) and
comparing it with the document proves more: that nothing was dropped or
coerced on the way, that 64-bit integers are strings, enums integers, and
that no default values are written.

The one deviation of OTLP/JSON from protobuf's JSON mapping is that trace
and span ids are hex, not base64; the oracle translates them both ways.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

Oracle = Callable[[bytes], LogsData]


def _log_records(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_logs in document.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            yield from scope_logs.get("logRecords", [])


def _ids(document: dict[str, Any], convert: Callable[[str], str]) -> dict[str, Any]:
    for log_record in _log_records(document):
        for key in ("traceId", "spanId"):
            if key in log_record:
                log_record[key] = convert(log_record[key])
    return document


def _hex_to_base64(text: str) -> str:
    return base64.b64encode(bytes.fromhex(text)).decode("ascii")


def _base64_to_hex(text: str) -> str:
    return base64.b64decode(text).hex()


def parse_otlp_json(value: bytes) -> LogsData:
    """Parse one serialised document into ``LogsData``, and check it round-trips exactly."""
    text = value.decode("utf-8")  # strict: the bytes must be valid UTF-8
    document = json.loads(text)
    message = LogsData()
    json_format.Parse(json.dumps(_ids(json.loads(text), _hex_to_base64)), message)
    written = json_format.MessageToDict(message, use_integers_for_enums=True)
    assert _ids(written, _base64_to_hex) == document
    return message


@pytest.fixture
def oracle() -> Oracle:
    """``oracle(value)`` parses a serialised document, failing the test if it is not OTLP/JSON."""
    return parse_otlp_json
