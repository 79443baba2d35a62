"""The version matrix, Elasticsearch 6.8 as a live source, and the restore pairs.

One ES 6.8.23 data set — a typed index (custom type ``event``) with a ``_default_``
mapping, required routing, nested objects, a parent/join pair (answers routed to their
question), geo_point, a date with a custom format, a filtered alias, and a legacy
template (typed, type ``log``) with an alias that an index was created from — is copied
live (method copy, ``_seq_no`` windows) into OpenSearch 2.19 and 1.3, and a Ferry
Snapshot of it is restored into OpenSearch 1.3 and refused for OpenSearch 2.19. The
copy of it on OpenSearch 1.3 is then snapshotted there and restored into 2.19.

Everything is checked by the test's own reading of both sides: counts, every
document's id, routing and source, join/geo/date queries, and the target mapping field
by field against what the typed → typeless transform promises.

Tests run in this order so that each node starts once: ES 6.8 and OpenSearch 1.3 are
alive together (the pool's limit is four: the two pinned session nodes and these).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_backfill import count
from test_backfill_snapshot import DONE, Docs, bulk, read_docs
from test_metadata import backfill, cluster, condition, get, phase_in, snapshot

from testbed.kube import KubeAPIServer
from testbed.matrix import NodePool
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

ES6 = ("elasticsearch", "6.8.23")
OS1 = ("opensearch", "1.3.20")
DATE = "dd/MM/yyyy HH:mm:ss"
# What the source's typed mapping of the events index holds, as a typeless target
# must hold it (the transform's promise: same fields, same parameters, no type level).
EVENT_FIELDS: dict[str, Any] = {
    "title": {"type": "text"},
    "tag": {"type": "keyword"},
    "when": {"type": "date", "format": f"{DATE}||epoch_millis"},
    "loc": {"type": "geo_point"},
    "comments": {"type": "nested", "properties": {"by": {"type": "keyword"},
                                                  "text": {"type": "text"}}},
    "rel": {"type": "join", "eager_global_ordinals": True,
            "relations": {"question": "answer"}},
    "ingested": {"type": "keyword"},  # from _default_, merged into the type by ES 6
}


@dataclass
class Source:
    node: SearchNode
    namespace: str
    tag: str
    repo: str
    docs: Docs  # index -> id -> (routing, source), the test's own reading

    def index(self, suffix: str) -> str:
        return f"e6{self.tag}-{suffix}"

    @property
    def pattern(self) -> str:
        return f"e6{self.tag}-*"

    @property
    def allowlist(self) -> dict[str, list[str]]:
        """Only this data set's templates, never other tests' on shared nodes."""
        mine = [f"regex:e6{self.tag}-.*"]
        return {"legacyTemplates": mine, "componentTemplates": mine, "indexTemplates": mine}


def load(node: SearchNode, tag: str) -> None:
    events, logs = f"e6{tag}-events", f"e6{tag}-logs-1"
    node.request("PUT", f"/_template/e6{tag}-logs", {
        "index_patterns": [f"e6{tag}-logs-*"], "order": 3,
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"log": {"properties": {"msg": {"type": "text"},
                                            "at": {"type": "date", "format": "yyyy/MM/dd"}}}},
        "aliases": {f"e6{tag}-logs": {}}})
    node.request("PUT", f"/{events}", {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0},
        "mappings": {
            "_default_": {"properties": {"ingested": {"type": "keyword"}}},
            "event": {"_routing": {"required": True},
                      "properties": {k: v for k, v in EVENT_FIELDS.items()
                                     if k not in ("ingested", "rel")} | {
                          "rel": {"type": "join", "relations": {"question": "answer"}}}}},
        "aliases": {f"e6{tag}-tagged": {"filter": {"term": {"tag": "t1"}}}}})
    lines: list[Any] = []
    for i in range(12):
        question = f"q{i}"
        lines += [{"index": {"_index": events, "_type": "event", "_id": question,
                             "routing": question}},
                  {"title": f"question {i} ünï", "tag": f"t{i % 3}",
                   "when": f"{1 + i:02d}/03/2019 10:{i:02d}:00",
                   "loc": {"lat": 48.0 + i / 10, "lon": 2.0 + i / 10},
                   "rel": {"name": "question"}, "ingested": "yes"}]
    for i in range(18):
        parent = f"q{i % 6}"
        source: dict[str, Any] = {"title": f"answer {i}", "tag": f"t{i % 3}",
                                  "when": f"{1 + i:02d}/04/2019 11:00:00",
                                  "loc": f"{40 + i / 10},{-3 - i / 10}",
                                  "rel": {"name": "answer", "parent": parent}}
        if i % 2 == 0:
            source["comments"] = [{"by": "ann", "text": f"on {i}"}, {"by": "bob", "text": "x"}]
        lines += [{"index": {"_index": events, "_type": "event", "_id": f"a{i}",
                             "routing": parent}}, source]
    for i in range(7):
        lines += [{"index": {"_index": logs, "_type": "log", "_id": f"l{i}"}},
                  {"msg": f"line {i}", "at": f"2019/05/{1 + i:02d}"}]
    bulk(node, lines)


@pytest.fixture(scope="module")
def es6(kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        search_nodes: NodePool, shared_repo: Path) -> Iterator[Source]:
    """The ES 6.8 data set, the module's Clusters and a Completed Ferry Snapshot of it."""
    node = search_nodes.get(*ES6)
    tag = uuid.uuid4().hex[:6]
    namespace = f"e6-{tag}"
    kube.kubectl("create", "namespace", namespace)
    load(node, tag)
    src = Source(node, namespace, tag, f"e6{tag}-repo", {})
    src.docs = {name: read_docs(node, name) for name in (src.index("events"),
                                                        src.index("logs-1"))}
    kube.apply(namespace, cluster("source", node.url, readOnly=True),
               cluster("target", opensearch.url),
               snapshot("snap", "source", src.repo, shared_repo / src.repo, [src.pattern]))
    snap = kube.wait_for("snapshot", namespace, "snap", phase_in("Completed", "Failed"),
                         timeout=180)
    assert snap["status"]["phase"] == "Completed", snap["status"]
    try:
        yield src
    finally:
        kube.drop_namespace(namespace)
        # The session target outlives this module: leave nothing of ours on it.
        opensearch.request("DELETE", f"/{namespace}-*,r3-{tag}-*")
        opensearch.request("DELETE", f"/_template/e6{tag}-*")
        search_nodes.release(*ES6)  # no later test needs it; OS 1.3's come next


def settle(kube: KubeAPIServer, namespace: str, name: str, timeout: float = 240
           ) -> dict[str, Any]:
    return kube.wait_for("backfill", namespace, name, phase_in(*DONE), timeout=timeout)


def migrated(kube: KubeAPIServer, src: Source, name: str, prefix: str,
             resources: tuple[dict[str, Any], ...] = (), **spec: Any) -> dict[str, Any]:
    """Apply ``resources`` and a Backfill of this data set's templates (no replicas, target
    names under ``prefix``), and wait until it is Completed and Verified."""
    kube.apply(src.namespace, *resources, backfill(
        name, targetNaming={"prefix": prefix},
        metadata={"targetReplicas": 0, "allowlist": src.allowlist}, **spec))
    obj = settle(kube, src.namespace, name)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert condition(obj, "Verified")["status"] == "True"
    return obj


def assert_copied(src: Source, target: SearchNode, prefix: str) -> None:
    """The target holds exactly the source's documents (ids, routing, sources)."""
    for name, docs in src.docs.items():
        assert count(target, prefix + name) == count(src.node, name) == len(docs) > 0
        assert read_docs(target, prefix + name) == docs


def assert_join_geo_date(src: Source, target: SearchNode, index: str) -> None:
    """Queries that only answer alike if the join, routing, geo_point and the custom
    date format all made it: the same questions have answers on both sides."""
    queries = [
        {"has_child": {"type": "answer", "query": {"match_all": {}}}},
        {"has_parent": {"parent_type": "question", "query": {"term": {"tag": "t1"}}}},
        {"parent_id": {"type": "answer", "id": "q2"}},
        {"geo_distance": {"distance": "60km", "loc": {"lat": 48.2, "lon": 2.2}}},
        {"range": {"when": {"gte": "05/03/2019 00:00:00", "lt": "03/04/2019 00:00:00",
                            "format": DATE}}},
        {"nested": {"path": "comments", "query": {"term": {"comments.by": "bob"}}}},
    ]
    for query in queries:
        body = {"query": query, "size": 100, "_source": False}
        want = sorted(h["_id"] for h in src.node.request(  # type: ignore[index]
            "POST", f"/{src.index('events')}/_search", body)["hits"]["hits"])
        got = sorted(h["_id"] for h in target.request(  # type: ignore[index]
            "POST", f"/{index}/_search", body)["hits"]["hits"])
        assert got == want and want, query


def assert_typeless_mapping(target: SearchNode, index: str) -> dict[str, Any]:
    mappings = target.request("GET", f"/{index}/_mapping")[index]["mappings"]  # type: ignore[index]
    assert "event" not in mappings and "_default_" not in mappings
    assert mappings["_routing"] == {"required": True}
    assert mappings["properties"] == EVENT_FIELDS
    return mappings


def test_es68_copy_into_opensearch_2_19(
        kube: KubeAPIServer, es6: Source, opensearch: SearchNode, matrix_case: Any) -> None:
    matrix_case("copy", es6.node, opensearch)
    prefix = f"{es6.namespace}-"
    obj = migrated(kube, es6, "to-os2", prefix, indices=[es6.pattern],
                   verify={"counts": True, "sampleSize": 20})
    assert_copied(es6, opensearch, prefix)
    events = prefix + es6.index("events")
    assert_join_geo_date(es6, opensearch, events)
    assert_typeless_mapping(opensearch, events)
    # The aliases: the filtered one on the index, the template's on the index it made.
    aliases = opensearch.request("GET", f"/{events}/_alias")[events]["aliases"]  # type: ignore[index]
    assert aliases == {es6.index("tagged"): {"filter": {"term": {"tag": "t1"}}}}
    logs = prefix + es6.index("logs-1")
    assert es6.index("logs") in opensearch.request(  # type: ignore[operator]
        "GET", f"/{logs}/_alias")[logs]["aliases"]
    # The legacy template, typeless on the target.
    tpl = opensearch.request("GET", f"/_template/{es6.index('logs')}")[es6.index("logs")]  # type: ignore[index]
    assert tpl["mappings"] == {"properties": {"msg": {"type": "text"},
                                              "at": {"type": "date", "format": "yyyy/MM/dd"}}}
    assert tpl["index_patterns"] == [es6.index("logs-*")]
    assert tpl["aliases"] == {es6.index("logs"): {}}
    # Every transform is in status.metadata: the type made typeless, _default_ dropped.
    items = {(i["kind"], i["name"]): i for i in obj["status"]["metadata"]["items"]}
    index_item = items[("Index", es6.index("events"))]
    assert index_item["action"] == "Created"
    assert "mapping type event made typeless" in index_item["reason"]
    assert "the _default_ mapping was dropped" in index_item["reason"]
    template_item = items[("LegacyTemplate", es6.index("logs"))]
    assert template_item["action"] == "Created"
    assert template_item["reason"] == "mapping type log made typeless"
    assert "_default_" not in items[("Index", es6.index("logs-1"))]["reason"]


def test_es68_snapshot_restore_into_opensearch_2_19_is_refused(
        kube: KubeAPIServer, es6: Source, opensearch: SearchNode, matrix_case: Any) -> None:
    matrix_case("restore refused", es6.node, opensearch)
    prefix = f"r2-{es6.tag}-"
    kube.apply(es6.namespace, backfill("restore-os2", method="restore",
                                       source={"snapshotRef": {"name": "snap"}},
                                       targetNaming={"prefix": prefix},
                                       metadata={"allowlist": es6.allowlist}))
    obj = settle(kube, es6.namespace, "restore-os2", timeout=90)
    assert obj["status"]["phase"] == "Failed"
    assert condition(obj, "Failed")["reason"] == "IncompatibleVersions"
    message = obj["status"]["message"]
    assert f"Elasticsearch {es6.node.number} cannot be restored into OpenSearch " \
        f"{opensearch.number}" in message
    assert "Use method copy" in message
    # Nothing written: no repository registered, no index restored.
    assert get(opensearch, f"/_snapshot/{es6.repo}") is None
    assert opensearch.request("GET", f"/_cat/indices/{prefix}*?format=json") == []


def test_es68_copy_into_opensearch_1_3(
        kube: KubeAPIServer, es6: Source, search_nodes: NodePool, matrix_case: Any) -> None:
    os1 = search_nodes.get(*OS1)
    matrix_case("copy", es6.node, os1)
    prefix = f"c1-{es6.tag}-"
    migrated(kube, es6, "to-os1", prefix, (cluster("os1", os1.url),), target_ref="os1",
             indices=[es6.pattern])
    assert_copied(es6, os1, prefix)
    assert_join_geo_date(es6, os1, prefix + es6.index("events"))
    assert_typeless_mapping(os1, prefix + es6.index("events"))


def test_es68_snapshot_restores_into_opensearch_1_3(
        kube: KubeAPIServer, es6: Source, search_nodes: NodePool, matrix_case: Any) -> None:
    os1 = search_nodes.get(*OS1)
    matrix_case("restore", es6.node, os1)
    prefix = f"r1-{es6.tag}-"
    migrated(kube, es6, "restore-os1", prefix, (cluster("os1", os1.url),),
             target_ref="os1", method="restore", source={"snapshotRef": {"name": "snap"}})
    assert_copied(es6, os1, prefix)
    assert_join_geo_date(es6, os1, prefix + es6.index("events"))
    # A restored 6.x index keeps its own mapping, which OpenSearch 1 serves typeless.
    mappings = os1.request("GET", f"/{prefix}{es6.index('events')}/_mapping")[  # type: ignore[index]
        f"{prefix}{es6.index('events')}"]["mappings"]
    assert mappings["properties"]["rel"]["relations"] == {"question": "answer"}


def test_es710_snapshot_restores_into_opensearch_1_3(
        kube: KubeAPIServer, es6: Source, search_nodes: NodePool, elasticsearch: SearchNode,
        shared_repo: Path, matrix_case: Any) -> None:
    """The same events, typeless on the session's ES 7.10 node, restored into 1.3."""
    os1 = search_nodes.get(*OS1)
    matrix_case("restore", elasticsearch, os1)
    index = f"e7{es6.tag}-events"
    elasticsearch.request("PUT", f"/{index}", {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0},
        "mappings": {"_routing": {"required": True}, "properties": EVENT_FIELDS}})
    bulk(elasticsearch, [line for doc_id, (routing, source) in
                         src_events(es6).items() for line in (
                             {"index": {"_index": index, "_id": doc_id, "routing": routing}},
                             source)])
    repo, prefix = f"e7{es6.tag}-repo", f"r7-{es6.tag}-"
    migrated(kube, es6, "es7-to-os1", prefix, (
        cluster("es7", elasticsearch.url, readOnly=True), cluster("os1", os1.url),
        snapshot("es7-snap", "es7", repo, shared_repo / repo, [index])),
        source_ref="es7", target_ref="os1", method="restore",
        source={"snapshotRef": {"name": "es7-snap"}})
    assert count(os1, prefix + index) == count(elasticsearch, index) == len(src_events(es6))
    assert read_docs(os1, prefix + index) == read_docs(elasticsearch, index)
    elasticsearch.request("DELETE", f"/{index}")


def src_events(src: Source) -> dict[str, tuple[str | None, Any]]:
    return src.docs[src.index("events")]


def test_opensearch_1_3_snapshot_restores_into_opensearch_2_19(
        kube: KubeAPIServer, es6: Source, search_nodes: NodePool, opensearch: SearchNode,
        shared_repo: Path, matrix_case: Any) -> None:
    """The ES 6.8 data as OpenSearch 1.3 holds it after the copy (indices created by
    OpenSearch 1.3), snapshotted there and restored into 2.19."""
    os1 = search_nodes.get(*OS1)
    matrix_case("restore", os1, opensearch)
    copied = f"c1-{es6.tag}-e6{es6.tag}-*"
    repo = f"o1{es6.tag}-repo"
    prefix = f"r3-{es6.tag}-"
    migrated(kube, es6, "os1-to-os2", prefix, (
        cluster("os1", os1.url),
        snapshot("os1-snap", "os1", repo, shared_repo / repo, [copied])),
        source_ref="os1", method="restore", source={"snapshotRef": {"name": "os1-snap"}})
    assert_copied(es6, opensearch, f"{prefix}c1-{es6.tag}-")
    assert_typeless_mapping(opensearch, f"{prefix}c1-{es6.tag}-{es6.index('events')}")
