"""The loopback node (testbed.node): a kubelet on containerd, registered to a control
plane of its own with kube-controller-manager and kube-scheduler, runs real pods from
an image built on this machine (ferry-echo), with host networking on 127.0.0.1 only."""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from testbed.node import ECHO_IMAGE, NODE_IMAGES, NODE_NAME, KubeNode
from testbed.procs import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node() -> Iterator[KubeNode]:
    kube_node = KubeNode()
    try:
        kube_node.start()
        kube_node.import_image(NODE_IMAGES / "echo.tar")
        yield kube_node
    finally:
        kube_node.stop()


@pytest.fixture
def node_namespace(node: KubeNode) -> str:
    name = f"node-{uuid.uuid4().hex[:8]}"
    assert node.api is not None
    node.api.kubectl("create", "namespace", name)
    # The ServiceAccount admission plugin is on: pods wait for the controller-manager's
    # serviceaccount controller to make "default".
    node.api.wait_for("serviceaccount", name, "default", lambda sa: True, timeout=60)
    return name


def echo_container(port: int, message: str) -> dict:
    return {
        "name": "echo", "image": ECHO_IMAGE, "imagePullPolicy": "Never",
        "args": ["-listen", f"127.0.0.1:{port}"],
        "env": [{"name": "MESSAGE", "value": message},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        # No host: the kubelet probes the pod IP, which host networking makes the
        # node's InternalIP, 127.0.0.1.
        "readinessProbe": {"httpGet": {"port": port, "path": "/healthz"}, "periodSeconds": 1},
    }


def answer(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        return json.load(r)


def is_ready(pod: dict) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    return pod["status"]["phase"] == "Running" and conditions["Ready"] == "True"


def test_the_node_registers_ready_on_loopback(node: KubeNode) -> None:
    obj = node.node()
    assert obj is not None
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    addresses = obj["status"]["addresses"]
    assert {"type": "InternalIP", "address": "127.0.0.1"} in addresses
    for a in addresses:
        if a["type"] != "Hostname":
            assert ipaddress.ip_address(a["address"]).is_loopback, a
    info = obj["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert node.api is not None
    assert info["kubeletVersion"] == node.api.version


def test_a_host_network_pod_runs_from_the_local_image(node: KubeNode,
                                                      node_namespace: str) -> None:
    assert node.api is not None
    port, message = free_port(), uuid.uuid4().hex
    node.api.apply(node_namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echo"},
        "spec": {"hostNetwork": True, "containers": [echo_container(port, message)],
                 "terminationGracePeriodSeconds": 1}})
    pod = node.api.wait_for("pod", node_namespace, "echo", is_ready, timeout=120)
    # Bound by the scheduler (the manifest names no node); host network on loopback.
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["status"]["podIP"] == "127.0.0.1"
    assert answer(port) == {"pod": "echo", "message": message, "uid": 0}

    node.api.kubectl("delete", "pod", "echo", "-n", node_namespace, "--wait=true")
    with pytest.raises(urllib.error.URLError):
        answer(port)


def test_deleting_a_deployment_collects_its_pods(node: KubeNode, node_namespace: str) -> None:
    assert node.api is not None
    port, message = free_port(), uuid.uuid4().hex
    labels = {"app": "echo-gc"}
    node.api.apply(node_namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo-gc"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"hostNetwork": True, "containers": [echo_container(port, message)],
                     "terminationGracePeriodSeconds": 1}}}})

    def pods() -> list[dict]:
        out = node.api.kubectl(  # type: ignore[union-attr]
            "get", "pods", "-n", node_namespace, "-l", "app=echo-gc", "-o", "json")
        return json.loads(out.stdout)["items"]

    deadline = time.monotonic() + 120
    while not (running := [p for p in pods() if is_ready(p)]):
        assert time.monotonic() < deadline, f"no Deployment pod became ready: {pods()}"
        time.sleep(0.5)
    (pod,) = running
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet"
    replicaset = node.api.get("replicaset", node_namespace, owner["name"])
    assert replicaset is not None
    assert replicaset["metadata"]["ownerReferences"][0]["name"] == "echo-gc"
    assert answer(port)["pod"] == pod["metadata"]["name"]

    # Background propagation: the API server deletes only the Deployment; the
    # ReplicaSet and its pod go because the garbage collector follows the owners.
    node.api.kubectl("delete", "deployment", "echo-gc", "-n", node_namespace,
                     "--cascade=background", "--wait=true")
    deadline = time.monotonic() + 120
    while pods() or node.api.get("replicaset", node_namespace, owner["name"]):
        assert time.monotonic() < deadline, f"not collected: {pods()}"
        time.sleep(0.5)
    with pytest.raises(urllib.error.URLError):
        answer(port)
