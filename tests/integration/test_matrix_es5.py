"""The version matrix, Elasticsearch 5.6 as a source: method copy (live, from the
running node) into the session's OpenSearch 2.19.

ES 5.6 keeps no ``_seq_no``, so its shards are read by ``_uid`` (``UidCursor``); the
data set has what differs on 5.x: two mapping types with one colliding ``_id``
(``multiTypeMappings: Merge`` folds the type into the target ``_id``), ``string``
fields (kept as written only in a legacy template: a 5.6 index reads them back as
text/keyword), ``_all``, ``include_in_all``, a Joda date format and ``_routing``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_backfill import backfill, clusters, condition, count, phase_in

from ferry.clients.search import SearchConnection
from ferry.services.backfill.documents import UidCursor
from ferry.services.backfill.workitems import OPEN_END, WorkItem
from testbed.kube import KubeAPIServer
from testbed.matrix import NodePool
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

INDEX = "es5-multi"
TEMPLATE = "es5-legacy"
FIELDS = {"title": {"type": "string", "include_in_all": True},
          "tag": {"type": "string", "index": "not_analyzed", "include_in_all": False},
          "created": {"type": "date", "format": "dateOptionalTime||YYYY/MM/dd"}}
POSTS, COMMENTS = 40, 30


@pytest.fixture(scope="module")
def es5(search_nodes: NodePool) -> SearchNode:
    node = search_nodes.get("elasticsearch", "5.6.16")
    node.request("PUT", f"/{INDEX}", {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0},
        "mappings": {"post": {"_all": {"enabled": True}, "properties": FIELDS},
                     "comment": {"properties": FIELDS}}})
    lines = []
    for n in range(POSTS):
        lines += [{"index": {"_type": "post", "_id": str(n)}},
                  {"title": f"post number {n}", "tag": f"T-{n % 3}",
                   "created": f"2017/03/{n % 28 + 1:02d}"}]
    for n in range(COMMENTS):  # comment "1" collides with post "1"
        lines += [{"index": {"_type": "comment", "_id": str(n), "_routing": f"r{n % 4}"}},
                  {"title": f"comment {n}", "tag": "C",
                   "created": f"2017-04-{n % 28 + 1:02d}T10:00:00"}]
    node.request("POST", f"/{INDEX}/_bulk?refresh=true",
                 "".join(json.dumps(line) + "\n" for line in lines).encode())
    node.request("PUT", f"/_template/{TEMPLATE}", {"template": "es5-logs-*", "mappings": {
        "log": {"properties": {"msg": {"type": "string"},
                               "host": {"type": "string", "index": "not_analyzed"}}}}})
    return node


def source_docs(node: SearchNode) -> dict[str, dict[str, Any]]:
    """Every source document by its _uid, read by the test itself."""
    got = node.request("POST", f"/{INDEX}/_search", {"size": 1000})
    return {f"{h['_type']}#{h['_id']}": h for h in got["hits"]["hits"]}  # type: ignore[index]


def test_uid_cursor_resumes_from_its_checkpoint_without_duplicates(es5: SearchNode) -> None:
    """The reader alone on the real node: half a shard read, the checkpoint stored and
    read back as the coordination index does, a fresh reader resumes from it."""
    engine = SearchConnection(url=es5.url).engine()
    expected = set(source_docs(es5))
    seen: list[str] = []
    for shard in (0, 1):
        item = WorkItem(id=f"{INDEX}/{shard}/0", index=INDEX, target="t", shard=shard,
                        seq_from=0, seq_to=OPEN_END, checkpoint="")
        hits, checkpoint = UidCursor(engine, frozenset({INDEX})).read(item, "", 7)
        first = [h.id for h in hits]
        hits, checkpoint = UidCursor(engine, frozenset({INDEX})).read(item, checkpoint, 7)
        first += [h.id for h in hits]
        item.checkpoint = checkpoint
        stored = item.source("leased", "h", 0)
        assert stored["cursor"] == first[-1] and stored["checkpoint"] == -1
        resumed = WorkItem.from_hit({"_id": item.id, "_source": stored, "_seq_no": 0,
                                     "_primary_term": 1})
        assert resumed.checkpoint == first[-1]
        rest: list[str] = []
        reader = UidCursor(engine, frozenset({INDEX}))  # a new process: nothing cached
        checkpoint = resumed.checkpoint
        while True:
            hits, checkpoint = reader.read(resumed, checkpoint, 5)
            if not hits:
                break
            rest += [h.id for h in hits]
        assert len(first) == 14 and not set(first) & set(rest)
        assert first + rest == sorted(first + rest)  # _uid order, each once
        seen += first + rest
    assert len(seen) == len(set(seen)) == POSTS + COMMENTS
    assert set(seen) == expected


def test_es5_multi_type_index_copies_to_opensearch_with_transforms(
        kube: KubeAPIServer, operator: OperatorProcess, es5: SearchNode,
        opensearch: SearchNode, namespace: str, matrix_case: Callable[..., None]) -> None:
    matrix_case("copy", es5, opensearch)
    prefix = f"{namespace}-"
    target = prefix + INDEX
    kube.apply(namespace, *clusters(es5.url, opensearch.url),
               backfill(indices=[INDEX], targetNaming={"prefix": prefix}, workers=2,
                        batch={"maxDocs": 9}, verify={"counts": True, "sampleSize": 20},
                        metadata={"multiTypeMappings": "Merge",
                                  "allowlist": {"legacyTemplates": [TEMPLATE]}}))
    obj = kube.wait_for("backfill", namespace, "copy",
                        phase_in("Completed", "Failed", "CompletedWithErrors"), timeout=240)
    status = obj["status"]
    assert status["phase"] == "Completed", status
    assert condition(obj, "Verified")["status"] == "True"
    # Counts and content by the test's own reading of both sides: every document of
    # both types, the colliding _id twice, at type#id with its routing.
    source = source_docs(es5)
    assert len(source) == POSTS + COMMENTS
    assert count(opensearch, target) == POSTS + COMMENTS
    got = opensearch.request("POST", f"/{target}/_search", {"size": 1000})
    copied = {h["_id"]: h for h in got["hits"]["hits"]}  # type: ignore[index]
    assert set(copied) == set(source)
    for uid, hit in source.items():
        assert copied[uid]["_source"] == hit["_source"]
        assert copied[uid].get("_routing") == hit.get("_routing")
    assert copied["post#1"]["_source"]["title"] == "post number 1"
    assert copied["comment#1"]["_source"]["title"] == "comment 1"
    # The target mapping, field by field, as the transforms promise.
    mapping = opensearch.request("GET", f"/{target}/_mapping")[target]["mappings"]  # type: ignore[index]
    props = mapping["properties"]
    assert props["title"] == {"type": "text"}
    assert props["tag"] == {"type": "keyword"}
    assert props["created"] == {"type": "date", "format": "date_optional_time||yyyy/MM/dd"}
    assert "_all" not in mapping and "post" not in mapping and "comment" not in mapping
    # yyyy/MM/dd parses as the Joda YYYY/MM/dd did: a range finds the posts of March.
    march = opensearch.request("POST", f"/{target}/_count", {"query": {"range": {
        "created": {"gte": "2017/03/01", "lte": "2017/03/31"}}}})
    assert march["count"] == POSTS  # type: ignore[index]
    # A legacy template keeps `string` as written: it arrives as text / keyword.
    template = opensearch.request("GET", f"/_template/{TEMPLATE}")[TEMPLATE]  # type: ignore[index]
    assert template["mappings"]["properties"] == {"msg": {"type": "text"},
                                                  "host": {"type": "keyword"}}
    # status.metadata names every transform.
    items = {(i["kind"], i["name"]): i for i in status["metadata"]["items"]}
    index_reason = items[("Index", INDEX)]["reason"]
    for change in ("_all removed", "include_in_all removed: tag, title",
                   "date format dateOptionalTime||YYYY/MM/dd → "
                   "date_optional_time||yyyy/MM/dd: created"):
        assert change in index_reason, index_reason
    assert "comment, post made typeless" in index_reason
    template_reason = items[("LegacyTemplate", TEMPLATE)]["reason"]
    assert "string → text: msg" in template_reason
    assert "string → keyword: host" in template_reason
