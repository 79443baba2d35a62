"""Per-index detail of one snapshot, read from its shard metadata: how many shards,
how many bytes, and how many live documents (`ferry snapshot ls --details`).

Each shard's ``indices/<index-id>/<shard>/snap-<uuid>.dat`` lists the shard's files
with their sizes; the small Lucene files — the commit point ``segments_N`` and each
segment's ``.si`` — are stored inline in it (``meta_hash``), so documents are counted
without reading a data blob: per segment, ``.si`` gives the documents written and
``segments_N`` the hard- and soft-deleted ones. Lucene 6 to 10 (Elasticsearch 5.x-8.x,
OpenSearch 1.x-3.x) are read; other formats leave the count unknown.
Nested documents count as Lucene documents, as they do in ``_cat/indices``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.repository.blobs import BlobNotFound, BlobStore
from ferry.repository.lucene.codec import LuceneError
from ferry.repository.lucene.segments import read_commit, read_segment_info
from ferry.repository.reader import RepositoryContents, SnapshotEntry, decode_metadata_blob


@dataclass
class IndexDetail:
    name: str
    shards: int
    size_bytes: int
    # None when a shard's commit could not be read (an unknown format, a missing inline file).
    documents: int | None


def live_documents(files: list[dict[str, Any]]) -> int | None:
    """Live documents of one shard snapshot, from the files it lists (None: unknown).
    Only the inline commit point and ``.si`` files are read (and verified), through the
    same parsers as the document reader (:mod:`ferry.repository.lucene.segments`)."""
    inline = {f.get("physical_name"): f.get("meta_hash") for f in files}
    commit = [n for n in inline if isinstance(n, str) and n.startswith("segments_")]
    if len(commit) != 1 or not isinstance(inline[commit[0]], bytes):
        return None
    try:
        total = 0
        for segment in read_commit(inline[commit[0]], commit[0]).segments:
            info = inline.get(f"{segment.name}.si")
            if not isinstance(info, bytes):
                return None
            documents = read_segment_info(info, f"{segment.name}.si", segment).max_doc
            total += documents - segment.del_count - segment.soft_del_count
        return total
    except LuceneError:
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
