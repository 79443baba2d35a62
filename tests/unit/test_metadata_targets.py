"""What differs by target version: mapping parameters removed for Elasticsearch 8, and
the indices method copy cannot move (services/metadata/targets.py)."""

from __future__ import annotations

from ferry.clients.engine import EngineInfo
from ferry.services.metadata.targets import copy_problem, for_target, modernize

ES8 = EngineInfo("elasticsearch", "default", "8.15.5")
ES7 = EngineInfo("elasticsearch", "oss", "7.10.2")
OS2 = EngineInfo("opensearch", "opensearch", "2.19.6")


def test_boost_and_field_names_are_removed_for_elasticsearch_8_only() -> None:
    mapping = {"_field_names": {"enabled": False},
               "properties": {"t": {"type": "text", "boost": 2.0,
                                    "fields": {"raw": {"type": "keyword", "boost": 3}}},
                              "o": {"properties": {"n": {"type": "long", "boost": 1}}},
                              "k": {"type": "keyword"}},
               "dynamic_templates": [{"s": {"match": "*_s", "mapping": {
                   "type": "keyword", "boost": 2}}}]}
    out, notes = for_target(mapping, ES8)
    assert out == {"properties": {"t": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                                  "o": {"properties": {"n": {"type": "long"}}},
                                  "k": {"type": "keyword"}},
                   "dynamic_templates": [{"s": {"match": "*_s",
                                                "mapping": {"type": "keyword"}}}]}
    assert notes == ["boost removed (Elasticsearch 8.15.5 takes no mapping-time boost): "
                     "t, t.raw, o.n, dynamic_templates.s",
                     "_field_names.enabled removed (Elasticsearch 8.15.5 refuses it)"]
    assert mapping["properties"]["t"]["boost"] == 2.0  # the input is left alone
    for target in (ES7, OS2):
        assert for_target(mapping, target) == (mapping, [])


def test_modernize_runs_the_source_transforms_then_the_target_ones() -> None:
    source = EngineInfo("elasticsearch", None, "5.6.16")
    out, notes = modernize({"_all": {"enabled": True}, "properties": {
        "s": {"type": "string", "boost": 2}}}, source, ES8)
    assert out == {"properties": {"s": {"type": "text"}}}
    assert notes[0] == "_all removed" and notes[-1].startswith("boost removed")


def test_indices_a_copy_cannot_move() -> None:
    assert copy_problem({"_source": {"enabled": False}}, "copy", OS2).startswith(
        "_source is disabled")
    assert copy_problem({"_source": {"mode": "disabled"}}, "copy", OS2).startswith(
        "_source is disabled")
    assert "synthetic" in copy_problem({"_source": {"mode": "synthetic"}}, "copy", OS2)
    # A restore keeps the index's own stored fields: _source does not matter there.
    assert copy_problem({"_source": {"mode": "synthetic"}}, "restore", ES8) is None
    vectors = {"properties": {"a": {"properties": {"v": {"type": "dense_vector", "dims": 3}}},
                              "w": {"type": "dense_vector", "dims": 2}}}
    problem = copy_problem(vectors, "copy", OS2)
    assert problem is not None and problem.startswith("dense_vector fields: a.v, w:")
    assert "knn_vector" in problem
    assert copy_problem(vectors, "copy", ES8) is None  # Elasticsearch takes it as it is
    assert copy_problem({"properties": {"t": {"type": "text"}}}, "copy", OS2) is None


def test_copy_pairs_outside_the_table_are_refused_naming_what_the_target_takes() -> None:
    from ferry.clients.engine import EngineInfo
    from ferry.services.metadata.targets import copy_refusal

    def info(engine: str, version: str) -> EngineInfo:
        return EngineInfo(engine, None, version)

    allowed = [(("elasticsearch", "5.6.16"), ("opensearch", "2.19.6")),
               (("elasticsearch", "6.8.23"), ("opensearch", "1.3.20")),
               (("elasticsearch", "7.10.2"), ("elasticsearch", "8.15.5")),
               (("elasticsearch", "8.15.5"), ("opensearch", "2.19.6")),
               (("opensearch", "1.3.20"), ("opensearch", "3.3.2")),
               (("opensearch", "2.19.6"), ("opensearch", "2.19.6")),
               (("opensearch", "2.19.6"), ("elasticsearch", "7.10.2"))]  # the way back
    for source, target in allowed:
        assert copy_refusal(info(*source), info(*target)) is None, (source, target)
    older = copy_refusal(info("opensearch", "2.19.6"), info("opensearch", "1.3.20"))
    assert older is not None and "never goes to an older version" in older
    fork = copy_refusal(info("opensearch", "2.19.6"), info("elasticsearch", "8.15.5"))
    assert fork == ("method copy from OpenSearch 2.19.6 into Elasticsearch 8.15.5 is not "
                    "supported: Elasticsearch 8.x takes copies from Elasticsearch "
                    "5/6/7/8.x only")
    es8_into_1 = copy_refusal(info("elasticsearch", "8.15.5"), info("opensearch", "1.3.20"))
    assert es8_into_1 is not None and "Elasticsearch 5/6/7.x and OpenSearch 1.x" in es8_into_1
    typed = copy_refusal(info("elasticsearch", "6.8.23"), info("elasticsearch", "6.8.23"))
    assert typed is not None and "does not write into Elasticsearch 6.x" in typed
