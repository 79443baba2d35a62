"""spec.throttle is one limit over every process copying for a Backfill, and throttle
changes reach a running copy: proved by ceilings on the target's document count over
time (a slow machine copies less, never more), never by a stopwatch floor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_backfill import (
    backfill,
    clusters,
    count,
    phase_in,
    start_workers,
    worker_outputs,
)

from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration


def source_index(node: SearchNode, name: str, docs: int, shards: int) -> None:
    node.request("PUT", f"/{name}", {"settings": {"number_of_shards": shards,
                                                  "number_of_replicas": 0}})
    for start in range(0, docs, 5000):
        body = "".join(f'{{"index":{{"_id":"d{i}"}}}}\n{json.dumps({"n": i})}\n'
                       for i in range(start, min(docs, start + 5000)))
        node.request("POST", f"/{name}/_bulk?refresh=true", body.encode())


Sample = tuple[float, float, int]  # (before, after, documents on the target)


def sample_until(node: SearchNode, index: str, done: Callable[[int], bool],
                 timeout: float) -> list[Sample]:
    """The target's count about twice a second, each between two clock readings (a
    refresh and a count can be slow), until ``done`` holds for it."""
    samples: list[Sample] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = time.monotonic()
        copied = count(node, index)
        samples.append((before, time.monotonic(), copied))
        if done(copied):
            return samples
        time.sleep(0.5)
    raise AssertionError(f"the target's count never got there: {samples[-5:]}")


def over_ceiling(origin: Sample, samples: list[Sample], limit: int) -> list[Sample]:
    """Samples with more documents than ``limit`` allows since ``origin``, beyond one
    second's burst (the buckets' capacity) and two seconds' worth in flight (at most
    two bulks per process, each at most one second of its share, paid before
    ``origin``)."""
    return [s for s in samples
            if s[2] - origin[2] > limit * (s[1] - origin[0]) + 3 * limit]


def throttled_then_not(kube: KubeAPIServer, namespace: str, node: SearchNode, index: str,
                       limit: int, total: int) -> None:
    """Ten seconds' worth of the limit copied under its ceiling (from the first
    documents seen); then the limit removed, and the target gets documents the old
    limit could not have sent by then."""
    origin = sample_until(node, index, lambda n: n > 0, timeout=90)[-1]
    throttled = sample_until(node, index, lambda n: n >= origin[2] + 10 * limit, timeout=90)
    assert over_ceiling(origin, throttled, limit) == [], (origin, throttled)
    kube.kubectl("patch", "backfill/copy", "-n", namespace, "--type=merge",
                 "-p", json.dumps({"spec": {"throttle": {"maxDocsPerSecond": None}}}))
    rest = sample_until(node, index, lambda n: n == total, timeout=90)
    assert over_ceiling(origin, rest, limit), (origin, throttled, rest)


def throttled_backfill(kube: KubeAPIServer, namespace: str, elasticsearch: SearchNode,
                       opensearch: SearchNode, limit: int, total: int, shards: int,
                       **spec: Any) -> str:
    """A Backfill of ``total`` small documents at ``limit`` per second, Running; its
    target index."""
    src = f"thr-{namespace}"
    source_index(elasticsearch, src, total, shards)
    kube.apply(namespace, *clusters(elasticsearch.url, opensearch.url),
               backfill(indices=[src], targetNaming={"prefix": "x-"},
                        throttle={"maxDocsPerSecond": limit}, **spec))
    kube.wait_for("backfill", namespace, "copy", phase_in("Running"), timeout=60)
    return f"x-{src}"


def test_two_worker_processes_share_one_limit_and_a_removed_limit_reaches_them(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    limit, total = 100, 6000
    target = throttled_backfill(kube, namespace, elasticsearch, opensearch, limit, total,
                                shards=2, workers=2, executor="pods")
    workers = start_workers(kube, namespace, lease_seconds=4)
    try:
        # Each process at the whole limit would copy at twice it: over the ceiling
        # well within the ten seconds' worth. The limit removed: each re-reads it.
        throttled_then_not(kube, namespace, opensearch, target, limit, total)
        obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed"),
                            timeout=60)
    finally:
        outputs = worker_outputs(workers)
    assert obj["status"]["phase"] == "Completed", (obj["status"], outputs)
    coord = obj["status"]["coordinationIndex"]
    opensearch.request("POST", f"/{coord}/_refresh")
    items = opensearch.request("POST", f"/{coord}/_search", {
        "size": 100, "query": {"term": {"kind": "item"}}})["hits"]["hits"]  # type: ignore[index]
    holders = {i["_source"]["holder"] for i in items}
    for w in workers:  # both processes copied: the limit was shared, not used by one
        assert any(f"-{w.pid}-" in (h or "") for h in holders), (w.pid, holders)


def test_a_raised_throttle_reaches_the_operators_running_workers(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    limit, total = 50, 3000
    target = throttled_backfill(kube, namespace, elasticsearch, opensearch, limit, total,
                                shards=1, workers=1)
    throttled_then_not(kube, namespace, opensearch, target, limit, total)
    obj = kube.wait_for("backfill", namespace, "copy", phase_in("Completed", "Failed"),
                        timeout=60)
    assert obj["status"]["phase"] == "Completed", obj["status"]
