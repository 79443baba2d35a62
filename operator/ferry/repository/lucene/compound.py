"""A segment's own files, from its compound file (``.cfs``/``.cfe``) or standing alone.

Lucene50CompoundFormat (Lucene 5-8) and Lucene90CompoundFormat (Lucene 9-10, the same
layout little-endian, sub-files aligned to 8 bytes): ``.cfe`` lists each sub-file by its
name without the segment prefix (``.fdt``, ``_Lucene80_0.dvd``) with its offset and
length in ``.cfs``; each sub-file keeps its own codec header and footer. So a sub-file is read by
one range of the ``.cfs`` blob and verified on its own; the ``.cfs`` as a whole is never
fetched, only its header and footer checked. Files written later for the segment (live
docs, field-infos and doc-values generations) are never inside the compound file.
"""

from __future__ import annotations

from ferry.repository.lucene.codec import (
    DataInput,
    LittleEndianInput,
    codec_name,
    verify_footer,
)
from ferry.repository.lucene.segments import SegmentInfo
from ferry.repository.lucene.store import ShardFiles


class SegmentFiles:
    """Reads a segment's files by their suffix (``.fnm``, ``.fdt``, ...), verified."""

    def __init__(self, shard: ShardFiles, info: SegmentInfo) -> None:
        self.shard, self.info = shard, info
        self.entries: dict[str, tuple[int, int]] | None = None
        if info.compound:
            self.entries = self._read_entries()

    def _read_entries(self) -> dict[str, tuple[int, int]]:
        name = f"{self.info.name}.cfe"
        where = self.shard.where(name)
        data = self.shard.read(name)
        lucene90 = codec_name(data) == "Lucene90CompoundEntries"
        r = (LittleEndianInput if lucene90 else DataInput)(data, where)
        prefix = "Lucene90" if lucene90 else "Lucene50"
        r.index_header(prefix + "CompoundEntries", range(0, 1), self.info.id, "")
        entries = {}
        for _ in range(r.vint()):
            sub, offset, length = r.string(), r.long(), r.long()
            entries[sub] = (offset, length)
        r.at_footer()
        # The data file: its header (same segment id) and its recorded checksum.
        cfs = f"{self.info.name}.cfs"
        header_length = 4 + 1 + len(prefix + "CompoundData") + 4 + 16 + 1
        DataInput(self.shard.read_range(cfs, 0, header_length), self.shard.where(cfs)
                  ).index_header(prefix + "CompoundData", range(0, 1), self.info.id, "")
        self.shard.footer_checksum(cfs)
        return entries

    def name(self, suffix: str) -> str:
        """The file's name for messages (``_0.cfs:_0.fdt`` inside a compound file)."""
        own = f"{self.info.name}{suffix}"
        if self.entries is None:
            return self.shard.where(own)
        return f"{self.shard.where(self.info.name + '.cfs')}:{own}"

    def has(self, suffix: str) -> bool:
        if self.entries is None:
            return self.shard.has(f"{self.info.name}{suffix}")
        return suffix in self.entries

    def read(self, suffix: str) -> bytes:
        if self.entries is None:
            return self.shard.read(f"{self.info.name}{suffix}")
        try:
            offset, length = self.entries[suffix]
        except KeyError:
            raise DataInput(b"", self.name(suffix)).corrupt(
                "missing from the compound file") from None
        data = self.shard.read_range(f"{self.info.name}.cfs", offset, length)
        verify_footer(data, self.name(suffix))
        return data
