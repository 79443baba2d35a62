"""The worker Deployment of a Backfill with ``executor: pods``: a pure manifest builder
(applied by the reconciler, garbage-collected with the Backfill through its owner
reference).

Ferry's own parts (image, arguments, the ServiceAccount, a /tmp for the read-only root
filesystem, the metrics port) are merged with the worker template the chart gives the
operator (``settings.worker_template``): pull secrets, resources, scheduling, security
contexts, extra volumes, mounts and env variables, host networking.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ferry.api import Backfill
from ferry.api.backfill import BackfillSpec
from ferry.api.meta import API_VERSION
from ferry.errors import FerryError
from ferry.settings import DEFAULT_BIND, OperatorOptions

# Kubernetes' restricted Pod Security Standard, which a template adds to or overrides.
POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}
# Pod fields a template sets as they are.
POD_FIELDS = ("imagePullSecrets", "nodeSelector", "tolerations", "affinity")


def deployment_name(backfill: str) -> str:
    return f"ferry-worker-{backfill}"[:63]


def worker_deployment(namespace: str, name: str, uid: str, spec: BackfillSpec,
                      options: OperatorOptions) -> dict[str, Any]:
    """The Deployment of ``spec.workers`` `ferry worker` pods for Backfill namespace/name.
    Raises FerryError when the operator has no worker image to give them."""
    if not options.worker_image:
        raise FerryError(
            "executor pods needs a worker image: set FERRY_WORKER_IMAGE on the operator "
            "(the Helm chart sets it to the operator's image)", code="NoWorkerImage")
    labels = {"app.kubernetes.io/name": "ferry-worker", "ferry.dev/backfill": name}
    pod = merge_template({
        "serviceAccountName": options.worker_service_account,
        "securityContext": copy.deepcopy(POD_SECURITY),
        "containers": [_container(namespace, name, options)],
        # The root filesystem is read-only; Python and TLS need a /tmp.
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }, copy.deepcopy(options.worker_template))
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": deployment_name(name), "namespace": namespace,
                     "labels": labels,
                     "ownerReferences": [{"apiVersion": API_VERSION, "kind": Backfill.kind,
                                          "name": name, "uid": uid, "controller": True}]},
        "spec": {
            "replicas": 0 if spec.paused else spec.workers,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": {**labels,
                                                 "app.kubernetes.io/part-of": "ferry",
                                                 "app.kubernetes.io/component": "worker"}},
                         "spec": pod},
        },
    }


def _container(namespace: str, name: str, options: OperatorOptions) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "worker",
        "image": options.worker_image,
        "args": ["worker", "--backfill", f"{namespace}/{name}"],
        "securityContext": copy.deepcopy(CONTAINER_SECURITY),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        # The worker reads its metrics port like the operator does (0: no endpoint).
        "env": [{"name": "FERRY_METRICS_PORT", "value": str(options.worker_metrics_port)}],
    }
    if options.bind_address != DEFAULT_BIND:  # the operator's, for host-network workers
        container["env"].append({"name": "FERRY_BIND_ADDRESS", "value": options.bind_address})
    if options.worker_metrics_port > 0:
        container["ports"] = [{"name": "metrics", "containerPort": options.worker_metrics_port,
                               "protocol": "TCP"}]
    return container


def merge_template(pod: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """Ferry's pod spec with a worker template merged in (a new dict; neither input
    changes). Security contexts merge key by key over Ferry's; volumes, mounts and env
    add to Ferry's (an env variable Ferry sets keeps Ferry's value); the rest is set."""
    pod = {**pod, "containers": [dict(c) for c in pod["containers"]]}
    container = pod["containers"][0]
    for key in POD_FIELDS:
        if template.get(key):
            pod[key] = template[key]
    if template.get("podSecurityContext"):
        pod["securityContext"] = {**pod.get("securityContext", {}),
                                  **template["podSecurityContext"]}
    if template.get("hostNetwork"):
        pod["hostNetwork"] = True
        # Without it a host-network pod resolves names with the node's DNS, not the
        # cluster's, and cannot find in-cluster search services.
        pod["dnsPolicy"] = "ClusterFirstWithHostNet"
    pod["volumes"] = [*pod.get("volumes", []), *(template.get("volumes") or [])]
    if template.get("imagePullPolicy"):
        container["imagePullPolicy"] = template["imagePullPolicy"]
    if template.get("resources"):
        container["resources"] = template["resources"]
    if template.get("securityContext"):
        container["securityContext"] = {**container.get("securityContext", {}),
                                        **template["securityContext"]}
    container["volumeMounts"] = [*container.get("volumeMounts", []),
                                 *(template.get("volumeMounts") or [])]
    own = {e["name"] for e in container.get("env", [])}
    container["env"] = [*container.get("env", []),
                        *(e for e in template.get("env") or [] if e.get("name") not in own)]
    return pod
