"""The ferry.dev/v1alpha1 API: Pydantic models of each kind's spec and status.

These models are the one source of truth. The CRDs under ``crds/`` are generated
from them (``ferry crds``) and the handlers parse every spec through them, so a field
described here is what ``kubectl explain`` shows and what the operator reads.
"""

from ferry.api.backfill import Backfill, BackfillSpec, BackfillStatus
from ferry.api.cluster import Cluster, ClusterSpec, ClusterStatus
from ferry.api.meta import GROUP, VERSION, KindInfo
from ferry.api.snapshot import Snapshot, SnapshotSpec, SnapshotStatus

KINDS: tuple[KindInfo, ...] = (Cluster, Snapshot, Backfill)

__all__ = [
    "GROUP",
    "KINDS",
    "VERSION",
    "Backfill",
    "BackfillSpec",
    "BackfillStatus",
    "Cluster",
    "ClusterSpec",
    "ClusterStatus",
    "KindInfo",
    "Snapshot",
    "SnapshotSpec",
    "SnapshotStatus",
]
