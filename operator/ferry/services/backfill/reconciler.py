"""Drives one Backfill through its phases; called periodically by its kopf daemon.

Planning → MigratingMetadata → Running ⇄ Paused → Verifying → Completed |
CompletedWithErrors | Failed; with metadata mode Evaluate, Planning → MigratingMetadata
→ Evaluated, which a spec change continues (mode Create goes on to copy). Method restore
runs the same phases: Running is the restore's recovery. Every step is idempotent and
reads its state back from status, the coordination index and the target, so a
restarted operator resumes where it was.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearchException
from pydantic import ValidationError

from ferry.api import Backfill, Cluster
from ferry.api.backfill import BackfillSpec
from ferry.api.cluster import ClusterSpec
from ferry.clients import kube
from ferry.clients.kube import ObjectReader
from ferry.clients.search import classify, connection_for
from ferry.conditions import now, set_condition
from ferry.errors import FerryError, InvalidSpec
from ferry.services.backfill import status as rules
from ferry.services.backfill.copy import (
    BackfillService,
    Endpoints,
    IndexPlan,
    Plan,
    check_pair,
    missing_reference,
    plan_from_record,
)
from ferry.services.backfill.pool import WorkerPool
from ferry.services.backfill.restore import RestoreIndex, RestoreService, snapshot_source
from ferry.services.metadata.service import MetadataResult, MetadataService

log = logging.getLogger("ferry.backfill")
STEP_SECONDS = 5.0
RESTORE_POLL_SECONDS = 2.0  # _recovery is one cheap request; follow a restore closely


def lease_seconds() -> float:
    return float(os.environ.get("FERRY_LEASE_SECONDS", "60"))


@dataclass
class Outcome:
    """What one step decided: the status patch, events, and when to step again."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    delay: float = STEP_SECONDS


def endpoints_for(namespace: str, spec: BackfillSpec, reader: ObjectReader) -> Endpoints:
    specs: list[ClusterSpec] = []
    for ref in (spec.source_ref, spec.target_ref):
        obj = kube.get_object(Cluster, namespace, ref.name)
        if obj is None:
            raise missing_reference("Cluster", ref.name)
        specs.append(ClusterSpec.model_validate(obj["spec"]))
    check_pair(specs[0], specs[1], spec)
    source, target = (connection_for(s, namespace, reader) for s in specs)
    return Endpoints(specs[0], specs[1], source.client(), target.client(),
                     source.url, target.url)


def worker_deployment(namespace: str, name: str, uid: str, spec: BackfillSpec
                      ) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "ferry-worker", "ferry.dev/backfill": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"ferry-worker-{name}"[:63], "namespace": namespace,
                     "labels": labels,
                     "ownerReferences": [{"apiVersion": "ferry.dev/v1alpha1",
                                          "kind": "Backfill", "name": name, "uid": uid,
                                          "controller": True}]},
        "spec": {
            "replicas": 0 if spec.paused else spec.workers,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": os.environ.get("FERRY_WORKER_SERVICE_ACCOUNT",
                                                     "ferry"),
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {
                    "type": "RuntimeDefault"}},
                "containers": [{
                    "name": "worker",
                    "image": os.environ.get("FERRY_WORKER_IMAGE", "ghcr.io/ferry/ferry:0.1.0"),
                    "args": ["worker", "--backfill", f"{namespace}/{name}"],
                    "securityContext": {"allowPrivilegeEscalation": False,
                                        "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}},
                    # The root filesystem is read-only; Python and TLS need a /tmp.
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {}}]}},
        },
    }


class BackfillController:
    def __init__(self, namespace: str, name: str, uid: str, reader: ObjectReader) -> None:
        self.namespace, self.name, self.uid = namespace, name, uid
        self.reader = reader
        self.pool: WorkerPool | None = None
        self.rate = rules.RateTracker()
        self._service: BackfillService | None = None
        self._service_generation: int | None = None
        # Set by the daemon: wakes it for the next step (called from worker threads).
        self.wake: Callable[[], None] | None = None

    def stop_workers(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def _svc(self, spec: BackfillSpec, generation: int | None) -> BackfillService:
        if self._service is None or self._service_generation != generation:
            ep = endpoints_for(self.namespace, spec, self.reader)
            self._service = BackfillService(ep, spec, self.uid, lease_seconds())
            self._service_generation = generation
        return self._service

    def step(self, body: dict[str, Any]) -> Outcome:
        status = dict(body.get("status") or {})
        generation = body.get("metadata", {}).get("generation")
        phase = status.get("phase") or "Pending"
        out = Outcome()
        if phase in rules.TERMINAL:
            if not rules.resumes(phase, status, generation):
                self.stop_workers()
                out.delay = 3600
                return out
            phase = "Planning"  # Evaluated, and the spec changed: evaluate again or go on
        try:
            spec = BackfillSpec.model_validate(body["spec"])
        except ValidationError as exc:
            return self._fail(status, generation, InvalidSpec(
                f"spec does not parse: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"))
        try:
            svc = self._svc(spec, generation)
            if spec.method == "restore":
                return self._restore(svc, spec, phase, status, generation)
            if phase in ("Pending", "Planning"):
                return self._plan(svc, spec, status, generation)
            if phase == "MigratingMetadata":
                return self._metadata(svc, spec, status, generation)
            if phase in ("Running", "Paused"):
                return self._run(svc, spec, status, generation)
            if phase == "Verifying":
                return self._verify(svc, status, generation)
        except (FerryError, OpenSearchException) as raw:
            # Client errors outside the service's guarded calls (e.g. the work item
            # store) are classified like any other: an unreachable target is retried.
            exc = raw if isinstance(raw, FerryError) else classify(raw, "a Backfill cluster")
            if not exc.retryable:
                self.stop_workers()
                return self._fail(status, generation, exc)
            self._service = None  # rebuild clients next time (e.g. a rotated Secret)
            out.status = {"message": exc.message, "observedGeneration": generation,
                          "conditions": set_condition(status.get("conditions") or [],
                                                      "Progressing", True, exc.code,
                                                      exc.message, generation)}
            out.delay = 15.0
            return out
        return out

    # -- phases -------------------------------------------------------------------------

    def _fail(self, status: dict[str, Any], generation: int | None, exc: FerryError
              ) -> Outcome:
        conds = rules.conditions_for(status.get("conditions") or [], "Failed", exc.code,
                                     exc.message, generation)
        return Outcome({"phase": "Failed", "message": exc.message, "conditions": conds,
                        "observedGeneration": generation, "completionTime": now()},
                       [("Warning", exc.code, exc.message)], 3600)

    def _plan(self, svc: BackfillService, spec: BackfillSpec, status: dict[str, Any],
              generation: int | None) -> Outcome:
        """Resolve the indices and check them before anything is written."""
        plan = svc.plan()
        self._check_overlap(plan)
        message = (f"{len(plan.indices)} indices, {plan.docs_total} documents; migrating "
                   f"metadata (mode {spec.metadata.mode})")
        return self._metadata_phase(status, generation, message, {
            "indices": [{"name": i.source, "target": i.target, "docsTotal": i.docs}
                        for i in plan.indices][:100],
            "progress": {"docsTotal": plan.docs_total, "docsMigrated": 0, "percent": 0.0}})

    def _metadata_phase(self, status: dict[str, Any], generation: int | None, message: str,
                        extra: dict[str, Any]) -> Outcome:
        conds = rules.conditions_for(status.get("conditions") or [], "MigratingMetadata",
                                     "MigratingMetadata", message, generation)
        # completionTime None: a re-run after Evaluated is not complete any more.
        return Outcome({"phase": "MigratingMetadata", "message": message, "conditions": conds,
                        "observedGeneration": generation, "completionTime": None, **extra},
                       [], 0.0)

    def _metadata_service(self, svc: BackfillService, spec: BackfillSpec) -> MetadataService:
        ep = svc.ep
        return MetadataService(ep.source, ep.target, ep.source_url, ep.target_url, spec,
                               self.uid)

    def _metadata(self, svc: BackfillService, spec: BackfillSpec, status: dict[str, Any],
                  generation: int | None) -> Outcome:
        """Templates, indices and aliases; then (unless evaluating) the copy's plan."""
        plan = svc.plan()
        result = self._metadata_service(svc, spec).run(
            spec.metadata.mode, [(i.source, i.target) for i in plan.indices])
        report = result.report()
        if spec.metadata.mode == "Evaluate":
            return self._evaluated(status, generation, result,
                                   f"the copy would move {plan.docs_total} documents of "
                                   f"{len(plan.indices)} indices")
        blocked = self._blocked(status, generation, result)
        if blocked is not None:
            return blocked
        out = self._prepare(svc, status, generation)
        out.status["metadata"] = report
        out.events.insert(0, self._metadata_event(result))
        return out

    @staticmethod
    def _metadata_event(result: MetadataResult) -> tuple[str, str, str]:
        troubled = result.counts()["targetRejected"] + result.counts()["incompatible"]
        return ("Warning" if troubled else "Normal", "MetadataMigrated",
                f"metadata ({result.mode}): {result.summary()}")

    def _blocked(self, status: dict[str, Any], generation: int | None,
                 result: MetadataResult) -> Outcome | None:
        """Failed, when an index the copy needs could not be created as it must be."""
        blocking = result.blocking()
        if not blocking:
            return None
        code = "IncompatibleIndices" if any(i.action == "Incompatible" for i in blocking) \
            else "TargetRejected"
        detail = "; ".join(f"{i.name}: {i.reason}" for i in blocking[:5])
        failed = self._fail(status, generation, FerryError(
            f"{len(blocking)} indices cannot be migrated (see status.metadata): {detail}",
            code=code, retryable=False))
        failed.status["metadata"] = result.report()
        return failed

    def _evaluated(self, status: dict[str, Any], generation: int | None,
                   result: MetadataResult | None, plan_text: str) -> Outcome:
        summary = result.summary() if result is not None else "metadata not evaluated (Skip)"
        message = (f"evaluated, nothing was written: {summary}; {plan_text}. Set "
                   "spec.metadata.mode to Create to migrate")
        conds = rules.conditions_for(status.get("conditions") or [], "Evaluated", "Evaluated",
                                     message, generation)
        new: dict[str, Any] = {"phase": "Evaluated", "message": message, "conditions": conds,
                               "observedGeneration": generation, "completionTime": now()}
        if result is not None:
            new["metadata"] = result.report()
        return Outcome(new, [("Normal", "Evaluated", message)], 3600)

    def _prepare(self, svc: BackfillService, status: dict[str, Any], generation: int | None
                 ) -> Outcome:
        plan = svc.prepare(check=self._check_overlap)
        message = (f"copying {plan.docs_total} documents of {len(plan.indices)} indices "
                   f"in {svc.store.summary(with_failures=False).total} work items")
        conds = rules.conditions_for(status.get("conditions") or [], "Running", "Copying",
                                     message, generation)
        return Outcome({
            "phase": "Running", "message": message, "conditions": conds,
            "observedGeneration": generation, "startTime": status.get("startTime") or now(),
            "coordinationIndex": svc.store.index,
            "progress": {"docsTotal": plan.docs_total, "docsMigrated": 0, "percent": 0.0},
            "indices": [{"name": i.source, "target": i.target, "docsTotal": i.docs}
                        for i in plan.indices][:100],
        }, [("Normal", "Planned", message)], 0.5)

    def _check_overlap(self, plan: Plan) -> None:
        """Refuse to write into target indices an earlier, unfinished Backfill of the
        same target Cluster writes to."""
        mine = {i.target for i in plan.indices}
        me = kube.get_object(Backfill, self.namespace, self.name) or {}
        my_key = (me.get("metadata", {}).get("creationTimestamp", ""), self.name)
        for other in kube.list_objects(Backfill, self.namespace):
            meta, status = other["metadata"], other.get("status") or {}
            if meta["uid"] == self.uid or status.get("phase") in rules.TERMINAL:
                continue
            if other["spec"]["targetRef"]["name"] != svc_target(me):
                continue
            if (meta.get("creationTimestamp", ""), meta["name"]) > my_key:
                continue
            theirs = {row.get("target") for row in status.get("indices") or []}
            overlap = sorted(mine & theirs)
            if overlap:
                raise InvalidSpec(f"Backfill {meta['name']} already writes to "
                                  f"{', '.join(overlap)} on the same target; wait for it "
                                  "or choose other target names", code="TargetIndexInUse")

    def _run(self, svc: BackfillService, spec: BackfillSpec, status: dict[str, Any],
             generation: int | None) -> Outcome:
        if spec.executor == "inProcess":
            if self.pool is None:
                self.pool = WorkerPool(self.name, svc.context(), on_finished=self.wake)
            self.pool.scale(spec.workers, spec.paused)
        else:
            kube.apply_deployment(self.namespace,
                                  worker_deployment(self.namespace, self.name, self.uid, spec))
        summary = svc.store.summary()
        docs_total = (status.get("progress") or {}).get("docsTotal") or 0
        plan_indices = [{"source": r["name"], "target": r.get("target"),
                         "docs": r.get("docsTotal", 0)} for r in status.get("indices") or []]
        rate = self.rate.add(summary.docs_done)
        active = self.pool.active if self.pool is not None else summary.holders
        new: dict[str, Any] = {
            "observedGeneration": generation,
            "progress": rules.progress(docs_total, summary, rate),
            "workItems": rules.work_items(summary),
            "workers": active, "desiredWorkers": 0 if spec.paused else spec.workers,
            "indices": rules.index_rows(plan_indices, summary),
            "failures": summary.failures,
        }
        events: list[tuple[str, str, str]] = []
        if summary.docs_failed > spec.max_failed_documents:
            self.stop_workers()
            message = (f"{summary.docs_failed} documents were rejected by the target, more "
                       f"than maxFailedDocuments ({spec.max_failed_documents}); see failures")
            failed = self._fail(status, generation,
                                FerryError(message, code="TooManyFailures", retryable=False))
            failed.status.update({k: v for k, v in new.items() if k != "workers"})
            failed.status["workers"] = 0
            return failed
        if summary.finished:
            self.stop_workers()
            phase, reason, message = "Verifying", "Verifying", "all work items done; verifying"
            new["workers"] = 0
        elif spec.paused:
            phase, reason, message = "Paused", "Paused", "paused: workers finish their batch " \
                "and claim no more work"
        else:
            phase, reason = "Running", "Copying"
            message = (f"{summary.docs_done}/{docs_total} documents, "
                       f"{summary.completed}/{summary.total} work items done")
        if phase != status.get("phase"):
            events.append(("Normal", reason, message))
        new.update({"phase": phase, "message": message,
                    "conditions": rules.conditions_for(status.get("conditions") or [], phase,
                                                       reason, message, generation)})
        return Outcome(new, events, 0.5 if phase == "Verifying" else STEP_SECONDS)

    def _verify(self, svc: BackfillService, status: dict[str, Any], generation: int | None
                ) -> Outcome:
        plan_indices = [{"source": r["name"], "target": r.get("target"),
                         "docs": r.get("docsTotal", 0)} for r in status.get("indices") or []]
        plan = plan_from_record({"indices": plan_indices})
        rows = svc.verify(plan) if svc.spec.verify.counts else []
        summary = svc.store.summary()
        failed = summary.docs_failed
        bad = [r for r in rows if not r["verified"]]
        conds = status.get("conditions") or []
        if not rows:
            conds = set_condition(conds, "Verified", "Unknown", "NotChecked",
                                  "verify.counts is off", generation)
        elif bad:
            detail = "; ".join(f"{r['name']}: source {r['docsTotal']}, target "
                               f"{r['targetCount']}" + (f", content differs for ids "
                                                        f"{r['sampleMismatches'][:5]}"
                                                        if r.get("sampleMismatches") else "")
                               for r in bad[:10])
            conds = set_condition(conds, "Verified", False, "Mismatch", detail, generation)
        else:
            sampled = f" and {svc.spec.verify.sample_size} sampled documents per index" \
                if svc.spec.verify.sample_size else ""
            conds = set_condition(conds, "Verified", True, "CountsMatch",
                                  f"document counts of {len(rows)} indices match{sampled}",
                                  generation)
        if failed:
            phase, reason = "CompletedWithErrors", "DocumentsRejected"
            message = f"done; the target rejected {failed} documents (see failures)"
        elif bad:
            phase, reason = "CompletedWithErrors", "VerificationFailed"
            message = f"done, but {len(bad)} indices did not verify (see Verified)"
        else:
            phase, reason = "Completed", "Completed"
            message = f"{summary.docs_done} documents copied and verified"
        conds = rules.conditions_for(conds, phase, reason, message, generation)
        new = {"phase": phase, "message": message, "conditions": conds,
               "observedGeneration": generation, "completionTime": now(),
               "indices": rules.index_rows(plan_indices, summary, rows),
               "progress": rules.progress((status.get("progress") or {}).get("docsTotal", 0),
                                          summary, None),
               "workItems": rules.work_items(summary), "failures": summary.failures,
               "workers": 0}
        event_type = "Normal" if phase == "Completed" else "Warning"
        return Outcome(new, [(event_type, reason, message)], 3600)


    # -- method restore -------------------------------------------------------------------

    def _restore(self, svc: BackfillService, spec: BackfillSpec, phase: str,
                 status: dict[str, Any], generation: int | None) -> Outcome:
        snap = snapshot_source(self.namespace, spec, svc.ep.source, svc.ep.source_url)
        rsvc = RestoreService(svc.ep, spec, snap)
        plan = rsvc.plan()
        docs_total = sum(i.docs or 0 for i in plan)
        if phase in ("Pending", "Planning"):
            rsvc.check_versions()
            rsvc.restored_by_us(plan)  # refuses target indices that exist already
            self._check_overlap(Plan([IndexPlan(i.source, i.target, i.docs or 0, [])
                                      for i in plan]))
            message = (f"{len(plan)} indices of snapshot {snap.snapshot} "
                       f"({snap.engine} {snap.version}); migrating metadata (mode "
                       f"{spec.metadata.mode})")
            return self._metadata_phase(status, generation, message, {
                "indices": restore_rows(plan, None),
                "restore": {"snapshot": snap.snapshot, "repository": snap.repository.name,
                            "engineVersion": snap.version},
                "progress": {"docsTotal": docs_total, "docsMigrated": 0, "percent": 0.0},
                "workers": 0, "desiredWorkers": 0})
        if phase == "MigratingMetadata":
            return self._start_restore(svc, spec, rsvc, plan, status, generation)
        if phase in ("Running", "Paused"):
            return self._follow_restore(rsvc, plan, status, generation)
        if phase == "Verifying":
            return self._verify_restore(rsvc, plan, status, generation)
        return Outcome()

    def _start_restore(self, svc: BackfillService, spec: BackfillSpec, rsvc: RestoreService,
                       plan: list[RestoreIndex], status: dict[str, Any],
                       generation: int | None) -> Outcome:
        """Templates from the live source (indices and their aliases come from the
        snapshot), then the read-only repository and the restore requests."""
        result = None
        if spec.metadata.mode != "Skip":
            result = self._metadata_service(svc, spec).run(spec.metadata.mode, [],
                                                           method="restore")
        snap = rsvc.snap
        if spec.metadata.mode == "Evaluate":
            return self._evaluated(status, generation, result,
                                   f"the restore would bring {len(plan)} indices "
                                   f"({sum(i.docs or 0 for i in plan)} documents) from "
                                   f"snapshot {snap.snapshot}")
        events: list[tuple[str, str, str]] = []
        if result is not None:
            events.append(self._metadata_event(result))
        if rsvc.register_repository():
            events.append(("Normal", "RepositoryRegistered",
                           f"registered repository {snap.repository.name} on the target "
                           "read-only"))
        rsvc.start(plan)
        message = (f"restoring {len(plan)} indices from snapshot {snap.snapshot} "
                   f"(repository {snap.repository.name})")
        events.append(("Normal", "Planned", message))
        conds = rules.conditions_for(status.get("conditions") or [], "Running", "Restoring",
                                     message, generation)
        new: dict[str, Any] = {"phase": "Running", "message": message, "conditions": conds,
                               "observedGeneration": generation,
                               "startTime": status.get("startTime") or now()}
        if result is not None:
            new["metadata"] = result.report()
        return Outcome(new, events, 0.5)

    def _follow_restore(self, rsvc: RestoreService, plan: list[RestoreIndex],
                        status: dict[str, Any], generation: int | None) -> Outcome:
        progress = rsvc.progress(plan)
        docs_total = sum(i.docs or 0 for i in plan)
        docs_done = progress.docs_done(plan)
        rate = self.rate.add(docs_done)
        new: dict[str, Any] = {
            "observedGeneration": generation,
            "progress": restore_progress(docs_total, docs_done, progress.done, rate,
                                         progress.bytes_done, progress.shards_done,
                                         progress.shards_total),
            "workItems": {"total": progress.shards_total, "completed": progress.shards_done,
                          "inProgress": progress.shards_total - progress.shards_done,
                          "waiting": len(progress.missing)},
            "indices": restore_rows(plan, progress),
            "restore": {**(status.get("restore") or {}), "shardsTotal": progress.shards_total,
                        "shardsDone": progress.shards_done,
                        "bytesTotal": progress.bytes_total, "bytesDone": progress.bytes_done},
            "workers": 0, "desiredWorkers": 0,
        }
        if progress.failures:
            failed = self._fail(status, generation, FerryError(
                f"the target could not restore {len(progress.failures)} shards: "
                f"{progress.failures[0]['index']} {progress.failures[0]['id']}: "
                f"{progress.failures[0]['reason']}", code="RestoreFailed", retryable=False))
            failed.status.update(new)
            failed.status["failures"] = progress.failures[:20]
            return failed
        if progress.done:
            message = "every shard is restored; verifying"
            new.update({"phase": "Verifying", "message": message,
                        "conditions": rules.conditions_for(status.get("conditions") or [],
                                                           "Verifying", "Verifying", message,
                                                           generation)})
            return Outcome(new, [("Normal", "Verifying", message)], 0.5)
        new["message"] = (f"restoring: {progress.shards_done}/{progress.shards_total} shards, "
                          f"{progress.bytes_done}/{progress.bytes_total} bytes")
        return Outcome(new, [], RESTORE_POLL_SECONDS)

    def _verify_restore(self, rsvc: RestoreService, plan: list[RestoreIndex],
                        status: dict[str, Any], generation: int | None) -> Outcome:
        rows = rsvc.verify(plan) if rsvc.spec.verify.counts else []
        checked = [r for r in rows if "verified" in r]
        bad = [r for r in checked if not r["verified"]]
        conds = status.get("conditions") or []
        snap = rsvc.snap
        if not rows:
            conds = set_condition(conds, "Verified", "Unknown", "NotChecked",
                                  "verify.counts is off", generation)
        elif not checked:
            conds = set_condition(conds, "Verified", "Unknown", "NoSnapshotCounts",
                                  f"Snapshot {snap.resource} recorded no document counts "
                                  "(it was adopted, not taken by Ferry)", generation)
        elif bad:
            detail = "; ".join(f"{r['target']}: snapshot {r['docsTotal']}, target "
                               f"{r['targetCount']}" for r in bad[:10])
            conds = set_condition(conds, "Verified", False, "Mismatch", detail, generation)
        else:
            unchecked = len(rows) - len(checked)
            extra = f" ({unchecked} indices without a recorded count)" if unchecked else ""
            conds = set_condition(conds, "Verified", True, "CountsMatch",
                                  f"document counts of {len(checked)} indices match the "
                                  f"counts Snapshot {snap.resource} recorded{extra}",
                                  generation)
        docs = sum(r["targetCount"] for r in rows)
        if bad:
            phase, reason = "CompletedWithErrors", "VerificationFailed"
            message = f"restored, but {len(bad)} indices did not verify (see Verified)"
        else:
            phase, reason = "Completed", "Completed"
            message = f"{len(plan)} indices ({docs} documents) restored from snapshot " \
                f"{snap.snapshot}" + (" and verified" if checked else "")
        conds = rules.conditions_for(conds, phase, reason, message, generation)
        docs_total = sum(i.docs or 0 for i in plan)
        by_target = {r["target"]: r for r in rows}
        indices = []
        for row in restore_rows(plan, None):
            got = by_target.get(row["target"])
            if got is not None:
                row["docsMigrated"] = got["targetCount"]
                row["targetCount"] = got["targetCount"]
                if "verified" in got:
                    row["verified"] = got["verified"]
            indices.append(row)
        progress = {**(status.get("progress") or {}), "docsTotal": docs_total,
                    "docsMigrated": docs, "percent": 100.0, "etaSeconds": 0}
        new = {"phase": phase, "message": message, "conditions": conds,
               "observedGeneration": generation, "completionTime": now(),
               "indices": indices, "progress": progress, "workers": 0}
        event_type = "Normal" if phase == "Completed" else "Warning"
        return Outcome(new, [(event_type, reason, message)], 3600)


def restore_rows(plan: list[RestoreIndex], progress: Any) -> list[dict[str, Any]]:
    rows = []
    for index in plan[:100]:
        row: dict[str, Any] = {"name": index.source, "target": index.target}
        if index.docs is not None:
            row["docsTotal"] = index.docs
        if progress is not None:
            row["docsMigrated"] = progress.docs_done([index])
        rows.append(row)
    return rows


def restore_progress(docs_total: int, docs_done: int, done: bool, rate: float | None,
                     bytes_done: int, shards_done: int, shards_total: int
                     ) -> dict[str, Any]:
    """The copy method's progress block, for a restore: documents are the recorded
    counts of finished indices plus a byte-share estimate of those in recovery."""
    if docs_total:
        percent = 100.0 * docs_done / docs_total
    else:
        percent = 100.0 * shards_done / shards_total if shards_total else 0.0
    percent = 100.0 if done else min(percent, 99.9)  # never 100 before the engine is done
    out: dict[str, Any] = {"docsTotal": docs_total, "docsMigrated": docs_done,
                           "docsFailed": 0, "bytesMigrated": bytes_done,
                           "percent": round(percent, 1)}
    if rate is not None:
        out["docsPerSecond"] = round(rate, 1)
        if rate > 0:
            out["etaSeconds"] = int(max(0, docs_total - docs_done) / rate)
    return out


def svc_target(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("targetRef", {}).get("name", ""))

