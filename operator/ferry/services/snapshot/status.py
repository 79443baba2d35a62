"""From one look at a snapshot to a Snapshot's status, conditions and events.

Pure functions: no I/O, so the rules (which engine state is which phase, how progress
is figured, what is an event-worthy transition, how fast to poll) are easy to read and
to test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ferry.api.common import MAX_STATUS_LIST
from ferry.conditions import get_condition, set_condition
from ferry.errors import FerryError
from ferry.services.snapshot.service import Observation, Progress, SnapshotInfo, Verification

MAX_INDICES = MAX_STATUS_LIST * 5
TERMINAL_PHASES = frozenset({"Completed", "PartiallyFailed", "Failed"})
# The engine's terminal states and the phase each one is.
PHASES = {"SUCCESS": "Completed", "PARTIAL": "PartiallyFailed", "FAILED": "Failed",
          "INCOMPATIBLE": "Failed"}
# Polling: fast at first (a small snapshot ends in seconds), then backing off.
POLL_FIRST, POLL_FACTOR, POLL_MAX = 2.0, 1.5, 30.0
# How often a setup error nothing but a person can fix (a repository conflict, a
# rejected password) is tried again.
SLOW_RETRY = 300.0


@dataclass
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def poll_delay(polls: int) -> float:
    """Seconds before the next look: 2, 3, 4.5, ... up to 30."""
    return min(POLL_MAX, POLL_FIRST * POLL_FACTOR ** max(0, polls))


def retry_delay(error: FerryError, failures: int) -> float:
    if not error.retryable:
        return SLOW_RETRY
    return min(POLL_MAX, 5.0 * 2 ** max(0, failures - 1))


def _rfc3339(millis: int | None) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def percent_done(info: SnapshotInfo, progress: Progress | None) -> float | None:
    """By bytes when the engine reports them (what this snapshot copies), else by
    shards. Never 100 before the engine says the snapshot ended."""
    if info.state in ("SUCCESS", "PARTIAL"):
        return 100.0
    if progress is None:
        return None
    if progress.bytes_total > 0:
        value = 100.0 * progress.bytes_done / progress.bytes_total
    elif progress.shards_total > 0:
        value = 100.0 * progress.shards_done / progress.shards_total
    else:
        return 0.0
    if not info.terminal:
        value = min(value, 99.9)
    return round(value, 1)


def progress_fields(info: SnapshotInfo, progress: Progress | None) -> dict[str, Any]:
    out: dict[str, Any] = {"percent": percent_done(info, progress)}
    if progress is not None:
        out.update(shardsTotal=progress.shards_total, shardsDone=progress.shards_done,
                   shardsFailed=progress.shards_failed, bytesTotal=progress.bytes_total,
                   bytesDone=progress.bytes_done)
        if progress.time_ms > 0 and progress.bytes_done > 0:
            rate = progress.bytes_done / (progress.time_ms / 1000)
            out["bytesPerSecond"] = round(rate, 1)
            if not info.terminal and rate > 0:
                out["etaSeconds"] = int(max(0, progress.bytes_total - progress.bytes_done)
                                        / rate)
    if info.terminal and info.shards_total is not None:
        # The snapshot's own summary is final; _status may lag behind it.
        out["shardsTotal"] = info.shards_total
        out["shardsFailed"] = info.shards_failed or 0
        out["shardsDone"] = info.shards_successful or 0
    return {k: v for k, v in out.items() if v is not None}


def index_rows(info: SnapshotInfo, progress: Progress | None,
               documents: dict[str, int]) -> list[dict[str, Any]]:
    by_name = {i.name: i for i in (progress.indices if progress else [])}
    rows = []
    for name in info.indices[:MAX_INDICES]:
        row: dict[str, Any] = {"name": name}
        index = by_name.get(name)
        if index is not None:
            row.update(state=index.state, shardsTotal=index.shards_total,
                       shardsDone=index.shards_done, shardsFailed=index.shards_failed)
        if name in documents:
            row["documents"] = documents[name]
        rows.append(row)
    return rows


def failure_rows(info: SnapshotInfo) -> list[dict[str, Any]]:
    rows = []
    for failure in info.failures[:MAX_STATUS_LIST]:
        row: dict[str, Any] = {"reason": str(failure.get("reason") or "unknown")[:1024]}
        if failure.get("index"):
            row["index"] = failure["index"]
        if failure.get("shard_id") is not None:
            row["id"] = f"shard {failure['shard_id']}"
        rows.append(row)
    return rows


def _conditions(previous: list[dict[str, Any]], generation: int | None, *,
                ready: tuple[str, str, str], progressing: tuple[str, str, str],
                failed: tuple[str, str, str]) -> list[dict[str, Any]]:
    conditions = list(previous)
    for type_, (status, reason, message) in (("Ready", ready), ("Progressing", progressing),
                                             ("Failed", failed)):
        conditions = set_condition(conditions, type_, status, reason, message, generation)
    return conditions


def _summary(info: SnapshotInfo) -> str:
    shards = f"{info.shards_successful or 0}/{info.shards_total or 0} shards"
    return f"snapshot {info.name}: {len(info.indices)} indices, {shards}"


def build_status(previous: dict[str, Any], generation: int | None, snapshot_name: str,
                 outcome: Observation | FerryError) -> dict[str, Any]:
    """The whole new status after one look (or one failed attempt to look)."""
    status = {k: v for k, v in previous.items() if k not in ("conditions",)}
    status["observedGeneration"] = generation
    status["snapshotName"] = snapshot_name
    conditions = list(previous.get("conditions") or [])
    if isinstance(outcome, FerryError):
        started = previous.get("adopted") is not None
        if started and outcome.code != "SnapshotMissing":
            # The snapshot goes on inside the cluster while we cannot look at it.
            phase = previous.get("phase") or "InProgress"
            status["conditions"] = _conditions(
                conditions, generation,
                ready=("False", outcome.code, outcome.message),
                progressing=("Unknown", outcome.code, outcome.message),
                failed=("False", outcome.code, outcome.message))
        elif outcome.retryable:
            phase = "Pending"
            status["conditions"] = _conditions(
                conditions, generation,
                ready=("False", outcome.code, outcome.message),
                progressing=("False", outcome.code, outcome.message),
                failed=("False", outcome.code, outcome.message))
        else:
            phase = "Failed"
            status["conditions"] = _conditions(
                conditions, generation,
                ready=("False", outcome.code, outcome.message),
                progressing=("False", outcome.code, outcome.message),
                failed=("True", outcome.code, outcome.message))
        status["phase"] = phase
        status["message"] = outcome.message
        return status

    info, progress = outcome.info, outcome.progress
    if outcome.adopted is not None:
        status["adopted"] = outcome.adopted
    status["snapshotUuid"] = info.uuid or previous.get("snapshotUuid")
    if info.version:
        status["engineVersion"] = info.version
    if info.start_ms:
        status["startTime"] = _rfc3339(info.start_ms)
    if info.terminal and info.end_ms:
        status["completionTime"] = _rfc3339(info.end_ms)
    status["progress"] = progress_fields(info, progress)
    documents = {row["name"]: row["documents"] for row in previous.get("indices") or []
                 if row.get("documents") is not None}
    if outcome.documents is not None:
        # Indices without a bucket had no documents when counted.
        documents = {name: outcome.documents.get(name, 0) for name in info.indices}
        status["documents"] = sum(documents.values())
    status["indices"] = index_rows(info, progress, documents)
    status["indicesTotal"] = len(info.indices)
    status["failures"] = failure_rows(info)

    phase = PHASES.get(info.state, "InProgress")
    summary = _summary(info)
    if phase == "InProgress":
        percent = status["progress"].get("percent")
        done = f"{percent}% done" if percent is not None else "starting"
        message = f"snapshot {info.name} in progress: {done}"
        status["conditions"] = _conditions(
            conditions, generation, ready=("False", "InProgress", message),
            progressing=("True", "InProgress", message),
            failed=("False", "InProgress", message))
    elif phase == "Completed":
        message = f"{summary} completed"
        status["conditions"] = _conditions(
            conditions, generation, ready=("True", "Completed", message),
            progressing=("False", "Completed", message),
            failed=("False", "Completed", message))
    elif phase == "PartiallyFailed":
        first = info.failures[0].get("reason") if info.failures else None
        message = (f"{summary}: {info.shards_failed or 0} shards failed"
                   + (f"; first: {first}" if first else ""))
        status["conditions"] = _conditions(
            conditions, generation, ready=("False", "PartiallyFailed", message),
            progressing=("False", "PartiallyFailed", message),
            failed=("True", "PartiallyFailed", message))
    else:
        reason = info.reason or f"the engine reports state {info.state}"
        message = f"snapshot {info.name} failed: {reason}"
        status["conditions"] = _conditions(
            conditions, generation, ready=("False", "SnapshotFailed", message),
            progressing=("False", "SnapshotFailed", message),
            failed=("True", "SnapshotFailed", message))
    status["phase"] = phase
    status["message"] = message
    return status


def with_verification(status: dict[str, Any], verification: Verification,
                      generation: int | None) -> dict[str, Any]:
    out = dict(status)
    out["conditions"] = set_condition(list(status.get("conditions") or []), "Verified",
                                      verification.status, verification.reason,
                                      verification.message, generation)
    return out


def needs_verification(status: dict[str, Any]) -> bool:
    return (status.get("phase") in ("Completed", "PartiallyFailed")
            and get_condition(status.get("conditions"), "Verified") is None)


def settled(status: dict[str, Any]) -> bool:
    """Nothing left to watch: the snapshot ended (and was checked where it can be)."""
    return status.get("phase") in TERMINAL_PHASES and status.get("adopted") is not None \
        and not needs_verification(status)


def transition_events(previous: dict[str, Any], new: dict[str, Any],
                      outcome: Observation | FerryError, repository: str) -> list[Event]:
    """Events for changes a person cares about, never one per poll."""
    events: list[Event] = []
    snap = new.get("snapshotName")
    if isinstance(outcome, Observation):
        if outcome.repository_registered:
            events.append(Event("Normal", "RepositoryRegistered",
                                f"registered and verified snapshot repository {repository}"))
        if outcome.started:
            events.append(Event("Normal", "Started",
                                f"snapshot {snap} started in repository {repository}"))
        elif outcome.adopted:
            events.append(Event("Normal", "Adopted",
                                f"snapshot {snap} already existed in repository {repository}; "
                                "it is followed, not started again"))
    old_ready = get_condition(previous.get("conditions"), "Ready")
    new_ready = get_condition(new.get("conditions"), "Ready")
    if new_ready is not None and (old_ready is None
                                  or old_ready["reason"] != new_ready["reason"]
                                  or old_ready["status"] != new_ready["status"]):
        reason, message = new_ready["reason"], new_ready["message"]
        if reason == "Completed":
            events.append(Event("Normal", "Completed", message))
        elif reason != "InProgress":
            events.append(Event("Warning", reason, message))
    old_verified = get_condition(previous.get("conditions"), "Verified")
    new_verified = get_condition(new.get("conditions"), "Verified")
    if new_verified is not None and (old_verified is None
                                     or old_verified["reason"] != new_verified["reason"]):
        kind = "Warning" if new_verified["status"] == "False" else "Normal"
        events.append(Event(kind, new_verified["reason"], new_verified["message"]))
    return events
