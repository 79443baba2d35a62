"""Method restore, phase by phase: check the versions and the target, migrate templates,
register the repository read-only and start the restore, follow recovery, verify
against the counts the Snapshot recorded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferry.api.backfill import BackfillSpec
from ferry.api.common import MAX_STATUS_LIST
from ferry.api.phases import BackfillPhases as P
from ferry.api.phases import Conditions
from ferry.conditions import now, set_condition
from ferry.errors import FerryError
from ferry.services.backfill.copy import CopyService
from ferry.services.backfill.restore import (
    RestoreIndex,
    RestoreProgress,
    RestoreService,
    snapshot_source,
)
from ferry.services.backfill.status import (
    conditions_for,
    planned_progress,
    planned_rows,
    restore_progress,
    shown,
    verdict,
    verification,
)
from ferry.services.outcome import Event, Outcome

if TYPE_CHECKING:
    from ferry.services.backfill.reconciler import BackfillReconciler

RESTORE_POLL_SECONDS = 2.0  # _recovery is one cheap request; follow a restore closely
SOON = 0.5


def restore_step(r: BackfillReconciler, svc: CopyService, spec: BackfillSpec, phase: str,
                 status: dict[str, Any], generation: int | None) -> Outcome:
    snap = snapshot_source(r.references, spec, svc.ep.source)
    rsvc = RestoreService(svc.ep, spec, snap)
    plan = rsvc.plan()
    if phase in (P.PENDING, P.PLANNING):
        rsvc.check_versions()
        rsvc.restored_by_us(plan)  # refuses target indices that exist already
        r.check_overlap(svc, {i.target for i in plan})
        message = (f"{len(plan)} indices of snapshot {snap.snapshot} "
                   f"({snap.engine} {snap.version}); migrating metadata (mode "
                   f"{spec.metadata.mode})")
        return r.metadata_phase(status, generation, message, {
            "indices": rows(plan, None),
            "restore": {"snapshot": snap.snapshot, "repository": snap.repository.name,
                        "engineVersion": snap.version},
            "progress": planned_progress(docs_total(plan)),
            "workers": 0, "desiredWorkers": 0})
    if phase == P.MIGRATING_METADATA:
        return _start(r, svc, spec, rsvc, plan, status, generation)
    if phase in (P.RUNNING, P.PAUSED):
        return _follow(r, rsvc, plan, status, generation)
    if phase == P.VERIFYING:
        return _verify(rsvc, plan, status, generation)
    return Outcome()


def docs_total(plan: list[RestoreIndex]) -> int:
    return sum(i.docs or 0 for i in plan)


def rows(plan: list[RestoreIndex], progress: RestoreProgress | None) -> list[dict[str, Any]]:
    out = planned_rows([(i.source, i.target, i.docs) for i in plan])
    if progress is not None:
        for row, index in zip(out, plan, strict=False):
            row["docsMigrated"] = progress.docs_done([index])
    return out


def _start(r: BackfillReconciler, svc: CopyService, spec: BackfillSpec,
           rsvc: RestoreService, plan: list[RestoreIndex], status: dict[str, Any],
           generation: int | None) -> Outcome:
    """Templates from the live source (indices and their aliases come from the
    snapshot), then the read-only repository and the restore requests."""
    result = None
    if spec.metadata.mode != "Skip":
        result = r.metadata_service(svc, spec).run(spec.metadata.mode, [], method="restore")
    snap = rsvc.snap
    if spec.metadata.mode == "Evaluate":
        return r.evaluated(status, generation, result,
                           f"the restore would bring {len(plan)} indices "
                           f"({docs_total(plan)} documents) from snapshot {snap.snapshot}")
    events: list[Event] = []
    if result is not None:
        events.append(r.metadata_event(result))
    if rsvc.register_repository():
        events.append(Event.normal("RepositoryRegistered",
                                   f"registered repository {snap.repository.name} on the "
                                   "target read-only"))
    rsvc.start(plan)
    message = (f"restoring {len(plan)} indices from snapshot {snap.snapshot} "
               f"(repository {snap.repository.name})")
    events.append(Event.normal("Planned", message))
    conds = conditions_for(status.get("conditions") or [], P.RUNNING, "Restoring",
                                 message, generation)
    new: dict[str, Any] = {"phase": P.RUNNING, "message": message, "conditions": conds,
                           "observedGeneration": generation,
                           "startTime": status.get("startTime") or now()}
    if result is not None:
        new["metadata"] = result.report()
    return Outcome(new, events, SOON)


def _follow(r: BackfillReconciler, rsvc: RestoreService, plan: list[RestoreIndex],
            status: dict[str, Any], generation: int | None) -> Outcome:
    progress = rsvc.progress(plan)
    total = docs_total(plan)
    done = progress.docs_done(plan)
    new: dict[str, Any] = {
        "observedGeneration": generation,
        "progress": restore_progress(total, done, progress.done, r.rate.add(done),
                                           progress.bytes_done, progress.shards_done,
                                           progress.shards_total),
        "workItems": {"total": progress.shards_total, "completed": progress.shards_done,
                      "inProgress": progress.shards_total - progress.shards_done,
                      "waiting": len(progress.missing)},
        "indices": rows(plan, progress),
        "restore": {**(status.get("restore") or {}), "shardsTotal": progress.shards_total,
                    "shardsDone": progress.shards_done,
                    "bytesTotal": progress.bytes_total, "bytesDone": progress.bytes_done},
        "workers": 0, "desiredWorkers": 0,
    }
    if progress.failures:
        first = progress.failures[0]
        failed = r.fail(status, generation, FerryError(
            f"the target could not restore {len(progress.failures)} shards: "
            f"{first['index']} {first['id']}: {first['reason']}", code="RestoreFailed",
            retryable=False))
        assert failed.status is not None
        failed.status.update(new)
        failed.status["failures"] = progress.failures[:MAX_STATUS_LIST]
        return failed
    if progress.done:
        message = "every shard is restored; verifying"
        new.update({"phase": P.VERIFYING, "message": message,
                    "conditions": conditions_for(status.get("conditions") or [],
                                                       P.VERIFYING, "Verifying", message,
                                                       generation)})
        return Outcome(new, [Event.normal("Verifying", message)], SOON)
    new["message"] = (f"restoring: {progress.shards_done}/{progress.shards_total} shards, "
                      f"{progress.bytes_done}/{progress.bytes_total} bytes")
    return Outcome(new, [], RESTORE_POLL_SECONDS)


def _verify(rsvc: RestoreService, plan: list[RestoreIndex], status: dict[str, Any],
            generation: int | None) -> Outcome:
    checked_rows = rsvc.verify(plan) if rsvc.spec.verify.counts else []
    snap = rsvc.snap
    checked = [row for row in checked_rows if "verified" in row]
    unchecked = len(checked_rows) - len(checked)
    extra = f" ({unchecked} indices without a recorded count)" if unchecked else ""
    verified = verification(
        checked_rows,
        mismatch=lambda row: (f"{row['target']}: snapshot {row['docsTotal']}, target "
                              f"{row['targetCount']}"),
        matched=lambda n: (f"document counts of {n} indices match the counts Snapshot "
                           f"{snap.resource} recorded{extra}"),
        unchecked=(f"Snapshot {snap.resource} recorded no document counts (it was "
                   "adopted, not taken by Ferry)"))
    conds = set_condition(status.get("conditions") or [], Conditions.VERIFIED, *verified,
                          generation)
    docs = sum(row["targetCount"] for row in checked_rows)
    bad = sum(1 for row in checked if not row["verified"])
    phase, reason, message = verdict(
        0, bad, f"{len(plan)} indices ({docs} documents) restored from snapshot "
        f"{snap.snapshot}" + (" and verified" if checked else ""))
    conds = conditions_for(conds, phase, reason, message, generation)
    by_target = {row["target"]: row for row in checked_rows}
    indices = []
    for row in rows(plan, None):
        got = by_target.get(row["target"])
        if got is not None:
            row["docsMigrated"] = got["targetCount"]
            row["targetCount"] = got["targetCount"]
            if "verified" in got:
                row["verified"] = got["verified"]
        indices.append(row)
    progress = shown({**(status.get("progress") or {}), "docsTotal": docs_total(plan),
                      "docsMigrated": docs, "percent": 100.0, "etaSeconds": 0})
    new = {"phase": phase, "message": message, "conditions": conds,
           "observedGeneration": generation, "completionTime": now(),
           "indices": indices, "progress": progress, "workers": 0}
    event = Event.normal if phase == P.COMPLETED else Event.warning
    return Outcome(new, [event(reason, message)], 3600)
