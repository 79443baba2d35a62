"""Pure pieces of metadata migration and the restore method: selection, transforms,
refusal parsing, the report, version pairs, rename groups, restore progress."""

from __future__ import annotations

import pytest
from opensearchpy import exceptions as os_exc

from ferry.api.backfill import BackfillSpec, TargetNaming
from ferry.api.cluster import ClusterSpec
from ferry.api.snapshot import Repository
from ferry.clients.engine import EngineInfo, engine_reason
from ferry.errors import InvalidSpec
from ferry.services.backfill.restore import (
    RESTORES,
    IndexRecovery,
    RestoreIndex,
    RestoreProgress,
    rename_groups,
    restore_body,
    restore_refusal,
)
from ferry.services.backfill.status import restore_progress, resumes
from ferry.services.metadata.legacy import date_format, modernize
from ferry.services.metadata.mappings import (
    Allowlist,
    deep_merge,
    is_system,
    known_refusals,
    rejected_settings,
    type_changes,
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
    (("elasticsearch", "6.8.23"), ("opensearch", "2.19.6"), "OpenSearch 2 restores indices"),
    (("elasticsearch", "5.6.16"), ("opensearch", "2.19.6"), "OpenSearch 2 restores indices"),
    (("elasticsearch", "7.17.0"), ("opensearch", "2.19.6"), "forked from Elasticsearch 7.10.2"),
    (("elasticsearch", "8.15.0"), ("opensearch", "2.19.6"), "forked"),
    (("elasticsearch", "7.10.2"), ("opensearch", "3.0.0"), "OpenSearch 3.x only"),
    (("opensearch", "1.3.20"), ("opensearch", "2.19.6"), None),
    (("opensearch", "2.19.6"), ("opensearch", "2.11.0"), "newer version"),
    (("opensearch", "1.3.20"), ("opensearch", "3.0.0"), "OpenSearch 2.x and OpenSearch 3.x only"),
    (("opensearch", "2.19.6"), ("elasticsearch", "7.10.2"), "does not read OpenSearch"),
    (("elasticsearch", "6.8.23"), ("elasticsearch", "7.10.2"), None),
    (("elasticsearch", "5.6.16"), ("elasticsearch", "7.10.2"), "Elasticsearch 6.x and"),
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


# The restore pairs the version matrix claims (issue 12): allowed where the engines
# allow it, refused everywhere else, before anything is written.
MATRIX_RESTORES = {
    (("elasticsearch", "6.8.23"), ("opensearch", "1.3.20")): True,
    (("elasticsearch", "7.10.2"), ("opensearch", "1.3.20")): True,
    (("elasticsearch", "7.10.2"), ("opensearch", "2.19.6")): True,
    (("opensearch", "1.3.20"), ("opensearch", "2.19.6")): True,
    (("opensearch", "2.19.6"), ("opensearch", "3.3.2")): True,
    (("elasticsearch", "7.10.2"), ("elasticsearch", "8.15.5")): True,
    (("elasticsearch", "5.6.16"), ("opensearch", "1.3.20")): False,
    (("elasticsearch", "6.8.23"), ("opensearch", "2.19.6")): False,
    (("elasticsearch", "6.8.23"), ("opensearch", "3.3.2")): False,
    (("elasticsearch", "7.10.2"), ("opensearch", "3.3.2")): False,
    (("elasticsearch", "8.15.5"), ("opensearch", "2.19.6")): False,
    (("opensearch", "1.3.20"), ("opensearch", "3.3.2")): False,
    (("opensearch", "3.3.2"), ("opensearch", "2.19.6")): False,
    (("opensearch", "2.19.6"), ("opensearch", "1.3.20")): False,
    (("opensearch", "2.19.6"), ("opensearch", "2.11.0")): False,
    (("elasticsearch", "8.15.5"), ("elasticsearch", "7.10.2")): False,
    (("opensearch", "1.3.20"), ("elasticsearch", "7.10.2")): False,
    (("elasticsearch", "7.10.2"), ("elasticsearch", "10.0.0")): False,
}


@pytest.mark.parametrize(("pair", "allowed"), MATRIX_RESTORES.items(),
                         ids=[f"{s[0][:2]}{s[1]}-{t[0][:2]}{t[1]}" for s, t in MATRIX_RESTORES])
def test_restore_pairs_of_the_version_matrix_follow_the_one_table(
        pair: tuple[tuple[str, str], tuple[str, str]], allowed: bool) -> None:
    (src_engine, src_version), (tgt_engine, tgt_version) = pair
    reason = restore_refusal(src_engine, src_version, tgt_engine, tgt_version)
    assert (reason is None) is allowed, reason
    if reason is not None:
        # The refusal names both sides, so a person sees which pair was asked for.
        assert f"{src_version} cannot be restored into" in reason
        assert tgt_version in reason


def test_the_restore_table_never_reads_newer_or_unrelated_majors() -> None:
    for (tgt_engine, tgt_major), reads in RESTORES.items():
        assert (tgt_engine, tgt_major) in reads  # every engine reads its own major
        for src_engine, src_major in reads:
            if src_engine == tgt_engine:
                assert src_major <= tgt_major
            else:  # across engines only Elasticsearch into OpenSearch
                assert (src_engine, tgt_engine) == ("elasticsearch", "opensearch")
                assert src_major <= 7
    # A row's refusal lists what the target does read.
    reason = restore_refusal("elasticsearch", "6.8.23", "opensearch", "2.19.6")
    assert reason is not None and reason.endswith(
        "OpenSearch 2 restores indices created by Elasticsearch 7.x, OpenSearch 1.x and "
        "OpenSearch 2.x only")


def test_type_changes_report_the_type_and_a_dropped_default_mapping() -> None:
    typed = {"_default_": {"properties": {"x": {"type": "keyword"}}},
             "event": {"_routing": {"required": True},
                       "properties": {"x": {"type": "keyword"}}}}
    assert unify_mappings(typed, "Fail") == ({"_routing": {"required": True},
                                              "properties": {"x": {"type": "keyword"}}}, None)
    notes = type_changes(typed)
    assert notes[0] == "mapping type event made typeless"
    assert notes[1].startswith("the _default_ mapping was dropped")
    assert type_changes({"_doc": {"properties": {}}}) == ["mapping type _doc made typeless"]
    # Typeless mappings (ES 7+, OpenSearch) change nothing.
    assert type_changes({"_routing": {"required": True}, "properties": {}}) == []
    assert type_changes({}) == []


# -- Elasticsearch 5-era mappings (services/metadata/legacy.py) ------------------------------

ES5 = EngineInfo("elasticsearch", None, "5.6.16")
ES7 = EngineInfo("elasticsearch", "oss", "7.10.2")


def test_string_becomes_keyword_or_text_and_loses_what_the_new_type_refuses() -> None:
    mapping = {"properties": {
        "title": {"type": "string", "analyzer": "english", "omit_norms": True,
                  "fields": {"raw": {"type": "string", "index": "not_analyzed",
                                     "ignore_above": 256, "analyzer": "standard"}}},
        "secret": {"type": "string", "index": "no"},
        "body": {"type": "string", "index": "analyzed", "ignore_above": 10,
                 "fielddata": {"format": "disabled"}},
        "count": {"type": "integer", "index": "not_analyzed"}}}
    out, changes = modernize(mapping, ES5)
    props = out["properties"]
    assert props["title"] == {"type": "text", "analyzer": "english", "norms": False,
                              "fields": {"raw": {"type": "keyword", "ignore_above": 256}}}
    assert props["secret"] == {"type": "keyword", "index": False}
    assert props["body"] == {"type": "text"}
    assert props["count"] == {"type": "integer", "index": True}
    assert changes == ["string → text: title, body", "string → keyword: title.raw, secret",
                       'index: "not_analyzed" → true: count']
    assert mapping["properties"]["title"]["type"] == "string"  # the input is left alone


def test_all_timestamp_ttl_and_include_in_all_are_removed_and_named() -> None:
    mapping = {"_all": {"enabled": True}, "_timestamp": {"enabled": True},
               "_ttl": {"enabled": True, "default": "1d"}, "_routing": {"required": True},
               "properties": {"a": {"type": "keyword", "include_in_all": False},
                              "o": {"properties": {"b": {"type": "text",
                                                         "include_in_all": True}}}}}
    out, changes = modernize(mapping, ES5)
    assert out == {"_routing": {"required": True}, "properties": {
        "a": {"type": "keyword"}, "o": {"properties": {"b": {"type": "text"}}}}}
    assert changes == ["_all removed", "_timestamp removed", "_ttl removed",
                       "include_in_all removed: a, o.b"]


def test_joda_date_formats_become_java_time_ones() -> None:
    assert date_format("dateOptionalTime", joda=True) == "date_optional_time"
    assert date_format("strictDateOptionalTime||epoch_millis", joda=True) == \
        "strict_date_optional_time||epoch_millis"
    assert date_format("basicTTimeNoMillis", joda=False) == "basic_t_time_no_millis"
    # Joda's Y is the year of era (java-time: y), its x the week year (java-time: Y);
    # quoted literals are left alone, and so is a source that already parses java-time.
    assert date_format("YYYY-MM-dd'T'HH:mm||xxxx-'W'ww", joda=True) == \
        "yyyy-MM-dd'T'HH:mm||YYYY-'W'ww"
    assert date_format("YYYY-MM-dd", joda=False) == "YYYY-MM-dd"
    assert date_format("yyyyMMdd", joda=True) == "yyyyMMdd"  # no name, no changed letter
    mapping = {"dynamic_date_formats": ["dateOptionalTime"], "properties": {
        "at": {"type": "date", "format": "dateOptionalTime||YYYY/MM/dd"},
        "plain": {"type": "date", "format": "epoch_second"}}}
    out, changes = modernize(mapping, ES5)
    assert out["properties"]["at"]["format"] == "date_optional_time||yyyy/MM/dd"
    assert out["properties"]["plain"]["format"] == "epoch_second"
    assert out["dynamic_date_formats"] == ["date_optional_time"]
    assert changes == ["dynamic_date_formats ['dateOptionalTime'] → ['date_optional_time']",
                       "date format dateOptionalTime||YYYY/MM/dd → "
                       "date_optional_time||yyyy/MM/dd: at"]
    # ES 7 parses java-time already: only the camelCase name changes.
    out, _ = modernize(mapping, ES7)
    assert out["properties"]["at"]["format"] == "date_optional_time||YYYY/MM/dd"


def test_dynamic_templates_are_modernized_and_a_modern_mapping_is_untouched() -> None:
    mapping = {"dynamic_templates": [{"strings": {"match_mapping_type": "string",
                                                  "mapping": {"type": "string",
                                                              "index": "not_analyzed"}}}]}
    out, changes = modernize(mapping, ES5)
    assert out["dynamic_templates"][0]["strings"]["mapping"] == {"type": "keyword"}
    assert changes == ["string → keyword: dynamic_templates.strings"]
    modern = {"_routing": {"required": True}, "properties": {
        "t": {"type": "text", "fields": {"k": {"type": "keyword"}}},
        "d": {"type": "date", "format": "strict_date_optional_time||epoch_millis"}}}
    assert modernize(modern, ES5) == (modern, [])


def test_many_fields_are_counted_not_all_named() -> None:
    mapping = {"properties": {f"f{n}": {"type": "string"} for n in range(8)}}
    _, changes = modernize(mapping, ES5)
    assert changes == ["string → text: f0, f1, f2, f3, f4 (+3 more)"]
