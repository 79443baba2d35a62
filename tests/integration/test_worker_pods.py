"""Worker pods (Backfill ``executor: pods``) as the chart configures them: installed
with worker values, the chart's operator builds a worker Deployment from the chart's
worker template, and the real API server stores it with the pull secrets, resources and
scheduling. Installing owns CRDs, so this uses an API server of its own (like
test_helm.py), never the session's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import datagen
from testbed.helm import CHART, Helm
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.proxy import ReverseProxy
from testbed.search import SearchNode

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker_kube() -> Iterator[KubeAPIServer]:
    server = KubeAPIServer().start()
    try:
        yield server
    finally:
        server.stop()


WORKER_VALUES: dict[str, Any] = {
    "peering": {"name": "ferry-peering"},
    "podsExecutor": {
        "imagePullSecrets": [{"name": "regcred"}],
        "resources": {"requests": {"cpu": "500m", "memory": "300Mi"},
                      "limits": {"memory": "700Mi"}},
        "nodeSelector": {"pool": "copy"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "copy",
                         "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In",
                 "values": ["a"]}]}]}}},
        "volumes": [{"name": "repo", "hostPath": {"path": "/mnt/snapshots"}}],
        "volumeMounts": [{"name": "repo", "mountPath": "/mnt/snapshots", "readOnly": True}],
        "env": [{"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"}],
        "hostNetwork": True,
        "metrics": {"port": 9400},
    },
}


def test_the_operator_builds_worker_deployments_from_the_charts_template(
        worker_kube: KubeAPIServer, opensearch: SearchNode,
        tmp_path: Path) -> None:
    """Installed with worker values, the chart's operator (its args and env, and the
    ConfigMap at the path the pod mounts it) creates a worker Deployment that the API
    server accepts with the pull secrets, resources and scheduling. No kubelet: the
    pods never run (test_backfill.py runs what they would)."""
    kube, ns = worker_kube, "apps"
    helm = Helm()
    helm.run("install", "ferry", str(CHART), "-n", "ferry-system", "--create-namespace",
             "--values", str(helm.values_file(WORKER_VALUES)), kube=kube)
    index = f"helm-{uuid.uuid4().hex[:6]}"
    datagen.load(opensearch, datagen.users_index(index), datagen.user_docs(20))
    target = ReverseProxy(opensearch.url).start()  # another endpoint for the same node
    operator: OperatorProcess | None = None
    try:
        # kopf's peering CRDs came from the chart's crds/, before its peering object.
        kube.kubectl("get", "clusterkopfpeering/ferry-peering")
        deploy = json.loads(kube.kubectl("get", "deployment/ferry", "-n", "ferry-system",
                                         "-o", "json").stdout)
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        template = json.loads(kube.kubectl("get", "configmap/ferry-worker-template", "-n",
                                           "ferry-system", "-o", "json").stdout)
        mounted = tmp_path / "template.yaml"  # what the kubelet would mount
        mounted.write_text(template["data"]["template.yaml"])
        env["FERRY_WORKER_TEMPLATE"] = str(mounted)
        # Standalone: one process, no need to wait for peers.
        args = tuple(a for a in container["args"][1:]
                     if not a.startswith(("--liveness=", "--peering=")))
        operator = OperatorProcess(kube.kubeconfig, args=args, env={**env, "POD_ID": "op"},
                                   workdir=tmp_path / "operator").start()
        kube.kubectl("create", "namespace", ns)
        kube.apply(ns, *[{"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                          "metadata": {"name": name}, "spec": {"endpoint": url}}
                         for name, url in (("source", opensearch.url),
                                           ("target", target.url))],
                   {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
                    "metadata": {"name": "copy"},
                    "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "target"},
                             "indices": [index], "targetNaming": {"suffix": "-copy"},
                             "executor": "pods", "workers": 2}})
        created = kube.wait_for("deployment", ns, "ferry-worker-copy",
                                lambda d: d["spec"]["replicas"] == 2, timeout=90)
        pod = created["spec"]["template"]["spec"]
        (worker,) = pod["containers"]
        podsexec = WORKER_VALUES["podsExecutor"]
        assert worker["image"] == "ferry-operator:0.1.0"  # the operator's own
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert worker["resources"] == podsexec["resources"]
        assert pod["nodeSelector"] == {"pool": "copy"}
        assert pod["tolerations"] == podsexec["tolerations"]
        assert pod["affinity"] == podsexec["affinity"]
        assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert {"name": "repo", "mountPath": "/mnt/snapshots", "readOnly": True} \
            in worker["volumeMounts"]
        assert [v["name"] for v in pod["volumes"]] == ["tmp", "repo"]
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert worker["securityContext"]["readOnlyRootFilesystem"] is True
        assert worker["ports"] == [{"name": "metrics", "containerPort": 9400,
                                    "protocol": "TCP"}]
        worker_env = {e["name"]: e["value"] for e in worker["env"]}
        assert worker_env == {"FERRY_METRICS_PORT": "9400",
                              "HTTPS_PROXY": "http://proxy.example:3128"}
    finally:
        kube.kubectl("delete", "-n", ns, "backfill/copy", "--wait=true", "--timeout=60s",
                     "--ignore-not-found", check=False)
        if operator is not None:
            operator.stop()
        target.stop()
        helm.run("uninstall", "ferry", "-n", "ferry-system", kube=kube, check=False)
        opensearch.request("DELETE", f"/{index}*")
