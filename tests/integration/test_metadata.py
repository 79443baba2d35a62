"""Metadata migration and the restore method, end to end: the operator (`ferry run`)
against the real API server, a real Elasticsearch 7.10 source and a real OpenSearch 2.x
target. Every name carries a per-test tag, so tests never see each other's templates
on the shared nodes."""

from __future__ import annotations

import json
import time
import urllib.error
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed import datagen
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

FOLDED = {"analyzer": {"folded": {"type": "custom", "tokenizer": "standard",
                                  "filter": ["lowercase", "asciifolding"]}}}
# What an engine sets on an index itself, or what differs by design between the sides.
ENGINE_SETTINGS = ("index.uuid", "index.creation_date", "index.version.",
                   "index.provided_name", "index.replication.type", "index.history.uuid")


def cluster(name: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Cluster", "metadata": {"name": name},
            "spec": {"endpoint": endpoint, **spec}}


def backfill(name: str, source_ref: str = "source", target_ref: str = "target", **spec: Any
             ) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Backfill", "metadata": {"name": name},
            "spec": {"sourceRef": {"name": source_ref}, "targetRef": {"name": target_ref},
                     **spec}}


def phase_in(*phases: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: obj["status"]["phase"] in phases


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def get(node: SearchNode, path: str) -> Any:
    try:
        return node.request("GET", path)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def index_metadata(node: SearchNode, name: str, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """An index's settings, mappings and aliases, without what the engine owns and
    without Ferry's own mark in _meta."""
    got = node.request("GET", f"/{name}")[name]  # type: ignore[index]
    settings = {k: v for k, v in flat(got["settings"]).items()
                if not any(k == p or k.startswith(p) for p in (*ENGINE_SETTINGS, *drop))}
    mappings = dict(got["mappings"])
    meta = {k: v for k, v in (mappings.pop("_meta", None) or {}).items()
            if k != "ferry.dev/backfill"}
    if meta:
        mappings["_meta"] = meta
    return {"settings": settings, "mappings": mappings, "aliases": got["aliases"]}


def templates(node: SearchNode, tag: str) -> dict[str, Any]:
    """Every template of the tag on a node, by kind and name, as the node returns it."""
    legacy = get(node, f"/_template/{tag}-*") or {}
    component = get(node, f"/_component_template/{tag}-*") or {}
    composable = get(node, f"/_index_template/{tag}-*") or {}
    return {
        "legacy": legacy,
        "component": {t["name"]: t["component_template"]
                      for t in component.get("component_templates", [])},
        "composable": {t["name"]: t["index_template"]
                       for t in composable.get("index_templates", [])},
    }


def target_state(node: SearchNode, tag: str) -> dict[str, Any]:
    """Everything of the tag on the target: indices (with uuids), templates, aliases."""
    rows = node.request("GET", "/_cat/indices?format=json&h=index,uuid&expand_wildcards=all")
    return {"indices": sorted((r["index"], r["uuid"]) for r in rows  # type: ignore[union-attr]
                              if tag in r["index"] or r["index"].startswith(".ferry")),
            "templates": templates(node, tag),
            "aliases": {k: v for k, v in (get(node, "/_alias") or {}).items() if tag in k}}


def report_actions(obj: dict[str, Any], tag: str) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """(kind, name, target) → (action, removed settings…) for the tag's items; Evaluate's
    WouldCreate reads as Created, so the two modes' reports compare directly."""
    out = {}
    for item in obj["status"]["metadata"]["items"]:
        if tag not in item["name"]:
            continue
        action = "Created" if item["action"] == "WouldCreate" else item["action"]
        out[(item["kind"], item["name"], item.get("target", ""))] = (
            action, *item.get("removedSettings", []))
    return out


def bulk(node: SearchNode, index: str, docs: list[dict[str, Any]], type_: str = "_doc",
         routing: str | None = None) -> None:
    lines = ""
    for n, doc in enumerate(docs):
        action: dict[str, Any] = {"_index": index, "_id": str(n)}
        if type_ != "_doc":
            action["_type"] = type_
        if routing:
            action["routing"] = routing
        lines += json.dumps({"index": action}) + "\n" + json.dumps(doc) + "\n"
    result = node.request("POST", "/_bulk?refresh=true", lines.encode())
    assert not result["errors"], result  # type: ignore[index]


def seed_source(es: SearchNode, tag: str) -> dict[str, int]:
    """Every kind of metadata a migration must carry, on Elasticsearch 7.10."""
    es.request("PUT", f"/_template/{tag}-legacy", {
        "index_patterns": [f"{tag}-logs-*"], "order": 3, "version": 7,
        "settings": {"number_of_shards": 2, "number_of_replicas": 0, "analysis": FOLDED},
        "mappings": {"properties": {"msg": {"type": "text", "analyzer": "folded"}}},
        "aliases": {f"{tag}-logs-all": {}}})
    es.request("PUT", f"/_component_template/{tag}-base", {
        "template": {"settings": {"number_of_replicas": 0},
                     "mappings": {"properties": {"@timestamp": {"type": "date"}}}},
        "version": 2, "_meta": {"owner": "search-team"}})
    es.request("PUT", f"/_index_template/{tag}-app", {
        "index_patterns": [f"{tag}-app-*"], "composed_of": [f"{tag}-base"], "priority": 50,
        "template": {"mappings": {"properties": {"svc": {"type": "keyword"}}},
                     "aliases": {f"{tag}-app-all": {}}},
        "_meta": {"ticket": "MIG-1"}})
    es.request("PUT", f"/{tag}-logs-1", {})
    es.request("PUT", f"/{tag}-app-1", {})
    # A typed index as a 7.x cluster may still hold one: created with include_type_name.
    es.request("PUT", f"/{tag}-typed?include_type_name=true", {
        "settings": {"number_of_replicas": 0, "analysis": FOLDED},
        "mappings": {"event": {"properties": {"title": {"type": "text", "analyzer": "folded"},
                                              "at": {"type": "date"}}}}})
    es.request("PUT", f"/{tag}-plain", {
        "settings": {"number_of_shards": 3, "number_of_replicas": 0, "analysis": FOLDED},
        "mappings": {"properties": {"user": {"type": "keyword"},
                                    "note": {"type": "text", "analyzer": "folded"}}}})
    es.request("POST", "/_aliases", {"actions": [{"add": {
        "index": f"{tag}-plain", "alias": f"{tag}-kim", "filter": {"term": {"user": "kim"}},
        "routing": "kim", "is_write_index": True}}]})
    # Elasticsearch 7 still accepts soft deletes turned off; OpenSearch 2 refuses it.
    es.request("PUT", f"/{tag}-softdel", {"settings": {"number_of_replicas": 0,
                                                       "index.soft_deletes.enabled": False}})
    counts = {f"{tag}-logs-1": 40, f"{tag}-app-1": 30, f"{tag}-typed": 25,
              f"{tag}-plain": 20, f"{tag}-softdel": 10}
    bulk(es, f"{tag}-logs-1", [{"msg": f"Crème brûlée {n}"} for n in range(40)])
    bulk(es, f"{tag}-app-1", [{"svc": "api", "@timestamp": "2026-01-01"}] * 30)
    bulk(es, f"{tag}-typed", [{"title": f"Café {n}", "at": "2026-01-02"} for n in range(25)],
         type_="event")
    bulk(es, f"{tag}-plain", [{"user": "kim", "note": "Naïve"}] * 20, routing="kim")
    bulk(es, f"{tag}-softdel", [{"n": n} for n in range(10)])
    return counts


def test_evaluate_then_create_then_again(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    tag = f"mt{uuid.uuid4().hex[:6]}"
    counts = seed_source(elasticsearch, tag)
    mine = f"regex:{tag}-.*"
    spec = {"indices": [f"{tag}-*"],
            "metadata": {"mode": "Evaluate", "allowlist": {
                "legacyTemplates": [mine], "componentTemplates": [mine],
                "indexTemplates": [mine]}}}
    before = target_state(opensearch, tag)
    kube.apply(namespace, cluster("source", elasticsearch.url, readOnly=True),
               cluster("target", opensearch.url), backfill("migrate", **spec))

    # Evaluate: a report, phase Evaluated, and nothing written to the target.
    obj = kube.wait_for("backfill", namespace, "migrate", phase_in("Evaluated", "Failed"),
                        timeout=120)
    assert obj["status"]["phase"] == "Evaluated", obj["status"]
    assert "nothing was written" in obj["status"]["message"]
    assert condition(obj, "Progressing")["reason"] == "Evaluated"
    time.sleep(1)
    assert target_state(opensearch, tag) == before
    assert "coordinationIndex" not in obj["status"]
    evaluated = report_actions(obj, tag)
    tpl = [("LegacyTemplate", f"{tag}-legacy", ""), ("ComponentTemplate", f"{tag}-base", ""),
           ("IndexTemplate", f"{tag}-app", "")]
    indices = [("Index", name, name) for name in counts]
    aliases = [("Alias", f"{tag}-logs-all", f"{tag}-logs-1"),
               ("Alias", f"{tag}-app-all", f"{tag}-app-1"),
               ("Alias", f"{tag}-kim", f"{tag}-plain")]
    assert set(evaluated) == {*tpl, *indices, *aliases}
    assert evaluated[("Index", f"{tag}-softdel", f"{tag}-softdel")] == (
        "Created", "index.soft_deletes.enabled")
    assert {v for k, v in evaluated.items() if k[1] != f"{tag}-softdel"} == {("Created",)}
    assert obj["status"]["metadata"]["mode"] == "Evaluate"
    assert obj["status"]["metadata"]["counts"]["created"] == 0

    # Create: the same spec in mode Create continues from Evaluated and does what
    # Evaluate said it would.
    kube.kubectl("patch", "backfill", "migrate", "-n", namespace, "--type=merge",
                 "-p", '{"spec":{"metadata":{"mode":"Create"}}}')
    obj = kube.wait_for("backfill", namespace, "migrate", phase_in(
        "Completed", "CompletedWithErrors", "Failed"), timeout=180)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    assert condition(obj, "Verified")["status"] == "True"
    assert obj["status"]["progress"]["docsMigrated"] == sum(counts.values())
    assert report_actions(obj, tag) == evaluated
    softdel = next(i for i in obj["status"]["metadata"]["items"]
                   if i["name"] == f"{tag}-softdel")
    assert "soft-deletes disabled is no longer supported" in softdel["reason"]
    reasons = {e["reason"] for e in kube.events(namespace, "migrate")}
    assert {"Evaluated", "MetadataMigrated", "Planned", "Completed"} <= reasons

    # The target has the same metadata as the source (GET both sides, normalised).
    assert templates(opensearch, tag) == templates(elasticsearch, tag)
    for name in counts:
        drop = ("index.soft_deletes.enabled",) if name.endswith("softdel") else ()
        assert index_metadata(opensearch, name, drop) == index_metadata(
            elasticsearch, name, drop), name
    analyzed = opensearch.request("POST", f"/{tag}-typed/_analyze", {
        "analyzer": "folded", "text": "Crème Brûlée"})
    assert [t["token"] for t in analyzed["tokens"]] == ["creme", "brulee"]  # type: ignore[index]
    kim = opensearch.request("POST", f"/{tag}-kim/_count")
    assert kim["count"] == 20  # type: ignore[index]
    assert opensearch.request("GET", f"/{tag}-typed/_doc/3")["_source"]["title"] == "Café 3"  # type: ignore[index]

    # Again: a second Backfill of the same spec finds everything there and changes nothing.
    after_first = target_state(opensearch, tag)
    metadata_first = {name: index_metadata(opensearch, name) for name in counts}
    kube.apply(namespace, backfill("again", **{**spec, "onConflict": "skip",
                                               "metadata": {**spec["metadata"],
                                                            "mode": "Create"}}))
    obj = kube.wait_for("backfill", namespace, "again", phase_in(
        "Completed", "CompletedWithErrors", "Failed"), timeout=180)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    again = report_actions(obj, tag)
    assert set(again) == set(evaluated)
    assert set(again.values()) == {("AlreadyExists",)}
    state = target_state(opensearch, tag)
    state["indices"] = [i for i in state["indices"] if not i[0].startswith(".ferry")]
    after_first["indices"] = [i for i in after_first["indices"]
                              if not i[0].startswith(".ferry")]
    assert state == after_first
    assert {name: index_metadata(opensearch, name) for name in counts} == metadata_first


def test_allowlists_select_exactly_the_named_items(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str) -> None:
    tag = f"al{uuid.uuid4().hex[:6]}"
    es = elasticsearch
    for name in (f"{tag}-t1", f"{tag}-t2", f".{tag}-hidden"):
        es.request("PUT", f"/_template/{name}", {"index_patterns": [f"{name}-x-*"]})
    for name in (f"{tag}-c1", f"{tag}-c2"):
        es.request("PUT", f"/_component_template/{name}", {"template": {"mappings": {
            "properties": {name.replace("-", "_"): {"type": "keyword"}}}}})
    es.request("PUT", f"/_index_template/{tag}-i1", {"index_patterns": [f"{tag}-i1-x-*"],
                                                    "composed_of": [f"{tag}-c2"]})
    es.request("PUT", f"/_index_template/{tag}-i2", {"index_patterns": [f"{tag}-i2-x-*"],
                                                    "priority": 3})
    es.request("PUT", f"/{tag}-idx", {"settings": {"number_of_replicas": 0}, "aliases": {
        f"{tag}-a1": {}, f"{tag}-a2": {"filter": {"term": {"n": 1}}}, f".{tag}-sys": {}}})
    bulk(es, f"{tag}-idx", [{"n": n} for n in range(5)])
    kube.apply(namespace, cluster("source", es.url, readOnly=True),
               cluster("target", opensearch.url),
               backfill("picky", indices=[f"{tag}-idx"], metadata={"allowlist": {
                   "legacyTemplates": [f"{tag}-t1"],
                   "componentTemplates": [f"regex:{tag}-c1"],
                   "indexTemplates": [f"{tag}-i1", f"{tag}-i2"],
                   "aliases": [f"{tag}-a2"]}}))
    obj = kube.wait_for("backfill", namespace, "picky", phase_in(
        "Completed", "CompletedWithErrors", "Failed"), timeout=120)
    assert obj["status"]["phase"] == "Completed", obj["status"]
    items = {(i["kind"], i["name"]): i for i in obj["status"]["metadata"]["items"]
             if tag in i["name"]}
    actions = {k: v["action"] for k, v in items.items()}
    assert actions == {
        ("LegacyTemplate", f"{tag}-t1"): "Created",
        ("LegacyTemplate", f"{tag}-t2"): "Skipped",
        ("LegacyTemplate", f".{tag}-hidden"): "Skipped",
        ("ComponentTemplate", f"{tag}-c1"): "Created",
        ("ComponentTemplate", f"{tag}-c2"): "Skipped",
        ("IndexTemplate", f"{tag}-i1"): "Incompatible",
        ("IndexTemplate", f"{tag}-i2"): "Created",
        ("Index", f"{tag}-idx"): "Created",
        ("Alias", f"{tag}-a1"): "Skipped",
        ("Alias", f"{tag}-a2"): "Created",
        ("Alias", f".{tag}-sys"): "Skipped",
    }
    assert "excluded by default" in items[("LegacyTemplate", f".{tag}-hidden")]["reason"]
    assert "excluded by default" in items[("Alias", f".{tag}-sys")]["reason"]
    assert items[("LegacyTemplate", f"{tag}-t2")]["reason"] == "not in the allowlist"
    assert f"{tag}-c2" in items[("IndexTemplate", f"{tag}-i1")]["reason"]
    on_target = templates(opensearch, tag)
    assert set(on_target["legacy"]) == {f"{tag}-t1"}
    assert get(opensearch, f"/_template/.{tag}-hidden") is None
    assert set(on_target["component"]) == {f"{tag}-c1"}
    assert set(on_target["composable"]) == {f"{tag}-i2"}
    assert set(opensearch.request("GET", f"/{tag}-idx/_alias")[f"{tag}-idx"]["aliases"]) == {  # type: ignore[index]
        f"{tag}-a2"}

    # An index whose _source is disabled cannot be copied: Evaluate says so, and Create
    # refuses before writing anything.
    es.request("PUT", f"/{tag}-nosrc", {"settings": {"number_of_replicas": 0},
                                        "mappings": {"_source": {"enabled": False}}})
    kube.apply(namespace, backfill("nosrc", indices=[f"{tag}-nosrc"],
                                   metadata={"mode": "Evaluate"}))
    obj = kube.wait_for("backfill", namespace, "nosrc", phase_in("Evaluated", "Failed"),
                        timeout=60)
    item = next(i for i in obj["status"]["metadata"]["items"] if i["kind"] == "Index")
    assert item["action"] == "Incompatible" and "_source is disabled" in item["reason"]
    kube.kubectl("patch", "backfill", "nosrc", "-n", namespace, "--type=merge",
                 "-p", '{"spec":{"metadata":{"mode":"Create"}}}')
    obj = kube.wait_for("backfill", namespace, "nosrc", phase_in("Failed"), timeout=60)
    assert condition(obj, "Failed")["reason"] == "IncompatibleIndices"
    assert "method restore" in obj["status"]["message"]
    assert get(opensearch, f"/{tag}-nosrc") is None


def snapshot(name: str, cluster_ref: str, repo: str, location: Path, indices: list[str],
             **repository: Any) -> dict[str, Any]:
    return {"apiVersion": "ferry.dev/v1alpha1", "kind": "Snapshot", "metadata": {"name": name},
            "spec": {"clusterRef": {"name": cluster_ref}, "indices": indices,
                     "repository": {"name": repo, "type": "fs",
                                    "fs": {"location": str(location)}, **repository}}}


def test_restore_an_elasticsearch_snapshot_into_opensearch(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str, shared_repo: Path,
        matrix_case: Callable[..., None]) -> None:
    matrix_case("restore", elasticsearch, opensearch)
    tag = f"rs{uuid.uuid4().hex[:6]}"
    counts = {f"{tag}-orders": datagen.load(elasticsearch, datagen.orders_index(
                  f"{tag}-orders", shards=2), datagen.order_docs(12_000)),
              f"{tag}-users": datagen.load(elasticsearch, datagen.users_index(f"{tag}-users"),
                                           datagen.user_docs(3_000))}
    elasticsearch.request("POST", "/_aliases", {"actions": [{"add": {
        "index": f"{tag}-users", "alias": f"{tag}-active",
        "filter": {"term": {"active": True}}}}]})
    repo = f"{tag}-repo"
    # The restore throttle (a repository setting the target registration keeps) makes
    # the recovery last long enough to be watched.
    kube.apply(namespace, cluster("source", elasticsearch.url, readOnly=True),
               cluster("target", opensearch.url),
               snapshot("before", "source", repo, shared_repo / tag, [f"{tag}-*"],
                        maxRestoreBytesPerSec="400kb"))
    snap = kube.wait_for("snapshot", namespace, "before", phase_in("Completed", "Failed"),
                         timeout=120)
    assert snap["status"]["phase"] == "Completed", snap["status"]
    assert snap["status"]["documents"] == sum(counts.values())

    prefix = f"{namespace}-"
    # Only this test's templates (there are none): other tests' stay off the target.
    mine = [f"regex:{tag}-.*"]
    kube.apply(namespace, backfill("restore", method="restore",
                                   source={"snapshotRef": {"name": "before"}},
                                   targetNaming={"prefix": prefix},
                                   metadata={"targetReplicas": 0, "allowlist": {
                                       "legacyTemplates": mine, "componentTemplates": mine,
                                       "indexTemplates": mine}}))
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        obj = kube.get("backfill", namespace, "restore") or {}
        status = obj.get("status") or {}
        if status.get("phase") == "Running" and status.get("progress"):
            seen.append(status["progress"])
        if status.get("phase") in ("Completed", "CompletedWithErrors", "Failed"):
            break
        time.sleep(0.5)
    assert status["phase"] == "Completed", status
    # Progress was observed on the way: the same block the copy method fills.
    assert any(0 < p["percent"] < 100 for p in seen), seen
    assert any(p.get("bytesMigrated", 0) > 0 for p in seen), seen
    assert condition(obj, "Verified")["status"] == "True"
    assert condition(obj, "Verified")["reason"] == "CountsMatch"
    assert "before" in condition(obj, "Verified")["message"]
    assert status["progress"]["docsMigrated"] == status["progress"]["docsTotal"] == \
        sum(counts.values())
    assert status["restore"]["shardsDone"] == status["restore"]["shardsTotal"] == 3
    assert {(r["target"], r["targetCount"], r["verified"]) for r in status["indices"]} == {
        (prefix + name, n, True) for name, n in counts.items()}
    for name, n in counts.items():
        opensearch.request("POST", f"/{prefix}{name}/_refresh")
        assert opensearch.request("GET", f"/{prefix}{name}/_count")["count"] == n  # type: ignore[index]
    # Aliases travel with the restored index; the repository is registered read-only.
    assert f"{tag}-active" in opensearch.request(
        "GET", f"/{prefix}{tag}-users/_alias")[f"{prefix}{tag}-users"]["aliases"]  # type: ignore[index]
    registered = opensearch.request("GET", f"/_snapshot/{repo}")[repo]  # type: ignore[index]
    assert registered["settings"]["readonly"] == "true"
    assert registered["settings"]["location"] == str(shared_repo / tag)
    reasons = {e["reason"] for e in kube.events(namespace, "restore")}
    assert {"RepositoryRegistered", "Planned", "Completed"} <= reasons


def test_impossible_version_pair_is_refused_naming_the_copy_method(
        kube: KubeAPIServer, operator: OperatorProcess, elasticsearch: SearchNode,
        opensearch: SearchNode, namespace: str, shared_repo: Path) -> None:
    tag = f"vp{uuid.uuid4().hex[:6]}"
    opensearch.request("PUT", f"/{tag}-os", {"settings": {"number_of_replicas": 0}})
    bulk(opensearch, f"{tag}-os", [{"n": n} for n in range(10)])
    repo = f"{tag}-repo"
    kube.apply(namespace, cluster("opensearch", opensearch.url),
               cluster("elasticsearch", elasticsearch.url),
               snapshot("os-snap", "opensearch", repo, shared_repo / tag, [f"{tag}-*"]))
    snap = kube.wait_for("snapshot", namespace, "os-snap", phase_in("Completed", "Failed"),
                         timeout=120)
    assert snap["status"]["phase"] == "Completed", snap["status"]
    # OpenSearch wrote it; Elasticsearch cannot read OpenSearch snapshots.
    kube.apply(namespace, backfill("back-to-es", "opensearch", "elasticsearch",
                                   method="restore", source={"snapshotRef": {"name": "os-snap"}}))
    obj = kube.wait_for("backfill", namespace, "back-to-es", phase_in("Failed", "Completed"),
                        timeout=60)
    assert obj["status"]["phase"] == "Failed"
    assert condition(obj, "Failed")["reason"] == "IncompatibleVersions"
    message = obj["status"]["message"]
    assert f"OpenSearch {opensearch.number}" in message
    assert f"Elasticsearch {elasticsearch.number}" in message
    assert "Use method copy" in message
    # Refused before anything was written: no repository registered on the target.
    assert get(elasticsearch, f"/_snapshot/{repo}") is None
