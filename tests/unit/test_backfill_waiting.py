"""A Backfill meeting a retryable error (a Cluster that does not answer): it keeps its
phase, names the error in its conditions, says it in one event per outage — not one
per retry — and looks again sooner first, then backing off."""

from __future__ import annotations

from ferry.api.phases import BackfillPhases as P
from ferry.conditions import get_condition
from ferry.errors import ClusterUnreachable, FerryError
from ferry.services.backfill.reconciler import RETRY_CAP_SECONDS, STEP_SECONDS, waiting
from ferry.services.backfill.status import conditions_for

DOWN = ClusterUnreachable("the target Cluster target does not answer", code="TargetUnreachable")


def copying() -> dict:
    return {"phase": P.RUNNING,
            "conditions": conditions_for([], P.RUNNING, "Copying", "10/20 documents", 3)}


def test_the_phase_stays_and_the_conditions_name_the_outage() -> None:
    out = waiting(copying(), P.RUNNING, 3, DOWN, 1)
    assert out.status is not None and out.status["phase"] == P.RUNNING
    progressing = get_condition(out.status["conditions"], "Progressing")
    ready = get_condition(out.status["conditions"], "Ready")
    assert progressing is not None and ready is not None
    assert (progressing["status"], progressing["reason"]) == ("True", "TargetUnreachable")
    assert (ready["status"], ready["reason"]) == ("False", "TargetUnreachable")
    assert get_condition(out.status["conditions"], "Failed")["status"] == "False"  # type: ignore[index]


def test_one_event_per_outage_not_per_retry() -> None:
    first = waiting(copying(), P.RUNNING, 3, DOWN, 1)
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "TargetUnreachable")]
    assert first.status is not None
    again = waiting(first.status, P.RUNNING, 3, DOWN, 2)
    assert again.events == []
    other = ClusterUnreachable("the source Cluster source does not answer",
                               code="SourceUnreachable")
    assert [e.reason for e in waiting(first.status, P.RUNNING, 3, other, 3).events] == \
        ["SourceUnreachable"]


def test_retries_back_off_from_a_step_to_the_cap() -> None:
    delays = [waiting(copying(), P.RUNNING, 3, DOWN, n).delay for n in range(1, 9)]
    assert delays[0] <= STEP_SECONDS * 1.1
    assert delays[2] > delays[0] * 3  # four times the first, give or take the jitter
    assert max(delays) <= RETRY_CAP_SECONDS * 1.1
    assert delays[-1] >= RETRY_CAP_SECONDS * 0.9


def test_waiting_for_a_reference_before_anything_started_is_not_progress() -> None:
    missing = FerryError("Cluster missing not found", code="ClusterNotFound")
    out = waiting({}, P.PENDING, 1, missing, 1)
    assert out.status is not None and out.status["phase"] == P.PENDING
    conds = {c["type"]: (c["status"], c["reason"]) for c in out.status["conditions"]}
    assert conds["Progressing"] == ("False", "ClusterNotFound")
    assert conds["Ready"] == ("False", "ClusterNotFound")
    assert conds["Reconciling"] == ("True", "ClusterNotFound")
    assert conds["Failed"][0] == "False"
