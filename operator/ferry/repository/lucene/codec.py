"""Lucene's on-disk primitives: codec headers and footers, CRC32, and its DataInput.

Every Lucene file starts with a codec header (magic ``0x3FD76C17``, codec name, format
version; an *index* header adds the segment's 16-byte id and a suffix) and ends with a
16-byte footer (the inverted magic, algorithm 0, the CRC32 of everything before the
checksum itself). Headers and footers are big-endian in every version; the body is
big-endian (``readInt``/``readLong``) up to Lucene 8 and little-endian from Lucene 9 on
(:class:`LittleEndianInput`), except in ``segments_N``, which stays big-endian.
Variable-length integers are 7 bits per byte, least significant group first.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Collection

from ferry.repository.reader import RepositoryError

CODEC_MAGIC = 0x3FD76C17
FOOTER_MAGIC = CODEC_MAGIC ^ 0xFFFFFFFF
FOOTER_LENGTH = 16
ID_LENGTH = 16


class LuceneError(RepositoryError):
    """A shard's Lucene files cannot be read; the message names the file."""


class CorruptFile(LuceneError):
    """A file is truncated, has a wrong header, or fails its CRC32 check."""


class UnsupportedFormat(LuceneError):
    """A file format (or format version) this reader does not decode."""


class DataInput:
    """Lucene's big-endian DataInput over bytes already in memory, named for messages."""

    __slots__ = ("data", "name", "pos")
    ORDER = ">"

    def __init__(self, data: bytes, name: str, pos: int = 0) -> None:
        self.data, self.name, self.pos = data, name, pos

    def corrupt(self, reason: str) -> CorruptFile:
        return CorruptFile(f"{self.name}: {reason}")

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise self.corrupt(f"truncated (needs {n} bytes at offset {self.pos})")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise self.corrupt(f"truncated (needs {n} bytes at offset {self.pos})")
        self.pos += n

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise self.corrupt("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def short(self) -> int:
        return int(struct.unpack(self.ORDER + "h", self.take(2))[0])

    def int(self) -> int:
        return int(struct.unpack(self.ORDER + "i", self.take(4))[0])

    def long(self) -> int:
        return int(struct.unpack(self.ORDER + "q", self.take(8))[0])

    def be_int(self) -> int:
        """Codec headers are big-endian whatever the body's byte order."""
        return int(struct.unpack(">i", self.take(4))[0])

    def vint(self) -> int:
        return self.vlong(max_bytes=5)

    def vlong(self, max_bytes: int = 10) -> int:
        data, pos, value, shift = self.data, self.pos, 0, 0
        for _ in range(max_bytes):
            if pos >= len(data):
                raise self.corrupt("truncated")
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                self.pos = pos
                return value
            shift += 7
        raise self.corrupt(f"malformed variable-length integer at offset {self.pos}")

    def string(self) -> str:
        raw = self.take(self.vint())
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise self.corrupt("a string is not UTF-8") from None

    def strings(self) -> list[str]:
        return [self.string() for _ in range(self.vint())]

    def string_map(self) -> dict[str, str]:
        return {self.string(): self.string() for _ in range(self.vint())}

    def index_header(self, codecs: str | Collection[str], versions: range,
                     segment_id: bytes | None = None, suffix: str | None = None
                     ) -> tuple[str, int]:
        """Checks an index header (codec name, version range, segment id, suffix);
        returns the codec name and format version."""
        codec, version = self.header(codecs, versions)
        file_id = self.take(ID_LENGTH)
        if segment_id is not None and file_id != segment_id:
            raise self.corrupt("belongs to another segment (its header's id differs)")
        file_suffix = self.take(self.byte()).decode(errors="replace")
        if suffix is not None and file_suffix != suffix:
            raise self.corrupt(f"header suffix {file_suffix!r}, expected {suffix!r}")
        return codec, version

    def header(self, codecs: str | Collection[str], versions: range) -> tuple[str, int]:
        if self.be_int() & 0xFFFFFFFF != CODEC_MAGIC:
            raise self.corrupt("no Lucene codec header")
        codec, version = self.string(), self.be_int()
        expected = {codecs} if isinstance(codecs, str) else set(codecs)
        if codec not in expected:
            raise UnsupportedFormat(f"{self.name}: codec {codec!r} is not one this reader "
                                    f"decodes ({', '.join(sorted(expected))})")
        if version not in versions:
            raise UnsupportedFormat(f"{self.name}: {codec} format version {version} is not "
                                    f"one this reader decodes ({versions.start}-"
                                    f"{versions.stop - 1})")
        return codec, version

    def at_footer(self) -> None:
        """The body was read exactly: the footer follows."""
        if self.pos != len(self.data) - FOOTER_LENGTH:
            raise self.corrupt(f"{len(self.data) - FOOTER_LENGTH - self.pos} unexpected bytes "
                               "before the footer")


class LittleEndianInput(DataInput):
    """The body of a Lucene 9+ file: ``readShort``/``readInt``/``readLong`` little-endian."""

    __slots__ = ()
    ORDER = "<"


def codec_name(data: bytes) -> str:
    """The codec name of a file's header (empty if it has none), to choose a parser."""
    if len(data) < 5 or int.from_bytes(data[:4], "big") != CODEC_MAGIC:
        return ""
    return data[5:5 + data[4]].decode(errors="replace") if data[4] < 128 else ""


def verify_footer(data: bytes, name: str, expected: int | None = None) -> int:
    """Checks a whole file's footer and CRC32 (and the checksum its snapshot recorded);
    returns the checksum."""
    if len(data) < FOOTER_LENGTH:
        raise CorruptFile(f"{name}: truncated ({len(data)} bytes, shorter than a footer)")
    magic, algorithm, stored = struct.unpack(">iiq", data[-FOOTER_LENGTH:])
    if magic & 0xFFFFFFFF != FOOTER_MAGIC or algorithm != 0:
        raise CorruptFile(f"{name}: no Lucene footer (truncated or not a Lucene file)")
    actual = zlib.crc32(memoryview(data)[:-8])
    if actual != stored:
        raise CorruptFile(f"{name}: checksum mismatch (CRC32 {actual:08x}, footer says "
                          f"{stored & 0xFFFFFFFF:08x}): the file is corrupt")
    if expected is not None and expected != stored:
        raise CorruptFile(f"{name}: its checksum differs from the one the snapshot recorded")
    return actual


def base36(value: int) -> str:
    """Lucene's generation suffixes (``_0_2.fnm``, ``segments_a``) are base 36."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out
