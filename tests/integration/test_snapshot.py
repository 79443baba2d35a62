"""Snapshot end to end: `ferry run` against the real API server, real Elasticsearch 7.10
and OpenSearch 2.x nodes writing fs repositories, and moto's S3 server for the boto3
paths (the nodes have no repository-s3 plugin, so no real S3 snapshot is taken here)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.proxy import ReverseProxy
from testbed.s3 import S3Server
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "es-snapshots"
FERRY = Path(sys.executable).parent / "ferry"
ENGINES = ["elasticsearch", "opensearch"]


def cluster(name: str, endpoint: str) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {"endpoint": endpoint, "connection": {"timeoutSeconds": 5,
                                                          "maxRetries": 0}}}


def snapshot(name: str, repo: str, location: Path, clusterRef: str = "source",
             repository: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    repo_spec: dict[str, Any] = {"name": repo, "type": "fs",
                                 "fs": {"location": str(location)}}
    repo_spec.update(repository or {})
    if repo_spec["type"] != "fs":
        repo_spec.pop("fs")
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot",
            "metadata": {"name": name},
            "spec": {"clusterRef": {"name": clusterRef}, "repository": repo_spec, **spec}}


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions", [])
                 if c["type"] == type_), None)


def phase_is(phase: str, verified: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        if obj["status"]["phase"] != phase:
            return False
        if verified is None:
            return True
        cond = condition(obj, "Verified")
        return cond is not None and cond["status"] == verified
    return check


def fill(node: SearchNode, index: str, docs: int, shards: int = 1,
         body: Callable[[int], dict[str, Any]] | None = None) -> None:
    node.request("PUT", f"/{index}", {"settings": {"number_of_shards": shards,
                                                   "number_of_replicas": 0}})
    make = body or (lambda i: {"n": i, "text": f"document {i}"})
    for start in range(0, docs, 500):
        lines = "".join(f'{{"index":{{"_id":"{i}"}}}}\n{json.dumps(make(i))}\n'
                        for i in range(start, min(docs, start + 500)))
        node.request("POST", f"/{index}/_bulk", lines.encode())
    node.request("POST", f"/{index}/_refresh")


def snapshot_exists(node: SearchNode, repo: str, name: str) -> bool:
    try:
        node.request("GET", f"/_snapshot/{repo}/{name}")
        return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def wait_gone(kube: KubeAPIServer, kind: str, namespace: str, name: str,
              timeout: float) -> float:
    """Seconds until the object is gone; fails after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if kube.get(kind, namespace, name) is None:
            return time.monotonic() - start
        time.sleep(0.5)
    raise TimeoutError(f"{kind} {namespace}/{name} still exists after {timeout}s: "
                       f"{json.dumps((kube.get(kind, namespace, name) or {}).get('status'))}")


def ferry_ls(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run([str(FERRY), "snapshot", "ls", "--json", *args], capture_output=True,
                         text=True, timeout=60, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def indices() -> Iterator[list[tuple[SearchNode, str]]]:
    """Indices a test creates on a shared node, deleted afterwards whatever happens."""
    made: list[tuple[SearchNode, str]] = []
    yield made
    for node, index in made:
        with contextlib.suppress(urllib.error.HTTPError):
            node.request("DELETE", f"/{index}")


@pytest.mark.parametrize("engine", ENGINES)
def test_snapshot_completes_is_verified_adopted_and_deleted(
        request: pytest.FixtureRequest, engine: str, kube: KubeAPIServer,
        operator: OperatorProcess, namespace: str,
        indices: list[tuple[SearchNode, str]], matrix_case: Callable[..., None]) -> None:
    node: SearchNode = request.getfixturevalue(engine)
    matrix_case("snapshot adoption and deletionPolicy Delete", node)
    tag = uuid.uuid4().hex[:6]
    layout = {f"logs-{tag}-a": (2, 30), f"logs-{tag}-b": (1, 7), f"orders-{tag}": (3, 45)}
    for index, (shards, docs) in layout.items():
        fill(node, index, docs, shards)
        indices.append((node, index))
    fill(node, f".internal-{tag}", 3)
    indices.append((node, f".internal-{tag}"))
    repo, location = f"repo-{tag}", node.repo / f"repo-{tag}"
    manifest = snapshot("nightly", repo, location, indices=[f"*-{tag}*", f"-.internal-{tag}"],
                        includeGlobalState=False)
    kube.apply(namespace, cluster("source", node.url), manifest)

    obj = kube.wait_for("snapshot", namespace, "nightly", phase_is("Completed", "True"),
                        timeout=90)
    status = obj["status"]
    engine_status = node.request("GET", f"/_snapshot/{repo}/nightly/_status")["snapshots"][0]
    info = node.request("GET", f"/_snapshot/{repo}/nightly")["snapshots"][0]
    assert status["snapshotUuid"] == info["uuid"]
    assert status["engineVersion"] == info["version"] == node.number
    assert status["adopted"] is False
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["progress"]["percent"] == 100
    assert status["progress"]["shardsTotal"] == engine_status["shards_stats"]["total"] == 6
    assert status["progress"]["shardsDone"] == engine_status["shards_stats"]["done"] == 6
    assert status["progress"]["shardsFailed"] == 0
    assert status["indicesTotal"] == len(engine_status["indices"]) == 3
    assert sorted(engine_status["indices"]) == sorted(layout)
    for row in status["indices"]:
        shards, docs = layout[row["name"]]
        assert row["shardsTotal"] == row["shardsDone"] == shards
        assert row["shardsTotal"] == engine_status["indices"][row["name"]]["shards_stats"][
            "total"]
        assert row["documents"] == docs
        assert row["state"] == "DONE"
    assert status["documents"] == sum(d for _, d in layout.values())
    assert status["startTime"] and status["completionTime"]
    assert status["failures"] == []
    verified = condition(obj, "Verified")
    assert verified and verified["reason"] == "FoundInRepository"
    assert f"{location}/index-" in verified["message"]
    ready = condition(obj, "Ready")
    assert ready and ready["status"] == "True" and ready["reason"] == "Completed"
    assert condition(obj, "Failed")["status"] == "False"  # type: ignore[index]
    table = kube.kubectl("get", "snapshots", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "CLUSTER", "PHASE", "READY", "PROGRESS", "SIZE",
                                "ETA", "AGE"]
    assert table[1].split()[:5] == ["nightly", "source", "Completed", "True", "100%"]
    expected = ["Completed", "FoundInRepository", "RepositoryRegistered", "Started"]
    reasons: list[str] = []
    deadline = time.monotonic() + 10  # events are posted just after the status changes
    while reasons != expected and time.monotonic() < deadline:
        reasons = sorted(e["reason"] for e in kube.events(namespace, "nightly"))
        time.sleep(0.3)
    assert reasons == expected
    # The same repository read straight from its files, without the cluster.
    listed = ferry_ls(str(location))
    [entry] = listed["snapshots"]
    assert (entry["name"], entry["uuid"], entry["state"], entry["version"]) == (
        "nightly", info["uuid"], "SUCCESS", node.number)
    assert entry["indices"] == sorted(layout)

    # A restarted operator takes the finished Snapshot up again with a pass of its own
    # (reapplying the same manifest would trigger nothing): no second snapshot, no new
    # event, the same status.
    operator.stop()
    operator.start()
    # A second resource naming the same snapshot adopts it; being an adopter, its
    # deletionPolicy Delete does not delete a snapshot it did not start. Its Completed
    # phase also orders the check: the restarted operator lists the existing Snapshots
    # (and runs their first pass) before it sees one created after its start.
    kube.apply(namespace, snapshot("adopter", repo, location, snapshotName="nightly",
                                   indices=[f"*-{tag}*", f"-.internal-{tag}"],
                                   deletionPolicy="Delete"))
    adopter = kube.wait_for("snapshot", namespace, "adopter", phase_is("Completed", "True"),
                            timeout=60)
    assert len(node.request("GET", f"/_snapshot/{repo}/_all")["snapshots"]) == 1
    assert len(kube.events(namespace, "nightly")) == len(reasons)
    again = kube.get("snapshot", namespace, "nightly")
    assert again is not None and again["status"] == status
    assert adopter["status"]["adopted"] is True
    assert adopter["status"]["snapshotUuid"] == info["uuid"]
    assert "documents" not in adopter["status"]
    assert "Adopted" in [e["reason"] for e in kube.events(namespace, "adopter")]
    kube.kubectl("delete", "snapshot", "adopter", "-n", namespace, "--wait=false")
    wait_gone(kube, "snapshot", namespace, "adopter", timeout=60)
    assert snapshot_exists(node, repo, "nightly")
    assert len(node.request("GET", f"/_snapshot/{repo}/_all")["snapshots"]) == 1

    # Retain keeps the snapshot when the resource goes; the same manifest applied again
    # takes it back as its own (its owner is this namespace/name) rather than taking a
    # second one.
    kept = snapshot("kept", repo, location, indices=[f"logs-{tag}-b"])
    kube.apply(namespace, kept)
    first = kube.wait_for("snapshot", namespace, "kept", phase_is("Completed", "True"),
                          timeout=60)
    kube.kubectl("delete", "snapshot", "kept", "-n", namespace, "--wait=false")
    wait_gone(kube, "snapshot", namespace, "kept", timeout=60)
    assert snapshot_exists(node, repo, "kept")
    assert "Retained" in [e["reason"] for e in kube.events(namespace, "kept")]
    kube.apply(namespace, kept)
    recreated = kube.wait_for("snapshot", namespace, "kept", phase_is("Completed", "True"),
                              timeout=60)
    assert recreated["status"]["adopted"] is False
    assert recreated["status"]["snapshotUuid"] == first["status"]["snapshotUuid"]
    assert sorted(s["snapshot"] for s in node.request(
        "GET", f"/_snapshot/{repo}/_all")["snapshots"]) == ["kept", "nightly"]
    kube.kubectl("delete", "snapshot", "kept", "-n", namespace, "--wait=false")
    wait_gone(kube, "snapshot", namespace, "kept", timeout=60)

    # deletionPolicy is mutable; Delete removes the snapshot before the resource goes.
    kube.kubectl("patch", "snapshot", "nightly", "-n", namespace, "--type=merge",
                 "-p", json.dumps({"spec": {"deletionPolicy": "Delete"}}))
    kube.wait_for("snapshot", namespace, "nightly",
                  lambda o: o["status"]["observedGeneration"] == o["metadata"]["generation"],
                  timeout=30)
    kube.kubectl("delete", "snapshot", "nightly", "-n", namespace, "--wait=false")
    wait_gone(kube, "snapshot", namespace, "nightly", timeout=60)
    assert not snapshot_exists(node, repo, "nightly")
    assert "SnapshotDeleted" in [e["reason"] for e in kube.events(namespace, "nightly")]
    remaining = [s["snapshot"] for s in
                 node.request("GET", f"/_snapshot/{repo}/_all")["snapshots"]]
    assert remaining == ["kept"]
    node.request("DELETE", f"/_snapshot/{repo}/kept")
    node.request("DELETE", f"/_snapshot/{repo}")


def test_progress_is_watched_between_0_and_100(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        namespace: str, indices: list[tuple[SearchNode, str]]) -> None:
    node = elasticsearch
    tag = uuid.uuid4().hex[:6]
    rng = random.Random(tag)
    # ~2 MB of incompressible text: about 8 s at 256 KB/s, fast to index.
    filler = base64.b64encode(rng.randbytes(1500 * 1000)).decode()

    def doc(i: int) -> dict[str, Any]:
        return {"n": i, "blob": filler[i * 1000:(i + 1) * 1000]}

    fill(node, f"big-{tag}", 2000, shards=2, body=doc)
    indices.append((node, f"big-{tag}"))
    repo = f"slow-{tag}"
    kube.apply(namespace, cluster("source", node.url),
               snapshot("slow", repo, node.repo / repo, indices=[f"big-{tag}"],
                        repository={"maxSnapshotBytesPerSec": "256kb"}))
    seen: list[tuple[str, float | None, dict[str, Any]]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        obj = kube.get("snapshot", namespace, "slow") or {}
        status = obj.get("status") or {}
        progress = status.get("progress") or {}
        seen.append((status.get("phase", ""), progress.get("percent"), progress))
        if status.get("phase") == "Completed":
            break
        time.sleep(0.5)
    assert seen[-1][0] == "Completed", seen[-1]
    between = [(p, prog) for phase, p, prog in seen
               if phase == "InProgress" and p is not None and 0 < p < 100]
    assert between, f"no progress strictly between 0 and 100 seen: {seen}"
    assert any(prog.get("bytesPerSecond") and prog.get("etaSeconds") is not None
               for _, prog in between), between
    assert all(prog["bytesDone"] <= prog["bytesTotal"] for _, prog in between)
    percents = [p for _, p, _ in seen if p is not None]
    assert percents == sorted(percents), "progress went backwards"
    node.request("DELETE", f"/_snapshot/{repo}/slow")
    node.request("DELETE", f"/_snapshot/{repo}")


@pytest.mark.parametrize("engine", ENGINES)
def test_partial_and_failed_snapshots(
        request: pytest.FixtureRequest, engine: str, kube: KubeAPIServer,
        operator: OperatorProcess, namespace: str,
        indices: list[tuple[SearchNode, str]]) -> None:
    node: SearchNode = request.getfixturevalue(engine)
    tag = uuid.uuid4().hex[:6]
    fill(node, f"fine-{tag}", 10)
    indices.append((node, f"fine-{tag}"))
    # A primary that can never be assigned: the index is red.
    node.request("PUT", f"/red-{tag}?wait_for_active_shards=0", {"settings": {
        "number_of_shards": 1, "number_of_replicas": 0,
        "index.routing.allocation.require._name": "no-such-node"}})
    indices.append((node, f"red-{tag}"))
    repo, location = f"partial-{tag}", node.repo / f"partial-{tag}"
    wanted = [f"fine-{tag}", f"red-{tag}"]
    kube.apply(namespace, cluster("source", node.url),
               snapshot("partial", repo, location, indices=wanted, partial=True),
               snapshot("strict", repo, location, indices=wanted))
    obj = kube.wait_for("snapshot", namespace, "partial", phase_is("PartiallyFailed", "True"),
                        timeout=90)
    status = obj["status"]
    assert status["progress"]["shardsTotal"] == 2
    assert status["progress"]["shardsFailed"] == 1
    assert status["progress"]["shardsDone"] == 1
    [failure] = status["failures"]
    assert failure["index"] == f"red-{tag}" and failure["id"] == "shard 0"
    assert failure["reason"]
    failed = condition(obj, "Failed")
    assert failed and failed["status"] == "True" and failed["reason"] == "PartiallyFailed"
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    assert ("Warning", "PartiallyFailed") in [(e["type"], e["reason"])
                                              for e in kube.events(namespace, "partial")]

    obj = kube.wait_for("snapshot", namespace, "strict", phase_is("Failed"), timeout=60)
    failed = condition(obj, "Failed")
    assert failed and failed["status"] == "True" and failed["reason"] == "SnapshotFailed"
    assert f"red-{tag}" in obj["status"]["message"], obj["status"]["message"]
    assert not snapshot_exists(node, repo, "strict")


def test_repository_conflict_and_unsupported_repository(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        namespace: str) -> None:
    node = elasticsearch
    tag = uuid.uuid4().hex[:6]
    node.request("PUT", f"/_snapshot/taken-{tag}", {
        "type": "fs", "settings": {"location": str(node.repo / f"theirs-{tag}")}})
    kube.apply(namespace, cluster("source", node.url),
               snapshot("clash", f"taken-{tag}", node.repo / f"mine-{tag}"),
               snapshot("on-s3", f"s3-{tag}", node.repo, repository={
                   "type": "s3",
                   "s3": {"bucket": "ferry-test", "endpoint": "http://127.0.0.1:9"}}))
    obj = kube.wait_for("snapshot", namespace, "clash", phase_is("Failed"), timeout=60)
    failed = condition(obj, "Failed")
    assert failed and failed["reason"] == "RepositoryConflict"
    assert f"theirs-{tag}" in failed["message"] and f"mine-{tag}" in failed["message"]
    # Never overwritten.
    settings = node.request("GET", f"/_snapshot/taken-{tag}")[f"taken-{tag}"]["settings"]
    assert settings["location"] == str(node.repo / f"theirs-{tag}")
    obj = kube.wait_for("snapshot", namespace, "on-s3", phase_is("Failed"), timeout=60)
    failed = condition(obj, "Failed")
    assert failed and failed["reason"] == "RepositoryInvalid"
    assert "s3" in failed["message"]
    node.request("DELETE", f"/_snapshot/taken-{tag}")


def test_deletion_with_the_cluster_gone_ends_within_the_bound(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        namespace: str, indices: list[tuple[SearchNode, str]]) -> None:
    node = elasticsearch
    tag = uuid.uuid4().hex[:6]
    fill(node, f"gone-{tag}", 5)
    indices.append((node, f"gone-{tag}"))
    proxy = ReverseProxy(node.url).start()
    repo = f"gone-{tag}"
    try:
        kube.apply(namespace, cluster("source", proxy.url),
                   snapshot("orphan", repo, node.repo / repo, indices=[f"gone-{tag}"],
                            deletionPolicy="Delete"),
                   snapshot("no-cluster", repo, node.repo / repo, clusterRef="never-created",
                            deletionPolicy="Delete"))
        kube.wait_for("snapshot", namespace, "orphan", phase_is("Completed"), timeout=60)
        kube.wait_for("snapshot", namespace, "no-cluster", phase_is("Pending"), timeout=30)
    finally:
        proxy.stop()
    kube.kubectl("delete", "snapshot", "orphan", "no-cluster", "-n", namespace,
                 "--wait=false")
    bound = float(operator.env.get("FERRY_CLEANUP_TIMEOUT", "600"))
    # The bound, plus one backoff step, plus the time to notice.
    took = wait_gone(kube, "snapshot", namespace, "orphan", timeout=bound + 45)
    wait_gone(kube, "snapshot", namespace, "no-cluster", timeout=bound + 45)
    assert took >= bound - 1, f"let go after {took:.0f}s, before the {bound:.0f}s bound"
    for name in ("orphan", "no-cluster"):
        warnings = [e for e in kube.events(namespace, name) if e["type"] == "Warning"
                    and e["reason"] == "SnapshotNotDeleted"]
        assert warnings, kube.events(namespace, name)
        assert "gave up deleting snapshot" in warnings[0]["message"]
    assert "gave up deleting snapshot orphan" in operator.logs()
    # The cluster never heard of the deletion: the snapshot is still there.
    assert snapshot_exists(node, repo, "orphan")
    node.request("DELETE", f"/_snapshot/{repo}/orphan")
    node.request("DELETE", f"/_snapshot/{repo}")


# -- S3: the boto3 paths against moto's server --------------------------------------------


@pytest.fixture
def aws_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
           "AWS_DEFAULT_REGION": s3.region}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _upload(s3: S3Server, bucket: str, prefix: str, root: Path) -> None:
    from ferry.clients.s3 import s3_client

    client = s3_client(s3.url, s3.region, path_style=True)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(root)}",
                              Body=path.read_bytes())


def test_create_bucket_with_boto3(s3: S3Server, aws_env: dict[str, str]) -> None:
    from ferry.api.snapshot import Repository
    from ferry.clients.s3 import s3_client
    from ferry.services.snapshot.service import SnapshotService

    for region in ("us-east-1", "eu-west-1"):
        bucket = f"ferry-{region}-{uuid.uuid4().hex[:8]}"
        repo = Repository.model_validate({
            "name": "r", "type": "s3", "s3": {"bucket": bucket, "endpoint": s3.url,
                                              "region": region, "pathStyleAccess": True,
                                              "createBucket": True}})
        assert SnapshotService.create_bucket(repo) is True
        assert SnapshotService.create_bucket(repo) is False  # already there
        client = s3_client(s3.url, region, path_style=True)
        assert bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
        location = client.get_bucket_location(Bucket=bucket)["LocationConstraint"]
        assert (location or "us-east-1") == region


def test_snapshot_ls_and_verification_through_s3(
        s3: S3Server, aws_env: dict[str, str], elasticsearch: SearchNode,
        indices: list[tuple[SearchNode, str]]) -> None:
    from ferry.api.snapshot import Repository
    from ferry.clients.s3 import ensure_bucket, s3_client
    from ferry.services.snapshot.repository import verify_in_repository
    from ferry.services.snapshot.service import parse_snapshot_info

    # A repository the ES node wrote (compressed metadata), then copied into S3 as it
    # would be in a bucket, next to a fixture repository written by ES 5.6.
    node = elasticsearch
    tag = uuid.uuid4().hex[:6]
    fill(node, f"s3copy-{tag}", 12)
    indices.append((node, f"s3copy-{tag}"))
    location = node.repo / f"s3copy-{tag}"
    node.request("PUT", f"/_snapshot/s3copy-{tag}", {
        "type": "fs", "settings": {"location": str(location), "compress": True}})
    node.request("PUT", f"/_snapshot/s3copy-{tag}/snap-1?wait_for_completion=true",
                 {"indices": f"s3copy-{tag}"})
    bucket = f"ferry-ls-{tag}"
    ensure_bucket(s3_client(s3.url, s3.region, path_style=True), bucket, s3.region)
    _upload(s3, bucket, "es710/base", location)
    _upload(s3, bucket, "es56", FIXTURES / "ES_5_6_Updates_Deletes")

    listed = ferry_ls(f"s3://{bucket}/es710/base", "--endpoint-url", s3.url, "--path-style",
                      env=aws_env)
    [entry] = listed["snapshots"]
    assert entry["name"] == "snap-1" and entry["state"] == "SUCCESS"
    assert entry["version"] == node.number and entry["indices"] == [f"s3copy-{tag}"]
    listed = ferry_ls(f"s3://{bucket}/es56", "--endpoint-url", s3.url, "--path-style",
                      env=aws_env)
    assert [(s["name"], s["version"], s["state"]) for s in listed["snapshots"]] == [
        ("rfs_snapshot", "5.6.16", "SUCCESS")]

    info = parse_snapshot_info(
        node.request("GET", f"/_snapshot/s3copy-{tag}/snap-1")["snapshots"][0])
    repo = Repository.model_validate({
        "name": "r", "type": "s3", "s3": {"bucket": bucket, "basePath": "es710/base",
                                          "endpoint": s3.url, "region": s3.region,
                                          "pathStyleAccess": True}})
    verification = verify_in_repository(repo, info)
    assert (verification.status, verification.reason) == ("True", "FoundInRepository")
    assert f"s3://{bucket}/es710/base/index-" in verification.message
    elsewhere = repo.model_copy(update={"s3": repo.s3.model_copy(  # type: ignore[union-attr]
        update={"base_path": "nothing-here"})})
    assert verify_in_repository(elsewhere, info).status == "False"
    unreachable = repo.model_copy(update={"s3": repo.s3.model_copy(  # type: ignore[union-attr]
        update={"endpoint": "http://127.0.0.1:9"})})
    verification = verify_in_repository(unreachable, info)
    assert (verification.status, verification.reason) == ("Unknown",
                                                          "RepositoryNotReachable")
    node.request("DELETE", f"/_snapshot/s3copy-{tag}/snap-1")
    node.request("DELETE", f"/_snapshot/s3copy-{tag}")
