"""Snapshot handlers: one loop per Snapshot, woken by spec changes, and a deletion
handler that applies the deletionPolicy. What a pass does is
``services/snapshot/reconciler.py``."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from ferry.api import GROUP, VERSION, Snapshot
from ferry.clients import kube
from ferry.clients.kube import StatusCopy
from ferry.events import announce_all
from ferry.handlers import daemon
from ferry.runtime import Runtime
from ferry.services.references import References
from ferry.services.snapshot.deletion import SnapshotDeletion
from ferry.services.snapshot.reconciler import SnapshotReconciler

log = logging.getLogger("ferry.snapshot")


@kopf.on.update(GROUP, VERSION, Snapshot.plural, field="spec")
def spec_changed(namespace: str, name: str, memo: Runtime, **_: Any) -> None:
    memo.triggers.poke(Snapshot.kind, namespace, name)


@kopf.daemon(GROUP, VERSION, Snapshot.plural, cancellation_timeout=10.0)
async def reconcile_snapshot(stopped: kopf.DaemonStopped, namespace: str, name: str,
                             body: kopf.Body, memo: Runtime, **_: Any) -> None:
    """Starts or adopts the snapshot and follows it until it ended and was checked."""
    await daemon.run(Snapshot, body, memo, stopped,
                     SnapshotReconciler(namespace, name, References(namespace, memo.reader)))


@kopf.on.delete(GROUP, VERSION, Snapshot.plural)
async def deleted(namespace: str, name: str, body: kopf.Body, memo: Runtime, retry: int,
                  runtime: datetime.timedelta, **_: Any) -> None:
    """Applies the deletionPolicy (``services/snapshot/deletion.py``)."""
    deletion = SnapshotDeletion(namespace, name, dict(body), References(namespace, memo.reader),
                                memo.options.cleanup_timeout)
    deleting = deletion.deleting_status()
    if deleting is not None:
        current = StatusCopy(deletion.status, (body.get("metadata") or {}).get("resourceVersion"))
        try:
            await memo.run(kube.write_status, Snapshot, namespace, name, current, deleting)
        except Exception:  # status is for humans; deletion goes on without it
            log.debug("could not write the Deleting phase", exc_info=True)
    step = await memo.run(deletion.run, runtime.total_seconds(), retry)
    announce_all(body, step.events)
    if step.retry_in is not None:
        raise kopf.TemporaryError(step.reason, delay=step.retry_in)
