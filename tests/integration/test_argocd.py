"""GitOps: what Argo CD and the kstatus tools (Flux, kpt) make of Ferry's resources,
computed by their own libraries (build/bin/ferry-gitops, built from hack/gitops/ by
`make testbed`) on statuses the operator wrote on the real API server; and the
kustomizations and sync waves render and pass a server-side dry run.

- Argo CD runs the custom health checks of examples/gitops/argocd-cm-health.yaml in
  gopher-lua without the standard libraries, opening only package, base, table and an os
  with time and date (its util/lua): the helper runs them in that same VM, set up the
  same way, so a script that calls string.find fails here as it would there.
- kstatus is sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, what Flux's health checks
  and `kpt live status` call: InProgress, Current or Failed from observedGeneration and
  the Reconciling/Stalled/Ready conditions the operator writes."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.api.backfill import BackfillStatus
from ferry.api.snapshot import SnapshotStatus
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.paths import binary
from testbed.procs import free_port
from testbed.proxy import ReverseProxy
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "examples" / "gitops"
VALID = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def _helper(*args: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    tool = binary("ferry-gitops", "run `make testbed` (hack/gitops/build.sh builds it)")
    return subprocess.run([str(tool), *args], input=json.dumps(obj), capture_output=True,
                          text=True, timeout=30)


class ArgoHealth:
    """The three scripts, each run as Argo CD runs it: a fresh VM, `obj` global."""

    def __init__(self, scripts_dir: Path) -> None:
        cm = yaml.safe_load((GITOPS / "argocd-cm-health.yaml").read_text())
        prefix = "resource.customizations.health.ferry.dev_"
        self.dir = scripts_dir
        self.scripts = {key.removeprefix(prefix): src for key, src in cm["data"].items()}

    def run(self, script: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        path = self.dir / f"{uuid.uuid4().hex[:8]}.lua"
        path.write_text(script)
        return _helper("argocd-health", str(path), obj=obj)

    def __call__(self, obj: dict[str, Any]) -> tuple[str, str]:
        result = self.run(self.scripts[obj["kind"]], obj)
        assert result.returncode == 0, result.stderr
        health = json.loads(result.stdout)
        assert health["status"] in VALID, health
        return health["status"], health["message"]


def kstatus(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as kstatus computes them."""
    result = _helper("kstatus", obj=obj)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    return out["status"], out["message"]


@pytest.fixture(scope="module")
def health(tmp_path_factory: pytest.TempPathFactory) -> ArgoHealth:
    return ArgoHealth(tmp_path_factory.mktemp("argocd-health"))


def test_scripts_cover_the_kinds_and_run_without_string_or_math(health: ArgoHealth) -> None:
    assert sorted(health.scripts) == ["Backfill", "Cluster", "Snapshot"]
    # The VM is set up as Argo CD's: a script using a library it does not open fails.
    obj = {"kind": "Cluster", "metadata": {}}
    for script in ('local s = string.lower("X") return {status = "Healthy"}',
                   'local n = math.floor(1.5) return {status = "Healthy"}',
                   'local h = os.getenv("HOME") return {status = "Healthy"}'):
        failed = health.run(script, obj)
        assert failed.returncode == 1 and "attempt to" in failed.stderr, script
    assert health.run('return {status = "Healthy", message = os.date("!%Y")}', obj
                      ).returncode == 0
    # A status Argo CD does not know reads as Unknown, as in Argo CD.
    odd = json.loads(health.run('return {status = "Fine"}', obj).stdout)
    assert odd == {"status": "Unknown", "message": "Lua returned an invalid health status"}


def _cluster(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": name},
            "spec": {"endpoint": endpoint, **spec}}


def _phase(*phases: str):
    return lambda obj: obj["status"]["phase"] in phases


# -- statuses the operator wrote -------------------------------------------------------------

def test_cluster_statuses_written_by_the_operator(
        health: ArgoHealth, kube: KubeAPIServer, operator: OperatorProcess,
        opensearch: SearchNode, namespace: str) -> None:
    # Just created: the API server's answer to the apply, before the operator wrote.
    created = json.loads(kube.kubectl("apply", "-n", namespace, "-o", "json", "-f", "-",
                                      input=json.dumps(_cluster("ready", opensearch.url)))
                         .stdout)
    assert "status" not in created
    assert health(created)[0] == "Progressing"
    dead = f"http://127.0.0.1:{free_port()}"
    kube.apply(namespace, _cluster("down", dead, connection={"maxRetries": 0}),
               _cluster("nocreds", opensearch.url, auth={"basic": {"secretName": "absent"}}))
    ready = kube.wait_for("cluster", namespace, "ready", _phase("Ready"), timeout=60)
    down = kube.wait_for("cluster", namespace, "down", _phase("Unreachable"), timeout=60)
    nocreds = kube.wait_for("cluster", namespace, "nocreds", _phase("Invalid"), timeout=60)
    assert health(ready) == ("Healthy", ready["status"]["message"])
    status, message = health(down)
    assert status == "Degraded" and message.startswith("Unreachable: ") and dead in message
    status, message = health(nocreds)
    assert status == "Degraded" and "Secret" in message and "absent" in message
    # kstatus: Ready is Current; unreachable is retried (InProgress); a missing Secret
    # waits for a person (Stalled: Failed, with the message that says what to fix).
    assert kstatus(ready)[0] == "Current"
    assert kstatus(down)[0] == "InProgress"
    status, message = kstatus(nocreds)
    assert status == "Failed" and "absent" in message
    # A spec the operator has not looked at yet reads as Progressing ...
    stale = copy.deepcopy(ready)
    stale["metadata"]["generation"] = ready["status"]["observedGeneration"] + 1
    assert health(stale)[0] == "Progressing"
    assert kstatus(stale)[0] == "InProgress"
    # ... and Healthy again once it has (a real spec change, really observed).
    kube.kubectl("patch", "cluster/ready", "-n", namespace, "--type=merge", "-p",
                 json.dumps({"spec": {"healthCheck": {"intervalSeconds": 120}}}))
    observed = kube.wait_for("cluster", namespace, "ready", lambda o: o["status"][
        "observedGeneration"] == o["metadata"]["generation"] == 2, timeout=60)
    assert health(observed)[0] == "Healthy"


def test_snapshot_and_backfill_statuses_written_by_the_operator(
        health: ArgoHealth, kube: KubeAPIServer, operator: OperatorProcess,
        opensearch: SearchNode, namespace: str, proxies: list[ReverseProxy]) -> None:
    src = f"argo-{uuid.uuid4().hex[:6]}"
    opensearch.request("PUT", f"/{src}", {"settings": {"number_of_shards": 1,
                                                       "number_of_replicas": 0}})
    docs = "".join(f'{{"index":{{"_id":"{i}"}}}}\n{{"n":{i}}}\n' for i in range(30))
    opensearch.request("POST", f"/{src}/_bulk?refresh=true", docs.encode())
    proxy = ReverseProxy(opensearch.url).start()  # a second endpoint for the target
    proxies.append(proxy)

    def backfill(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
                "metadata": {"name": name},
                "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "target"},
                         "indices": [src], "targetNaming": {"suffix": f"-{name}"}, **spec}}

    try:
        kube.apply(namespace, _cluster("source", opensearch.url),
                   _cluster("target", proxy.url),
                   _cluster("archive", proxy.url, readOnly=True),
                   {"apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot",
                    "metadata": {"name": "snap"},
                    "spec": {"clusterRef": {"name": "source"}, "indices": [src],
                             "repository": {"name": f"argo-{src}", "type": "fs", "fs": {
                                 "location": str(opensearch.repo / f"argo-{src}")}}}},
                   backfill("copy"), backfill("held", paused=True),
                   {**backfill("refused"), "spec": {**backfill("refused")["spec"],
                                                    "targetRef": {"name": "archive"}}})
        snap = kube.wait_for("snapshot", namespace, "snap", _phase("Completed", "Failed",
                                                                   "PartiallyFailed"),
                             timeout=90)
        assert snap["status"]["phase"] == "Completed"
        assert health(snap)[0] == "Healthy"
        assert kstatus(snap)[0] == "Current"
        copied = kube.wait_for("backfill", namespace, "copy",
                               _phase("Completed", "Failed"), timeout=120)
        assert copied["status"]["phase"] == "Completed", copied["status"]
        assert health(copied)[0] == "Healthy"
        assert kstatus(copied)[0] == "Current"
        held = kube.wait_for("backfill", namespace, "held", _phase("Paused"), timeout=90)
        status, message = health(held)
        assert status == "Suspended" and message.startswith("Paused: ")
        assert kstatus(held)[0] == "InProgress"  # not done: Ready is False
        refused = kube.wait_for("backfill", namespace, "refused", _phase("Failed"),
                                timeout=60)
        assert health(refused)[0] == "Degraded"
        status, message = kstatus(refused)
        assert status == "Failed" and "readOnly" in message
    finally:
        kube.kubectl("delete", "-n", namespace, "--wait=false", "backfills.ferry.dev",
                     "--all", check=False)
        opensearch.request("DELETE", f"/{src}*")


# -- statuses made by hand (the rarer phases), each one a valid status of its kind ---------

def _obj(kind: str, status: dict[str, Any] | None, generation: int = 1,
         **spec: Any) -> dict[str, Any]:
    model = {"Snapshot": SnapshotStatus, "Backfill": BackfillStatus}[kind]
    if status is not None:
        # HAND-MADE: validated against the models the CRDs are generated from.
        model.model_validate(status)
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "generation": generation}, "spec": spec,
            **({"status": status} if status is not None else {})}


def _cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}


@pytest.mark.parametrize(("obj", "expected"), [
    (_obj("Snapshot", None), "Progressing"),
    (_obj("Snapshot", {"phase": "InProgress", "observedGeneration": 1,
                       "progress": {"percent": 40.0}}), "Progressing"),
    (_obj("Snapshot", {"phase": "PartiallyFailed", "observedGeneration": 1,
                       "message": "2 of 3 shards"}), "Degraded"),
    (_obj("Snapshot", {"phase": "Failed", "observedGeneration": 1}), "Degraded"),
    (_obj("Snapshot", {"phase": "Deleting", "observedGeneration": 1}), "Progressing"),
    # A finished snapshot stays finished whatever happens to the spec later.
    (_obj("Snapshot", {"phase": "Completed", "observedGeneration": 1}, generation=2),
     "Healthy"),
    (_obj("Backfill", None), "Progressing"),
    (_obj("Backfill", {"phase": "Running", "observedGeneration": 1,
                       "progress": {"percent": 12.5}}), "Progressing"),
    (_obj("Backfill", {"phase": "Running", "observedGeneration": 1}, generation=2,
          paused=True), "Progressing"),       # paused, not yet seen by the operator
    (_obj("Backfill", {"phase": "Running", "observedGeneration": 2}, generation=2,
          workers=0), "Suspended"),
    (_obj("Backfill", {"phase": "CompletedWithErrors", "observedGeneration": 1,
                       "progress": {"docsFailed": 3}}), "Healthy"),
    (_obj("Backfill", {"phase": "Evaluated", "observedGeneration": 1}), "Healthy"),
    (_obj("Backfill", {"phase": "Completed", "observedGeneration": 1,
                       "conditions": [_cond("Verified", "False", "CountMismatch",
                                            "orders: 10 != 9")]}), "Degraded"),
    (_obj("Backfill", {"phase": "Failed", "observedGeneration": 1,
                       "message": "target rejected"}), "Degraded"),
], ids=lambda v: v if isinstance(v, str) else
    f"{v['kind']}-{(v.get('status') or {}).get('phase', 'none')}-g{v['metadata']['generation']}")
def test_hand_made_statuses(health: ArgoHealth, obj: dict[str, Any], expected: str) -> None:
    assert health(obj)[0] == expected


# -- the kustomizations and the Applications ---------------------------------------------

def test_examples_kustomization_passes_a_server_dry_run(kube: KubeAPIServer, crds: KubeAPIServer,
                                                        namespace: str) -> None:
    rendered = kube.kubectl("kustomize", str(ROOT / "examples")).stdout
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered))
    assert kinds == ["Backfill", "Cluster", "Cluster", "Secret", "Snapshot"]
    out = kube.kubectl("apply", "-n", namespace, "--dry-run=server", "--validate=strict",
                       "-f", "-", input=rendered).stdout
    assert out.count("(server dry run)") == 5


def test_migration_application_sync_waves(kube: KubeAPIServer, crds: KubeAPIServer,
                                          namespace: str, tmp_path: Path) -> None:
    app = yaml.safe_load((GITOPS / "application-migration.yaml").read_text())
    source = app["spec"]["source"]
    assert (ROOT / source["path"] / "kustomization.yaml").is_file()
    # What Argo CD does with spec.source.kustomize.patches: add them to the
    # kustomization at `path` and build it.
    work = tmp_path / "examples"
    shutil.copytree(ROOT / source["path"], work)
    kustomization = yaml.safe_load((work / "kustomization.yaml").read_text())
    kustomization["patches"] = source["kustomize"]["patches"]
    (work / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    rendered = list(yaml.safe_load_all(kube.kubectl("kustomize", str(work)).stdout))
    waves = {(d["kind"], d["metadata"]["name"]):
             int(d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
             for d in rendered}
    assert waves == {("Secret", "source-credentials"): 0, ("Cluster", "source"): 0,
                     ("Cluster", "target"): 0, ("Snapshot", "source-before-migration"): 1,
                     ("Backfill", "source-to-target"): 2}
    out = kube.kubectl("apply", "-n", namespace, "--dry-run=server", "--validate=strict",
                       "-f", "-", input="---\n".join(yaml.safe_dump(d) for d in rendered))
    assert out.stdout.count("(server dry run)") == 5
    assert app["spec"]["ignoreDifferences"][0]["jsonPointers"] == ["/spec/workers"]


def test_operator_application_points_at_the_chart() -> None:
    app = yaml.safe_load((GITOPS / "application-ferry.yaml").read_text())
    source = app["spec"]["source"]
    assert (ROOT / source["path"] / "Chart.yaml").is_file()
    values = yaml.safe_load((ROOT / source["path"] / "values.yaml").read_text())
    assert set(source["helm"]["valuesObject"]) <= set(values)
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < 0
