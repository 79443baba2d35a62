"""Field infos (``.fnm``): field numbers → names, Lucene 6 to 10.

Stored fields refer to fields by number; the reader needs the numbers of ``_id``/``_uid``,
``_source`` and ``_routing``, and the soft-deletes field (flag 0x8 since format 1, and
named ``__soft_deletes`` by Elasticsearch) with its doc-values type and generation.

Lucene60FieldInfos (Lucene 6-8, big-endian); then, little-endian, Lucene90FieldInfos
(Lucene 9.0-9.3: each field ends with its vector dimension and similarity) and
Lucene94FieldInfos (9.4+: a vector encoding byte before the similarity; format 1 (9.10)
adds the parent-field flag 0x10, format 2 (Lucene 10) a doc-values skip-index byte after
the doc-values type — the doc values then hold a skipper entry for that field).
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.repository.lucene.codec import (
    DataInput,
    LittleEndianInput,
    UnsupportedFormat,
    codec_name,
)

SOFT_DELETES_FIELD = "__soft_deletes"
_SOFT_DELETES_FLAG = 0x08
# .fnm doc-values type byte
DV_NONE, DV_NUMERIC = 0, 1


@dataclass(frozen=True)
class FieldInfo:
    name: str
    number: int
    dv_type: int
    dv_gen: int
    soft_deletes: bool
    attributes: dict[str, str]
    skip_index: bool = False  # Lucene 10: the doc values carry a skipper for this field


_LUCENE60, _LUCENE90, _LUCENE94 = "Lucene60FieldInfos", "Lucene90FieldInfos", "Lucene94FieldInfos"
_VERSIONS = {_LUCENE60: range(0, 3), _LUCENE90: range(0, 1), _LUCENE94: range(0, 3)}
_FORMAT_SKIPPER = 2  # Lucene94FieldInfos


def read_field_infos(data: bytes, name: str, segment_id: bytes, suffix: str
                     ) -> dict[int, FieldInfo]:
    """Parses a (footer-verified) ``.fnm``: field number → field."""
    codec = codec_name(data)
    if codec not in _VERSIONS:
        raise UnsupportedFormat(f"{name}: field infos {codec!r} (Lucene 5 or 11+) are not "
                                "ones this reader decodes")
    r = (DataInput if codec == _LUCENE60 else LittleEndianInput)(data, name)
    _, version = r.index_header(codec, _VERSIONS[codec], segment_id, suffix)
    fields = {}
    for _ in range(r.vint()):
        field_name, number, bits = r.string(), r.vint(), r.byte()
        r.byte()  # index options
        dv_type = r.byte()
        skip_index = codec == _LUCENE94 and version >= _FORMAT_SKIPPER and r.byte() != 0
        dv_gen = r.long()
        attributes = r.string_map()
        if r.vint():  # point dimensions, then index dimensions (Lucene60 format 2+), bytes
            if version >= 2 or codec != _LUCENE60:
                r.vint()
            r.vint()
        if codec != _LUCENE60:
            r.vint()  # vector dimension
            r.skip(2 if codec == _LUCENE94 else 1)  # vector encoding and similarity
        soft = bool(bits & _SOFT_DELETES_FLAG) or field_name == SOFT_DELETES_FIELD
        fields[number] = FieldInfo(field_name, number, dv_type, dv_gen, soft, attributes,
                                   skip_index)
    r.at_footer()
    return fields
