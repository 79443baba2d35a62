"""What a person or Prometheus sees: `ferry status` and /metrics, against the real
API server with a real operator and real nodes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

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


# Prometheus' naming conventions (prometheus.io/docs/practices/naming): base units
# only, as the last word before _total; no words for units that are not base units.
UNITS = ("seconds", "bytes", "ratio")
NOT_BASE_UNITS = ("milliseconds", "_ms", "microseconds", "minutes", "hours", "kilobytes",
                  "megabytes", "_kb", "_mb", "percent", "per_second", "_rate")


def convention_problems(text: str) -> list[str]:
    """What in a /metrics text breaks the conventions Ferry promises."""
    problems = []
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in types.items():
        if (kind == "counter") != name.endswith("_total"):
            problems.append(f"{name}: a {kind}; _total is for counters, and only them")
        problems += [f"{name}: {word} is not a base unit" for word in NOT_BASE_UNITS
                     if word in name]
        words = name.removesuffix("_total").split("_")
        problems += [f"{name}: the unit {unit} is not its suffix" for unit in UNITS
                     if unit in words and words[-1] != unit]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                problems.append(f"{sample.name}: _created series are off")
            if sample.name.endswith("_ratio") and not 0 <= sample.value <= 1:
                problems.append(f"{sample.name}{sample.labels}: {sample.value} not in 0..1")
    return problems


def _values(text: str, series: str, **labels: str) -> dict[str, float]:
    """``series``' samples whose labels include ``labels``, keyed by their other labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == series and labels.items() <= sample.labels.items():
                rest = {k: v for k, v in sample.labels.items() if k not in labels}
                out[",".join(f"{k}={v}" for k, v in sorted(rest.items()))] = sample.value
    return out


def test_metrics_endpoint_reports_resources_by_the_conventions(
        kube: KubeAPIServer, operator: OperatorProcess, scene: dict[str, str]) -> None:
    ns = scene["namespace"]
    text = operator.metrics()
    assert convention_problems(text) == []
    (build,) = _values(text, "ferry_build_info")
    assert "version=0.1.0" in build
    ready = _values(text, "ferry_cluster_ready", namespace=ns)
    assert (ready["name=gone"], ready["name=source"]) == (0, 1)
    assert _values(text, "ferry_backfill_documents_migrated_total", namespace=ns,
                   name="users") == {"": 1200}
    assert _values(text, "ferry_backfill_progress_ratio", namespace=ns,
                   name="users") == {"": 1.0}
    # States as state sets: one series per phase (or color), the current one 1.
    phases = _values(text, "ferry_resource_phase", kind="Backfill", namespace=ns,
                     name="users")
    assert {k for k, v in phases.items() if v == 1} == {"phase=Completed"}
    assert len(phases) > 5 and set(phases.values()) == {0.0, 1.0}
    health = _values(text, "ferry_cluster_health_status", namespace=ns, name="gone")
    assert health == {"color=green": 0, "color=yellow": 0, "color=red": 0,
                      "color=unknown": 1}
    assert _values(text, "ferry_backfill_work_items", namespace=ns, name="users",
                   state="completed")
    assert _values(text, "ferry_reconcile_errors_total", kind="Cluster", namespace=ns,
                   name="gone") == {"reason=ConnectionRefused": 1}
    # The target's bulk requests, timed in the one request path, per Cluster.
    (bulks,) = _values(text, "ferry_cluster_bulk_request_duration_seconds_count",
                       namespace=ns, name="target").values()
    assert bulks >= 1
    # A deleted resource takes its series along.
    kube.kubectl("delete", "-n", ns, "cluster/gone", "--wait=true", "--timeout=60s")
    deadline = time.monotonic() + 30
    while _values(operator.metrics(), "ferry_cluster_ready", namespace=ns, name="gone"):
        assert time.monotonic() < deadline, "the deleted Cluster's series stayed"
        time.sleep(0.5)
    text = operator.metrics()
    for series in ("ferry_resource_phase", "ferry_cluster_health_status",
                   "ferry_reconcile_errors_total"):
        assert _values(text, series, namespace=ns, name="gone") == {}, series
    assert _values(text, "ferry_cluster_ready", namespace=ns, name="source") == {"": 1}


def ferry_status(kube: KubeAPIServer, *args: str, plugin: bool = False
                 ) -> subprocess.CompletedProcess[str]:
    """`ferry status ARGS` (or `kubectl ferry status ARGS`) as a user runs it."""
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "COLUMNS": "80",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [str(BIN / "kubectl"), "ferry"] if plugin else \
        [str(Path(sys.executable).parent / "ferry")]
    return subprocess.run([*command, "status", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_ferry_status_for_people_scripts_and_ci(kube: KubeAPIServer, opensearch: SearchNode,
                                                scene: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """What the operator wrote, as `ferry status` shows it: the view at 80 columns, the
    JSON for scripts, exit code 1 once a Failed resource is shown, and one line for a
    resource that does not exist."""
    from ferry.statusview import render_text

    ns = scene["namespace"]
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    kube_client.reset()
    try:
        text = render_text(ns, width=80)
    finally:
        kube_client.reset()
    lines = text.splitlines()
    source = next(line for line in lines if line.startswith("source "))
    assert "elasticsearch 7.10.2" in source and "Ready" in source
    assert any(line.startswith("gone ") and "Unreachable" in line for line in lines)
    users = next(line for line in lines if line.startswith("users "))
    assert "source → target" in users and "Completed" in users
    assert "1,200/1,200" in users and "100.0%" in users

    out = ferry_status(kube, "-n", ns, "-o", "json")
    assert out.returncode == 0, out.stderr
    phases = {(i["kind"], i["name"]): i["phase"] for i in json.loads(out.stdout)["items"]}
    assert phases == {("Cluster", "source"): "Ready", ("Cluster", "target"): "Ready",
                      ("Cluster", "gone"): "Unreachable", ("Backfill", "users"): "Completed"}

    # A Backfill into a readOnly Cluster fails at once; from then on the exit code is 1.
    kube.apply(ns,
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                "metadata": {"name": "frozen"},
                "spec": {"endpoint": opensearch.url, "readOnly": True}},
               {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
                "metadata": {"name": "doomed"},
                "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "frozen"},
                         "indices": [scene["index"]]}})
    kube.wait_for("backfill", ns, "doomed", lambda o: o["status"]["phase"] == "Failed",
                  timeout=60)
    out = ferry_status(kube, "-n", ns, "-o", "json")
    assert out.returncode == 1, out.stderr
    doomed = next(i for i in json.loads(out.stdout)["items"] if i["name"] == "doomed")
    assert doomed["failed"] is True and doomed["phase"] == "Failed"
    out = ferry_status(kube, "backfill/doomed", "-n", ns, plugin=True)
    assert out.returncode == 1, out.stderr
    assert "TargetReadOnly" in out.stdout and "readOnly" in out.stdout
    out = ferry_status(kube, "backfill/nope", "-n", ns)
    assert (out.returncode, out.stderr) == (1, f"ferry: backfill {ns}/nope not found "
                                               "(backfills.ferry.dev)\n")
