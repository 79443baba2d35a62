"""The snapshot DocumentSource and metadata input on the real repositories in
../shared/fixtures/es-snapshots (their README lists the live documents)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.api.backfill import BackfillSpec
from ferry.api.snapshot import Repository
from ferry.repository.lucene import Document, index_facts, shard_files
from ferry.repository.lucene.compound import SegmentFiles
from ferry.repository.lucene.segments import read_commit, read_segment_info
from ferry.services.backfill.snapshot_source import (
    NO_SOURCE,
    UNREADABLE,
    SnapshotDocuments,
    SnapshotReader,
    one_line,
    plan_snapshot,
    snapshot_work_items,
)
from ferry.services.backfill.workitems import WorkItem
from ferry.services.metadata import mappings as transforms
from ferry.services.metadata.snapshot_input import SnapshotMetadata
from ferry.services.references import SnapshotFiles

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "es-snapshots"
LIVE = {"complexdoc", "updateddoc", "unchangeddoc"}  # deleteddoc was deleted


def files(location: Path, snapshot: str = "rfs_snapshot", **documents: int) -> SnapshotFiles:
    repo = Repository.model_validate({"name": "r", "type": "fs",
                                      "fs": {"location": str(location)}})
    return SnapshotFiles("snap", snapshot, None, repo, documents)


def spec(**extra: Any) -> BackfillSpec:
    return BackfillSpec.model_validate({"targetRef": {"name": "t"},
                                        "source": {"snapshotRef": {"name": "snap"}}, **extra})


def read_all(source: SnapshotDocuments, item: WorkItem, checkpoint: int, size: int
             ) -> tuple[list[Any], int]:
    hits: list[Any] = []
    while True:
        page, checkpoint = source.read(item, checkpoint, size)
        if not page:
            return hits, checkpoint
        assert len(page) <= size
        hits += page


def test_plan_is_one_item_per_shard_from_the_snapshot_alone() -> None:
    reader = SnapshotReader(files(FIXTURES / "ES_7_10_BWC_Check", "rfs-snapshot"))
    plan = plan_snapshot(reader, spec(targetNaming={"prefix": "new-"}))
    assert [(i.source, i.target, i.docs) for i in plan.indices] == [
        ("bwc_index_1", "new-bwc_index_1", 1), ("empty_mappings_no_docs",
                                                "new-empty_mappings_no_docs", 0),
        ("fwc_index_1", "new-fwc_index_1", 1), ("no_mappings_no_docs",
                                                "new-no_mappings_no_docs", 0)]
    items = snapshot_work_items(plan)
    assert [(i.id, i.checkpoint) for i in items] == [
        (f"{name}/0/0", 0) for name in ("bwc_index_1", "empty_mappings_no_docs",
                                        "fwc_index_1", "no_mappings_no_docs")]
    # A count the Snapshot recorded wins for the progress total.
    recorded = SnapshotReader(files(FIXTURES / "ES_7_10_BWC_Check", "rfs-snapshot",
                                    bwc_index_1=7))
    assert plan_snapshot(recorded, spec(indices=["bwc_*"])).indices[0].docs == 7


@pytest.mark.parametrize("repo", ["ES_5_6_Updates_Deletes", "ES_6_8_Updates_Deletes_Native",
                                  "ES_7_10_Updates_Deletes_w_Soft",
                                  "ES_7_10_Updates_Deletes_wo_Soft"])
def test_every_checkpoint_resumes_exactly_where_it_was(repo: str) -> None:
    reader = SnapshotReader(files(FIXTURES / repo))
    [item] = snapshot_work_items(plan_snapshot(reader, spec()))
    hits, end = read_all(SnapshotDocuments(reader), item, 0, 1)
    ids = [h.id for h in hits]
    assert sorted(ids) == sorted(LIVE)
    assert end == 3
    for hit in hits:
        assert b"\n" not in hit.source  # one bulk line each
        assert isinstance(json.loads(hit.source), dict)
    updated = json.loads(next(h.source for h in hits if h.id == "updateddoc"))
    if repo != "ES_6_8_Updates_Deletes_Native":
        assert updated.get("content") == "Updated!"
    for checkpoint in range(4):  # a fresh worker, as after a crash
        rest, reached = read_all(SnapshotDocuments(reader), item, checkpoint, 2)
        assert [h.id for h in rest] == ids[checkpoint:]
        assert reached == 3


def test_one_line_keeps_every_value() -> None:
    pretty = b'{\r\n  "a": "x\\ny",\n  "b": [1,\n 2]\n}\n'
    assert json.loads(one_line(pretty)) == json.loads(pretty)
    assert b"\n" not in one_line(pretty) and b"\r" not in one_line(pretty)
    assert one_line(b'{"a":1}') == b'{"a":1}'


def _stored_fields_range(location: Path) -> tuple[Path, int, int]:
    """Where the last segment's .fdt sits inside its compound file: the blob and the
    range (the first segment's documents are all deleted, so it is never read)."""
    reader = SnapshotReader(files(location))
    entry = reader.entry()
    facts = index_facts(reader.store, reader.contents(), entry, "test_updates_deletes")
    shard = shard_files(reader.store, facts, entry, 0)
    name = next(n for n in shard.entries if n.startswith("segments_"))
    commit = read_commit(shard.read(name), name, int(name.split("_")[1], 36))
    segment = commit.segments[-1]
    info = read_segment_info(shard.read(f"{segment.name}.si"), "si", segment)
    compound = SegmentFiles(shard, info)
    assert compound.entries is not None
    offset, length = compound.entries[".fdt"]
    cfs = shard.entries[f"{segment.name}.cfs"].blob
    return location / shard.folder / cfs, offset, length


def test_a_flipped_byte_in_stored_fields_fails_the_item_naming_the_file(
        tmp_path: Path) -> None:
    location = tmp_path / "repo"
    shutil.copytree(FIXTURES / "ES_7_10_Updates_Deletes_w_Soft", location)
    blob, offset, length = _stored_fields_range(location)
    data = bytearray(blob.read_bytes())
    data[offset + length // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    reader = SnapshotReader(files(location))
    [item] = snapshot_work_items(plan_snapshot(reader, spec()))
    source = SnapshotDocuments(reader)
    hits, reached = read_all(source, item, 0, 10)
    assert reached == UNREADABLE
    pending = source.take_failures(item.id)
    assert pending is not None and pending.failed >= 1
    [failure] = pending.failures
    assert failure["id"] == "shard 0"
    assert failure["reason"].startswith("SnapshotCorrupt:")
    assert "_1.cfs" in failure["reason"] and ":_1.fdt: checksum mismatch" in failure["reason"]
    # Nothing of the corrupt segment was handed over (at most earlier segments').
    assert {h.id for h in hits} < LIVE
    assert source.read(item, UNREADABLE, 10) == ([], UNREADABLE)


class _Stub:
    """A reader whose one shard holds a document without _source between two others."""

    walks = 0

    def documents(self, index: str, shard: int) -> Iterator[Document]:
        self.walks += 1
        yield Document(index, "a", None, None, b'{"n":1}')
        yield Document(index, "b", None, None, None)
        yield Document(index, "c", None, "r1", b'{"n":3}')


def test_documents_without_source_are_reported_and_not_copied() -> None:
    source = SnapshotDocuments(_Stub())  # type: ignore[arg-type]
    item = WorkItem("i/0/0", "i", "t", 0, 0, 1, 0, docs_estimate=3)
    hits, reached = read_all(source, item, 0, 1)
    assert [(h.id, h.routing) for h in hits] == [("a", None), ("c", "r1")]
    assert reached == 3  # b counts: the checkpoint is a position in the shard
    pending = source.take_failures(item.id)
    assert pending is not None and pending.failed == 1
    assert [(f["id"], f["reason"]) for f in pending.failures] == [("b", NO_SOURCE)]
    # Read in one page, then asked once more from its end: the shard is walked once.
    stub = _Stub()
    source = SnapshotDocuments(stub)  # type: ignore[arg-type]
    hits, reached = read_all(source, item, 0, 10)
    assert (len(hits), reached, stub.walks) == (2, 3, 1)


def test_snapshot_metadata_answers_in_the_shapes_of_a_live_source(tmp_path: Path) -> None:
    reader = SnapshotReader(files(FIXTURES / "ES_7_10_Single", "global_state_snapshot"))
    meta = SnapshotMetadata(reader.store, reader.contents(), reader.entry())
    assert meta.has_global_state
    got = meta.request("GET", "/posts_2024_01_01")["posts_2024_01_01"]
    mapping, problem = transforms.unify_mappings(got["mappings"], "Refuse")
    assert problem is None
    assert mapping == {"properties": {"author": {"type": "keyword"},
                                      "contents": {"type": "text"},
                                      "tags": {"type": "keyword"}}}
    assert got["settings"]["index.number_of_shards"] == "1"
    aliases = meta.request("GET", "/posts_2024_01_01/_alias")["posts_2024_01_01"]["aliases"]
    assert aliases["another_alias"] == {"filter": {"term": {"author": "Tobias Funke"}},
                                        "index_routing": "user123",
                                        "search_routing": "user123"}
    assert not [n for n in meta.request("GET", "/_template") if not n.startswith(".")]
    composable = {t["name"] for t in meta.request("GET", "/_index_template")["index_templates"]}
    assert "posts_index_template" in composable
    components = meta.request("GET", "/_component_template")["component_templates"]
    assert "posts_template" in {t["name"] for t in components}
    assert meta.request("GET", "/no-such-index") is None
    # ES 5.6: two mapping types, as a live ES 5 source shows them.
    reader = SnapshotReader(files(FIXTURES / "ES_5_6_Updates_Deletes"))
    meta = SnapshotMetadata(reader.store, reader.contents(), reader.entry())
    typed = meta.request("GET", "/test_updates_deletes")["test_updates_deletes"]["mappings"]
    assert sorted(typed) == ["type1", "type2"]
    # Without the global metadata there are no templates to read.
    location = tmp_path / "repo"
    shutil.copytree(FIXTURES / "ES_7_10_Single", location)
    reader = SnapshotReader(files(location, "global_state_snapshot"))
    (location / f"meta-{reader.entry().uuid}.dat").unlink()
    assert not SnapshotMetadata(reader.store, reader.contents(), reader.entry()).has_global_state


@pytest.mark.parametrize(("phase", "code", "retryable"), [
    ("Running", "SnapshotNotReady", True), ("Failed", "SnapshotNotCompleted", False),
    ("PartiallyFailed", "SnapshotNotCompleted", False)])
def test_only_a_completed_snapshot_is_read(phase: str, code: str, retryable: bool) -> None:
    from unittest import mock

    from ferry.api.snapshot import SnapshotSpec
    from ferry.errors import FerryError
    from ferry.services.references import References

    snap_spec = SnapshotSpec.model_validate({"clusterRef": {"name": "gone"}, "repository": {
        "name": "r", "type": "fs", "fs": {"location": "/backups"}}})
    references = References("ns", None)  # type: ignore[arg-type]

    def resolve(status: dict[str, Any]) -> SnapshotFiles:
        with mock.patch.object(References, "snapshot", return_value=({"status": status},
                                                                     snap_spec)):
            return references.snapshot_files(spec())

    with pytest.raises(FerryError) as caught:
        resolve({"phase": phase})
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    got = resolve({"phase": "Completed", "snapshotName": "nightly", "snapshotUuid": "u1",
                   "indices": [{"name": "a", "documents": 3}, {"name": "b"}]})
    assert (got.snapshot, got.uuid, got.documents) == ("nightly", "u1", {"a": 3})
    assert got.repository.fs is not None and got.repository.fs.location == "/backups"


def test_an_fs_repository_must_be_an_absolute_mounted_path(tmp_path: Path) -> None:
    from ferry.errors import FerryError
    from ferry.services.backfill.snapshot_source import open_repository

    def repo(location: str) -> Repository:
        return Repository.model_validate({"name": "r", "type": "fs",
                                          "fs": {"location": location}})

    with pytest.raises(FerryError) as relative:
        open_repository(repo("backups/nightly"))  # relative to the nodes' path.repo
    assert (relative.value.code, relative.value.retryable) == ("RepositoryNotReadable", False)
    with pytest.raises(FerryError) as unmounted:
        open_repository(repo(str(tmp_path / "not-mounted")))
    assert (unmounted.value.code, unmounted.value.retryable) == ("RepositoryNotReadable", True)
    assert open_repository(repo(str(tmp_path))).location == str(tmp_path)
