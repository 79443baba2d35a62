"""Pure pieces of the Backfill engine: index selection, settings, items, progress."""

from __future__ import annotations

from ferry.api.backfill import TargetNaming
from ferry.services import indices
from ferry.services.backfill.copier import (
    BulkOp,
    CopySettings,
    bulk_bodies,
    bulk_outcomes,
    halves,
    page_size,
    redact,
    too_large,
)
from ferry.services.backfill.documents import Hit
from ferry.services.backfill.plan import IndexPlan, Plan, work_items
from ferry.services.backfill.status import RateTracker, conditions_for, progress
from ferry.services.backfill.workitems import OPEN_END, Summary
from ferry.services.metadata.mappings import unify_mappings


def test_select_patterns_exclusions_and_system_indices() -> None:
    names = ["logs-1", "logs-2", "logs-debug-1", "orders", ".kibana", ".ferry-x"]
    assert indices.select(names, []) == ["logs-1", "logs-2", "logs-debug-1", "orders"]
    assert indices.select(names, ["logs-*", "-logs-debug-*"]) == ["logs-1", "logs-2"]
    assert indices.select(names, ["*"]) == ["logs-1", "logs-2", "logs-debug-1", "orders"]
    assert indices.select(names, [".kibana"]) == [".kibana"]


def test_target_naming() -> None:
    naming = TargetNaming(prefix="new-", suffix="-v2", map={"orders": "orders-final"})
    assert indices.target_name("logs", naming) == "new-logs-v2"
    assert indices.target_name("orders", naming) == "orders-final"


def test_creatable_settings_strip_engine_internals() -> None:
    source = {"index": {"number_of_shards": "3", "number_of_replicas": "1",
                        "uuid": "abc", "creation_date": "1", "provided_name": "x",
                        "version": {"created": "7100299"},
                        "routing": {"allocation": {"initial_recovery": {"_id": "n"}}},
                        "analysis": {"analyzer": {"a": {"type": "custom",
                                                        "tokenizer": "standard"}}}}}
    out = indices.creatable_settings(source, replicas=0)
    assert out == {"index.number_of_shards": "3", "index.number_of_replicas": 0,
                   "index.analysis.analyzer.a.type": "custom",
                   "index.analysis.analyzer.a.tokenizer": "standard"}


def test_typeless_mappings() -> None:
    assert unify_mappings({"_doc": {"properties": {"a": {}}}}, "Error")[0] == {
        "properties": {"a": {}}}
    assert unify_mappings({"properties": {"a": {}}}, "Error")[0] == {"properties": {"a": {}}}


def test_big_shards_are_split_into_open_ended_seq_no_ranges() -> None:
    plan = Plan([IndexPlan("big", "big", 120_000, [(0, 119_999, 120_000), (1, 9, 10)])])
    items = work_items(plan)
    ranges = [(i.shard, i.seq_from, i.seq_to) for i in items]
    assert OPEN_END == 2 ** 62
    assert ranges[:3] == [(0, 0, 40_000), (0, 40_000, 80_000), (0, 80_000, 2 ** 62)]
    assert ranges[3] == (1, 0, 2 ** 62)
    assert all(i.checkpoint == i.seq_from - 1 for i in items)


def test_bulk_bodies_respect_max_bytes_and_keep_routing() -> None:
    hits = [Hit("s", str(i), "r" if i == 0 else None, b'{"v":"' + b"x" * 100 + b'"}')
            for i in range(10)]
    chunks = bulk_bodies(hits, "t", CopySettings(max_bytes=400))
    assert sum(len(ids) for ids, _ in chunks) == 10 and len(chunks) >= 4
    assert all(len(body) <= 400 for _, body in chunks)
    assert b'"routing":"r"' in chunks[0][1]


def test_progress_rate_and_eta() -> None:
    rate = RateTracker()
    assert rate.add(0, at=0.0) is None
    assert rate.add(1000, at=10.0) == 100.0
    out = progress(5000, Summary(docs_done=1000), 100.0)
    assert out["percent"] == 20.0 and out["etaSeconds"] == 40
    assert progress(0, Summary(), None)["percent"] == 100.0


def test_conditions_for_phases() -> None:
    running = {c["type"]: c for c in conditions_for([], "Running", "Copying", "", 1)}
    assert running["Progressing"]["status"] == "True"
    assert running["Ready"]["status"] == "False"
    done = {c["type"]: c for c in conditions_for([], "Completed", "Completed", "", 1)}
    assert done["Ready"]["status"] == "True" and done["Progressing"]["status"] == "False"
    failed = {c["type"]: c for c in conditions_for([], "Failed", "TargetReadOnly", "", 1)}
    assert failed["Failed"]["status"] == "True" and failed["Failed"]["reason"] == \
        "TargetReadOnly"


def test_index_names_are_grouped_into_paths_that_fit_a_request_line() -> None:
    names = [f"logs-app-2026.{m:02d}.{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    groups = indices.name_groups(names)
    assert len(names) == 336 and len(",".join(names)) > 4096
    assert [n for g in groups for n in g] == names
    assert len(groups) > 1
    assert all(len(indices.path_expression(g)) <= indices.MAX_PATH_NAMES_BYTES for g in groups)
    assert indices.name_groups(["x" * 5000]) == [["x" * 5000]]
    assert indices.path_expression(["a b", "c/d"]) == "a%20b,c%2Fd"


def test_pages_are_sized_to_fill_a_bulk_by_bytes() -> None:
    settings = CopySettings(max_docs=10_000, max_bytes=1_000_000)
    assert page_size(settings, 0, 0) == 500  # sizes unknown yet: a small first page
    assert page_size(settings, 500, 500 * 300) == 3333  # 300-byte documents
    assert page_size(settings, 500, 500 * 50) == 9_999  # tiny ones: below the result window
    assert page_size(settings, 10, 10 * 900_000) == 1  # huge ones: one per page
    assert page_size(CopySettings(max_docs=50), 500, 500) == 50  # maxDocs still binds


def test_engine_reasons_lose_the_document_values_they_quote() -> None:
    # As OpenSearch 2.19 and Elasticsearch 7.10 word them.
    opensearch = ("mapper_parsing_exception: failed to parse field [n] of type [integer] in "
                  "document with id 'd1'. Preview of field's value: 'jane.doe@example.com' "
                  "(caused by number_format_exception: For input string: "
                  "\"jane.doe@example.com\")")
    elasticsearch = ("mapper_parsing_exception: failed to parse field [born] of type [date] "
                     "in document with id 'd2'. Preview of field's value: '1999-31-31' "
                     "(caused by illegal_argument_exception: failed to parse date field "
                     "[1999-31-31] with format [strict_date_optional_time||epoch_millis])")
    out = redact(opensearch)
    assert "jane.doe" not in out
    assert "failed to parse field [n] of type [integer]" in out
    assert "number_format_exception" in out
    assert "1999-31-31" in elasticsearch
    out = redact(elasticsearch)
    assert "failed to parse field [born] of type [date]" in out
    assert "1999-31-31" not in out
    assert "with format [strict_date_optional_time||epoch_millis]" in out
    assert redact("illegal_argument_exception: can't parse value [secret] for x") == \
        "illegal_argument_exception: can't parse value [<redacted>] for x"


def test_a_body_refused_as_too_large_halves_down_to_single_documents() -> None:
    """What write_batch sends after each HTTP 413: the halves of the refused body, the
    same bytes in the same order, down to one document a body."""
    hits = [Hit("s", f"d{i}", "r" if i == 3 else None, b'{"n":%d}' % i) for i in range(7)]
    settings = CopySettings()
    (ids, whole), = bulk_bodies(hits, "t", settings)
    first, second = halves(hits, "t", settings)
    assert (first[0], second[0]) == (["d0", "d1", "d2"], ["d3", "d4", "d5", "d6"])
    assert first[1] + second[1] == whole
    by_id = {h.id: h for h in hits}
    level, rounds = [(ids, whole)], 0
    while any(len(i) > 1 for i, _ in level):
        level = [part for i, body in level
                 for part in (halves([by_id[d] for d in i], "t", settings) if len(i) > 1
                              else [(i, body)])]
        rounds += 1
    assert rounds == 3  # ceil(log2(7)): each round halves every body
    assert [i for i, _ in level] == [[h.id] for h in hits]
    assert b"".join(body for _, body in level) == whole
    failure = too_large(2_000_000)
    assert failure.status == 413
    assert "document too large for the target (HTTP 413)" in failure.error["reason"]
    assert "2000000 bytes" in failure.error["reason"]


def test_bulk_outcomes_are_read_by_position() -> None:
    """A bulk's items come back in the order of its actions (filtered to status and
    error, no _id): all written reads as None, anything else as one outcome per
    document sent, a missing item as busy (sent again)."""
    assert bulk_outcomes(b'{"errors":false,"items":[{"index":{"status":201}},'
                         b'{"index":{"status":200}}]}', 2) is None
    mixed = bulk_outcomes(b'{"errors":true,"items":[{"create":{"status":201}},'
                          b'{"create":{"status":409,"error":{"type":"version_conflict"}}},'
                          b'{"create":{"status":429,"error":{"type":"rejected"}}}]}', 4)
    assert mixed == [BulkOp(201), BulkOp(409, {"type": "version_conflict"}),
                     BulkOp(429, {"type": "rejected"}), BulkOp(503)]
    # "errors": false but an item short: never taken as all written.
    assert bulk_outcomes(b'{"errors":false,"items":[{"index":{"status":201}}]}', 2) == [
        BulkOp(201), BulkOp(503)]
    # Unfiltered answers (an id that reads "status") are counted by their keys alone.
    assert bulk_outcomes(b'{"errors":false,"items":[{"index":{"_id":"status","status":201}}'
                         b',{"index":{"_id":"x","status":201}}]}', 2) is None
    assert bulk_outcomes(b'{"errors":false,"items":[{"index":{"_id":"status",'
                         b'"status":201}}]}', 2) == [BulkOp(201), BulkOp(503)]
