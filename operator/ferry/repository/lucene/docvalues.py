"""Soft deletes: the documents that have a value in the ``__soft_deletes`` doc values.

Elasticsearch (6.5+ when enabled, 7+ by default) never hard-deletes on update or
delete: it gives the superseded document (and every delete tombstone) a value in the
numeric doc-values field ``__soft_deletes``. Whether a document has a value is what
matters, so only the field's documents-with-values set is decoded: in Lucene80
doc-values (Lucene 8) it is stored as empty, all, or an IndexedDISI bitset in the data
file. The values come either from the segment's own doc values (``_<seg>_Lucene80_0``,
often inside the compound file) or, after updates, from a generation's own files
(``_<seg>_<gen>_Lucene80_0.dvm/.dvd``), which hold the field's complete values.

To reach the field, the metadata entries before it are walked (each type's layout as
Lucene80DocValuesConsumer writes it); the data file is only sliced. The result is
checked against the commit's soft-deleted count by the caller.
"""

from __future__ import annotations

import struct

from ferry.repository.lucene.codec import DataInput, UnsupportedFormat
from ferry.repository.lucene.fields import FieldInfo

# Lucene80DocValuesFormat entry types and versions (1: compressed binary, 8.5+;
# 2: per-field compression mode, 8.8+).
_NUMERIC, _BINARY, _SORTED, _SORTED_SET, _SORTED_NUMERIC = range(5)
_V_BIN_COMPRESSED, _V_CONFIGURABLE = 1, 2
_DM_BLOCK_BYTES = 8 + 4 + 8 + 1  # DirectMonotonic block meta: min, average, offset, bits
_MAX_ARRAY_LENGTH = (1 << 12) - 1
_NO_MORE_BLOCKS = 0x7FFF


def _skip_monotonic(r: DataInput, values: int, block_shift: int) -> None:
    r.skip(-(-values >> block_shift) * _DM_BLOCK_BYTES if values > 0 else 0)


def _docs_with_field(r: DataInput) -> tuple[int, int, int, int]:
    return r.long(), r.long(), r.short(), struct.unpack(">b", r.take(1))[0]


def _skip_numeric(r: DataInput) -> tuple[int, int, int, int, int]:
    docs = _docs_with_field(r)
    num_values = r.long()
    table = r.int()
    if table > 256:
        raise r.corrupt(f"numeric table of {table} entries")
    r.skip(8 * max(table, 0))
    r.skip(1 + 8 * 5)  # bits per value, min, gcd, values offset and length, jump table
    return (*docs, num_values)


def _skip_terms_dict(r: DataInput) -> None:
    size, dict_shift, block_shift = r.vlong(), r.int(), r.int()
    _skip_monotonic(r, (size + (1 << dict_shift) - 1) >> dict_shift, block_shift)
    r.skip(4 + 8 * 4)  # max term length; data and addresses offsets and lengths
    index_shift = r.int()
    _skip_monotonic(r, 1 + ((size + (1 << index_shift) - 1) >> index_shift), block_shift)
    r.skip(8 * 4)


def _skip_sorted(r: DataInput) -> None:
    _docs_with_field(r)
    r.skip(4 + 1 + 8 + 8)  # docs with field, bits per value, ords offset and length
    _skip_terms_dict(r)


def _skip_entry(r: DataInput, kind: int, version: int, info: FieldInfo | None) -> None:
    if version >= _V_CONFIGURABLE and kind in (_BINARY, _SORTED, _SORTED_SET):
        raise UnsupportedFormat(f"{r.name}: Lucene 8.8+ doc values of a binary or sorted "
                                "field precede the soft-deletes field: not decoded yet")
    if kind == _NUMERIC:
        _skip_numeric(r)
    elif kind == _SORTED_NUMERIC:
        _, _, _, _, num_values = _skip_numeric(r)
        docs = r.int()
        if num_values > docs:
            r.long()
            _skip_monotonic(r, docs + 1, r.vint())
            r.long()
    elif kind == _BINARY:
        r.skip(16)  # data offset and length
        _docs_with_field(r)
        docs, min_length, max_length = r.int(), r.int(), r.int()
        if version >= _V_BIN_COMPRESSED and docs > 0:
            r.long()
            chunks = r.vint()
            r.vint(), r.vint()  # docs per chunk (shift), longest chunk
            _skip_monotonic(r, chunks, r.vint())
            r.long()
        elif min_length < max_length:
            r.long()
            _skip_monotonic(r, docs + 1, r.vint())
            r.long()
    elif kind == _SORTED:
        _skip_sorted(r)
    elif kind == _SORTED_SET:
        if r.byte() == 0:  # single-valued: stored as sorted
            _skip_sorted(r)
            return
        _docs_with_field(r)
        r.skip(1 + 8 + 8)
        docs = r.int()
        r.long()
        _skip_monotonic(r, docs + 1, r.vint())
        r.long()
        _skip_terms_dict(r)
    else:
        name = info.name if info else "?"
        raise r.corrupt(f"unknown doc-values type {kind} for field {name}")


def _disi(data: bytes, name: str, offset: int, length: int, jump_entries: int,
          rank_power: int) -> set[int]:
    """The documents of an IndexedDISI: blocks of 65536 ids, sparse, dense or all."""
    r = DataInput(data[:offset + length - max(jump_entries, 0) * 8], name, offset)
    rank_bytes = 0 if rank_power == -1 else 1024 >> (rank_power - 7)
    docs: set[int] = set()
    while True:
        block, count = r.short() & 0xFFFF, (r.short() & 0xFFFF) + 1
        if block == _NO_MORE_BLOCKS:
            return docs
        base = block << 16
        if count <= _MAX_ARRAY_LENGTH:
            docs.update(base + d for d in struct.unpack(f">{count}H", r.take(2 * count)))
        elif count == 65536:
            docs.update(range(base, base + 65536))
        else:
            r.skip(rank_bytes)
            for index, word in enumerate(struct.unpack(">1024Q", r.take(8192))):
                while word:
                    low = word & -word
                    docs.add(base + index * 64 + low.bit_length() - 1)
                    word ^= low


def soft_deleted(meta: bytes, meta_name: str, data: bytes, data_name: str, field: FieldInfo,
                 fields: dict[int, FieldInfo], segment_id: bytes, suffix: str,
                 max_doc: int) -> set[int]:
    """The documents with a soft-deletes value, from a (footer-verified) ``.dvm``/``.dvd``
    pair of the segment suffix ``suffix`` (``Lucene80_0``, ``2_Lucene80_0``)."""
    if meta[5:30] != b"Lucene80DocValuesMetadata":
        raise UnsupportedFormat(f"{meta_name}: doc values {meta[5:30].decode(errors='replace')!r}"
                                " (Lucene 7 or 9+) are not decoded yet")
    r = DataInput(meta, meta_name)
    _, version = r.index_header("Lucene80DocValuesMetadata", range(0, 3), segment_id, suffix)
    DataInput(data, data_name).index_header("Lucene80DocValuesData", range(version, version + 1),
                                            segment_id, suffix)
    while (number := r.int()) != -1:
        kind = r.byte()
        if number != field.number:
            _skip_entry(r, kind, version, fields.get(number))
            continue
        if kind != _NUMERIC:
            raise r.corrupt(f"{field.name} is doc-values type {kind}, not numeric")
        offset, length, jump_entries, rank_power, _ = _skip_numeric(r)
        if offset == -2:
            return set()
        if offset == -1:
            return set(range(max_doc))
        return _disi(data, data_name, offset, length, jump_entries, rank_power)
    return set()
