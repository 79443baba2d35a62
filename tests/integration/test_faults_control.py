"""Faults of the control side, survived with nothing lost: the API server restarted
mid-backfill and mid-snapshot, the operator killed during a Snapshot, a worker process
killed while it holds a lease, and the target's password rotated during a copy.

The API server and operator restarts happen on a private API server (its own etcd,
CRDs and operator): the session ones are shared by every test.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_backfill import backfill, clusters, condition, count, phase_in
from test_cluster import secret
from test_snapshot import fill, phase_is, snapshot

from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.proxy import ReverseProxy, basic_auth_gate
from testbed.search import SearchNode

if TYPE_CHECKING:
    from conftest import SecretValues

pytestmark = pytest.mark.integration

CRDS = Path(__file__).resolve().parents[2] / "crds"
DOCS = 12_000  # in 3 shards: 3 work items
# A worker's lease in the lease test: short, through the production setting.
LEASE_SECONDS = 4


@dataclass
class Bed:
    """A private API server (own etcd, port, certificates, CRDs) and an operator of
    its own on it, watching one namespace."""

    kube: KubeAPIServer
    operator: OperatorProcess
    namespace: str


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("faults-control")
    kube = KubeAPIServer(workdir=root / "kube").start()
    operator: OperatorProcess | None = None
    try:
        kube.kubectl("apply", "--server-side", "-f", str(CRDS))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l",
                     "app.kubernetes.io/part-of=ferry")
        namespace = "faults"
        kube.kubectl("create", "namespace", namespace)
        operator = OperatorProcess(kube.kubeconfig, args=("--namespace", namespace),
                                   env={"FERRY_LEASE_SECONDS": "10"},
                                   workdir=root / "operator").start()
        yield Bed(kube, operator, namespace)
    finally:
        if operator is not None:
            operator.stop()
        kube.stop()


@pytest.fixture(scope="module")
def source_index(elasticsearch: SearchNode) -> Iterator[str]:
    """DOCS web-log documents in three shards on the Elasticsearch source."""
    name = f"fc-logs-{uuid.uuid4().hex[:6]}"
    datagen.load(elasticsearch, datagen.logs_index(name, shards=3), datagen.log_docs(DOCS))
    yield name
    elasticsearch.request("DELETE", f"/{name}")


@pytest.fixture(scope="module")
def blobs(elasticsearch: SearchNode) -> Iterator[str]:
    """About 6 MB on disk of incompressible text: a snapshot of it throttled to 512 KB/s
    runs for about 12 s."""
    name = f"fc-blobs-{uuid.uuid4().hex[:6]}"
    filler = base64.b64encode(random.Random(name).randbytes(2400 * 1000)).decode()
    fill(elasticsearch, name, 3000, shards=2,
         body=lambda i: {"n": i, "blob": filler[i * 1000:(i + 1) * 1000]})
    yield name
    elasticsearch.request("DELETE", f"/{name}")


def slow_snapshot(node: SearchNode, name: str, index: str, rate: str
                  ) -> tuple[str, dict[str, Any]]:
    """A Snapshot of ``index`` into a fresh fs repository throttled to ``rate``."""
    repo = f"fc-{uuid.uuid4().hex[:6]}"
    return repo, snapshot(name, repo, node.repo / repo, clusterRef="snapshot-source",
                          indices=[index], repository={"maxSnapshotBytesPerSec": rate})


def snapshot_source(node: SearchNode) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "snapshot-source"}, "spec": {"endpoint": node.url}}


def repository_snapshots(node: SearchNode, repo: str) -> list[dict[str, Any]]:
    return node.request("GET", f"/_snapshot/{repo}/_all")["snapshots"]  # type: ignore[index]


def drop_repository(node: SearchNode, repo: str) -> None:
    for snap in repository_snapshots(node, repo):
        node.request("DELETE", f"/_snapshot/{repo}/{snap['snapshot']}")
    node.request("DELETE", f"/_snapshot/{repo}")


def migrated(obj: dict[str, Any]) -> int:
    return int(obj["status"]["progress"]["docsMigrated"])


def assert_copied_exactly(obj: dict[str, Any], target: SearchNode, index: str) -> None:
    status = obj["status"]
    assert status["phase"] == "Completed", status
    assert condition(obj, "Verified")["status"] == "True", status
    assert condition(obj, "Failed")["status"] == "False", status
    assert status["progress"]["docsMigrated"] == DOCS
    assert status["progress"]["docsFailed"] == 0
    assert count(target, index) == DOCS


def test_api_server_restarted_mid_backfill_and_mid_snapshot(
        bed: Bed, elasticsearch: SearchNode, opensearch: SearchNode, source_index: str,
        blobs: str) -> None:
    kube, ns = bed.kube, bed.namespace
    prefix = f"apiserver-{uuid.uuid4().hex[:6]}-"
    target = prefix + source_index
    # 12,000 documents at 100/s: two minutes, so the copy outlasts the restart on any
    # machine; the change made after the restart lifts the limit.
    kube.apply(ns, *clusters(elasticsearch.url, opensearch.url),
               backfill("restart", indices=[source_index], targetNaming={"prefix": prefix},
                        workers=2, batch={"maxDocs": 100},
                        throttle={"maxDocsPerSecond": 100}))
    before = kube.wait_for("backfill", ns, "restart", lambda o: migrated(o) >= 300,
                           timeout=120)
    repo, snap = slow_snapshot(elasticsearch, "during-restart", blobs, "512kb")
    kube.apply(ns, snapshot_source(elasticsearch), snap)
    kube.wait_for("snapshot", ns, "during-restart", phase_is("InProgress"), timeout=60)
    # Both mid-way as the API server goes, as the engines tell.
    [engine_side] = repository_snapshots(elasticsearch, repo)
    assert engine_side["state"] == "IN_PROGRESS"
    assert count(opensearch, target) < DOCS
    kube.stop_apiserver()
    time.sleep(3)  # down for a while: status writes and watches fail meanwhile
    kube.start_apiserver()
    # The watches are back: a change made now reaches the running Backfill (more
    # workers, no limit) and the Snapshot (deletionPolicy).
    kube.kubectl("patch", "backfill", "restart", "-n", ns, "--type=merge", "-p",
                 json.dumps({"spec": {"workers": 3, "throttle": {"maxDocsPerSecond": None}}}))
    kube.kubectl("patch", "snapshot", "during-restart", "-n", ns, "--type=merge",
                 "-p", json.dumps({"spec": {"deletionPolicy": "Delete"}}))
    scaled = kube.wait_for("backfill", ns, "restart",
                           lambda o: o["status"]["desiredWorkers"] == 3
                           or o["status"]["phase"] != "Running", timeout=60)
    assert scaled["status"]["phase"] == "Running", scaled["status"]
    # Status kept advancing after the restart.
    assert migrated(before) < migrated(scaled) < DOCS
    done = kube.wait_for("backfill", ns, "restart",
                         phase_in("Completed", "Failed", "CompletedWithErrors"), timeout=180)
    assert_copied_exactly(done, opensearch, target)
    snap_obj = kube.wait_for("snapshot", ns, "during-restart",
                             lambda o: phase_is("Completed", "True")(o)
                             and o["status"]["observedGeneration"] == 2, timeout=120)
    assert snap_obj["status"]["adopted"] is False
    assert snap_obj["status"]["snapshotUuid"] == engine_side["uuid"]
    [final] = repository_snapshots(elasticsearch, repo)
    assert (final["uuid"], final["state"]) == (engine_side["uuid"], "SUCCESS")
    drop_repository(elasticsearch, repo)


def test_operator_killed_during_a_snapshot_adopts_it_as_its_own(
        bed: Bed, elasticsearch: SearchNode, blobs: str) -> None:
    kube, ns = bed.kube, bed.namespace
    repo, snap = slow_snapshot(elasticsearch, "across-restart", blobs, "512kb")
    kube.apply(ns, snapshot_source(elasticsearch), snap)
    running = kube.wait_for("snapshot", ns, "across-restart", phase_is("InProgress"),
                            timeout=60)
    [engine_side] = repository_snapshots(elasticsearch, repo)
    assert engine_side["state"] == "IN_PROGRESS"
    bed.operator.kill()
    # The worst moment to die is just after the snapshot was started and before its
    # status was written: the restarted operator then knows nothing of it but the
    # engine's own record. Take the status away to be at that moment.
    kube.kubectl("patch", "snapshot", "across-restart", "-n", ns, "--subresource=status",
                 "--type=json", "-p", '[{"op": "remove", "path": "/status"}]')
    assert "status" not in (kube.get("snapshot", ns, "across-restart") or {})
    bed.operator.start()
    done = kube.wait_for("snapshot", ns, "across-restart", phase_is("Completed", "True"),
                         timeout=120)
    status = done["status"]
    # Its own (the owner tag on the snapshot names this resource), not started twice.
    assert status["adopted"] is False, status
    assert status["snapshotUuid"] == engine_side["uuid"] == running["status"]["snapshotUuid"]
    [final] = repository_snapshots(elasticsearch, repo)
    assert (final["uuid"], final["state"]) == (engine_side["uuid"], "SUCCESS")
    reasons = [e["reason"] for e in kube.events(ns, "across-restart")]
    assert reasons.count("Started") == 1 and "Adopted" not in reasons, reasons
    drop_repository(elasticsearch, repo)


def items(node: SearchNode, coord: str) -> dict[str, dict[str, Any]]:
    node.request("POST", f"/{coord}/_refresh")
    hits = node.request("POST", f"/{coord}/_search", {
        "size": 100, "query": {"term": {"kind": "item"}}})["hits"]["hits"]  # type: ignore[index]
    return {h["_id"]: h["_source"] for h in hits}


def poll(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise TimeoutError(what)


def pid_of(holder: str) -> int:
    """The process of a work item's holder: ``<host>-<pid>-<random>-<backfill>-<slot>``
    (the host name may hold dashes; the Backfill here does not)."""
    return int(holder.rsplit("-", 4)[1])


def test_worker_killed_holding_a_lease_its_item_is_taken_over(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, source_index: str, namespace: str, tmp_path: Path) -> None:
    prefix = f"{namespace}-"
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill("leases", indices=[source_index], targetNaming={"prefix": prefix},
                        workers=2, executor="pods", batch={"maxDocs": 200},
                        throttle={"maxDocsPerSecond": 1000}))
    kube.wait_for("deployment", namespace, "ferry-worker-leases",
                  lambda d: d["spec"]["replicas"] == 2, timeout=60)
    # No kubelet: run what the pods would run, with the lease shortened by the
    # production setting.
    env = {"KUBECONFIG": str(kube.kubeconfig), "PATH": "/usr/bin:/bin",
           "FERRY_LEASE_SECONDS": str(LEASE_SECONDS), "FERRY_METRICS_PORT": "0"}
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    workers = [subprocess.Popen([sys.executable, "-m", "ferry.cli", "worker", "--backfill",
                                 f"{namespace}/leases", "--log-format", "plain"], env=env,
                                stdout=log.open("wb"), stderr=subprocess.STDOUT)
               for log in logs]
    try:
        obj = kube.wait_for("backfill", namespace, "leases",
                            lambda o: bool(o["status"].get("coordinationIndex")), timeout=60)
        coord = obj["status"]["coordinationIndex"]
        victim, survivor = (w.pid for w in workers)
        seen: dict[str, set[str]] = {}  # item -> holders seen on it

        def look() -> dict[str, dict[str, Any]]:
            found = items(opensearch, coord)
            for item_id, src in found.items():
                if src.get("holder"):
                    seen.setdefault(item_id, set()).add(src["holder"])
            return found

        held: dict[str, Any] = {}

        def both_hold() -> bool:
            found = look()
            live = {i: s for i, s in found.items() if s["state"] == "leased"}
            # The victim's item with a checkpoint saved: there is progress to resume.
            mine = [i for i, s in live.items()
                    if pid_of(s["holder"]) == victim and s["checkpoint"] > s["seq_from"]]
            held.update({"item": mine[0]} if mine else {})
            return bool(mine) and any(pid_of(s["holder"]) == survivor for s in live.values())

        poll("both workers holding an item", both_hold, timeout=90)
        taken = held["item"]
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(10)
        at_kill = look()[taken]
        assert at_kill["state"] == "leased" and pid_of(at_kill["holder"]) == victim

        after: dict[str, Any] = {}

        def taken_over() -> bool:
            after.update(look()[taken])
            return bool(after.get("holder")) and pid_of(after["holder"]) == survivor

        poll(f"{taken} claimed by the surviving worker", taken_over, timeout=90)
        # Claimed once more, resumed from the dead worker's checkpoint (not from the
        # start of the item).
        assert after["claims"] == at_kill["claims"] + 1
        assert after["checkpoint"] >= at_kill["checkpoint"] > at_kill["seq_from"]
        done = kube.wait_for("backfill", namespace, "leases",
                             phase_in("Completed", "Failed", "CompletedWithErrors"),
                             timeout=180)
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                try:
                    w.wait(60)
                except subprocess.TimeoutExpired:
                    w.kill()
    final = look()
    assert final[taken]["state"] == "done" and pid_of(final[taken]["holder"]) == survivor
    assert final[taken]["claims"] == after["claims"]
    # Both worker processes held items over the run.
    holders = {h for hs in seen.values() for h in hs}
    assert {pid_of(h) for h in holders} == {victim, survivor}
    assert_copied_exactly(done, opensearch, prefix + source_index)


def test_target_password_rotated_mid_copy(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, source_index: str, namespace: str,
        proxies: list[ReverseProxy], secret_values: SecretValues) -> None:
    old, new = secret_values.new("old-pw"), secret_values.new("new-pw")
    accepted = {"ferry": old}
    proxy = ReverseProxy(opensearch.url, gate=basic_auth_gate(accepted)).start()
    proxies.append(proxy)
    prefix = f"{namespace}-"
    auth = {"basic": {"secretName": "target-creds"}}
    # (Both passwords are registered for the run-wide leak scan; the user name is not
    # a secret.)
    kube.apply(namespace, secret("target-creds", username="ferry", password=old),
               *clusters(elasticsearch.url, proxy.url, auth=auth),
               backfill("rotated", indices=[source_index], targetNaming={"prefix": prefix},
                        workers=2, batch={"maxDocs": 200},
                        throttle={"maxDocsPerSecond": 1000}))
    kube.wait_for("backfill", namespace, "rotated", lambda o: migrated(o) >= 1000,
                  timeout=120)
    # The cluster takes the new password and refuses the old one from now on; the
    # Secret follows only once the Backfill said so. It waits, it does not fail.
    accepted["ferry"] = new
    mid = kube.wait_for("backfill", namespace, "rotated", lambda o: "AuthenticationFailed"
                        in {c["reason"] for c in o["status"]["conditions"]}, timeout=60)
    assert mid["status"]["phase"] == "Running" and migrated(mid) < DOCS, mid["status"]
    assert condition(mid, "Failed")["status"] == "False"
    kube.apply(namespace, secret("target-creds", username="ferry", password=new))
    done = kube.wait_for("backfill", namespace, "rotated",
                         phase_in("Completed", "Failed", "CompletedWithErrors"), timeout=180)
    assert_copied_exactly(done, opensearch, prefix + source_index)
    # The new password carried the rest of the copy: every bulk since it was accepted.
    new_header = "Basic " + base64.b64encode(f"ferry:{new}".encode()).decode()
    assert any(r.path.startswith("/_bulk") and r.header("Authorization") == new_header
               for r in proxy.seen)
