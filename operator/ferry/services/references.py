"""A resource's references, resolved in one place: ``clusterRef``/``sourceRef``/
``targetRef`` → the Cluster's parsed spec and an :class:`Engine` on it; ``snapshotRef`` →
the Snapshot resource and its parsed spec, and (a Backfill of method copy that reads the
snapshot's files) the :class:`SnapshotFiles` it reads, without any source Cluster.

Every failure becomes a FerryError a person can act on, so it lands in the referring
resource's status: a missing object is ``ReferenceNotFound`` (retryable: it may be
created later), an object whose spec the models refuse — a CRD older than the operator,
or an object stored before the current schema — is ``InvalidSpec`` naming the field.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ferry.api import Backfill, Cluster, Snapshot
from ferry.api.backfill import BackfillSpec
from ferry.api.cluster import ClusterSpec
from ferry.api.common import describe_validation
from ferry.api.meta import KindInfo
from ferry.api.snapshot import Repository, SnapshotSpec
from ferry.clients import kube
from ferry.clients.engine import Engine
from ferry.clients.kube import ObjectReader
from ferry.clients.search import connection_for
from ferry.errors import FerryError, InvalidSpec, ReferenceNotFound

# Requests one copy worker has in flight besides its bulks (spec.batch.bulksInFlight):
# a page read ahead, with one to spare.
CONNECTIONS_PER_WORKER = 2


def missing(kind: str, name: str) -> ReferenceNotFound:
    return ReferenceNotFound(f"{kind} {name} not found in this namespace",
                             code=f"{kind}NotFound")


@dataclass(frozen=True)
class SnapshotFiles:
    """A Completed Snapshot as a Backfill reads its files: where the repository is, which
    snapshot in it, and the per-index document counts the Snapshot recorded (a cross-check
    only: they are taken before the snapshot starts, and unset for adopted ones)."""

    resource: str
    snapshot: str
    uuid: str | None
    repository: Repository
    documents: dict[str, int]


@dataclass
class Endpoints:
    """A Backfill's two Clusters: their specs and an Engine on each. A copy from a
    snapshot's files has no source Cluster (``source`` None) and ``snapshot`` set."""

    source_spec: ClusterSpec | None
    target_spec: ClusterSpec
    source: Engine | None
    target: Engine
    snapshot: SnapshotFiles | None = None

    def close(self) -> None:
        for engine in (self.source, self.target):
            with contextlib.suppress(Exception):
                if engine is not None:
                    engine.close()


def reads_snapshot_files(spec: BackfillSpec) -> bool:
    """Method copy with source.snapshotRef: documents come from the snapshot's files."""
    return spec.method == "copy" and spec.source.snapshot_ref is not None


def check_pair(source: ClusterSpec | None, target: ClusterSpec, spec: BackfillSpec) -> None:
    """What must hold before anything is read or written (not retryable)."""
    if target.read_only:
        raise InvalidSpec(f"target Cluster {spec.target_ref.name} is readOnly: Ferry never "
                          "writes to it", code="TargetReadOnly")
    if source is not None and source.endpoint.rstrip("/") == target.endpoint.rstrip("/"):
        raise InvalidSpec("source and target Clusters point at the same endpoint "
                          f"({source.endpoint})", code="SameEndpoint")


class References:
    """Resolves references from resources of one namespace. Blocking."""

    def __init__(self, namespace: str, reader: ObjectReader) -> None:
        self.namespace = namespace
        self.reader = reader

    def _spec(self, kind: KindInfo, name: str, model: type[BaseModel],
              obj: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
        obj = obj if obj is not None else kube.get_object(kind, self.namespace, name)
        if obj is None:
            raise missing(kind.kind, name)
        try:
            return obj, model.model_validate(obj.get("spec") or {})
        except ValidationError as exc:
            # Retryable: the referenced object can be mended (re-applied) without
            # touching the resource that refers to it.
            raise InvalidSpec(f"{kind.kind} {name} has a spec the operator cannot read: "
                              f"{describe_validation(exc)}", retryable=True) from None

    def cluster(self, name: str) -> ClusterSpec:
        _, spec = self._spec(Cluster, name, ClusterSpec)
        return spec

    def engine(self, name: str, spec: ClusterSpec | None = None, **overrides: Any) -> Engine:
        """An Engine on the Cluster (Secrets read now). Raises SecretNotFound and friends."""
        spec = spec or self.cluster(name)
        return connection_for(spec, self.namespace, self.reader, name).engine(**overrides)

    def endpoints(self, spec: BackfillSpec) -> Endpoints:
        """Engines for a Backfill's two Clusters, each with a connection pool as large
        as the requests its workers have in flight at once (a page read ahead and the
        bulks of each worker, plus the coordination index), so no connection is
        opened and discarded per request."""
        per_worker = CONNECTIONS_PER_WORKER + spec.batch.bulks_in_flight
        pool = {"pool_maxsize": per_worker * max(1, spec.workers) + 2}
        if reads_snapshot_files(spec):
            # The source Cluster may be gone: only the snapshot's repository is read.
            target = self.cluster(spec.target_ref.name)
            check_pair(None, target, spec)
            files = self.snapshot_files(spec)
            return Endpoints(None, target, None, self.engine(spec.target_ref.name, target,
                                                             **pool), files)
        if spec.source_ref is None:
            raise InvalidSpec(f"method {spec.method} needs sourceRef")
        source, target = self.cluster(spec.source_ref.name), self.cluster(spec.target_ref.name)
        check_pair(source, target, spec)
        source_engine = self.engine(spec.source_ref.name, source, **pool)
        try:
            target_engine = self.engine(spec.target_ref.name, target, **pool)
        except Exception:
            source_engine.close()
            raise
        return Endpoints(source, target, source_engine, target_engine)

    def snapshot(self, name: str) -> tuple[dict[str, Any], SnapshotSpec]:
        """The Snapshot resource and its parsed spec. Read with list, which the
        operator's watch permission already covers."""
        obj = kube.find_object(Snapshot, self.namespace, name)
        if obj is None:
            raise missing("Snapshot", name)
        return self._spec(Snapshot, name, SnapshotSpec, obj)

    def completed_snapshot(self, name: str, only: str) -> tuple[dict[str, Any], SnapshotSpec]:
        """The Snapshot, which must be Completed: waits (retryable) while it is not yet,
        refuses one that failed ("{only} a Completed snapshot" says for what)."""
        obj, snap_spec = self.snapshot(name)
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        if phase in ("Failed", "PartiallyFailed"):
            raise InvalidSpec(f"Snapshot {name} is {phase}: {only} a Completed snapshot",
                              code="SnapshotNotCompleted")
        if phase != "Completed":
            raise FerryError(f"waiting for Snapshot {name} to complete (it is {phase})",
                             code="SnapshotNotReady", retryable=True)
        return obj, snap_spec

    def snapshot_files(self, spec: BackfillSpec) -> SnapshotFiles:
        """The files of the Snapshot a Backfill names: it must be Completed (retryable
        while it is still running; a failed one is refused)."""
        ref = spec.source.snapshot_ref
        if ref is None:
            raise InvalidSpec("source.snapshotRef is not set")
        obj, snap_spec = self.completed_snapshot(ref.name, "documents are read only from")
        status = obj.get("status") or {}
        return SnapshotFiles(
            resource=ref.name,
            snapshot=str(status.get("snapshotName") or snap_spec.snapshot_name or ref.name),
            uuid=status.get("snapshotUuid"), repository=snap_spec.repository,
            documents={r["name"]: int(r["documents"]) for r in status.get("indices") or []
                       if r.get("documents") is not None})

    def backfill(self, name: str) -> tuple[dict[str, Any], BackfillSpec] | None:
        obj = kube.get_object(Backfill, self.namespace, name)
        if obj is None:
            return None
        return self._spec(Backfill, name, BackfillSpec, obj)
