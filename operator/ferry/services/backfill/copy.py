"""BackfillService: checks, plan, target indices, work items, progress, verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch

from ferry.api.backfill import BackfillSpec
from ferry.api.cluster import ClusterSpec
from ferry.clients.search import classify
from ferry.errors import FerryError, InvalidSpec, ReferenceNotFound
from ferry.services import indices as idx
from ferry.services.backfill.copier import CopySettings, TokenBucket
from ferry.services.backfill.pool import CopyContext
from ferry.services.backfill.workitems import WorkItem, WorkItemStore, coordination_index

# Work items per shard: a shard with more documents than this is split into
# _seq_no ranges so that several workers can share it.
DOCS_PER_ITEM = 50_000
META_KEY = "ferry.dev/backfill"


class TargetIndexNotEmpty(FerryError):
    code = "TargetIndexNotEmpty"
    retryable = False


@dataclass
class IndexPlan:
    source: str
    target: str
    docs: int
    shards: list[tuple[int, int, int]]  # (shard, max_seq_no, docs)
    created: bool = False


@dataclass
class Plan:
    indices: list[IndexPlan] = field(default_factory=list)

    @property
    def docs_total(self) -> int:
        return sum(i.docs for i in self.indices)

    def to_dict(self) -> dict[str, Any]:
        return {"indices": [{"source": i.source, "target": i.target, "docs": i.docs}
                            for i in self.indices]}


@dataclass
class Endpoints:
    source_spec: ClusterSpec
    target_spec: ClusterSpec
    source: OpenSearch
    target: OpenSearch
    source_url: str
    target_url: str


def check_pair(source: ClusterSpec, target: ClusterSpec, spec: BackfillSpec) -> None:
    """What must hold before anything is read or written (not retryable)."""
    if target.read_only:
        raise InvalidSpec(f"target Cluster {spec.target_ref.name} is readOnly: Ferry never "
                          "writes to it", code="TargetReadOnly")
    if source.endpoint.rstrip("/") == target.endpoint.rstrip("/"):
        raise InvalidSpec("source and target Clusters point at the same endpoint "
                          f"({source.endpoint})", code="SameEndpoint")
    if spec.source.snapshot_ref is not None and spec.method == "copy":
        raise InvalidSpec("source.snapshotRef with method copy (reading documents straight "
                          "from snapshot files) is not supported yet; remove it to copy from "
                          "the live source, or use method restore to restore the snapshot",
                          code="SnapshotSourceNotSupported")


def copy_settings(spec: BackfillSpec) -> CopySettings:
    return CopySettings(max_docs=spec.batch.max_docs, max_bytes=spec.batch.max_bytes,
                        op_type="create" if spec.on_conflict == "skip" else "index")


class BackfillService:
    def __init__(self, endpoints: Endpoints, spec: BackfillSpec, uid: str,
                 lease_seconds: float = 60.0) -> None:
        self.ep = endpoints
        self.spec = spec
        self.uid = uid
        self.store = WorkItemStore(endpoints.target, coordination_index(uid), lease_seconds)

    def _guard(self, fn: Any, *args: Any, url: str, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FerryError:
            raise
        except Exception as exc:
            raise classify(exc, url) from None

    # -- planning -----------------------------------------------------------------------

    def plan(self) -> Plan:
        src = self.ep.source
        url = self.ep.source_url
        rows = self._guard(src.cat.indices, url=url, format="json", h="index,status",
                           expand_wildcards="open,hidden")
        names = idx.select([r["index"] for r in rows if r.get("status", "open") == "open"],
                           self.spec.indices)
        if not names:
            raise InvalidSpec(f"no open source index matches {self.spec.indices or ['*']}",
                              code="NoIndicesMatched")
        stats = self._guard(src.indices.stats, url=url, index=",".join(names),
                            level="shards", metric="docs")
        plan = Plan()
        for name in names:
            count = self._guard(src.count, url=url, index=name)["count"]
            shards = []
            for shard_id, copies in stats["indices"][name]["shards"].items():
                primary = next(c for c in copies if c["routing"]["primary"])
                shards.append((int(shard_id), int(primary["seq_no"]["max_seq_no"]),
                               int(primary["docs"]["count"])))
            plan.indices.append(IndexPlan(name, idx.target_name(name, self.spec.target_naming),
                                          count, sorted(shards)))
        return plan

    def items(self, plan: Plan) -> list[WorkItem]:
        items: list[WorkItem] = []
        for index in plan.indices:
            for shard, max_seq, docs in index.shards:
                parts = max(1, -(-docs // DOCS_PER_ITEM))
                # Documents written after planning get higher seq_nos: the last range
                # is open-ended so they are copied too.
                step = max(1, -(-(max_seq + 1) // parts))
                for part in range(parts):
                    lo = part * step
                    hi = (part + 1) * step if part < parts - 1 else 2 ** 62
                    items.append(WorkItem(
                        id=f"{index.source}/{shard}/{part}", index=index.source,
                        target=index.target, shard=shard, seq_from=lo, seq_to=hi,
                        checkpoint=lo - 1, docs_estimate=docs // parts))
        return items

    def ensure_targets(self, plan: Plan) -> None:
        """Create missing target indices from the source's settings and mappings. An
        existing index is written to only if it is ours or onConflict is set."""
        tgt, src = self.ep.target, self.ep.source
        for index in plan.indices:
            exists = self._guard(tgt.indices.exists, url=self.ep.target_url,
                                 index=index.target)
            if exists:
                self._check_existing(index)
                continue
            got = self._guard(src.indices.get, url=self.ep.source_url, index=index.source)
            meta = got[index.source]
            mappings = idx.typeless_mappings(meta.get("mappings") or {})
            mappings["_meta"] = {**(mappings.get("_meta") or {}), META_KEY: self.uid}
            settings = idx.creatable_settings(meta.get("settings") or {},
                                              self.spec.metadata.target_replicas)
            try:
                tgt.indices.create(index=index.target,
                                   body={"settings": settings, "mappings": mappings})
            except Exception as exc:
                error = classify(exc, self.ep.target_url)
                if "resource_already_exists" in error.message:
                    self._check_existing(index)
                    continue
                raise FerryError(f"target refused to create index {index.target}: "
                                 f"{error.message}", code="TargetRejected",
                                 retryable=error.retryable) from None
            index.created = True

    def _check_existing(self, index: IndexPlan) -> None:
        tgt = self.ep.target
        mapping = self._guard(tgt.indices.get_mapping, url=self.ep.target_url,
                              index=index.target)
        meta = (next(iter(mapping.values()))["mappings"].get("_meta") or {})
        if meta.get(META_KEY) == self.uid:
            return  # created by this Backfill earlier (e.g. before an operator restart)
        count = self._guard(tgt.count, url=self.ep.target_url, index=index.target)["count"]
        if count and self.spec.on_conflict is None:
            raise TargetIndexNotEmpty(
                f"target index {index.target} already holds {count} documents; set "
                "onConflict (overwrite or skip) to write into it")

    def prepare(self, check: Callable[[Plan], None] | None = None) -> Plan:
        """Plan, create target indices and work items. Idempotent: a plan already
        recorded in the coordination index is reused as it is. ``check`` sees the plan
        before anything is written and may refuse it."""
        store = self.store
        url = self.ep.target_url
        exists = self._guard(store.exists, url=url)
        if exists:
            recorded = self._guard(store.planned, url=url)
            if recorded is not None:
                return plan_from_record(recorded)
        plan = self.plan()
        if check is not None:
            check(plan)
        self.ensure_targets(plan)
        # Only now, with every check passed, does the Backfill leave its own index on
        # the target; one left by an interrupted planning is started afresh.
        self._guard(store.reset if exists else store.create, url=url)
        self._guard(store.write_plan, self.items(plan), plan.to_dict(), url=url)
        return plan

    def context(self) -> CopyContext:
        return CopyContext(self.ep.source, self.ep.target, self.store,
                           copy_settings(self.spec),
                           TokenBucket(self.spec.throttle.max_docs_per_second))

    # -- verification -------------------------------------------------------------------

    def verify(self, plan: Plan) -> list[dict[str, Any]]:
        """Per-index counts (and sampled content hashes) of source vs target."""
        src, tgt = self.ep.source, self.ep.target
        targets = ",".join(i.target for i in plan.indices)
        self._guard(tgt.indices.refresh, url=self.ep.target_url, index=targets)
        rows = []
        for index in plan.indices:
            source_count = self._guard(src.count, url=self.ep.source_url,
                                       index=index.source)["count"]
            target_count = self._guard(tgt.count, url=self.ep.target_url,
                                       index=index.target)["count"]
            row = {"name": index.source, "target": index.target, "docsTotal": source_count,
                   "targetCount": target_count, "verified": source_count == target_count}
            if self.spec.verify.sample_size and row["verified"]:
                mismatched = self._sample_mismatches(index)
                if mismatched:
                    row["verified"] = False
                    row["sampleMismatches"] = mismatched
            rows.append(row)
        return rows

    def _sample_mismatches(self, index: IndexPlan) -> list[str]:
        size = self.spec.verify.sample_size
        hits = self._guard(self.ep.source.search, url=self.ep.source_url, index=index.source,
                           body={"size": size, "query": {"function_score": {
                               "random_score": {"seed": 42, "field": "_seq_no"}}}})
        docs = hits["hits"]["hits"]
        if not docs:
            return []
        got = self._guard(self.ep.target.mget, url=self.ep.target_url, index=index.target,
                          body={"docs": [{"_id": d["_id"], **({"routing": d["_routing"]}
                                                               if d.get("_routing") else {})}
                                         for d in docs]})
        by_id = {d["_id"]: d for d in got["docs"] if d.get("found")}
        return [d["_id"] for d in docs
                if d["_id"] not in by_id or content_hash(by_id[d["_id"]]["_source"])
                != content_hash(d["_source"])][:20]

    def cleanup(self) -> None:
        self._guard(self.store.delete, url=self.ep.target_url)


def plan_from_record(recorded: dict[str, Any]) -> Plan:
    return Plan([IndexPlan(i["source"], i["target"], i["docs"], [])
                 for i in recorded["indices"]])


def content_hash(source: Any) -> str:
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def missing_reference(kind: str, name: str) -> ReferenceNotFound:
    return ReferenceNotFound(f"{kind} {name} not found in this namespace",
                             code=f"{kind}NotFound")
