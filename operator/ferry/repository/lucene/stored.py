"""Stored fields (``.fdt``, with ``.fdm`` since Lucene 8.6), read chunk by chunk.

CompressingStoredFieldsFormat as Lucene 6-8 write it: after the index header, chunks
follow one another, each ``docBase`` (vint), ``docCount << 1 | sliced`` (vint; from
format 4, Lucene 8.9, ``docCount << 2 | dirty << 1 | sliced``), the
documents' stored-field counts and byte lengths (one vint, or all-equal, or packed ints),
then the documents' bytes compressed as one block — or, when the chunk is at least twice
the chunk size (a big document), as independent slices of ``chunkSize`` bytes.

The compression, by the data file's codec name:
- ``Lucene50StoredFieldsFastData`` (Lucene 5.0-8.6, "BEST_SPEED"): one raw LZ4 block.
  Its compressed length is not written anywhere but in the stored-fields index, so the
  block's sequences are walked to find where it ends (the ``.fdx`` is not needed);
- ``Lucene50StoredFieldsHighData`` ("BEST_COMPRESSION"): vint length + raw DEFLATE;
- ``Lucene87StoredFieldsFastData`` (Lucene 8.7+): LZ4 with a preset dictionary — the
  block's first bytes (the dictionary) are compressed alone, then sub-blocks each
  compressed against it; all compressed lengths are written up front;
- ``Lucene87StoredFieldsHighData``: the same scheme with DEFLATE and ``zdict``;
- ``Lucene90StoredFieldsFastData``/``HighData`` (Lucene 9-10): the Lucene87 schemes
  (chunks of 80 KB / 480 KB), chunk size in the ``.fdm`` (``Lucene90FieldsIndexMeta``),
  a chunk token of ``docCount << 2 | dirty << 1 | sliced``, and the per-document counts
  and lengths as all-equal, or 8/16/32-bit values (blocks of 128 values interleaved in
  little-endian longs, then the rest one by one); the ``.fdt`` ends with its footer.

A document's bytes are its fields, each ``fieldNumber << 3 | type`` (vlong) then the
value: strings and binaries length-prefixed, numbers in Lucene's compact encodings.
Chunks are walked until the segment's document count is reached; what follows must be
the format's trailer, so a truncated or garbled file fails instead of yielding less.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import lz4.block

from ferry.repository.lucene.codec import (
    DataInput,
    LittleEndianInput,
    UnsupportedFormat,
    codec_name,
)

_FAST, _HIGH = "Lucene50StoredFieldsFastData", "Lucene50StoredFieldsHighData"
_FAST_DICT, _HIGH_DICT = "Lucene87StoredFieldsFastData", "Lucene87StoredFieldsHighData"
_FAST_90, _HIGH_90 = "Lucene90StoredFieldsFastData", "Lucene90StoredFieldsHighData"
_CODECS = (_FAST, _HIGH, _FAST_DICT, _HIGH_DICT)
# Lucene 9 kept the Lucene87 compression schemes under new names.
_SCHEME = {_FAST_90: _FAST_DICT, _HIGH_90: _HIGH_DICT}
_LUCENE90_VERSION = 1  # Lucene90CompressingStoredFieldsWriter.VERSION_START (and current)
_INTS_BLOCK = 128
# CompressingStoredFieldsWriter.VERSION_*: 1 adds chunk stats to the .fdt trailer, 2 a
# separate index, 3 moves chunk size and stats into .fdm, 4 counts chunks there.
_V_CHUNK_STATS, _V_OFFHEAP, _V_META, _V_NUM_CHUNKS = 1, 2, 3, 4
_STRING, _BYTES, _INT, _FLOAT, _LONG, _DOUBLE = range(6)


def _extended(data: bytes, pos: int, length: int) -> tuple[int, int]:
    """An LZ4 length nibble of 15 continues in bytes of 255 and a final smaller one."""
    if length == 15:
        while (extra := data[pos]) == 255:
            length += 255
            pos += 1
        length += extra
        pos += 1
    return length, pos


def _lz4_walk(r: DataInput, pos: int, length: int, out: bytearray | None = None) -> int:
    """Walks the raw LZ4 block at ``pos`` that decompresses to ``length`` bytes and returns
    where it ends; with ``out`` (holding any dictionary) it also decodes into it. Decoding
    here is for the blocks lz4's C decoder refuses: Lucene's own compressor may end a
    block with a match closer to its end than LZ4's reference format allows (12 bytes)."""
    data, done = r.data, 0
    base = len(out) if out is not None else 0
    try:
        while True:
            token = data[pos]
            pos += 1
            literals, pos = _extended(data, pos, token >> 4)
            if out is not None:
                out += data[pos:pos + literals]
            pos += literals
            done += literals
            if done >= length:
                break
            offset = data[pos] | data[pos + 1] << 8
            pos += 2
            match, pos = _extended(data, pos, token & 15)
            match += 4
            done += match
            if out is not None:
                start = len(out) - offset
                if offset == 0 or start < 0:
                    raise r.corrupt("an LZ4 match points before the block")
                # an overlapping match repeats the last `offset` bytes
                out += (out[start:start + match] if offset >= match else
                        (out[start:] * (match // offset + 1))[:match])
    except IndexError:
        raise r.corrupt("truncated inside an LZ4 block") from None
    if done != length or pos > len(data) or (out is not None and len(out) - base != length):
        raise r.corrupt("an LZ4 block does not decompress to its recorded length")
    return pos


def _lz4(r: DataInput, length: int, dictionary: bytes = b"", end: int | None = None) -> bytes:
    start = r.pos
    end = _lz4_walk(r, start, length) if end is None else end
    block = r.take(end - start)
    if length == 0:
        return b""
    try:
        out = lz4.block.decompress(block, uncompressed_size=length, dict=dictionary)
    except lz4.block.LZ4BlockError:
        decoded = bytearray(dictionary)
        if _lz4_walk(DataInput(block, r.name), 0, length, decoded) != len(block):
            raise r.corrupt("an LZ4 block does not fill its recorded length") from None
        return bytes(decoded[len(dictionary):])
    if len(out) != length:
        raise r.corrupt("an LZ4 block decompressed to the wrong length")
    return bytes(out)


def _inflate(r: DataInput, dictionary: bytes = b"") -> bytes:
    size = r.vint()
    if size == 0:
        return b""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS, zdict=dictionary) if dictionary else \
        zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(r.take(size)) + inflater.flush()
    except zlib.error:
        raise r.corrupt("a DEFLATE block does not inflate") from None
    return out


def _decompress(r: DataInput, codec: str, length: int) -> bytes:
    """One compressed block of ``length`` bytes, in the codec's scheme."""
    if codec == _FAST:
        return _lz4(r, length)
    if codec == _HIGH:
        return _inflate(r)
    dict_length, block_length = r.vint(), r.vint()
    if codec == _FAST_DICT:
        sizes = [r.vint()]  # the dictionary's, then each sub-block's
        covered = dict_length
        while covered < length:
            sizes.append(r.vint())
            covered += block_length
        if block_length <= 0 and len(sizes) > 1:
            raise r.corrupt("an LZ4 sub-block length of 0")
        dictionary = _lz4(r, dict_length, end=r.pos + sizes[0])
        parts = [dictionary]
        for i, size in enumerate(sizes[1:]):
            part = min(block_length, length - dict_length - i * block_length)
            parts.append(_lz4(r, part, dictionary, end=r.pos + size))
        return b"".join(parts)
    dictionary = _inflate(r)
    parts, covered = [dictionary], dict_length
    while covered < length:
        parts.append(_inflate(r, dictionary))
        covered += block_length
    return b"".join(parts)


def _ints(r: DataInput, count: int) -> list[int]:
    """CompressingStoredFieldsWriter.saveInts: one vint, all-equal, or packed ints."""
    if count == 1:
        return [r.vint()]
    bits = r.vint()
    if bits == 0:
        return [r.vint()] * count
    if bits > 31:
        raise r.corrupt(f"{bits} bits per value")
    size = (count * bits + 7) // 8
    packed = int.from_bytes(r.take(size), "big")
    shift, mask = size * 8, (1 << bits) - 1
    return [(packed >> (shift - (i + 1) * bits)) & mask for i in range(count)]


def _ints90(r: DataInput, count: int) -> list[int]:
    """StoredFieldsInts (Lucene 9): a width byte (0: all equal, then a vint; 8, 16, 32),
    then blocks of 128 values, each packed into little-endian longs column-wise (value
    ``i + j * longs`` is the ``j``-th field of long ``i``, highest first), then the rest
    one little-endian value at a time."""
    if count == 1:
        return [r.vint()]
    bits = r.byte()
    if bits == 0:
        return [r.vint()] * count
    if bits not in (8, 16, 32):
        raise r.corrupt(f"{bits} bits per value")
    per_long, mask = 64 // bits, (1 << bits) - 1
    longs_per_block = _INTS_BLOCK // per_long
    out: list[int] = []
    while count - len(out) >= _INTS_BLOCK:
        longs = struct.unpack(f"<{longs_per_block}Q", r.take(8 * longs_per_block))
        out += [(longs[i] >> (64 - bits * (j + 1))) & mask
                for j in range(per_long) for i in range(longs_per_block)]
    rest = count - len(out)
    out += struct.unpack(f"<{rest}{'BHI'[bits // 16]}", r.take(rest * bits // 8))
    return out


def _field_value(r: DataInput, kind: int) -> Any:
    if kind in (_STRING, _BYTES):
        return r.take(r.vint())
    if kind == _INT:
        return r.vint()
    if kind == _LONG:
        return r.vlong() if r.byte() & 0x20 else None
    first = r.byte()
    if kind == _FLOAT:
        r.skip(4 if first == 0xFF else 0 if first & 0x80 else 3)
    elif kind == _DOUBLE:
        r.skip(8 if first == 0xFF else 4 if first == 0xFE else 0 if first & 0x80 else 7)
    else:
        raise r.corrupt(f"unknown stored-field type {kind}")
    return None


def _fields(data: bytes, name: str, count: int, start: int, end: int,
            wanted: set[int]) -> dict[int, bytes]:
    """The wanted fields (strings and binaries, as bytes) of one document."""
    r = DataInput(data[:end], name, start)
    out = {}
    for _ in range(count):
        info = r.vlong()
        value = _field_value(r, info & 7)
        if info >> 3 in wanted and isinstance(value, bytes):
            out[info >> 3] = value
    if r.pos != end:
        raise r.corrupt("a document's stored fields do not fill its recorded length")
    return out


def read_documents(fdt: bytes, name: str, segment_id: bytes, max_doc: int,
                   deleted: set[int], wanted: set[int], fdm: bytes | None = None,
                   fdm_name: str = "") -> Iterator[tuple[int, dict[int, bytes]]]:
    """Each document not in ``deleted``: its id in the segment and its wanted fields.
    ``fdt`` (and ``fdm``, from format 3) are footer-verified by the caller."""
    if codec_name(fdt) in _SCHEME:
        yield from _read_documents90(fdt, name, segment_id, max_doc, deleted, wanted, fdm,
                                     fdm_name)
        return
    r = DataInput(fdt, name)
    codec, version = r.index_header(_CODECS, range(0, 5), segment_id, "")
    if version >= _V_META:
        if fdm is None:
            raise r.corrupt("its .fdm is missing")
        m = DataInput(fdm, fdm_name)
        m.index_header("Lucene85FieldsIndexMeta", range(0, version + 1), segment_id, "")
        chunk_size, packed_ints = m.vint(), m.vint()
    else:
        chunk_size, packed_ints = r.vint(), r.vint()
    if packed_ints not in (1, 2):  # packed ints version: byte-aligned since 1
        raise UnsupportedFormat(f"{name}: packed ints older than Lucene 4.8")
    # Format 4 (Lucene 8.9+) puts a dirty-chunk bit in each chunk's token too.
    shift = 2 if version >= _V_NUM_CHUNKS else 1
    chunks = yield from _walk(r, codec, chunk_size, max_doc, deleted, wanted, _ints, shift)
    if version in (_V_CHUNK_STATS, _V_OFFHEAP):
        if r.vlong() != chunks:
            raise r.corrupt(f"{chunks} chunks read, its trailer counts others")
        r.vlong()  # dirty chunks
    r.at_footer()


_Documents = Generator[tuple[int, dict[int, bytes]], None, int]


def _walk(r: DataInput, scheme: str, chunk_size: int, max_doc: int, deleted: set[int],
          wanted: set[int], ints: Callable[[DataInput, int], list[int]], shift: int
          ) -> _Documents:
    """The chunks from ``r``'s position to the segment's last document; yields the live
    documents and returns the number of chunks. ``shift``: how far the chunk token's
    document count is shifted (past the sliced bit, and from Lucene 8.9 the dirty bit)."""
    doc = 0
    chunks = 0
    while doc < max_doc:
        base, token = r.vint(), r.vint()
        count, sliced = token >> shift, token & 1
        if base != doc or count == 0 or doc + count > max_doc:
            raise r.corrupt(f"chunk {chunks} starts at document {base} with {count} "
                            f"documents; expected document {doc} of {max_doc}")
        counts, lengths = ints(r, count), ints(r, count)
        total = sum(lengths)
        if sliced:
            data = b"".join(_decompress(r, scheme, min(chunk_size, total - done))
                            for done in range(0, total, chunk_size))
        else:
            data = _decompress(r, scheme, total)
        if len(data) != total:
            raise r.corrupt(f"chunk {chunks} decompressed to {len(data)} bytes, not {total}")
        start = 0
        for i in range(count):
            end = start + lengths[i]
            if doc + i not in deleted:
                yield doc + i, _fields(data, r.name, counts[i], start, end, wanted)
            start = end
        doc += count
        chunks += 1
    return chunks


def _read_documents90(fdt: bytes, name: str, segment_id: bytes, max_doc: int,
                      deleted: set[int], wanted: set[int], fdm: bytes | None,
                      fdm_name: str) -> Iterator[tuple[int, dict[int, bytes]]]:
    """Lucene90 stored fields: the chunk size from the ``.fdm``, then the chunks."""
    r = LittleEndianInput(fdt, name)
    codec, version = r.index_header(tuple(_SCHEME), range(_LUCENE90_VERSION,
                                                          _LUCENE90_VERSION + 1), segment_id, "")
    if fdm is None:
        raise r.corrupt("its .fdm is missing")
    m = LittleEndianInput(fdm, fdm_name)
    m.index_header("Lucene90FieldsIndexMeta", range(0, version + 1), segment_id, "")
    chunk_size = m.vint()
    if chunk_size <= 0:
        raise m.corrupt(f"a chunk size of {chunk_size}")
    yield from _walk(r, _SCHEME[codec], chunk_size, max_doc, deleted, wanted, _ints90, 2)
    r.at_footer()
