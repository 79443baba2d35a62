"""A small decoder for Jackson's SMILE binary JSON, as Elasticsearch writes it.

Elasticsearch and OpenSearch keep snapshot metadata (``snap-<uuid>.dat``, ``meta-*.dat``)
as SMILE behind a Lucene codec header. Only decoding is needed and no maintained Python
package does it, so this implements the format's decoding rules (Jackson's
smile-format-specification, version 1.0): shared key and value back-references, the
ASCII/Unicode string classes, zigzag variable-length integers and 7-bit encoded
floats and binary.
"""

from __future__ import annotations

import struct
from typing import Any

HEADER = b":)\n"
_MAX_SHARED = 1024  # both shared tables reset when they reach this many entries
_MAX_SHARED_LENGTH = 64  # only strings up to this many bytes are shared


class SmileError(ValueError):
    """The bytes are not SMILE or are truncated."""


class _Decoder:
    def __init__(self, data: bytes) -> None:
        if not data.startswith(HEADER) or len(data) < 4:
            raise SmileError("not SMILE: the ':)\\n' header is missing")
        flags = data[3]
        self.shared_keys_enabled = bool(flags & 0x01)
        self.shared_values_enabled = bool(flags & 0x02)
        self.data = data
        self.pos = 4
        self.keys: list[str] = []
        self.values: list[str] = []

    # -- low-level reads -----------------------------------------------------------------

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise SmileError("truncated SMILE data")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def _bytes(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise SmileError("truncated SMILE data")
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def _until_end_marker(self) -> bytes:
        end = self.data.find(b"\xfc", self.pos)
        if end < 0:
            raise SmileError("unterminated long string")
        out = self.data[self.pos:end]
        self.pos = end + 1
        return out

    def _vint(self) -> int:
        # 7 bits per byte, most significant first; the last byte has its high bit set
        # and carries 6 bits.
        value = 0
        while True:
            b = self._byte()
            if b & 0x80:
                return (value << 6) | (b & 0x3F)
            value = (value << 7) | b

    @staticmethod
    def _zigzag(n: int) -> int:
        return (n >> 1) ^ -(n & 1)

    def _seven_bit(self, count: int, bits: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 7) | (self._byte() & 0x7F)
        return value & ((1 << bits) - 1)

    def _seven_bit_binary(self) -> bytes:
        length = self._vint()
        chunks, rest = divmod(length, 7)
        out = bytearray()
        for _ in range(chunks):
            value = self._seven_bit(8, 56)
            out += value.to_bytes(7, "big")
        if rest:
            # A trailing chunk of n bytes takes n bytes of 7 bits and one more holding
            # the remaining n bits, right-aligned.
            value = 0
            for _ in range(rest):
                value = (value << 7) | (self._byte() & 0x7F)
            value = (value << rest) | (self._byte() & ((1 << rest) - 1))
            out += value.to_bytes(rest, "big")
        return bytes(out)

    # -- shared tables ---------------------------------------------------------------------

    def _share_key(self, key: str, raw_length: int) -> None:
        if self.shared_keys_enabled and raw_length <= _MAX_SHARED_LENGTH:
            if len(self.keys) >= _MAX_SHARED:
                self.keys = []
            self.keys.append(key)

    def _share_value(self, value: str, raw_length: int) -> None:
        if self.shared_values_enabled and raw_length <= _MAX_SHARED_LENGTH:
            if len(self.values) >= _MAX_SHARED:
                self.values = []
            self.values.append(value)

    def _shared(self, table: list[str], index: int, what: str) -> str:
        if index >= len(table):
            raise SmileError(f"reference to unknown shared {what} #{index}")
        return table[index]

    # -- values and keys -------------------------------------------------------------------

    def value(self) -> Any:
        b = self._byte()
        if b <= 0x1F:
            if b == 0:
                raise SmileError("reserved SMILE token 0x00")
            return self._shared(self.values, b - 1, "value")
        if b == 0x20:
            return ""
        if b == 0x21:
            return None
        if b == 0x22:
            return False
        if b == 0x23:
            return True
        if b in (0x24, 0x25):
            return self._zigzag(self._vint())
        if b == 0x26:
            raw = self._seven_bit_binary()
            return int.from_bytes(raw, "big", signed=True)
        if b == 0x28:
            return struct.unpack(">f", self._seven_bit(5, 32).to_bytes(4, "big"))[0]
        if b == 0x29:
            return struct.unpack(">d", self._seven_bit(10, 64).to_bytes(8, "big"))[0]
        if b == 0x2A:
            scale = self._zigzag(self._vint())
            unscaled = int.from_bytes(self._seven_bit_binary(), "big", signed=True)
            return unscaled * (10 ** -scale) if scale else unscaled
        if 0x40 <= b <= 0xBF:
            if b < 0x60:
                length, ascii_ = (b & 0x1F) + 1, True
            elif b < 0x80:
                length, ascii_ = (b & 0x1F) + 33, True
            elif b < 0xA0:
                length, ascii_ = (b & 0x1F) + 2, False
            else:
                length, ascii_ = (b & 0x1F) + 34, False
            raw = self._bytes(length)
            text = raw.decode("ascii" if ascii_ else "utf-8")
            self._share_value(text, length)
            return text
        if 0xC0 <= b <= 0xDF:
            return self._zigzag(b & 0x1F)
        if b in (0xE0, 0xE4):
            return self._until_end_marker().decode("utf-8")
        if b == 0xE8:
            return self._seven_bit_binary()
        if 0xEC <= b <= 0xEF:
            return self._shared(self.values, ((b & 0x03) << 8) | self._byte(), "value")
        if b == 0xF8:
            items: list[Any] = []
            while self.data[self.pos:self.pos + 1] != b"\xf9":
                items.append(self.value())
            self.pos += 1
            return items
        if b == 0xFA:
            obj: dict[str, Any] = {}
            while True:
                key = self.key()
                if key is None:
                    return obj
                obj[key] = self.value()
        if b == 0xFD:
            return self._bytes(self._vint())
        raise SmileError(f"unexpected SMILE token 0x{b:02x} at byte {self.pos - 1}")

    def key(self) -> str | None:
        """The next key of an object, or None at the end of the object."""
        b = self._byte()
        if b == 0xFB:
            return None
        if b == 0x20:
            return ""
        if 0x30 <= b <= 0x33:
            return self._shared(self.keys, ((b & 0x03) << 8) | self._byte(), "key")
        if b == 0x34:
            raw = self._until_end_marker()
            key = raw.decode("utf-8")
            return key
        if 0x40 <= b <= 0x7F:
            return self._shared(self.keys, b & 0x3F, "key")
        if 0x80 <= b <= 0xBF:
            length = (b & 0x3F) + 1
            key = self._bytes(length).decode("ascii")
            self._share_key(key, length)
            return key
        if 0xC0 <= b <= 0xF7:
            length = (b - 0xC0) + 2
            key = self._bytes(length).decode("utf-8")
            self._share_key(key, length)
            return key
        raise SmileError(f"unexpected SMILE key token 0x{b:02x} at byte {self.pos - 1}")


def loads(data: bytes) -> Any:
    """Decode one SMILE document into Python values (dict, list, str, int, ...)."""
    decoder = _Decoder(data)
    value = decoder.value()
    return value
