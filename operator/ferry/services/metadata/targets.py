"""What differs by the target's (and, for method copy, the pair's) version: mapping
parameters a newer target no longer takes, removed and reported, and the indices a
copy cannot move into the target as they are.

- Elasticsearch 8 targets: a field's ``boost`` (mapping-time boosts are gone from
  indices created by 8.0: "Unknown parameter [boost]") and ``_field_names.enabled``
  ("has been deprecated and removed") are removed. Settings an engine refuses by name
  need no list here: the metadata service learns them from the refusal, removes and
  reports them.
- OpenSearch 3 targets (Lucene 10) need no mapping transform for what OpenSearch 1/2 and
  Elasticsearch 7 write (``boost`` and ``_field_names`` are still taken); the settings
  it removed (``index.store.hybrid.mmap.extensions``,
  ``index.merge.policy.max_merge_at_once_explicit``) are refused by name, so the same
  refusal path removes and reports them.
- Method copy reads documents back from ``_source``: an index whose ``_source`` is
  disabled (``enabled: false``, or Elasticsearch 8's ``mode: disabled``) or synthetic
  (``mode: synthetic``: rebuilt from doc values, not kept as sent — arrays come back
  sorted, keyword arrays deduplicated, dotted field names as objects) cannot be copied
  as it was written.
- Elasticsearch's ``dense_vector`` has no OpenSearch counterpart Ferry maps it to
  (OpenSearch's vector type is the k-NN plugin's ``knn_vector``, with other parameters).
- Which pairs method copy takes at all (:data:`COPIES`), refused before anything is
  written (restore has its own table, in services/backfill/restore.py).

Free of I/O; unit-tested in tests/unit/test_metadata_targets.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from ferry.clients.engine import EngineInfo, engine_name
from ferry.services.metadata.legacy import modernize as modernize_source

SHOWN = 5  # field names shown per kind of change; the rest are counted


def _fields(mapping: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, field mapping) of every field, multi-fields and object children
    included, and of every dynamic template's mapping."""
    for key in ("properties", "fields"):
        children = mapping.get(key)
        if not isinstance(children, Mapping):
            continue
        for name, child in children.items():
            if isinstance(child, dict):
                where = f"{path}.{name}" if path else name
                yield where, child
                yield from _fields(child, where)
    if not path:
        for entry in mapping.get("dynamic_templates") or []:
            for name, template in (entry.items() if isinstance(entry, dict) else ()):
                inner = template.get("mapping") if isinstance(template, dict) else None
                if isinstance(inner, dict):
                    yield f"dynamic_templates.{name}", inner
                    yield from _fields(inner, f"dynamic_templates.{name}")


def _named(what: str, names: list[str]) -> str:
    more = f" (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return f"{what}: {', '.join(names[:SHOWN])}{more}"


def for_target(mapping: Mapping[str, Any], target: EngineInfo
               ) -> tuple[dict[str, Any], list[str]]:
    """A typeless mapping without the parameters ``target`` refuses, and what changed."""
    out = copy.deepcopy(dict(mapping))
    notes: list[str] = []
    if target.engine == "elasticsearch" and target.at_least((8, 0)):
        boosted = [path for path, field in _fields(out) if field.pop("boost", None) is not None]
        if boosted:
            notes.append(_named(f"boost removed ({target.name} {target.version} takes no "
                                "mapping-time boost)", boosted))
        names = out.get("_field_names")
        if isinstance(names, dict) and names.pop("enabled", None) is not None:
            if not names:
                out.pop("_field_names")
            notes.append(f"_field_names.enabled removed ({target.name} {target.version} "
                         "refuses it)")
    return out, notes


def modernize(mapping: Mapping[str, Any], source: EngineInfo, target: EngineInfo
              ) -> tuple[dict[str, Any], list[str]]:
    """The source's legacy parameters made current (``legacy.modernize``), then those
    the target's version refuses removed: one report line per kind of change."""
    current, notes = modernize_source(mapping, source)
    current, more = for_target(current, target)
    return current, notes + more


def copy_problem(mapping: Mapping[str, Any], method: str, target: EngineInfo) -> str | None:
    """Why an index with this (typeless) mapping cannot be migrated into ``target`` by
    ``method``, or None. The ``_source`` checks hold for method copy only."""
    source_field = (mapping.get("_source") or {}) if method == "copy" else {}
    if source_field.get("enabled") is False or source_field.get("mode") == "disabled":
        return ("_source is disabled: the copy method reads documents back from _source, "
                "so they cannot be copied; use method restore, or exclude the index")
    if source_field.get("mode") == "synthetic":
        return ("_source is synthetic (_source.mode: synthetic): the source rebuilds "
                "documents from doc values instead of keeping them as sent, so a copy "
                "would not hold the documents as written; use method restore where the "
                "engines allow it, or exclude the index")
    if target.engine == "opensearch":
        vectors = [path for path, field in _fields(mapping)
                   if field.get("type") == "dense_vector"]
        if vectors:
            return (_named("dense_vector fields", vectors) + ": OpenSearch has no "
                    "dense_vector type (its vector type is the k-NN plugin's knn_vector, "
                    "with other parameters) and Ferry does not transform one into the "
                    "other yet; exclude the index, or create it on the target yourself")
    return None


# Method copy: (target engine, major) -> the (engine, majors) of the sources Ferry copies
# into it (what its transforms cover and the version matrix proves or aims at). A copy
# never goes to an older version of the same engine; back from OpenSearch only into
# Elasticsearch 7 (the fork's own line: a way back after a migration); and Ferry writes
# typeless mappings, so no Elasticsearch 5/6 target.
COPIES: dict[tuple[str, int], tuple[tuple[str, tuple[int, ...]], ...]] = {
    ("opensearch", 1): (("elasticsearch", (5, 6, 7)), ("opensearch", (1,))),
    ("opensearch", 2): (("elasticsearch", (5, 6, 7, 8)), ("opensearch", (1, 2))),
    ("opensearch", 3): (("elasticsearch", (5, 6, 7, 8)), ("opensearch", (1, 2, 3))),
    ("elasticsearch", 7): (("elasticsearch", (5, 6, 7)), ("opensearch", (1, 2))),
    ("elasticsearch", 8): (("elasticsearch", (5, 6, 7, 8)),),
}


def copy_refusal(source: EngineInfo, target: EngineInfo) -> str | None:
    """Why Ferry does not copy documents from ``source`` into ``target``, or None."""
    why = (f"method copy from {source.name} {source.version} into {target.name} "
           f"{target.version} is not supported: ")
    if source.engine == target.engine and source.release[:2] > target.release[:2]:
        return why + ("a copy never goes to an older version (the source's mappings and "
                      "settings may not exist there)")
    takes = COPIES.get((target.engine, target.release[0]))
    if takes is None:
        return why + f"Ferry does not write into {target.name} {target.release[0]}.x"
    if any(source.engine == e and source.release[0] in majors for e, majors in takes):
        return None
    sources = " and ".join(f"{engine_name(e)} {'/'.join(str(m) for m in majors)}.x"
                           for e, majors in takes)
    return why + f"{target.name} {target.release[0]}.x takes copies from {sources} only"
