"""The live documents of a snapshot, shard by shard, straight from the repository.

Per shard: its ``snap-<uuid>.dat`` (the file list), the commit point and each segment's
info, then per segment its field infos, hard deletes (``.liv``), soft deletes (the
``__soft_deletes`` doc values, when the commit counts any) and its stored fields, read
in document order. Every file read is verified (codec header, footer CRC32, recorded
length and checksum), and every count is cross-checked: the deletes found must equal
the deletes the commit recorded, and the documents walked must equal the segment's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ferry.repository import smile
from ferry.repository.blobs import BlobNotFound, BlobStore
from ferry.repository.lucene import elastic
from ferry.repository.lucene.codec import CorruptFile, LuceneError, base36
from ferry.repository.lucene.compound import SegmentFiles
from ferry.repository.lucene.docvalues import soft_deleted
from ferry.repository.lucene.fields import FieldInfo, read_field_infos
from ferry.repository.lucene.livedocs import read_deleted
from ferry.repository.lucene.segments import (
    SegmentCommit,
    SegmentInfo,
    read_commit,
    read_segment_info,
)
from ferry.repository.lucene.store import ShardFiles
from ferry.repository.lucene.stored import read_documents
from ferry.repository.reader import (
    RepositoryContents,
    RepositoryError,
    SnapshotEntry,
    decode_metadata_blob,
)


@dataclass(frozen=True)
class Document:
    """A live document; ``source`` is JSON bytes, or None when none was stored."""

    index: str
    id: str
    type: str | None
    routing: str | None
    source: bytes | None

    def to_json(self) -> dict[str, Any]:
        """The ``ferry snapshot cat`` line: type only for typed (ES 5/6) indices,
        routing only when set."""
        import json  # not orjson: a source's integers may exceed 64 bits

        out: dict[str, Any] = {"index": self.index, "id": self.id}
        if self.type is not None:
            out["type"] = self.type
        if self.routing is not None:
            out["routing"] = self.routing
        out["source"] = json.loads(self.source) if self.source is not None else None
        return out


@dataclass(frozen=True)
class IndexFacts:
    """What the index metadata says that documents need: shards and the mapping type."""

    name: str
    id: str
    shards: int
    # The single mapping type of an ES 6 index (its documents carry no type of their own).
    type: str | None


def index_facts(store: BlobStore, contents: RepositoryContents, entry: SnapshotEntry,
                index: str) -> IndexFacts:
    index_id = contents.index_ids.get(index, index)
    blob = entry.index_metadata_blob(index_id)
    try:
        meta = decode_metadata_blob(store.read(blob))
    except (BlobNotFound, smile.SmileError) as exc:
        raise RepositoryError(f"{store.location}/{blob}: index metadata of {index} cannot "
                              f"be read: {exc}") from None
    body = meta.get(index, next(iter(meta.values()), {})) if isinstance(meta, dict) else {}
    settings = body.get("settings") or {}
    shards = int(settings.get("index.number_of_shards") or 0)
    created = int(settings.get("index.version.created") or 0)
    mappings = body.get("mappings") or []
    names = [n for m in mappings if isinstance(m, dict) for n in m]
    typed = 6_000_000 <= created < 7_000_000 and len(names) == 1
    return IndexFacts(index, index_id, shards, names[0] if typed else None)


def _commit_file(files: ShardFiles) -> tuple[str, int]:
    commits = [n for n in files.entries if n.startswith("segments_")]
    if len(commits) != 1:
        raise CorruptFile(f"{files.label}: the snapshot lists {len(commits)} commit points "
                          "(segments_N), expected one")
    try:
        return commits[0], int(commits[0][len("segments_"):], 36)
    except ValueError:
        raise CorruptFile(f"{files.label}: {commits[0]} is not a commit point") from None


def _field_infos(files: ShardFiles, segment: SegmentCommit, own: SegmentFiles
                 ) -> dict[int, FieldInfo]:
    if (name := segment.field_infos_file) is not None:  # rewritten by doc-values updates
        data, where, suffix = files.read(name), files.where(name), base36(segment.field_infos_gen)
    else:
        data, where, suffix = own.read(".fnm"), own.name(".fnm"), ""
    return read_field_infos(data, where, segment.id, suffix)


def _soft_deleted(files: ShardFiles, segment: SegmentCommit, info: SegmentInfo,
                  own: SegmentFiles, fields: dict[int, FieldInfo]) -> set[int]:
    field = next((f for f in fields.values() if f.soft_deletes), None)
    if field is None:
        raise CorruptFile(f"{files.label}/{segment.name}: the commit counts "
                          f"{segment.soft_del_count} soft deletes, the segment has no "
                          "soft-deletes field")
    per_field = "_".join((field.attributes.get("PerFieldDocValuesFormat.format", ""),
                          field.attributes.get("PerFieldDocValuesFormat.suffix", "")))
    if field.dv_gen == -1:
        suffix = per_field
        read, where = own.read, own.name
        meta_name, data_name = f"_{per_field}.dvm", f"_{per_field}.dvd"
    else:  # a doc-values update: the generation's files hold the field's values
        suffix = f"{base36(field.dv_gen)}_{per_field}"
        read, where = files.read, files.where
        meta_name, data_name = f"{info.name}_{suffix}.dvm", f"{info.name}_{suffix}.dvd"
    return soft_deleted(read(meta_name), where(meta_name), read(data_name), where(data_name),
                        field, fields, info.id, suffix, info.max_doc)


def _segment_documents(files: ShardFiles, segment: SegmentCommit, facts: IndexFacts
                       ) -> Iterator[Document]:
    si = f"{segment.name}.si"
    info = read_segment_info(files.read(si), files.where(si), segment)
    own = SegmentFiles(files, info)
    fields = _field_infos(files, segment, own)
    deleted: set[int] = set()
    if (liv := segment.live_docs_file) is not None:
        deleted = read_deleted(files.read(liv), files.where(liv), segment, info.max_doc)
    if segment.soft_del_count:
        soft = _soft_deleted(files, segment, info, own, fields) - deleted
        if len(soft) != segment.soft_del_count:
            raise CorruptFile(f"{files.label}/{segment.name}: {len(soft)} soft-deleted "
                              f"documents found, the commit recorded {segment.soft_del_count}")
        deleted |= soft
    if len(deleted) >= info.max_doc:
        return
    numbers = {f.name: n for n, f in fields.items()}
    wanted = {numbers[n] for n in (*elastic.ID_FIELDS, elastic.SOURCE, elastic.ROUTING)
              if n in numbers}
    fdm = own.read(".fdm") if own.has(".fdm") else None
    walked = 0
    for _, values in read_documents(own.read(".fdt"), own.name(".fdt"), info.id,
                                    info.max_doc, deleted, wanted, fdm, own.name(".fdm")):
        walked += 1
        document = _document(values, numbers, facts, files.label)
        if document is not None:
            yield document
    if walked != info.max_doc - len(deleted):
        raise CorruptFile(f"{own.name('.fdt')}: {walked} live documents, expected "
                          f"{info.max_doc - len(deleted)}")


def _document(values: dict[int, bytes], numbers: dict[str, int], facts: IndexFacts,
              label: str) -> Document | None:
    def value(field: str) -> bytes | None:
        number = numbers.get(field)
        return values.get(number) if number is not None else None

    uid, raw_id, raw_source = value("_uid"), value("_id"), value(elastic.SOURCE)
    if uid is None and raw_id is None:
        return None  # a nested object's own Lucene document
    try:
        if uid is not None:
            type_, id_ = elastic.split_uid(uid)
        else:
            type_, id_ = facts.type, elastic.decode_id(raw_id or b"")
        routing = value(elastic.ROUTING)
        source = elastic.source_json(raw_source) if raw_source is not None else None
        return Document(facts.name, id_, type_, routing.decode() if routing else None, source)
    except (ValueError, smile.SmileError) as exc:
        raise LuceneError(f"{label}: a document cannot be decoded: {exc}") from None


def shard_files(store: BlobStore, facts: IndexFacts, entry: SnapshotEntry, shard: int
                ) -> ShardFiles:
    folder = f"indices/{facts.id}/{shard}"
    label = f"{facts.name}[{shard}]"
    try:
        meta = decode_metadata_blob(store.read(f"{folder}/snap-{entry.uuid}.dat"))
    except BlobNotFound:
        raise RepositoryError(f"{store.location}/{folder}: no shard metadata for snapshot "
                              f"{entry.name}") from None
    return ShardFiles(store, folder, meta.get("files") or [], label)


def shard_documents(files: ShardFiles, facts: IndexFacts) -> Iterator[Document]:
    """The live documents of one shard snapshot, segment by segment."""
    if not files.entries:  # a shard that never held a document
        return
    name, generation = _commit_file(files)
    commit = read_commit(files.read(name), files.where(name), generation)
    for segment in commit.segments:
        yield from _segment_documents(files, segment, facts)


def snapshot_documents(store: BlobStore, contents: RepositoryContents, entry: SnapshotEntry,
                       indices: Iterable[str] | None = None) -> Iterator[Document]:
    """The live documents of a snapshot's indices (all by default), index by index."""
    for index in indices if indices is not None else entry.indices:
        if index not in entry.indices:
            raise RepositoryError(f"snapshot {entry.name} has no index {index} (it has: "
                                  f"{', '.join(entry.indices) or 'none'})")
        facts = index_facts(store, contents, entry, index)
        for shard in range(facts.shards):
            yield from shard_documents(shard_files(store, facts, entry, shard), facts)
