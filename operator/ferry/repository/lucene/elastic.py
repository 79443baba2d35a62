"""What Elasticsearch and OpenSearch keep in a Lucene document's stored fields.

- ``_uid`` (indices created by ES 5.x and older): the string ``type#id``;
- ``_id`` (ES 6+ and OpenSearch): the id in Elasticsearch's compact Uid encoding — a
  first byte 0xFE then two decimal digits per byte (0xF pads an odd count), 0xFF then
  UTF-8, 0xFD then raw bytes shown as URL-safe base64, or (any other first byte) the raw
  bytes of an id that was URL-safe base64 without padding, such as auto-generated ids;
- ``_routing``: a string; ``_source``: the document as the client sent it — JSON, or
  SMILE, CBOR or YAML, which are transcoded to JSON here.
Nested objects are separate Lucene documents with neither a stored id nor a source.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ferry.repository import smile

ID_FIELDS = ("_id", "_uid")
SOURCE, ROUTING = "_source", "_routing"
_NUMERIC, _UTF8, _BASE64_ESCAPE = 0xFE, 0xFF, 0xFD


class SourceError(ValueError):
    """A stored ``_source`` is in no format Elasticsearch writes."""


def decode_id(raw: bytes) -> str:
    """An ``_id`` from Elasticsearch's binary Uid encoding."""
    if not raw:
        raise ValueError("an empty _id")
    magic = raw[0]
    if magic == _UTF8:
        return raw[1:].decode()
    if magic == _NUMERIC:
        digits = []
        for b in raw[1:]:
            digits.append(str(b >> 4))
            if b & 0x0F == 0x0F:
                break
            digits.append(str(b & 0x0F))
        return "".join(digits)
    if magic == _BASE64_ESCAPE:
        raw = raw[1:]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def split_uid(uid: bytes) -> tuple[str, str]:
    """ES 5's ``type#id`` → (type, id)."""
    type_, sep, id_ = uid.decode().partition("#")
    if not sep:
        raise ValueError(f"_uid {uid[:40]!r} has no type")
    return type_, id_


def _binary_as_base64(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):  # as Elasticsearch shows binary in JSON
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def source_json(raw: bytes) -> bytes:
    """A stored ``_source`` as JSON bytes: JSON as is, other content types transcoded."""
    head = raw.lstrip()[:1]
    if head in (b"{", b"["):
        return raw
    if raw.startswith(smile.HEADER):
        value = smile.loads(raw)
    elif raw.startswith(b"---"):
        import yaml

        value = yaml.safe_load(raw)
    elif raw and 0xA0 <= raw[0] <= 0xBF:  # a CBOR map (major type 5)
        import cbor2

        value = cbor2.loads(raw)
    else:
        raise SourceError(f"_source starting {raw[:8]!r} is not JSON, SMILE, CBOR or YAML")
    return orjson.dumps(value, default=_binary_as_base64)
