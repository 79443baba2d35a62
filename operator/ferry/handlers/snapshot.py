"""Snapshot handlers: one loop per Snapshot, woken by spec changes, and a deletion
handler that applies the deletionPolicy. What a pass does is
``services/snapshot/reconciler.py``."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from ferry.api import GROUP, VERSION, Snapshot
from ferry.api.common import parse_spec
from ferry.api.snapshot import SnapshotSpec
from ferry.clients import kube
from ferry.clients.kube import StatusCopy
from ferry.errors import FerryError, InvalidSpec
from ferry.events import announce
from ferry.handlers import daemon
from ferry.runtime import Runtime
from ferry.services.references import References
from ferry.services.snapshot.reconciler import (
    SnapshotReconciler,
    delete_snapshot,
    deletion_retry_delay,
    snapshot_name,
)

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
    """Retain: let go at once. Delete: delete the snapshot and wait until it is gone;
    against a cluster that is gone or unreachable, retry with backoff for at most
    the cleanup timeout (FERRY_CLEANUP_TIMEOUT), then let go with a Warning event."""
    spec_raw = dict(body.get("spec") or {})
    status = dict(body.get("status") or {})
    snap = str(status.get("snapshotName") or snapshot_name(body))
    repository = str((spec_raw.get("repository") or {}).get("name", ""))
    ref = {"object": {"kind": "Snapshot", "namespace": namespace, "name": name}}
    if spec_raw.get("deletionPolicy", "Retain") != "Delete":
        if status.get("adopted") is not None:
            announce(body, "Normal", "Retained", f"deletionPolicy Retain: snapshot {snap} "
                     f"stays in repository {repository}")
        return
    try:
        spec = parse_spec(SnapshotSpec, spec_raw)
    except InvalidSpec as exc:
        announce(body, "Warning", "SnapshotNotDeleted", exc.message)
        return
    if status.get("phase") != "Deleting":
        current = StatusCopy(status, (body.get("metadata") or {}).get("resourceVersion"))
        deleting = {**status, "phase": "Deleting",
                    "message": f"deleting snapshot {snap} from repository {repository}"}
        try:
            await memo.run(kube.write_status, Snapshot, namespace, name, current, deleting)
        except Exception:  # status is for humans; deletion goes on without it
            log.debug("could not write the Deleting phase", exc_info=True)
    references = References(namespace, memo.reader)
    try:
        result = await memo.run(delete_snapshot, references, name, spec, snap,
                                status.get("adopted"))
    except FerryError as exc:
        elapsed, limit = runtime.total_seconds(), memo.options.cleanup_timeout
        if elapsed >= limit:
            message = (f"gave up deleting snapshot {snap} from repository {repository} "
                       f"after {elapsed:.0f}s ({exc.code}: {exc.message}); the resource is "
                       "released and the snapshot may still be in the repository")
            announce(body, "Warning", "SnapshotNotDeleted", message)
            return
        delay = deletion_retry_delay(retry, elapsed, limit)
        log.info("Snapshot %s/%s: cannot delete snapshot %s yet (%s); retrying in %.0fs",
                 namespace, name, snap, exc.message, delay, extra=ref)
        raise kopf.TemporaryError(f"cannot delete snapshot {snap} yet: {exc.message}",
                                  delay=delay) from None
    if result == "NotOwned":
        announce(body, "Normal", "Retained", f"deletionPolicy Delete, but snapshot {snap} "
                 "was adopted, not started by this resource: it stays in the repository")
    else:
        gone = "deleted" if result == "Deleted" else "was already gone"
        announce(body, "Normal", "SnapshotDeleted",
                 f"snapshot {snap} {gone} from repository {repository}")
    log.info("Snapshot %s/%s: snapshot %s: %s", namespace, name, snap, result, extra=ref)
