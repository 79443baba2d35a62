"""The version matrix, method copy (live) between typeless versions: Elasticsearch 7.10
into Elasticsearch 8.15, OpenSearch 1.3 and OpenSearch 3.3; Elasticsearch 8.15 into
OpenSearch 2.19; OpenSearch 1.3 and 2.19 into OpenSearch 3.3.

Each source gets one small data set (``load``): required routing, nested objects,
geo_point, a date with a custom format, a filtered alias, and a composable template
with an alias that an index was created from, plus what the pair's transform has to
deal with (on ES 7.10: a field ``boost``, ``_field_names.enabled`` and settings ES 8
refuses, a merge setting OpenSearch 3 removed; on OpenSearch 2.19: the store setting
OpenSearch 3 removed). Each copy
must end Completed + Verified; the test then reads both sides itself: counts, every
document's id, routing and source, geo/date/nested queries, the target mapping field
by field against what the transform promises, and the report of what was removed.

Into ES 8, an index with a ``join`` field (the test bed's ES 8 has no parent-join
module) is refused by the target and stops the copy before any document is written.

ES 8 as a source also has indices Ferry must refuse before writing anything:
``_source`` disabled, synthetic ``_source``, and a ``dense_vector`` field (OpenSearch's
vector type is ``knn_vector``; Ferry does not transform one into the other).

Tests run grouped by the node that is not pinned in the pool, so each starts once: ES 8
first, then OpenSearch 1.3, then OpenSearch 3.3 (with 1.3 still alive as the source of
one copy: the pool holds four nodes, the two pinned session nodes and these two; ES 8,
the least recently used, is the one it stops for 3.3).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_backfill import condition, count, phase_in
from test_backfill_snapshot import bulk, read_docs
from test_matrix_nodes import es8_access
from test_metadata import backfill, cluster, get

from testbed.kube import KubeAPIServer
from testbed.matrix import NodePool
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

ES8 = ("elasticsearch", "8.15.5")
OS1 = ("opensearch", "1.3.20")
OS3 = ("opensearch", "3.3.2")
DONE = ("Completed", "CompletedWithErrors", "Failed")
DATE = "dd/MM/yyyy HH:mm:ss"
# The events index's fields, as every target must hold them after the copy (ES 7.10's
# add a boost: ES7_FIELDS).
EVENT_FIELDS: dict[str, Any] = {
    "title": {"type": "text"},
    "tag": {"type": "keyword"},
    "when": {"type": "date", "format": DATE},
    "loc": {"type": "geo_point"},
    "comments": {"type": "nested", "properties": {"by": {"type": "keyword"},
                                                  "text": {"type": "text"}}},
}
LOG_FIELDS: dict[str, Any] = {"msg": {"type": "text"},
                              "at": {"type": "date", "format": "yyyy/MM/dd"}}
# What the ES 7.10 events index holds that some targets refuse: ES 8 refuses a field
# boost, _field_names.enabled and the first two settings; OpenSearch 3 the third (Lucene
# 10's TieredMergePolicy has no maxMergeAtOnceExplicit).
ES7_FIELDS = {**EVENT_FIELDS, "title": {"type": "text", "boost": 2.0}}
EXPLICIT = "index.merge.policy.max_merge_at_once_explicit"
ES7_SETTINGS = {"index.translog.retention.size": "1gb",
                "index.max_adjacency_matrix_filters": "50", EXPLICIT: "20"}
# OpenSearch 2.x reads this store setting; OpenSearch 3 removed it (#9392). (OpenSearch
# 1.3 has it only as a node setting; 2.x no longer has max_merge_at_once_explicit.)
MMAP = "index.store.hybrid.mmap.extensions"


def load(node: SearchNode, tag: str, fields: dict[str, Any] | None = None,
         settings: dict[str, Any] | None = None, mapping: dict[str, Any] | None = None
         ) -> None:
    """The data set under ``tag``: ``<tag>-events`` (routing, nested, geo, dates, a
    filtered alias) and ``<tag>-logs-1``, made by the composable template ``<tag>-logs``
    with its alias ``<tag>-logs``. ``fields``, ``settings`` and ``mapping`` (top-level
    mapping parameters) go into the events index."""
    node.request("PUT", f"/_index_template/{tag}-logs", {
        "index_patterns": [f"{tag}-logs-*"], "priority": 50,
        "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                     "mappings": {"properties": LOG_FIELDS},
                     "aliases": {f"{tag}-logs": {}}}})
    node.request("PUT", f"/{tag}-events", {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0, **(settings or {})},
        "mappings": {"_routing": {"required": True}, **(mapping or {}),
                     "properties": fields or EVENT_FIELDS},
        "aliases": {f"{tag}-tagged": {"filter": {"term": {"tag": "t1"}}}}})
    lines: list[Any] = []
    for i in range(24):
        source: dict[str, Any] = {"title": f"event {i} ünï", "tag": f"t{i % 3}",
                                  "when": f"{1 + i:02d}/03/2021 10:{i:02d}:00",
                                  "loc": {"lat": 48.0 + i / 10, "lon": 2.0 + i / 10}}
        if i % 2 == 0:
            source["comments"] = [{"by": "ann", "text": f"on {i}"}, {"by": "bob", "text": "x"}]
        lines += [{"index": {"_index": f"{tag}-events", "_id": f"e{i}",
                             "routing": f"r{i % 5}"}}, source]
    for i in range(9):
        lines += [{"index": {"_index": f"{tag}-logs-1", "_id": f"l{i}"}},
                  {"msg": f"line {i}", "at": f"2021/05/{1 + i:02d}"}]
    bulk(node, lines)


def drop(node: SearchNode, tag: str) -> None:
    """Leave nothing of a data set on a node that outlives the test (by name: ES 8
    refuses wildcard deletes)."""
    rows = node.request("GET", f"/_cat/indices/*{tag}-*?format=json&h=index")
    names = ",".join(r["index"] for r in rows)  # type: ignore[union-attr]
    if names:
        node.request("DELETE", f"/{names}")
    if get(node, f"/_index_template/{tag}-logs") is not None:
        node.request("DELETE", f"/_index_template/{tag}-logs")


def access(kube: KubeAPIServer, namespace: str, node: SearchNode) -> dict[str, Any]:
    return es8_access(namespace, node, kube) if node.secured else {}


def copied(kube: KubeAPIServer, namespace: str, source: SearchNode, target: SearchNode,
           tag: str, indices: list[str], name: str = "copy") -> dict[str, Any]:
    """Clusters for both nodes and a Backfill of ``indices`` (only this data set's
    templates, target names under ``<namespace>-``); its status once it has ended."""
    mine = [f"regex:{tag}-.*"]
    kube.apply(namespace,
               cluster("source", source.url, readOnly=True, **access(kube, namespace, source)),
               cluster("target", target.url, **access(kube, namespace, target)),
               backfill(name, indices=indices, targetNaming={"prefix": f"{namespace}-"},
                        verify={"counts": True, "sampleSize": 20},
                        metadata={"targetReplicas": 0, "allowlist": {
                            "legacyTemplates": mine, "componentTemplates": mine,
                            "indexTemplates": mine}}))
    return kube.wait_for("backfill", namespace, name, phase_in(*DONE), timeout=300)


def items(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["kind"], i["name"]): i for i in obj["status"]["metadata"]["items"]}


def same_answers(source: SearchNode, target: SearchNode, src: str, dst: str) -> None:
    """Queries that only answer alike if geo_point, the custom date format and the
    nested mapping all made it, and the filtered alias kept its filter."""
    queries = [
        {"geo_distance": {"distance": "60km", "loc": {"lat": 48.2, "lon": 2.2}}},
        {"range": {"when": {"gte": "05/03/2021 00:00:00", "lt": "15/03/2021 00:00:00",
                            "format": DATE}}},
        {"nested": {"path": "comments", "query": {"term": {"comments.by": "bob"}}}},
    ]
    for query in queries:
        body = {"query": query, "size": 100, "_source": False}
        want = sorted(h["_id"] for h in source.request(  # type: ignore[index]
            "POST", f"/{src}/_search", body)["hits"]["hits"])
        got = sorted(h["_id"] for h in target.request(  # type: ignore[index]
            "POST", f"/{dst}/_search", body)["hits"]["hits"])
        assert got == want and 0 < len(want) < 24, query


def assert_migrated(obj: dict[str, Any], source: SearchNode, target: SearchNode, tag: str,
                    namespace: str, fields: dict[str, Any] = EVENT_FIELDS) -> dict[str, Any]:
    """Completed + Verified, and the test's own reading of both sides agrees: documents,
    queries, aliases, the template, the events mapping (``fields``: what the transform
    promises). Returns the target's events mapping."""
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert condition(obj, "Verified")["status"] == "True"
    prefix = f"{namespace}-"
    for index in (f"{tag}-events", f"{tag}-logs-1"):
        docs = read_docs(source, index)
        assert count(target, prefix + index) == count(source, index) == len(docs) > 0
        assert read_docs(target, prefix + index) == docs
    events = prefix + f"{tag}-events"
    same_answers(source, target, f"{tag}-events", events)
    mapping = target.request("GET", f"/{events}/_mapping")[events]["mappings"]  # type: ignore[index]
    assert mapping["_routing"] == {"required": True}
    assert mapping["properties"] == fields
    aliases = target.request("GET", f"/{events}/_alias")[events]["aliases"]  # type: ignore[index]
    assert aliases == {f"{tag}-tagged": {"filter": {"term": {"tag": "t1"}}}}
    logs = prefix + f"{tag}-logs-1"
    got = target.request("GET", f"/{logs}")[logs]  # type: ignore[index]
    assert got["aliases"] == {f"{tag}-logs": {}}
    assert got["mappings"]["properties"] == LOG_FIELDS
    templates = target.request("GET", f"/_index_template/{tag}-logs")["index_templates"]  # type: ignore[index]
    template = templates[0]["index_template"]
    assert template["index_patterns"] == [f"{tag}-logs-*"]
    assert template["template"]["mappings"]["properties"] == LOG_FIELDS
    assert template["template"]["aliases"] == {f"{tag}-logs": {}}
    return mapping


@pytest.fixture(scope="module", autouse=True)
def release_nodes(search_nodes: NodePool) -> Iterator[None]:
    """Stop this module's non-pinned nodes after its last test, once every test's
    Backfills are deleted (their cleanup reaches both Clusters). Within the module the
    pool stops ES 8 itself when OpenSearch 3.3 starts (the least recently used).
    OpenSearch 3.3 stays: the restores into it come next in the run's order (conftest
    NODE_ORDER)."""
    yield
    for node in (ES8, OS1):
        search_nodes.release(*node)


@pytest.fixture(scope="module")
def es7_data(elasticsearch: SearchNode) -> Iterator[str]:
    """The data set on the session's ES 7.10 node, with what newer targets refuse."""
    tag = f"m7{uuid.uuid4().hex[:6]}"
    load(elasticsearch, tag, fields=ES7_FIELDS, settings=ES7_SETTINGS,
         mapping={"_field_names": {"enabled": False}})
    yield tag
    drop(elasticsearch, tag)


def settings_of(node: SearchNode, index: str) -> dict[str, Any]:
    got = node.request("GET", f"/{index}/_settings?flat_settings=true")
    return got[index]["settings"]  # type: ignore[index]


def assert_settings(obj: dict[str, Any], target: SearchNode, index: str, name: str,
                    settings: dict[str, str], removed: set[str]) -> dict[str, Any]:
    """Exactly ``removed`` of ``settings`` were removed and reported; the others are on
    the target index. Returns the index's report item."""
    item = items(obj)[("Index", name)]
    assert item["action"] == "Created"
    assert set(item.get("removedSettings", [])) == removed, item
    held = settings_of(target, index)
    for key, value in settings.items():
        assert (held.get(key) == value) == (key not in removed), (key, held)
    return item


def copy_es710(kube: KubeAPIServer, namespace: str, source: SearchNode, target: SearchNode,
               tag: str, fields: dict[str, Any], removed: set[str]
               ) -> tuple[dict[str, Any], str]:
    """ES 7.10 into ``target``: migrated with the events ``fields`` the transform
    promises and without exactly the ``removed`` settings. (events mapping, reason)."""
    obj = copied(kube, namespace, source, target, tag, [f"{tag}-*"])
    mapping = assert_migrated(obj, source, target, tag, namespace, fields)
    item = assert_settings(obj, target, f"{namespace}-{tag}-events", f"{tag}-events",
                           ES7_SETTINGS, removed)
    return mapping, item.get("reason", "")


def test_es710_copy_into_es8(kube: KubeAPIServer, operator: OperatorProcess,
                             elasticsearch: SearchNode, es7_data: str, namespace: str,
                             search_nodes: NodePool,
                             matrix_case: Callable[..., None]) -> None:
    """Into the secured ES 8 node: the settings it refuses by name removed and reported,
    the field boost and _field_names.enabled (refused too) transformed away."""
    es8 = search_nodes.get(*ES8)
    matrix_case("copy", elasticsearch, es8)
    mapping, reason = copy_es710(kube, namespace, elasticsearch, es8, es7_data, EVENT_FIELDS,
                                 {"index.translog.retention.size",
                                  "index.max_adjacency_matrix_filters"})
    assert "_field_names" not in mapping
    assert "boost removed (Elasticsearch 8.15.5 takes no mapping-time boost): title" in reason
    assert "_field_names.enabled removed" in reason


def test_es710_join_index_refused_by_es8_stops_the_copy_before_documents(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        namespace: str, search_nodes: NodePool) -> None:
    """The test bed's ES 8 has no parent-join module (no 8.x module jar is published),
    so it refuses a ``join`` field: that index is reported TargetRejected with ES 8's
    reason, and the Backfill fails before any document is copied (an index the copy
    needs is missing), with nothing of the refused index on ES 8. Left out, the
    ordinary index of the same data set then copies exactly. (No table cell: a real ES
    8 has join; this is the target-refusal path on a real engine.)"""
    es8 = search_nodes.get(*ES8)
    tag = f"mj{uuid.uuid4().hex[:6]}"
    family, plain = f"{tag}-family", f"{tag}-plain"
    one_shard = {"number_of_shards": 1, "number_of_replicas": 0}
    elasticsearch.request("PUT", f"/{family}", {"settings": one_shard, "mappings": {
        "properties": {"text": {"type": "text"},
                       "rel": {"type": "join", "relations": {"question": "answer"}}}}})
    elasticsearch.request("PUT", f"/{plain}", {"settings": one_shard, "mappings": {
        "properties": {"n": {"type": "long"}}}})
    bulk(elasticsearch, [
        {"index": {"_index": family, "_id": "q1"}}, {"text": "why", "rel": "question"},
        {"index": {"_index": family, "_id": "a1", "routing": "q1"}},
        {"text": "because", "rel": {"name": "answer", "parent": "q1"}},
        *[line for i in range(17) for line in ({"index": {"_index": plain, "_id": f"p{i}"}},
                                               {"n": i})]])
    prefix = f"{namespace}-"
    try:
        obj = copied(kube, namespace, elasticsearch, es8, tag, [f"{tag}-*"])
        status = obj["status"]
        assert status["phase"] == "Failed", status
        assert condition(obj, "Failed")["reason"] == "TargetRejected"
        assert f"{family}: " in status["message"]
        refused = items(obj)[("Index", family)]
        assert refused["action"] == "TargetRejected", refused
        assert "[join]" in refused["reason"], refused
        assert items(obj)[("Index", plain)]["action"] == "Created"
        # The test's own reading of ES 8: the refused index absent, no document copied.
        assert get(es8, f"/{prefix}{family}") is None
        assert count(es8, prefix + plain) == 0
        assert status["progress"].get("docsMigrated", 0) == 0

        again = copied(kube, namespace, elasticsearch, es8, tag, [plain], name="again")
        assert again["status"]["phase"] == "Completed", again["status"]
        assert condition(again, "Verified")["status"] == "True"
        docs = read_docs(elasticsearch, plain)
        assert len(docs) == 17 and read_docs(es8, prefix + plain) == docs
        assert get(es8, f"/{prefix}{family}") is None
    finally:
        drop(elasticsearch, tag)
        drop(es8, tag)


@pytest.fixture(scope="module")
def es8_data(search_nodes: NodePool) -> Iterator[str]:
    """The data set on ES 8, and indices the copy into OpenSearch must refuse."""
    node = search_nodes.get(*ES8)
    tag = f"m8{uuid.uuid4().hex[:6]}"
    load(node, tag)
    for suffix, mapping in (
            ("nosource", {"_source": {"enabled": False}}),
            ("synthetic", {"_source": {"mode": "synthetic"}}),
            ("vectors", {"properties": {"title": {"type": "text"}, "doc": {"properties": {
                "emb": {"type": "dense_vector", "dims": 3}}}}})):
        node.request("PUT", f"/{tag}-bad-{suffix}", {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": mapping})
    bulk(node, [line for suffix in ("nosource", "synthetic", "vectors") for line in (
        {"index": {"_index": f"{tag}-bad-{suffix}", "_id": "1"}},
        {"title": "x", "doc": {"emb": [0.5, 1.0, 2.0]}} if suffix == "vectors"
        else {"title": "x"})])
    yield tag


def test_es8_copy_into_opensearch_2_19(kube: KubeAPIServer, operator: OperatorProcess,
                                       opensearch: SearchNode, es8_data: str,
                                       namespace: str, search_nodes: NodePool,
                                       matrix_case: Callable[..., None]) -> None:
    es8 = search_nodes.get(*ES8)
    matrix_case("copy", es8, opensearch)
    try:
        obj = copied(kube, namespace, es8, opensearch, es8_data,
                     [f"{es8_data}-events", f"{es8_data}-logs-*"])
        assert_migrated(obj, es8, opensearch, es8_data, namespace)
    finally:
        drop(opensearch, es8_data)


def test_es8_sources_opensearch_cannot_take_are_incompatible(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        es8_data: str, namespace: str, search_nodes: NodePool) -> None:
    es8 = search_nodes.get(*ES8)
    obj = copied(kube, namespace, es8, opensearch, es8_data, [f"{es8_data}-bad-*"])
    assert obj["status"]["phase"] == "Failed", obj["status"]
    assert condition(obj, "Failed")["reason"] == "IncompatibleIndices"
    got = items(obj)
    reasons = {suffix: got[("Index", f"{es8_data}-bad-{suffix}")]
               for suffix in ("nosource", "synthetic", "vectors")}
    assert {i["action"] for i in reasons.values()} == {"Incompatible"}, reasons
    assert "_source is disabled" in reasons["nosource"]["reason"]
    assert "synthetic" in reasons["synthetic"]["reason"]
    assert "doc.emb" in reasons["vectors"]["reason"]
    assert "dense_vector" in reasons["vectors"]["reason"]
    assert "knn_vector" in reasons["vectors"]["reason"]
    # Refused before anything was written.
    assert opensearch.request("GET", f"/_cat/indices/{namespace}-*?format=json") == []
    assert get(opensearch, f"/_index_template/{es8_data}-logs") is None




def test_es710_copy_into_opensearch_1_3(kube: KubeAPIServer, operator: OperatorProcess,
                                        elasticsearch: SearchNode, es7_data: str,
                                        namespace: str, search_nodes: NodePool,
                                        matrix_case: Callable[..., None]) -> None:
    """OpenSearch 1.3 takes everything ES 7.10 has, boost and _field_names included."""
    os1 = search_nodes.get(*OS1)
    matrix_case("copy", elasticsearch, os1)
    mapping, _ = copy_es710(kube, namespace, elasticsearch, os1, es7_data, ES7_FIELDS, set())
    assert mapping["_field_names"] == {"enabled": False}


def test_es710_copy_into_opensearch_3_3(kube: KubeAPIServer, operator: OperatorProcess,
                                        elasticsearch: SearchNode, es7_data: str,
                                        namespace: str, search_nodes: NodePool,
                                        matrix_case: Callable[..., None]) -> None:
    os3 = search_nodes.get(*OS3)
    matrix_case("copy", elasticsearch, os3)
    mapping, reason = copy_es710(kube, namespace, elasticsearch, os3, es7_data, ES7_FIELDS,
                                 {EXPLICIT})
    assert mapping["_field_names"] == {"enabled": False}
    assert f"the target rejected {EXPLICIT}" in reason


def copy_into_os3(kube: KubeAPIServer, namespace: str, source: SearchNode,
                  target: SearchNode, settings: dict[str, str], removed: set[str]) -> None:
    """An OpenSearch source's data set into OpenSearch 3.3: the settings OpenSearch 3
    removed are removed and reported, the others kept."""
    tag = f"mo{uuid.uuid4().hex[:6]}"
    load(source, tag, settings=settings)
    try:
        obj = copied(kube, namespace, source, target, tag, [f"{tag}-*"])
        assert_migrated(obj, source, target, tag, namespace)
        assert_settings(obj, target, f"{namespace}-{tag}-events", f"{tag}-events", settings,
                        removed)
    finally:
        drop(source, tag)


def test_opensearch_1_3_copy_into_opensearch_3_3(
        kube: KubeAPIServer, operator: OperatorProcess, namespace: str,
        search_nodes: NodePool, matrix_case: Callable[..., None]) -> None:
    os3 = search_nodes.get(*OS3)
    # Both alive at once: the pool's limit (four) leaves room next to the pinned nodes.
    os1 = search_nodes.get(*OS1)
    assert os3.running
    matrix_case("copy", os1, os3)
    copy_into_os3(kube, namespace, os1, os3,
                  {EXPLICIT: "20", "index.codec": "best_compression"}, {EXPLICIT})


def test_opensearch_2_19_copy_into_opensearch_3_3(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        namespace: str, search_nodes: NodePool, matrix_case: Callable[..., None]) -> None:
    os3 = search_nodes.get(*OS3)
    matrix_case("copy", opensearch, os3)
    copy_into_os3(kube, namespace, opensearch, os3,
                  {MMAP: "nvd,dvd", "index.codec": "best_compression"}, {MMAP})
