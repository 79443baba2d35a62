"""The chart's RBAC is sufficient and minimal, proven on a real API server with the RBAC
authorizer on and an audit log.

- Sufficient: the operator runs locally with a TokenRequest token of the chart's own
  ServiceAccount (installed with helm), in both modes, and takes Clusters, a Snapshot and
  Backfills (in-process, and `executor: pods` with a `ferry worker` running as the chart's
  worker ServiceAccount) to their goal on a real OpenSearch node; the API server refused
  none of its requests.
- Minimal, verb by verb: every verb the chart grants shows up in the audit log as a
  request the operator (or the worker) made.
- Minimal, rule by rule: with any one rule removed the operator is refused and a goal
  is missed (each variant in its own namespace, all at once).

The operators here would act on each other's resources in a shared API server, so this
module starts its own (and one more for the CRD rule), in seconds."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from testbed import procs
from testbed.helm import CHART, Helm, find, service_account_kubeconfig
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.pki import CertificateAuthority
from testbed.procs import free_port
from testbed.proxy import ReverseProxy, basic_auth_gate
from testbed.search import SearchNode

if TYPE_CHECKING:
    from conftest import SecretValues

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "ferry-system"
PASSWORD = f"pw-{uuid.uuid4().hex}"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
              {"level": "None"}],
}


# -- the bed: an audited API server, both releases of the chart, a node behind proxies ----

@dataclass
class Bed:
    kube: KubeAPIServer
    audit_log: Path
    node: SearchNode
    auth_url: str            # basic auth (user ferry, PASSWORD)
    tls_url: str             # TLS with a test CA
    ca_pem: str
    index: str               # a small source index on the node
    helm: Helm
    work: Path
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def kubeconfig(self, namespace: str, service_account: str) -> Path:
        return service_account_kubeconfig(
            self.kube, namespace, service_account,
            self.work / f"kubeconfig-{namespace}-{service_account}")

    def audit(self, user: str) -> list[dict[str, Any]]:
        events = [json.loads(line) for line in self.audit_log.read_text().splitlines()]
        return [e for e in events if e["user"]["username"] == user]


@pytest.fixture(scope="module")
def bed(opensearch: SearchNode, secret_values: SecretValues) -> Iterator[Bed]:
    secret_values.add(PASSWORD)
    work = Path(tempfile.mkdtemp(prefix="ferry-rbac-"))
    policy = work / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    audit_log = work / "audit.log"
    kube = KubeAPIServer(extra_args=(f"--audit-policy-file={policy}",
                                     f"--audit-log-path={audit_log}")).start()
    ca = CertificateAuthority("ferry-rbac-proxy-ca")
    server_pair = ca.issue("proxy", hosts=("127.0.0.1", "localhost")).write(work, "proxy")
    tls = ReverseProxy(opensearch.url, tls=server_pair).start()
    auth = ReverseProxy(opensearch.url, gate=basic_auth_gate({"ferry": PASSWORD})).start()
    index = f"rbac-src-{uuid.uuid4().hex[:6]}"
    opensearch.request("PUT", f"/{index}", {"settings": {"number_of_shards": 1,
                                                         "number_of_replicas": 0}})
    docs = "".join(f'{{"index":{{"_id":"{i}"}}}}\n{{"n":{i}}}\n' for i in range(40))
    opensearch.request("POST", f"/{index}/_bulk?refresh=true", docs.encode())
    b = Bed(kube, audit_log, opensearch, auth.url, tls.url, ca.cert_pem.decode(), index,
            Helm(), work)
    try:
        for ns in (SYSTEM, "apps", "team-a", "team-b", "team-c"):
            kube.kubectl("create", "namespace", ns)
        # All namespaces (with a worker ServiceAccount in "apps"), and a second release
        # for two listed namespaces that leaves the CRDs to the first.
        b.helm.run("install", "ferry", str(CHART), "-n", SYSTEM, "--values",
                   str(b.helm.values_file({"podsExecutor": {"namespaces": ["apps"]}})),
                   kube=kube)
        b.helm.run("install", "ferry-ns", str(CHART), "-n", SYSTEM, "--values",
                   str(b.helm.values_file({"crds": {"install": False},
                                           "watchNamespaces": ["team-a", "team-b"]})),
                   kube=kube)
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l",
                     "app.kubernetes.io/part-of=ferry")
        yield b
    finally:
        for fn in reversed(b.cleanup):
            fn()
        auth.stop()
        tls.stop()
        kube.stop()
        opensearch.request("DELETE", f"/{index}*")


def chart_operator(bed: Bed, release_deployment: str, kubeconfig: Path,
                   name: str) -> OperatorProcess:
    """`ferry run` with the args and env the chart's Deployment gives the container (its
    own liveness port instead of 8080, so several run side by side)."""
    deploy = json.loads(bed.kube.kubectl("get", "deployment", release_deployment, "-n", SYSTEM,
                                         "-o", "json").stdout)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "run"
    args = tuple(a for a in container["args"][1:] if not a.startswith("--liveness="))
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env["POD_ID"] = name
    return OperatorProcess(kubeconfig, args=args, env=env,
                           workdir=bed.work / f"operator-{name}")


def start_all(operators: list[OperatorProcess]) -> None:
    for op in operators:
        op.workdir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(len(operators)) as pool:
        list(pool.map(lambda op: op.start(), operators))


def kill_all(operators: list[OperatorProcess]) -> None:
    """SIGKILL: these tests are not about shutting down (test_cluster.py is)."""
    for op in operators:
        op.kill()


# -- what each namespace gets, and what a working operator makes of it --------------------

def _cluster(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": name},
            "spec": {"endpoint": endpoint, "healthCheck": {"intervalSeconds": 3600}, **spec}}


def refs(bed: Bed, good: bool) -> list[dict[str, Any]]:
    """The Secret and the ConfigMap the Clusters read: wrong at first, then right (only
    the watches can tell: the Clusters check once an hour)."""
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
             "stringData": {"username": "ferry", "password": PASSWORD if good else "wrong"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ca"},
             "data": {"ca.crt": bed.ca_pem if good else "not a certificate"}}]


def clusters(bed: Bed) -> list[dict[str, Any]]:
    return [_cluster("auth", bed.auth_url, auth={"basic": {"secretName": "creds"}}),
            _cluster("tls", bed.tls_url, tls={"caConfigMapRef": {"name": "ca",
                                                                 "key": "ca.crt"}}),
            _cluster("direct", bed.node.url)]


def migration(bed: Bed, ns: str) -> list[dict[str, Any]]:
    def backfill(name: str, source: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
                "metadata": {"name": name},
                "spec": {"sourceRef": {"name": source}, "targetRef": {"name": "tls"},
                         "indices": [bed.index],
                         "targetNaming": {"suffix": f"-{ns}-{name}"}, **spec}}

    return [{"apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot",
             "metadata": {"name": "snap"},
             "spec": {"clusterRef": {"name": "direct"}, "indices": [bed.index],
                      "repository": {"name": f"rbac-{ns}", "type": "fs",
                                     "fs": {"location": str(bed.node.repo / f"rbac-{ns}")}}}},
            backfill("copy", "direct"),
            backfill("pods", "auth", executor="pods", workers=2)]


def _ts(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


def wait_gone(kube: KubeAPIServer, ns: str, *objects: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(kube.kubectl("get", o, "-n", ns, check=False).returncode != 0 for o in objects):
            return True
        time.sleep(0.5)
    return False


def apply_in(kube: KubeAPIServer, namespaces: list[str], objects: list[dict[str, Any]]) -> None:
    items = [{**copy.deepcopy(o), "metadata": {**o["metadata"], "namespace": ns}}
             for ns in namespaces for o in objects]
    kube.kubectl("apply", "-f", "-",
                 input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def phase(kube: KubeAPIServer, kind: str, ns: str, name: str) -> str | None:
    obj = kube.get(kind, ns, name)
    return None if obj is None else (obj.get("status") or {}).get("phase")


def is_phase(*phases: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: obj["status"]["phase"] in phases


def first_round(bed: Bed, namespaces: list[str], reference: str) -> None:
    apply_in(bed.kube, namespaces, refs(bed, good=False) + clusters(bed))
    bed.kube.wait_for("cluster", reference, "auth", is_phase("AuthenticationFailed"), timeout=60)
    bed.kube.wait_for("cluster", reference, "tls", is_phase("Invalid"), timeout=60)
    bed.kube.wait_for("cluster", reference, "direct", is_phase("Ready"), timeout=60)


def second_round(bed: Bed, namespaces: list[str], reference: str,
                 migrating: list[str] | None = None) -> None:
    apply_in(bed.kube, namespaces, refs(bed, good=True))
    for ns in namespaces if migrating is None else migrating:
        apply_in(bed.kube, [ns], migration(bed, ns))
    k = bed.kube
    k.wait_for("cluster", reference, "auth", is_phase("Ready"), timeout=60)
    k.wait_for("cluster", reference, "tls", is_phase("Ready"), timeout=60)
    k.wait_for("snapshot", reference, "snap", is_phase("Completed", "Failed"), timeout=120)
    k.wait_for("backfill", reference, "copy", is_phase("Completed", "Failed"), timeout=180)
    k.wait_for("deployment", reference, "ferry-worker-pods",
               lambda d: d["spec"]["replicas"] == 2, timeout=120)


def observe(bed: Bed, ns: str) -> dict[str, Any]:
    k = bed.kube
    deployment = k.get("deployment", ns, "ferry-worker-pods")
    return {
        "clusters": {c: phase(k, "cluster", ns, c) for c in ("auth", "tls", "direct")},
        "snapshot": phase(k, "snapshot", ns, "snap"),
        "copy": phase(k, "backfill", ns, "copy"),
        "deployment": deployment and deployment["spec"]["replicas"],
        "events": sorted({e["reason"] for e in k.events(ns)}),
        "finalizers": (k.get("cluster", ns, "direct") or {}).get("metadata", {}).get(
            "finalizers"),
        "direct_ready_reason": next(
            (c["reason"] for c in ((k.get("cluster", ns, "direct") or {}).get(
                "status") or {}).get("conditions", []) if c["type"] == "Ready"), None),
        "direct_ready_since": next(
            (c["lastTransitionTime"] for c in ((k.get("cluster", ns, "direct") or {}).get(
                "status") or {}).get("conditions", []) if c["type"] == "Ready"), None),
    }


def moments(bed: Bed, user: str, verb: str, resource: str,
            refused: bool = False) -> list[datetime]:
    """When the API server answered ``user``'s ``verb`` on ``resource`` (refused with 403,
    or granted), in order."""
    return sorted(_ts(e["stageTimestamp"]) for e in bed.audit(user)
                  if e["stage"] == "ResponseComplete" and e["verb"] == verb
                  and _resource(e) == resource
                  and (e["responseStatus"]["code"] == 403) == refused)


def refused(bed: Bed, user: str) -> list[str]:
    return sorted({f"{e['verb']} {_resource(e)}" for e in bed.audit(user)
                   if e["stage"] == "ResponseComplete" and e["responseStatus"]["code"] == 403})


def _resource(event: dict[str, Any]) -> str:
    ref = event.get("objectRef", {})
    sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
    return f"{ref.get('apiGroup') or 'core'}/{ref.get('resource')}{sub}"


# -- sufficient: both modes, end to end ---------------------------------------------------

@pytest.fixture(scope="module")
def all_namespaces_run(bed: Bed) -> dict[str, Any]:
    """The chart's all-namespaces release, in namespace apps."""
    k, ns = bed.kube, "apps"
    op = chart_operator(bed, "ferry", bed.kubeconfig(SYSTEM, "ferry"), "all-namespaces")
    start_all([op])
    bed.cleanup.append(op.kill)
    first_round(bed, [ns], ns)
    first = observe(bed, ns)
    second_round(bed, [ns], ns)
    second = observe(bed, ns)
    # Scale the pods Backfill (the operator patches its Deployment), move a Cluster (the
    # operator notices the spec change), then let a real `ferry worker` finish the copy
    # as the chart's worker ServiceAccount, as the Deployment's pods would.
    k.kubectl("scale", "backfill/pods", "-n", ns, "--replicas=3")
    apply_in(k, [ns], [_cluster("moved", bed.node.url)])
    k.wait_for("cluster", ns, "moved", is_phase("Ready"), timeout=60)
    k.kubectl("patch", "cluster/moved", "-n", ns, "--type=merge", "-p", json.dumps(
        {"spec": {"endpoint": f"http://127.0.0.1:{free_port()}",
                  "connection": {"maxRetries": 0}}}))
    k.wait_for("deployment", ns, "ferry-worker-pods", lambda d: d["spec"]["replicas"] == 3,
               timeout=60)
    moved = k.wait_for("cluster", ns, "moved", is_phase("Unreachable"), timeout=60)
    deployment = k.get("deployment", ns, "ferry-worker-pods")
    worker_kc = bed.kubeconfig(ns, "ferry-worker")
    worker = subprocess.run(
        [sys.executable, "-m", "ferry.cli", "worker", "--backfill", f"{ns}/pods",
         "--log-format", "plain"], capture_output=True, text=True, timeout=240,
        env={"KUBECONFIG": str(worker_kc), "PATH": "/usr/bin:/bin",
             "FERRY_LEASE_SECONDS": "15"})
    worker_log = bed.work / "worker.log"
    worker_log.write_text(worker.stdout + worker.stderr)
    procs.LOGS.append(("ferry-worker", worker_log))  # read by the run's log checks
    pods = k.wait_for("backfill", ns, "pods", is_phase("Completed", "Failed"), timeout=120)
    # Deleting: the operator deletes the worker Deployment and releases its finalizer.
    k.kubectl("delete", "backfill/pods", "-n", ns, "--wait=false")
    gone = wait_gone(k, ns, "deployment/ferry-worker-pods", "backfill/pods")
    kill_all([op])
    return {"first": first, "second": second, "moved": moved, "deployment": deployment,
            "worker": worker, "pods": pods, "deleted": gone,
            "log": op.logs()}


def test_all_namespaces_with_the_chart_service_account(bed: Bed,
                                                       all_namespaces_run: dict[str, Any]
                                                       ) -> None:
    run = all_namespaces_run
    assert run["first"]["clusters"] == {"auth": "AuthenticationFailed", "tls": "Invalid",
                                        "direct": "Ready"}
    second = run["second"]
    assert second["clusters"] == {"auth": "Ready", "tls": "Ready", "direct": "Ready"}
    assert second["snapshot"] == "Completed" and second["copy"] == "Completed", second
    assert second["finalizers"] == ["ferry.dev/finalizer"]
    # The Ready transition's event carries the condition's reason: "Healthy" on a green
    # node, "HealthYellow" once another test left an index with an unassigned replica on
    # the shared node (why "Healthy" alone went missing here).
    assert second["direct_ready_reason"] in {"Healthy", "HealthYellow"}
    assert {"AuthenticationFailed", "InvalidCA", second["direct_ready_reason"]} <= \
        set(second["events"]), second
    assert bed.node.request("GET", f"/{bed.index}-apps-copy/_count")["count"] == 40  # type: ignore[index]
    assert run["moved"]["status"]["phase"] == "Unreachable"
    pod_spec = run["deployment"]["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "ferry-worker"  # created by the chart in apps
    assert pod_spec["containers"][0]["image"] == "ferry-operator:0.1.0"
    assert run["pods"]["status"]["phase"] == "Completed", (run["pods"]["status"],
                                                           run["worker"].stdout[-2000:])
    assert run["deleted"]
    assert "Forbidden" not in run["log"] and " 403" not in run["log"]
    assert refused(bed, f"system:serviceaccount:{SYSTEM}:ferry") == []
    assert refused(bed, "system:serviceaccount:apps:ferry-worker") == []


# -- minimal, rule by rule ----------------------------------------------------------------

def namespaced_rules(bed: Bed) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rules the chart renders for a listed namespace: (Role, ClusterRole)."""
    objects = bed.helm.render({"watchNamespaces": ["placeholder"]})
    (role,) = find(objects, "Role")
    (cluster_role,) = find(objects, "ClusterRole", "ferry-cluster")
    return role["rules"], cluster_role["rules"]


def rule_id(rule: dict[str, Any]) -> str:
    resources = rule["resources"]
    if rule["apiGroups"] == ["ferry.dev"]:
        if all(r.endswith("/status") for r in resources):
            return "ferry-status"
        return "ferry-get" if rule["verbs"] == ["get"] else "ferry-kinds"
    return {"customresourcedefinitions": "crds"}.get(resources[0], resources[0])


# What breaks without each rule, as goals a working operator reaches. The all-namespaces
# ClusterRole has the same rules (and never lists namespaces).
EXPECTED_MISS = {
    "ferry-kinds": {"first-status"},        # kopf cannot list/watch: nothing is handled
    "ferry-get": {"snapshot", "copy"},      # Snapshots/Backfills cannot read their Clusters
    "ferry-status": {"first-status"},       # no status is ever written
    "secrets": {"auth"},                    # credentials unreadable, rotations unseen
    "configmaps": {"tls"},                  # CA bundles unreadable, fixes unseen
    "events": {"events"},                   # no Events
    "deployments": {"deployment"},          # executor pods cannot create its workers
    "namespaces": {"first-status"},         # kopf retries ~1 min before serving (late)
    "crds": {"crd-appears"},                # see test_removing_the_crd_rule
}


def goals(first: dict[str, Any], second: dict[str, Any]) -> set[str]:
    reached = set()
    if first["clusters"]["direct"] is not None:
        reached.add("first-status")
    if second["clusters"]["auth"] == "Ready":
        reached.add("auth")
    if second["clusters"]["tls"] == "Ready":
        reached.add("tls")
    if second["snapshot"] == "Completed":
        reached.add("snapshot")
    if second["copy"] == "Completed":
        reached.add("copy")
    if second["deployment"] == 2:
        reached.add("deployment")
    if second["events"]:
        reached.add("events")
    return reached


ALL_GOALS = {"first-status", "auth", "tls", "snapshot", "copy", "deployment", "events"}
MIGRATION_GOALS = {"snapshot", "copy", "deployment"}
# The rules whose removal only a Snapshot or a Backfill can show.
MIGRATION_RULES = ("ferry-get", "deployments")


@pytest.fixture(scope="module")
def listed_namespaces_run(bed: Bed, all_namespaces_run: dict[str, Any]) -> dict[str, Any]:
    """The chart's listed-namespaces release (team-a, team-b) and, side by side, one
    operator per rule of that release with the rule removed, each in its own namespace."""
    k = bed.kube
    role_rules, cluster_rules = namespaced_rules(bed)
    variants = sorted({rule_id(r) for r in role_rules + cluster_rules} - {"crds"})
    operators = [chart_operator(bed, "ferry-ns", bed.kubeconfig(SYSTEM, "ferry-ns"), "full")]
    namespaces = ["team-a"]
    logs = {"team-a": operators[0].logs}
    for variant in variants:
        ns, sa = f"without-{variant}", f"without-{variant}"
        k.kubectl("create", "namespace", ns)
        k.kubectl("create", "serviceaccount", sa, "-n", SYSTEM)
        role = [r for r in role_rules if rule_id(r) != variant]
        crole = [r for r in cluster_rules if rule_id(r) != variant]
        subject = [{"kind": "ServiceAccount", "name": sa, "namespace": SYSTEM}]
        rbac = "rbac.authorization.k8s.io"
        k.apply(ns, {"apiVersion": f"{rbac}/v1", "kind": "Role",
                     "metadata": {"name": sa}, "rules": role},
                {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": {"name": sa},
                 "roleRef": {"apiGroup": rbac, "kind": "Role", "name": sa},
                 "subjects": subject},
                {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole",
                 "metadata": {"name": sa}, "rules": crole},
                {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": sa},
                 "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": sa},
                 "subjects": subject})
        op = chart_operator(bed, "ferry-ns", bed.kubeconfig(SYSTEM, sa), variant)
        op.args = ("--namespace", ns)
        operators.append(op)
        namespaces.append(ns)
        logs[ns] = op.logs
    start_all(operators)
    bed.cleanup.append(lambda: kill_all(operators))
    # team-c is not watched: what is applied there stays untouched.
    apply_in(k, ["team-c"], clusters(bed)[2:])
    first_round(bed, namespaces, "team-a")
    time.sleep(3)
    first = {ns: observe(bed, ns) for ns in namespaces}
    # Snapshots and Backfills only where a rule for them is removed (CPU is scarce).
    migrating = ["team-a"] + [f"without-{v}" for v in MIGRATION_RULES if v in variants]
    second_round(bed, namespaces, "team-a", migrating)
    time.sleep(3)
    second = {ns: observe(bed, ns) for ns in namespaces}
    # Deleting the pods Backfill: the operator deletes its worker Deployment.
    k.kubectl("delete", "backfill/pods", "-n", "team-a", "--wait=false")
    second["team-a"]["deleted"] = wait_gone(k, "team-a", "deployment/ferry-worker-pods",
                                            "backfill/pods")
    kill_all(operators)
    return {"variants": variants, "first": first, "second": second,
            "migrating": migrating,
            "untouched": k.get("cluster", "team-c", "direct"),
            "logs": {ns: read() for ns, read in logs.items()}}


@pytest.mark.expect_traceback("Forbidden")  # rule-removed operators, by design
def test_listed_namespaces_with_the_chart_service_account(
        bed: Bed, listed_namespaces_run: dict[str, Any]) -> None:
    run = listed_namespaces_run
    first, second = run["first"]["team-a"], run["second"]["team-a"]
    assert goals(first, second) == ALL_GOALS, (first, second)
    assert second["deleted"]
    assert first["clusters"] == {"auth": "AuthenticationFailed", "tls": "Invalid",
                                 "direct": "Ready"}
    assert "status" not in run["untouched"] and "finalizers" not in run["untouched"]["metadata"]
    assert refused(bed, f"system:serviceaccount:{SYSTEM}:ferry-ns") == []


def test_the_rules_are_the_ones_with_a_removal_test(bed: Bed) -> None:
    role_rules, cluster_rules = namespaced_rules(bed)
    assert sorted(rule_id(r) for r in role_rules + cluster_rules) == sorted(EXPECTED_MISS)


@pytest.mark.expect_traceback("Forbidden")  # rule-removed operators, by design
@pytest.mark.parametrize("variant", sorted(set(EXPECTED_MISS) - {"crds"}))
def test_removing_a_rule_breaks_the_operator(bed: Bed, listed_namespaces_run: dict[str, Any],
                                             variant: str) -> None:
    run = listed_namespaces_run
    ns = f"without-{variant}"
    if variant == "namespaces":
        # Late, not never: kopf retries the refused namespace list with growing backoffs
        # (how many tries fit before it serves the listed namespaces anyway depends on
        # the machine's pace), and goes on retrying its namespace watch. In the audit
        # log's order: the full operator wrote a status first, and this one only after
        # refused lists.
        user = f"system:serviceaccount:{SYSTEM}:{ns}"
        lists = moments(bed, user, "list", "core/namespaces", refused=True)
        writes = moments(bed, user, "patch", "ferry.dev/clusters/status")
        full = moments(bed, f"system:serviceaccount:{SYSTEM}:ferry-ns", "patch",
                       "ferry.dev/clusters/status")
        before = [t for t in lists if not writes or t < writes[0]]
        assert len(before) >= 2, (lists, writes[:1])
        assert full and (not writes or full[0] < writes[0]), (full[:1], writes[:1])
    reached = goals(run["first"][ns], run["second"][ns])
    possible = ALL_GOALS if ns in run["migrating"] else ALL_GOALS - MIGRATION_GOALS
    missed = possible - reached
    if variant != "namespaces":
        assert missed >= EXPECTED_MISS[variant], (variant, run["first"][ns], run["second"][ns])
    # The API server refused the operator a request that this rule grants.
    role_rules, cluster_rules = namespaced_rules(bed)
    (rule,) = [r for r in role_rules + cluster_rules if rule_id(r) == variant]
    groups = {g or "core" for g in rule["apiGroups"]}
    refusals = refused(bed, f"system:serviceaccount:{SYSTEM}:{ns}")
    assert any(f"{verb} {group}/{res}" in refusals for verb in rule["verbs"]
               for group in groups for res in rule["resources"]), refusals


# -- minimal, verb by verb ----------------------------------------------------------------

def granted(rules: list[dict[str, Any]]) -> set[str]:
    return {f"{verb} {group or 'core'}/{res}" for rule in rules for group in rule["apiGroups"]
            for res in rule["resources"] for verb in rule["verbs"]}


def used(bed: Bed, user: str) -> set[str]:
    return {f"{e['verb']} {_resource(e)}" for e in bed.audit(user)
            if e["responseStatus"]["code"] < 400}


@pytest.mark.expect_traceback("Forbidden")  # rule-removed operators, by design
def test_every_granted_verb_is_used(bed: Bed, all_namespaces_run: dict[str, Any],
                                    listed_namespaces_run: dict[str, Any]) -> None:
    k = bed.kube

    def rules_of(kind: str, name: str, ns: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, name, "-o", "json"] + (["-n", ns] if ns else [])
        return json.loads(k.kubectl(*args).stdout)["rules"]

    checks = {
        f"system:serviceaccount:{SYSTEM}:ferry": rules_of("clusterrole", "ferry"),
        f"system:serviceaccount:{SYSTEM}:ferry-ns": rules_of("role", "ferry-ns", "team-a")
        + rules_of("clusterrole", "ferry-ns-cluster"),
        "system:serviceaccount:apps:ferry-worker": rules_of("clusterrole", "ferry-worker"),
    }
    for user, rules in checks.items():
        unused = granted(rules) - used(bed, user)
        assert unused == set(), f"{user} is granted what it never uses: {sorted(unused)}"


# -- the CRD rule: CRDs that appear after the operator started ----------------------------

def test_removing_the_crd_rule(bed: Bed, tmp_path: Path) -> None:
    """Without list/watch on CRDs kopf serves only what existed when it started: here
    the CRDs arrive after the operators (as with crds.install=false and CRDs applied
    later), and only the operator with the rule serves them."""
    kube = KubeAPIServer().start()
    operators: list[OperatorProcess] = []
    try:
        _, cluster_rules = namespaced_rules(bed)
        role_rules, _ = namespaced_rules(bed)
        rbac = "rbac.authorization.k8s.io"
        kube.kubectl("create", "namespace", SYSTEM)
        for variant in ("with-crds", "without-crds"):
            kube.kubectl("create", "namespace", variant)
            kube.kubectl("create", "serviceaccount", variant, "-n", SYSTEM)
            crole = [r for r in cluster_rules
                     if variant == "with-crds" or rule_id(r) != "crds"]
            subject = [{"kind": "ServiceAccount", "name": variant, "namespace": SYSTEM}]
            kube.apply(variant,
                       {"apiVersion": f"{rbac}/v1", "kind": "Role",
                        "metadata": {"name": variant}, "rules": role_rules},
                       {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
                        "metadata": {"name": variant},
                        "roleRef": {"apiGroup": rbac, "kind": "Role", "name": variant},
                        "subjects": subject},
                       {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole",
                        "metadata": {"name": variant}, "rules": crole},
                       {"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
                        "metadata": {"name": variant},
                        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": variant},
                        "subjects": subject})
            kc = service_account_kubeconfig(kube, SYSTEM, variant, tmp_path / variant)
            operators.append(OperatorProcess(kc, args=("--namespace", variant),
                                              workdir=tmp_path / f"op-{variant}"))
        start_all(operators)
        time.sleep(1)
        kube.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l",
                     "app.kubernetes.io/part-of=ferry")
        for variant in ("with-crds", "without-crds"):
            kube.apply(variant, _cluster("direct", bed.node.url))
        kube.wait_for("cluster", "with-crds", "direct", is_phase("Ready"), timeout=60)
        time.sleep(4)
        assert "status" not in (kube.get("cluster", "without-crds", "direct") or {})
        # kopf was refused the CRD list (it retries for a minute, then only warns).
        assert 'cannot list resource \\"customresourcedefinitions\\"' in operators[1].logs()
    finally:
        kill_all(operators)
        kube.stop()
