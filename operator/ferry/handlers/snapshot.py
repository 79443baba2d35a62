"""Snapshot handlers: one loop per Snapshot that starts (or adopts) it and follows it
to the end, and a deletion handler that applies the deletionPolicy."""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any

import kopf
from pydantic import ValidationError

from ferry.api import GROUP, VERSION, Cluster, Snapshot
from ferry.api.cluster import ClusterSpec
from ferry.api.common import parse_spec
from ferry.api.snapshot import SnapshotSpec
from ferry.clients import kube
from ferry.clients.search import SearchConnection
from ferry.conditions import status_patch
from ferry.errors import FerryError, InvalidSpec, ReferenceNotFound
from ferry.events import announce
from ferry.runtime import Runtime
from ferry.services.snapshot.service import Observation, SnapshotService, verify_in_repository
from ferry.services.snapshot.status import (
    build_status,
    needs_verification,
    poll_delay,
    retry_delay,
    settled,
    transition_events,
    with_verification,
)

log = logging.getLogger("ferry.snapshot")

# How long deleting a Snapshot keeps retrying against a cluster that is gone or
# unreachable before it lets the resource go (with a Warning event): never stuck.
CLEANUP_TIMEOUT_ENV = "FERRY_CLEANUP_TIMEOUT"
DEFAULT_CLEANUP_TIMEOUT = 600.0
# A settled Snapshot only keeps observedGeneration current; this is how often it looks.
SETTLED_RECHECK = 5.0


def cleanup_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get(CLEANUP_TIMEOUT_ENV, DEFAULT_CLEANUP_TIMEOUT)))
    except ValueError:
        return DEFAULT_CLEANUP_TIMEOUT


def snapshot_name(body: kopf.Body | dict[str, Any]) -> str:
    return str((body.get("spec") or {}).get("snapshotName") or body["metadata"]["name"])


def owner_of(namespace: str, name: str) -> str:
    """Whose snapshot it is: the resource's namespace/name, so a manifest applied again
    after a delete and re-create still owns the snapshot it started."""
    return f"{namespace}/{name}"


def _connect(runtime: Runtime, namespace: str, cluster: str) -> SearchConnection:
    obj = kube.get_object(Cluster, namespace, cluster)
    if obj is None:
        raise ReferenceNotFound(f"Cluster {namespace}/{cluster} not found")
    try:
        spec = ClusterSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        raise InvalidSpec(f"Cluster {namespace}/{cluster} has a spec that does not parse"
                          ) from None
    return runtime.clusters.connect(spec, namespace)


def _look(runtime: Runtime, namespace: str, name: str, spec: SnapshotSpec, snap: str,
          previous: dict[str, Any]) -> Observation:
    """One look at the snapshot (blocking): start or adopt it first if not done yet."""
    service = SnapshotService(_connect(runtime, namespace, spec.cluster_ref.name))
    try:
        if previous.get("adopted") is None:
            return service.start_or_adopt(spec, snap, owner_of(namespace, name))
        return service.observe(spec.repository.name, snap)
    finally:
        service.close()


async def check_once(runtime: Runtime, namespace: str, name: str, body: kopf.Body,
                     previous: dict[str, Any]) -> tuple[dict[str, Any], Observation | FerryError]:
    generation = body.get("metadata", {}).get("generation")
    snap = snapshot_name(body)
    repository = str(((body.get("spec") or {}).get("repository") or {}).get("name", ""))
    spec: SnapshotSpec | None = None
    try:
        spec = parse_spec(SnapshotSpec, dict(body["spec"]))
        outcome: Observation | FerryError = await runtime.run(
            _look, runtime, namespace, name, spec, snap, previous)
    except FerryError as exc:
        outcome = exc
    new = build_status(previous, generation, snap, outcome)
    if spec is not None and isinstance(outcome, Observation) and needs_verification(new):
        verification = await runtime.run(verify_in_repository, spec.repository, outcome.info)
        new = with_verification(new, verification, generation)
    if new != previous:
        await runtime.run(kube.patch_status, Snapshot, namespace, name,
                          status_patch(previous, new))
    for event in transition_events(previous, new, outcome, repository):
        announce(body, event.type, event.reason, event.message)
    return new, outcome


@kopf.daemon(GROUP, VERSION, Snapshot.plural, cancellation_timeout=10.0)
async def follow(stopped: kopf.DaemonStopped, namespace: str, name: str, body: kopf.Body,
                 memo: Runtime, **_: Any) -> None:
    """Starts or adopts the snapshot, then looks at it fast at first and less often as
    it goes on (2 s up to 30 s), until it ended and was checked in the repository."""
    current = dict(body.get("status") or {})
    polls = failures = 0
    while not stopped:
        if settled(current):
            generation = body.get("metadata", {}).get("generation")
            if current.get("observedGeneration") != generation:
                # Only deletionPolicy (and flags that no longer matter) can change now.
                current["observedGeneration"] = generation
                await memo.run(kube.patch_status, Snapshot, namespace, name,
                               {"observedGeneration": generation})
            await stopped.wait(SETTLED_RECHECK)
            continue
        try:
            current, outcome = await check_once(memo, namespace, name, body, current)
        except Exception as exc:  # never let one resource kill its loop
            log.exception("Snapshot %s/%s: check failed unexpectedly", namespace, name)
            outcome = FerryError(f"internal error: {type(exc).__name__}")
        if isinstance(outcome, FerryError):
            failures += 1
            delay = retry_delay(outcome, failures)
        else:
            failures = 0
            delay = poll_delay(polls)
            polls += 1
        await stopped.wait(delay)


def _delete_blocking(runtime: Runtime, namespace: str, name: str, spec: SnapshotSpec,
                     snap: str, adopted: bool | None) -> str:
    service = SnapshotService(_connect(runtime, namespace, spec.cluster_ref.name))
    try:
        return service.delete(spec.repository.name, snap, owner_of(namespace, name), adopted)
    finally:
        service.close()


@kopf.on.delete(GROUP, VERSION, Snapshot.plural)
async def deleted(namespace: str, name: str, body: kopf.Body, memo: Runtime, retry: int,
                  runtime: datetime.timedelta, **_: Any) -> None:
    """Retain: let go at once. Delete: delete the snapshot and wait until it is gone;
    against a cluster that is gone or unreachable, retry with backoff for at most
    FERRY_CLEANUP_TIMEOUT seconds, then let go with a Warning event."""
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
        try:
            await memo.run(kube.patch_status, Snapshot, namespace, name,
                           {"phase": "Deleting",
                            "message": f"deleting snapshot {snap} from repository "
                            f"{repository}"})
        except Exception:  # status is for humans; deletion goes on without it
            log.debug("could not write the Deleting phase", exc_info=True)
    try:
        result = await memo.run(_delete_blocking, memo, namespace, name, spec, snap,
                                status.get("adopted"))
    except FerryError as exc:
        elapsed, limit = runtime.total_seconds(), cleanup_timeout()
        if elapsed >= limit:
            message = (f"gave up deleting snapshot {snap} from repository {repository} "
                       f"after {elapsed:.0f}s ({exc.code}: {exc.message}); the resource is "
                       "released and the snapshot may still be in the repository")
            announce(body, "Warning", "SnapshotNotDeleted", message)
            return
        delay = min(30.0, 2.0 * 2 ** retry, max(1.0, limit - elapsed))
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
