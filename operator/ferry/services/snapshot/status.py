"""From one look at a snapshot to a Snapshot's status, conditions and events.

Pure functions: no I/O, so the rules (which engine state is which phase, which
conditions each phase sets, how progress is figured, what is an event-worthy
transition, how fast to poll) are easy to read and to test.
"""

from __future__ import annotations

from typing import Any

from ferry.api import units
from ferry.api.common import MAX_STATUS_LIST
from ferry.api.phases import Conditions as C
from ferry.conditions import from_millis, get_condition, set_condition
from ferry.errors import FerryError
from ferry.services import backoff
from ferry.services.outcome import Event
from ferry.services.snapshot.repository import Verification
from ferry.services.snapshot.service import Progress, SnapshotInfo, SnapshotObservation

MAX_INDICES = MAX_STATUS_LIST * 5
TERMINAL_PHASES = frozenset({"Completed", "PartiallyFailed", "Failed"})
# The engine's terminal states and the phase each one is.
PHASES = {"SUCCESS": "Completed", "PARTIAL": "PartiallyFailed", "FAILED": "Failed",
          "INCOMPATIBLE": "Failed"}
# The state of a snapshot that was started but could not be looked at this time: it
# goes on inside the cluster, unseen; the phase stays what it was.
UNOBSERVED = "Unobserved"
CONDITION_TYPES = (C.READY, C.PROGRESSING, C.FAILED, C.RECONCILING, C.STALLED)
# The one place that decides the Ready / Progressing / Failed statuses of each state a
# look can end in, and kstatus' Reconciling / Stalled: Reconciling while the snapshot is
# on its way (Pending retries by itself; Unobserved goes on unseen), Stalled once it
# ended failed (PartiallyFailed, Failed: a new Snapshot is what moves on). The
# conditions share that look's reason and message.
CONDITIONS: dict[str, tuple[str, str, str, str, str]] = {
    "Pending": ("False", "False", "False", "True", "False"),
    "InProgress": ("False", "True", "False", "True", "False"),
    UNOBSERVED: ("False", "Unknown", "False", "True", "False"),
    "Completed": ("True", "False", "False", "False", "False"),
    "PartiallyFailed": ("False", "False", "True", "False", "True"),
    "Failed": ("False", "False", "True", "False", "True"),
}
# Polling: fast at first (a small snapshot ends in seconds), then backing off.
POLL_FIRST, POLL_FACTOR, POLL_MAX = 2.0, 1.5, 30.0
# Retrying a look that failed but may succeed next time: 5 s, doubling, up to POLL_MAX.
RETRY_FIRST = 5.0
# How often a setup error nothing but a person can fix (a repository conflict, a
# rejected password) is tried again.
SLOW_RETRY = 300.0


def poll_delay(polls: int) -> float:
    """Seconds before the next look: 2, 3, 4.5, ... up to 30."""
    return backoff.delay(polls, base=POLL_FIRST, cap=POLL_MAX, factor=POLL_FACTOR,
                         fraction=0.0)


def retry_delay(error: FerryError, failures: int) -> float:
    """Seconds before trying again after the ``failures``-th failed look in a row."""
    if not error.retryable:
        return SLOW_RETRY
    return backoff.delay(failures - 1, base=RETRY_FIRST, cap=POLL_MAX)


def set_conditions(conditions: list[dict[str, Any]], generation: int | None, state: str,
                   reason: str, message: str) -> list[dict[str, Any]]:
    """Ready, Progressing, Failed, Reconciling and Stalled as ``CONDITIONS`` has them
    for ``state``."""
    for type_, status in zip(CONDITION_TYPES, CONDITIONS[state], strict=True):
        conditions = set_condition(conditions, type_, status, reason, message, generation)
    return conditions


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
    return units.with_texts({k: v for k, v in out.items() if v is not None}, TEXTS)


# The progress figures as text too, as printer columns show them.
TEXTS: units.Texts = {"completion": ("percent", units.percent),
                      "size": ("bytesTotal", units.size),
                      "rate": ("bytesPerSecond", units.byte_rate),
                      "eta": ("etaSeconds", units.duration)}


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


def _summary(info: SnapshotInfo) -> str:
    shards = f"{info.shards_successful or 0}/{info.shards_total or 0} shards"
    return f"snapshot {info.name}: {len(info.indices)} indices, {shards}"


def _error_phase(previous: dict[str, Any], error: FerryError) -> tuple[str, str]:
    """(phase, condition state) after a look that failed."""
    started = previous.get("adopted") is not None
    if started and error.code != "SnapshotMissing":
        # The snapshot goes on inside the cluster while we cannot look at it.
        return previous.get("phase") or "InProgress", UNOBSERVED
    if error.retryable:
        return "Pending", "Pending"
    return "Failed", "Failed"


def _observed(status: dict[str, Any], previous: dict[str, Any],
              outcome: SnapshotObservation) -> None:
    """The figures of one look, into ``status``."""
    info, progress = outcome.info, outcome.progress
    if outcome.adopted is not None:
        status["adopted"] = outcome.adopted
    status["snapshotUuid"] = info.uuid or previous.get("snapshotUuid")
    if info.version:
        status["engineVersion"] = info.version
    if info.start_ms:
        status["startTime"] = from_millis(info.start_ms)
    if info.terminal and info.end_ms:
        status["completionTime"] = from_millis(info.end_ms)
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


def _phase_reason(phase: str, info: SnapshotInfo, percent: float | None) -> tuple[str, str]:
    """(reason, message) of a phase the engine reported."""
    if phase == "InProgress":
        done = f"{percent}% done" if percent is not None else "starting"
        return "InProgress", f"snapshot {info.name} in progress: {done}"
    if phase == "Completed":
        return "Completed", f"{_summary(info)} completed"
    if phase == "PartiallyFailed":
        first = info.failures[0].get("reason") if info.failures else None
        return "PartiallyFailed", (f"{_summary(info)}: {info.shards_failed or 0} shards "
                                   "failed" + (f"; first: {first}" if first else ""))
    reason = info.reason or f"the engine reports state {info.state}"
    return "SnapshotFailed", f"snapshot {info.name} failed: {reason}"


def build_status(previous: dict[str, Any], generation: int | None, snapshot_name: str,
                 outcome: SnapshotObservation | FerryError) -> dict[str, Any]:
    """The whole new status after one look (or one failed attempt to look)."""
    status = {k: v for k, v in previous.items() if k != "conditions"}
    status["observedGeneration"] = generation
    status["snapshotName"] = snapshot_name
    if isinstance(outcome, FerryError):
        phase, state = _error_phase(previous, outcome)
        reason, message = outcome.code, outcome.message
    else:
        _observed(status, previous, outcome)
        phase = state = PHASES.get(outcome.info.state, "InProgress")
        reason, message = _phase_reason(phase, outcome.info,
                                        status["progress"].get("percent"))
    status["phase"] = phase
    status["message"] = message
    status["conditions"] = set_conditions(list(previous.get("conditions") or []),
                                          generation, state, reason, message)
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
                      outcome: SnapshotObservation | FerryError, repository: str
                      ) -> list[Event]:
    """Events for changes a person cares about, never one per poll."""
    events: list[Event] = []
    snap = new.get("snapshotName")
    if isinstance(outcome, SnapshotObservation):
        if outcome.repository_registered:
            events.append(Event.normal(
                "RepositoryRegistered",
                f"registered and verified snapshot repository {repository}"))
        if outcome.started:
            events.append(Event.normal(
                "Started", f"snapshot {snap} started in repository {repository}"))
        elif outcome.adopted:
            events.append(Event.normal(
                "Adopted", f"snapshot {snap} already existed in repository {repository}; "
                "it is followed, not started again"))
    old_ready = get_condition(previous.get("conditions"), "Ready")
    new_ready = get_condition(new.get("conditions"), "Ready")
    if new_ready is not None and (old_ready is None
                                  or old_ready["reason"] != new_ready["reason"]
                                  or old_ready["status"] != new_ready["status"]):
        reason, message = new_ready["reason"], new_ready["message"]
        if reason == "Completed":
            events.append(Event.normal("Completed", message))
        elif reason != "InProgress":
            events.append(Event.warning(reason, message))
    old_verified = get_condition(previous.get("conditions"), "Verified")
    new_verified = get_condition(new.get("conditions"), "Verified")
    if new_verified is not None and (old_verified is None
                                     or old_verified["reason"] != new_verified["reason"]):
        make = Event.warning if new_verified["status"] == "False" else Event.normal
        events.append(make(new_verified["reason"], new_verified["message"]))
    return events
