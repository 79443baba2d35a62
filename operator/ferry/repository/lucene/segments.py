"""The commit point ``segments_N`` and each segment's ``.si``, Lucene 6 to 10.

``segments_N`` (SegmentInfos) names the commit's segments and, per segment, its id, the
generations of its live docs (``.liv``), field infos and doc-values updates, and its
hard- and soft-deleted counts. Format numbers: 6 is Lucene 6, 7-9 Lucene 7 (9 adds the
soft-deleted count), 10 Lucene 8.6+ (adds a per-commit id). Lucene 9 and 10 keep format
10 and, unlike their other files, its big-endian body (SegmentInfos reads it with
``readBEInt``/``readBELong``), so one parser reads them all.

A segment's ``.si`` gives its document count (deleted ones included), whether it is a
compound file, its files and its attributes (the stored fields' compression mode among
them). Lucene62/70/86SegmentInfo (Lucene 6-8) are big-endian; Lucene90SegmentInfo
(Lucene 9-10) is little-endian, and the same codec name and version hide two layouts:
segments written by Lucene 9.9+ (Lucene99SegmentInfoFormat) add a has-blocks byte after
the compound flag, told apart here by the Lucene version the ``.si`` itself records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry.repository.lucene.codec import (
    DataInput,
    LittleEndianInput,
    UnsupportedFormat,
    base36,
    codec_name,
    verify_footer,
)

# SegmentInfos.VERSION_*: 7 drops the has-id byte, 8 writes the counter as a vlong,
# 9 adds the soft-deleted count, 10 the per-commit id.
_V53, _V70, _V72, _V74, _V86 = 6, 7, 8, 9, 10
_SI_CODECS = ("Lucene62SegmentInfo", "Lucene70SegmentInfo", "Lucene86SegmentInfo")
_SI_90 = "Lucene90SegmentInfo"
_HAS_BLOCKS_SINCE = (9, 9, 0)  # Lucene99SegmentInfoFormat
# Lucene 10 (OpenSearch 3.x, Elasticsearch 9) is the newest major whose formats are known.
_NEWEST_MAJOR = 10


@dataclass
class SegmentCommit:
    """One segment as the commit point lists it."""

    name: str
    id: bytes
    codec: str
    del_gen: int
    del_count: int
    field_infos_gen: int
    soft_del_count: int
    # field number -> files holding that field's doc-values updates
    dv_update_files: dict[int, list[str]] = field(default_factory=dict)

    @property
    def live_docs_file(self) -> str | None:
        return f"{self.name}_{base36(self.del_gen)}.liv" if self.del_gen != -1 else None

    @property
    def field_infos_file(self) -> str | None:
        """The generation's own ``.fnm`` (outside a compound file), if any."""
        if self.field_infos_gen == -1:
            return None
        return f"{self.name}_{base36(self.field_infos_gen)}.fnm"


@dataclass
class Commit:
    lucene_version: tuple[int, int, int]
    segments: list[SegmentCommit]


@dataclass
class SegmentInfo:
    name: str
    id: bytes
    version: tuple[int, int, int]
    max_doc: int
    compound: bool
    files: list[str]
    attributes: dict[str, str]


def _unsupported_major(name: str, major: int) -> UnsupportedFormat:
    return UnsupportedFormat(
        f"{name} was written by Lucene {major}: this reader decodes Lucene 6-{_NEWEST_MAJOR} "
        "(Elasticsearch 5.x-8.x, OpenSearch 1.x-3.x) only")


def read_commit(data: bytes, name: str, generation: int | None = None) -> Commit:
    """Parses (and verifies) a ``segments_N`` file."""
    verify_footer(data, name)
    r = DataInput(data, name)
    suffix = base36(generation) if generation is not None else None
    _, fmt = r.index_header("segments", range(_V53, _V86 + 2), suffix=suffix)
    version = (r.vint(), r.vint(), r.vint())
    if version[0] > _NEWEST_MAJOR or fmt > _V86:
        raise _unsupported_major(name, version[0])
    if fmt >= _V70:
        r.vint()  # the major version that created the index
    r.long()  # commit version
    r.vlong() if fmt >= _V72 else r.int()  # segment name counter
    count = r.int()
    if count > 0:
        r.vint(), r.vint(), r.vint()  # the oldest segment's Lucene version
    segments = []
    for _ in range(count):
        seg_name = r.string()
        if fmt < _V70 and r.byte() != 1:
            raise r.corrupt(f"segment {seg_name} has no id")
        seg_id = r.take(16)
        codec = r.string()
        del_gen, del_count = r.long(), r.int()
        field_infos_gen, _dv_gen = r.long(), r.long()
        soft_del_count = r.int() if fmt >= _V74 else 0
        if fmt >= _V86 and r.byte() == 1:
            r.take(16)  # the id of the commit that last changed the segment
        r.strings()  # field infos files
        dv_updates = {}
        for _ in range(r.int()):
            field_number = r.int()
            dv_updates[field_number] = r.strings()
        segments.append(SegmentCommit(seg_name, seg_id, codec, del_gen, del_count,
                                      field_infos_gen, soft_del_count, dv_updates))
    r.string_map()  # user data (translog uuid, sequence numbers, ...)
    r.at_footer()
    return Commit(version, segments)


def read_segment_info(data: bytes, name: str, segment: SegmentCommit) -> SegmentInfo:
    """Parses (and verifies) a segment's ``.si`` against the id the commit recorded."""
    verify_footer(data, name)
    codec = codec_name(data)
    if codec == "Lucene50SegmentInfo":
        raise UnsupportedFormat(f"{name} was written by Lucene 5 (an index created by "
                                "Elasticsearch 2.x): this reader decodes Lucene 6-10 only")
    if codec == _SI_90:
        r: DataInput = LittleEndianInput(data, name)
        r.index_header(_SI_90, range(0, 1), segment.id, "")
    else:
        r = DataInput(data, name)
        r.index_header(_SI_CODECS, range(0, 3), segment.id, "")
    version = (r.int(), r.int(), r.int())
    if version[0] > _NEWEST_MAJOR:
        raise _unsupported_major(name, version[0])
    if codec != "Lucene62SegmentInfo" and r.byte() == 1:
        r.int(), r.int(), r.int()  # the oldest Lucene version among merged segments
    max_doc = r.int()
    compound = r.byte() == 1
    if codec == _SI_90 and version >= _HAS_BLOCKS_SINCE:
        r.byte()  # whether documents were added in blocks (nested documents)
    r.string_map()  # diagnostics
    files = r.strings()
    attributes = r.string_map()
    # The index sort, if any, follows; it does not change how documents are read.
    return SegmentInfo(segment.name, segment.id, version, max_doc, compound, files, attributes)
