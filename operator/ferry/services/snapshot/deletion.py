"""What deleting a Snapshot resource does, by its deletionPolicy.

Retain lets go at once. Delete deletes the snapshot (only one this resource started:
the owner rule in the reconciler) and waits until it is gone; against a cluster that is
gone or unreachable it is retried with backoff for at most the cleanup timeout, then
the resource is let go with a Warning event — a deletion is never stuck.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ferry.api.common import parse_spec
from ferry.api.phases import SnapshotPhases
from ferry.api.snapshot import SnapshotSpec
from ferry.errors import FerryError, InvalidSpec
from ferry.services.outcome import Event
from ferry.services.references import References
from ferry.services.snapshot.reconciler import (
    delete_snapshot,
    deletion_retry_delay,
    snapshot_name,
)

log = logging.getLogger("ferry.snapshot")


@dataclass
class DeletionStep:
    """The events to post, and — when the snapshot could not be deleted yet — how long
    to wait before the next try (with the reason)."""

    events: list[Event] = field(default_factory=list)
    retry_in: float | None = None
    reason: str = ""


class SnapshotDeletion:
    def __init__(self, namespace: str, name: str, body: dict[str, Any],
                 references: References, cleanup_timeout: float) -> None:
        self.namespace, self.name = namespace, name
        self.references = references
        self.timeout = cleanup_timeout
        self.raw = dict(body.get("spec") or {})
        self.status = dict(body.get("status") or {})
        self.snap = str(self.status.get("snapshotName") or snapshot_name(body))
        self.repository = str((self.raw.get("repository") or {}).get("name", ""))
        self.ref = {"object": {"kind": "Snapshot", "namespace": namespace, "name": name}}

    @property
    def deletes(self) -> bool:
        return self.raw.get("deletionPolicy", "Retain") == "Delete"

    def deleting_status(self) -> dict[str, Any] | None:
        """The status to show while the snapshot is being deleted (None: nothing to)."""
        if not self.deletes or self.status.get("phase") == SnapshotPhases.DELETING:
            return None
        try:
            parse_spec(SnapshotSpec, self.raw)
        except InvalidSpec:
            return None  # run() says why nothing is deleted
        return {**self.status, "phase": SnapshotPhases.DELETING,
                "message": f"deleting snapshot {self.snap} from repository {self.repository}"}

    def run(self, elapsed: float, retry: int) -> DeletionStep:
        """One try (blocking)."""
        snap, repository = self.snap, self.repository
        if not self.deletes:
            if self.status.get("adopted") is None:
                return DeletionStep()  # never started: nothing in the repository
            return DeletionStep([Event.normal("Retained", f"deletionPolicy Retain: snapshot "
                                              f"{snap} stays in repository {repository}")])
        try:
            spec = parse_spec(SnapshotSpec, self.raw)
        except InvalidSpec as exc:
            return DeletionStep([Event.warning("SnapshotNotDeleted", exc.message)])
        try:
            result = delete_snapshot(self.references, self.name, spec, snap, self.status)
        except FerryError as exc:
            if elapsed >= self.timeout:
                return DeletionStep([Event.warning(
                    "SnapshotNotDeleted",
                    f"gave up deleting snapshot {snap} from repository {repository} after "
                    f"{elapsed:.0f}s ({exc.code}: {exc.message}); the resource is released "
                    "and the snapshot may still be in the repository")])
            delay = deletion_retry_delay(retry, elapsed, self.timeout)
            log.info("Snapshot %s/%s: cannot delete snapshot %s yet (%s); retrying in %.0fs",
                     self.namespace, self.name, snap, exc.message, delay, extra=self.ref)
            return DeletionStep(retry_in=delay,
                                reason=f"cannot delete snapshot {snap} yet: {exc.message}")
        log.info("Snapshot %s/%s: snapshot %s: %s", self.namespace, self.name, snap, result,
                 extra=self.ref)
        if result == "NotOwned":
            return DeletionStep([Event.normal(
                "Retained", f"deletionPolicy Delete, but snapshot {snap} was not started "
                "by this resource (adopted, or another snapshot of that name since): it "
                "stays in the repository")])
        gone = "deleted" if result == "Deleted" else "was already gone"
        return DeletionStep([Event.normal(
            "SnapshotDeleted", f"snapshot {snap} {gone} from repository {repository}")])
