"""Backfill of many small indices: every index planned, copied and verified while
status stays bounded, and a clear failure when the target refuses index creation at
its shard limit."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ferry.services.metadata.waves import CREATIONS_IN_FLIGHT
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

INDICES = 1000
# The source is BASE indices restored from a snapshot under other names, ROUNDS times.
BASE, ROUNDS = 40, 25
assert BASE * ROUNDS == INDICES
# Restores recover their shards from the repository, by default two at a time per node.
RECOVERIES = ("cluster.routing.allocation.node_concurrent_recoveries",
              "cluster.routing.allocation.node_initial_primaries_recoveries")
# status.indices' bound (api.common.MAX_STATUS_LIST * 5), stated here on its own.
STATUS_ROWS = 100
ONE_SHARD = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}


def clusters(source_url: str, target_url: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster",
             "metadata": {"name": name}, "spec": {"endpoint": url}}
            for name, url in (("source", source_url), ("target", target_url))]


def backfill(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill",
            "metadata": {"name": "many"},
            "spec": {"sourceRef": {"name": "source"}, "targetRef": {"name": "target"},
                     **spec}}


def shard_limit(node: SearchNode, value: int | None) -> None:
    """``cluster.max_shards_per_node``; None resets it (the nodes are shared)."""
    node.request("PUT", "/_cluster/settings",
                 {"persistent": {"cluster.max_shards_per_node": value}})


def create_indices(node: SearchNode, names: list[str], pattern: str) -> None:
    """Empty one-shard indices, several creations in flight, then all started (those
    of ``pattern``: other modules' indices with replicas keep a single node yellow)."""
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: node.request("PUT", f"/{n}?wait_for_active_shards=0",
                                             ONE_SHARD), names))
    node.request("GET", f"/_cluster/health/{pattern}?wait_for_status=green&timeout=300s",
                 timeout=330)


def restored_copies(node: SearchNode, prefix: str) -> dict[str, int]:
    """INDICES loaded one-shard indices, built fast: BASE of them created and loaded,
    snapshotted once, and restored under other names ROUNDS - 1 times (a restore adds
    BASE indices in one cluster-state update, where creating them costs one each); the
    snapshot and its repository removed afterwards. Index ``<prefix>-RRJJ`` is a copy of
    base index JJ and holds docs_of(JJ) documents."""
    base = [f"{prefix}-00{j:02d}" for j in range(BASE)]
    create_indices(node, base, f"{prefix}-*")
    load(node, base)
    repo = f"repo-{prefix}"
    node.request("PUT", f"/_snapshot/{repo}", {"type": "fs", "settings": {
        "location": str(node.repo / repo)}})
    node.request("PUT", f"/_snapshot/{repo}/base?wait_for_completion=true", {
        "indices": f"{prefix}-00*", "include_global_state": False})
    node.request("PUT", "/_cluster/settings", {"transient": dict.fromkeys(RECOVERIES, 64)})
    try:
        for round_ in range(1, ROUNDS):
            node.request("POST", f"/_snapshot/{repo}/base/_restore", {
                "indices": f"{prefix}-00*", "include_global_state": False,
                "include_aliases": False, "rename_pattern": f"{prefix}-00(.+)",
                "rename_replacement": f"{prefix}-{round_:02d}$1"})
        node.request("GET", f"/_cluster/health/{prefix}-*?wait_for_status=green"
                     "&timeout=600s", timeout=660)
    finally:
        node.request("PUT", "/_cluster/settings", {"transient": dict.fromkeys(RECOVERIES)})
        node.request("DELETE", f"/_snapshot/{repo}/base")
        node.request("DELETE", f"/_snapshot/{repo}")
    return {f"{prefix}-{round_:02d}{j:02d}": docs_of(j)
            for round_ in range(ROUNDS) for j in range(BASE)}


def docs_of(position: int) -> int:
    """1 to 3 documents, so that an index swapped for another fails its count."""
    return 1 + position % 3


def load(node: SearchNode, names: list[str]) -> dict[str, int]:
    lines = []
    for position, name in enumerate(names):
        for doc in range(docs_of(position)):
            lines += [json.dumps({"index": {"_index": name, "_id": f"d{doc}"}}),
                      json.dumps({"n": doc, "index": position})]
    answer = node.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode())
    assert answer["errors"] is False  # type: ignore[index]
    return {name: docs_of(position) for position, name in enumerate(names)}


def counts(node: SearchNode, pattern: str) -> dict[str, int]:
    """The node's own per-index document counts, one short request for all."""
    node.request("POST", f"/{pattern}/_refresh")
    rows = node.request("GET", f"/_cat/indices/{pattern}?format=json&h=index,docs.count")
    return {r["index"]: int(r["docs.count"]) for r in rows}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def many(elasticsearch: SearchNode, opensearch: SearchNode) -> Iterator[tuple[str, dict]]:
    """INDICES one-shard indices with 1 to 3 documents each on the Elasticsearch source
    (restored copies of a few), the shard limit raised on both nodes meanwhile;
    everything removed afterwards."""
    prefix = f"many-{uuid.uuid4().hex[:6]}"
    for node in (elasticsearch, opensearch):
        shard_limit(node, 4 * INDICES)
    try:
        started = time.monotonic()
        expected = restored_copies(elasticsearch, prefix)
        # The source, read on its own: every index there, with its count.
        assert counts(elasticsearch, f"{prefix}-*") == expected
        print(f"\nsource: {INDICES} indices in {time.monotonic() - started:.1f}s")
        yield prefix, expected
    finally:
        # One wildcard per node: no request names every index in its URL.
        for node in (elasticsearch, opensearch):
            node.request("DELETE", f"/*{prefix}-*")
            shard_limit(node, None)


# 2,000 one-shard indices (1,000 restored on the source, 1,000 created by Ferry on the
# target) are bound by the nodes' per-shard cost: beyond the default per-test timeout on
# a loaded 2-core machine.
@pytest.mark.timeout(1800)
def test_thousand_indices_are_planned_copied_and_verified(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, many: tuple[str, dict[str, int]], namespace: str) -> None:
    prefix, expected = many
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=[f"{prefix}-*"], targetNaming={"prefix": "copy-"},
                        workers=4))
    seen: dict[str, float] = {}

    def ended(obj: dict[str, Any]) -> bool:
        seen.setdefault(obj["status"]["phase"], time.monotonic())
        return obj["status"]["phase"] in ("Completed", "CompletedWithErrors", "Failed")

    started = time.monotonic()
    obj = kube.wait_for("backfill", namespace, "many", ended, timeout=900, interval=1.0)
    print(f"\nphases first seen after (s): "
          f"{ {p: round(t - started, 1) for p, t in seen.items()} }")
    status = obj["status"]
    assert status["phase"] == "Completed", status["message"]
    verified = next(c for c in status["conditions"] if c["type"] == "Verified")
    assert verified["status"] == "True"
    assert verified["message"] == f"document counts of {INDICES} indices match"
    # Bounded status, totals over every index.
    assert len(status["indices"]) == STATUS_ROWS
    assert status["progress"]["docsTotal"] == status["progress"]["docsMigrated"] \
        == sum(expected.values())
    assert status["workItems"]["total"] == status["workItems"]["completed"] == INDICES
    assert status["metadata"]["counts"]["created"] == INDICES
    assert len(status["metadata"]["items"]) <= STATUS_ROWS
    # The target, read on its own: every index, with its exact count.
    assert counts(opensearch, f"copy-{prefix}-*") == {
        f"copy-{name}": docs for name, docs in expected.items()}


def test_shard_limit_refusal_fails_clearly_and_stops_creating(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    prefix = f"limit-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{n}" for n in range(5)]
    create_indices(elasticsearch, names, f"{prefix}-*")
    load(elasticsearch, names)
    # Room for two more shards: what the engine counts (open indices, every copy).
    rows = opensearch.request("GET", "/_cat/indices?format=json&h=status,pri,rep"
                              "&expand_wildcards=all")
    open_shards = sum(int(r["pri"]) * (1 + int(r["rep"]))  # type: ignore[index]
                      for r in rows if r["status"] == "open")  # type: ignore[union-attr]
    shard_limit(opensearch, open_shards + 2)
    try:
        kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
                   backfill(indices=[f"{prefix}-*"]))
        obj = kube.wait_for("backfill", namespace, "many",
                            lambda o: o["status"]["phase"] in ("Failed", "Running",
                                                                "Completed"), timeout=180)
        status = obj["status"]
        assert status["phase"] == "Failed", status
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed["status"] == "True"
        assert failed["reason"] == "TargetRejected"
        assert "cluster.max_shards_per_node" in failed["message"]
        assert "maximum shards open" in failed["message"]
        # Ferry creates CREATIONS_IN_FLIGHT indices at once, in waves: the first wave
        # tried four; two of them fitted (which two is the master's order) and two were
        # refused at the limit; the fifth index, in the next wave, was never tried.
        items = [i for i in status["metadata"]["items"] if i["kind"] == "Index"]
        assert [i["name"] for i in items] == names
        wave = {i["name"]: i for i in items[:CREATIONS_IN_FLIGHT]}
        created = sorted(n for n, i in wave.items() if i["action"] == "Created")
        assert len(created) == 2
        refused = [i for n, i in wave.items() if n not in created]
        assert [i["action"] for i in refused] == ["TargetRejected"] * 2
        assert all("maximum shards open" in i["reason"] for i in refused)
        assert [i["action"] for i in items[CREATIONS_IN_FLIGHT:]] == ["TargetRejected"]
        assert "no further index was tried" in items[CREATIONS_IN_FLIGHT]["reason"]
        assert sorted(counts(opensearch, f"{prefix}-*")) == created
        warnings = [e for e in kube.events(namespace, "many") if e["type"] == "Warning"]
        assert [e["reason"] for e in warnings] == ["TargetRejected"]
        assert warnings[0].get("count", 1) == 1
    finally:
        shard_limit(opensearch, None)
        for node in (elasticsearch, opensearch):
            node.request("DELETE", f"/{prefix}-*")
