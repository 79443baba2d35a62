"""What happens to a Backfill: one pass of its daemon decides the next step.

Planning → MigratingMetadata → Running ⇄ Paused → Verifying → Completed |
CompletedWithErrors | Failed; with metadata mode Evaluate, Planning → MigratingMetadata
→ Evaluated, which a spec change continues (mode Create goes on to copy). Method copy's
steps are in ``copy_phases``, method restore's (Running is the restore's recovery) in
``restore_phases``; what both share — failing, the metadata phase, Evaluated, the
overlap check, the workers, restoring tuned target settings on failure and once
settled — is here. Every step is idempotent and reads its state back
from status, the coordination index and the target, so a restarted operator resumes
where it was.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ferry.api import Backfill
from ferry.api.backfill import BackfillSpec
from ferry.api.common import parse_spec
from ferry.api.phases import BackfillPhases as P
from ferry.api.phases import Conditions
from ferry.clients import kube
from ferry.clients.kube import ObjectReader
from ferry.conditions import get_condition, now, set_condition
from ferry.errors import AuthenticationFailed, ClusterUnreachable, FerryError, TargetRejected
from ferry.services import backoff
from ferry.services.backfill import tuning
from ferry.services.backfill.copy import CopyService
from ferry.services.backfill.copy_phases import copy_step
from ferry.services.backfill.deployment import deployment_name
from ferry.services.backfill.pool import WorkerPool
from ferry.services.backfill.restore_phases import restore_step
from ferry.services.backfill.status import (
    RateTracker,
    conditions_for,
    resumes,
)
from ferry.services.backfill.workitems import WorkItemStore, coordination_index
from ferry.services.metadata.report import MetadataResult
from ferry.services.metadata.service import MetadataService
from ferry.services.outcome import Event, Outcome
from ferry.services.references import References
from ferry.settings import OperatorOptions

log = logging.getLogger("ferry.backfill")
STEP_SECONDS = 5.0
# Retryable errors (a Cluster that does not answer, a missing reference) are looked at
# again after STEP_SECONDS, backing off up to this.
RETRY_CAP_SECONDS = 60.0
SETTLED_SECONDS = 3600.0
# A settled Backfill whose tuned target settings could not be restored tries again.
TUNING_RETRY_SECONDS = 60.0


def waiting(status: dict[str, Any], phase: str, generation: int | None, exc: FerryError,
            failures: int) -> Outcome:
    """The ``failures``-th retryable error in a row: the phase stays, the conditions
    name the error, an event says it once (not at every retry), and the next look
    backs off (from STEP_SECONDS up to a minute)."""
    previous = status.get("conditions") or []
    was = (get_condition(previous, Conditions.PROGRESSING) or {}).get("reason")
    events = [Event.warning(exc.code, exc.message)] if was != exc.code else []
    conditions = conditions_for(previous, phase, exc.code, exc.message, generation)
    if phase == P.PENDING:
        # Nothing started: waiting for a reference (a Cluster, a Snapshot) is not
        # progress. The retry goes on, so Reconciling stays True for kstatus.
        conditions = set_condition(conditions, Conditions.PROGRESSING, False, exc.code,
                                   exc.message, generation)
    return Outcome({"phase": status.get("phase") or P.PENDING, "message": exc.message,
                    "observedGeneration": generation, "conditions": conditions},
                   events, backoff.delay(failures - 1, base=STEP_SECONDS,
                                         cap=RETRY_CAP_SECONDS))


def merged(status: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The whole status after a step's changes (None removes a field)."""
    return {k: v for k, v in {**status, **changes}.items() if v is not None}


class BackfillReconciler:
    def __init__(self, namespace: str, name: str, uid: str, reader: ObjectReader,
                 options: OperatorOptions) -> None:
        self.namespace, self.name, self.uid = namespace, name, uid
        self.options = options
        self.references = References(namespace, reader)
        self.pool: WorkerPool | None = None
        self.rate = RateTracker()
        self._service: CopyService | None = None
        self._service_generation: int | None = None
        # Set by the daemon: wakes it for the next step (called from worker threads).
        self.wake: Callable[[], None] | None = None
        self._tuning_lock = threading.Lock()
        self._retired = False
        # Passes in a row that ended in a retryable error: the retry backs off.
        self._failures = 0
        # A settled Backfill's worker Deployment was looked for (once per process).
        self._workers_ended = False

    def set_wake(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    def stop_workers(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def end_workers(self, spec: BackfillSpec) -> None:
        """The copy is over (every item done, or failed): workers stop for good. A
        worker Deployment is deleted, not left: its pods exit once nothing is left to
        claim, and it would start them again until the Backfill is deleted."""
        self.stop_workers()
        if spec.executor == "pods":
            kube.delete_deployment(self.namespace, deployment_name(self.name))

    def _end_leftover_workers(self, body: dict[str, Any]) -> None:
        """Once per operator process, a settled Backfill of executor pods loses a worker
        Deployment left behind: by a failure that ended the copy, or by an operator
        version that did not delete it when the copy ended (its pods would exit and be
        started again for as long as the Backfill exists)."""
        if self._workers_ended or (body.get("spec") or {}).get("executor") != "pods":
            return
        try:
            kube.delete_deployment(self.namespace, deployment_name(self.name))
        except kube.ApiException as exc:  # e.g. no delete grant: the chart's podsExecutor is off
            log.warning("worker Deployment %s of settled Backfill %s/%s not deleted: "
                        "HTTP %s %s", deployment_name(self.name), self.namespace, self.name,
                        exc.status, exc.reason)
        self._workers_ended = True

    def close(self) -> None:
        """Shutdown or deletion: workers finish their batch and release their items."""
        self.stop_workers()
        self._drop_service()

    def retire(self) -> None:
        """Deletion: a tuning in flight finishes first and none starts afterwards, so
        the deletion's restore is the last word on the target's settings."""
        with self._tuning_lock:
            self._retired = True
        self.close()

    @contextlib.contextmanager
    def tuning_allowed(self) -> Iterator[bool]:
        with self._tuning_lock:
            yield not self._retired

    def _drop_service(self) -> None:
        # The workers copy with this service's clients: they stop with them (and start
        # again on the next service).
        self.stop_workers()
        if self._service is not None:
            self._service.ep.close()
            self._service = None

    def service(self, spec: BackfillSpec, generation: int | None) -> CopyService:
        """Clients for the current generation (a spec change may point elsewhere)."""
        if self._service is None or self._service_generation != generation:
            self._drop_service()
            self._service = CopyService(self.references.endpoints(spec), spec, self.uid,
                                        self.options.lease_seconds)
            self._service_generation = generation
        return self._service

    # -- one pass -----------------------------------------------------------------------

    def reconcile(self, body: dict[str, Any]) -> Outcome:
        status = dict(body.get("status") or {})
        step = self._step(body, status)
        if step.status is not None:
            step.status = merged(status, step.status)
        return step

    def _step(self, body: dict[str, Any], status: dict[str, Any]) -> Outcome:
        """The next step; its ``status`` holds only the fields that change."""
        generation = body.get("metadata", {}).get("generation")
        phase = status.get("phase") or P.PENDING
        if phase in P.TERMINAL:
            if not resumes(phase, status, generation):
                self.stop_workers()
                self._end_leftover_workers(body)
                if tuning.pending(status):
                    return self._settle_tuning(body, generation)
                return Outcome(None, [], SETTLED_SECONDS)
            phase = P.PLANNING  # Evaluated, and the spec changed: evaluate again or go on
        try:
            spec = parse_spec(BackfillSpec, body["spec"])
            svc = self.service(spec, generation)
            step = restore_step if spec.method == "restore" else copy_step
            outcome = step(self, svc, spec, phase, status, generation)
            self._failures = 0
            return outcome
        except FerryError as exc:
            # Refused credentials once the copy started wait for the Secret to be
            # mended (a rotation half done) rather than throw the progress away.
            waits = isinstance(exc, AuthenticationFailed) and phase in (
                P.RUNNING, P.PAUSED, P.VERIFYING)
            if not exc.retryable and not waits:
                self.stop_workers()
                return self.fail(status, generation, exc)
            if not isinstance(exc, ClusterUnreachable):
                # An outage needs no new clients, and the workers wait it out with
                # theirs (stopping them would hold this pass while they retry).
                self._drop_service()  # rebuild clients next time (e.g. a rotated Secret)
            self._failures += 1
            return waiting(status, phase, generation, exc, self._failures)

    def _settle_tuning(self, body: dict[str, Any], generation: int | None) -> Outcome:
        """An end phase whose tuned target settings are not restored yet (the target
        was unreachable when it failed): try again."""
        try:
            self.service(parse_spec(BackfillSpec, body["spec"]), generation)
        except FerryError:
            return Outcome(None, [], TUNING_RETRY_SECONDS)
        restored = self._restore_tuning()
        return Outcome(restored.status or None, restored.events,
                       SETTLED_SECONDS if restored.done else TUNING_RETRY_SECONDS)

    def _restore_tuning(self) -> tuning.TuningStep:
        if self._service is None or self._service.spec.method != "copy":
            return tuning.TuningStep()
        return tuning.restore_or_report(self._service)

    # -- what both methods share ----------------------------------------------------------

    def fail(self, status: dict[str, Any], generation: int | None, exc: FerryError
             ) -> Outcome:
        """Failed; the workers are stopped, and tuned target settings restored."""
        conds = conditions_for(status.get("conditions") or [], P.FAILED, exc.code,
                                     exc.message, generation)
        restored = self._restore_tuning()
        return Outcome({"phase": P.FAILED, "message": exc.message, "conditions": conds,
                        "observedGeneration": generation, "completionTime": now(),
                        **restored.status},
                       [Event.warning(exc.code, exc.message), *restored.events],
                       SETTLED_SECONDS if restored.done else TUNING_RETRY_SECONDS)

    def metadata_phase(self, status: dict[str, Any], generation: int | None, message: str,
                       extra: dict[str, Any]) -> Outcome:
        conds = conditions_for(status.get("conditions") or [], P.MIGRATING_METADATA,
                                     P.MIGRATING_METADATA, message, generation)
        # completionTime None: a re-run after Evaluated is not complete any more.
        return Outcome({"phase": P.MIGRATING_METADATA, "message": message,
                        "conditions": conds, "observedGeneration": generation,
                        "completionTime": None, **extra}, [], 0.0)

    def metadata_service(self, svc: CopyService, spec: BackfillSpec) -> MetadataService:
        if svc.snapshot is not None:  # the source may be gone: the snapshot's metadata
            return svc.snapshot.metadata_service(svc.ep.target, spec, self.uid)
        assert svc.ep.source is not None
        return MetadataService(svc.ep.source, svc.ep.target, spec, self.uid)

    @staticmethod
    def metadata_event(result: MetadataResult) -> Event:
        counts = result.counts()
        troubled = counts["targetRejected"] + counts["incompatible"]
        event = Event.warning if troubled else Event.normal
        return event("MetadataMigrated", f"metadata ({result.mode}): {result.summary()}")

    def blocked(self, status: dict[str, Any], generation: int | None,
                result: MetadataResult) -> Outcome | None:
        """Failed, when an index the copy needs could not be created as it must be."""
        blocking = result.blocking()
        if not blocking:
            return None
        detail = "; ".join(f"{i.name}: {i.reason}" for i in blocking[:5])
        error = TargetRejected(f"{len(blocking)} indices cannot be migrated (see "
                               f"status.metadata): {detail}")
        if any(i.action == "Incompatible" for i in blocking):
            error.code = "IncompatibleIndices"
        failed = self.fail(status, generation, error)
        assert failed.status is not None
        failed.status["metadata"] = result.report()
        return failed

    def evaluated(self, status: dict[str, Any], generation: int | None,
                  result: MetadataResult | None, plan_text: str) -> Outcome:
        summary = result.summary() if result is not None else "metadata not evaluated (Skip)"
        message = (f"evaluated, nothing was written: {summary}; {plan_text}. Set "
                   "spec.metadata.mode to Create to migrate")
        conds = conditions_for(status.get("conditions") or [], P.EVALUATED,
                                     P.EVALUATED, message, generation)
        new: dict[str, Any] = {"phase": P.EVALUATED, "message": message, "conditions": conds,
                               "observedGeneration": generation, "completionTime": now()}
        if result is not None:
            new["metadata"] = result.report()
        return Outcome(new, [Event.normal(P.EVALUATED, message)], SETTLED_SECONDS)

    def check_overlap(self, svc: CopyService, targets: set[str]) -> None:
        """Refuse to write into target indices an earlier, unfinished Backfill of the
        same target Cluster writes to: every index of its plan (kept whole in its
        coordination index; status.indices is bounded), or what its status lists while
        it is still planning."""
        me = kube.get_object(Backfill, self.namespace, self.name) or {}
        my_target = target_of(me)
        my_key = (me.get("metadata", {}).get("creationTimestamp", ""), self.name)
        for other in kube.list_objects(Backfill, self.namespace):
            meta, status = other["metadata"], other.get("status") or {}
            if meta["uid"] == self.uid or status.get("phase") in P.TERMINAL:
                continue
            if target_of(other) != my_target:
                continue
            if (meta.get("creationTimestamp", ""), meta["name"]) > my_key:
                continue
            theirs = {row.get("target") for row in status.get("indices") or []}
            recorded = WorkItemStore(svc.ep.target, coordination_index(meta["uid"])).planned()
            theirs |= {i["target"] for i in (recorded or {}).get("indices") or []}
            overlap = sorted(targets & theirs)
            if overlap:
                raise FerryError(f"Backfill {meta['name']} already writes to "
                                 f"{', '.join(overlap)} on the same target; wait for it "
                                 "or choose other target names", code="TargetIndexInUse",
                                 retryable=False)


def target_of(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("targetRef", {}).get("name", ""))
