"""A shard snapshot's Lucene files, read by range out of the repository's blobs.

A shard's ``snap-<uuid>.dat`` lists each physical Lucene file with the blob that holds
it (``__<uuid>``; ES 5 numbers them ``__0``, ``__1``, ...), its length, its Lucene
checksum (base 36) and the part size: a file longer than ``part_size`` is split into
``<blob>.part0``, ``.part1``, ... Elasticsearch 7+ keeps small files (``.si``,
``segments_N``) only inline, as ``v__...`` entries whose bytes are the entry's
``meta_hash``; older versions inline them too and also upload them, and the inline copy
is used then as well. Nothing is fetched whole unless asked: ranges map onto parts, and
each blob's length is checked against what the snapshot recorded before it is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.repository.blobs import BlobNotFound, BlobStore
from ferry.repository.lucene.codec import FOOTER_LENGTH, CorruptFile, LuceneError, verify_footer


@dataclass(frozen=True)
class FileEntry:
    physical: str
    blob: str
    length: int
    checksum: int | None  # the CRC32 the snapshot recorded, when it is a Lucene checksum
    part_size: int
    inline: bytes | None

    @property
    def parts(self) -> int:
        parts = -(-self.length // self.part_size) if self.part_size > 0 else 1
        return max(parts, 1)

    def part_blob(self, part: int) -> str:
        return f"{self.blob}.part{part}" if self.parts > 1 else self.blob

    def part_length(self, part: int) -> int:
        if self.parts == 1:
            return self.length
        return min(self.part_size, self.length - part * self.part_size)


def _entry(raw: dict[str, Any]) -> FileEntry:
    checksum = raw.get("checksum")
    try:
        recorded = int(checksum, 36) if isinstance(checksum, str) else None
    except ValueError:  # a non-Lucene checksum (very old files): nothing to compare
        recorded = None
    inline = raw.get("meta_hash")
    part_size = raw.get("part_size")
    return FileEntry(
        physical=str(raw["physical_name"]), blob=str(raw["name"]), length=int(raw["length"]),
        checksum=recorded, inline=inline if isinstance(inline, bytes) else None,
        part_size=int(part_size) if isinstance(part_size, int) and part_size > 0 else 0)


class ShardFiles:
    """The files of one shard snapshot (``folder`` is ``indices/<id>/<shard>``)."""

    def __init__(self, store: BlobStore, folder: str, files: list[dict[str, Any]],
                 label: str) -> None:
        self.store, self.folder, self.label = store, folder, label
        try:
            self.entries = {e.physical: e for e in map(_entry, files)}
        except (KeyError, TypeError, ValueError) as exc:
            raise LuceneError(f"{label}: the shard's file list is malformed ({exc})") from None
        self._checked: set[str] = set()
        self.bytes_read = 0  # from blobs, for the curious (inline bytes are free)

    def has(self, name: str) -> bool:
        return name in self.entries

    def where(self, name: str) -> str:
        """A file's name for messages: the shard, the physical name and its blob."""
        entry = self.entries.get(name)
        blob = f" (blob {self.folder}/{entry.blob})" if entry and not entry.inline else ""
        return f"{self.label}/{name}{blob}"

    def entry(self, name: str) -> FileEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise CorruptFile(f"{self.label}: the snapshot lists no file {name}, which the "
                              "segment needs") from None

    def read(self, name: str) -> bytes:
        """A whole file, its length, footer, CRC32 and recorded checksum verified."""
        entry = self.entry(name)
        data = self.read_range(name, 0, entry.length)
        verify_footer(data, self.where(name), entry.checksum)
        return data

    def footer_checksum(self, name: str) -> None:
        """Only a file's footer, against the checksum the snapshot recorded: for a
        compound file, whose sub-files are each verified when read."""
        entry = self.entry(name)
        tail = self.read_range(name, entry.length - FOOTER_LENGTH, FOOTER_LENGTH)
        stored = int.from_bytes(tail[-8:], "big")
        if entry.checksum is not None and stored != entry.checksum:
            raise CorruptFile(f"{self.where(name)}: its footer's checksum differs from the "
                              "one the snapshot recorded")

    def read_range(self, name: str, offset: int, length: int) -> bytes:
        entry = self.entry(name)
        if offset < 0 or length < 0 or offset + length > entry.length:
            raise CorruptFile(f"{self.where(name)}: bytes {offset}-{offset + length} are past "
                              f"its recorded length {entry.length}")
        if entry.inline is not None and len(entry.inline) == entry.length:
            return entry.inline[offset:offset + length]
        if entry.blob.startswith("v__"):
            raise CorruptFile(f"{self.where(name)}: a virtual file whose inline bytes "
                              f"({len(entry.inline or b'')}) differ from its length "
                              f"({entry.length})")
        out = bytearray()
        while length > 0:
            part, start = divmod(offset, entry.part_size) if entry.parts > 1 else (0, offset)
            take = min(length, entry.part_length(part) - start)
            out += self._read_part(entry, part, start, take)
            offset, length = offset + take, length - take
        return bytes(out)

    def _read_part(self, entry: FileEntry, part: int, start: int, length: int) -> bytes:
        blob = entry.part_blob(part)
        path = f"{self.folder}/{blob}"
        try:
            if blob not in self._checked:
                actual = self.store.size(path)
                if actual != entry.part_length(part):
                    raise CorruptFile(
                        f"{self.where(entry.physical)}: blob {blob} has {actual} bytes, the "
                        f"snapshot recorded {entry.part_length(part)}: truncated or replaced")
                self._checked.add(blob)
            data = self.store.read_range(path, start, length)
        except BlobNotFound:
            raise CorruptFile(f"{self.where(entry.physical)}: blob {blob} is missing from "
                              "the repository") from None
        if len(data) != length:
            raise CorruptFile(f"{self.where(entry.physical)}: blob {blob} ended early")
        self.bytes_read += len(data)
        return data
