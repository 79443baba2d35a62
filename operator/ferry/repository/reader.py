"""Repository data: which snapshots a repository holds, with state, version and indices.

The formats handled, oldest first:
- ES 5.0-5.4 ``index-N``: ``{"snapshots": [{"name", "uuid"}], "indices": {...}}`` —
  no state and no version: both come from ``snap-<uuid>.dat``;
- ES 5.5-6.x: entries gain ``state`` (a byte: 0 in progress, 1 success, 2 failed,
  3 partial, 4 incompatible); the version is still only in ``snap-<uuid>.dat``
  (``version_id``), and 6.x adds an ``incompatible-snapshots`` blob;
- ES 7.x and OpenSearch: entries carry ``version`` too, and indices
  ``shard_generations``/``index_metadata_lookup``, which this reader does not need;
- very old (ES 1.x/2.x) lists of plain names are read as name = uuid.

``index.latest`` (8 bytes, big-endian generation) names the current ``index-N``; where
it is missing the highest ``index-N`` is taken, as the engines themselves do.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ferry.conditions import rfc3339
from ferry.repository import smile
from ferry.repository.blobs import BlobNotFound, BlobStore

STATES = {0: "IN_PROGRESS", 1: "SUCCESS", 2: "FAILED", 3: "PARTIAL", 4: "INCOMPATIBLE"}
CODEC_MAGIC = 0x3FD76C17
FOOTER_LENGTH = 16
DEFLATE_HEADER = b"DFL\x00"
# OpenSearch marks its own version ids with this bit, to tell them from Elasticsearch's.
OPENSEARCH_VERSION_MASK = 0x08000000


class RepositoryError(Exception):
    """The location is not a readable snapshot repository."""


@dataclass
class SnapshotEntry:
    name: str
    uuid: str
    state: str | None = None
    version: str | None = None
    indices: list[str] = field(default_factory=list)
    start_time: datetime | None = None
    end_time: datetime | None = None
    shards_total: int | None = None
    shards_failed: int | None = None
    # index id -> the uuid in its ``indices/<id>/meta-<uuid>.dat`` (ES 7.9+ deduplicates
    # index metadata across snapshots; older ones name it after the snapshot's uuid)
    index_metadata: dict[str, str] = field(default_factory=dict)

    def index_metadata_blob(self, index_id: str) -> str:
        return f"indices/{index_id}/meta-{self.index_metadata.get(index_id, self.uuid)}.dat"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "uuid": self.uuid, "state": self.state,
            "version": self.version, "indices": self.indices,
            "startTime": _iso(self.start_time), "endTime": _iso(self.end_time),
            "shardsTotal": self.shards_total, "shardsFailed": self.shards_failed,
        }


@dataclass
class RepositoryContents:
    location: str
    generation: int
    snapshots: list[SnapshotEntry]
    # index name -> repository index id (the folder under indices/)
    index_ids: dict[str, str]

    def snapshot(self, name: str) -> SnapshotEntry | None:
        return next((s for s in self.snapshots if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "generation": self.generation,
                "snapshots": [s.to_json() for s in self.snapshots]}


def _iso(value: datetime | None) -> str | None:
    return rfc3339(value) if value else None


def version_from_id(version_id: int) -> str:
    """Elasticsearch's (and OpenSearch's masked) numeric version id as text."""
    if version_id & OPENSEARCH_VERSION_MASK:
        version_id ^= OPENSEARCH_VERSION_MASK
    major, rest = divmod(version_id, 1_000_000)
    minor, rest = divmod(rest, 10_000)
    revision = rest // 100
    return f"{major}.{minor}.{revision}"


def _inflate_if_compressed(data: bytes) -> bytes:
    if data.startswith(DEFLATE_HEADER):
        return zlib.decompress(data[len(DEFLATE_HEADER):], -zlib.MAX_WBITS)
    return data


def _lucene_vint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def decode_metadata_blob(data: bytes) -> Any:
    """A ``*.dat`` blob: Lucene codec header, optional DEFLATE, SMILE (or JSON), footer."""
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != CODEC_MAGIC:
        raise RepositoryError("not a metadata blob: the Lucene codec header is missing")
    length, pos = _lucene_vint(data, 4)
    pos += length + 4  # codec name, then the format version (int32)
    body_end = len(data) - FOOTER_LENGTH
    candidates = [pos]
    # An index header (newer writers) adds a 16-byte id and a length-prefixed suffix.
    if pos + 17 <= body_end:
        candidates.append(pos + 16 + 1 + data[pos + 16])
    for start in candidates:
        body = data[start:body_end]
        if body.startswith((smile.HEADER, DEFLATE_HEADER, b"{")):
            body = _inflate_if_compressed(body)
            return json.loads(body) if body.startswith(b"{") else smile.loads(body)
    raise RepositoryError("metadata blob has an unknown layout")


def _generation(store: BlobStore) -> int:
    try:
        latest = store.read("index.latest")
        if len(latest) == 8:
            return int(struct.unpack(">q", latest)[0])
    except BlobNotFound:
        pass
    generations = []
    for name in store.list("index-"):
        suffix = name[len("index-"):]
        if suffix.isdigit():
            generations.append(int(suffix))
    if not generations:
        raise RepositoryError(
            f"{store.location}: no repository data (index.latest / index-N): not a "
            "snapshot repository, or no snapshot was ever written to it")
    return max(generations)


def _millis(value: Any) -> datetime | None:
    if isinstance(value, int) and value > 0:
        return datetime.fromtimestamp(value / 1000, UTC)
    return None


def _fill_from_snapshot_blob(store: BlobStore, entry: SnapshotEntry) -> None:
    try:
        info = decode_metadata_blob(store.read(f"snap-{entry.uuid}.dat"))
    except (BlobNotFound, RepositoryError, smile.SmileError):
        return
    snap = info.get("snapshot", info) if isinstance(info, dict) else {}
    if entry.version is None and isinstance(snap.get("version_id"), int):
        entry.version = version_from_id(snap["version_id"])
    if entry.version is None and isinstance(snap.get("version"), str):
        entry.version = snap["version"]
    if entry.state is None and isinstance(snap.get("state"), str):
        entry.state = snap["state"]
    if not entry.indices and isinstance(snap.get("indices"), list):
        entry.indices = sorted(str(i) for i in snap["indices"])
    entry.start_time = _millis(snap.get("start_time"))
    entry.end_time = _millis(snap.get("end_time"))
    if isinstance(snap.get("total_shards"), int):
        entry.shards_total = snap["total_shards"]
        successful = snap.get("successful_shards")
        if isinstance(successful, int):
            entry.shards_failed = entry.shards_total - successful


def read_repository(store: BlobStore, *, details: bool = False) -> RepositoryContents:
    """The snapshots in a repository. With details, every ``snap-<uuid>.dat`` is read
    for times and shard counts; otherwise only where index-N lacks state or version."""
    generation = _generation(store)
    try:
        raw = _inflate_if_compressed(store.read(f"index-{generation}"))
    except BlobNotFound:
        raise RepositoryError(f"{store.location}: index.latest names index-{generation}, "
                              "which does not exist") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RepositoryError(f"{store.location}/index-{generation} is not JSON: {exc}"
                              ) from None
    entries: list[SnapshotEntry] = []
    identifiers = data.get("index_metadata_identifiers") or {}
    for item in data.get("snapshots", []):
        if isinstance(item, str):
            entries.append(SnapshotEntry(name=item, uuid=item))
            continue
        state = item.get("state")
        lookup = item.get("index_metadata_lookup") or {}
        entries.append(SnapshotEntry(
            name=item["name"], uuid=item.get("uuid", item["name"]),
            state=STATES.get(state, str(state)) if state is not None else None,
            version=item.get("version"),
            index_metadata={i: identifiers[k] for i, k in lookup.items() if k in identifiers}))
    index_ids: dict[str, str] = {}
    by_uuid = {e.uuid: e for e in entries}
    for index, info in (data.get("indices") or {}).items():
        index_ids[index] = info.get("id", index)
        for uuid in info.get("snapshots", []):
            if uuid in by_uuid:
                by_uuid[uuid].indices.append(index)
    for entry in entries:
        entry.indices.sort()
        if details or entry.state is None or entry.version is None:
            _fill_from_snapshot_blob(store, entry)
    return RepositoryContents(location=store.location, generation=generation,
                              snapshots=entries, index_ids=index_ids)
