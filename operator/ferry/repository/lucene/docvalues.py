"""Soft deletes: the documents that have a value in the ``__soft_deletes`` doc values.

Elasticsearch (6.5+ when enabled, 7+ by default) never hard-deletes on update or
delete: it gives the superseded document (and every delete tombstone) a value in the
numeric doc-values field ``__soft_deletes``. Whether a document has a value is what
matters, so only the field's documents-with-values set is decoded: in Lucene80
(Lucene 8) and Lucene90 (Lucene 9-10) doc values it is stored as empty, all, or an
IndexedDISI bitset in the data file. The values come either from the segment's own doc
values (``_<seg>_Lucene80_0``, often inside the compound file) or, after updates, from a
generation's own files (``_<seg>_<gen>_Lucene90_0.dvm/.dvd``), which hold the field's
complete values.

To reach the field, the metadata entries before it are walked (each type's layout as
Lucene80/90DocValuesConsumer write it); the data file is only sliced. Lucene90 is
Lucene80 version 0 little-endian, except for sorted and sorted-set entries (ordinals
as a numeric entry, a terms dictionary in LZ4 blocks of 64 terms with its longest
block recorded) and, for a field with a skip index (Lucene 10), a skipper entry first.
The result is checked against the commit's soft-deleted count by the caller.
"""

from __future__ import annotations

import struct

from ferry.repository.lucene.codec import (
    DataInput,
    LittleEndianInput,
    UnsupportedFormat,
    codec_name,
)
from ferry.repository.lucene.fields import FieldInfo

# Lucene80DocValuesFormat entry types and versions (1: compressed binary, 8.5+;
# 2: per-field compression mode, 8.8+).
_NUMERIC, _BINARY, _SORTED, _SORTED_SET, _SORTED_NUMERIC = range(5)
_V_BIN_COMPRESSED, _V_CONFIGURABLE = 1, 2
_DM_BLOCK_BYTES = 8 + 4 + 8 + 1  # DirectMonotonic block meta: min, average, offset, bits
_MAX_ARRAY_LENGTH = (1 << 12) - 1
_NO_MORE_BLOCKS = 0x7FFF
_LUCENE90 = -90  # stands for the Lucene90 layout where a Lucene80 version is expected
_TERMS_BLOCK_SHIFT = 6  # Lucene90: terms dictionary addresses, one per 64 terms
_SKIPPER_BYTES = 8 * 4 + 4 * 2  # offset, length, max and min value; doc count, max doc


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


def _skip_terms_dict90(r: DataInput) -> None:
    size, block_shift = r.vlong(), r.int()
    _skip_monotonic(r, -(-size >> _TERMS_BLOCK_SHIFT), block_shift)
    r.skip(4 + 4 + 8 * 4)  # longest term and block; data and addresses offsets and lengths
    index_shift = r.int()
    _skip_monotonic(r, 1 + -(-size >> index_shift), block_shift)
    r.skip(8 * 4)


def _skip_sorted_numeric(r: DataInput) -> None:
    _, _, _, _, num_values = _skip_numeric(r)
    docs = r.int()
    if num_values > docs:
        r.long()
        _skip_monotonic(r, docs + 1, r.vint())
        r.long()


def _skip_sorted(r: DataInput) -> None:
    _docs_with_field(r)
    r.skip(4 + 1 + 8 + 8)  # docs with field, bits per value, ords offset and length
    _skip_terms_dict(r)


def _skip_entry(r: DataInput, kind: int, version: int, info: FieldInfo | None) -> None:
    lucene90 = version == _LUCENE90
    if lucene90 and info is not None and info.skip_index:
        r.skip(_SKIPPER_BYTES)
    if version >= _V_CONFIGURABLE and kind in (_BINARY, _SORTED, _SORTED_SET):
        raise UnsupportedFormat(f"{r.name}: Lucene 8.8+ doc values of a binary or sorted "
                                "field precede the soft-deletes field: not decoded yet")
    if lucene90 and kind in (_SORTED, _SORTED_SET):
        if kind == _SORTED or r.byte() == 0:  # a single-valued sorted set is sorted
            _skip_numeric(r)
        else:
            _skip_sorted_numeric(r)
        _skip_terms_dict90(r)
    elif kind == _NUMERIC:
        _skip_numeric(r)
    elif kind == _SORTED_NUMERIC:
        _skip_sorted_numeric(r)
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
          rank_power: int, input_type: type[DataInput] = DataInput) -> set[int]:
    """The documents of an IndexedDISI: blocks of 65536 ids, sparse, dense or all."""
    r = input_type(data[:offset + length - max(jump_entries, 0) * 8], name, offset)
    order = r.ORDER
    rank_bytes = 0 if rank_power == -1 else 1024 >> (rank_power - 7)
    docs: set[int] = set()
    while True:
        block, count = r.short() & 0xFFFF, (r.short() & 0xFFFF) + 1
        if block == _NO_MORE_BLOCKS:
            return docs
        base = block << 16
        if count <= _MAX_ARRAY_LENGTH:
            docs.update(base + d for d in struct.unpack(f"{order}{count}H", r.take(2 * count)))
        elif count == 65536:
            docs.update(range(base, base + 65536))
        else:
            r.skip(rank_bytes)
            for index, word in enumerate(struct.unpack(f"{order}1024Q", r.take(8192))):
                while word:
                    low = word & -word
                    docs.add(base + index * 64 + low.bit_length() - 1)
                    word ^= low


def soft_deleted(meta: bytes, meta_name: str, data: bytes, data_name: str, field: FieldInfo,
                 fields: dict[int, FieldInfo], segment_id: bytes, suffix: str,
                 max_doc: int) -> set[int]:
    """The documents with a soft-deletes value, from a (footer-verified) ``.dvm``/``.dvd``
    pair of the segment suffix ``suffix`` (``Lucene80_0``, ``2_Lucene90_0``)."""
    codec = codec_name(meta)
    if codec == "Lucene90DocValuesMetadata":
        r: DataInput = LittleEndianInput(meta, meta_name)
        # Lucene 10.5+ writes versions 1+ (skippers in a file of their own): not decoded.
        r.index_header(codec, range(0, 1), segment_id, suffix)
        version, prefix = _LUCENE90, "Lucene90"
    elif codec == "Lucene80DocValuesMetadata":
        r = DataInput(meta, meta_name)
        _, version = r.index_header(codec, range(0, 3), segment_id, suffix)
        prefix = "Lucene80"
    else:
        raise UnsupportedFormat(f"{meta_name}: doc values {codec!r} (Lucene 7, or not "
                                "Lucene's own) are not decoded")
    data_version = 0 if version == _LUCENE90 else version
    DataInput(data, data_name).index_header(prefix + "DocValuesData",
                                            range(data_version, data_version + 1),
                                            segment_id, suffix)
    while (number := r.int()) != -1:
        kind = r.byte()
        if number != field.number:
            _skip_entry(r, kind, version, fields.get(number))
            continue
        if kind != _NUMERIC:
            raise r.corrupt(f"{field.name} is doc-values type {kind}, not numeric")
        if version == _LUCENE90 and field.skip_index:
            r.skip(_SKIPPER_BYTES)
        offset, length, jump_entries, rank_power, _ = _skip_numeric(r)
        if offset == -2:
            return set()
        if offset == -1:
            return set(range(max_doc))
        return _disi(data, data_name, offset, length, jump_entries, rank_power, type(r))
    return set()
