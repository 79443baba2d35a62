"""The version matrix, snapshots: on every source version (ES 5.6, 6.8, 7.10, 8.15 and
OpenSearch 1.3, 2.19) a Ferry Snapshot of a small data set loaded through the engine's
own REST API turns Completed and Verified, and a Backfill method copy reads its
documents straight from the snapshot files into the session OpenSearch 2.19 node (ES 6.8
also into OpenSearch 3.3). On ES 5.6 and 6.8, which have no snapshot metadata to carry
Ferry's owner tag, adoption and deletionPolicy Delete go by the uuid and start time the
resource recorded; on ES 8.15 and OpenSearch 1.3 they go by the owner tag.

Each source version is one module-scoped ``taken`` parameter, so pytest runs its tests
together and the pool starts each node once, in MATRIX order. The results of the copy
and snapshot cases go to the compatibility table (``matrix_case``, docs/compatibility.md).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_backfill_snapshot import DONE, WORDS, Docs, bulk, condition, fs_repo, obj, read_docs
from test_matrix_nodes import es8_access
from test_snapshot import snapshot_exists, wait_gone

from testbed.kube import KubeAPIServer
from testbed.matrix import MATRIX, NodePool
from testbed.operator import OperatorProcess
from testbed.search import SearchNode, release

pytestmark = pytest.mark.integration

COPY = "copy from snapshot files"
# Every source version but OpenSearch 3, the newest (it is a target here).
SOURCES = [(e, v) for e, v in MATRIX if (e, v.split(".")[0]) != ("opensearch", "3")]
# Snapshot metadata (the owner tag) exists from ES 7.3: these versions go without it.
UNTAGGED = [(e, v) for e, v in SOURCES if e == "elasticsearch" and release(v) < (7, 3)]
ES68 = [("elasticsearch", "6.8.23")]
# The layout of the data set: index suffix -> shards.
SHARDS = {"docs": 2, "empty": 1, "big": 1}


def label(engine: str, version: str) -> str:
    return f"{'es' if engine == 'elasticsearch' else 'os'}-{version}"


@dataclass
class Taken:
    """One source version's data set and the Ferry Snapshot of it."""

    engine: str
    version: str
    node: SearchNode
    namespace: str
    tag: str
    repo: str
    location: Path
    docs: Docs = field(default_factory=dict)  # index -> id -> (routing, source)
    shards: dict[str, int] = field(default_factory=dict)

    @property
    def indices(self) -> str:
        return f"smx{self.tag}-*"

    def index(self, suffix: str) -> str:
        return f"smx{self.tag}-{suffix}"


# -- the data set, through each version's REST API ------------------------------------


def type_name(node: SearchNode) -> str | None:
    """ES 5/6 indices need a mapping type in mappings and bulk actions (a custom name,
    as users had); ES 7+ and OpenSearch are typeless."""
    return "item" if node.engine == "elasticsearch" and node.major < 7 else None


def create_index(node: SearchNode, index: str, shards: int,
                 properties: dict[str, Any]) -> None:
    mapping: dict[str, Any] = {"properties": properties}
    kind = type_name(node)
    node.request("PUT", f"/{index}", {
        "settings": {"number_of_shards": shards, "number_of_replicas": 0},
        "mappings": {kind: mapping} if kind else mapping})


def action(node: SearchNode, op: str, index: str, doc_id: str,
           routing: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"_index": index, "_id": doc_id}
    if type_name(node):
        meta["_type"] = type_name(node)
    if routing is not None:
        meta["routing"] = routing
    return {op: meta}


def doc_id(i: int) -> str:
    return [f"doc-{i}", f"ünïcødé-{i}", f"日本語-{i}", f"emoji-😀-{i}"][i % 4]


def routing(i: int) -> str | None:
    return f"r{i % 3}" if i % 5 == 0 else None


def load(node: SearchNode, taken: Taken) -> None:
    """Routing, nested documents, unicode ids, an empty index, updates and deletes in
    later segments than what they replace, and ~200 KB of sources in one shard (above
    the stored-fields chunk of every Lucene version here). Nothing ES 8's bundled
    modules lack (no painless, join or analysis-common)."""
    docs, empty, big = (taken.index(s) for s in SHARDS)
    create_index(node, docs, SHARDS["docs"], {
        "title": {"type": "text"}, "tag": {"type": "keyword"}, "n": {"type": "long"},
        "comments": {"type": "nested", "properties": {"by": {"type": "keyword"},
                                                       "text": {"type": "text"}}}})
    create_index(node, empty, SHARDS["empty"], {"n": {"type": "long"}})
    create_index(node, big, SHARDS["big"], {"body": {"type": "text"},
                                            "n": {"type": "long"}})
    lines: list[Any] = []
    for i in range(40):
        source: dict[str, Any] = {"title": f"title {i} é", "tag": f"t{i % 7}", "n": i}
        if i % 3 == 0:
            source["comments"] = [{"by": "ann", "text": f"first on {i}"},
                                  {"by": "bob", "text": "second"}]
        lines += [action(node, "index", docs, doc_id(i), routing(i)), source]
    bulk(node, lines)
    rng = random.Random(11)
    for part in range(2):  # a segment each
        lines = []
        for i in range(part * 50, part * 50 + 50):
            lines += [action(node, "index", big, f"big-{i}"),
                      {"body": " ".join(rng.choice(WORDS) for _ in range(350)), "n": i}]
        bulk(node, lines)
        node.request("POST", f"/{big}/_flush")
    node.request("POST", f"/{docs}/_flush")
    lines = []
    for i in range(8):
        lines += [action(node, "index", docs, doc_id(i), routing(i)),
                  {"title": f"updated {i}", "tag": "new", "n": -i}]
    lines += [action(node, "delete", docs, doc_id(i), routing(i)) for i in range(20, 25)]
    lines += [action(node, "delete", big, "big-3"), action(node, "index", big, "big-4"),
              {"body": "replaced", "n": 4}]
    bulk(node, lines)
    node.request("POST", f"/{taken.indices}/_flush")


# -- one source version: node, data, Cluster, Snapshot --------------------------------


def snapshot_settled(o: dict[str, Any]) -> bool:
    """Settled: Failed, or ended and checked in the repository (the test then asserts
    which)."""
    verified = next((c for c in o["status"].get("conditions", [])
                     if c["type"] == "Verified"), None)
    return o["status"]["phase"] == "Failed" or (
        o["status"]["phase"] in ("Completed", "PartiallyFailed") and verified is not None)


def source_node(engine: str, version: str, search_nodes: NodePool, shared_repo: Path,
                workdir: Path) -> tuple[SearchNode, bool]:
    """(node, private). OpenSearch 2.19 as a source is a second node of its own: the
    pool's 2.19 is the session target, and source and target are never one node."""
    if (engine, version) == ("opensearch", "2.19"):
        return SearchNode(engine, version, workdir=workdir, repo_dirs=(shared_repo,)).start(), \
            True
    return search_nodes.get(engine, version), False


@pytest.fixture(scope="module")
def taken(request: pytest.FixtureRequest, kube: KubeAPIServer, operator: OperatorProcess,
          opensearch: SearchNode, search_nodes: NodePool, shared_repo: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Taken]:
    engine, version = request.param
    node, private = source_node(engine, version, search_nodes, shared_repo,
                                tmp_path_factory.mktemp(f"smx-{label(engine, version)}"))
    tag = uuid.uuid4().hex[:6]
    namespace = f"smx-{tag}"
    kube.kubectl("create", "namespace", namespace)
    out = Taken(engine, version, node, namespace, tag, f"smx-{tag}",
                shared_repo / f"smx-{label(engine, version)}-{tag}")
    try:
        load(node, out)
        out.docs = {out.index(s): read_docs(node, out.index(s)) for s in SHARDS}
        out.shards = {out.index(s): n for s, n in SHARDS.items()}
        extra = es8_access(namespace, node, kube) if node.secured else {}
        kube.apply(namespace, obj("Cluster", "source", endpoint=node.url, **extra),
                   obj("Cluster", "target", endpoint=opensearch.url),
                   obj("Snapshot", "snap", clusterRef={"name": "source"},
                       indices=[out.indices], repository=fs_repo(out.repo, out.location)))
        kube.wait_for("snapshot", namespace, "snap", snapshot_settled, timeout=180)
        yield out
    finally:
        kube.drop_namespace(namespace)
        delete_indices(opensearch, f"{namespace}-*")
        if private:
            node.stop()
        elif node.running:  # the pool may have stopped it for a target already
            delete_indices(node, out.indices)
            node.request("DELETE", f"/_snapshot/{out.repo}")
            # Kept running: the next tests in the run's order use the same node
            # (conftest NODE_ORDER); the pool stops it when room is needed.


def delete_indices(node: SearchNode, pattern: str) -> None:
    """By name: ES 8 refuses wildcard deletes (action.destructive_requires_name)."""
    rows = node.request("GET", f"/_cat/indices/{pattern}?format=json&h=index")
    names = [r["index"] for r in rows or []]  # type: ignore[union-attr]
    if names:
        node.request("DELETE", "/" + ",".join(names))


def engine_snapshots(node: SearchNode, repo: str) -> dict[str, dict[str, Any]]:
    """The repository's snapshot list as the engine gives it: name -> info."""
    listed = node.request("GET", f"/_snapshot/{repo}/_all")
    return {s["snapshot"]: s for s in listed["snapshots"]}  # type: ignore[index]


def timestamp(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ids(cases: list[tuple[str, str]]) -> list[str]:
    return [label(e, v) for e, v in cases]


def named_snapshot(taken: Taken, name: str, snap: str, policy: str) -> dict[str, Any]:
    """A Snapshot resource ``name`` of snapshot ``snap`` (the docs index) in the data
    set's repository."""
    return obj("Snapshot", name, clusterRef={"name": "source"}, snapshotName=snap,
               indices=[taken.index("docs")], deletionPolicy=policy,
               repository=fs_repo(taken.repo, taken.location))


# -- the tests, per source version (pytest groups them by ``taken``) ------------------


@pytest.mark.parametrize("taken", SOURCES, ids=ids(SOURCES), indirect=True)
def test_snapshot_completes_and_is_verified_on_each_source_version(
        kube: KubeAPIServer, taken: Taken,
        matrix_case: Callable[..., None]) -> None:
    matrix_case("snapshot (Completed + Verified)", taken.node)
    o = kube.get("snapshot", taken.namespace, "snap")
    assert o is not None
    status = o["status"]
    assert status["phase"] == "Completed", status
    verified = condition(o, "Verified")
    assert (verified["status"], verified["reason"]) == ("True", "FoundInRepository"), verified
    info = engine_snapshots(taken.node, taken.repo)["snap"]
    assert info["state"] == "SUCCESS"
    assert status["snapshotUuid"] == info["uuid"]
    assert status["engineVersion"] == info["version"]
    # ES 8 names a range of the versions whose index format it wrote: "8.15.0-8.15.5".
    assert info["version"].split("-")[-1] == taken.node.number
    assert status["startTime"] == timestamp(info["start_time_in_millis"])
    assert status["adopted"] is False
    shards = sum(taken.shards.values())
    assert info["shards"] == {"total": shards, "failed": 0, "successful": shards}
    progress = status["progress"]
    assert (progress["percent"], progress["shardsTotal"], progress["shardsDone"],
            progress["shardsFailed"]) == (100, shards, shards, 0)
    assert status["indicesTotal"] == len(info["indices"]) == 3
    rows = {r["name"]: r for r in status["indices"]}
    assert sorted(rows) == sorted(info["indices"]) == sorted(taken.docs)
    for index, docs in taken.docs.items():
        assert rows[index]["documents"] == len(docs), index
        assert rows[index]["shardsTotal"] == rows[index]["shardsDone"] == taken.shards[index]
    # The test's own reading: top-level live documents, deletes and old versions out.
    assert status["documents"] == sum(len(d) for d in taken.docs.values()) == 35 + 0 + 99


@pytest.mark.parametrize("taken", UNTAGGED, ids=ids(UNTAGGED), indirect=True)
def test_untagged_snapshots_are_adopted_and_deleted_by_uuid_and_start_time(
        kube: KubeAPIServer, operator: OperatorProcess,
        taken: Taken, matrix_case: Callable[..., None]) -> None:
    """No owner tag before ES 7.3: a restarted operator takes its own snapshot back by
    what its status recorded (uuid, start time); a re-created resource adopts it; a
    snapshot the test takes itself — another name of the same pattern, or the same name
    after the resource's own one was deleted — is never deleted by deletionPolicy
    Delete; the resource's own snapshot is."""
    matrix_case("snapshot adoption and deletionPolicy Delete", taken.node)
    ns, node, repo = taken.namespace, taken.node, taken.repo

    def snapshot(name: str, snap: str, policy: str = "Delete") -> dict[str, Any]:
        return named_snapshot(taken, name, snap, policy)

    def take(snap: str) -> dict[str, Any]:
        body = {"indices": taken.index("docs"), "include_global_state": False}
        node.request("PUT", f"/_snapshot/{repo}/{snap}?wait_for_completion=true", body)
        return engine_snapshots(node, repo)[snap]

    kube.apply(ns, snapshot("own", "nightly-1"), snapshot("again", "nightly-3"),
               snapshot("kept", "nightly-4", "Retain"))
    own = kube.wait_for("snapshot", ns, "own", snapshot_settled, timeout=90)["status"]
    kube.wait_for("snapshot", ns, "again", snapshot_settled, timeout=90)
    kept = kube.wait_for("snapshot", ns, "kept", snapshot_settled, timeout=90)["status"]
    # Re-created, a resource has no record of what it started, and with no owner tag it
    # cannot tell its old snapshot from a foreign one: it adopts it (never a second
    # snapshot), and so deletionPolicy Delete leaves it.
    kube.kubectl("delete", "snapshot", "kept", "-n", ns, "--wait=false")
    wait_gone(kube, "snapshot", ns, "kept", timeout=90)
    kube.apply(ns, snapshot("kept", "nightly-4"))
    again_kept = kube.wait_for("snapshot", ns, "kept", snapshot_settled, timeout=90)["status"]
    assert (again_kept["adopted"], again_kept["snapshotUuid"]) == (True, kept["snapshotUuid"])
    assert own["phase"] == "Completed" and own["adopted"] is False
    mine = engine_snapshots(node, repo)["nightly-1"]
    assert (own["snapshotUuid"], own["startTime"]) == (
        mine["uuid"], timestamp(mine["start_time_in_millis"]))
    foreign = take("nightly-2")

    operator.stop()
    operator.start()
    # Created after the restart: the restarted operator lists the existing Snapshots
    # (and runs their first pass) before it sees this one.
    kube.apply(ns, snapshot("adopter", "nightly-2"))
    adopter = kube.wait_for("snapshot", ns, "adopter", snapshot_settled, timeout=90)
    assert adopter["status"]["phase"] == "Completed"
    assert adopter["status"]["adopted"] is True
    assert adopter["status"]["snapshotUuid"] == foreign["uuid"]
    assert "documents" not in adopter["status"]
    after = kube.get("snapshot", ns, "own")
    assert after is not None and after["status"] == own  # taken back, not looked at anew
    starts = [e["reason"] for e in kube.events(ns, "own")]
    assert starts.count("Started") == 1 and "Adopted" not in starts
    listed = engine_snapshots(node, repo)
    assert sorted(listed) == ["nightly-1", "nightly-2", "nightly-3", "nightly-4", "snap"]
    assert listed["nightly-1"]["uuid"] == mine["uuid"]  # not started twice

    # "again"'s own snapshot is deleted behind its back and one of the same name taken.
    node.request("DELETE", f"/_snapshot/{repo}/nightly-3")
    replaced = take("nightly-3")
    for name in ("adopter", "again", "kept", "own"):
        kube.kubectl("delete", "snapshot", name, "-n", ns, "--wait=false")
        wait_gone(kube, "snapshot", ns, name, timeout=90)
    left = engine_snapshots(node, repo)
    assert sorted(left) == ["nightly-2", "nightly-3", "nightly-4", "snap"]
    assert not snapshot_exists(node, repo, "nightly-1")
    assert (left["nightly-2"]["uuid"], left["nightly-3"]["uuid"],
            left["nightly-4"]["uuid"]) == (foreign["uuid"], replaced["uuid"],
                                           kept["snapshotUuid"])
    assert "SnapshotDeleted" in [e["reason"] for e in kube.events(ns, "own")]
    for name in ("adopter", "again"):  # ("kept"'s first deletion was a Retain too)
        assert "Retained" in [e["reason"] for e in kube.events(ns, name)], name
    for snap in ("nightly-2", "nightly-3", "nightly-4"):
        node.request("DELETE", f"/_snapshot/{repo}/{snap}")


# The pool's versions whose snapshots carry Ferry's owner tag (ES 7.10 and OpenSearch
# 2.19, the session nodes, are proven by test_snapshot.py's tagged test).
TAGGED = [("elasticsearch", "8.15.5"), ("opensearch", "1.3.20")]


@pytest.mark.parametrize("taken", TAGGED, ids=ids(TAGGED), indirect=True)
def test_tagged_snapshots_are_adopted_and_deleted_by_owner_tag(
        kube: KubeAPIServer, taken: Taken, matrix_case: Callable[..., None]) -> None:
    """The owner tag in the snapshot's metadata decides: the resource that started a
    snapshot owns it, also when re-created after a Retain (adopted false: its own, not
    a foreign one as without the tag); a second resource naming it adopts it, and its
    deletionPolicy Delete leaves it; Delete on the owner removes it from the
    repository."""
    matrix_case("snapshot adoption and deletionPolicy Delete", taken.node)
    ns, node, repo = taken.namespace, taken.node, taken.repo
    kube.apply(ns, named_snapshot(taken, "own", "tagged-1", "Delete"),
               named_snapshot(taken, "kept", "tagged-2", "Retain"))
    own = kube.wait_for("snapshot", ns, "own", snapshot_settled, timeout=90)
    kept = kube.wait_for("snapshot", ns, "kept", snapshot_settled, timeout=90)["status"]
    assert own["status"]["phase"] == "Completed", own["status"]
    verified = condition(own, "Verified")
    assert (verified["status"], verified["reason"]) == ("True", "FoundInRepository"), verified
    assert own["status"]["adopted"] is False
    listed = engine_snapshots(node, repo)
    mine = listed["tagged-1"]
    assert (mine["state"], mine["metadata"]) == ("SUCCESS", {"ferry.dev/owner": f"{ns}/own"})
    assert (own["status"]["snapshotUuid"], own["status"]["startTime"]) == (
        mine["uuid"], timestamp(mine["start_time_in_millis"]))
    assert listed["tagged-2"]["metadata"] == {"ferry.dev/owner": f"{ns}/kept"}

    # Retain leaves the snapshot; the same manifest applied again knows it by its tag.
    kube.kubectl("delete", "snapshot", "kept", "-n", ns, "--wait=false")
    wait_gone(kube, "snapshot", ns, "kept", timeout=90)
    assert engine_snapshots(node, repo)["tagged-2"]["uuid"] == kept["snapshotUuid"]
    kube.apply(ns, named_snapshot(taken, "kept", "tagged-2", "Retain"))
    again = kube.wait_for("snapshot", ns, "kept", snapshot_settled, timeout=90)["status"]
    assert (again["phase"], again["adopted"], again["snapshotUuid"]) == (
        "Completed", False, kept["snapshotUuid"])

    # Another resource naming the owner's snapshot adopts it; its Delete leaves it.
    kube.apply(ns, named_snapshot(taken, "adopter", "tagged-1", "Delete"))
    adopter = kube.wait_for("snapshot", ns, "adopter", snapshot_settled, timeout=90)["status"]
    assert (adopter["phase"], adopter["adopted"], adopter["snapshotUuid"]) == (
        "Completed", True, mine["uuid"])
    assert "documents" not in adopter
    assert "Adopted" in [e["reason"] for e in kube.events(ns, "adopter")]
    kube.kubectl("delete", "snapshot", "adopter", "-n", ns, "--wait=false")
    wait_gone(kube, "snapshot", ns, "adopter", timeout=90)
    assert "Retained" in [e["reason"] for e in kube.events(ns, "adopter")]
    assert engine_snapshots(node, repo)["tagged-1"]["uuid"] == mine["uuid"]

    kube.kubectl("delete", "snapshot", "own", "-n", ns, "--wait=false")
    wait_gone(kube, "snapshot", ns, "own", timeout=90)
    assert "SnapshotDeleted" in [e["reason"] for e in kube.events(ns, "own")]
    assert not snapshot_exists(node, repo, "tagged-1")
    assert sorted(engine_snapshots(node, repo)) == ["snap", "tagged-2"]
    node.request("DELETE", f"/_snapshot/{repo}/tagged-2")


def copy_from(name: str, target: str, prefix: str) -> dict[str, Any]:
    """A Backfill without sourceRef: the documents come from snapshot "snap"'s files."""
    return obj("Backfill", name, targetRef={"name": target}, method="copy",
               source={"snapshotRef": {"name": "snap"}}, targetNaming={"prefix": prefix},
               metadata={"targetReplicas": 0}, verify={"counts": True, "sampleSize": 50})


def check_copy(kube: KubeAPIServer, taken: Taken, target: SearchNode, name: str,
               prefix: str) -> None:
    o = kube.wait_for("backfill", taken.namespace, name,
                      lambda o: o["status"]["phase"] in DONE, timeout=180)
    status = o["status"]
    assert status["phase"] == "Completed", json.dumps(
        {k: status.get(k) for k in ("message", "failures", "indices")}, ensure_ascii=False)
    assert condition(o, "Verified")["status"] == "True", condition(o, "Verified")
    # The oracle is the test's own reading of the source before the snapshot.
    docs = taken.docs[taken.index("docs")]
    assert len(docs) == 35 and doc_id(21) not in docs and doc_id(30) in docs
    assert docs["doc-0"] == ("r0", {"title": "updated 0", "tag": "new", "n": 0})
    big = taken.docs[taken.index("big")]
    assert len(big) == 99 and "big-3" not in big and big["big-4"][1]["body"] == "replaced"
    for index, expected in taken.docs.items():
        assert read_docs(target, prefix + index) == expected, index
    assert status["progress"]["docsMigrated"] == sum(len(d) for d in taken.docs.values())


@pytest.mark.parametrize("taken", SOURCES, ids=ids(SOURCES), indirect=True)
def test_copy_from_snapshot_files_into_opensearch_2_19(
        kube: KubeAPIServer, operator: OperatorProcess,
        opensearch: SearchNode, taken: Taken, matrix_case: Callable[..., None]) -> None:
    matrix_case(COPY, taken.node, opensearch)
    prefix = f"{taken.namespace}-"
    kube.apply(taken.namespace, copy_from("copy", "target", prefix))
    check_copy(kube, taken, opensearch, "copy", prefix)


@pytest.mark.parametrize("taken", ES68, ids=ids(ES68), indirect=True)
def test_es68_snapshot_files_into_opensearch_3(
        kube: KubeAPIServer, operator: OperatorProcess,
        search_nodes: NodePool, taken: Taken, matrix_case: Callable[..., None]) -> None:
    target = search_nodes.get("opensearch", "3")
    matrix_case(COPY, taken.node, target)
    prefix = f"{taken.namespace}-"
    kube.apply(taken.namespace, obj("Cluster", "target3", endpoint=target.url),
               copy_from("copy3", "target3", prefix))
    try:
        check_copy(kube, taken, target, "copy3", prefix)
    finally:
        delete_indices(target, f"{prefix}*")


@pytest.mark.parametrize("taken", SOURCES, ids=ids(SOURCES), indirect=True)
def test_live_copy_into_opensearch_2_19(
        kube: KubeAPIServer, operator: OperatorProcess,
        opensearch: SearchNode, taken: Taken, matrix_case: Callable[..., None]) -> None:
    """The same data read live from the running source (``_seq_no`` windows per shard;
    ``_uid`` order on ES 5), checked against the test's own reading as above."""
    matrix_case("copy", taken.node, opensearch)
    prefix = f"{taken.namespace}-live-"
    kube.apply(taken.namespace, obj(
        "Backfill", "live", sourceRef={"name": "source"}, targetRef={"name": "target"},
        method="copy", indices=[taken.indices], targetNaming={"prefix": prefix},
        metadata={"targetReplicas": 0}, verify={"counts": True, "sampleSize": 50}))
    check_copy(kube, taken, opensearch, "live", prefix)


# OpenSearch 3 restores OpenSearch 2 snapshots, and refuses Elasticsearch 7's (Lucene 8).
INTO_3 = [("elasticsearch", "7.10.2"), ("opensearch", "2.19")]


@pytest.mark.parametrize("taken", INTO_3, ids=ids(INTO_3), indirect=True)
def test_restore_into_opensearch_3(
        kube: KubeAPIServer, operator: OperatorProcess, search_nodes: NodePool,
        taken: Taken, matrix_case: Callable[..., None]) -> None:
    target = search_nodes.get("opensearch", "3")
    allowed = taken.engine == "opensearch"
    matrix_case("restore" if allowed else "restore refused", taken.node, target)
    prefix = f"{taken.namespace}-r3-"
    kube.apply(taken.namespace, obj("Cluster", "target3", endpoint=target.url), obj(
        "Backfill", "restore3", sourceRef={"name": "source"}, targetRef={"name": "target3"},
        method="restore", source={"snapshotRef": {"name": "snap"}},
        targetNaming={"prefix": prefix}))
    try:
        o = kube.wait_for("backfill", taken.namespace, "restore3",
                          lambda o: o["status"].get("phase") in (*DONE, "Failed"),
                          timeout=180)
        status = o["status"]
        if allowed:
            assert status["phase"] == "Completed", status
            assert condition(o, "Verified")["status"] == "True", condition(o, "Verified")
            for index, expected in taken.docs.items():
                assert read_docs(target, prefix + index) == expected, index
        else:
            assert status["phase"] == "Failed", status
            assert condition(o, "Failed")["reason"] == "IncompatibleVersions"
            assert "Use method copy" in status["message"]
            # Nothing written: no repository registered, no index restored.
            assert taken.repo not in (target.request("GET", "/_snapshot") or {})  # type: ignore[operator]
            assert target.request("GET", f"/_cat/indices/{prefix}*?format=json") == []
    finally:
        delete_indices(target, f"{prefix}*")


OS13 = [("opensearch", "1.3.20")]


@pytest.mark.parametrize("taken", OS13, ids=ids(OS13), indirect=True)
def test_copy_into_an_older_version_is_refused_before_writing(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        taken: Taken, matrix_case: Callable[..., None]) -> None:
    """OpenSearch 2.19 → 1.3 (this version's node as the target): refused, naming why;
    no index and no coordination index on the older node."""
    matrix_case("copy refused", opensearch, taken.node)
    index = f"{taken.namespace}-newer"
    opensearch.request("PUT", f"/{index}", {"settings": {"number_of_replicas": 0}})
    opensearch.request("POST", f"/{index}/_bulk?refresh=true",
                       b'{"index":{"_id":"a"}}\n{"n":1}\n{"index":{"_id":"b"}}\n{"n":2}\n')
    try:
        kube.apply(taken.namespace, obj("Cluster", "newer", endpoint=opensearch.url,
                                        readOnly=True),
                   obj("Backfill", "down", sourceRef={"name": "newer"},
                       targetRef={"name": "source"}, method="copy", indices=[index],
                       targetNaming={"prefix": "down-"}))
        o = kube.wait_for("backfill", taken.namespace, "down",
                          lambda o: o["status"].get("phase") in DONE, timeout=120)
        assert o["status"]["phase"] == "Failed", o["status"]
        assert condition(o, "Failed")["reason"] == "IncompatibleVersions"
        assert "a copy never goes to an older version" in o["status"]["message"]
        uid = o["metadata"]["uid"]
        assert taken.node.request("GET", "/_cat/indices/down-*,.ferry-backfill-*"
                                  "?format=json&expand_wildcards=all") == [], uid
    finally:
        opensearch.request("DELETE", f"/{index}")
