"""Cluster handlers: one monitoring loop per Cluster, woken by spec and Secret changes.
What a pass does is ``services/cluster/reconciler.py``."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ferry.api import GROUP, VERSION, Cluster
from ferry.handlers import daemon
from ferry.runtime import Runtime
from ferry.services.cluster.reconciler import ClusterReconciler

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
        runtime.triggers.poke(Cluster.kind, namespace, cluster)


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
    memo.triggers.poke(Cluster.kind, namespace, name)


@kopf.daemon(GROUP, VERSION, Cluster.plural, cancellation_timeout=10.0)
async def reconcile_cluster(stopped: kopf.DaemonStopped, namespace: str, body: kopf.Body,
                            memo: Runtime, **_: Any) -> None:
    """Checks the cluster now and then every healthCheck.intervalSeconds (jittered)."""
    await daemon.run(Cluster, body, memo, stopped, ClusterReconciler(namespace, memo.reader))
