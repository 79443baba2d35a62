"""What a person or Prometheus sees: `ferry status` and /metrics, against the real
API server with a real operator and real nodes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.clients import kube as kube_client
from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.paths import BIN
from testbed.procs import free_port
from testbed.search import SearchNode

pytestmark = pytest.mark.integration


@pytest.fixture
def scene(kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
          opensearch: SearchNode, namespace: str) -> Iterator[dict[str, str]]:
    """A Ready source, an unreachable Cluster, and a finished Backfill."""
    src = f"obs-{uuid.uuid4().hex[:6]}"
    datagen.load(elasticsearch, datagen.users_index(src), datagen.user_docs(1200))
    kube.apply(namespace,
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                "metadata": {"name": "source"}, "spec": {"endpoint": elasticsearch.url}},
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                "metadata": {"name": "target"}, "spec": {"endpoint": opensearch.url}},
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                "metadata": {"name": "gone"},
                "spec": {"endpoint": f"http://127.0.0.1:{free_port()}",
                         "connection": {"maxRetries": 0}}},
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
                "metadata": {"name": "users"},
                "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "target"},
                         "indices": [src], "targetNaming": {"suffix": "-copy"}}})
    kube.wait_for("backfill", namespace, "users",
                  lambda o: o["status"]["phase"] == "Completed", timeout=120)
    kube.wait_for("cluster", namespace, "gone",
                  lambda o: o["status"]["phase"] == "Unreachable", timeout=60)
    kube.wait_for("cluster", namespace, "source",
                  lambda o: o["status"]["phase"] == "Ready", timeout=60)
    yield {"namespace": namespace, "index": src}


def test_metrics_endpoint_reports_resources(operator: OperatorProcess,
                                            scene: dict[str, str]) -> None:
    ns = scene["namespace"]
    text = operator.metrics()
    assert f'ferry_cluster_ready{{name="source",namespace="{ns}"}} 1.0' in text
    assert f'ferry_cluster_ready{{name="gone",namespace="{ns}"}} 0.0' in text
    assert f'ferry_backfill_documents_migrated_total{{name="users",namespace="{ns}"}} 1200.0' \
        in text
    assert f'ferry_backfill_progress_percent{{name="users",namespace="{ns}"}} 100.0' in text
    assert (f'ferry_resource_phase{{kind="Backfill",name="users",namespace="{ns}",'
            'phase="Completed"} 1.0') in text
    assert (f'ferry_backfill_work_items{{name="users",namespace="{ns}",state="completed"}}'
            in text)
    assert (f'ferry_reconcile_errors_total{{kind="Cluster",name="gone",namespace="{ns}",'
            'reason="ConnectionRefused"} 1.0') in text


def test_ferry_status_renders_every_resource(kube: KubeAPIServer, scene: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ferry.statusview import render_text

    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    kube_client.reset()
    try:
        text = render_text(scene["namespace"], width=200)
    finally:
        kube_client.reset()
    lines = text.splitlines()
    source = next(line for line in lines if line.startswith("│ source"))
    assert "elasticsearch" in source and "7.10.2" in source and "Ready" in source
    assert any("gone" in line and "Unreachable" in line for line in lines)
    users = next(line for line in lines if line.startswith("│ users"))
    assert "source → target" in users and "Completed" in users
    assert "1,200/1,200" in users and "100.0%" in text
    for title in ("Clusters", "Snapshots", "Backfills"):
        assert title in text


def test_kubectl_plugin(kube: KubeAPIServer, scene: dict[str, str]) -> None:
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "COLUMNS": "200",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    out = subprocess.run([str(BIN / "kubectl"), "ferry", "status", "-n", scene["namespace"]],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "users" in out.stdout and "Completed" in out.stdout
