"""What a Backfill copies: the selected source indices with their target names and
shards, and the work items they split into. The plan is recorded in the coordination
index, so a restarted operator copies and verifies exactly what was planned."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ferry.api.backfill import BackfillSpec
from ferry.clients.engine import Engine, quote
from ferry.errors import InvalidSpec
from ferry.services import indices as idx
from ferry.services.backfill.workitems import OPEN_END, WorkItem

# Work items per shard: a shard with more documents than this is split into
# _seq_no ranges so that several workers can share it.
DOCS_PER_ITEM = 50_000


@dataclass
class IndexPlan:
    source: str
    target: str
    docs: int
    shards: list[tuple[int, int, int]]  # (shard, max_seq_no, docs)


@dataclass
class Plan:
    indices: list[IndexPlan] = field(default_factory=list)

    @property
    def docs_total(self) -> int:
        return sum(i.docs for i in self.indices)

    def to_dict(self) -> dict[str, Any]:
        return {"indices": [{"source": i.source, "target": i.target, "docs": i.docs}
                            for i in self.indices]}

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> Plan:
        return cls([IndexPlan(i["source"], i["target"], i["docs"], [])
                    for i in recorded["indices"]])


def plan_indices(source: Engine, spec: BackfillSpec) -> Plan:
    """The open source indices the spec selects, with document counts and shards."""
    rows = source.get("/_cat/indices", format="json", h="index,status",
                      expand_wildcards="open,hidden") or []
    names = idx.select([r["index"] for r in rows if r.get("status", "open") == "open"],
                       spec.indices)
    if not names:
        raise InvalidSpec(f"no open source index matches {spec.indices or ['*']}",
                          code="NoIndicesMatched")
    stats: dict[str, Any] = {}
    for group in idx.name_groups(names):
        got = source.get(f"/{idx.path_expression(group)}/_stats/docs", level="shards")
        stats.update(got["indices"])
    counts = doc_counts(source, names)
    plan = Plan()
    for name in names:
        count = counts[name]
        shards = []
        for shard_id, copies in stats[name]["shards"].items():
            primary = next(c for c in copies if c["routing"]["primary"])
            shards.append((int(shard_id), int(primary["seq_no"]["max_seq_no"]),
                           int(primary["docs"]["count"])))
        plan.indices.append(IndexPlan(name, idx.target_name(name, spec.target_naming),
                                      count, sorted(shards)))
    return plan


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
