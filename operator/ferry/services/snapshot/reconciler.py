"""What happens to a Snapshot: the first pass registers the repository and starts the
snapshot (or adopts one of that name), later passes look at it, fast at first and less
often as it goes on (2 s up to 30 s), until it ended and was checked in the
repository's own files. A settled Snapshot only keeps observedGeneration current.

Deleting a Snapshot with deletionPolicy Delete is :func:`delete_snapshot`; the owner
rule (:func:`owner_of`) decides whether the snapshot is this resource's to delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.api.common import parse_spec
from ferry.api.snapshot import SnapshotSpec
from ferry.errors import FerryError
from ferry.services import backoff
from ferry.services.outcome import Outcome
from ferry.services.references import References
from ferry.services.snapshot.repository import verify_in_repository
from ferry.services.snapshot.service import SnapshotObservation, SnapshotService
from ferry.services.snapshot.status import (
    build_status,
    needs_verification,
    poll_delay,
    retry_delay,
    settled,
    transition_events,
    with_verification,
)

# A settled Snapshot only keeps observedGeneration current; this is how often it looks.
SETTLED_RECHECK = 5.0
# A deletion that failed is tried again after 2 s, doubling, at most this long.
DELETE_RETRY_FIRST, DELETE_RETRY_MAX = 2.0, 30.0


def snapshot_name(body: Mapping[str, Any]) -> str:
    return str((body.get("spec") or {}).get("snapshotName") or body["metadata"]["name"])


def owner_of(namespace: str, name: str) -> str:
    """Whose snapshot it is: the resource's namespace/name, so a manifest applied again
    after a delete and re-create still owns the snapshot it started."""
    return f"{namespace}/{name}"


class SnapshotReconciler:
    """One Snapshot's passes (blocking). Counts its own polls and failures in a row,
    which set the delay before the next pass."""

    def __init__(self, namespace: str, name: str, references: References) -> None:
        self.namespace = namespace
        self.name = name
        self.references = references
        self.polls = 0
        self.failures = 0

    def reconcile(self, view: dict[str, Any]) -> Outcome:
        previous = dict(view.get("status") or {})
        generation = (view.get("metadata") or {}).get("generation")
        if settled(previous):
            if previous.get("observedGeneration") == generation:
                return Outcome(delay=SETTLED_RECHECK)
            # Only deletionPolicy (and flags that no longer matter) can change now.
            return Outcome(status={**previous, "observedGeneration": generation},
                           delay=SETTLED_RECHECK)
        raw = dict(view.get("spec") or {})
        snap = snapshot_name(view)
        repository = str((raw.get("repository") or {}).get("name", ""))
        spec: SnapshotSpec | None = None
        outcome: SnapshotObservation | FerryError
        try:
            spec = parse_spec(SnapshotSpec, raw)
            outcome = self._look(spec, snap, previous)
        except FerryError as exc:
            outcome = exc
        new = build_status(previous, generation, snap, outcome)
        if spec is not None and isinstance(outcome, SnapshotObservation) \
                and needs_verification(new):
            new = with_verification(new, verify_in_repository(spec.repository, outcome.info),
                                    generation)
        return Outcome(status=new, events=transition_events(previous, new, outcome, repository),
                       delay=self._next_delay(outcome))

    def _look(self, spec: SnapshotSpec, snap: str, previous: dict[str, Any]
              ) -> SnapshotObservation:
        """One look at the snapshot: start or adopt it first if not done yet."""
        with self.references.engine(spec.cluster_ref.name) as engine:
            service = SnapshotService(engine)
            if previous.get("adopted") is None:
                return service.start_or_adopt(spec, snap, owner_of(self.namespace, self.name))
            return service.observe(spec.repository.name, snap)

    def _next_delay(self, outcome: SnapshotObservation | FerryError) -> float:
        if isinstance(outcome, FerryError):
            self.failures += 1
            return retry_delay(outcome, self.failures)
        self.failures = 0
        delay = poll_delay(self.polls)
        self.polls += 1
        return delay

    def close(self) -> None:
        pass


def delete_snapshot(references: References, name: str, spec: SnapshotSpec, snap: str,
                    status: Mapping[str, Any]) -> str:
    """Delete the snapshot if the resource owns it (by the owner tag, else by the uuid
    and start time its ``status`` recorded), and wait until it is gone (blocking).
    Returns "Deleted", "NotFound" or "NotOwned"; raises a FerryError (a Cluster that is
    gone, unreachable, a deletion still pending) that a later try may get past."""
    with references.engine(spec.cluster_ref.name) as engine:
        return SnapshotService(engine).delete(
            spec.repository.name, snap, owner_of(references.namespace, name),
            status.get("adopted"),
            started=(status.get("snapshotUuid"), status.get("startTime")))


def deletion_retry_delay(retry: int, elapsed: float, limit: float) -> float:
    """Seconds before the next try of a failed deletion: backing off from 2 s up to
    30 s, and never past the time left before it gives up (but at least 1 s)."""
    return min(DELETE_RETRY_MAX, backoff.delay(retry, base=DELETE_RETRY_FIRST,
                                               cap=DELETE_RETRY_MAX),
               max(1.0, limit - elapsed))
