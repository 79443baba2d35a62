"""One way to tell people about a resource: a Kubernetes Event, a log line, and for
warnings a metric. Messages never contain secrets (FerryError messages don't)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from ferry import metrics
from ferry.services.outcome import Event

log = logging.getLogger("ferry.events")


def announce(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post an Event on the resource and log it; count warnings by reason."""
    meta = body.get("metadata") or {}
    kind = str(body.get("kind", "Resource"))
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    kopf.event(body, type=type_, reason=reason, message=message)  # type: ignore[arg-type]
    level = logging.INFO if type_ == "Normal" else logging.WARNING
    log.log(level, "%s %s/%s: %s: %s", kind, namespace, name, reason, message,
            extra={"object": {"kind": kind, "namespace": namespace, "name": name},
                   "reason": reason})
    if type_ == "Warning":
        metrics.RECONCILE_ERRORS.labels(kind=kind, namespace=namespace, name=name,
                                        reason=reason).inc()


def announce_all(body: Mapping[str, Any], events: list[Event]) -> None:
    for event in events:
        announce(body, event.type, event.reason, event.message)
