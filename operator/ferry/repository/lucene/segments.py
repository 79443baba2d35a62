"""The commit point ``segments_N`` and each segment's ``.si``, Lucene 6 to 8.

``segments_N`` (SegmentInfos) names the commit's segments and, per segment, its id, the
generations of its live docs (``.liv``), field infos and doc-values updates, and its
hard- and soft-deleted counts. Format numbers: 6 is Lucene 6, 7-9 Lucene 7 (9 adds the
soft-deleted count), 10 Lucene 8.6+ (adds a per-commit id). Lucene 9 keeps format 10 but
writes the body little-endian: the Lucene version that wrote the commit tells it apart.

A segment's ``.si`` (Lucene62/70/86SegmentInfo) gives its document count (deleted ones
included), whether it is a compound file, its files and its attributes (the stored
fields' compression mode among them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry.repository.lucene.codec import DataInput, UnsupportedFormat, base36, verify_footer

# SegmentInfos.VERSION_*: 7 drops the has-id byte, 8 writes the counter as a vlong,
# 9 adds the soft-deleted count, 10 the per-commit id.
_V53, _V70, _V72, _V74, _V86 = 6, 7, 8, 9, 10
_SI_CODECS = ("Lucene62SegmentInfo", "Lucene70SegmentInfo", "Lucene86SegmentInfo")
# Lucene 9+ (OpenSearch 2.x/3.x, Elasticsearch 8/9) changed the byte order and formats.
_NEWEST_MAJOR = 8


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
        f"{name} was written by Lucene {major} (Elasticsearch 8+ / OpenSearch 2+): this "
        "reader decodes Lucene 6-8 (Elasticsearch 5.x-7.x, OpenSearch 1.x) only")


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
    r = DataInput(data, name)
    if data[5:13] in (b"Lucene90", b"Lucene99"):
        raise _unsupported_major(name, 9)
    if data[5:24] == b"Lucene50SegmentInfo":
        raise UnsupportedFormat(f"{name} was written by Lucene 5 (an index created by "
                                "Elasticsearch 2.x): this reader decodes Lucene 6-8 only")
    codec, _ = r.index_header(_SI_CODECS, range(0, 3), segment.id, "")
    version = (r.int(), r.int(), r.int())
    if codec != "Lucene62SegmentInfo" and r.byte() == 1:
        r.int(), r.int(), r.int()  # the oldest Lucene version among merged segments
    max_doc = r.int()
    compound = r.byte() == 1
    r.string_map()  # diagnostics
    files = r.strings()
    attributes = r.string_map()
    # The index sort, if any, follows; it does not change how documents are read.
    return SegmentInfo(segment.name, segment.id, version, max_doc, compound, files, attributes)
