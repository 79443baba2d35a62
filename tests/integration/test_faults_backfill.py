"""A Backfill under faults, on real nodes: its target or its source stopped mid-copy
and started again (same data dir, same port), documents written to the source while
it copies, and the Backfill deleted mid-copy. Nothing is lost, nothing duplicated, and
what Ferry cannot copy it says.

Every fault lands mid-copy by an ordering, not a timer: the copy is throttled, and a
fault is injected only once the status shows documents moved and documents left.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from test_backfill import backfill, clusters, condition, count, phase_in

from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.proxy import Request, ReverseProxy
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

DONE = ("Completed", "CompletedWithErrors", "Failed")
# Slow enough that each fault lands while documents remain: 2 workers share the rate.
SLOW = {"workers": 2, "batch": {"maxDocs": 200}, "throttle": {"maxDocsPerSecond": 800}}


def source_index(node: SearchNode, docs: int, shards: int = 2, **settings: Any) -> str:
    """A new orders index of ``docs`` documents (``settings`` over the usual ones)."""
    name = f"fault-{uuid.uuid4().hex[:8]}"
    spec = datagen.orders_index(name, shards=shards)
    spec.body["settings"].update(settings)
    datagen.load(node, spec, datagen.order_docs(docs))
    return name


def write_late(node: SearchNode, index: str, n: int) -> None:
    """``n`` new documents, searchable when this returns."""
    lines = datagen.bulk_lines(index, ((f"late-{i}", "late", {"order_id": f"late-{i}"})
                                       for i in range(n)))
    result = node.request("POST", "/_bulk?refresh=true", "".join(lines).encode())
    assert result["errors"] is False, result  # type: ignore[index]


def mid_copy(kube: KubeAPIServer, namespace: str, total: int) -> dict[str, Any]:
    """The Backfill once it has moved documents; asserted to have documents left."""
    obj = kube.wait_for("backfill", namespace, "copy",
                        lambda o: o["status"].get("phase") == "Running"
                        and o["status"]["progress"]["docsMigrated"] > 0, timeout=120)
    assert obj["status"]["progress"]["docsMigrated"] < total, obj["status"]
    return obj


def items(node: SearchNode, coord: str) -> list[dict[str, Any]]:
    """The work items as the coordination index holds them now."""
    node.request("POST", f"/{coord}/_refresh")
    found = node.request("POST", f"/{coord}/_search", {
        "size": 1000, "query": {"term": {"kind": "item"}}})
    return [h["_source"] for h in found["hits"]["hits"]]  # type: ignore[index]


def reasons(kube: KubeAPIServer, namespace: str) -> list[str]:
    events = sorted(kube.events(namespace, "copy"),
                    key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [e["reason"] for e in events]


def survive_outage(kube: KubeAPIServer, namespace: str, source: SearchNode,
                   target: SearchNode, stopped: SearchNode, reason: str) -> None:
    """Copy one index; stop ``stopped`` mid-copy, see the Backfill report ``reason``,
    start the node again; the copy ends Completed and Verified with exact counts."""
    docs = 10_000
    src = source_index(source, docs)
    dst = f"{namespace}-{src}"
    kube.apply(namespace, *clusters(source.url, target.url),
               backfill(indices=[src], targetNaming={"prefix": f"{namespace}-"},
                        verify={"counts": True, "sampleSize": 50}, **SLOW))
    mid_copy(kube, namespace, docs)
    port = stopped.port
    stopped.stop()
    obj = kube.wait_for("backfill", namespace, "copy",
                        lambda o: condition(o, "Progressing")["reason"] == reason,
                        timeout=90)
    assert obj["status"]["phase"] == "Running", obj["status"]
    assert condition(obj, "Ready")["status"] == "False"
    assert stopped.url.split("//")[1] in condition(obj, "Progressing")["message"]
    assert reason in reasons(kube, namespace)
    stopped.restart()
    assert stopped.port == port  # the Clusters point where they pointed
    obj = kube.wait_for("backfill", namespace, "copy", phase_in(*DONE), timeout=240)
    status = obj["status"]
    assert status["phase"] == "Completed", status
    assert condition(obj, "Verified")["status"] == "True", condition(obj, "Verified")
    # Counted here, on both nodes: nothing lost, nothing twice.
    assert count(source, src) == docs
    assert count(target, dst) == docs
    assert status["progress"]["docsMigrated"] == docs
    assert status["progress"]["docsFailed"] == 0
    # The outage was said, and then (a node start later: seconds apart) its end.
    seen = reasons(kube, namespace)
    assert seen.index(reason) < seen.index("Resumed"), seen
    assert seen.count(reason) == 1, seen  # once per outage, not per retry


def test_target_node_stopped_mid_copy_and_started_again(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        private_node: Any, namespace: str) -> None:
    target = private_node("opensearch", "2.19")
    survive_outage(kube, namespace, elasticsearch, target, target, "TargetUnreachable")


def test_source_node_stopped_mid_copy_and_started_again(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        private_node: Any, namespace: str) -> None:
    source = private_node("elasticsearch", "7.10")
    survive_outage(kube, namespace, source, opensearch, source, "SourceUnreachable")


def test_live_writes_after_an_item_closed_are_reported_not_claimed_verified(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    """An item copies what its shard holds until its last read finds nothing more;
    what is written to the shard after that is not copied, and verification says so."""
    small, large = source_index(elasticsearch, 100, 1), source_index(elasticsearch, 4000, 1)
    prefix = f"{namespace}-"
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=[small, large], targetNaming={"prefix": prefix}, workers=2,
                        batch={"maxDocs": 100}, throttle={"maxDocsPerSecond": 400}))
    obj = mid_copy(kube, namespace, 4100)
    coord = obj["status"]["coordinationIndex"]

    def states() -> dict[str, str]:
        return {i["index"]: i["state"] for i in items(opensearch, coord)}

    deadline = time.monotonic() + 60
    while states()[small] != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert states()[small] == "done"
    for index in (small, large):
        write_late(elasticsearch, index, 30)
    # Read after the writes were searchable: the large index's item still had reads
    # to make, so it must pick them up.
    assert states()[large] != "done", "the large index finished too early for this test"
    obj = kube.wait_for("backfill", namespace, "copy", phase_in(*DONE), timeout=120)
    status = obj["status"]
    assert count(elasticsearch, small) == 130 and count(opensearch, prefix + small) == 100
    assert count(elasticsearch, large) == 4030 and count(opensearch, prefix + large) == 4030
    verified = condition(obj, "Verified")
    assert verified["status"] == "False", verified
    assert f"{small}: source 130, target 100" in verified["message"], verified
    assert large not in verified["message"], verified
    assert status["phase"] == "CompletedWithErrors", status
    assert condition(obj, "Ready")["reason"] == "VerificationFailed"
    rows = {r["name"]: r for r in status["indices"]}
    assert (rows[small]["docsTotal"], rows[small]["targetCount"],
            rows[small]["verified"]) == (130, 100, False)
    assert (rows[large]["targetCount"], rows[large]["verified"]) == (4030, True)


def test_deleting_mid_copy_stops_the_workers_and_keeps_the_copied_data(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str, proxies: list[ReverseProxy]) -> None:
    bulks: list[int] = []

    def record(request: Request) -> None:
        if request.path.startswith("/_bulk") and b'"_index":"' + dst.encode() in request.body:
            bulks.append(len(bulks))

    docs = 6000
    # Settings of its own that the target copy inherits, so that a restore to the
    # engine's defaults would not pass for one to the index's values.
    src = source_index(elasticsearch, docs, refresh_interval="7s", number_of_replicas=1)
    dst = f"{namespace}-{src}"
    proxy = ReverseProxy(opensearch.url, gate=lambda r: record(r) or None).start()
    proxies.append(proxy)
    kube.apply(namespace, *clusters(elasticsearch.url, proxy.url),
               backfill(indices=[src], targetNaming={"prefix": f"{namespace}-"},
                        # 6,000 documents: tuned only below the default minDocuments.
                        targetTuning={"minDocuments": 0},
                        **{**SLOW, "throttle": {"maxDocsPerSecond": 400}}))
    obj = mid_copy(kube, namespace, docs)
    coord = obj["status"]["coordinationIndex"]
    assert obj["status"]["tuning"]["state"] == "Tuned"
    kube.kubectl("delete", "backfill", "copy", "-n", namespace, "--timeout=90s")
    # The deletion finished: from here on no worker may write another document.
    sent = len(bulks)
    copied = count(opensearch, dst)
    assert 0 < copied < docs
    # Longer than ten batches take at the throttle, and than a worker's checkpoint
    # interval (a quarter of the 15 s lease): a worker still running would have sent
    # a bulk, or put its checkpoint (and so the coordination index) back, by now.
    time.sleep(6)
    assert len(bulks) == sent
    with pytest.raises(Exception, match="404"):
        opensearch.request("HEAD", f"/{coord}")
    assert count(opensearch, dst) == copied  # kept: the copied part is the user's data
    flat = opensearch.request("GET", f"/{dst}/_settings?flat_settings=true")
    settings = flat[dst]["settings"]  # type: ignore[index]
    assert (settings.get("index.refresh_interval"),
            settings.get("index.number_of_replicas")) == ("7s", "1"), settings
    assert "TuningRestored" in reasons(kube, namespace)
