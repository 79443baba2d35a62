"""Ferry the way users run it: the image built from the Dockerfile (hack/image/build.sh),
installed with the Helm chart on the loopback node (testbed.node: a real kubelet on
containerd, with kube-controller-manager and kube-scheduler), host networking and the API
server's loopback address (the chart's hostNetwork and kubernetesService values), against
the session's real Elasticsearch 7.10 and OpenSearch 2.19.

One node and one release for the module; the tests run in order and each leaves the
release as the next expects it (the last one uninstalls it)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_backfill import clusters, condition, count, phase_in
from test_faults_backfill import items
from test_image_build import image_tar  # noqa: F401  (the fixture: built now, cached)

from testbed import datagen
from testbed.helm import CHART, Helm
from testbed.kube import KubeAPIServer
from testbed.node import KubeNode
from testbed.paths import BUILD
from testbed.procs import free_port
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
IMAGE_TAR = BUILD / "image" / f"ferry-operator-{VERSION}.tar"
# What `ctr images import` names the archive's ferry-operator:<version>, and so what the
# chart's default `image.repository: ferry-operator` resolves to.
IMAGE_REF = f"docker.io/library/ferry-operator:{VERSION}"
UPGRADE_TAG = f"{VERSION}-upgrade"
RELEASE, SYSTEM, APPS = "ferry", "ferry-system", "apps"
SOURCE_INDEX = "pod-users"
DOCS = 600
OPERATOR_LABEL = "app.kubernetes.io/name=ferry"
WORKER_LABEL = "app.kubernetes.io/name=ferry-worker"


@dataclass
class Release:
    node: KubeNode
    helm: Helm
    values: dict[str, Any]
    health_port: int
    # Every index this module made on the shared target (removed at the end).
    made: list[str] = field(default_factory=list)

    @property
    def api(self) -> KubeAPIServer:
        assert self.node.api is not None
        return self.node.api

    def helm_run(self, verb: str, *args: str) -> str:
        return self.helm.run(verb, RELEASE, *args, "--namespace", SYSTEM,
                             kube=self.api).stdout

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        out = self.api.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
        return json.loads(out.stdout)["items"]

    def wait_pods(self, namespace: str, selector: str,
                  predicate: Callable[[list[dict[str, Any]]], bool],
                  timeout: float = 180) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not predicate(pods := self.pods(namespace, selector)):
            assert time.monotonic() < deadline, json.dumps(
                [(p["metadata"]["name"], p["status"]) for p in pods], indent=1)[-4000:]
            time.sleep(0.5)
        return pods

    def replicasets(self, selector: str) -> list[dict[str, Any]]:
        out = self.api.kubectl("get", "replicasets", "-n", APPS, "-l", selector, "-o", "json")
        return json.loads(out.stdout)["items"]

    def wait_workers_gone(self, backfill: str, replicasets: list[dict[str, Any]]) -> None:
        """Until Backfill `backfill`'s worker Deployment, these ReplicaSets of it and its
        pods are all gone."""
        deadline = time.monotonic() + 120
        while self.api.get("deployment", APPS, f"ferry-worker-{backfill}") \
                or self.pods(APPS, f"{WORKER_LABEL},ferry.dev/backfill={backfill}") \
                or any(self.api.get("replicaset", APPS, rs["metadata"]["name"])
                       for rs in replicasets):
            assert time.monotonic() < deadline, f"{backfill}'s workers not collected"
            time.sleep(0.5)

    def ready_operator(self, timeout: float = 180) -> dict[str, Any]:
        """The one Ready operator pod (waits while another is still there)."""
        (pod,) = self.wait_pods(SYSTEM, OPERATOR_LABEL,
                                lambda ps: len(ps) == 1 and is_ready(ps[0]), timeout)
        return pod


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return pod["status"]["phase"] == "Running" and conditions.get("Ready") == "True" \
        and "deletionTimestamp" not in pod["metadata"]


def running(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if p["status"]["phase"] == "Running"
            and "deletionTimestamp" not in p["metadata"]]


@pytest.fixture(scope="module")
def release(elasticsearch: SearchNode, opensearch: SearchNode,
            image_tar: Path) -> Iterator[Release]:  # noqa: F811
    """The node with the image imported (under two tags) and the chart installed; the
    image rebuilt first if the code changed since it was built."""
    assert image_tar == IMAGE_TAR
    node = KubeNode()
    datagen.load(elasticsearch, datagen.users_index(SOURCE_INDEX, shards=3),
                 datagen.user_docs(DOCS))
    assert count(elasticsearch, SOURCE_INDEX) == DOCS
    rel = Release(node, Helm(), {}, free_port())
    try:
        started = time.monotonic()
        node.start()
        print(f"\nnode Ready in {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        node.import_image(IMAGE_TAR)
        # The same image under a second tag, for the upgrade.
        node.ctr("images", "tag", "--force", IMAGE_REF,
                 IMAGE_REF.rsplit(":", 1)[0] + f":{UPGRADE_TAG}", check=True)
        print(f"image imported in {time.monotonic() - started:.1f}s")
        rel.values = {
            # Imported, never pulled: no registry is reachable.
            "image": {"pullPolicy": "Never"},
            # No pod network and no kube-proxy on the node: everything on 127.0.0.1.
            "hostNetwork": True,
            "kubernetesService": {"host": "127.0.0.1",
                                  "port": urllib.parse.urlsplit(node.url).port},
            # The node's ports: free ones, not 8080/9090 of whatever else runs here.
            "health": {"port": rel.health_port},
            "metrics": {"port": free_port()},
            # The pod's address is the node's, 127.0.0.1: the ports listen there only.
            "bindAddress": "127.0.0.1",
            "readinessProbe": {"initialDelaySeconds": 1, "periodSeconds": 2},
            # Items held by a deleted operator pod are taken over after this.
            "extraEnv": [{"name": "FERRY_LEASE_SECONDS", "value": "10"}],
            "terminationGracePeriodSeconds": 20,
            # The source node's path.repo, at the same path: Snapshot verification reads
            # the repository's files (read-only, as a repository volume would be).
            "extraVolumes": [{"name": "repo", "hostPath": {
                "path": str(elasticsearch.repo), "type": "Directory"}}],
            "extraVolumeMounts": [{"name": "repo", "mountPath": str(elasticsearch.repo),
                                   "readOnly": True}],
            # Two host-network workers on one node: no metrics port, or the second could
            # not be scheduled (a host port each).
            "podsExecutor": {"hostNetwork": True, "metrics": {"port": 0},
                             "namespaces": [APPS],
                             "resources": {"requests": {"cpu": "50m", "memory": "128Mi"},
                                           "limits": {"memory": "512Mi"}}},
        }
        rel.api.kubectl("create", "namespace", APPS)
        started = time.monotonic()
        rel.helm_run("install", str(CHART), "--create-namespace",
                     "--values", str(rel.helm.values_file(rel.values)))
        rel.ready_operator()
        print(f"operator pod Ready {time.monotonic() - started:.1f}s after helm install")
        rel.api.apply(APPS, *clusters(elasticsearch.url, opensearch.url))
        yield rel
    finally:
        if node.api is not None and node.api.apiserver is not None:
            # The coordination indices of the Backfills no operator deleted.
            left = json.loads(node.api.kubectl("get", "backfills", "-n", APPS, "-o", "json",
                                               check=False).stdout or '{"items": []}')
            rel.made += [b["status"]["coordinationIndex"] for b in left["items"]
                         if (b.get("status") or {}).get("coordinationIndex")]
        # The node first: no worker pod may write to the target after its index goes.
        node.stop()
        for index in rel.made:
            opensearch.request("DELETE", f"/{index}?ignore_unavailable=true")
        elasticsearch.request("DELETE", f"/{SOURCE_INDEX}")


def start_backfill(rel: Release, name: str, **spec: Any) -> str:
    """Backfill `name` of the source index into `<name>-pod-users`; returns that index."""
    target = f"{name}-{SOURCE_INDEX}"
    rel.made.append(target)
    rel.api.apply(APPS, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill", "metadata": {"name": name},
        "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "target"},
                 "indices": [SOURCE_INDEX], "targetNaming": {"prefix": f"{name}-"},
                 "verify": {"counts": True, "sampleSize": 50}, **spec}})
    return target


def assert_completed_exactly(rel: Release, opensearch: SearchNode, name: str, target: str,
                             timeout: float = 240) -> dict[str, Any]:
    obj = rel.api.wait_for("backfill", APPS, name,
                           phase_in("Completed", "CompletedWithErrors", "Failed"),
                           timeout=timeout)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert condition(obj, "Verified")["status"] == "True", obj["status"]
    assert obj["status"]["progress"]["docsMigrated"] == DOCS
    assert count(opensearch, target) == DOCS
    return obj


def assert_clean_log(rel: Release, namespace: str, pod: dict[str, Any]) -> None:
    """The pod's log so far holds JSON records, no traceback and no error (the suite's
    own check reads only the logs of local processes)."""
    logs = rel.api.kubectl("logs", "-n", namespace, pod["metadata"]["name"]).stdout
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert records, logs[-3000:]
    assert '"exc_info"' not in logs and "Traceback" not in logs, logs[-3000:]
    # kopf logs an API request it retries (a 429 while the API server starts) as an
    # error; anything else at error level is one.
    errors = [r for r in records if r.get("severity") in ("error", "fatal")
              and not r.get("message", "").startswith("Request attempt #")]
    assert not errors, errors


def listening(port: int) -> set[str]:
    """The local addresses of the host's listening TCP sockets on ``port`` (host-network
    pods share the host's table)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def container_pid(node: KubeNode, pod: dict[str, Any]) -> int:
    """The host pid of the pod's (first) container, from containerd's task list."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"]
    assert container_id.startswith("containerd://"), container_id
    wanted = container_id.removeprefix("containerd://")
    for line in node.ctr("tasks", "ls", check=True).stdout.splitlines()[1:]:
        task, pid, status = line.split()
        if task == wanted:
            assert status == "RUNNING", line
            return int(pid)
    raise AssertionError(f"no containerd task {wanted}")


# -- the operator's pod -----------------------------------------------------------------

def test_the_operator_pod_is_ready_non_root_with_a_read_only_root(release: Release) -> None:
    rel = release
    pod = rel.ready_operator()
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == f"ferry-operator:{VERSION}"
    assert spec["hostNetwork"] is True and pod["status"]["podIP"] == "127.0.0.1"
    assert spec["serviceAccountName"] == "ferry"
    assert spec["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The readiness probe passed (Ready) on the configured port, nothing restarted.
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["ports"][0] == {"name": "health", "containerPort": rel.health_port,
                                     "hostPort": rel.health_port, "protocol": "TCP"}
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{rel.health_port}/healthz",
                                timeout=5) as r:
        assert r.status == 200
    # bindAddress: health and metrics on 127.0.0.1 only (0100007F), no wildcard socket.
    assert listening(rel.health_port) == {"0100007F"}
    assert listening(rel.values["metrics"]["port"]) == {"0100007F"}
    # The running process, seen from the host: uid 10001 (real, effective, saved, fs),
    # its root mounted read-only, the ServiceAccount token mounted.
    pid = container_pid(rel.node, pod)
    status = Path(f"/proc/{pid}/status").read_text()
    (uid_line,) = [line for line in status.splitlines() if line.startswith("Uid:")]
    assert uid_line.split()[1:] == ["10001"] * 4, uid_line
    mounts = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
    (root,) = [m for m in mounts if m[4] == "/"]
    assert "ro" in root[5].split(","), root
    # (/var/run is a link to /run in the image)
    assert any(m[4] == "/run/secrets/kubernetes.io/serviceaccount" for m in mounts), mounts
    # The in-cluster config reached the API server at its loopback address, not the
    # kubelet's unroutable Service address.
    env = dict(e.split("=", 1) for e in
               Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in e)
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == str(rel.values["kubernetesService"]["port"])


def test_the_pod_reconciles_a_cluster_and_a_backfill_to_completed_verified(
        release: Release, opensearch: SearchNode) -> None:
    rel = release
    for name in ("source", "target"):
        cluster = rel.api.wait_for("cluster", APPS, name, phase_in("Ready"), timeout=120)
        assert condition(cluster, "Ready")["status"] == "True"
    source = rel.api.get("cluster", APPS, "source")
    assert source is not None and source["status"]["version"].startswith("7.10")
    target = start_backfill(rel, "inproc", workers=2)
    assert_completed_exactly(rel, opensearch, "inproc", target)


def test_the_pod_takes_and_verifies_a_snapshot(release: Release,
                                               elasticsearch: SearchNode) -> None:
    """A Snapshot of the source index into an fs repository below the node's path.repo:
    Completed, and Verified by the pod reading the repository's files (mounted
    read-only); the snapshot as the node itself reports it."""
    rel = release
    repo, location = f"pod-{VERSION}", elasticsearch.repo / f"pod-{uuid.uuid4().hex[:6]}"
    rel.api.apply(APPS, {
        "apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot", "metadata": {"name": "nightly"},
        "spec": {"clusterRef": {"name": "source"}, "indices": [SOURCE_INDEX],
                 "includeGlobalState": False,
                 "repository": {"name": repo, "type": "fs", "fs": {"location": str(location)}}}})
    try:
        obj = rel.api.wait_for("snapshot", APPS, "nightly", phase_in("Completed", "Failed"),
                               timeout=120)
        status = obj["status"]
        assert status["phase"] == "Completed", status
        verified = condition(obj, "Verified")
        assert verified["status"] == "True" and verified["reason"] == "FoundInRepository", \
            verified
        assert f"{location}/index-" in verified["message"]
        info = elasticsearch.request("GET", f"/_snapshot/{repo}/nightly")["snapshots"][0]
        assert info["state"] == "SUCCESS" and info["indices"] == [SOURCE_INDEX]
        assert status["snapshotUuid"] == info["uuid"]
        assert status["documents"] == DOCS
    finally:
        rel.api.kubectl("delete", "snapshot/nightly", "-n", APPS, "--timeout=60s",
                        check=False)
        elasticsearch.request("DELETE", f"/_snapshot/{repo}")


# -- executor: pods ---------------------------------------------------------------------

def test_worker_pods_share_the_items_scale_and_end_with_the_copy(
        release: Release, opensearch: SearchNode) -> None:
    rel = release
    selector = f"{WORKER_LABEL},ferry.dev/backfill=pods"
    # Three items (one per shard), slow enough that neither pod copies them all alone
    # before the other has started.
    target = start_backfill(rel, "pods", executor="pods", workers=2, batch={"maxDocs": 20},
                            throttle={"maxDocsPerSecond": 40})
    started = time.monotonic()
    pods = rel.wait_pods(APPS, selector, lambda ps: len(running(ps)) == 2)
    print(f"\ntwo worker pods Running {time.monotonic() - started:.1f}s after the Backfill")
    for pod in pods:
        spec = pod["spec"]
        assert spec["serviceAccountName"] == "ferry-worker"
        assert spec["containers"][0]["image"] == f"ferry-operator:{VERSION}"
        assert spec["hostNetwork"] is True
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
        uid_line = next(line for line in Path(f"/proc/{container_pid(rel.node, pod)}/status")
                        .read_text().splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["10001"] * 4, uid_line
    obj = rel.api.wait_for("backfill", APPS, "pods",
                           lambda o: bool(o["status"].get("coordinationIndex")), timeout=60)
    coordination = obj["status"]["coordinationIndex"]
    # Both pods hold items: two holders at once in the coordination index.
    holders: set[str] = set()
    deadline = time.monotonic() + 120
    while len(holders) < 2:
        assert time.monotonic() < deadline, holders
        holders |= {i["holder"].rsplit("-", 1)[0] for i in items(opensearch, coordination)
                    if i["state"] == "leased" and i["holder"]}
        time.sleep(0.3)
    print("holders:", holders)
    for pod in pods:
        assert_clean_log(rel, APPS, pod)

    rel.api.kubectl("scale", "backfill/pods", "-n", APPS, "--replicas=1")
    rel.api.wait_for("deployment", APPS, "ferry-worker-pods",
                     lambda d: d["spec"]["replicas"] == 1, timeout=60)
    rel.wait_pods(APPS, selector, lambda ps: len(ps) == 1, timeout=120)
    rel.api.kubectl("patch", "backfill/pods", "-n", APPS, "--type=merge",
                    "-p", '{"spec":{"throttle":{"maxDocsPerSecond":null}}}')
    deployment = rel.api.get("deployment", APPS, "ferry-worker-pods")
    assert deployment is not None
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    replicasets = rel.replicasets(selector)
    assert replicasets
    assert_completed_exactly(rel, opensearch, "pods", target)
    # The copy is over: the operator deletes the worker Deployment (its pods would exit
    # and be started again); the ReplicaSets and pods only the garbage collector
    # removes (nothing in Ferry deletes them), following the owner references. The
    # Backfill itself stays.
    rel.wait_workers_gone("pods", replicasets)
    # The Backfill itself stays (the upgrade test gives it a leftover Deployment).
    assert rel.api.get("backfill", APPS, "pods") is not None


# -- the operator's pod goes away mid-run -----------------------------------------------

# A minute for the documents: the copy outlasts an operator's restart, and is sped up
# (the throttle lifted, which applies live) once the new operator has taken over.
SLOW = {"workers": 2, "batch": {"maxDocs": 10}, "throttle": {"maxDocsPerSecond": 10}}


def wait_midway(rel: Release, name: str) -> dict[str, Any]:
    """The Backfill once a tenth of the documents are in, still Running."""
    obj = rel.api.wait_for("backfill", APPS, name, lambda o: o["status"]["phase"] in (
        "Completed", "Failed") or (o["status"].get("progress") or {}).get(
            "docsMigrated", 0) >= DOCS // 10, timeout=120)
    assert obj["status"]["phase"] == "Running", obj["status"]
    return obj


def still_running_then_unthrottled(rel: Release, name: str) -> None:
    obj = rel.api.get("backfill", APPS, name)
    assert obj is not None and obj["status"]["phase"] == "Running", obj
    assert obj["status"]["progress"]["docsMigrated"] < DOCS
    rel.api.kubectl("patch", f"backfill/{name}", "-n", APPS, "--type=merge",
                    "-p", '{"spec":{"throttle":{"maxDocsPerSecond":null}}}')


def replacement(rel: Release, old: dict[str, Any]) -> dict[str, Any]:
    """The one Ready operator pod once it is another than `old`."""
    return rel.wait_pods(SYSTEM, OPERATOR_LABEL, lambda ps: len(ps) == 1 and is_ready(ps[0])
                         and ps[0]["metadata"]["uid"] != old["metadata"]["uid"])[0]


def test_a_deleted_operator_pod_is_replaced_and_the_backfill_resumes_exactly(
        release: Release, opensearch: SearchNode) -> None:
    rel, old = release, release.ready_operator()
    target = start_backfill(rel, "restart", **SLOW)
    wait_midway(rel, "restart")
    # What it did so far (Clusters, a Snapshot, Backfills in and out of pods): no error.
    assert_clean_log(rel, SYSTEM, old)
    started = time.monotonic()
    rel.api.kubectl("delete", "pod", old["metadata"]["name"], "-n", SYSTEM, "--wait=false")
    new = replacement(rel, old)
    print(f"\nreplacement operator pod Ready {time.monotonic() - started:.1f}s after the "
          "delete")
    # The Deployment's ReplicaSet made the new pod; the Backfill waited for it.
    assert new["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    still_running_then_unthrottled(rel, "restart")
    assert_completed_exactly(rel, opensearch, "restart", target)


# -- helm upgrade and uninstall ---------------------------------------------------------

def test_helm_upgrade_to_a_new_tag_rolls_the_operator_and_keeps_a_running_backfill(
        release: Release, opensearch: SearchNode) -> None:
    rel = release
    old = rel.ready_operator()
    # What an operator version that kept a worker Deployment past the copy left behind,
    # beside a Backfill (of executor pods) that completed: the upgraded one deletes it.
    rel.api.apply(APPS, leftover_workers("pods"))
    target = start_backfill(rel, "upgrade", **SLOW)
    wait_midway(rel, "upgrade")
    assert rel.api.get("deployment", APPS, "ferry-worker-pods") is not None
    started = time.monotonic()
    out = rel.helm_run("upgrade", str(CHART), "--values", str(rel.helm.values_file(rel.values)),
                       "--set", f"image.tag={UPGRADE_TAG}")
    assert "REVISION: 2" in out
    # Recreate: the old pod goes before the new one starts, never two at once.
    new = replacement(rel, old)
    assert new["spec"]["containers"][0]["image"] == f"ferry-operator:{UPGRADE_TAG}"
    print(f"\nupgraded operator pod Ready {time.monotonic() - started:.1f}s after helm upgrade")
    still_running_then_unthrottled(rel, "upgrade")
    deadline = time.monotonic() + 60
    while rel.api.get("deployment", APPS, "ferry-worker-pods") is not None:
        assert time.monotonic() < deadline, "the leftover worker Deployment stayed"
        time.sleep(0.5)
    settled = rel.api.get("backfill", APPS, "pods")
    assert settled is not None and settled["status"]["phase"] == "Completed"
    assert_completed_exactly(rel, opensearch, "upgrade", target)


def leftover_workers(backfill: str) -> dict[str, Any]:
    """A worker Deployment of ``backfill`` as the operator names and labels it, scaled
    to nothing."""
    labels = {"app.kubernetes.io/name": "ferry-worker", "ferry.dev/backfill": backfill}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"ferry-worker-{backfill}", "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "worker", "image": f"ferry-operator:{VERSION}"}]}}}}


def test_helm_uninstall_keeps_crds_and_resources_and_the_gc_collects_workers(
        release: Release, opensearch: SearchNode) -> None:
    rel = release
    selector = f"{WORKER_LABEL},ferry.dev/backfill=kept"
    # A worker pod still copying (one document a second) when the operator goes.
    start_backfill(rel, "kept", executor="pods", workers=1, batch={"maxDocs": 5},
                   throttle={"maxDocsPerSecond": 1})
    rel.wait_pods(APPS, selector, lambda ps: len(running(ps)) == 1)
    kept = rel.api.wait_for("backfill", APPS, "kept",
                            lambda o: bool(o["status"].get("coordinationIndex")), timeout=60)
    rel.made.append(kept["status"]["coordinationIndex"])  # no operator will remove it

    # The upgraded operator ran a Backfill to the end without a traceback.
    (op,) = rel.pods(SYSTEM, OPERATOR_LABEL)
    assert_clean_log(rel, SYSTEM, op)
    out = rel.helm.run("uninstall", RELEASE, "--namespace", SYSTEM, kube=rel.api)
    assert "These resources were kept due to the resource policy" in out.stdout + out.stderr
    rel.wait_pods(SYSTEM, OPERATOR_LABEL, lambda ps: not ps, timeout=120)
    assert rel.api.get("deployment", SYSTEM, "ferry") is None
    for plural in ("clusters", "snapshots", "backfills"):
        rel.api.kubectl("get", "crd", f"{plural}.ferry.dev")
    for kind, name in (("cluster", "source"), ("cluster", "target"),
                       ("backfill", "inproc"), ("backfill", "upgrade"), ("backfill", "kept")):
        assert rel.api.get(kind, APPS, name) is not None, (kind, name)

    # No operator runs now, so only the garbage collector can remove the worker
    # Deployment, its ReplicaSet and pod once their owner, the Backfill, is gone (its
    # finalizer dropped by hand, as nobody is left to run the cleanup).
    replicasets = rel.replicasets(selector)
    assert rel.api.get("deployment", APPS, "ferry-worker-kept") is not None and replicasets
    rel.api.kubectl("delete", "backfill/kept", "-n", APPS, "--wait=false")
    rel.api.kubectl("patch", "backfill/kept", "-n", APPS, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}')
    rel.wait_workers_gone("kept", replicasets)
