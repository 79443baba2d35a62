"""The worker Deployment of a Backfill with ``executor: pods``: a pure manifest builder
(applied by the reconciler, garbage-collected with the Backfill through its owner
reference)."""

from __future__ import annotations

from typing import Any

from ferry.api import Backfill
from ferry.api.backfill import BackfillSpec
from ferry.api.meta import API_VERSION
from ferry.settings import OperatorOptions


def deployment_name(backfill: str) -> str:
    return f"ferry-worker-{backfill}"[:63]


def worker_deployment(namespace: str, name: str, uid: str, spec: BackfillSpec,
                      options: OperatorOptions) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "ferry-worker", "ferry.dev/backfill": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": deployment_name(name), "namespace": namespace,
                     "labels": labels,
                     "ownerReferences": [{"apiVersion": API_VERSION, "kind": Backfill.kind,
                                          "name": name, "uid": uid, "controller": True}]},
        "spec": {
            "replicas": 0 if spec.paused else spec.workers,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": options.worker_service_account,
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {
                    "type": "RuntimeDefault"}},
                "containers": [{
                    "name": "worker",
                    "image": options.worker_image,
                    "args": ["worker", "--backfill", f"{namespace}/{name}"],
                    "securityContext": {"allowPrivilegeEscalation": False,
                                        "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}},
                    # The root filesystem is read-only; Python and TLS need a /tmp.
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {}}]}},
        },
    }
