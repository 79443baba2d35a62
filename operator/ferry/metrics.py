"""Prometheus metrics of the operator and of `ferry worker`, served on /metrics.

Names follow Prometheus' conventions: base units as suffixes (``_bytes``, ``_seconds``),
``_total`` only on counters, ratios from 0 to 1 as ``_ratio``, a state (phase, health) as
one series per possible state valued 1 or 0, and no rates: PromQL's ``rate()`` over the
counters gives those. ``_created`` series are off (they double the series count and
no dashboard reads them).

Two sources:

- resource figures, read at scrape time from the latest status of every Ferry resource
  (kept from the watch by ``handlers/observe.py``), so they say what the status says and
  cost nothing between scrapes;
- what happens, counted as it happens: warnings (``events.py``), and, from the one
  request path to a search cluster (``clients/engine.py``), its busy or failing answers
  (HTTP 429, 5xx) and the latency of its bulk requests, per Cluster.

When a resource is deleted, :func:`forget` drops every series that names it.
"""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ferry import __version__
from ferry.api.phases import BackfillPhases, ClusterPhases, SnapshotPhases, phase_names

log = logging.getLogger("ferry.metrics")

disable_created_metrics()

BUILD_INFO = Info("ferry_build", "The running Ferry: version and Python version.")
BUILD_INFO.info({"version": __version__, "python_version": platform.python_version()})

RECONCILE_ERRORS = Counter(
    "ferry_reconcile_errors", "Warnings raised while reconciling, by reason.",
    ["kind", "namespace", "name", "reason"])

ERROR_RESPONSES = Counter(
    "ferry_cluster_error_responses",
    "Answers of a Cluster that say it is busy or failing (HTTP 429 and 5xx), by code.",
    ["namespace", "name", "code"])

# From a fast local bulk (milliseconds) to one that queues behind merges (a minute).
BULK_DURATION = Histogram(
    "ferry_cluster_bulk_request_duration_seconds",
    "Duration of each _bulk request to a Cluster, answered or failed.",
    ["namespace", "name"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))

PHASES = {"Cluster": sorted(phase_names(ClusterPhases)),
          "Snapshot": sorted(phase_names(SnapshotPhases)),
          "Backfill": sorted(phase_names(BackfillPhases))}
HEALTH_COLORS = ("green", "yellow", "red", "unknown")
# status.workItems without its total (a sum PromQL can take).
WORK_ITEM_STATES = ("waiting", "inProgress", "completed")

_lock = threading.Lock()
_statuses: dict[tuple[str, str, str], dict[str, Any]] = {}


def remember(kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """The latest status of a resource, for the next scrape."""
    with _lock:
        _statuses[(kind, namespace, name)] = status


def forget(kind: str, namespace: str, name: str) -> None:
    """A deleted resource: drop its status and every counted series that names it."""
    with _lock:
        _statuses.pop((kind, namespace, name), None)
    RECONCILE_ERRORS.remove_by_labels({"kind": kind, "namespace": namespace, "name": name})
    if kind == "Cluster":
        for metric in (ERROR_RESPONSES, BULK_DURATION):
            metric.remove_by_labels({"namespace": namespace, "name": name})


def observe_request(cluster: tuple[str, str], path: str, status: int,
                    seconds: float) -> None:
    """One request to a Cluster (namespace, name) ended: ``status`` is the HTTP status of
    an error answer (the client raises on those), 0 for a success or no answer at all.
    Called by the engine's one request path."""
    namespace, name = cluster
    if status == 429 or status >= 500:
        ERROR_RESPONSES.labels(namespace=namespace, name=name, code=str(status)).inc()
    if path.rstrip("/").endswith("_bulk"):
        BULK_DURATION.labels(namespace=namespace, name=name).observe(seconds)


def _snapshot() -> list[tuple[str, str, str, dict[str, Any]]]:
    with _lock:
        return [(k, ns, n, s) for (k, ns, n), s in _statuses.items()]


def _state_set(family: GaugeMetricFamily, labels: list[str], states: Iterable[str],
               current: str | None) -> None:
    for state in states:
        family.add_metric([*labels, state], 1.0 if state == current else 0.0)


def _ratio(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0


class StatusCollector(Collector):
    """Every resource figure, from the statuses :func:`remember` keeps."""

    def collect(self) -> Iterator[Any]:
        labels = ["namespace", "name"]

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*labels, *extra])

        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=labels)

        phase = GaugeMetricFamily(
            "ferry_resource_phase", "1 for the current phase of each Ferry resource, 0 for "
            "the kind's other phases.", labels=["kind", *labels, "phase"])
        ready = gauge("ferry_cluster_ready", "1 if the Cluster is Ready, else 0.")
        health = gauge("ferry_cluster_health_status",
                       "1 for the Cluster's health color (unknown: not answered), 0 for "
                       "the others.", ("color",))
        cluster_docs = gauge("ferry_cluster_documents", "Documents in the Cluster's user "
                             "indices.")
        cluster_bytes = gauge("ferry_cluster_store_bytes", "Store size of the Cluster's "
                              "user indices.")
        snap_ratio = gauge("ferry_snapshot_progress_ratio", "Snapshot progress, 0 to 1.")
        snap_done = gauge("ferry_snapshot_copied_bytes", "Bytes the snapshot has copied.")
        snap_size = gauge("ferry_snapshot_incremental_size_bytes",
                          "Bytes the snapshot copies (what the repository lacked).")
        migrated = counter("ferry_backfill_documents_migrated", "Documents the Backfill "
                           "has written.")
        failed = counter("ferry_backfill_documents_failed", "Documents the target rejected.")
        copied = counter("ferry_backfill_migrated_bytes", "Source bytes the Backfill has "
                         "written.")
        planned = gauge("ferry_backfill_planned_documents", "Documents the Backfill copies.")
        ratio = gauge("ferry_backfill_progress_ratio", "Backfill progress, 0 to 1.")
        items = gauge("ferry_backfill_work_items", "Work items by state.", ("state",))
        workers = gauge("ferry_backfill_workers", "Active workers.")
        for kind, ns, name, status in _snapshot():
            key = [ns, name]
            _state_set(phase, [kind, *key], PHASES.get(kind, ()), status.get("phase"))
            if kind == "Cluster":
                ready.add_metric(key, 1 if status.get("phase") == ClusterPhases.READY else 0)
                color = status.get("health") if status.get("health") in HEALTH_COLORS \
                    else "unknown"
                _state_set(health, key, HEALTH_COLORS, color)
                indices = status.get("indices") or {}
                if indices:
                    cluster_docs.add_metric(key, indices.get("documents", 0))
                    cluster_bytes.add_metric(key, indices.get("storeBytes", 0))
            elif kind == "Snapshot":
                progress = status.get("progress") or {}
                for family, value in ((snap_ratio, _ratio(progress.get("percent"))),
                                      (snap_done, progress.get("bytesDone")),
                                      (snap_size, progress.get("bytesTotal"))):
                    if value is not None:
                        family.add_metric(key, value)
            elif kind == "Backfill":
                progress = status.get("progress") or {}
                migrated.add_metric(key, progress.get("docsMigrated") or 0)
                failed.add_metric(key, progress.get("docsFailed") or 0)
                copied.add_metric(key, progress.get("bytesMigrated") or 0)
                for family, value in ((planned, progress.get("docsTotal")),
                                      (ratio, _ratio(progress.get("percent")))):
                    if value is not None:
                        family.add_metric(key, value)
                counts = status.get("workItems") or {}
                if counts:
                    for state in WORK_ITEM_STATES:
                        items.add_metric([*key, state], counts.get(state) or 0)
                workers.add_metric(key, status.get("workers") or 0)
        yield from (phase, ready, health, cluster_docs, cluster_bytes, snap_ratio, snap_done,
                    snap_size, migrated, failed, copied, planned, ratio, items, workers)


REGISTRY.register(StatusCollector())


def serve(port: int, address: str = "0.0.0.0") -> bool:
    """Serve /metrics; a port in use is logged, never fatal to the operator."""
    if port <= 0:
        return False
    try:
        start_http_server(port, addr=address)
    except OSError as exc:
        log.error("metrics endpoint not started on port %d: %s", port, exc)
        return False
    log.info("metrics on http://%s:%d/metrics", address, port)
    return True
