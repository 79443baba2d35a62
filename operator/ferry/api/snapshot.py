"""Snapshot: a snapshot of a Cluster into a repository, followed to the end."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ferry.api.common import (
    MAX_STATUS_LIST,
    ApiModel,
    Failure,
    LocalObjectReference,
    TimedStatus,
)
from ferry.api.meta import AGE_COLUMN, KindInfo, PrinterColumn, condition_column

IndexPattern = Annotated[str, Field(min_length=1, max_length=255)]
BYTE_SIZE = r"^[0-9]+(\.[0-9]+)?(b|kb|mb|gb|tb|pb)$"


class FsRepository(ApiModel):
    """A shared filesystem repository. The location must be under the cluster's
    `path.repo` on every node."""

    location: str = Field(
        min_length=1, max_length=4096, description="Absolute path of the repository.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self.startsWith('/')",
             "message": "fs.location must be an absolute path (under the nodes' path.repo)"}]},
    )


class S3Repository(ApiModel):
    """An S3 (or S3-compatible) repository. The cluster needs the repository-s3 plugin;
    its own keystore holds the credentials the cluster uses."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
        description="Bucket name.",
    )
    base_path: str | None = Field(
        default=None, max_length=1024, description="Key prefix of the repository in the bucket."
    )
    region: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9-]+$",
                               description="AWS region, e.g. eu-west-1.")
    endpoint: str | None = Field(
        default=None, max_length=2048,
        description="S3 endpoint for S3-compatible stores, e.g. https://minio.example:9000.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "isURL(self) && url(self).getScheme() in ['http', 'https'] "
             "&& url(self).getHostname() != ''",
             "message": "s3.endpoint must be an http:// or https:// URL with a host"}]},
    )
    path_style_access: bool = Field(
        default=False, description="Use path-style URLs (needed by most S3-compatible stores)."
    )
    role_arn: str | None = Field(
        default=None, max_length=2048, pattern=r"^arn:aws[a-z-]*:iam::[0-9]*:role/\S+$",
        description="IAM role for the cluster to assume, e.g. "
        "arn:aws:iam::123456789012:role/snapshots.",
    )
    create_bucket: bool = Field(
        default=False, description="Create the bucket with the operator's credentials if missing."
    )


class Repository(ApiModel):
    """The snapshot repository. Registered on the cluster if missing; an existing one
    with other settings is never overwritten (reason RepositoryConflict)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "self.type != 's3' || has(self.s3)",
                 "message": "repository.s3 is required when type is s3"},
                {"rule": "self.type != 'fs' || has(self.fs)",
                 "message": "repository.fs is required when type is fs"},
                {"rule": "!(has(self.fs) && has(self.s3))",
                 "message": "set only one of repository.fs and repository.s3"},
            ]
        }
    }

    name: str = Field(
        min_length=1, max_length=255, pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="Repository name on the cluster.",
    )
    type: Literal["fs", "s3"] = Field(description="Repository type.")
    fs: FsRepository | None = Field(default=None, description="Settings of an fs repository.")
    s3: S3Repository | None = Field(default=None, description="Settings of an s3 repository.")
    compress: bool = Field(default=True, description="Compress metadata files.")
    max_snapshot_bytes_per_sec: str | None = Field(
        default=None, pattern=BYTE_SIZE, max_length=32,
        description="Throttle of snapshot writes per node, e.g. 40mb.",
    )
    max_restore_bytes_per_sec: str | None = Field(
        default=None, pattern=BYTE_SIZE, max_length=32,
        description="Throttle of restores per node, e.g. 40mb.",
    )


class SnapshotSpec(ApiModel):
    """What to snapshot and where to."""

    cluster_ref: LocalObjectReference = Field(
        description="The Cluster to snapshot. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "clusterRef is immutable"}]},
    )
    snapshot_name: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="Name of the snapshot in the repository. Defaults to metadata.name. "
        "Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "snapshotName is immutable"}]},
    )
    indices: list[IndexPattern] = Field(
        default_factory=list, max_length=256,
        description="Index patterns; a pattern starting with - excludes. Empty means every "
        "index but system and dot-prefixed ones. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "indices is immutable"}]},
    )
    include_global_state: bool = Field(
        default=False, description="Include the cluster state: templates, persistent settings."
    )
    partial: bool = Field(
        default=False, description="Allow a partial snapshot when some primaries are unavailable."
    )
    ignore_unavailable: bool = Field(
        default=False, description="Ignore indices that are missing or closed."
    )
    repository: Repository = Field(
        description="Repository to write the snapshot to. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "repository is immutable"}]},
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="What deleting this resource does to the snapshot: Retain keeps it, "
        "Delete deletes it from the repository first.",
    )


SnapshotPhase = Literal["Pending", "InProgress", "Completed", "PartiallyFailed", "Failed",
                        "Deleting"]


class SnapshotProgress(ApiModel):
    """How far the snapshot is."""

    percent: float | None = Field(default=None, ge=0, le=100, description="Percent done.")
    shards_total: int | None = Field(default=None, description="Shards in the snapshot.")
    shards_done: int | None = Field(default=None, description="Shards finished.")
    shards_failed: int | None = Field(default=None, description="Shards that failed.")
    bytes_total: int | None = Field(default=None, description="Bytes to copy (incremental).")
    bytes_done: int | None = Field(default=None, description="Bytes copied (incremental).")
    bytes_per_second: float | None = Field(default=None, description="Recent copy rate.")
    eta_seconds: int | None = Field(default=None, description="Estimated seconds remaining.")
    # Printer columns show a status field as it is: these are the figures above as text.
    completion: str | None = Field(
        default=None, max_length=16, description="percent as text with its unit, e.g. 42.5%.")
    size: str | None = Field(
        default=None, max_length=16,
        description="bytesTotal in binary units, e.g. 1.2GiB: what this snapshot copies "
        "into the repository (files that earlier snapshots already wrote are not counted).")
    rate: str | None = Field(
        default=None, max_length=16, description="bytesPerSecond as text, e.g. 12MiB/s.")
    eta: str | None = Field(
        default=None, max_length=16, description="etaSeconds as a duration, e.g. 1h02m.")


class SnapshotIndexStatus(ApiModel):
    """State of one index in the snapshot."""

    name: str = Field(description="Index name.")
    state: str | None = Field(default=None, description="Index snapshot state.")
    shards_total: int | None = Field(default=None, description="Shards of the index.")
    shards_done: int | None = Field(default=None, description="Shards finished.")
    shards_failed: int | None = Field(default=None, description="Shards that failed.")
    documents: int | None = Field(
        default=None, description="Documents in the index when the snapshot was taken."
    )


class SnapshotStatus(TimedStatus):
    """What the operator last observed about the snapshot."""

    phase: SnapshotPhase | None = Field(default=None, description="Summary of the state.")
    snapshot_name: str | None = Field(default=None, description="Name in the repository.")
    snapshot_uuid: str | None = Field(default=None, description="UUID of the snapshot.")
    engine_version: str | None = Field(default=None, description="Version that wrote it.")
    progress: SnapshotProgress | None = Field(default=None, description="Progress figures.")
    indices: list[SnapshotIndexStatus] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST * 5,
        description="Per-index state (bounded; see indicesTotal).",
    )
    indices_total: int | None = Field(default=None, description="Indices in the snapshot.")
    documents: int | None = Field(
        default=None,
        description="Documents (top-level, as search counts them) in the snapshot's indices "
        "when the operator started it; what a restore is verified against. Unset for an "
        "adopted snapshot.",
    )
    adopted: bool | None = Field(
        default=None,
        description="True when a snapshot of that name already existed and was adopted "
        "rather than started; deletionPolicy Delete never deletes an adopted snapshot.",
    )
    failures: list[Failure] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST,
        description="Shard failures (bounded, newest first).",
    )


Snapshot = KindInfo(
    kind="Snapshot",
    plural="snapshots",
    short_names=("fsnap", "fsnapshot"),
    description="A snapshot of a Cluster into a repository, created, tracked to completion "
    "and, with deletionPolicy Delete, deleted with the resource.",
    spec=SnapshotSpec,
    status=SnapshotStatus,
    printer_columns=(
        PrinterColumn("Cluster", ".spec.clusterRef.name", description="The Cluster snapshotted."),
        PrinterColumn("Phase", ".status.phase", description="Summary of the state."),
        condition_column("Ready", "True when the snapshot completed."),
        PrinterColumn("Progress", ".status.progress.completion",
                      description="Bytes copied (else shards done), in percent."),
        PrinterColumn("Size", ".status.progress.size",
                      description="What this snapshot copies into the repository."),
        PrinterColumn("ETA", ".status.progress.eta",
                      description="Estimated time remaining at the current rate."),
        PrinterColumn("Rate", ".status.progress.rate", priority=1,
                      description="Bytes copied per second."),
        PrinterColumn("Snapshot", ".status.snapshotName", priority=1,
                      description="Name of the snapshot in the repository."),
        condition_column("Verified", "True when the operator found the snapshot and its "
                         "indices in the repository's own files.", priority=1),
        AGE_COLUMN,
    ),
    spec_validations=(
        {"rule": "has(self.snapshotName) == has(oldSelf.snapshotName)",
         "message": "snapshotName is immutable"},
    ),
)
