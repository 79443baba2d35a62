"""Prometheus metrics of the operator, served on /metrics.

Resource figures are read at scrape time from the latest status of every Ferry
resource (kept from the watch by a kopf event handler), so they always say what the
status says and cost nothing between scrapes. Warnings are counted as they happen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("ferry.metrics")

RECONCILE_ERRORS = Counter(
    "ferry_reconcile_errors", "Warnings raised while reconciling, by reason.",
    ["kind", "namespace", "name", "reason"])

_lock = threading.Lock()
_statuses: dict[tuple[str, str, str], dict[str, Any]] = {}


def remember(kind: str, namespace: str, name: str, status: dict[str, Any] | None) -> None:
    with _lock:
        if status is None:
            _statuses.pop((kind, namespace, name), None)
        else:
            _statuses[(kind, namespace, name)] = status


def _snapshot() -> list[tuple[str, str, str, dict[str, Any]]]:
    with _lock:
        return [(k, ns, n, s) for (k, ns, n), s in _statuses.items()]


class StatusCollector(Collector):
    def collect(self) -> Iterator[Any]:
        labels = ["namespace", "name"]
        phase = GaugeMetricFamily("ferry_resource_phase",
                                  "1 for the current phase of each Ferry resource.",
                                  labels=["kind", *labels, "phase"])
        ready = GaugeMetricFamily("ferry_cluster_ready", "1 if the Cluster is Ready.",
                                  labels=labels)
        health = GaugeMetricFamily("ferry_cluster_health",
                                   "Cluster health: 2 green, 1 yellow, 0 red, -1 unknown.",
                                   labels=labels)
        cluster_docs = GaugeMetricFamily("ferry_cluster_documents",
                                         "Documents in the Cluster's user indices.",
                                         labels=labels)
        snap_pct = GaugeMetricFamily("ferry_snapshot_progress_percent",
                                     "Snapshot progress in percent.", labels=labels)
        snap_bytes = GaugeMetricFamily("ferry_snapshot_bytes_done",
                                       "Bytes the snapshot has copied.", labels=labels)
        migrated = CounterMetricFamily("ferry_backfill_documents_migrated",
                                       "Documents the Backfill has written.", labels=labels)
        failed = CounterMetricFamily("ferry_backfill_documents_failed",
                                     "Documents the target rejected.", labels=labels)
        copied = CounterMetricFamily("ferry_backfill_bytes_migrated",
                                     "Source bytes the Backfill has written.", labels=labels)
        rate = GaugeMetricFamily("ferry_backfill_documents_per_second",
                                 "Moving-average copy rate.", labels=labels)
        pct = GaugeMetricFamily("ferry_backfill_progress_percent",
                                "Backfill progress in percent.", labels=labels)
        items = GaugeMetricFamily("ferry_backfill_work_items", "Work items by state.",
                                  labels=[*labels, "state"])
        workers = GaugeMetricFamily("ferry_backfill_workers", "Active workers.",
                                    labels=labels)
        for kind, ns, name, status in _snapshot():
            key = [ns, name]
            if status.get("phase"):
                phase.add_metric([kind, ns, name, status["phase"]], 1)
            if kind == "Cluster":
                ready.add_metric(key, 1 if status.get("phase") == "Ready" else 0)
                health.add_metric(key, {"green": 2, "yellow": 1, "red": 0}.get(
                    status.get("health") or "", -1))
                if status.get("indices"):
                    cluster_docs.add_metric(key, status["indices"].get("documents", 0))
            elif kind == "Snapshot":
                progress = status.get("progress") or {}
                if progress.get("percent") is not None:
                    snap_pct.add_metric(key, progress["percent"])
                if progress.get("bytesDone") is not None:
                    snap_bytes.add_metric(key, progress["bytesDone"])
            elif kind == "Backfill":
                progress = status.get("progress") or {}
                migrated.add_metric(key, progress.get("docsMigrated") or 0)
                failed.add_metric(key, progress.get("docsFailed") or 0)
                copied.add_metric(key, progress.get("bytesMigrated") or 0)
                if progress.get("docsPerSecond") is not None:
                    rate.add_metric(key, progress["docsPerSecond"])
                if progress.get("percent") is not None:
                    pct.add_metric(key, progress["percent"])
                for state, value in (status.get("workItems") or {}).items():
                    if state != "total":
                        items.add_metric([*key, state], value)
                workers.add_metric(key, status.get("workers") or 0)
        yield from (phase, ready, health, cluster_docs, snap_pct, snap_bytes, migrated,
                    failed, copied, rate, pct, items, workers)


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
