"""Field infos (``.fnm``, Lucene60FieldInfosFormat, Lucene 6-8): field numbers → names.

Stored fields refer to fields by number; the reader needs the numbers of ``_id``/``_uid``,
``_source`` and ``_routing``, and the soft-deletes field (flag 0x8 since format 1, and
named ``__soft_deletes`` by Elasticsearch) with its doc-values type and generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.repository.lucene.codec import DataInput, UnsupportedFormat

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


def read_field_infos(data: bytes, name: str, segment_id: bytes, suffix: str
                     ) -> dict[int, FieldInfo]:
    """Parses a (footer-verified) ``.fnm``: field number → field."""
    if data[5:23] != b"Lucene60FieldInfos":
        raise UnsupportedFormat(f"{name}: field infos {data[5:23].decode(errors='replace')!r} "
                                "(Lucene 5 or 9+) are not ones this reader decodes")
    r = DataInput(data, name)
    _, version = r.index_header("Lucene60FieldInfos", range(0, 3), segment_id, suffix)
    fields = {}
    for _ in range(r.vint()):
        field_name, number, bits = r.string(), r.vint(), r.byte()
        r.byte()  # index options
        dv_type, dv_gen = r.byte(), r.long()
        attributes = r.string_map()
        if r.vint():  # point dimensions, then (format 2) index dimensions and bytes
            if version >= 2:
                r.vint()
            r.vint()
        soft = bool(bits & _SOFT_DELETES_FLAG) or field_name == SOFT_DELETES_FIELD
        fields[number] = FieldInfo(field_name, number, dv_type, dv_gen, soft, attributes)
    r.at_footer()
    return fields
