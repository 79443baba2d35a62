"""Drives one Backfill through its phases; called periodically by its kopf daemon.

Planning → (MigratingMetadata) → Running ⇄ Paused → Verifying → Completed |
CompletedWithErrors | Failed. Every step is idempotent and reads its state back from
status and the coordination index, so a restarted operator resumes where it was.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ferry.api import Backfill, Cluster
from ferry.api.backfill import BackfillSpec
from ferry.api.cluster import ClusterSpec
from ferry.clients import kube
from ferry.clients.kube import ObjectReader
from ferry.clients.search import connection_for
from ferry.conditions import now, set_condition
from ferry.errors import FerryError, InvalidSpec
from ferry.services import backfill_status as rules
from ferry.services.backfill import (
    BackfillService,
    Endpoints,
    Plan,
    check_pair,
    missing_reference,
    plan_from_record,
)
from ferry.services.workers import WorkerPool

log = logging.getLogger("ferry.backfill")
STEP_SECONDS = 5.0


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
                }]}},
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
            self.stop_workers()
            out.delay = 3600
            return out
        try:
            spec = BackfillSpec.model_validate(body["spec"])
        except ValidationError as exc:
            return self._fail(status, generation, InvalidSpec(
                f"spec does not parse: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"))
        try:
            svc = self._svc(spec, generation)
            if phase in ("Pending", "Planning", "MigratingMetadata"):
                return self._plan(svc, status, generation)
            if phase in ("Running", "Paused"):
                return self._run(svc, spec, status, generation)
            if phase == "Verifying":
                return self._verify(svc, status, generation)
        except FerryError as exc:
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

    def _plan(self, svc: BackfillService, status: dict[str, Any], generation: int | None
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


def svc_target(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("targetRef", {}).get("name", ""))

