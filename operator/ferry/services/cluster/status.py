"""From one health check's outcome to a Cluster's status, conditions (Ready, kstatus'
Reconciling and Stalled, InsecureTLS) and events.

Pure functions: no I/O, so the rules (what is Ready, what is an event-worthy
transition, when a status write is due) are easy to read and to test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ferry.api.cluster import ClusterSpec
from ferry.api.phases import ClusterPhases as P
from ferry.api.phases import Conditions as C
from ferry.conditions import get_condition, now, parse_time, remove_condition, set_condition
from ferry.errors import AuthenticationFailed, ClusterUnreachable, FerryError, ReferenceNotFound
from ferry.services.cluster.service import ClusterObservation
from ferry.services.outcome import Event

# lastCheckedTime alone is refreshed at most this often: a steady cluster costs one
# status write per this period, not one per check.
HEARTBEAT = timedelta(minutes=5)

STALLED_PHASES = frozenset({P.AUTHENTICATION_FAILED, P.INVALID})

_OBSERVED_FIELDS = ("engine", "distribution", "version", "clusterName", "health", "nodes",
                    "dataNodes", "activeShards", "unassignedShards", "indices", "systemIndices")


def phase_of_error(error: FerryError) -> str:
    if isinstance(error, AuthenticationFailed):
        return "AuthenticationFailed"
    if isinstance(error, ClusterUnreachable):
        return "Unreachable"
    if isinstance(error, ReferenceNotFound) or not error.retryable:
        return "Invalid"
    return "Unreachable"


def build_status(previous: dict[str, Any], spec: ClusterSpec, generation: int | None,
                 outcome: ClusterObservation | FerryError) -> dict[str, Any]:
    conditions = list(previous.get("conditions") or [])
    status: dict[str, Any] = {"observedGeneration": generation, "readOnly": spec.read_only,
                              "lastCheckedTime": now()}
    if isinstance(outcome, ClusterObservation):
        status.update(outcome.status_fields())
        if outcome.health == "red":
            phase, ready, reason = "Degraded", False, "HealthRed"
            message = (f"cluster health is red: {outcome.unassigned_shards} unassigned "
                       "shards, some primaries missing")
        elif outcome.health == "yellow":
            phase, ready, reason = "Ready", True, "HealthYellow"
            message = (f"{outcome.engine} {outcome.version} is reachable; health yellow "
                       f"({outcome.unassigned_shards} unassigned replica shards)")
        else:
            phase, ready, reason = "Ready", True, "Healthy"
            message = f"{outcome.engine} {outcome.version} is reachable and green"
    else:
        # Keep what was last observed (engine, version...) so a blip does not blank the
        # printer columns; health is unknown while unreachable.
        for key in _OBSERVED_FIELDS:
            if key in previous:
                status[key] = previous[key]
        status["health"] = None
        phase, ready, reason, message = phase_of_error(outcome), False, outcome.code, \
            outcome.message
    status["phase"] = phase
    status["message"] = message
    conditions = set_condition(conditions, C.READY, ready, reason, message, generation)
    # kstatus' pair: a cluster the operator cannot reach is retried (Reconciling); one
    # that refuses the credentials or is misconfigured waits for a person (Stalled); a
    # red one is neither (Ready=False: kstatus reads it as InProgress).
    reconciling, stalled = phase == P.UNREACHABLE, phase in STALLED_PHASES
    conditions = set_condition(conditions, C.RECONCILING, reconciling,
                               reason if reconciling else phase, message, generation)
    conditions = set_condition(conditions, C.STALLED, stalled, reason if stalled else phase,
                               message, generation)
    if spec.tls.insecure_skip_verify and spec.endpoint.startswith("https://"):
        conditions = set_condition(
            conditions, "InsecureTLS", True, "InsecureSkipVerify",
            "tls.insecureSkipVerify is set: the server certificate is not verified",
            generation)
    else:
        conditions = remove_condition(conditions, "InsecureTLS")
    status["conditions"] = conditions
    return status


# Figures that move on any live cluster (document counts, bytes as segments merge) are
# written at most once a minute on their own, so a busy but healthy cluster costs one
# status write a minute at most, however short its health-check interval.
FIGURES_REFRESH = timedelta(minutes=1)
_FIGURES = ("indices", "systemIndices")


def _without(status: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in keys and v is not None}


def write_due(previous: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether the new status must be written: a change other than the moving figures;
    the figures once a minute; the heartbeat every five minutes."""
    ignored = ("lastCheckedTime", *_FIGURES)
    if _without(previous, ignored) != _without(new, ignored):
        return True
    last = previous.get("lastCheckedTime")
    if not last:
        return True
    age = datetime.now(UTC) - parse_time(last)
    figures_moved = any(previous.get(k) != new.get(k) for k in _FIGURES)
    return age >= HEARTBEAT or (figures_moved and age >= FIGURES_REFRESH)


def transition_events(previous: dict[str, Any], new: dict[str, Any]) -> list[Event]:
    """Events for changes a person cares about, never for a steady state."""
    events: list[Event] = []
    old_ready = get_condition(previous.get("conditions"), "Ready")
    new_ready = get_condition(new.get("conditions"), "Ready")
    assert new_ready is not None
    changed = (old_ready is None or old_ready["status"] != new_ready["status"]
               or old_ready["reason"] != new_ready["reason"])
    if changed:
        events.append(Event("Normal" if new_ready["status"] == "True" else "Warning",
                            new_ready["reason"], new_ready["message"]))
    old_version = previous.get("version")
    if old_version and new.get("version") and old_version != new["version"]:
        events.append(Event("Normal", "VersionChanged",
                            f"engine version changed from {old_version} to {new['version']}"))
    if get_condition(new.get("conditions"), "InsecureTLS") and not get_condition(
            previous.get("conditions"), "InsecureTLS"):
        events.append(Event("Warning", "InsecureSkipVerify",
                            "tls.insecureSkipVerify is set: the server certificate is not "
                            "verified"))
    return events
