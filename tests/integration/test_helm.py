"""The Helm chart with the real helm (v4) and a real API server: lint, render, server-side
dry-run of every object, install, upgrade with a changed CRD, uninstall that keeps the
CRDs and the users' resources. What the operator makes of the chart's worker template is
in test_worker_pods.py.

Installing owns the CRDs, so these tests use an API server of their own (started in
seconds), never the session's, whose CRDs other tests rely on."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.helm import CHART, Helm, find
from testbed.kube import KubeAPIServer
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

NON_DEFAULT: dict[str, Any] = {
    "image": {"repository": "registry.example/ferry/operator",
              "digest": "sha256:" + "ab" * 32, "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "fullnameOverride": "migrations",
    "replicaCount": 2,
    "watchNamespaces": ["team-a", "team-b"],
    "logLevel": "debug",
    "logFormat": "plain",
    "peering": {"name": "ferry-peering"},
    "crds": {"keep": False},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}},
    "rbac": {"aggregateToUserRoles": False},
    "podsExecutor": {"image": "registry.example/ferry/worker:1", "serviceAccountName": "copier",
                     "imagePullPolicy": "Always", "imagePullSecrets": [{"name": "worker-regcred"}],
                     "nodeSelector": {"pool": "copy"}, "hostNetwork": True,
                     "metrics": {"port": 9400, "podMonitor": {"enabled": True,
                                                              "labels": {"release": "prom"}}}},
    "metrics": {"port": 9100, "serviceMonitor": {"enabled": True, "interval": "15s",
                                                  "labels": {"release": "prom"}}},
    "networkPolicy": {"enabled": True,
                      "metricsFrom": [{"namespaceSelector": {"matchLabels": {
                          "kubernetes.io/metadata.name": "monitoring"}}}],
                      "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
    "terminationGracePeriodSeconds": 120,
    "priorityClassName": "system-cluster-critical",
    "podAnnotations": {"example.com/a": "b"},
    "podLabels": {"team": "search"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops",
                     "effect": "NoSchedule"}],
    "extraArgs": ["--cleanup-timeout=120"],
    "extraEnv": [{"name": "FERRY_LEASE_SECONDS", "value": "30"}],
    # The filesystem snapshot repository the operator reads to verify Snapshots.
    "extraVolumes": [{"name": "snapshots", "persistentVolumeClaim": {"claimName": "es-repo"}}],
    "extraVolumeMounts": [{"name": "snapshots", "mountPath": "/mnt/snapshots",
                           "readOnly": True}],
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                   "whenUnsatisfiable": "ScheduleAnyway"}],
    "podDisruptionBudget": {"enabled": True},
    "hostNetwork": True,
    "kubernetesService": {"host": "10.1.2.3", "port": 6443},
}

# The part of prometheus-operator's ServiceMonitor and PodMonitor CRDs
# (monitoring.coreos.com/v1) that the chart uses, with the upstream types and patterns;
# unknown fields are rejected by kubectl's strict field validation.
_DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?" \
    "(([0-9]+)ms)?)$"


def _monitor_crd(kind: str, endpoints: str) -> dict[str, Any]:
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                           "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {
                         "spec": {"type": "object", "required": ["selector"], "properties": {
                             "selector": {"type": "object", "properties": {
                                 "matchLabels": {"type": "object", "additionalProperties": {
                                     "type": "string"}}}},
                             "namespaceSelector": {"type": "object", "properties": {
                                 "any": {"type": "boolean"},
                                 "matchNames": {"type": "array", "items": {"type": "string"}}}},
                             endpoints: {"type": "array", "items": {
                                 "type": "object", "properties": {
                                     "port": {"type": "string"},
                                     "path": {"type": "string"},
                                     "interval": {"type": "string", "pattern": _DURATION},
                                     "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                                 }}}}}}}}}]},
    }


MONITOR_CRDS = [_monitor_crd("ServiceMonitor", "endpoints"),
                _monitor_crd("PodMonitor", "podMetricsEndpoints")]


@pytest.fixture(scope="module")
def helm() -> Helm:
    return Helm()


@pytest.fixture(scope="module")
def chart_kube() -> Iterator[KubeAPIServer]:
    server = KubeAPIServer().start()
    try:
        yield server
    finally:
        server.stop()


def _eventually(probe: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.5)


def _apply_objects(kube: KubeAPIServer, objects: list[dict[str, Any]], *args: str) -> str:
    doc = {"apiVersion": "v1", "kind": "List", "items": objects}
    return kube.kubectl("apply", *args, "-f", "-", input=json.dumps(doc)).stdout


# -- lint and render --------------------------------------------------------------------

@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["defaults", "non-default"])
def test_helm_lint_strict(helm: Helm, values: dict[str, Any] | None) -> None:
    args = ["lint", "--strict", str(CHART)]
    if values:
        args += ["--values", str(helm.values_file(values))]
    out = helm.run(*args)
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


def test_default_render(helm: Helm) -> None:
    objects = helm.render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(["CustomResourceDefinition"] * 3 + ["ClusterRole"] * 4 + [
        "ClusterRoleBinding", "ServiceAccount", "Deployment", "Service", "ConfigMap"])
    # CRDs: the generated ones plus Helm's labels and the keep policy.
    for crd in find(objects, "CustomResourceDefinition"):
        generated = yaml.safe_load((ROOT / "crds" / f"ferry.dev_{crd['spec']['names']['plural']}"
                                   ".yaml").read_text())
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert generated["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()
        assert crd["spec"] == generated["spec"]
    (deploy,) = find(objects, "Deployment")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert container["image"] == "ferry-operator:0.1.0"
    assert container["args"] == ["run", "--log-format=json",
                                 "--liveness=http://0.0.0.0:8080/healthz"]
    assert pod["serviceAccountName"] == "ferry"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["limits"]["memory"] == "512Mi"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FERRY_WORKER_IMAGE"] == "ferry-operator:0.1.0"
    assert env["FERRY_WORKER_SERVICE_ACCOUNT"] == "ferry-worker"
    assert env["FERRY_METRICS_PORT"] == env["FERRY_WORKER_METRICS_PORT"] == "9090"
    # The worker template: a ConfigMap mounted where FERRY_WORKER_TEMPLATE points.
    (template,) = find(objects, "ConfigMap", "ferry-worker-template")
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "worker-template"]
    assert env["FERRY_WORKER_TEMPLATE"] == f"{mount['mountPath']}/template.yaml"
    assert {"name": "worker-template", "configMap": {"name": "ferry-worker-template"}} \
        in pod["volumes"]
    worker = yaml.safe_load(template["data"]["template.yaml"])
    assert worker["imagePullPolicy"] == "IfNotPresent" and worker["imagePullSecrets"] == []
    assert worker["resources"]["limits"]["memory"] == "512Mi"
    assert worker["hostNetwork"] is False
    # The pod network and the kubelet's API server address.
    assert "hostNetwork" not in pod and "dnsPolicy" not in pod
    assert not [e for e in container["env"] + worker["env"]
                if e["name"].startswith("KUBERNETES_SERVICE")]
    # All namespaces: one ClusterRole with the CRD watch, no Roles, no namespace listing.
    (role,) = find(objects, "ClusterRole", "ferry")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "customresourcedefinitions" in resources and "namespaces" not in resources
    assert not find(objects, "Role")
    (service,) = find(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_non_default_render(helm: Helm) -> None:
    objects = helm.render(NON_DEFAULT)
    assert not [o for o in objects if o["kind"] == "CustomResourceDefinition"
                and "annotations" in o["metadata"]], "crds.keep=false"
    (deploy,) = find(objects, "Deployment", "migrations")
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deploy["spec"]["replicas"] == 2
    assert container["image"] == "registry.example/ferry/operator@sha256:" + "ab" * 32
    assert container["args"] == [
        "run", "--log-format=plain", "--liveness=http://0.0.0.0:8080/healthz", "--verbose",
        "--namespace=team-a", "--namespace=team-b", "--peering=ferry-peering",
        "--cleanup-timeout=120"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FERRY_WORKER_IMAGE"] == "registry.example/ferry/worker:1"
    assert env["FERRY_WORKER_SERVICE_ACCOUNT"] == "copier"
    assert env["FERRY_LEASE_SECONDS"] == "30" and env["FERRY_METRICS_PORT"] == "9100"
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    api_server = {"KUBERNETES_SERVICE_HOST": "10.1.2.3", "KUBERNETES_SERVICE_PORT": "6443"}
    assert api_server.items() <= env.items()
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert {"name": "snapshots", "persistentVolumeClaim": {"claimName": "es-repo"}} \
        in pod["volumes"]
    assert {"name": "snapshots", "mountPath": "/mnt/snapshots", "readOnly": True} \
        in container["volumeMounts"]
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["labelSelector"] == {"matchLabels": deploy["spec"]["selector"]["matchLabels"]}
    (budget,) = find(objects, "PodDisruptionBudget", "migrations")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": deploy["spec"]["selector"]}
    # The worker template: the worker values, the pull secrets of their own.
    (template,) = find(objects, "ConfigMap", "migrations-worker-template")
    worker = yaml.safe_load(template["data"]["template.yaml"])
    assert worker["imagePullSecrets"] == [{"name": "worker-regcred"}]
    assert worker["imagePullPolicy"] == "Always" and worker["hostNetwork"] is True
    assert worker["nodeSelector"] == {"pool": "copy"}
    assert worker["env"] == [{"name": k, "value": v} for k, v in api_server.items()]
    assert env["FERRY_WORKER_METRICS_PORT"] == "9400"
    (pod_monitor,) = find(objects, "PodMonitor", "migrations-workers")
    assert pod_monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert pod_monitor["metadata"]["labels"]["release"] == "prom"
    # kopf's peering CRDs are in crds/: installed by Helm first, never rendered.
    assert not [o for o in objects if o["kind"] == "CustomResourceDefinition"
                and o["spec"]["group"] == "kopf.dev"]
    # A Role in each watched namespace, the cluster-scoped remainder in a ClusterRole.
    for ns in ("team-a", "team-b"):
        (role,) = find(objects, "Role", "migrations", ns)
        resources = {r for rule in role["rules"] for r in rule["resources"]}
        assert {"clusters", "secrets", "events", "deployments", "kopfpeerings"} <= resources
        assert find(objects, "RoleBinding", "migrations", ns)
        assert find(objects, "ServiceAccount", "copier", ns)
        assert find(objects, "KopfPeering", "ferry-peering", ns)
    (cluster_role,) = find(objects, "ClusterRole", "migrations-cluster")
    assert sorted(r for rule in cluster_role["rules"] for r in rule["resources"]) == [
        "customresourcedefinitions", "namespaces"]
    assert not find(objects, "ClusterRole", "migrations")
    assert not find(objects, "ClusterRole", "migrations-edit")
    (monitor,) = find(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
    (policy,) = find(objects, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_switches_turn_things_off(helm: Helm) -> None:
    objects = helm.render({"crds": {"install": False}, "podsExecutor": {"enabled": False},
                           "rbac": {"watchCRDs": False, "aggregateToUserRoles": False},
                           "metrics": {"enabled": False}})
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"]  # no ConfigMap
    (role,) = find(objects, "ClusterRole")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert not resources & {"deployments", "customresourcedefinitions"}
    (deploy,) = find(objects, "Deployment")
    env = {e["name"] for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"POD_ID"}


@pytest.mark.parametrize(("values", "error"), [
    ({"replicaCount": 2}, "/replicaCount"),
    ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ({"watchNamespaces": ["a", "a"]}, "/watchNamespaces"),
    ({"logLevel": "trace"}, "/logLevel"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"metrics": {"port": 70000}}, "/metrics/port"),
    ({"crds": {"install": "yes"}}, "/crds/install"),
    ({"unknownKey": 1}, "additional properties 'unknownKey'"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else "")
def test_schema_rejects_wrong_values(helm: Helm, values: dict[str, Any], error: str) -> None:
    out = helm.run("template", "ferry", str(CHART), "--values", str(helm.values_file(values)),
                   check=False)
    assert out.returncode != 0
    assert "values don't meet the specifications of the schema" in out.stderr
    assert error in out.stderr


# -- against the real API server ---------------------------------------------------------

@pytest.mark.parametrize("values", [None, NON_DEFAULT], ids=["defaults", "non-default"])
def test_every_rendered_object_passes_server_dry_run(
        helm: Helm, chart_kube: KubeAPIServer, values: dict[str, Any] | None) -> None:
    kube = chart_kube
    # What the objects need to exist first: their namespaces, and the CRDs of the
    # third-party kinds: kopf's peering (the chart's crds/, as Helm would install them)
    # and prometheus-operator's monitors.
    for ns in ("ferry-system", "team-a", "team-b"):
        kube.kubectl("create", "namespace", ns, check=False)
    kube.kubectl("apply", "--server-side", "-f", str(CHART / "crds"))
    _apply_objects(kube, MONITOR_CRDS, "--server-side")
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/kopfpeerings.kopf.dev", "crd/clusterkopfpeerings.kopf.dev",
                 "crd/servicemonitors.monitoring.coreos.com",
                 "crd/podmonitors.monitoring.coreos.com")
    objects = helm.render(values)
    # CRDs first (a dry-run CRD does not serve its kind), then everything else.
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    out = _apply_objects(kube, crds, "--dry-run=server", "--validate=strict")
    assert out.count("(server dry run)") == len(crds) == 3
    out = _apply_objects(kube, rest, "--dry-run=server", "--validate=strict")
    assert out.count("(server dry run)") == len(rest), out
    # Nothing was created.
    assert kube.kubectl("get", "deployments", "-A", "-o", "name").stdout == ""


def test_install_upgrade_with_a_changed_crd_and_uninstall_keeps_crds_and_resources(
        helm: Helm, chart_kube: KubeAPIServer, tmp_path: Path) -> None:
    kube = chart_kube
    out = helm.run("install", "ferry", str(CHART), "--namespace", "ferry-system",
                   "--create-namespace", kube=kube)
    assert "STATUS: deployed" in out.stdout
    assert "kubectl get fcl -w" in out.stdout  # NOTES.txt says what to do next
    assert "kind load docker-image ferry-operator:0.1.0" in out.stdout  # the local image
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l",
                 "app.kubernetes.io/part-of=ferry")
    crd = json.loads(kube.kubectl("get", "crd", "clusters.ferry.dev", "-o", "json").stdout)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "ferry"
    for kind in ("deployment/ferry", "serviceaccount/ferry", "service/ferry-metrics"):
        kube.kubectl("get", "-n", "ferry-system", kind)
    kube.kubectl("get", "clusterrole/ferry", "clusterrolebinding/ferry", "clusterrole/ferry-edit")
    kube.kubectl("create", "namespace", "users")
    cluster = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
               "metadata": {"name": "kept"}, "spec": {"endpoint": "http://es.example:9200"}}
    kube.apply("users", cluster)

    # A newer chart whose Cluster CRD has one more optional field.
    changed = tmp_path / "ferry"
    shutil.copytree(CHART, changed)
    crd_file = changed / "files" / "crds" / "ferry.dev_clusters.yaml"
    doc = yaml.safe_load(crd_file.read_text())
    spec_schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "owner" not in spec_schema["properties"]
    spec_schema["properties"]["owner"] = {"type": "string", "maxLength": 63,
                                          "description": "Who to ask about this cluster."}
    crd_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    chart_yaml = yaml.safe_load((changed / "Chart.yaml").read_text())
    chart_yaml["version"] = "0.1.1"
    (changed / "Chart.yaml").write_text(yaml.safe_dump(chart_yaml))
    rejected = kube.kubectl("apply", "-n", "users", "--validate=strict", "-f", "-", check=False,
                            input=json.dumps({**cluster, "spec": {**cluster["spec"],
                                                                  "owner": "search-team"}}))
    assert rejected.returncode != 0 and 'unknown field "spec.owner"' in rejected.stderr
    out = helm.run("upgrade", "ferry", str(changed), "--namespace", "ferry-system", kube=kube)
    assert "STATUS: deployed" in out.stdout and "REVISION: 2" in out.stdout
    crd = json.loads(kube.kubectl("get", "crd", "clusters.ferry.dev", "-o", "json").stdout)
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["owner"]["description"] == "Who to ask about this cluster."
    # The API server serves the new schema within moments (its handler reloads).
    _eventually(lambda: kube.kubectl(
        "apply", "-n", "users", "--validate=strict", "-f", "-", check=False,
        input=json.dumps({**cluster, "spec": {**cluster["spec"], "owner": "search-team"}}),
    ).returncode == 0)
    _eventually(lambda: "Who to ask about this cluster." in kube.kubectl(
        "explain", "clusters.spec.owner", check=False).stdout)
    assert kube.get("cluster", "users", "kept")["spec"]["owner"] == "search-team"  # type: ignore[index]

    out = helm.run("uninstall", "ferry", "--namespace", "ferry-system", kube=kube)
    assert "These resources were kept due to the resource policy" in out.stdout + out.stderr
    for plural in ("clusters", "snapshots", "backfills"):
        kube.kubectl("get", "crd", f"{plural}.ferry.dev")
    assert kube.get("cluster", "users", "kept") is not None
    gone = kube.kubectl("get", "-n", "ferry-system", "deployment/ferry", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    assert kube.kubectl("get", "clusterrole/ferry", check=False).returncode != 0
    # A fresh install adopts the kept CRDs (they still carry the release's metadata).
    helm.run("install", "ferry", str(CHART), "--namespace", "ferry-system", kube=kube)
    helm.run("uninstall", "ferry", "--namespace", "ferry-system", kube=kube)


# -- make e2e-kind: what it applies (it cannot run here: no Docker engine) -----------------

def test_e2e_kind_manifests_pass_a_server_dry_run_and_the_seed_script_runs(
        crds: KubeAPIServer, opensearch: SearchNode) -> None:
    kube = crds
    e2e = ROOT / "hack" / "e2e"
    assert subprocess.run(["bash", "-n", str(ROOT / "hack" / "e2e-kind.sh")]).returncode == 0
    kube.kubectl("create", "namespace", "ferry-e2e", check=False)
    try:
        rendered = kube.kubectl("kustomize", str(e2e)).stdout
        objects = [d for d in yaml.safe_load_all(rendered) if d]
        source = next(o for o in objects if o["kind"] == "Cluster"
                      and o["metadata"]["name"] == "source")
        assert source["spec"]["endpoint"] == "http://elasticsearch.ferry-e2e.svc:9200"
        assert "auth" not in source["spec"] and "tls" not in source["spec"]
        assert {o["metadata"]["namespace"] for o in objects} == {"ferry-e2e"}
        out = kube.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                           input=rendered).stdout
        assert out.count("(server dry run)") == len(objects) == 5
        for manifest in ("search.yaml", "seed-job.yaml"):
            out = kube.kubectl("apply", "--dry-run=server", "--validate=strict", "-f",
                               str(e2e / manifest)).stdout
            assert "(server dry run)" in out
    finally:
        kube.kubectl("delete", "namespace", "ferry-e2e", "--wait=false", check=False)
    # The seed Job's script, run here with the same sh and curl against a real node.
    job = yaml.safe_load((e2e / "seed-job.yaml").read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    prefix = f"e2e-{uuid.uuid4().hex[:6]}-"
    try:
        run = subprocess.run(["sh", "-ec", script], capture_output=True, text=True,
                             timeout=120, env={"PATH": "/usr/bin:/bin", "PREFIX": prefix,
                                               "ES_URL": opensearch.url})
        assert run.returncode == 0, run.stderr
        for name in ("logs-2024.01.01", "logs-2024.01.02", "logs-debug-2024.01.01", "orders"):
            count = opensearch.request("GET", f"/{prefix}{name}/_count")
            assert count["count"] == 500  # type: ignore[index]
    finally:
        opensearch.request("DELETE", f"/{prefix}*")

