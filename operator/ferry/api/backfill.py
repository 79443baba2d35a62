"""Backfill: documents (and the index metadata they need) copied from a source Cluster
into a target Cluster."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from ferry.api.backfill_batch import BatchSettings, Throttle
from ferry.api.backfill_tuning import TargetTuning, TargetTuningStatus
from ferry.api.common import (
    MAX_STATUS_LIST,
    ApiModel,
    Failure,
    LocalObjectReference,
    TimedStatus,
    nested,
)
from ferry.api.meta import (
    AGE_COLUMN,
    KindInfo,
    PrinterColumn,
    ScaleSubresource,
    condition_column,
    fixed_once_started,
)

IndexPattern = Annotated[str, Field(min_length=1, max_length=255)]
# What an index name may contain (lowercase, none of \/*?"<>| ,#:); a prefix may also
# not start with what an index name may not start with (-, _, +). Checked at apply
# time, so a bad prefix never reaches index creation.
_NAME_CHARS = r'A-Z\\/*?"<>| ,#:'
NAME_PART_PATTERN = rf"^[^{_NAME_CHARS}]*$"
NAME_PREFIX_PATTERN = rf"^([^-_+{_NAME_CHARS}][^{_NAME_CHARS}]*)?$"
IndexName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^A-Z\\/*?\"<>| ,#:]+$")]


class BackfillSource(ApiModel):
    """Where documents are read from, beyond the source Cluster."""

    snapshot_ref: LocalObjectReference | None = Field(
        default=None,
        description="A Completed Snapshot in this namespace. Method restore restores it "
        "into the target; method copy reads the documents straight out of the snapshot's "
        "files (the operator and worker pods read its repository: an fs location mounted at "
        "the same absolute path, or S3 with the default AWS credential chain), so the "
        "source Cluster is not needed and sourceRef may be left out.",
    )


class TargetNaming(ApiModel):
    """How target index names are derived from source names."""

    prefix: str = Field(default="", max_length=100, pattern=NAME_PREFIX_PATTERN,
                        description="Prepended to each name. What an index name allows: "
                        "no uppercase, no spaces, none of \\/*?\"<>,#: nor a vertical "
                        "bar; and not starting with -, _ or +.")
    suffix: str = Field(default="", max_length=100, pattern=NAME_PART_PATTERN,
                        description="Appended to each name. What an index name allows: "
                        "no uppercase, no spaces, none of \\/*?\"<>,#: nor a vertical "
                        "bar.")
    map: dict[str, IndexName] = Field(
        default_factory=dict, max_length=256,
        description="Explicit source → target names; wins over prefix and suffix. Keys are "
        "source index names (no wildcards, no uppercase); no two keys may name one target.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self.all(k, k.matches('^[^A-Z\\\\\\\\/*?\"<>| ,#:]+$'))",
             "message": "targetNaming.map keys must be index names (lowercase, no wildcards)"},
            {"rule": "self.all(k, self.filter(j, self[j] == self[k]).size() == 1)",
             "message": "targetNaming.map: two source indices map to the same target index"},
        ]},
    )


class VerifySettings(ApiModel):
    """What is checked once every document is copied."""

    counts: bool = Field(default=True, description="Compare per-index document counts.")
    sample_size: int = Field(
        default=0, ge=0, le=100000,
        description="Documents per index compared by content hash; 0 turns the check off.",
    )


# An allowlist entry: an exact name, or "regex:" and a Python regular expression that
# must match the whole name.
NameFilter = Annotated[str, Field(min_length=1, max_length=512)]


def _allowlist(what: str) -> Any:
    return Field(
        default=None, max_length=256,
        description=f"{what} to migrate: exact names, or `regex:` followed by a regular "
        "expression that must match the whole name. Unset: every one except system and "
        "dot-prefixed ones (those are selected only by their exact name). Empty: none.",
    )


class MetadataAllowlist(ApiModel):
    """Which templates and aliases travel; indices are chosen by spec.indices."""

    legacy_templates: list[NameFilter] | None = _allowlist("Legacy index templates (_template)")
    component_templates: list[NameFilter] | None = _allowlist(
        "Component templates (_component_template)")
    index_templates: list[NameFilter] | None = _allowlist(
        "Composable index templates (_index_template)")
    aliases: list[NameFilter] | None = _allowlist("Aliases of the selected indices")


class MetadataSettings(ApiModel):
    """Migration of templates, index settings, mappings and aliases."""

    mode: Literal["Create", "Evaluate", "Skip"] = Field(
        default="Create",
        description="Create: create what is missing, never overwrite. Evaluate: write "
        "nothing, report what Create would do, and stop in phase Evaluated (changing the "
        "mode to Create continues). Skip: create only the indices the copy needs.",
    )
    target_replicas: int | None = Field(
        default=None, ge=0, le=32,
        description="number_of_replicas of created target indices; unset keeps the source's.",
    )
    allowlist: MetadataAllowlist = nested(MetadataAllowlist, "Templates and aliases to migrate.")
    multi_type_mappings: Literal["Refuse", "Merge"] = Field(
        default="Refuse",
        description="An index with several mapping types (created by Elasticsearch 5 or "
        "earlier) has no typeless equivalent. Refuse: report it Incompatible and stop before "
        "writing. Merge: merge the types' properties into one typeless mapping (a field "
        "defined differently by two types is still Incompatible).",
    )


class RestoreSettings(ApiModel):
    """How method restore restores the Snapshot into the target."""

    include_global_state: bool = Field(
        default=False,
        description="Restore the snapshot's cluster state too (persistent settings, "
        "templates). Off by default: it overwrites the target's templates and settings of "
        "the same names, and an older engine's settings may not apply to the target.",
    )
    include_aliases: bool = Field(
        default=True, description="Restore the aliases of the restored indices."
    )


class BackfillSpec(ApiModel):
    """What to copy, from where, to where, and how fast."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "!has(self.sourceRef) || self.sourceRef.name != self.targetRef.name",
                 "message": "sourceRef and targetRef must name different Clusters"},
                {"rule": "has(self.sourceRef) || (self.method == 'copy' && "
                         "has(self.source.snapshotRef))",
                 "message": "sourceRef is required, unless method copy reads from "
                            "source.snapshotRef"},
                {"rule": "has(self.sourceRef) == has(oldSelf.sourceRef)",
                 "message": "sourceRef is immutable"},
                {"rule": "self.method != 'restore' || has(self.source.snapshotRef)",
                 "message": "method restore needs source.snapshotRef"},
            ]
        }
    }

    source_ref: LocalObjectReference | None = Field(
        default=None,
        description="The source Cluster. Required, except with method copy from "
        "source.snapshotRef (the documents and metadata then come from the snapshot's "
        "files). Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "sourceRef is immutable"}]},
    )
    target_ref: LocalObjectReference = Field(
        description="The target Cluster; must not be readOnly. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "targetRef is immutable"}]},
    )
    method: Literal["copy", "restore"] = Field(
        default="copy",
        description="copy: read documents from the source (or, with source.snapshotRef, "
        "from the snapshot's files) and bulk-write them. restore: restore a Snapshot of "
        "the source into the target. Fixed once the Backfill has started.",
    )
    source: BackfillSource = nested(BackfillSource, "Alternative document sources.")
    indices: list[IndexPattern] = Field(
        default_factory=list, max_length=256,
        description="Index patterns; a pattern starting with - excludes. Empty means every "
        "index but system and dot-prefixed ones. Fixed once the Backfill has started "
        "(phase Planning or later; changeable while Pending or Evaluated).",
    )
    closed_indices: Literal["Fail", "Skip"] = Field(
        default="Fail",
        description="A closed source index that indices selects cannot be read (method "
        "copy from a live source). Fail: the Backfill fails (reason IndexClosed, naming "
        "the indices) before anything is written. Skip: it is left out and listed in "
        "status.metadata as a Skipped Index with reason IndexClosed. Evaluate mode lists "
        "it either way. To copy it, open it on the source first. Fixed once the Backfill "
        "has started.",
    )
    target_naming: TargetNaming = nested(
        TargetNaming, "How target index names are derived. Fixed once the Backfill has "
        "started.")
    workers: int = Field(
        default=2, ge=0, le=64,
        description="Parallel workers. 0 stops all workers (like paused). Also set by "
        "kubectl scale (--replicas).",
    )
    executor: Literal["inProcess", "pods"] = Field(
        default="inProcess",
        description="inProcess: workers run inside the operator. pods: a Deployment of "
        "`ferry worker` with one replica per worker.",
    )
    batch: BatchSettings = nested(BatchSettings, "Bulk request sizing and concurrency.")
    throttle: Throttle = nested(Throttle, "Rate limits.")
    paused: bool = Field(
        default=False,
        description="Stop claiming work; in-flight batches finish. Unpause to resume.",
    )
    on_conflict: Literal["overwrite", "skip"] | None = Field(
        default=None,
        description="What to do with a target index that already holds documents: overwrite "
        "documents with the same id, or skip existing ids. Unset: refuse such an index "
        "(reason TargetIndexNotEmpty).",
    )
    verify: VerifySettings = nested(VerifySettings, "End-of-run verification.")
    target_tuning: TargetTuning = nested(
        TargetTuning, "Target index settings tuned for the load (method copy).")
    max_failed_documents: int = Field(
        default=0, ge=0,
        description="Documents that may be rejected by the target before the Backfill fails; "
        "up to this many end it CompletedWithErrors.",
    )
    metadata: MetadataSettings = nested(
        MetadataSettings, "Metadata migration. Fixed once the Backfill has started (mode "
        "Evaluate ends in Evaluated, where it may change).")
    restore: RestoreSettings = nested(
        RestoreSettings, "Options of method restore. Fixed once the Backfill has started.")


# Phases before anything is planned for good: Pending (nothing planned yet) and
# Evaluated (a spec change plans again). From Planning on, the plan is recorded in the
# coordination index and the copy follows it, so a change of what shapes the plan would
# be silently ignored: the API server refuses it instead.
REPLANNED_PHASES = ("Pending", "Evaluated")
PLAN_FIELDS = ("indices", "closedIndices", "targetNaming", "metadata", "method", "source",
               "restore")


BackfillPhase = Literal["Pending", "Planning", "MigratingMetadata", "Running", "Paused",
                        "Verifying", "Evaluated", "Completed", "CompletedWithErrors", "Failed"]


class BackfillProgress(ApiModel):
    """Document counts and rates over the whole Backfill."""

    docs_total: int | None = Field(default=None, description="Documents to copy.")
    docs_migrated: int | None = Field(default=None, description="Documents written.")
    docs_failed: int | None = Field(default=None, description="Documents the target rejected.")
    bytes_migrated: int | None = Field(default=None, description="Bytes of source written.")
    percent: float | None = Field(default=None, ge=0, le=100, description="Percent done.")
    docs_per_second: float | None = Field(default=None, description="Moving average rate.")
    eta_seconds: int | None = Field(default=None, description="Estimated seconds remaining.")
    # Printer columns show a status field as it is: these are the figures above as text.
    completion: str | None = Field(
        default=None, max_length=16, description="percent as text with its unit, e.g. 42.5%.")
    rate: str | None = Field(
        default=None, max_length=16, description="docsPerSecond as text, e.g. 1.2k/s.")
    eta: str | None = Field(
        default=None, max_length=16, description="etaSeconds as a duration, e.g. 1h02m.")


class WorkItemCounts(ApiModel):
    """Work items (slices of indices) by state."""

    total: int = Field(default=0, description="All work items.")
    completed: int = Field(default=0, description="Finished items.")
    in_progress: int = Field(default=0, description="Items held under a lease.")
    waiting: int = Field(default=0, description="Items not yet claimed.")


class BackfillIndexStatus(ApiModel):
    """Progress of one index."""

    name: str = Field(description="Source index.")
    target: str | None = Field(default=None, description="Target index.")
    docs_total: int | None = Field(default=None, description="Documents in the source.")
    docs_migrated: int | None = Field(default=None, description="Documents written.")
    target_count: int | None = Field(default=None, description="Documents counted on target.")
    verified: bool | None = Field(default=None, description="Counts matched at verification.")


MetadataKind = Literal["LegacyTemplate", "ComponentTemplate", "IndexTemplate", "Index",
                       "Alias"]
MetadataAction = Literal["Created", "WouldCreate", "AlreadyExists", "Skipped",
                         "Incompatible", "TargetRejected"]


class MetadataItem(ApiModel):
    """What metadata migration did (or, in Evaluate mode, would do) with one item."""

    kind: MetadataKind = Field(description="Kind of item.")
    name: str = Field(description="Name on the source (an alias: the alias name).")
    target: str | None = Field(
        default=None, description="Index on the target: the created index, or the index an "
        "alias is added to.")
    action: MetadataAction = Field(
        description="Created; WouldCreate (Evaluate mode); AlreadyExists (left as it is); "
        "Skipped (by an allowlist, or a system item excluded by default); Incompatible "
        "(cannot be migrated as it is; see reason); TargetRejected (the target refused it).")
    reason: str | None = Field(default=None, description="Why, in words.")
    removed_settings: list[str] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST,
        description="Settings the target rejected, removed before it accepted the item.")


class MetadataCounts(ApiModel):
    """Items by action, over all items (the item list itself is bounded)."""

    created: int = Field(default=0, description="Items created.")
    would_create: int = Field(default=0, description="Items Evaluate mode would create.")
    already_exists: int = Field(default=0, description="Items that exist on the target.")
    skipped: int = Field(default=0, description="Items not selected.")
    incompatible: int = Field(default=0, description="Items that cannot be migrated as is.")
    target_rejected: int = Field(default=0, description="Items the target refused.")


class MetadataReport(ApiModel):
    """The metadata migration's report."""

    mode: Literal["Create", "Evaluate", "Skip"] | None = Field(
        default=None, description="The mode the report was made in.")
    time: datetime | None = Field(default=None, description="When it was made.")
    counts: MetadataCounts | None = Field(default=None, description="Items by action.")
    items_total: int | None = Field(default=None, description="Items in all.")
    items: list[MetadataItem] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST * 5,
        description="Items (bounded; problems and changes first, then the rest).")


class RestoreStatus(ApiModel):
    """Method restore: what is restored from where."""

    snapshot: str | None = Field(default=None, description="Snapshot name in the repository.")
    repository: str | None = Field(default=None, description="Repository on the target.")
    engine_version: str | None = Field(default=None, description="Engine that wrote it.")
    shards_total: int | None = Field(default=None, description="Shards being restored.")
    shards_done: int | None = Field(default=None, description="Shards fully recovered.")
    bytes_total: int | None = Field(default=None, description="Bytes to recover.")
    bytes_done: int | None = Field(default=None, description="Bytes recovered.")


class BackfillStatus(TimedStatus):
    """What the operator last observed about the Backfill."""

    phase: BackfillPhase | None = Field(default=None, description="Summary of the state.")
    workers: int | None = Field(
        default=None, description="Workers currently active (the scale subresource's replicas)."
    )
    desired_workers: int | None = Field(default=None, description="Workers asked for.")
    progress: BackfillProgress | None = Field(default=None, description="Progress figures.")
    work_items: WorkItemCounts | None = Field(default=None, description="Work items by state.")
    indices: list[BackfillIndexStatus] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST * 5,
        description="Per-index progress (bounded).",
    )
    failures: list[Failure] = Field(
        default_factory=list, max_length=MAX_STATUS_LIST,
        description="Latest document failures (bounded, newest first): index, id, reason.",
    )
    coordination_index: str | None = Field(
        default=None, description="Index on the target that holds the work items."
    )
    metadata: MetadataReport | None = Field(
        default=None, description="Report of the metadata migration.")
    restore: RestoreStatus | None = Field(default=None, description="Method restore's state.")
    tuning: TargetTuningStatus | None = Field(
        default=None, description="Target index settings tuned for the load (method copy).")
    selector: str | None = Field(
        default=None, max_length=1024,
        description="Label selector of the worker pods (method copy), e.g. "
        "app.kubernetes.io/name=ferry-worker,ferry.dev/backfill=<name>: the scale "
        "subresource's selector, so a HorizontalPodAutoscaler or KEDA can target the "
        "Backfill.")


Backfill = KindInfo(
    kind="Backfill",
    plural="backfills",
    short_names=("bf", "fbf"),
    description="A resumable, verified copy of documents and the index metadata they need "
    "from a source Cluster into a target Cluster.",
    spec=BackfillSpec,
    status=BackfillStatus,
    printer_columns=(
        PrinterColumn("Source", ".spec.sourceRef.name", description="The source Cluster."),
        PrinterColumn("Target", ".spec.targetRef.name", description="The target Cluster."),
        PrinterColumn("Phase", ".status.phase", description="Summary of the state."),
        condition_column("Ready", "True once every document is copied: Completed or "
                         "CompletedWithErrors."),
        PrinterColumn("Progress", ".status.progress.completion",
                      description="Documents written, in percent of those to copy."),
        PrinterColumn("Docs", ".status.progress.docsMigrated", "integer",
                      description="Documents written."),
        PrinterColumn("Rate", ".status.progress.rate",
                      description="Documents per second, over the last minute."),
        PrinterColumn("ETA", ".status.progress.eta",
                      description="Estimated time remaining at the current rate."),
        condition_column("Verified", "True when the document counts of source and target "
                         "matched at the end.", priority=1),
        PrinterColumn("Workers", ".status.workers", "integer", priority=1,
                      description="Workers currently active."),
        AGE_COLUMN,
    ),
    scale=ScaleSubresource(".spec.workers", ".status.workers", ".status.selector"),
    object_validations=tuple(fixed_once_started(f, REPLANNED_PHASES, "the Backfill",
                                                "Planning") for f in PLAN_FIELDS),
)
