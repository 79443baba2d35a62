"""Method copy, phase by phase: plan, migrate metadata and write the work items, run
the workers (in this process, or as a worker Deployment) on tuned target indices,
restore their settings, verify."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferry.api.backfill import BackfillSpec
from ferry.api.phases import BackfillPhases as P
from ferry.api.phases import Conditions
from ferry.clients import kube
from ferry.conditions import get_condition, now, set_condition
from ferry.errors import ClusterUnreachable, FerryError
from ferry.services.backfill import tuning
from ferry.services.backfill.copy import CopyService
from ferry.services.backfill.deployment import worker_deployment
from ferry.services.backfill.plan import Plan
from ferry.services.backfill.pool import WorkerPool
from ferry.services.backfill.status import (
    conditions_for,
    index_rows,
    planned_progress,
    planned_rows,
    progress,
    verdict,
    verification,
    work_items,
    worker_selector,
)
from ferry.services.metadata.report import closed_items
from ferry.services.outcome import Event, Outcome

if TYPE_CHECKING:
    from ferry.services.backfill.reconciler import BackfillReconciler

# The pass after one that changed the phase runs at once: the workers start, or the
# verification begins, the moment the step before has ended (the loop keeps its own
# status copy, so nothing waits for the write to come back through the watch).
NEXT_PHASE_NOW = 0.0
# What a pass of the copy that went well leaves as the Progressing reason.
HEALTHY = ("Copying", P.PAUSED, "Verifying")


def copy_step(r: BackfillReconciler, svc: CopyService, spec: BackfillSpec, phase: str,
              status: dict[str, Any], generation: int | None) -> Outcome:
    if phase in (P.PENDING, P.PLANNING):
        return _plan(r, svc, spec, status, generation)
    if phase == P.MIGRATING_METADATA:
        return _metadata(r, svc, spec, status, generation)
    if phase in (P.RUNNING, P.PAUSED):
        return _run(r, svc, spec, status, generation)
    if phase == P.VERIFYING:
        return _verify(svc, status, generation)
    return Outcome()


def _rows(plan: Plan) -> list[dict[str, Any]]:
    return planned_rows([(i.source, i.target, i.docs) for i in plan.indices])


def _recorded_plan(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"source": r["name"], "target": r.get("target"), "docs": r.get("docsTotal", 0)}
            for r in status.get("indices") or []]


def _plan(r: BackfillReconciler, svc: CopyService, spec: BackfillSpec,
          status: dict[str, Any], generation: int | None) -> Outcome:
    """Resolve the indices and check them before anything is written."""
    plan = svc.plan()
    r.check_overlap(svc, {i.target for i in plan.indices})
    message = (f"{len(plan.indices)} indices, {plan.docs_total} documents; migrating "
               f"metadata (mode {spec.metadata.mode})")
    return r.metadata_phase(status, generation, message, {
        "indices": _rows(plan), "progress": planned_progress(plan.docs_total),
        "selector": worker_selector(r.name)})


def _metadata(r: BackfillReconciler, svc: CopyService, spec: BackfillSpec,
              status: dict[str, Any], generation: int | None) -> Outcome:
    """Templates, indices and aliases; then (unless evaluating) the copy's plan."""
    plan = svc.plan()
    result = r.metadata_service(svc, spec).run(
        spec.metadata.mode, [(i.source, i.target) for i in plan.indices])
    result.items += closed_items(plan.closed, spec.closed_indices)
    if spec.metadata.mode == "Evaluate":
        return r.evaluated(status, generation, result,
                           f"the copy would move {plan.docs_total} documents of "
                           f"{len(plan.indices)} indices")
    blocked = r.blocked(status, generation, result)
    if blocked is not None:
        return blocked
    plan = svc.prepare(check=lambda p: r.check_overlap(svc, {i.target for i in p.indices}))
    message = (f"copying {plan.docs_total} documents of {len(plan.indices)} indices "
               f"in {svc.store.summary(with_failures=False).total} work items")
    conds = conditions_for(status.get("conditions") or [], P.RUNNING, "Copying",
                                 message, generation)
    return Outcome({
        "phase": P.RUNNING, "message": message, "conditions": conds,
        "observedGeneration": generation, "startTime": status.get("startTime") or now(),
        "coordinationIndex": svc.store.index, "metadata": result.report(),
        "progress": planned_progress(plan.docs_total), "indices": _rows(plan),
    }, [r.metadata_event(result), Event.normal("Planned", message)], NEXT_PHASE_NOW)


def _outage(side: str, cluster: str, exc: ClusterUnreachable) -> ClusterUnreachable:
    return ClusterUnreachable(f"the {side} Cluster {cluster} does not answer ({exc.message}); "
                              "the workers wait for it and resume from their checkpoints",
                              code=f"{side.capitalize()}Unreachable")


def _run(r: BackfillReconciler, svc: CopyService, spec: BackfillSpec,
         status: dict[str, Any], generation: int | None) -> Outcome:
    """A pass of the copy, with an outage of either Cluster reported as such: the
    workers meet it too, and wait it out (their batches retry, their items are claimed
    again from the checkpoint), but only this pass can say so in status."""
    if svc.ep.source is not None and spec.source_ref is not None:
        try:
            svc.ep.source.request("HEAD", "/")
        except ClusterUnreachable as exc:
            raise _outage("source", spec.source_ref.name, exc) from None
        except FerryError:
            pass  # it answers; what it refuses, the workers report
    try:
        outcome = _copying(r, svc, spec, status, generation)
    except ClusterUnreachable as exc:
        raise _outage("target", spec.target_ref.name, exc) from None
    # The first good pass after retryable errors (an outage, and the 503s of a node
    # still recovering) says that they are over.
    was = (get_condition(status.get("conditions"), Conditions.PROGRESSING) or {}).get("reason")
    if was not in (None, *HEALTHY):
        outcome.events.append(Event.normal("Resumed", f"{was} is over; the copy goes on "
                                           "from its checkpoints"))
    return outcome


def _copying(r: BackfillReconciler, svc: CopyService, spec: BackfillSpec,
             status: dict[str, Any], generation: int | None) -> Outcome:
    # Before any worker starts: tuned for the load (restored while paused). Workers
    # start under the same lock: a deletion that retired this Backfill while the pass
    # ran must find no worker (thread or Deployment) started after it stopped them.
    with r.tuning_allowed() as allowed:
        tuned = tuning.during_copy(svc, spec, status) if allowed else tuning.TuningStep()
        if allowed and spec.executor == "inProcess":
            if r.pool is None:
                r.pool = WorkerPool(r.name, svc.context(), on_finished=r.wake)
            svc.configure(r.pool, spec)  # throttle, batch and onConflict apply live
            r.pool.scale(spec.workers, spec.paused)
        elif allowed:
            kube.apply_deployment(r.namespace, worker_deployment(r.namespace, r.name,
                                                                 r.uid, spec, r.options))
    summary = svc.store.summary()
    docs_total = (status.get("progress") or {}).get("docsTotal") or 0
    rate = r.rate.add(summary.docs_done)
    active = r.pool.active if r.pool is not None else summary.holders
    new: dict[str, Any] = {
        "observedGeneration": generation,
        "progress": progress(docs_total, summary, rate),
        "workItems": work_items(summary),
        "workers": active, "desiredWorkers": 0 if spec.paused else spec.workers,
        "selector": worker_selector(r.name),
        "indices": index_rows(_recorded_plan(status), summary),
        "failures": summary.failures, **tuned.status,
    }
    if summary.docs_failed > spec.max_failed_documents:
        r.end_workers(spec)
        message = (f"{summary.docs_failed} documents were rejected by the target, more "
                   f"than maxFailedDocuments ({spec.max_failed_documents}); see failures")
        failed = r.fail(status, generation,
                        FerryError(message, code="TooManyFailures", retryable=False))
        assert failed.status is not None
        # The failure's own fields win, its restored status.tuning among them.
        failed.status = {**new, "workers": 0, **failed.status}
        failed.events[:0] = tuned.events
        return failed
    if summary.finished:
        r.end_workers(spec)
        phase, reason, message = P.VERIFYING, "Verifying", "all work items done; verifying"
        new["workers"] = 0
    elif spec.paused:
        phase, reason, message = P.PAUSED, "Paused", "paused: workers finish their batch " \
            "and claim no more work"
    else:
        phase, reason = P.RUNNING, "Copying"
        message = (f"{summary.docs_done}/{docs_total} documents, "
                   f"{summary.completed}/{summary.total} work items done")
    events = tuned.events + ([Event.normal(reason, message)]
                             if phase != status.get("phase") else [])
    new.update({"phase": phase, "message": message,
                "conditions": conditions_for(status.get("conditions") or [], phase,
                                                   reason, message, generation)})
    delay = NEXT_PHASE_NOW if phase == P.VERIFYING else 5.0
    return Outcome(new, events, delay)


def _verify(svc: CopyService, status: dict[str, Any], generation: int | None) -> Outcome:
    # Every planned index is verified: the whole plan is in the coordination index,
    # while status.indices is bounded.
    # Counting refreshes every target index first (a second refresh here would cost as
    # much again over thousands of indices); without counts, the restore refreshes.
    restored = tuning.restore(svc, refresh=not svc.spec.verify.counts, said=status)
    planned = svc.store.planned()
    plan = Plan.from_dict(planned) if planned is not None else \
        Plan.from_dict({"indices": _recorded_plan(status)})
    recorded = plan.to_dict()["indices"]
    rows = svc.verify(plan) if svc.spec.verify.counts else []
    summary = svc.store.summary()
    sampled = f" and {svc.spec.verify.sample_size} sampled documents per index" \
        if svc.spec.verify.sample_size else ""
    verified = verification(
        rows,
        mismatch=lambda row: (f"{row['name']}: source {row['docsTotal']}, target "
                              f"{row['targetCount']}"
                              + (f" ({row['reason']})" if row.get("reason") else "")
                              + (f", content differs for ids {row['sampleMismatches'][:5]}"
                                 if row.get("sampleMismatches") else "")),
        matched=lambda n: f"document counts of {n} indices match{sampled}")
    conds = set_condition(status.get("conditions") or [], Conditions.VERIFIED, *verified,
                          generation)
    bad = sum(1 for row in rows if not row["verified"])
    phase, reason, message = verdict(
        summary.docs_failed, bad, f"{summary.docs_done} documents copied and verified")
    conds = conditions_for(conds, phase, reason, message, generation)
    new = {"phase": phase, "message": message, "conditions": conds,
           "observedGeneration": generation, "completionTime": now(),
           "indices": index_rows(recorded, summary, rows),
           "progress": progress((status.get("progress") or {}).get("docsTotal", 0),
                                      summary, None),
           "workItems": work_items(summary), "failures": summary.failures,
           "workers": 0, **restored.status}
    event = Event.normal if phase == P.COMPLETED else Event.warning
    return Outcome(new, [*restored.events, event(reason, message)], 3600)
