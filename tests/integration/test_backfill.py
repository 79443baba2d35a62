"""Backfill end to end: the operator copies real documents between real nodes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ferry.api.common import MAX_STATUS_LIST
from ferry.services.backfill.copy import content_hash
from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.matrix import NodePool
from testbed.operator import OperatorProcess
from testbed.proxy import Refusal, Request, ReverseProxy
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

SOURCE_INDICES = ["bf-web-logs", "bf-orders", "bf-users"]
CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.fixture(scope="module")
def es_dataset(elasticsearch: SearchNode) -> dict[str, int]:
    """50,000 documents in three indices on the Elasticsearch source."""
    return datagen.standard_dataset(elasticsearch, 50_000, prefix="bf-")


def clusters(source_url: str, target_url: str, **target: Any) -> list[dict[str, Any]]:
    return [{"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
             "metadata": {"name": "source"}, "spec": {"endpoint": source_url,
                                                      "readOnly": True}},
            {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
             "metadata": {"name": "target"}, "spec": {"endpoint": target_url, **target}}]


def backfill(name: str = "copy", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
            "metadata": {"name": name},
            "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "target"},
                     **spec}}


def phase_in(*phases: str):
    return lambda obj: obj["status"]["phase"] in phases


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def count(node: SearchNode, index: str) -> int:
    node.request("POST", f"/{index}/_refresh")
    return int(node.request("GET", f"/{index}/_count")["count"])  # type: ignore[index]


def bulk_docs(request: Request) -> int:
    return request.body.count(b"\n") // 2 if request.path.startswith("/_bulk") else 0


def start_workers(kube: KubeAPIServer, namespace: str, name: str = "copy", n: int = 2,
                  lease_seconds: float = 15) -> list[subprocess.Popen[bytes]]:
    """No kubelet runs pods here: what the worker pods would run, as local processes."""
    env = {"KUBECONFIG": str(kube.kubeconfig), "PATH": "/usr/bin:/bin",
           "FERRY_LEASE_SECONDS": str(lease_seconds)}
    return [subprocess.Popen([sys.executable, "-m", "ferry.cli", "worker", "--backfill",
                              f"{namespace}/{name}", "--log-format", "plain"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(n)]


def worker_outputs(workers: list[subprocess.Popen[bytes]]) -> list[str]:
    """Each worker's output once it has stopped (killed if still running after 60 s)."""
    outputs = []
    for w in workers:
        try:
            outputs.append(w.communicate(timeout=60)[0].decode())
        except subprocess.TimeoutExpired:
            w.kill()
            outputs.append(w.communicate()[0].decode())
    return outputs


def test_es_to_opensearch_completes_and_verifies(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, es_dataset: dict[str, int], namespace: str,
        matrix_case: Callable[..., None]) -> None:
    matrix_case("copy", elasticsearch, opensearch)
    prefix = f"{namespace}-"
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=["bf-*"], targetNaming={"prefix": prefix}, workers=3,
                        verify={"counts": True, "sampleSize": 50}))
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed",
                                                                "CompletedWithErrors"),
                        timeout=300)
    status = obj["status"]
    assert status["phase"] == "Completed", status
    total = sum(es_dataset.values())
    assert total == 50_000
    assert status["progress"]["docsTotal"] == total
    assert status["progress"]["docsMigrated"] == total
    assert status["progress"]["percent"] == 100.0
    assert status["progress"]["docsFailed"] == 0
    assert condition(obj, "Verified")["status"] == "True"
    assert condition(obj, "Ready")["status"] == "True"
    assert status["workItems"]["completed"] == status["workItems"]["total"] >= 6
    assert {r["name"] for r in status["indices"]} == set(SOURCE_INDICES)
    for source_index in SOURCE_INDICES:
        assert count(opensearch, prefix + source_index) == es_dataset[source_index]
    # Same documents, same ids, same routing, same content.
    sample = elasticsearch.request("POST", "/bf-orders/_search", {"size": 200})
    for hit in sample["hits"]["hits"]:  # type: ignore[index]
        got = opensearch.request(
            "GET", f"/{prefix}bf-orders/_doc/{hit['_id']}?routing={hit['_routing']}")
        assert content_hash(got["_source"]) == content_hash(hit["_source"])  # type: ignore[index]
    # Mappings and the custom analyzer travelled with the index.
    target_meta = opensearch.request("GET", f"/{prefix}bf-web-logs")[f"{prefix}bf-web-logs"]  # type: ignore[index]
    assert target_meta["mappings"]["properties"]["client"]["properties"]["geo"]["type"] == \
        "geo_point"
    assert target_meta["settings"]["index"]["number_of_shards"] == "3"
    analyzed = opensearch.request("POST", f"/{prefix}bf-web-logs/_analyze", {
        "analyzer": "folded_text", "text": "Crème Brûlée"})
    assert [t["token"] for t in analyzed["tokens"]] == ["creme", "brulee"]  # type: ignore[index]
    hits = opensearch.request("POST", f"/{prefix}bf-orders/_search", {
        "query": {"nested": {"path": "lines", "query": {"range": {"lines.qty": {"gte": 5}}}}},
        "size": 0, "track_total_hits": True})
    expected = elasticsearch.request("POST", "/bf-orders/_search", {
        "query": {"nested": {"path": "lines", "query": {"range": {"lines.qty": {"gte": 5}}}}},
        "size": 0, "track_total_hits": True})
    assert hits["hits"]["total"]["value"] == expected["hits"]["total"]["value"] > 0  # type: ignore[index]
    # The printer columns answer "how far along".
    table = kube.kubectl("get", "backfills", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SOURCE", "TARGET", "PHASE", "READY", "PROGRESS",
                                "DOCS", "RATE", "ETA", "AGE"]
    assert table[1].split()[1:7] == ["source", "target", "Completed", "True", "100%", "50000"]
    reasons = {e["reason"] for e in kube.events(namespace, "copy")}
    assert {"Planned", "Completed"} <= reasons
    # The coordination index is the Backfill's own; deleting the Backfill removes it
    # and never the copied data.
    coord = status["coordinationIndex"]
    assert opensearch.request("HEAD", f"/{coord}") is None
    kube.kubectl("delete", "backfill", "copy", "-n", namespace, "--timeout=60s")
    with pytest.raises(Exception, match="404"):
        opensearch.request("HEAD", f"/{coord}")
    assert count(opensearch, prefix + "bf-users") == es_dataset["bf-users"]


def test_opensearch_to_opensearch(kube: KubeAPIServer, operator: OperatorProcess,
                                  search_nodes: NodePool, opensearch: SearchNode,
                                  namespace: str, matrix_case: Callable[..., None]) -> None:
    """Two OpenSearch nodes: 1.3 → 2.19 (a pair users take), ids and content compared
    by the test's own reading of both."""
    source = search_nodes.get("opensearch", "1.3.20")
    matrix_case("copy", source, opensearch)
    src = f"oss-src-{uuid.uuid4().hex[:6]}"
    datagen.load(source, datagen.orders_index(src, shards=2), datagen.order_docs(3000))
    kube.apply(namespace, *clusters(source.url, opensearch.url),
               backfill(indices=[src], targetNaming={"suffix": "-copy"}))
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed"),
                        timeout=180)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert count(opensearch, f"{src}-copy") == 3000
    hits = source.request("POST", f"/{src}/_search", {"size": 100})["hits"]["hits"]  # type: ignore[index]
    got = opensearch.request("POST", f"/{src}-copy/_mget", {"docs": [
        {"_id": h["_id"], "routing": h["_routing"]} for h in hits]})["docs"]  # type: ignore[index]
    assert [content_hash(d["_source"]) for d in got] == \
        [content_hash(h["_source"]) for h in hits]
    assert opensearch.request("GET", "/")["version"]["number"] != \
        source.request("GET", "/")["version"]["number"]  # type: ignore[index]


def test_same_count_different_content_is_not_verified(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    """A target holding every id with other content: counts match, the sample does not."""
    src = f"drift-{uuid.uuid4().hex[:6]}"
    target = f"{src}-copy"
    for node, name, offset in ((elasticsearch, src, 0), (opensearch, target, 1000)):
        node.request("PUT", f"/{name}", {"settings": {"number_of_replicas": 0}})
        node.request("POST", f"/{name}/_bulk?refresh=true", "".join(
            f'{{"index":{{"_id":"d{i}"}}}}\n{{"n":{i + offset}}}\n'
            for i in range(100)).encode())
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=[src], targetNaming={"suffix": "-copy"}, onConflict="skip",
                        verify={"counts": True, "sampleSize": 30}))
    obj = kube.wait_for("backfill", namespace, "copy", phase_in(
        "Completed", "Failed", "CompletedWithErrors"), timeout=120)
    status = obj["status"]
    assert count(opensearch, target) == 100  # the counts agree...
    verified = condition(obj, "Verified")
    assert (verified["status"], verified["reason"]) == ("False", "Mismatch"), verified
    assert f"{src}: source 100, target 100, content differs for ids" in verified["message"]
    assert status["phase"] == "CompletedWithErrors", status


def test_pause_and_resume(kube: KubeAPIServer, operator: OperatorProcess,
                          elasticsearch: SearchNode, opensearch: SearchNode,
                          es_dataset: dict[str, int], namespace: str) -> None:
    prefix = f"{namespace}-"
    target = f"{prefix}bf-web-logs"
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=["bf-web-logs"], targetNaming={"prefix": prefix}, workers=2,
                        batch={"maxDocs": 500}, throttle={"maxDocsPerSecond": 3000}))
    kube.wait_for("backfill", namespace, "copy",
                  lambda o: o["status"]["progress"]["docsMigrated"] >= 3000, timeout=120)
    kube.kubectl("patch", "backfill", "copy", "-n", namespace, "--type=merge",
                 "-p", '{"spec":{"paused":true}}')
    obj = kube.wait_for("backfill", namespace, "copy",
                        lambda o: o["status"]["phase"] == "Paused"
                        and o["status"]["workers"] == 0, timeout=60)
    assert condition(obj, "Progressing")["status"] == "False"
    time.sleep(2)
    paused_count = count(opensearch, target)
    assert paused_count < es_dataset["bf-web-logs"]
    time.sleep(6)
    assert count(opensearch, target) == paused_count, "documents arrived while paused"
    kube.kubectl("patch", "backfill", "copy", "-n", namespace, "--type=merge",
                 "-p", '{"spec":{"paused":false,"throttle":{}}}')
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed"),
                        timeout=180)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert count(opensearch, target) == es_dataset["bf-web-logs"]


def test_scale_up_and_down_mid_run(kube: KubeAPIServer, operator: OperatorProcess,
                                   elasticsearch: SearchNode, opensearch: SearchNode,
                                   es_dataset: dict[str, int], namespace: str) -> None:
    prefix = f"{namespace}-"
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=["bf-web-logs", "bf-orders"], targetNaming={"prefix": prefix},
                        workers=1, batch={"maxDocs": 500},
                        throttle={"maxDocsPerSecond": 2500}))
    kube.wait_for("backfill", namespace, "copy",
                  lambda o: o["status"]["workers"] == 1
                  and o["status"]["progress"]["docsMigrated"] > 0, timeout=120)
    kube.kubectl("scale", "backfill/copy", "-n", namespace, "--replicas=4")
    # Four workers seen at work, then two, each while documents remain (an ordering: the
    # throttle keeps 45,000 documents copying for longer than both observations need).
    total = es_dataset["bf-web-logs"] + es_dataset["bf-orders"]
    obj = kube.wait_for("backfill", namespace, "copy",
                        lambda o: o["status"]["workers"] == 4
                        or o["status"]["phase"] != "Running", timeout=60)
    assert obj["status"]["workers"] == 4, obj["status"]
    assert obj["status"]["progress"]["docsMigrated"] < total
    kube.kubectl("scale", "backfill/copy", "-n", namespace, "--replicas=2")
    obj = kube.wait_for("backfill", namespace, "copy",
                        lambda o: o["status"]["workers"] == 2
                        or o["status"]["phase"] != "Running", timeout=60)
    assert obj["status"]["workers"] == 2, obj["status"]
    assert obj["status"]["phase"] == "Running", obj["status"]
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed"),
                        timeout=240)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert obj["status"]["desiredWorkers"] == 2
    for index in ("bf-web-logs", "bf-orders"):
        assert count(opensearch, prefix + index) == es_dataset[index]
    assert obj["status"]["progress"]["docsMigrated"] == es_dataset["bf-web-logs"] + \
        es_dataset["bf-orders"]


def test_operator_killed_mid_run_resumes_from_checkpoints(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, es_dataset: dict[str, int], namespace: str,
        proxies: list[ReverseProxy]) -> None:
    prefix = f"{namespace}-"
    total = es_dataset["bf-web-logs"]
    received: list[int] = []
    copy_line = f'"_index":"{prefix}bf-web-logs"'.encode()
    lock = threading.Lock()
    checkpointed: dict[str, int] = {}  # item id -> docs_done, as the proxy saw it written
    killed, held = threading.Event(), threading.Semaphore(0)

    def hold_after_a_third(request: Request) -> Refusal | None:
        """Once the checkpoints written to the coordination index cover a third of the
        documents, every further copy bulk is held until the operator is dead and then
        refused: the kill lands mid-item, with leases out and bulks unacknowledged, never
        in a lucky gap between two items nor after the last one (status lags the
        checkpoints by a reconcile period, so it cannot tell when to hold)."""
        with lock:
            received.append(bulk_docs(request))
            if request.method == "PUT" and "/_doc/" in request.path:
                item = json.loads(request.body)
                if item.get("kind") == "item":
                    checkpointed[request.path.split("?")[0]] = item["docs_done"]
            holding = sum(checkpointed.values()) >= total // 3
        if copy_line not in request.body or not holding or killed.is_set():
            return None
        held.release()
        killed.wait(60)
        return Refusal(503)

    proxy = ReverseProxy(opensearch.url, gate=hold_after_a_third).start()
    proxies.append(proxy)
    kube.apply(namespace, *clusters(elasticsearch.url, proxy.url),
               backfill(indices=["bf-web-logs"], targetNaming={"prefix": prefix}, workers=2,
                        batch={"maxDocs": 500, "bulksInFlight": 2},
                        throttle={"maxDocsPerSecond": 3000}))
    assert held.acquire(timeout=120), "no copy bulk arrived after a third was checkpointed"
    time.sleep(0.5)  # the other worker's bulks reach the gate too
    operator.kill()
    killed.set()
    obj = kube.get("backfill", namespace, "copy")
    assert obj is not None
    coord = obj["status"]["coordinationIndex"]
    opensearch.request("POST", f"/{coord}/_refresh")
    items = opensearch.request("POST", f"/{coord}/_search", {
        "size": 100, "query": {"term": {"kind": "item"}}})["hits"]["hits"]  # type: ignore[index]
    done_at_kill = sum(i["_source"]["docs_done"] for i in items)
    leased = [i["_id"] for i in items if i["_source"]["state"] == "leased"]
    assert total // 3 <= done_at_kill < total and leased, (done_at_kill, leased)
    with lock:
        sent_before = sum(received)
    operator.start()
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed"),
                        timeout=240)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert count(opensearch, prefix + "bf-web-logs") == total
    resent = sum(received) - sent_before
    # Resumed from checkpoints: what was re-sent is what remained plus at most the
    # in-flight batches (2 workers x 2 bulks of 500), never the whole index again.
    assert resent <= total - done_at_kill + 2 * 500 * 2, (resent, total, done_at_kill)
    # The items the dead operator held were claimed again once their leases ran out.
    opensearch.request("POST", f"/{coord}/_refresh")
    again = opensearch.request("POST", f"/{coord}/_search", {
        "size": 100, "query": {"ids": {"values": leased}}})["hits"]["hits"]  # type: ignore[index]
    assert sorted((h["_id"], h["_source"]["state"], h["_source"]["claims"] >= 2)
                  for h in again) == sorted((i, "done", True) for i in leased)


def test_pods_executor_and_two_worker_processes(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, es_dataset: dict[str, int], namespace: str) -> None:
    prefix = f"{namespace}-"
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=["bf-orders"], targetNaming={"prefix": prefix}, workers=2,
                        executor="pods", batch={"maxDocs": 300},
                        # Slow enough that neither process can copy both shards alone
                        # before the other has started.
                        throttle={"maxDocsPerSecond": 1500}))
    deployment = kube.wait_for("deployment", namespace, "ferry-worker-copy",
                               lambda d: d["spec"]["replicas"] == 2, timeout=60)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["worker", "--backfill", f"{namespace}/copy"]
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "Backfill"
    workers = start_workers(kube, namespace)
    try:
        obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed"),
                            timeout=240)
    finally:
        outputs = worker_outputs(workers)
    assert obj["status"]["phase"] == "Completed", (obj["status"], outputs)
    assert count(opensearch, prefix + "bf-orders") == es_dataset["bf-orders"]
    coord = obj["status"]["coordinationIndex"]
    opensearch.request("POST", f"/{coord}/_refresh")
    items = opensearch.request("POST", f"/{coord}/_search", {
        "size": 100, "query": {"term": {"kind": "item"}}})["hits"]["hits"]  # type: ignore[index]
    # A done item keeps its last holder (host-pid-backfill-slot): both processes copied.
    holders = {i["_source"]["holder"] for i in items}
    assert all(i["_source"]["state"] == "done" for i in items), items
    for w in workers:
        assert any(f"-{w.pid}-" in (h or "") for h in holders), (w.pid, holders)
    assert all("started with 1 thread" in out for out in outputs), outputs
    kube.kubectl("scale", "backfill/copy", "-n", namespace, "--replicas=3")


def test_busy_target_429_and_503_still_completes_exactly(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, es_dataset: dict[str, int], namespace: str,
        proxies: list[ReverseProxy]) -> None:
    prefix = f"{namespace}-"
    calls = {"n": 0}

    def flaky(request: Request) -> Refusal | None:
        if not request.path.startswith("/_bulk"):
            return None
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            return Refusal(429, b'{"error":{"type":"es_rejected_execution_exception"},'
                                b'"status":429}')
        if calls["n"] % 7 == 0:
            return Refusal(503, b'{"error":"unavailable","status":503}')
        return None

    proxy = ReverseProxy(opensearch.url, gate=flaky).start()
    proxies.append(proxy)
    kube.apply(namespace, *clusters(elasticsearch.url, proxy.url),
               backfill(indices=["bf-users"], targetNaming={"prefix": prefix},
                        batch={"maxDocs": 250}))
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed",
                                                                "CompletedWithErrors"),
                        timeout=240)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert calls["n"] > 20
    assert count(opensearch, prefix + "bf-users") == es_dataset["bf-users"]


def test_bulks_in_flight_per_worker_is_what_the_spec_says(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, es_dataset: dict[str, int], namespace: str,
        proxies: list[ReverseProxy]) -> None:
    """One worker, batch.bulksInFlight 3, then 1: each bulk of the copy is held 0.25 s
    at the proxy (reading the next page takes a fraction of that), so the most bulks
    the proxy ever holds at once for a Backfill is its setting."""
    held = {"now": 0, "most": {}}  # most: per target prefix
    lock = threading.Lock()

    def hold(request: Request) -> Refusal | None:
        if not request.path.startswith("/_bulk"):
            return None
        prefix = next((p for p in ("w3-", "w1-") if f'"_index":"{namespace}-{p}'.encode()
                       in request.body), None)
        if prefix is None:
            return None  # the coordination index's own bulks
        with lock:
            held["now"] += 1
            held["most"][prefix] = max(held["most"].get(prefix, 0), held["now"])
        time.sleep(0.25)
        with lock:
            held["now"] -= 1
        return None

    proxy = ReverseProxy(opensearch.url, gate=hold).start()
    proxies.append(proxy)
    kube.apply(namespace, *clusters(elasticsearch.url, proxy.url))
    for name, bulks in (("w3", 3), ("w1", 1)):
        kube.apply(namespace, backfill(name, indices=["bf-users"], workers=1,
                                       targetNaming={"prefix": f"{namespace}-{name}-"},
                                       batch={"maxDocs": 500, "bulksInFlight": bulks}))
        obj = kube.wait_for("backfill", namespace, name, phase_in(
            "Completed", "Failed", "CompletedWithErrors"), timeout=180)
        assert obj["status"]["phase"] == "Completed", obj["status"]
        assert count(opensearch, f"{namespace}-{name}-bf-users") == es_dataset["bf-users"]
    assert held["most"] == {"w3-": 3, "w1-": 1}, held


def test_rejected_documents_are_listed_without_bodies(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        elasticsearch: SearchNode, namespace: str) -> None:
    src = f"strict-src-{uuid.uuid4().hex[:6]}"
    elasticsearch.request("PUT", f"/{src}", {"settings": {"number_of_replicas": 0}})
    secret_marker = "body-marker-" + uuid.uuid4().hex
    bulk = "".join(
        f'{{"index":{{"_id":"d{i}"}}}}\n'
        + json.dumps({"n": i, "extra": secret_marker} if i % 5 == 0 else {"n": i}) + "\n"
        for i in range(300))
    elasticsearch.request("POST", f"/{src}/_bulk?refresh=true", bulk.encode())
    # An existing strict target that refuses the unknown field "extra".
    target = f"{src}-strict"
    opensearch.request("PUT", f"/{target}", {"settings": {"number_of_replicas": 0},
                                             "mappings": {"dynamic": "strict", "properties": {
                                                 "n": {"type": "integer"}}}})
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill("lenient", indices=[src], targetNaming={"map": {src: target}},
                        maxFailedDocuments=100))
    obj = kube.wait_for("backfill", namespace, "lenient", phase_in(
        "Completed", "Failed", "CompletedWithErrors"), timeout=120)
    status = obj["status"]
    assert status["phase"] == "CompletedWithErrors", status
    # 60 refused: the count is exact, the list holds the bound's worth of them.
    refused = {f"d{i}" for i in range(0, 300, 5)}
    assert status["progress"]["docsFailed"] == len(refused) == 60
    assert len(status["failures"]) == MAX_STATUS_LIST < len(refused)
    listed = {f["id"] for f in status["failures"]}
    assert len(listed) == MAX_STATUS_LIST and listed <= refused
    assert all("strict_dynamic_mapping_exception" in f["reason"] for f in status["failures"])
    assert secret_marker not in json.dumps(status)
    assert condition(obj, "Verified")["status"] == "False"
    assert count(opensearch, target) == 240

    opensearch.request("DELETE", f"/{target}")
    opensearch.request("PUT", f"/{target}", {"settings": {"number_of_replicas": 0},
                                             "mappings": {"dynamic": "strict", "properties": {
                                                 "n": {"type": "integer"}}}})
    kube.apply(namespace, backfill("strict", indices=[src], targetNaming={"map": {src: target}},
                                   maxFailedDocuments=5, batch={"maxDocs": 50}))
    obj = kube.wait_for("backfill", namespace, "strict", phase_in(
        "Completed", "Failed", "CompletedWithErrors"), timeout=120)
    assert obj["status"]["phase"] == "Failed"
    assert condition(obj, "Failed")["reason"] == "TooManyFailures"


def test_bad_input_is_refused_with_clear_reasons_and_writes_nothing(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, es_dataset: dict[str, int], namespace: str) -> None:
    prefix = f"{namespace}-"
    readonly_target = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                       "metadata": {"name": "archive"},
                       "spec": {"endpoint": opensearch.url, "readOnly": True}}
    same = {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "source-again"}, "spec": {"endpoint": elasticsearch.url}}
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url), readonly_target, same)
    kube.apply(namespace,
               {**backfill("to-readonly", indices=["bf-users"],
                           targetNaming={"prefix": prefix + "ro-"}),
                "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "archive"},
                         "indices": ["bf-users"], "targetNaming": {"prefix": prefix + "ro-"}}},
               {**backfill("to-itself"), "spec": {"sourceRef": {"name": "source"},
                                                  "targetRef": {"name": "source-again"}}},
               {**backfill("to-nowhere"), "spec": {"sourceRef": {"name": "source"},
                                                   "targetRef": {"name": "missing"}}},
               backfill("from-snapshot", source={"snapshotRef": {"name": "snap"}}),
               backfill("nothing-matches", indices=["no-such-index-*"]))
    expect = {"to-readonly": "TargetReadOnly", "to-itself": "SameEndpoint",
              "nothing-matches": "NoIndicesMatched"}
    for name, reason in expect.items():
        obj = kube.wait_for("backfill", namespace, name, phase_in("Failed"), timeout=60)
        assert condition(obj, "Failed")["reason"] == reason
        assert obj["status"]["message"]
    obj = kube.wait_for("backfill", namespace, "to-nowhere",
                        lambda o: condition(o, "Progressing")["reason"] == "ClusterNotFound",
                        timeout=60)
    assert "Cluster missing not found" in obj["status"]["message"]
    # Waiting for a Cluster is a phase (Pending), not progress, and not Ready.
    assert obj["status"]["phase"] == "Pending"
    assert (condition(obj, "Progressing")["status"], condition(obj, "Ready")["status"],
            condition(obj, "Ready")["reason"]) == ("False", "False", "ClusterNotFound")
    # Method copy from a snapshot's files waits for the Snapshot it names.
    obj = kube.wait_for("backfill", namespace, "from-snapshot",
                        lambda o: condition(o, "Progressing")["reason"] == "SnapshotNotFound",
                        timeout=60)
    indices = opensearch.request("GET", f"/_cat/indices/{prefix}*?format=json")
    assert indices == []

    # A target index that already holds documents is refused unless onConflict is set.
    opensearch.request("PUT", f"/{prefix}bf-users", {"settings": {"number_of_replicas": 0}})
    opensearch.request("PUT", f"/{prefix}bf-users/_doc/x?refresh=true", {"name": "already"})
    kube.apply(namespace, backfill("occupied", indices=["bf-users"],
                                   targetNaming={"prefix": prefix}))
    obj = kube.wait_for("backfill", namespace, "occupied", phase_in("Failed"), timeout=60)
    assert condition(obj, "Failed")["reason"] == "TargetIndexNotEmpty"
    assert count(opensearch, f"{prefix}bf-users") == 1

    # Two Backfills writing the same target index: the second is refused.
    kube.apply(namespace, backfill("first", indices=["bf-web-logs"],
                                   targetNaming={"prefix": prefix + "shared-"},
                                   throttle={"maxDocsPerSecond": 500}))
    kube.wait_for("backfill", namespace, "first", phase_in("Running"), timeout=60)
    kube.apply(namespace, backfill("second", indices=["bf-web-logs"],
                                   targetNaming={"prefix": prefix + "shared-"}))
    obj = kube.wait_for("backfill", namespace, "second", phase_in("Failed"), timeout=60)
    assert condition(obj, "Failed")["reason"] == "TargetIndexInUse"
    assert "first" in obj["status"]["message"]
    kube.kubectl("delete", "backfill", "first", "-n", namespace, "--timeout=90s")


def _loosened_cluster_crd() -> dict[str, Any]:
    """The Cluster CRD as an older operator might have shipped it: the same kind and
    subresources, but a spec schema that accepts anything."""
    import yaml

    crd = yaml.safe_load((CRDS / "ferry.dev_clusters.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"] = {"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True}
    return crd


def test_source_cluster_spec_the_models_refuse_is_reported_in_the_backfill(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        namespace: str) -> None:
    """A Cluster stored under a looser schema (the API server never revalidates stored
    objects when the CRD tightens) and then referenced by a Backfill: the Backfill says
    which field is wrong instead of failing silently in a log."""
    loose = json.dumps(_loosened_cluster_crd())
    try:
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=loose)
        kube.apply(namespace, {
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "source"},
            # auth.basic without secretName: the current schema refuses it at apply time.
            "spec": {"endpoint": "http://127.0.0.1:9", "auth": {"basic": {}}}})
    finally:
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                     str(CRDS / "ferry.dev_clusters.yaml"))
    stored = kube.get("fcl", namespace, "source")
    # (Read back, the current schema's defaults fill in the keys; the name stays absent.)
    assert stored is not None and "secretName" not in stored["spec"]["auth"]["basic"]
    # The current schema refuses that very spec in a new object: only the stored one
    # carries it (an update that leaves it as it is would pass: validation ratcheting).
    refused = kube.kubectl("create", "-n", namespace, "--dry-run=server", "-f", "-",
                           check=False, input=json.dumps({
                               "apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                               "metadata": {"name": "fresh"}, "spec": stored["spec"]}))
    assert refused.returncode != 0 and "secretName" in refused.stderr, refused.stderr
    kube.apply(namespace, {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
                           "metadata": {"name": "target"},
                           "spec": {"endpoint": opensearch.url}},
               backfill("bad-source"))
    obj = kube.wait_for("backfill", namespace, "bad-source",
                        lambda o: condition(o, "Ready")["reason"] == "InvalidSpec",
                        timeout=60)
    ready = condition(obj, "Ready")
    assert ready["status"] == "False"
    assert "Cluster source" in ready["message"]
    assert "spec.auth.basic.secretName" in ready["message"], ready["message"]
    # A reference can be mended (the Cluster re-applied): the Backfill waits, not fails.
    assert obj["status"]["phase"] == "Pending"
    assert condition(obj, "Failed")["status"] == "False"
    # Nothing was written to the target: no coordination index.
    rows = opensearch.request("GET", "/_cat/indices/.ferry-backfill-*?format=json"
                              "&expand_wildcards=all")
    assert f".ferry-backfill-{obj['metadata']['uid']}" not in {r["index"] for r in rows}


def test_a_hundred_daily_indices_are_planned_copied_and_verified(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    """The shape of every logging cluster: 130 daily indices whose names, joined, are
    far longer than an engine's 4 KB request line — once a 400 too_long_frame_exception
    before anything was copied. Every index is planned, copied and verified, while
    status.indices stays bounded."""
    prefix = f"{namespace}-logs-app-"
    names = [f"{prefix}2026.{m:02d}.{d:02d}" for m in range(1, 6) for d in range(1, 27)]
    assert len(",".join(names)) > 4096
    for node in (elasticsearch, opensearch):
        node.request("PUT", "/_cluster/settings",
                     {"persistent": {"cluster.max_shards_per_node": 5000}})
    elasticsearch.request("PUT", f"/_template/{namespace}-daily", {
        "index_patterns": [f"{prefix}*"],
        "settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    lines = [json.dumps(line) for name in names
             for line in ({"index": {"_index": name, "_id": "1"}}, {"day": name[-10:]})]
    result = elasticsearch.request("POST", "/_bulk?refresh=true",
                                   ("\n".join(lines) + "\n").encode())
    assert result["errors"] is False  # type: ignore[index]
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill("daily", indices=[f"{prefix}*"], workers=4))
    obj = kube.wait_for("backfill", namespace, "daily",
                        phase_in("Completed", "Failed", "CompletedWithErrors"), timeout=400)
    status = obj["status"]
    assert status["phase"] == "Completed", status["message"]
    assert status["progress"]["docsMigrated"] == len(names)
    assert condition(obj, "Verified")["status"] == "True"
    assert f"document counts of {len(names)} indices match" in \
        condition(obj, "Verified")["message"]
    assert len(status["indices"]) == 100  # bounded; the plan itself is not
    rows = opensearch.request("GET", f"/_cat/indices/{prefix}*?format=json&h=index,docs.count")
    assert sorted(r["index"] for r in rows) == sorted(names)  # type: ignore[union-attr]
    assert {r["docs.count"] for r in rows} == {"1"}  # type: ignore[union-attr]


def test_refusal_reasons_keep_field_names_but_never_document_values(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        elasticsearch: SearchNode, namespace: str) -> None:
    """Engines quote a refused document's values in their reasons ("Preview of field's
    value: '…'"): status, events and logs get the field and the error, never the value —
    with each engine's own words, each as the refusing target."""
    marker = "pii-" + uuid.uuid4().hex
    runs = []
    for source, target, name in ((elasticsearch, opensearch, "to-os"),
                                 (opensearch, elasticsearch, "to-es")):
        index = f"typed-{name}-{uuid.uuid4().hex[:6]}"
        source.request("PUT", f"/{index}", {"settings": {"number_of_replicas": 0}})
        bulk = "".join(f'{{"index":{{"_id":"d{i}"}}}}\n'
                       + json.dumps({"n": f"{marker}-{i}"}) + "\n" for i in range(3))
        source.request("POST", f"/{index}/_bulk?refresh=true", bulk.encode())
        # The target's field is an integer: every document is refused for its value.
        target.request("PUT", f"/{index}-t", {"settings": {"number_of_replicas": 0},
                                              "mappings": {"properties": {
                                                  "n": {"type": "integer"}}}})
        runs.append((name, index, target))
        kube.apply(namespace, {
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": name},
            "spec": {"endpoint": target.url}}, {
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": f"{name}-src"}, "spec": {"endpoint": source.url,
                                                          "readOnly": True}}, {
            "apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill", "metadata": {"name": name},
            "spec": {"sourceRef": {"name": f"{name}-src"}, "targetRef": {"name": name},
                     "indices": [index], "targetNaming": {"map": {index: f"{index}-t"}},
                     # No templates from the shared nodes travel between them.
                     "metadata": {"mode": "Skip"}, "maxFailedDocuments": 10}})
    for name, index, target in runs:
        obj = kube.wait_for("backfill", namespace, name, phase_in(
            "Completed", "Failed", "CompletedWithErrors"), timeout=120)
        status = obj["status"]
        assert status["phase"] == "CompletedWithErrors", status
        assert sorted(f["id"] for f in status["failures"]) == ["d0", "d1", "d2"]
        for failure in status["failures"]:
            assert "mapper_parsing_exception" in failure["reason"], failure
            assert "[n]" in failure["reason"], failure
        assert marker not in json.dumps(status)
        assert count(target, f"{index}-t") == 0
    events = kube.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert marker not in events
    assert marker not in operator.logs()


def test_update_heavy_source_is_copied_exactly_in_about_one_search_per_page(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str, proxies: list[ReverseProxy]) -> None:
    """An update-heavy source: 300 documents updated about 12,000 times in all, so the
    shard's _seq_no runs forty times past its document count and most _seq_no ranges
    hold only replaced versions. The copy is exact (latest versions, routing kept) and
    its reads cost about one search per page of documents, not one per empty window."""
    index, docs, page = f"{namespace}-updated", 300, 50
    elasticsearch.request("PUT", f"/{index}", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    rnd = random.Random(14)
    ops = [i for i in range(docs) for _ in range(rnd.randint(0, 80))]
    rnd.shuffle(ops)
    writes = list(range(docs)) + ops  # every document once, then the updates
    latest: dict[str, dict[str, Any]] = {}
    for start in range(0, len(writes), 2000):
        lines = []
        for n, i in enumerate(writes[start:start + 2000], start):
            latest[f"d{i}"] = {"n": i, "version": n, "text": f"caf\u00e9 {n % 97}"}
            lines += [json.dumps({"index": {"_index": index, "_id": f"d{i}",
                                            "routing": f"r{i % 7}"}}),
                      json.dumps(latest[f"d{i}"])]
        result = elasticsearch.request("POST", "/_bulk", ("\n".join(lines) + "\n").encode())
        assert result["errors"] is False  # type: ignore[index]
    stats = elasticsearch.request("GET", f"/{index}/_stats/docs?level=shards")
    max_seq_no = stats["indices"][index]["shards"]["0"][0]["seq_no"]["max_seq_no"]  # type: ignore[index]
    assert max_seq_no == len(writes) - 1 > 35 * docs
    assert count(elasticsearch, index) == docs
    # Reads go through a proxy that counts them.
    proxy = ReverseProxy(elasticsearch.url).start()
    proxies.append(proxy)
    kube.apply(namespace, *clusters(proxy.url, opensearch.url),
               backfill("updated", indices=[index], targetNaming={"prefix": "copy-"},
                        batch={"maxDocs": page}))
    obj = kube.wait_for("backfill", namespace, "updated",
                        phase_in("Completed", "Failed", "CompletedWithErrors"), timeout=180)
    status = obj["status"]
    assert status["phase"] == "Completed", status["message"]
    assert status["progress"]["docsMigrated"] == docs
    assert condition(obj, "Verified")["status"] == "True"
    assert count(opensearch, f"copy-{index}") == docs
    copied = opensearch.request("POST", f"/copy-{index}/_search", {"size": 1000})
    hits = copied["hits"]["hits"]  # type: ignore[index]
    assert {h["_id"]: h["_source"] for h in hits} == latest
    assert {h["_id"]: h["_routing"] for h in hits} == {f"d{i}": f"r{i % 7}"
                                                       for i in range(docs)}
    # Every search the copy made that scans a window (its reads and the verification
    # sample): bounded by pages of documents plus a constant — two per page, as windows
    # read by runs hold at most a page. A reader paying one request per window of
    # 2 x page _seq_nos would need more than a hundred. The run fetches that follow a
    # listing load what it listed: at most 8 each.
    searches = [r for r in proxy.seen if "/_search" in r.path]
    fetches = [r for r in searches if b'"sort":["_doc"]' in r.body
               and b'"stored_fields":"_none_"' not in r.body]
    listings = [r for r in searches if b'"stored_fields":"_none_"' in r.body]
    scans = len(searches) - len(fetches)
    bound = 2 * (docs // page) + 10
    assert max_seq_no // (2 * page) > 5 * bound
    assert scans <= bound, scans
    assert len(fetches) <= 8 * len(listings), (len(fetches), len(listings))
