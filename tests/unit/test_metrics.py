"""The metrics Ferry exports, read the way Prometheus reads them (the exposition text of
the process's registry, parsed by prometheus_client's own parser): names and types,
state sets, ratios, the per-Cluster request metrics, and series that go with their
resource."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ferry import __version__, metrics


def scrape() -> dict[str, tuple[str, list[Any]]]:
    """family name → (type, samples), as Prometheus would see them."""
    text = generate_latest(REGISTRY).decode()
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


def samples(series: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of ``series`` whose labels include ``labels``."""
    out = {}
    for _, family in scrape().values():
        for s in family:
            if s.name == series and labels.items() <= s.labels.items():
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


@pytest.fixture
def ns() -> Iterator[str]:
    namespace = f"ns-{uuid.uuid4().hex[:6]}"
    yield namespace
    for kind in ("Cluster", "Snapshot", "Backfill"):
        for name in ("src", "snap", "copy"):
            metrics.forget(kind, namespace, name)


def test_build_info_names_the_version() -> None:
    (value,) = samples("ferry_build_info", version=__version__).values()
    assert value == 1.0


def test_no_created_series_and_no_rate_or_percent_gauges(ns: str) -> None:
    metrics.remember("Backfill", ns, "copy", {"phase": "Running", "progress": {
        "docsMigrated": 10, "docsPerSecond": 5.0, "percent": 50.0}})
    metrics.RECONCILE_ERRORS.labels(kind="Backfill", namespace=ns, name="copy",
                                    reason="X").inc()
    names = {s.name for _, family in scrape().values() for s in family}
    assert not [n for n in names if n.endswith("_created")]
    assert not [n for n in names if "per_second" in n or "percent" in n]


def test_cluster_phase_and_health_are_state_sets(ns: str) -> None:
    metrics.remember("Cluster", ns, "src", {"phase": "Ready", "health": "yellow",
                                            "indices": {"documents": 7, "storeBytes": 900}})
    phases = samples("ferry_resource_phase", namespace=ns, name="src")
    assert {dict(k)["phase"]: v for k, v in phases.items()} == {
        "Pending": 0, "Ready": 1, "Degraded": 0, "Unreachable": 0,
        "AuthenticationFailed": 0, "Invalid": 0}
    health = samples("ferry_cluster_health_status", namespace=ns, name="src")
    assert {dict(k)["color"]: v for k, v in health.items()} == {
        "green": 0, "yellow": 1, "red": 0, "unknown": 0}
    assert list(samples("ferry_cluster_store_bytes", namespace=ns).values()) == [900]
    assert list(samples("ferry_cluster_ready", namespace=ns).values()) == [1]
    # No health answered yet: unknown.
    metrics.remember("Cluster", ns, "src", {"phase": "Unreachable"})
    health = samples("ferry_cluster_health_status", namespace=ns, name="src")
    assert {dict(k)["color"] for k, v in health.items() if v == 1} == {"unknown"}


def test_progress_is_a_ratio_and_counters_end_in_total(ns: str) -> None:
    metrics.remember("Backfill", ns, "copy", {"phase": "Running", "workers": 2,
                                              "workItems": {"total": 4, "completed": 1,
                                                            "inProgress": 2, "waiting": 1},
                                              "progress": {"docsTotal": 200,
                                                           "docsMigrated": 50,
                                                           "docsFailed": 1,
                                                           "bytesMigrated": 4096,
                                                           "percent": 25.0}})
    metrics.remember("Snapshot", ns, "snap", {"phase": "InProgress", "progress": {
        "percent": 40.0, "bytesDone": 400, "bytesTotal": 1000}})
    families = scrape()
    assert families["ferry_backfill_documents_migrated"][0] == "counter"
    assert list(samples("ferry_backfill_documents_migrated_total", namespace=ns).values()
                ) == [50]
    assert list(samples("ferry_backfill_migrated_bytes_total", namespace=ns).values()
                ) == [4096]
    assert list(samples("ferry_backfill_progress_ratio", namespace=ns).values()) == [0.25]
    assert list(samples("ferry_backfill_planned_documents", namespace=ns).values()) == [200]
    items = samples("ferry_backfill_work_items", namespace=ns)
    assert {dict(k)["state"]: v for k, v in items.items()} == {
        "completed": 1, "inProgress": 2, "waiting": 1}
    assert list(samples("ferry_snapshot_progress_ratio", namespace=ns).values()) == [0.4]
    assert list(samples("ferry_snapshot_copied_bytes", namespace=ns).values()) == [400]
    assert list(samples("ferry_snapshot_incremental_size_bytes", namespace=ns).values()
                ) == [1000]


def test_busy_answers_are_counted_per_cluster_and_bulk_requests_timed(ns: str) -> None:
    cluster = (ns, "src")
    for status in (429, 429, 503, 400, 404, 0):
        metrics.observe_request(cluster, "/idx/_search", status, 0.01)
    metrics.observe_request(cluster, "/_bulk", 0, 0.3)
    metrics.observe_request(cluster, "/_bulk", 502, 12.0)
    errors = samples("ferry_cluster_error_responses_total", namespace=ns, name="src")
    assert {dict(k)["code"]: v for k, v in errors.items()} == {"429": 2, "503": 1,
                                                               "502": 1}
    assert list(samples("ferry_cluster_bulk_request_duration_seconds_count",
                        namespace=ns).values()) == [2]
    buckets = samples("ferry_cluster_bulk_request_duration_seconds_bucket", namespace=ns)
    by_bound = {dict(k)["le"]: v for k, v in buckets.items()}
    assert by_bound["0.25"] == 0 and by_bound["0.5"] == 1 and by_bound["30.0"] == 2


def test_a_deleted_resource_takes_its_series_along(ns: str) -> None:
    metrics.remember("Cluster", ns, "src", {"phase": "Ready", "health": "green"})
    metrics.remember("Cluster", ns, "other", {"phase": "Ready", "health": "green"})
    metrics.observe_request((ns, "src"), "/_bulk", 429, 0.1)
    metrics.RECONCILE_ERRORS.labels(kind="Cluster", namespace=ns, name="src",
                                    reason="ConnectionRefused").inc()
    metrics.forget("Cluster", ns, "src")
    for series in ("ferry_resource_phase", "ferry_cluster_ready",
                   "ferry_cluster_health_status", "ferry_cluster_error_responses_total",
                   "ferry_cluster_bulk_request_duration_seconds_count",
                   "ferry_reconcile_errors_total"):
        assert samples(series, namespace=ns, name="src") == {}, series
    assert samples("ferry_cluster_ready", namespace=ns, name="other")
    metrics.forget("Cluster", ns, "other")
