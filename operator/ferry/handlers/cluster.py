"""Cluster handlers: one monitoring loop per Cluster, woken by spec and Secret changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from ferry.api import GROUP, VERSION, Cluster
from ferry.api.cluster import ClusterSpec
from ferry.api.common import parse_spec
from ferry.clients import kube
from ferry.conditions import status_patch
from ferry.errors import FerryError
from ferry.events import announce
from ferry.runtime import Runtime
from ferry.services import backoff
from ferry.services.cluster.service import Observation
from ferry.services.cluster.status import (
    build_status,
    transition_events,
    write_due,
)

log = logging.getLogger("ferry.cluster")


def referenced_objects(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every Secret and ConfigMap a Cluster spec reads."""
    refs: set[tuple[str, str]] = set()
    auth = spec.get("auth") or {}
    if "basic" in auth:
        refs.add(("Secret", auth["basic"]["secretName"]))
    if "apiKey" in auth:
        refs.add(("Secret", auth["apiKey"]["secretRef"]["name"]))
    if auth.get("sigv4", {}).get("credentialsSecretName"):
        refs.add(("Secret", auth["sigv4"]["credentialsSecretName"]))
    tls = spec.get("tls") or {}
    if "caSecretRef" in tls:
        refs.add(("Secret", tls["caSecretRef"]["name"]))
    if "caConfigMapRef" in tls:
        refs.add(("ConfigMap", tls["caConfigMapRef"]["name"]))
    if "clientCertificate" in tls:
        refs.add(("Secret", tls["clientCertificate"]["secretName"]))
    return refs


@kopf.index(GROUP, VERSION, Cluster.plural)
def cluster_refs(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, str]:
    return {(kind, namespace, ref): name for kind, ref in referenced_objects(dict(spec))}


def _referenced_changed(kind: str, namespace: str, name: str, index: kopf.Index,
                        runtime: Runtime) -> None:
    runtime.reader.invalidate(namespace, name)
    for cluster in index.get((kind, namespace, name), []):
        log.info("%s %s/%s changed: re-checking Cluster %s", kind, namespace, name, cluster)
        runtime.cluster_triggers.poke(namespace, cluster)


@kopf.on.event("v1", "secrets")
def secret_event(namespace: str, name: str, cluster_refs: kopf.Index, memo: Runtime,
                 **_: Any) -> None:
    _referenced_changed("Secret", namespace, name, cluster_refs, memo)


@kopf.on.event("v1", "configmaps")
def configmap_event(namespace: str, name: str, cluster_refs: kopf.Index, memo: Runtime,
                    **_: Any) -> None:
    _referenced_changed("ConfigMap", namespace, name, cluster_refs, memo)


@kopf.on.update(GROUP, VERSION, Cluster.plural, field="spec")
def spec_changed(namespace: str, name: str, memo: Runtime, **_: Any) -> None:
    memo.cluster_triggers.poke(namespace, name)


async def check_once(runtime: Runtime, namespace: str, name: str, body: kopf.Body,
                     ) -> tuple[dict[str, Any], Observation | FerryError]:
    """One health check and, if due, one status write. Returns the new status."""
    previous = dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    try:
        spec = parse_spec(ClusterSpec, dict(body["spec"]))
        outcome: Observation | FerryError = await runtime.run(
            runtime.clusters.observe, spec, namespace)
    except FerryError as exc:
        outcome = exc
        spec = ClusterSpec.model_construct(**_safe_spec(body))
    new = build_status(previous, spec, generation, outcome)
    if write_due(previous, new):
        await runtime.run(kube.patch_status, Cluster, namespace, name,
                          status_patch(previous, new))
    for event in transition_events(previous, new):
        announce(body, event.type, event.reason, event.message)
    return new, outcome


def _safe_spec(body: kopf.Body) -> dict[str, Any]:
    """Enough of a spec to build a status when the real one does not parse."""
    from ferry.api.cluster import ClusterTLS

    spec = dict(body.get("spec") or {})
    return {"endpoint": str(spec.get("endpoint", "")), "read_only": bool(spec.get("readOnly")),
            "tls": ClusterTLS.model_construct(
                insecure_skip_verify=bool((spec.get("tls") or {}).get("insecureSkipVerify")))}


def next_delay(body: kopf.Body, outcome: Observation | FerryError, failures: int) -> float:
    interval = float(((body.get("spec") or {}).get("healthCheck") or {}).get(
        "intervalSeconds", 60))
    if isinstance(outcome, FerryError) and outcome.retryable:
        # Unreachable: retry sooner, backing off up to the normal interval.
        return backoff.exponential(failures - 1, base=5.0, cap=interval)
    return backoff.jittered(interval)


@kopf.daemon(GROUP, VERSION, Cluster.plural, cancellation_timeout=10.0)
async def monitor(stopped: kopf.DaemonStopped, namespace: str, name: str, body: kopf.Body,
                  memo: Runtime, **_: Any) -> None:
    """Checks the cluster now and then every healthCheck.intervalSeconds (jittered)."""
    trigger = memo.cluster_triggers.register(namespace, name)
    failures = 0
    try:
        while not stopped:
            trigger.clear()
            try:
                _, outcome = await check_once(memo, namespace, name, body)
            except Exception as exc:  # never let one resource kill its loop
                log.exception("Cluster %s/%s: check failed unexpectedly", namespace, name)
                outcome = FerryError(f"internal error: {type(exc).__name__}")
            failures = failures + 1 if isinstance(outcome, FerryError) else 0
            delay = next_delay(body, outcome, failures)
            # kopf cancels this task on deletion and shutdown, ending the wait too.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(trigger.wait(), timeout=delay)
    finally:
        memo.cluster_triggers.unregister(namespace, name)
