"""Backfill over odd data, Elasticsearch 7.10 → OpenSearch 2.19 (method copy): names and
ids that need quoting, an id of the longest length, an empty index, a parent/join
pair, routed documents, one document of 50 MB, an alias as the selector, an index
whose ``_source`` is disabled, and a document the target refuses for its size."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_backfill import backfill, clusters, condition, count, phase_in

from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

DONE = ("Completed", "CompletedWithErrors", "Failed")
# Ids that break a URL unless quoted (path separators, a query, a fragment, escapes),
# unicode, and one of 512 bytes (the engines' limit), itself unicode (2 bytes a letter).
ODD_IDS = ["ünï/cödé", "100%", "%2F%zz", "a/b/c", "what?x=1", "hash#tag", "sp ace",
           "日本語", "é" * 256]
BIG_BYTES = 50 * 1024 * 1024
# The private target's request limit, and a document above it.
TARGET_LIMIT, OVER_LIMIT = "1mb", 2 * 1024 * 1024
# No template of the shared nodes travels: only what the selected indices carry.
NO_TEMPLATES = {"allowlist": {"legacyTemplates": [], "componentTemplates": [],
                              "indexTemplates": []}}


def q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def bulk(node: SearchNode, index: str, docs: list[tuple[str, str | None, dict[str, Any]]]
         ) -> None:
    """(id, routing, source) documents, indexed and refreshed."""
    lines = []
    for doc_id, routing, source in docs:
        action: dict[str, Any] = {"_index": index, "_id": doc_id}
        if routing is not None:
            action["routing"] = routing
        lines += [json.dumps({"index": action}), json.dumps(source)]
    result = node.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode())
    assert result["errors"] is False, result  # type: ignore[index]


def create(node: SearchNode, index: str, shards: int = 1, **mappings: Any) -> None:
    node.request("PUT", f"/{q(index)}", {
        "settings": {"number_of_shards": shards, "number_of_replicas": 0},
        "mappings": mappings})


def documents(node: SearchNode, index: str) -> dict[str, tuple[str | None, Any]]:
    """Every document of a small index: id → (routing, _source), as the node says."""
    node.request("POST", f"/{q(index)}/_refresh")
    got = node.request("POST", f"/{q(index)}/_search", {"size": 100})
    return {h["_id"]: (h.get("_routing"), h["_source"])
            for h in got["hits"]["hits"]}  # type: ignore[index]


def source_digest(node: SearchNode, index: str, doc_id: str) -> tuple[int, str]:
    """(length, sha256) of a document's _source as read back from a node: the test's
    own reading, not Ferry's hash."""
    text = json.dumps(node.request("GET", f"/{q(index)}/_source/{q(doc_id)}", timeout=300),
                      sort_keys=True, ensure_ascii=False).encode()
    return len(text), hashlib.sha256(text).hexdigest()


@pytest.fixture
def tag(kube: KubeAPIServer, elasticsearch: SearchNode, opensearch: SearchNode,
        namespace: str) -> Iterator[str]:
    """A name part of this test's own; its indices (one of 50 MB, one that no copy
    accepts) leave the shared nodes when it ends, so no later selector meets them."""
    tag = f"odd-{uuid.uuid4().hex[:6]}"
    yield tag
    kube.kubectl("delete", "backfills.ferry.dev", "--all", "-n", namespace, "--wait=true",
                 "--timeout=120s", check=False)
    elasticsearch.request("DELETE", f"/{tag}-*")
    opensearch.request("DELETE", f"/{namespace}-{tag}-*")


def test_odd_names_ids_routing_join_alias_empty_and_a_50mb_document(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str, tag: str) -> None:
    es = elasticsearch
    names = {"odd": f"{tag}-café-日本-100%", "routed": f"{tag}-routed",
             "empty": f"{tag}-empty", "join": f"{tag}-join",
             "part1": f"{tag}-part1", "part2": f"{tag}-part2",
             "big": f"{tag}-big", "nosrc": f"{tag}-nosrc"}
    alias = f"{tag}-all"
    create(es, names["odd"])
    bulk(es, names["odd"], [(i, None, {"id": i, "n": n}) for n, i in enumerate(ODD_IDS)])
    create(es, names["routed"], shards=2)
    bulk(es, names["routed"], [(f"r{n}", f"user-{n % 4}", {"n": n}) for n in range(12)])
    create(es, names["empty"])
    create(es, names["join"], shards=2, properties={"rel": {
        "type": "join", "relations": {"question": "answer"}}})
    bulk(es, names["join"], [("q1", None, {"rel": "question", "t": "why?"}),
                             ("a1", "q1", {"rel": {"name": "answer", "parent": "q1"}})])
    for part, n in (("part1", 3), ("part2", 4)):
        create(es, names[part])
        bulk(es, names[part], [(f"{part}-{i}", None, {"i": i}) for i in range(n)])
    es.request("POST", "/_aliases", {"actions": [
        {"add": {"index": names["part1"], "alias": alias}},
        {"add": {"index": names["part2"], "alias": alias}}]})
    # 50 MB in one field that is kept in _source only (nothing to index).
    create(es, names["big"], properties={"blob": {"type": "object", "enabled": False}})
    pattern = "".join(chr(0x41 + i % 26) for i in range(1000))
    big = json.dumps({"blob": pattern * (BIG_BYTES // len(pattern) + 1), "tail": "é"})
    es.request("PUT", f"/{q(names['big'])}/_doc/huge?refresh=true", big.encode(), timeout=300)
    create(es, names["nosrc"], _source={"enabled": False})
    bulk(es, names["nosrc"], [("x", None, {"a": 1})])

    prefix = f"{namespace}-"
    selected = [names[k] for k in ("odd", "routed", "empty", "join", "big")] + [alias]
    kube.apply(namespace, *clusters(es.url, opensearch.url),
               backfill(indices=selected, targetNaming={"prefix": prefix},
                        metadata=NO_TEMPLATES, verify={"counts": True, "sampleSize": 20}),
               backfill("nosrc", indices=[names["nosrc"]], targetNaming={"prefix": prefix},
                        metadata=NO_TEMPLATES))

    # _source disabled: reported Incompatible, and nothing is copied, not even empty
    # documents or the index.
    obj = kube.wait_for("backfill", namespace, "nosrc", phase_in(*DONE), timeout=180)
    assert obj["status"]["phase"] == "Failed"
    assert condition(obj, "Failed")["reason"] == "IncompatibleIndices"
    item, = [i for i in obj["status"]["metadata"]["items"] if i["kind"] == "Index"]
    assert (item["name"], item["action"]) == (names["nosrc"], "Incompatible")
    assert "_source is disabled" in item["reason"]
    with pytest.raises(urllib.error.HTTPError, match="404"):
        opensearch.request("HEAD", f"/{q(prefix + names['nosrc'])}")

    obj = kube.wait_for("backfill", namespace, "copy", phase_in(*DONE), timeout=300)
    status = obj["status"]
    assert status["phase"] == "Completed", status
    # The alias selected the two indices behind it, each copied under its own name.
    copied = {k: names[k] for k in ("odd", "routed", "empty", "join", "part1", "part2", "big")}
    expected = {"odd": len(ODD_IDS), "routed": 12, "empty": 0, "join": 2, "part1": 3,
                "part2": 4, "big": 1}
    assert {r["name"]: r["docsTotal"] for r in status["indices"]} == {
        copied[k]: n for k, n in expected.items()}
    assert status["progress"]["docsMigrated"] == sum(expected.values())
    assert status["progress"]["docsFailed"] == 0
    assert condition(obj, "Verified")["status"] == "True", condition(obj, "Verified")
    assert all(r["verified"] for r in status["indices"])

    for key in ("odd", "routed", "join", "part1", "part2"):
        assert documents(opensearch, prefix + copied[key]) == documents(es, copied[key]), key
    assert set(documents(opensearch, prefix + names["odd"])) == set(ODD_IDS)
    assert len(ODD_IDS[-1].encode()) == 512
    for doc_id in ODD_IDS:  # each one reachable by its own (quoted) id
        got = opensearch.request("GET", f"/{q(prefix + names['odd'])}/_doc/{q(doc_id)}")
        assert got["_source"]["id"] == doc_id  # type: ignore[index]
    routed = documents(opensearch, prefix + names["routed"])
    assert {r for r, _ in routed.values()} == {f"user-{n}" for n in range(4)}

    # The empty index exists on the target, empty.
    assert count(opensearch, prefix + names["empty"]) == 0
    # The child is routed to its parent and still joins it.
    join = prefix + names["join"]
    assert documents(opensearch, join)["a1"][0] == "q1"
    parents = opensearch.request("POST", f"/{q(join)}/_search", {"query": {
        "has_child": {"type": "answer", "query": {"match_all": {}}}}})
    assert [h["_id"] for h in parents["hits"]["hits"]] == ["q1"]  # type: ignore[index]
    # The alias is recreated on the target over the copies of its indices.
    aliased = opensearch.request("GET", f"/_alias/{q(alias)}")
    assert set(aliased) == {prefix + names["part1"], prefix + names["part2"]}  # type: ignore[arg-type]
    # The 50 MB document arrived whole: both sides read back and hashed by the test.
    size, digest = source_digest(es, names["big"], "huge")
    assert size > BIG_BYTES
    assert source_digest(opensearch, prefix + names["big"], "huge") == (size, digest)


def test_a_document_above_the_targets_request_limit_fails_alone(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        private_node: Callable[..., SearchNode], namespace: str, tag: str) -> None:
    """The target answers HTTP 413 to a body above its http.max_content_length: the
    bulk is halved down to the one document that is too large, which is listed as a
    failure (id and reason, no content); every other document is copied."""
    target = private_node("opensearch", "2.19.6",
                          settings={"http.max_content_length": TARGET_LIMIT})
    index, marker = f"{tag}-sized", "content-" + uuid.uuid4().hex
    create(elasticsearch, index, properties={"blob": {"type": "object", "enabled": False}})
    docs = [(f"d{n}", None, {"n": n}) for n in range(30)]
    docs.insert(17, ("too-big", None, {"blob": marker * (OVER_LIMIT // len(marker))}))
    bulk(elasticsearch, index, docs)
    kube.apply(namespace, *clusters(elasticsearch.url, target.url),
               backfill(indices=[index], metadata={"mode": "Skip"}, maxFailedDocuments=5))
    # (Before the fix the bulk's 413 failed the item, claimed again forever.)
    obj = kube.wait_for("backfill", namespace, "copy", phase_in(*DONE), timeout=240)
    status = obj["status"]
    assert status["phase"] == "CompletedWithErrors", status
    assert status["progress"]["docsMigrated"] == 30
    assert status["progress"]["docsFailed"] == 1
    failure, = status["failures"]
    assert (failure["index"], failure["id"]) == (index, "too-big")
    assert "document too large for the target (HTTP 413)" in failure["reason"], failure
    assert marker not in json.dumps(status)
    assert count(target, index) == 30
    assert "too-big" not in documents(target, index)
    assert condition(obj, "Verified")["status"] == "False"
    assert status["workItems"]["completed"] == status["workItems"]["total"]
