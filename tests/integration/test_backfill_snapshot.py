"""Backfill method copy from a snapshot's files: a real Elasticsearch 7.10 snapshot taken
by a Ferry Snapshot, read without the source (its Cluster deleted, its node stopped),
from an fs repository and through moto's S3 (ranged reads counted by a proxy), a
corrupted blob, and the ES 5.6 repository of ../shared/fixtures/es-snapshots."""

from __future__ import annotations

import http.client
import json
import random
import shutil
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ferry.repository import FsBlobStore, read_repository
from ferry.repository.lucene import index_facts, shard_files
from testbed.kube import KubeAPIServer
from testbed.operator import OperatorProcess
from testbed.procs import free_port
from testbed.s3 import S3Server
from testbed.search import SearchNode

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "es-snapshots"
API = "ferry.dev/v1alpha1"
WORDS = [f"w{n:04d}" for n in range(5000)]
DONE = ("Completed", "CompletedWithErrors", "Failed")
Docs = dict[str, dict[str, tuple[str | None, Any]]]  # index -> id -> (routing, source)


def obj(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}


def fs_repo(name: str, location: Path) -> dict[str, Any]:
    return {"name": name, "type": "fs", "fs": {"location": str(location)}}


def from_snapshot(name: str, snapshot: str, prefix: str, **spec: Any) -> dict[str, Any]:
    """A Backfill without sourceRef: the documents come from the snapshot's files."""
    spec.setdefault("metadata", {"targetReplicas": 0})
    return obj("Backfill", name, targetRef={"name": "target"}, method="copy",
               source={"snapshotRef": {"name": snapshot}}, targetNaming={"prefix": prefix},
               **spec)


def condition(o: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in o["status"]["conditions"] if c["type"] == type_)


def read_docs(node: SearchNode, index: str) -> dict[str, tuple[str | None, Any]]:
    """The test's own reading of an index: id -> (routing, source)."""
    node.request("POST", f"/{index}/_refresh")
    got = node.request("POST", f"/{index}/_search",
                       {"size": 10000, "query": {"match_all": {}}})
    return {h["_id"]: (h.get("_routing"), h["_source"])
            for h in got["hits"]["hits"]}  # type: ignore[index]


def bulk(node: SearchNode, lines: list[Any]) -> None:
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    result = node.request("POST", "/_bulk?refresh=true", body)
    assert result["errors"] is False, result  # type: ignore[index]


def load_source(node: SearchNode, tag: str) -> None:
    """Routing, nested documents, unicode ids, an empty index, updates and deletes (in
    later segments than the documents they replace), and an index with ~250 KB of
    sources in one shard, well above LZ4's 60 KB chunks."""
    rng = random.Random(7)
    node.request("PUT", "/sbf-docs", {
        "settings": {"number_of_shards": 2, "number_of_replicas": 0},
        "mappings": {"properties": {"title": {"type": "text"}, "tag": {"type": "keyword"},
                                    "n": {"type": "long"},
                                    "comments": {"type": "nested", "properties": {
                                        "by": {"type": "keyword"}, "text": {"type": "text"}}}}},
        "aliases": {"sbf-all": {}}})
    node.request("PUT", "/sbf-empty", {"settings": {"number_of_replicas": 0}})
    node.request("PUT", "/sbf-big", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"body": {"type": "text"}, "kw": {"type": "keyword"},
                                    "n": {"type": "long"}}}})
    node.request("PUT", f"/_template/sbf-{tag}-template", {
        "index_patterns": [f"sbf-tpl-{tag}-*"], "settings": {"number_of_shards": 1},
        "mappings": {"properties": {"kept": {"type": "keyword"}}}})
    lines: list[Any] = []
    for i in range(120):
        doc_id = [f"doc-{i}", f"ünïcødé-{i}", f"日本語-{i}", f"emoji-😀-{i}"][i % 4]
        action: dict[str, Any] = {"_index": "sbf-docs", "_id": doc_id}
        if i % 5 == 0:
            action["routing"] = f"r{i % 3}"
        source: dict[str, Any] = {"title": f"title {i} é", "tag": f"t{i % 7}", "n": i}
        if i % 3 == 0:
            source["comments"] = [{"by": "ann", "text": f"first on {i}"},
                                  {"by": "bob", "text": "second"}]
        lines += [{"index": action}, source]
    bulk(node, lines)
    for part in range(3):  # a segment each
        lines = []
        for i in range(part * 100, part * 100 + 100):
            text = " ".join(rng.choice(WORDS) for _ in range(150))
            lines += [{"index": {"_index": "sbf-big", "_id": f"big-{i}"}},
                      {"body": text, "kw": f"k{rng.randrange(1000)}",
                       "n": rng.randrange(10**9)}]
        bulk(node, lines)
    node.request("POST", "/sbf-*/_flush")
    # Updates and deletes, each in a later segment than what it replaces.
    lines = []
    for i in range(0, 20):
        doc_id = [f"doc-{i}", f"ünïcødé-{i}", f"日本語-{i}", f"emoji-😀-{i}"][i % 4]
        action = {"_index": "sbf-docs", "_id": doc_id}
        if i % 5 == 0:
            action["routing"] = f"r{i % 3}"
        lines += [{"index": action}, {"title": f"updated {i}", "tag": "new", "n": -i}]
    for i in range(20, 30):
        doc_id = [f"doc-{i}", f"ünïcødé-{i}", f"日本語-{i}", f"emoji-😀-{i}"][i % 4]
        action = {"_index": "sbf-docs", "_id": doc_id}
        if i % 5 == 0:
            action["routing"] = f"r{i % 3}"
        lines.append({"delete": action})
    lines += [{"delete": {"_index": "sbf-big", "_id": "big-3"}},
              {"index": {"_index": "sbf-big", "_id": "big-4"}}, {"body": "replaced", "n": 4}]
    bulk(node, lines)
    node.request("POST", "/sbf-*/_flush")


@dataclass
class Taken:
    namespace: str
    tag: str
    repo: Path  # the fs repository of snapshot "snap" (all sbf-* indices)
    spare: Path  # the fs repository of snapshot "snap-c" (sbf-big only), to corrupt
    docs: Docs = field(default_factory=dict)


@pytest.fixture(scope="module")
def taken(kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Taken]:
    """Two Ferry Snapshots of a private ES 7.10 node; then its Cluster resource is
    deleted and the node stopped: the Backfills here never have a source."""
    root = tmp_path_factory.mktemp("sbf-repos")
    started = time.monotonic()
    node = SearchNode("elasticsearch", version="7.10.2", repo_dirs=(root,)).start()
    print(f"private ES node up in {time.monotonic() - started:.0f}s")
    namespace, tag = f"sbf-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:6]
    kube.kubectl("create", "namespace", namespace)
    try:
        load_source(node, tag)
        out = Taken(namespace, tag, root / "snap", root / "spare")
        out.docs = {i: read_docs(node, i) for i in ("sbf-docs", "sbf-empty", "sbf-big")}
        kube.apply(namespace, obj("Cluster", "source", endpoint=node.url),
                   obj("Cluster", "target", endpoint=opensearch.url),
                   obj("Snapshot", "snap", clusterRef={"name": "source"},
                       indices=["sbf-*"], includeGlobalState=True,
                       repository=fs_repo("sbf-repo", out.repo)),
                   obj("Snapshot", "snap-c", clusterRef={"name": "source"},
                       indices=["sbf-big"], repository=fs_repo("sbf-spare", out.spare)))
        for name in ("snap", "snap-c"):
            kube.wait_for("snapshot", namespace, name,
                          lambda o: o["status"]["phase"] == "Completed"
                          and condition(o, "Verified")["status"] == "True", timeout=120)
        kube.kubectl("delete", "cluster", "source", "-n", namespace)
        print(f"data and snapshots in {time.monotonic() - started:.0f}s")
    finally:
        node.stop()
    yield out
    kube.kubectl("delete", "-n", namespace, "--timeout=150s", "--ignore-not-found",
                 "backfills.ferry.dev,snapshots.ferry.dev", "--all", check=False, timeout=180)
    kube.kubectl("delete", "-n", namespace, "clusters.ferry.dev", "--all", check=False)
    kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_copy_from_snapshot_files_with_the_source_gone_completes_and_verifies(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        taken: Taken) -> None:
    ns, prefix = taken.namespace, f"{taken.namespace}-"
    assert kube.get("cluster", ns, "source") is None  # the source is gone
    kube.apply(ns, from_snapshot("copy", "snap", prefix, indices=["sbf-*"],
                                 verify={"counts": True, "sampleSize": 50}))
    o = kube.wait_for("backfill", ns, "copy", lambda o: o["status"]["phase"] in DONE,
                      timeout=120)
    status = o["status"]
    assert status["phase"] == "Completed", status
    assert condition(o, "Verified")["status"] == "True", condition(o, "Verified")
    expected = taken.docs
    # The test's own oracle: deleted documents and old versions are not in it.
    assert len(expected["sbf-docs"]) == 110 and "ünïcødé-21" not in expected["sbf-docs"]
    assert expected["sbf-docs"]["doc-0"] == ("r0", {"title": "updated 0", "tag": "new",
                                                    "n": 0})
    assert len(expected["sbf-big"]) == 299 and expected["sbf-big"]["big-4"][1]["body"] == \
        "replaced"
    for index, docs in expected.items():
        assert read_docs(opensearch, prefix + index) == docs, index
    assert status["progress"]["docsMigrated"] == sum(len(d) for d in expected.values())
    rows = {r["name"]: r for r in status["indices"]}
    assert rows["sbf-docs"]["targetCount"] == 110 and rows["sbf-empty"]["targetCount"] == 0
    # Metadata from the snapshot's own metadata: the nested mapping, the alias, and the
    # legacy template from its global state.
    mapping = opensearch.request("GET", f"/{prefix}sbf-docs/_mapping")
    props = mapping[f"{prefix}sbf-docs"]["mappings"]["properties"]  # type: ignore[index]
    assert props["comments"]["type"] == "nested"
    aliases = opensearch.request("GET", f"/{prefix}sbf-docs/_alias")
    assert "sbf-all" in aliases[f"{prefix}sbf-docs"]["aliases"]  # type: ignore[index]
    template = f"sbf-{taken.tag}-template"
    got = opensearch.request("GET", f"/_template/{template}")
    assert got[template]["index_patterns"] == [f"sbf-tpl-{taken.tag}-*"]  # type: ignore[index]
    opensearch.request("DELETE", f"/_template/{template}")


def _largest_stored_fields(repo: Path, index: str) -> tuple[Path, int, int, str]:
    """The blob holding the stored fields of the segment with the most documents, found
    through the shard's file list, and the byte range of the ``.fdt`` in it."""
    from ferry.repository.lucene.compound import SegmentFiles
    from ferry.repository.lucene.segments import read_commit, read_segment_info

    store = FsBlobStore(repo)
    contents = read_repository(store)
    entry = contents.snapshots[0]
    files = shard_files(store, index_facts(store, contents, entry, index), entry, 0)
    name = next(n for n in files.entries if n.startswith("segments_"))
    commit = read_commit(files.read(name), name, int(name[len("segments_"):], 36))
    infos = [read_segment_info(files.read(f"{s.name}.si"), "si", s) for s in commit.segments]
    info = max(infos, key=lambda i: i.max_doc)
    own = SegmentFiles(files, info)
    if own.entries is not None:
        offset, length = own.entries[".fdt"]
        physical = f"{info.name}.cfs"
    else:
        physical = f"{info.name}.fdt"
        offset, length = 0, files.entries[physical].length
    return repo / files.folder / files.entries[physical].blob, offset, length, info.name


def test_a_corrupted_blob_fails_the_item_naming_the_file_and_writes_nothing_wrong(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        taken: Taken) -> None:
    ns, prefix = taken.namespace, f"{taken.namespace}-bad-"
    blob, offset, length, segment = _largest_stored_fields(taken.spare, "sbf-big")
    data = bytearray(blob.read_bytes())
    data[offset + length // 2] ^= 0x10  # one flipped bit inside the stored-fields data
    blob.write_bytes(bytes(data))
    kube.apply(ns, from_snapshot("corrupt", "snap-c", prefix))
    o = kube.wait_for("backfill", ns, "corrupt", lambda o: o["status"]["phase"] in DONE,
                      timeout=120)
    assert o["status"]["phase"] == "Failed", o["status"]
    assert condition(o, "Failed")["reason"] == "TooManyFailures"
    [failure] = o["status"]["failures"]
    assert failure["index"] == "sbf-big" and failure["id"] == "shard 0"
    assert "checksum mismatch" in failure["reason"]
    assert f"{segment}.fdt" in failure["reason"] and blob.name in failure["reason"]
    # What landed came from sound segments only, each document exactly as on the source.
    landed = read_docs(opensearch, f"{prefix}sbf-big")
    assert len(landed) < len(taken.docs["sbf-big"])
    assert all(taken.docs["sbf-big"][i] == doc for i, doc in landed.items())


@dataclass
class Fetched:
    method: str
    path: str
    range: str | None
    size: int


class CountingProxy:
    """A test-only HTTP proxy in front of moto that records every request and the bytes
    of each response body (independently of the code under test)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.port = free_port()
        self.seen: list[Fetched] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CountingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(proxy.upstream.hostname,
                                                  proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                proxy.seen.append(Fetched(self.command, self.path,
                                          self.headers.get("Range"), len(data)))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", resp.getheader("Content-Length")
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def completed_by_hand(kube: KubeAPIServer, namespace: str, name: str,
                      repository: dict[str, Any], snapshot_name: str) -> None:
    """A Snapshot resource for snapshot files no node of this test bed can write (the
    nodes have no repository-s3 plugin; an ES 5.6 repository from the fixtures). Its
    Cluster does not exist, so the operator's first look fails; the status is then
    written as the operator writes a Completed, verified one, which it leaves alone."""
    kube.apply(namespace, obj("Snapshot", name, clusterRef={"name": "gone"},
                              snapshotName=snapshot_name, repository=repository))
    kube.wait_for("snapshot", namespace, name, lambda o: o["status"]["conditions"])
    generation = kube.get("snapshot", namespace, name)["metadata"]["generation"]  # type: ignore[index]

    def cond(type_: str, status: str, reason: str) -> dict[str, Any]:
        return {"type": type_, "status": status, "reason": reason, "message": reason,
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}

    status = {"phase": "Completed", "snapshotName": snapshot_name, "adopted": True,
              "observedGeneration": generation,
              "conditions": [cond("Ready", "True", "Completed"),
                             cond("Progressing", "False", "Completed"),
                             cond("Failed", "False", "Completed"),
                             cond("Verified", "True", "Checked")]}
    kube.kubectl("patch", "-n", namespace, "snapshot", name, "--subresource=status",
                 "--type=merge", "-p", json.dumps({"status": status}))
    kube.wait_for("snapshot", namespace, name, lambda o: o["status"]["phase"] == "Completed")


def test_copy_from_s3_reads_ranges_and_far_less_than_the_shard(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        s3: S3Server, taken: Taken, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ferry.clients.s3 import s3_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    bucket, base = f"sbf-{uuid.uuid4().hex[:8]}", "backups/es710"
    client = s3_client(s3.url, s3.region, path_style=True)
    client.create_bucket(Bucket=bucket)
    for path in sorted(taken.repo.rglob("*")):
        if path.is_file():
            client.put_object(Bucket=bucket, Key=f"{base}/{path.relative_to(taken.repo)}",
                              Body=path.read_bytes())
    proxy = CountingProxy(s3.url).start()
    try:
        store = FsBlobStore(taken.repo)
        contents = read_repository(store)
        entry = contents.snapshots[0]
        shard = f"{base}/indices/{contents.index_ids['sbf-big']}/0/"
        listed = client.list_objects_v2(Bucket=bucket, Prefix=shard)["Contents"]
        shard_bytes = sum(o["Size"] for o in listed)
        kube.apply(namespace, obj("Cluster", "target", endpoint=opensearch.url))
        completed_by_hand(kube, namespace, "on-s3", {
            "name": "sbf-s3", "type": "s3", "s3": {
                "bucket": bucket, "basePath": base, "region": s3.region,
                "endpoint": proxy.url, "pathStyleAccess": True}}, entry.name)
        prefix = f"{namespace}-"
        kube.apply(namespace, from_snapshot("from-s3", "on-s3", prefix, indices=["sbf-big"]))
        o = kube.wait_for("backfill", namespace, "from-s3",
                          lambda o: o["status"]["phase"] in DONE, timeout=120)
        assert o["status"]["phase"] == "Completed", o["status"]
        assert condition(o, "Verified")["status"] == "True"
        assert read_docs(opensearch, f"{prefix}sbf-big") == taken.docs["sbf-big"]
    finally:
        proxy.stop()
    path = f"/{bucket}/{shard}"
    data = [f for f in proxy.seen if f.method == "GET"
            and urllib.parse.unquote(f.path).startswith(path)
            and "/__" in urllib.parse.unquote(f.path)]
    fetched = sum(f.size for f in data)
    print(f"sbf-big shard: {shard_bytes} bytes in the bucket, {fetched} fetched in "
          f"{len(data)} ranged GETs")
    assert data and all(f.range and f.range.startswith("bytes=") for f in data)
    # Postings, doc values, points and norms are never fetched: only what the stored
    # fields, field infos and deletes need.
    assert fetched < shard_bytes * 0.6, (fetched, shard_bytes)


def test_es56_multi_type_snapshot_into_opensearch_merges_types(
        kube: KubeAPIServer, operator: OperatorProcess, opensearch: SearchNode,
        namespace: str, tmp_path: Path) -> None:
    repo = tmp_path / "es56"
    shutil.copytree(FIXTURES / "ES_5_6_Updates_Deletes", repo)
    kube.apply(namespace, obj("Cluster", "target", endpoint=opensearch.url))
    completed_by_hand(kube, namespace, "es56", fs_repo("es56", repo), "rfs_snapshot")
    prefix = f"{namespace}-"
    # Two mapping types have no typeless equivalent: refused as on the live path ...
    kube.apply(namespace, from_snapshot("refused", "es56", prefix + "r-"))
    o = kube.wait_for("backfill", namespace, "refused",
                      lambda o: o["status"]["phase"] in DONE, timeout=60)
    assert o["status"]["phase"] == "Failed"
    assert condition(o, "Failed")["reason"] == "IncompatibleIndices"
    # ... and merged into one mapping when asked.
    kube.apply(namespace, from_snapshot("merged", "es56", prefix, metadata={
        "targetReplicas": 0, "multiTypeMappings": "Merge"}))
    o = kube.wait_for("backfill", namespace, "merged",
                      lambda o: o["status"]["phase"] in DONE, timeout=90)
    assert o["status"]["phase"] == "Completed", o["status"]
    docs = read_docs(opensearch, f"{prefix}test_updates_deletes")
    # The fixture's README: deleteddoc was deleted, updateddoc updated.
    assert sorted(docs) == ["complexdoc", "unchangeddoc", "updateddoc"]
    assert docs["updateddoc"][1] == {"content": "Updated!"}
    props = opensearch.request("GET", f"/{prefix}test_updates_deletes/_mapping")[
        f"{prefix}test_updates_deletes"]["mappings"]["properties"]  # type: ignore[index]
    assert {"title", "content", "contents"} <= set(props)
