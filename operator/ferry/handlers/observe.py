"""Keeps the latest status of every Ferry resource for the metrics collector, and drops
a resource's series when it is deleted."""

from __future__ import annotations

from typing import Any

import kopf

from ferry import metrics
from ferry.api import GROUP, VERSION, Backfill, Cluster, Snapshot


def _remember(kind: str, event_type: str, namespace: str, name: str, body: kopf.Body) -> None:
    if event_type == "DELETED":
        metrics.forget(kind, namespace, name)
    else:
        metrics.remember(kind, namespace, name, dict(body.get("status") or {}))


@kopf.on.event(GROUP, VERSION, Cluster.plural)
def observe_cluster(type: str, namespace: str, name: str, body: kopf.Body, **_: Any) -> None:
    _remember("Cluster", type, namespace, name, body)


@kopf.on.event(GROUP, VERSION, Snapshot.plural)
def observe_snapshot(type: str, namespace: str, name: str, body: kopf.Body, **_: Any) -> None:
    _remember("Snapshot", type, namespace, name, body)


@kopf.on.event(GROUP, VERSION, Backfill.plural)
def observe_backfill(type: str, namespace: str, name: str, body: kopf.Body, **_: Any) -> None:
    _remember("Backfill", type, namespace, name, body)
