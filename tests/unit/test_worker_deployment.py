"""The worker Deployment of a Backfill with ``executor: pods``: Ferry's own parts merged
with the worker template the chart renders (read from a file, as the operator reads the
mounted ConfigMap). What the API server makes of it is in tests/integration/test_helm.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.api.backfill import BackfillSpec
from ferry.errors import FerryError
from ferry.services.backfill.deployment import worker_deployment
from ferry.settings import OperatorOptions

SPEC = BackfillSpec.model_validate({"sourceRef": {"name": "a"}, "targetRef": {"name": "b"},
                                    "indices": ["logs"], "executor": "pods", "workers": 3})

TEMPLATE: dict[str, Any] = {
    "imagePullPolicy": "Always",
    "imagePullSecrets": [{"name": "regcred"}],
    "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}},
    "nodeSelector": {"pool": "copy"},
    "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
    "podSecurityContext": {"runAsUser": 10001, "fsGroup": 10001},
    "securityContext": {"readOnlyRootFilesystem": False},
    "volumes": [{"name": "repo", "persistentVolumeClaim": {"claimName": "snapshots"}}],
    "volumeMounts": [{"name": "repo", "mountPath": "/mnt/snapshots", "readOnly": True}],
    "env": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
            {"name": "FERRY_METRICS_PORT", "value": "1"}],
    "hostNetwork": True,
}


def options_with(template: dict[str, Any] | None = None, **changes: Any) -> OperatorOptions:
    return OperatorOptions(worker_image="registry.example/ferry:1",
                           worker_service_account="copier",
                           worker_template=template or {}).with_(**changes)


def pod_of(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_without_a_template_the_pod_is_ferrys_own() -> None:
    deployment = worker_deployment("ns", "copy", "uid-1", SPEC, options_with())
    pod = pod_of(deployment)
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert container["image"] == "registry.example/ferry:1"
    assert container["args"] == ["worker", "--backfill", "ns/copy"]
    assert pod["serviceAccountName"] == "copier"
    assert pod["securityContext"] == {"runAsNonRoot": True,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090,
                                   "protocol": "TCP"}]
    assert container["env"] == [{"name": "FERRY_METRICS_PORT", "value": "9090"}]
    for key in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity",
                "hostNetwork"):
        assert key not in pod
    assert "resources" not in container


def test_the_template_is_merged_into_the_pod() -> None:
    before = yaml.safe_dump(TEMPLATE)
    pod = pod_of(worker_deployment("ns", "copy", "u", SPEC, options_with(TEMPLATE)))
    (container,) = pod["containers"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"pool": "copy"}
    assert pod["tolerations"] == TEMPLATE["tolerations"]
    assert pod["affinity"] == TEMPLATE["affinity"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    # Security contexts: merged over Ferry's restricted defaults.
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001,
                                      "fsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": False,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"] == TEMPLATE["resources"]
    # Volumes, mounts and env add to Ferry's; Ferry's own variable keeps its value.
    assert [v["name"] for v in pod["volumes"]] == ["tmp", "repo"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp", "/mnt/snapshots"]
    assert container["env"] == [{"name": "FERRY_METRICS_PORT", "value": "9090"},
                                {"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]
    assert yaml.safe_dump(TEMPLATE) == before, "the template itself is not changed"
    # A second Backfill gets the same, not what the first one's merge left behind.
    again = pod_of(worker_deployment("ns", "other", "u", SPEC, options_with(TEMPLATE)))
    assert [v["name"] for v in again["volumes"]] == ["tmp", "repo"]


def test_metrics_port_zero_opens_no_port_and_paused_means_no_replicas() -> None:
    paused = SPEC.model_copy(update={"paused": True})
    deployment = worker_deployment("ns", "copy", "u", paused,
                                   options_with(worker_metrics_port=0))
    (container,) = pod_of(deployment)["containers"]
    assert deployment["spec"]["replicas"] == 0
    assert "ports" not in container
    assert container["env"] == [{"name": "FERRY_METRICS_PORT", "value": "0"}]


def test_the_operators_bind_address_is_passed_on_and_the_default_is_not() -> None:
    (container,) = pod_of(worker_deployment(
        "ns", "copy", "u", SPEC, options_with(bind_address="127.0.0.1")))["containers"]
    assert container["env"] == [{"name": "FERRY_METRICS_PORT", "value": "9090"},
                                {"name": "FERRY_BIND_ADDRESS", "value": "127.0.0.1"}]
    assert OperatorOptions.from_env({"FERRY_BIND_ADDRESS": "127.0.0.1"}).bind_address \
        == "127.0.0.1"
    assert OperatorOptions.from_env({"FERRY_BIND_ADDRESS": ""}).bind_address == "0.0.0.0"


def test_no_worker_image_is_a_reason_not_a_made_up_name() -> None:
    with pytest.raises(FerryError) as raised:
        worker_deployment("ns", "copy", "u", SPEC, OperatorOptions())
    assert raised.value.code == "NoWorkerImage" and raised.value.retryable
    assert "FERRY_WORKER_IMAGE" in raised.value.message


def test_the_template_file_is_read_at_start(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(TEMPLATE))
    env = {"FERRY_WORKER_TEMPLATE": str(path), "FERRY_WORKER_METRICS_PORT": "9400"}
    options = OperatorOptions.from_env(env)
    assert options.worker_template == TEMPLATE and options.worker_metrics_port == 9400
    # Unknown keys or wrong types: logged, and no template rather than half of one.
    path.write_text(yaml.safe_dump({"nodeSelector": [], "hostNetwrk": True}))
    with caplog.at_level(logging.WARNING, "ferry.settings"):
        assert OperatorOptions.from_env(env).worker_template == {}
    assert "unknown key 'hostNetwrk'" in caplog.text and "nodeSelector must be a dict" \
        in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "ferry.settings"):
        missing = {"FERRY_WORKER_TEMPLATE": str(tmp_path / "absent.yaml")}
        assert OperatorOptions.from_env(missing).worker_template == {}
    assert "does not exist" in caplog.text
