"""What a Backfill copies: the selected source indices with their target names and
shards (closed ones apart: refused or skipped, as spec.closedIndices says), and the
work items they split into. The plan is recorded in the coordination
index, so a restarted operator copies and verifies exactly what was planned."""

from __future__ import annotations

import glob
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ferry.api.backfill import BackfillSpec
from ferry.clients.engine import Engine, quote
from ferry.errors import FerryError, InvalidSpec
from ferry.services import indices as idx
from ferry.services.backfill.workitems import OPEN_END, WorkItem
from ferry.services.metadata.report import INDEX_CLOSED

# Work items per shard: a shard with more documents than this is split into
# _seq_no ranges so that several workers can share it.
DOCS_PER_ITEM = 50_000


class IndexClosed(FerryError):
    """A selected source index is closed (its documents cannot be read) and
    spec.closedIndices is Fail."""

    code = INDEX_CLOSED
    retryable = False


@dataclass
class IndexPlan:
    source: str
    target: str
    docs: int
    shards: list[tuple[int, int, int]]  # (shard, max_seq_no, docs)
    # Several mapping types merged (ES 5, multiTypeMappings: Merge): each document's
    # target _id is its _uid, type#id (see docs/backfill.md).
    fold_types: bool = False


@dataclass
class Plan:
    indices: list[IndexPlan] = field(default_factory=list)
    # Closed source indices the spec selects: never copied (spec.closedIndices says
    # whether they fail the Backfill); reported in the metadata report.
    closed: list[str] = field(default_factory=list)

    @property
    def docs_total(self) -> int:
        return sum(i.docs for i in self.indices)

    def to_dict(self) -> dict[str, Any]:
        return {"indices": [{"source": i.source, "target": i.target, "docs": i.docs,
                             **({"foldTypes": True} if i.fold_types else {})}
                            for i in self.indices]}

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> Plan:
        return cls([IndexPlan(i["source"], i["target"], i["docs"], [],
                              i.get("foldTypes", False)) for i in recorded["indices"]])


def plan_indices(source: Engine, spec: BackfillSpec) -> Plan:
    """The open source indices the spec selects, with document counts and shards, and
    the closed ones it selects (refused here unless spec.closedIndices is Skip or the
    metadata mode Evaluate, which reports them)."""
    # Closed indices are listed too (status "close"), so that one the spec selects is
    # reported rather than silently left out. Hidden ones (ES 7.7+, every OpenSearch)
    # show only when asked for; ES 5/6 list every index and refuse "hidden".
    every = {"expand_wildcards": "all"} if source.info().at_least((7, 7)) else {}
    rows = source.get("/_cat/indices", format="json", h="index,status", **every) or []
    selected = idx.select([r["index"] for r in rows],
                          behind_aliases(source, list(spec.indices)))
    closed = {r["index"] for r in rows if r.get("status") == "close"}
    names = [n for n in selected if n not in closed]
    shut = [n for n in selected if n in closed]
    if shut and spec.closed_indices == "Fail" and spec.metadata.mode != "Evaluate":
        raise IndexClosed(closed_message(shut))
    if not names:
        skipped = f" ({len(shut)} closed ones skipped: {', '.join(shut[:5])})" if shut else ""
        raise InvalidSpec(f"no open source index matches {spec.indices or ['*']}{skipped}",
                          code="NoIndicesMatched")
    stats: dict[str, Any] = {}
    for group in idx.name_groups(names):
        got = source.get(f"/{idx.path_expression(group)}/_stats/docs", level="shards")
        stats.update(got["indices"])
    counts = doc_counts(source, names)
    plan = Plan(closed=shut)
    for name in names:
        count = counts[name]
        shards = []
        for shard_id, copies in stats[name]["shards"].items():
            primary = next(c for c in copies if c["routing"]["primary"])
            # ES 5 shards have no seq_no (they are read by _uid, not in windows).
            seq = (primary.get("seq_no") or {}).get("max_seq_no", -1)
            shards.append((int(shard_id), int(seq), int(primary["docs"]["count"])))
        plan.indices.append(IndexPlan(name, idx.target_name(name, spec.target_naming),
                                      count, sorted(shards)))
    return plan


def closed_message(names: list[str]) -> str:
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    what = "source index is" if len(names) == 1 else "source indices are"
    return (f"{len(names)} selected {what} closed and cannot be read: {shown}. Open it on "
            "the source, leave it out of spec.indices, or set spec.closedIndices: Skip to "
            "copy the others without it")


def doc_counts(engine: Engine, names: list[str], aliases: Collection[str] = ()
               ) -> dict[str, int]:
    """Top-level documents per index (what ``_count`` says: nested documents do not
    count), in one request per group of names rather than one per index: a terms
    aggregation on ``_index``, where an index without documents has no bucket. Names
    among ``aliases`` are counted on their own (their bucket would carry the name of
    the index behind them)."""
    counts = {name: int(engine.get(f"/{quote(name)}/_count")["count"])
              for name in names if name in aliases}
    for group in idx.name_groups(n for n in names if n not in aliases):
        got = engine.request("POST", f"/{idx.path_expression(group)}/_search",
                             missing_ok=False, body={"size": 0, "aggs": {"by_index": {
                                 "terms": {"field": "_index", "size": len(group)}}}})
        buckets = {b["key"]: int(b["doc_count"])
                   for b in got["aggregations"]["by_index"]["buckets"]}
        counts.update({name: buckets.get(name, 0) for name in group})
    return counts


def behind_aliases(source: Engine, patterns: list[str]) -> list[str]:
    """The patterns, each one that names an alias exactly (or excludes one: ``-name``)
    replaced by the indices behind that alias: an alias selects what it points at, each
    index copied under its own target name (and the alias recreated over them by the
    metadata migration). Wildcards match index names only: ``*`` must not drag in the
    indices behind every alias, system ones among them."""
    if not patterns:
        return patterns
    behind: dict[str, list[str]] = {}
    for row in source.get("/_cat/aliases", format="json", h="alias,index") or []:
        behind.setdefault(row["alias"], []).append(row["index"])
    resolved: list[str] = []
    for pattern in patterns:
        sign = "-" if pattern.startswith("-") else ""
        indices = behind.get(pattern[len(sign):])
        # (Index names may hold "[", which fnmatch would read as a class.)
        resolved += [sign + glob.escape(i) for i in sorted(indices)] if indices else [pattern]
    return resolved


def work_items(plan: Plan) -> list[WorkItem]:
    """One item per shard, big shards split into _seq_no ranges; the last range of a
    shard is open-ended so documents written after planning are copied too."""
    items: list[WorkItem] = []
    for index in plan.indices:
        for shard, max_seq, docs in index.shards:
            parts = max(1, -(-docs // DOCS_PER_ITEM))
            step = max(1, -(-(max_seq + 1) // parts))
            for part in range(parts):
                lo = part * step
                hi = (part + 1) * step if part < parts - 1 else OPEN_END
                items.append(WorkItem(
                    id=f"{index.source}/{shard}/{part}", index=index.source,
                    target=index.target, shard=shard, seq_from=lo, seq_to=hi,
                    checkpoint=lo - 1, docs_estimate=docs // parts))
    return items


def uid_work_items(plan: Plan) -> list[WorkItem]:
    """One item per shard of a source read by ``_uid`` (Elasticsearch 5: no _seq_no to
    split by); its checkpoint is the cursor, "" before the first page."""
    return [WorkItem(id=f"{index.source}/{shard}/0", index=index.source,
                     target=index.target, shard=shard, seq_from=0, seq_to=OPEN_END,
                     checkpoint="", docs_estimate=docs)
            for index in plan.indices for shard, _, docs in index.shards]
