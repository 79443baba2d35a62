"""Per-index detail of one snapshot, read from its shard metadata: how many shards,
how many bytes, and how many live documents (`ferry snapshot ls --details`).

Each shard's ``indices/<index-id>/<shard>/snap-<uuid>.dat`` lists the shard's files
with their sizes; the small Lucene files — the commit point ``segments_N`` and each
segment's ``.si`` — are stored inline in it (``meta_hash``), so documents are counted
without reading a data blob: per segment, ``.si`` gives the documents written and
``segments_N`` the hard- and soft-deleted ones. Lucene 6 to 8 (Elasticsearch 5.x-7.x,
OpenSearch 1.x) are read; Lucene 9's little-endian files leave the count unknown.
Nested documents count as Lucene documents, as they do in ``_cat/indices``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ferry.repository.blobs import BlobNotFound, BlobStore
from ferry.repository.reader import RepositoryContents, SnapshotEntry, decode_metadata_blob

# segments_N format numbers (SegmentInfos.VERSION_*): 6 is Lucene 6, 7-9 Lucene 7,
# 10 Lucene 8.6+.
_NO_HAS_ID_BYTE, _SOFT_DELETES, _SCI_ID = 7, 9, 10
# .si formats that write a minimum version before the document count.
_SI_WITH_MIN_VERSION = {"Lucene70SegmentInfo", "Lucene86SegmentInfo"}
_SI_WITHOUT_MIN_VERSION = {"Lucene50SegmentInfo", "Lucene62SegmentInfo"}


@dataclass
class IndexDetail:
    name: str
    shards: int
    size_bytes: int
    # None when a shard's commit could not be read (Lucene 9, a missing inline file).
    documents: int | None


class _Reader:
    """Lucene's big-endian DataInput over bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated Lucene file")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def long(self) -> int:
        return int(struct.unpack(">q", self.take(8))[0])

    def vint(self) -> int:
        value, shift = 0, 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def string(self) -> str:
        return self.take(self.vint()).decode()

    def index_header(self) -> tuple[str, int]:
        """CodecUtil's index header: magic, codec name, format, id, suffix."""
        if self.int() != 0x3FD76C17:
            raise ValueError("no Lucene codec header")
        codec, version = self.string(), self.int()
        self.take(16)
        self.take(self.byte())
        return codec, version


def segment_deletes(data: bytes) -> dict[str, int]:
    """``segments_N``: each segment's name → its hard- plus soft-deleted documents."""
    r = _Reader(data)
    codec, fmt = r.index_header()
    if codec != "segments" or not 6 <= fmt <= _SCI_ID:
        raise ValueError(f"segments format {fmt} is not Lucene 6-8")
    r.vint(), r.vint(), r.vint()  # the Lucene version that wrote the commit
    # Since Lucene 7 the index's created major follows; Lucene 9 is little-endian.
    if fmt >= _NO_HAS_ID_BYTE and r.vint() >= 9:
        raise ValueError("Lucene 9 index")
    r.long()  # commit version
    r.vint() if fmt >= _NO_HAS_ID_BYTE else r.int()  # segment name counter
    count = r.int()
    if count:
        r.vint(), r.vint(), r.vint()  # the oldest segment's Lucene version
    deletes: dict[str, int] = {}
    for _ in range(count):
        name = r.string()
        if fmt < _NO_HAS_ID_BYTE and r.byte() != 1:
            raise ValueError("segment without an id")
        r.take(16)
        r.string()  # codec
        r.long()  # deletes generation
        deleted = r.int()
        r.long(), r.long()  # field infos and doc values generations
        if fmt >= _SOFT_DELETES:
            deleted += r.int()
        if fmt >= _SCI_ID and r.byte() == 1:
            r.take(16)
        for _ in range(r.vint()):  # field infos files
            r.string()
        for _ in range(r.int()):  # doc values update files, per field
            r.int()
            for _ in range(r.vint()):
                r.string()
        deletes[name] = deleted
    return deletes


def segment_documents(data: bytes) -> int:
    """A segment's ``.si``: the documents it was written with (deleted ones included)."""
    r = _Reader(data)
    codec, _ = r.index_header()
    if codec not in _SI_WITH_MIN_VERSION | _SI_WITHOUT_MIN_VERSION:
        raise ValueError(f"segment info format {codec} is not Lucene 6-8")
    r.int(), r.int(), r.int()  # the Lucene version that wrote it
    if codec in _SI_WITH_MIN_VERSION and r.byte() == 1:
        r.int(), r.int(), r.int()
    return r.int()


def live_documents(files: list[dict[str, Any]]) -> int | None:
    """Live documents of one shard snapshot, from the files it lists (None: unknown)."""
    inline = {f.get("physical_name"): f.get("meta_hash") for f in files}
    commit = [n for n in inline if isinstance(n, str) and n.startswith("segments_")]
    try:
        if len(commit) != 1 or not isinstance(inline[commit[0]], bytes):
            return None
        total = 0
        for segment, deleted in segment_deletes(inline[commit[0]]).items():
            info = inline.get(f"{segment}.si")
            if not isinstance(info, bytes):
                return None
            total += segment_documents(info) - deleted
        return total
    except (ValueError, UnicodeDecodeError, struct.error):
        return None


def index_details(store: BlobStore, contents: RepositoryContents,
                  entry: SnapshotEntry) -> list[IndexDetail]:
    """Shards, bytes and live documents of each index of a snapshot. Shards are found
    by reading ``0/``, ``1/``, ... until one holds no metadata for the snapshot."""
    details = []
    for index in entry.indices:
        folder = f"indices/{contents.index_ids.get(index, index)}"
        shards, size = 0, 0
        documents: int | None = 0
        while True:
            try:
                meta = decode_metadata_blob(store.read(f"{folder}/{shards}/snap-{entry.uuid}.dat"))
            except BlobNotFound:
                break
            shards += 1
            size += int(meta.get("total_size") or 0)
            docs = live_documents(meta.get("files") or [])
            documents = None if docs is None or documents is None else documents + docs
        details.append(IndexDetail(index, shards, size, documents if shards else None))
    return details
