"""Method copy from a snapshot's files: a :class:`DocumentSource` over the repository
reader (:mod:`ferry.repository.lucene`), and the plan it is read by.

No cluster is read. The plan comes from the snapshot's repository data and index
metadata: one work item per shard of each selected index. A shard is read in the
reader's deterministic order (segment by segment, document by document), so an item's
checkpoint is simply the number of the shard's live documents already yielded: a crash
resumes exactly there (the shard is walked again up to it, nothing is written twice).
An item whose files cannot be read as they must (a checksum, a truncated blob, a
format the reader does not know) ends with checkpoint :data:`UNREADABLE` and a failure
naming the file; a document without ``_source`` is reported, never copied as empty.

A :class:`DocumentSource` cannot record failures itself, so they are kept here per item
and merged into the item by :class:`SnapshotItemStore` whenever the copier saves it (the
copier's own thread), which keeps them in the coordination index like the target's
refusals.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.api.backfill import BackfillSpec
from ferry.api.common import MAX_STATUS_LIST
from ferry.api.snapshot import Repository
from ferry.clients.engine import Engine
from ferry.conditions import now
from ferry.errors import FerryError, InvalidSpec
from ferry.repository import smile
from ferry.repository.blobs import BlobNotFound, BlobStore, FsBlobStore, S3BlobStore
from ferry.repository.lucene import (
    Document,
    IndexFacts,
    LuceneError,
    UnsupportedFormat,
    index_facts,
    shard_documents,
    shard_files,
)
from ferry.repository.reader import (
    RepositoryContents,
    RepositoryError,
    SnapshotEntry,
    decode_metadata_blob,
    read_repository,
)
from ferry.repository.shards import live_documents
from ferry.services import indices as idx
from ferry.services.backfill.documents import Hit
from ferry.services.backfill.plan import IndexPlan, Plan
from ferry.services.backfill.workitems import OPEN_END, WorkItem, WorkItemStore
from ferry.services.metadata.snapshot_input import SnapshotMetadata, SnapshotMetadataService
from ferry.services.references import SnapshotFiles

# The checkpoint of an item whose shard could not be read: below every real position.
UNREADABLE = -1
NO_SOURCE = ("_source is not stored in the snapshot (disabled or excluded by the "
             "mapping): the document cannot be copied")
# Shards whose reading is kept open between pages (a cursor each, holding the stored
# fields of its current segment); an item whose cursor was dropped walks up to its
# checkpoint again. Items in progress are at most the workers of this process.
OPEN_CURSORS = 16


def one_line(source: bytes) -> bytes:
    """A stored JSON ``_source`` on one line, as a bulk body needs it: it is kept as the
    client sent it, pretty-printed or not. JSON allows a raw line break only between
    tokens (inside a string it is escaped), so blanking them changes no value."""
    if b"\n" in source or b"\r" in source:
        return source.replace(b"\r", b" ").replace(b"\n", b" ")
    return source


def open_repository(repository: Repository) -> BlobStore:
    """The repository's blobs: an fs location at the same absolute path as on the
    nodes (the operator's and workers' pods mount it there), or S3 through boto3 with
    the Snapshot's bucket, region and endpoint and the default credential chain."""
    if repository.type == "s3" and repository.s3 is not None:
        from ferry.clients.s3 import s3_client

        s3 = repository.s3
        client = s3_client(endpoint=s3.endpoint, region=s3.region,
                           path_style=s3.path_style_access)
        return S3BlobStore(client, s3.bucket, s3.base_path)
    if repository.fs is None:
        raise InvalidSpec(f"repository {repository.name} has no location",
                          code="RepositoryNotReadable")
    location = Path(repository.fs.location)
    if not location.is_absolute():
        raise InvalidSpec(f"repository {repository.name}: fs location {location} is relative "
                          "to the nodes' path.repo; reading a snapshot's files needs an "
                          "absolute location, mounted at the same path in the operator",
                          code="RepositoryNotReadable")
    if not location.is_dir():
        # Retryable: the volume may be mounted by a later rollout.
        raise FerryError(f"repository {repository.name}: {location} is not mounted in the "
                         "operator (or worker) pod; mount the repository's volume at the same "
                         "absolute path as on the nodes", code="RepositoryNotReadable")
    return FsBlobStore(location)


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Reader and S3 errors as FerryErrors: a file that is not as it must be is final
    (retrying reads the same bytes), an unreachable or throttling S3 is not."""
    try:
        yield
    # The reader's own messages name the shard and the file (and its blob).
    except UnsupportedFormat as exc:
        raise FerryError(str(exc), code="UnsupportedFormat", retryable=False) from None
    except LuceneError as exc:
        raise FerryError(str(exc), code="SnapshotCorrupt", retryable=False) from None
    except (RepositoryError, BlobNotFound, smile.SmileError) as exc:
        raise FerryError(f"{what}: {exc}", code="SnapshotUnreadable", retryable=False
                         ) from None
    except OSError as exc:
        raise FerryError(f"{what}: {exc}", code="RepositoryNotReadable") from None
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            raise FerryError(f"{what}: the operator has no AWS credentials (environment, "
                             "web identity or instance role)", code="CredentialsNotFound",
                             retryable=False) from None
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise FerryError(f"{what}: S3 answered {code}", code="S3Error",
                             retryable=code not in ("403", "AccessDenied")) from None
        if isinstance(exc, BotoCoreError):
            raise FerryError(f"{what}: {exc}", code="S3Unreachable") from None
        raise


class SnapshotReader:
    """One snapshot in its repository: contents, entry and index facts, read once."""

    def __init__(self, files: SnapshotFiles, store: BlobStore | None = None) -> None:
        self.files = files
        self._store = store
        self._lock = threading.Lock()
        self._contents: RepositoryContents | None = None
        self._entry: SnapshotEntry | None = None
        self._facts: dict[str, IndexFacts] = {}

    @property
    def store(self) -> BlobStore:
        if self._store is None:
            self._store = open_repository(self.files.repository)
        return self._store

    def entry(self) -> SnapshotEntry:
        with self._lock:
            if self._entry is None:
                with reading(f"Snapshot {self.files.resource}"):
                    self._contents = read_repository(self.store)
                entry = self._contents.snapshot(self.files.snapshot)
                if entry is None or (self.files.uuid and entry.uuid != self.files.uuid):
                    raise FerryError(f"snapshot {self.files.snapshot} (Snapshot "
                                     f"{self.files.resource}) is not in the repository at "
                                     f"{self.store.location}", code="SnapshotUnreadable",
                                     retryable=False)
                self._entry = entry
            return self._entry

    def contents(self) -> RepositoryContents:
        self.entry()
        assert self._contents is not None
        return self._contents

    def facts(self, index: str) -> IndexFacts:
        entry = self.entry()
        with self._lock:
            if index not in self._facts:
                assert self._contents is not None
                with reading(f"index {index} of snapshot {entry.name}"):
                    self._facts[index] = index_facts(self.store, self._contents, entry, index)
            return self._facts[index]

    def shard_meta(self, index: str, shard: int) -> dict[str, Any]:
        """The shard's ``snap-<uuid>.dat``: its file list (read for counts at planning)."""
        facts, entry = self.facts(index), self.entry()
        with reading(f"{index}[{shard}]"):
            meta = decode_metadata_blob(self.store.read(
                f"indices/{facts.id}/{shard}/snap-{entry.uuid}.dat"))
        return meta if isinstance(meta, dict) else {}

    def metadata_service(self, target: Engine, spec: BackfillSpec, uid: str
                         ) -> SnapshotMetadataService:
        """The metadata migration, its source the snapshot's own metadata."""
        entry = self.entry()
        with reading(f"metadata of snapshot {entry.name}"):
            metadata = SnapshotMetadata(self.store, self.contents(), entry)
        return SnapshotMetadataService(metadata, target, spec, uid)

    def documents(self, index: str, shard: int) -> Iterator[Document]:
        facts = self.facts(index)
        with reading(f"{index}[{shard}]"):
            files = shard_files(self.store, facts, self.entry(), shard)
        return shard_documents(files, facts)


def plan_snapshot(reader: SnapshotReader, spec: BackfillSpec) -> Plan:
    """The snapshot's indices the spec selects, each with its shards and their live
    documents as the shard's commit counts them (nested documents included); an
    index's documents are the Snapshot's recorded count when there is one."""
    entry = reader.entry()
    names = idx.select(entry.indices, list(spec.indices))
    if not names:
        raise InvalidSpec(f"no index of snapshot {entry.name} matches "
                          f"{spec.indices or ['*']}", code="NoIndicesMatched")
    plan = Plan()
    for name in names:
        shards = []
        for shard in range(reader.facts(name).shards):
            files = reader.shard_meta(name, shard).get("files") or []
            live = live_documents(files) if files else 0
            shards.append((shard, 0, live or 0))
        docs = reader.files.documents.get(name, sum(s[2] for s in shards))
        plan.indices.append(IndexPlan(name, idx.target_name(name, spec.target_naming),
                                      docs, shards))
    return plan


def snapshot_work_items(plan: Plan) -> list[WorkItem]:
    """One item per shard; its checkpoint counts the shard's documents yielded."""
    return [WorkItem(id=f"{index.source}/{shard}/0", index=index.source, target=index.target,
                     shard=shard, seq_from=0, seq_to=OPEN_END, checkpoint=0,
                     docs_estimate=docs)
            for index in plan.indices for shard, _, docs in index.shards]


@dataclass
class _Cursor:
    """A shard being read: the documents still to come and how many were taken."""

    documents: Iterator[Document]
    position: int = 0
    error: FerryError | None = None


@dataclass
class _Pending:
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0


class SnapshotDocuments:
    """The DocumentSource of method copy from a snapshot. Thread-safe: each worker reads
    its own item; a cursor is taken out of the cache while a page is read."""

    def __init__(self, reader: SnapshotReader) -> None:
        self.reader = reader
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._pending: dict[str, _Pending] = {}

    def _cursor(self, item: WorkItem, checkpoint: int) -> _Cursor:
        with self._lock:
            cursor = self._cursors.pop(item.id, None)
        if cursor is not None and cursor.position == checkpoint:
            return cursor
        # A resumed item (or one another worker advanced): walk the shard up to the
        # checkpoint again; the order is the same every time.
        cursor = _Cursor(self.reader.documents(item.index, item.shard))
        with reading(f"{item.index}[{item.shard}]"):
            for _ in range(checkpoint):
                if next(cursor.documents, None) is None:
                    break
                cursor.position += 1
        return cursor

    def _keep(self, item: WorkItem, cursor: _Cursor) -> None:
        with self._lock:
            self._cursors[item.id] = cursor
            while len(self._cursors) > OPEN_CURSORS:
                self._cursors.popitem(last=False)

    def _record(self, item: WorkItem, reason: str, doc_id: str, failed: int) -> None:
        with self._lock:
            pending = self._pending.setdefault(item.id, _Pending())
            pending.failures.append({"time": now(), "index": item.index, "id": doc_id,
                                     "reason": reason[:300]})
            pending.failed += failed

    def take_failures(self, item_id: str) -> _Pending | None:
        with self._lock:
            return self._pending.pop(item_id, None)

    def read(self, item: WorkItem, checkpoint: int, size: int) -> tuple[list[Hit], int]:
        if checkpoint < 0:  # already found unreadable
            return [], checkpoint
        try:
            cursor = self._cursor(item, checkpoint)
        except FerryError as exc:
            if exc.retryable:
                raise
            return self._unreadable(item, checkpoint, exc)
        if cursor.error is not None:
            return self._unreadable(item, cursor.position, cursor.error)
        hits: list[Hit] = []
        try:
            with reading(f"{item.index}[{item.shard}]"):
                for document in cursor.documents:
                    cursor.position += 1
                    if document.source is None:
                        self._record(item, NO_SOURCE, document.id, 1)
                        continue
                    hits.append(Hit(item.index, document.id, document.routing,
                                    one_line(document.source)))
                    if len(hits) >= size:
                        self._keep(item, cursor)
                        return hits, cursor.position
        except FerryError as exc:
            if exc.retryable:
                raise  # the cursor is dropped: the next read walks up to the checkpoint
            if not hits:
                return self._unreadable(item, cursor.position, exc)
            # What was read before the error is sound: hand it over, fail the item next.
            cursor.error = exc
        if hits:
            # Kept even when exhausted: the copier asks once more from this position, and
            # a dropped cursor would walk the whole shard again to find nothing.
            self._keep(item, cursor)
        return hits, cursor.position

    def _unreadable(self, item: WorkItem, position: int, exc: FerryError
                    ) -> tuple[list[Hit], int]:
        self._record(item, f"{exc.code}: {exc.message}", f"shard {item.shard}",
                     max(1, item.docs_estimate - max(position, 0)))
        return [], UNREADABLE


class SnapshotItemStore(WorkItemStore):
    """The coordination index as the copier sees it for a snapshot source: every save
    of an item first takes in the failures the source found in it."""

    def __init__(self, engine: Engine, index: str, lease_seconds: float,
                 source: SnapshotDocuments) -> None:
        super().__init__(engine, index, lease_seconds)
        self.source = source

    def _merge(self, item: WorkItem) -> None:
        pending = self.source.take_failures(item.id)
        if pending is not None:
            item.failures = (item.failures + pending.failures)[-MAX_STATUS_LIST:]
            item.docs_failed += pending.failed

    def checkpoint(self, item: WorkItem, holder: str) -> bool:
        self._merge(item)
        return super().checkpoint(item, holder)

    def release(self, item: WorkItem) -> bool:
        self._merge(item)
        return super().release(item)

    def complete(self, item: WorkItem, holder: str | None = None) -> bool:
        self._merge(item)
        return super().complete(item, holder)
