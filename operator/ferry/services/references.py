"""A resource's references, resolved in one place: ``clusterRef``/``sourceRef``/
``targetRef`` → the Cluster's parsed spec and an :class:`Engine` on it; ``snapshotRef`` →
the Snapshot resource and its parsed spec.

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
from ferry.api.snapshot import SnapshotSpec
from ferry.clients import kube
from ferry.clients.engine import Engine
from ferry.clients.kube import ObjectReader
from ferry.clients.search import connection_for
from ferry.errors import InvalidSpec, ReferenceNotFound

# Requests one copy worker has in flight: a page read ahead and its bulks (copier's
# bulks_in_flight default), with one to spare.
CONNECTIONS_PER_WORKER = 4


def missing(kind: str, name: str) -> ReferenceNotFound:
    return ReferenceNotFound(f"{kind} {name} not found in this namespace",
                             code=f"{kind}NotFound")


@dataclass
class Endpoints:
    """A Backfill's two Clusters: their specs and an Engine on each."""

    source_spec: ClusterSpec
    target_spec: ClusterSpec
    source: Engine
    target: Engine

    def close(self) -> None:
        for engine in (self.source, self.target):
            with contextlib.suppress(Exception):
                engine.close()


def check_pair(source: ClusterSpec, target: ClusterSpec, spec: BackfillSpec) -> None:
    """What must hold before anything is read or written (not retryable)."""
    if target.read_only:
        raise InvalidSpec(f"target Cluster {spec.target_ref.name} is readOnly: Ferry never "
                          "writes to it", code="TargetReadOnly")
    if source.endpoint.rstrip("/") == target.endpoint.rstrip("/"):
        raise InvalidSpec("source and target Clusters point at the same endpoint "
                          f"({source.endpoint})", code="SameEndpoint")
    if spec.source.snapshot_ref is not None and spec.method == "copy":
        raise InvalidSpec("source.snapshotRef with method copy (reading documents straight "
                          "from snapshot files) is not supported yet; remove it to copy from "
                          "the live source, or use method restore to restore the snapshot",
                          code="SnapshotSourceNotSupported")


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
        source, target = self.cluster(spec.source_ref.name), self.cluster(spec.target_ref.name)
        check_pair(source, target, spec)
        pool = {"pool_maxsize": CONNECTIONS_PER_WORKER * max(1, spec.workers) + 2}
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

    def backfill(self, name: str) -> tuple[dict[str, Any], BackfillSpec] | None:
        obj = kube.get_object(Backfill, self.namespace, name)
        if obj is None:
            return None
        return self._spec(Backfill, name, BackfillSpec, obj)
