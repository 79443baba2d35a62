"""kubectl and GitOps conventions in the status rules: the text printer columns show,
kstatus' Reconciling/Stalled conditions of every kind, the scale subresource's selector.
(What kstatus itself makes of statuses the operator wrote: test_argocd.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from ferry.api import units
from ferry.api.backfill import BackfillSpec, BackfillStatus
from ferry.api.cluster import ClusterSpec
from ferry.api.common import dump_status
from ferry.conditions import get_condition
from ferry.errors import AuthenticationFailed, ClusterUnreachable, InvalidSpec
from ferry.services.backfill.deployment import worker_deployment
from ferry.services.backfill.status import (
    conditions_for,
    planned_progress,
    progress,
    restore_progress,
    shown,
    worker_selector,
)
from ferry.services.backfill.workitems import Summary
from ferry.services.cluster.service import ClusterObservation
from ferry.services.cluster.status import build_status
from ferry.settings import OperatorOptions


def test_durations_sizes_percent_and_rates_as_text() -> None:
    assert [units.duration(s) for s in (0, 42, 303, 3720, 183600)] == [
        "0s", "42s", "5m03s", "1h02m", "2d03h"]
    assert [units.size(b) for b in (0, 512, 1536, 12.3 * 2**20, 1.2 * 2**30, 10 * 2**30)] == [
        "0B", "512B", "1.5KiB", "12MiB", "1.2GiB", "10GiB"]
    assert [units.percent(p) for p in (0.0, 42.5, 99.94, 100.0)] == ["0%", "42.5%", "99.9%",
                                                                     "100%"]
    assert [units.count_rate(r) for r in (850, 999.7, 1234.5, 34000)] == [
        "850/s", "1k/s", "1.2k/s", "34k/s"]
    assert units.byte_rate(12 * 2**20) == "12MiB/s"


def test_backfill_progress_carries_its_figures_as_text() -> None:
    running = progress(5000, Summary(docs_done=1000), 12.5)
    assert (running["completion"], running["rate"], running["eta"]) == ("20%", "12/s",
                                                                        "5m20s")
    assert planned_progress(7) == {"docsTotal": 7, "docsMigrated": 0, "percent": 0.0,
                                   "completion": "0%"}
    restoring = restore_progress(100, 40, False, None, 0, 1, 2)
    assert restoring["completion"] == "40%" and "eta" not in restoring
    # A text whose figure went goes with it (a stale ETA would show in kubectl get).
    assert "eta" not in shown({**running, "etaSeconds": None})
    assert shown({"percent": 100.0, "etaSeconds": 0})["eta"] == "0s"
    BackfillStatus.model_validate({"progress": running})


def _kstatus(conditions: list[dict[str, Any]]) -> tuple[str, str]:
    reconciling = get_condition(conditions, "Reconciling")
    stalled = get_condition(conditions, "Stalled")
    assert reconciling is not None and stalled is not None
    return reconciling["status"], stalled["status"]


@pytest.mark.parametrize(("phase", "expected"), [
    ("Pending", ("True", "False")), ("Planning", ("True", "False")),
    ("MigratingMetadata", ("True", "False")), ("Running", ("True", "False")),
    ("Verifying", ("True", "False")),
    # Waiting for a person by design, not stuck: neither.
    ("Paused", ("False", "False")), ("Evaluated", ("False", "False")),
    ("Completed", ("False", "False")), ("CompletedWithErrors", ("False", "False")),
    ("Failed", ("False", "True")),
])
def test_backfill_reconciling_and_stalled(phase: str, expected: tuple[str, str]) -> None:
    conds = conditions_for([], phase, "TargetReadOnly", "the target is read-only", 3)
    assert _kstatus(conds) == expected
    stalled = get_condition(conds, "Stalled")
    assert stalled is not None and stalled["observedGeneration"] == 3
    # The True one carries the reason a person acts on.
    if expected == ("False", "True"):
        assert stalled["reason"] == "TargetReadOnly"
    dump_status(BackfillStatus, {"phase": phase, "conditions": conds})


def _observation(health: str) -> ClusterObservation:
    return ClusterObservation("opensearch", "opensearch", "2.19.3", "c", health, 1, 1, 5,
                              0 if health == "green" else 3,
                              {"count": 1, "documents": 2, "storeBytes": 3},
                              {"count": 0, "documents": 0, "storeBytes": 0})


@pytest.mark.parametrize(("outcome", "phase", "expected"), [
    (_observation("green"), "Ready", ("False", "False")),
    (_observation("yellow"), "Ready", ("False", "False")),
    (_observation("red"), "Degraded", ("False", "False")),
    (ClusterUnreachable("connection refused"), "Unreachable", ("True", "False")),
    (AuthenticationFailed("the cluster refused the credentials"), "AuthenticationFailed",
     ("False", "True")),
    (InvalidSpec("spec does not parse"), "Invalid", ("False", "True")),
], ids=lambda v: v if isinstance(v, str) else None)
def test_cluster_reconciling_and_stalled(outcome: Any, phase: str,
                                         expected: tuple[str, str]) -> None:
    status = build_status({}, ClusterSpec(endpoint="http://127.0.0.1:9200"), 2, outcome)
    assert status["phase"] == phase
    assert _kstatus(status["conditions"]) == expected


def test_backfill_selector_selects_the_worker_pods() -> None:
    deployment = worker_deployment("ns", "orders", "uid", BackfillSpec.model_validate(
        {"sourceRef": {"name": "a"}, "targetRef": {"name": "b"}, "executor": "pods"}),
        OperatorOptions(worker_image="registry.example/ferry:1"))
    selector = dict(term.split("=") for term in worker_selector("orders").split(","))
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
