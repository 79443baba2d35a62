"""What happens to a Cluster: one health check per pass, its status written when due,
events on transitions, and the next check after the health-check interval (sooner,
backing off, while unreachable)."""

from __future__ import annotations

from typing import Any

from ferry.api.cluster import ClusterSpec, ClusterTLS
from ferry.api.common import parse_spec
from ferry.clients.kube import ObjectReader
from ferry.errors import FerryError
from ferry.services import backoff
from ferry.services.cluster.service import ClusterObservation, ClusterService
from ferry.services.cluster.status import build_status, transition_events, write_due
from ferry.services.outcome import Outcome


def _safe_spec(raw: dict[str, Any]) -> ClusterSpec:
    """Enough of a spec to build a status when the real one does not parse."""
    tls = raw.get("tls") or {}
    return ClusterSpec.model_construct(
        endpoint=str(raw.get("endpoint", "")), read_only=bool(raw.get("readOnly")),
        tls=ClusterTLS.model_construct(insecure_skip_verify=bool(tls.get("insecureSkipVerify"))))


def next_delay(raw_spec: dict[str, Any], outcome: ClusterObservation | FerryError,
               failures: int, retry_seconds: float = 5.0) -> float:
    interval = float((raw_spec.get("healthCheck") or {}).get("intervalSeconds", 60))
    if isinstance(outcome, FerryError) and outcome.retryable:
        # Unreachable: retry sooner, backing off up to the normal interval.
        return backoff.delay(failures - 1, base=retry_seconds, cap=interval)
    return backoff.jittered(interval)


class ClusterReconciler:
    def __init__(self, namespace: str, reader: ObjectReader,
                 retry_seconds: float = 5.0) -> None:
        self.namespace = namespace
        self.service = ClusterService(reader)
        self.failures = 0
        self.retry_seconds = retry_seconds

    def reconcile(self, body: dict[str, Any]) -> Outcome:
        previous = dict(body.get("status") or {})
        generation = body.get("metadata", {}).get("generation")
        raw = dict(body.get("spec") or {})
        outcome: ClusterObservation | FerryError
        try:
            spec = parse_spec(ClusterSpec, raw)
            outcome = self.service.observe(spec, self.namespace)
        except FerryError as exc:
            outcome, spec = exc, _safe_spec(raw)
        self.failures = self.failures + 1 if isinstance(outcome, FerryError) else 0
        new = build_status(previous, spec, generation, outcome)
        return Outcome(status=new if write_due(previous, new) else None,
                       events=transition_events(previous, new),
                       delay=next_delay(raw, outcome, self.failures, self.retry_seconds))

    def close(self) -> None:
        pass
