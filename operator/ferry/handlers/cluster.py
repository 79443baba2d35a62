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
    """(kind, name) of every Secret and ConfigMap a Cluster spec reads. Tolerant of a
    spec the models refuse (stored under an older schema): what is there is watched,
    and the reconciler reports the rest as InvalidSpec."""
    auth = spec.get("auth") or {}
    tls = spec.get("tls") or {}
    found = [("Secret", (auth.get("basic") or {}).get("secretName")),
             ("Secret", ((auth.get("apiKey") or {}).get("secretRef") or {}).get("name")),
             ("Secret", (auth.get("sigv4") or {}).get("credentialsSecretName")),
             ("Secret", (tls.get("caSecretRef") or {}).get("name")),
             ("ConfigMap", (tls.get("caConfigMapRef") or {}).get("name")),
             ("Secret", (tls.get("clientCertificate") or {}).get("secretName"))]
    return {(kind, str(name)) for kind, name in found if name}


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
    await daemon.run(Cluster, body, memo, stopped,
                     ClusterReconciler(namespace, memo.reader, memo.options.retry_seconds))
