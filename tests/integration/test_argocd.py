"""GitOps: the Argo CD health checks (examples/gitops/argocd-cm-health.yaml) run in a
real Lua 5.1 runtime with only the libraries Argo CD opens for custom checks, against
statuses the operator wrote on the real API server; and the kustomizations and sync waves
render and pass a server-side dry run.

Argo CD runs custom health checks in gopher-lua (Lua 5.1) with the base, table and
package libraries and a reduced os, not string or math (its util/lua/lua.go). lupa's
Lua 5.1 is the same language; the sandbox below removes what Argo CD does not open, so
a script that calls string.find fails here as it would there."""

from __future__ import annotations

import copy
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from ferry.api.backfill import BackfillStatus
from ferry.api.snapshot import SnapshotStatus
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.procs import free_port
from testbed.proxy import ReverseProxy
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "examples" / "gitops"
VALID = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


class ArgoHealth:
    """The three scripts, each run as Argo CD runs it: a fresh state, `obj` global."""

    def __init__(self) -> None:
        cm = yaml.safe_load((GITOPS / "argocd-cm-health.yaml").read_text())
        prefix = "resource.customizations.health.ferry.dev_"
        self.scripts = {key.removeprefix(prefix): src for key, src in cm["data"].items()}

    def __call__(self, obj: dict[str, Any]) -> tuple[str, str]:
        runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
        # What Argo CD does not open for custom scripts (useOpenLibs false).
        runtime.execute('debug.setmetatable("", nil) string = nil math = nil io = nil '
                        'os = nil debug = nil coroutine = nil')
        run = runtime.eval("function(src, o) obj = o return assert(loadstring(src))() end")
        result = run(self.scripts[obj["kind"]], runtime.table_from(obj, recursive=True))
        health = dict(result)
        assert health["status"] in VALID, health
        return health["status"], health.get("message", "")


@pytest.fixture(scope="module")
def health() -> ArgoHealth:
    return ArgoHealth()


def test_scripts_cover_the_kinds_and_run_without_string_or_math(health: ArgoHealth) -> None:
    assert sorted(health.scripts) == ["Backfill", "Cluster", "Snapshot"]
    # The sandbox is real: a script using the string library fails in it.
    sandboxed = ArgoHealth()
    sandboxed.scripts["Cluster"] = 'local s = string.lower("X") return {status = "Healthy"}'
    with pytest.raises(lua51.LuaError):
        sandboxed({"kind": "Cluster", "metadata": {}})


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
    # A spec the operator has not looked at yet reads as Progressing ...
    stale = copy.deepcopy(ready)
    stale["metadata"]["generation"] = ready["status"]["observedGeneration"] + 1
    assert health(stale)[0] == "Progressing"
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
                   {"apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot",
                    "metadata": {"name": "snap"},
                    "spec": {"clusterRef": {"name": "source"}, "indices": [src],
                             "repository": {"name": f"argo-{src}", "type": "fs", "fs": {
                                 "location": str(opensearch.repo / f"argo-{src}")}}}},
                   backfill("copy"), backfill("held", paused=True))
        snap = kube.wait_for("snapshot", namespace, "snap", _phase("Completed", "Failed",
                                                                   "PartiallyFailed"),
                             timeout=90)
        assert snap["status"]["phase"] == "Completed"
        assert health(snap)[0] == "Healthy"
        copied = kube.wait_for("backfill", namespace, "copy",
                               _phase("Completed", "Failed"), timeout=120)
        assert copied["status"]["phase"] == "Completed", copied["status"]
        assert health(copied)[0] == "Healthy"
        held = kube.wait_for("backfill", namespace, "held", _phase("Paused"), timeout=90)
        status, message = health(held)
        assert status == "Suspended" and message.startswith("Paused: ")
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
