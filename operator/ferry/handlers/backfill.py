"""Backfill handlers: one daemon per Backfill drives it through its phases (what a pass
does is ``services/backfill/reconciler.py``), and a deletion handler that stops the
workers, restores the settings of tuned target indices and removes the coordination
index — never the copied data."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ferry.api import GROUP, VERSION, Backfill
from ferry.api.backfill import BackfillSpec
from ferry.api.common import parse_spec
from ferry.clients import kube
from ferry.errors import FerryError
from ferry.events import announce, announce_all
from ferry.handlers import daemon
from ferry.runtime import Runtime
from ferry.services.backfill import tuning
from ferry.services.backfill.copy import CopyService
from ferry.services.backfill.deployment import deployment_name
from ferry.services.backfill.reconciler import BackfillReconciler
from ferry.services.backoff import delay
from ferry.services.references import Endpoints, References

log = logging.getLogger("ferry.backfill")
DELETE_RETRIES = 5


@kopf.on.update(GROUP, VERSION, Backfill.plural, field="spec")
def spec_changed(namespace: str, name: str, memo: Runtime, **_: Any) -> None:
    memo.triggers.poke(Backfill.kind, namespace, name)


@kopf.daemon(GROUP, VERSION, Backfill.plural, cancellation_timeout=90.0)
async def reconcile_backfill(stopped: kopf.DaemonStopped, namespace: str, name: str,
                             uid: str, body: kopf.Body, memo: Runtime, **_: Any) -> None:
    reconciler = memo.backfill_reconcilers.get(uid)
    if reconciler is None:
        reconciler = memo.backfill_reconcilers[uid] = BackfillReconciler(
            namespace, name, uid, memo.reader, memo.options)
    await daemon.run(Backfill, body, memo, stopped, reconciler, on_wake=reconciler.set_wake)


def _remove_coordination_index(namespace: str, spec: BackfillSpec, uid: str,
                               memo: Runtime, body: kopf.Body) -> None:
    """First the tuned target settings back: their originals live in that index. Only
    the target is touched, so a source Cluster or a Snapshot deleted with the Backfill
    (or before it) does not hold the cleanup up."""
    refs = References(namespace, memo.reader)
    target = refs.cluster(spec.target_ref.name)
    endpoints = Endpoints(None, target, None, refs.engine(spec.target_ref.name, target))
    try:
        svc = CopyService(endpoints, spec, uid, memo.options.lease_seconds)
        if spec.method == "copy":
            announce_all(body, tuning.restore(svc).events)
        svc.cleanup()
    finally:
        endpoints.close()


@kopf.on.delete(GROUP, VERSION, Backfill.plural)
def cleanup(namespace: str, name: str, uid: str, spec: kopf.Spec, body: kopf.Body,
            memo: Runtime, retry: int, **_: Any) -> None:
    """Stop the workers, restore tuned target settings and remove the coordination
    index — never the copied data."""
    reconciler = memo.backfill_reconcilers.pop(uid, None)
    if reconciler is not None:
        reconciler.retire()
    try:
        parsed = parse_spec(BackfillSpec, dict(spec))
    except FerryError as exc:
        announce(body, "Warning", "CleanupSkipped", f"released without cleaning up: "
                 f"{exc.message}")
        return
    if parsed.executor == "pods":
        kube.delete_deployment(namespace, deployment_name(name))
    if not (body.get("status") or {}).get("coordinationIndex"):
        return  # never got as far as creating one: nothing on the target to remove
    try:
        _remove_coordination_index(namespace, parsed, uid, memo, body)
    except FerryError as exc:
        if exc.retryable and retry < DELETE_RETRIES:
            raise kopf.TemporaryError(f"cannot clean up the target yet: "
                                      f"{exc.message}",
                                      delay=delay(retry, base=5.0, cap=60.0)) from None
        message = (f"released without removing the coordination index "
                   f".ferry-backfill-{uid} from the target: {exc.message}")
        announce(body, "Warning", "CleanupSkipped", message)
