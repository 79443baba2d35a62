"""Pure pieces of metadata migration and the restore method: selection, transforms,
refusal parsing, the report, version pairs, rename groups, restore progress."""

from __future__ import annotations

import pytest
from opensearchpy import exceptions as os_exc

from ferry.api.backfill import BackfillSpec, TargetNaming
from ferry.api.cluster import ClusterSpec
from ferry.api.snapshot import Repository
from ferry.clients.engine import engine_reason
from ferry.errors import InvalidSpec
from ferry.services.backfill.restore import (
    IndexRecovery,
    RestoreIndex,
    RestoreProgress,
    rename_groups,
    restore_body,
    restore_refusal,
)
from ferry.services.backfill.status import restore_progress, resumes
from ferry.services.metadata.mappings import (
    Allowlist,
    deep_merge,
    is_system,
    known_refusals,
    rejected_settings,
    unify_mappings,
    with_parts,
)
from ferry.services.metadata.report import Item, MetadataResult
from ferry.services.references import check_pair
from ferry.services.snapshot.service import repository_body, repository_conflict


def spec(**extra: object) -> BackfillSpec:
    return BackfillSpec.model_validate({"sourceRef": {"name": "a"}, "targetRef": {"name": "b"},
                                        **extra})


def test_allowlist_names_regex_unset_empty_and_system_items() -> None:
    every = Allowlist(None, "aliases")
    assert every.decide("logs", False) == (True, "")
    assert every.decide(".kibana", True)[0] is False
    assert "excluded by default" in every.decide(".kibana", True)[1]
    none = Allowlist([], "aliases")
    assert none.decide("logs", False) == (False, "not in the allowlist")
    some = Allowlist(["orders", "regex:logs-\\d+", ".watches"], "aliases")
    assert some.decide("orders", False)[0]
    assert some.decide("logs-12", False)[0]
    assert not some.decide("logs-12x", False)[0]  # the whole name must match
    assert not some.decide("x-orders", False)[0]
    assert some.decide(".watches", True)[0]  # a system item named exactly
    assert not Allowlist(["regex:.*"], "aliases").decide(".security", True)[0]
    with pytest.raises(InvalidSpec, match="not a valid regular expression"):
        Allowlist(["regex:("], "legacyTemplates")


def test_system_items() -> None:
    assert is_system(".ml-config")
    assert is_system("logs", {"_meta": {"managed": True, "description": "x-pack"}})
    assert not is_system("logs", {"_meta": {"owner": "team"}})


def test_unify_mappings_types() -> None:
    typeless = {"properties": {"a": {"type": "keyword"}}, "_source": {"enabled": True}}
    assert unify_mappings(typeless, "Refuse") == (typeless, None)
    assert unify_mappings({}, "Refuse") == ({}, None)
    # ES 6, or a 7.x index read with include_type_name: one custom type.
    assert unify_mappings({"doc": typeless}, "Refuse") == (typeless, None)
    # ES 5/6 _default_ is a template for new types, not a type of its own.
    assert unify_mappings({"_default_": {"dynamic": False}, "doc": typeless}, "Refuse") == (
        typeless, None)
    multi = {"user": {"properties": {"name": {"type": "text"}}},
             "post": {"properties": {"title": {"type": "text"}, "name": {"type": "text"}}}}
    mapping, problem = unify_mappings(multi, "Refuse")
    assert mapping == {} and problem is not None
    assert "2 mapping types (post, user)" in problem and "Merge" in problem
    merged, problem = unify_mappings(multi, "Merge")
    assert problem is None
    assert merged == {"properties": {"name": {"type": "text"}, "title": {"type": "text"}}}
    clash = {"a": {"properties": {"n": {"type": "long"}}},
             "b": {"properties": {"n": {"type": "keyword"}}}}
    _, problem = unify_mappings(clash, "Merge")
    assert problem is not None and "properties.n.type" in problem


def test_rejected_settings_are_found_by_name() -> None:
    sent = {"index.soft_deletes.enabled": "false", "index.number_of_shards": "3",
            "index.foo": "1", "index.bar": "2"}
    assert rejected_settings("Creating indices with soft-deletes disabled is no longer "
                             "supported. Please do not specify a value for setting "
                             "[index.soft_deletes.enabled].", sent) == [
        "index.soft_deletes.enabled"]
    # Several at once; a "did you mean" suggestion is not a setting we sent.
    assert rejected_settings("Validation Failed: 1: unknown setting [index.foo] did you "
                             "mean [index.fooo]?;2: unknown setting [index.bar]", sent) == [
        "index.foo", "index.bar"]
    assert rejected_settings("unknown setting [foo]", sent) == ["index.foo"]
    # The shard count is never removed to make an index fit: refused instead.
    assert rejected_settings("Failed to parse value [3] for setting "
                             "[index.number_of_shards]", sent) == []
    assert rejected_settings("mapper_parsing_exception: no handler for type [x]", sent) == []


def test_known_refusals_only_where_the_engine_refuses() -> None:
    off = {"index.soft_deletes.enabled": "false"}
    assert [n for n, _ in known_refusals(off, "opensearch", "2.19.6")] == [
        "index.soft_deletes.enabled"]
    assert known_refusals(off, "opensearch", "1.3.20") == []
    assert known_refusals(off, "elasticsearch", "7.10.2") == []
    assert known_refusals(off, "elasticsearch", "8.15.0")
    assert known_refusals({"index.soft_deletes.enabled": "true"}, "opensearch", "2.19.6") == []


def test_engine_reason_takes_the_deepest_cause() -> None:
    info = {"error": {"root_cause": [{"type": "illegal_argument_exception",
                                      "reason": "template after composition is invalid"}],
                      "type": "illegal_argument_exception", "reason": "outer",
                      "caused_by": {"type": "mapper_parsing_exception", "reason": "middle",
                                    "caused_by": {"type": "illegal_argument_exception",
                                                  "reason": "analyzer [x] has not been "
                                                  "configured in mappings"}}},
            "status": 400}
    exc = os_exc.RequestError(400, "illegal_argument_exception", info)
    assert engine_reason(exc) == ("illegal_argument_exception: analyzer [x] has not been "
                                  "configured in mappings")


def test_deep_merge_and_template_parts() -> None:
    assert deep_merge({"properties": {"a": {"type": "date"}}},
                      {"properties": {"b": {"type": "keyword"}}}) == {
        "properties": {"a": {"type": "date"}, "b": {"type": "keyword"}}}
    assert with_parts({"aliases": {"x": {}}}, {}, {}) == {"aliases": {"x": {}}}
    assert with_parts({"settings": {}, "mappings": {}}, {"index.a": 1}, {}) == {
        "settings": {"index.a": 1}, "mappings": {}}


def test_report_counts_all_items_and_bounds_the_list_problems_first() -> None:
    result = MetadataResult("Create")
    for n in range(150):
        result.add(Item("Alias", f"a{n}", "Skipped", "not in the allowlist"))
    result.add(Item("Index", "logs", "Created", target="logs"))
    result.add(Item("LegacyTemplate", "t", "TargetRejected", "no"))
    report = result.report()
    assert report["itemsTotal"] == 152
    assert report["counts"]["skipped"] == 150 and report["counts"]["created"] == 1
    assert len(report["items"]) == 100
    assert [i["action"] for i in report["items"][:2]] == ["TargetRejected", "Created"]
    assert "1 created" in result.summary() and "150 skipped" in result.summary()
    assert result.blocking() == []
    result.add(Item("Index", "x", "Incompatible", "_source is disabled"))
    assert [i.name for i in result.blocking()] == ["x"]


@pytest.mark.parametrize(("source", "target", "refused"), [
    (("elasticsearch", "7.10.2"), ("opensearch", "2.19.6"), None),
    (("elasticsearch", "6.8.23"), ("opensearch", "1.3.20"), None),
    (("elasticsearch", "6.8.23"), ("opensearch", "2.19.6"), "Elasticsearch 7.0 or later"),
    (("elasticsearch", "5.6.16"), ("opensearch", "2.19.6"), "Elasticsearch 7.0 or later"),
    (("elasticsearch", "7.17.0"), ("opensearch", "2.19.6"), "forked from Elasticsearch 7.10.2"),
    (("elasticsearch", "8.15.0"), ("opensearch", "2.19.6"), "forked"),
    (("elasticsearch", "7.10.2"), ("opensearch", "3.0.0"), "OpenSearch 2 or later"),
    (("opensearch", "1.3.20"), ("opensearch", "2.19.6"), None),
    (("opensearch", "2.19.6"), ("opensearch", "2.11.0"), "newer version"),
    (("opensearch", "1.3.20"), ("opensearch", "3.0.0"), "OpenSearch 2 or later"),
    (("opensearch", "2.19.6"), ("elasticsearch", "7.10.2"), "does not read OpenSearch"),
    (("elasticsearch", "6.8.23"), ("elasticsearch", "7.10.2"), None),
    (("elasticsearch", "5.6.16"), ("elasticsearch", "7.10.2"), "Elasticsearch 6 or later"),
    (("elasticsearch", "7.10.2"), ("elasticsearch", "6.8.23"), "newer version"),
])
def test_restore_version_pairs(source: tuple[str, str], target: tuple[str, str],
                               refused: str | None) -> None:
    reason = restore_refusal(*source, *target)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason, reason


def test_rename_groups_share_one_pattern_and_map_each_named_index() -> None:
    naming = TargetNaming(prefix="new-", suffix="-v$2", map={"orders.x": "orders-final"})
    groups = rename_groups(["logs", "orders.x", "users"], naming)
    assert groups == [(["logs", "users"], "^(.+)$", "new-$1-v\\$2"),
                      (["orders.x"], "^orders\\.x$", "orders-final")]
    assert rename_groups(["a"], TargetNaming()) == [(["a"], None, None)]
    body = restore_body(["a", "b"], "^(.+)$", "x-$1",
                        spec(metadata={"targetReplicas": 0}), True)
    assert body == {"indices": "a,b", "ignore_unavailable": False,
                    "include_global_state": True, "include_aliases": True,
                    "rename_pattern": "^(.+)$", "rename_replacement": "x-$1",
                    "index_settings": {"index.number_of_replicas": 0}}


def test_restore_progress_estimates_by_bytes_and_never_claims_100_early() -> None:
    plan = [RestoreIndex("a", "x-a", 1000), RestoreIndex("b", "x-b", 500)]
    progress = RestoreProgress(per_index={
        "x-a": IndexRecovery(shards_total=2, shards_done=1, bytes_total=400, bytes_done=100),
        "x-b": IndexRecovery(shards_total=1, shards_done=1, bytes_total=50, bytes_done=50)})
    assert progress.docs_done(plan) == 250 + 500
    assert not progress.done
    out = restore_progress(1500, 1500, False, 10.0, 450, 2, 3)
    assert out["percent"] == 99.9 and out["etaSeconds"] == 0
    assert restore_progress(1500, 750, False, None, 0, 0, 3)["percent"] == 50.0
    assert restore_progress(1500, 1500, True, None, 0, 3, 3)["percent"] == 100.0
    missing = RestoreProgress(missing=["x-a"])
    assert not missing.done


def test_evaluated_resumes_only_after_a_spec_change() -> None:
    assert resumes("Evaluated", {"observedGeneration": 2}, 3)
    assert not resumes("Evaluated", {"observedGeneration": 3}, 3)
    assert not resumes("Completed", {"observedGeneration": 2}, 3)


def test_restore_repository_is_registered_read_only_and_reused_either_way() -> None:
    repo = Repository.model_validate({"name": "r", "type": "fs", "fs": {"location": "/m"},
                                      "maxRestoreBytesPerSec": "1mb"})
    body = repository_body(repo, "opensearch", readonly=True)
    assert body["settings"] == {"compress": True, "readonly": True, "location": "/m",
                                "max_restore_bytes_per_sec": "1mb"}
    writable = {"type": "fs", "settings": {"location": "/m", "compress": "true",
                                           "readonly": "false"}}
    assert repository_conflict(writable, body, readonly_ok=True) is None
    assert repository_conflict(writable, body) is not None
    elsewhere = {"type": "fs", "settings": {"location": "/other"}}
    assert "location" in (repository_conflict(elsewhere, body, readonly_ok=True) or "")


def test_check_pair_allows_restore_and_copy_from_snapshot_files_without_a_source() -> None:
    src = ClusterSpec.model_validate({"endpoint": "http://a:9200"})
    tgt = ClusterSpec.model_validate({"endpoint": "http://b:9200"})
    check_pair(src, tgt, spec(method="restore", source={"snapshotRef": {"name": "s"}}))
    check_pair(src, tgt, spec(source={"snapshotRef": {"name": "s"}}))
    check_pair(None, tgt, spec(source={"snapshotRef": {"name": "s"}}))
    with pytest.raises(InvalidSpec) as caught:
        check_pair(src, src, spec(source={"snapshotRef": {"name": "s"}}))
    assert caught.value.code == "SameEndpoint"
