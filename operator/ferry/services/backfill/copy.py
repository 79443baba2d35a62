"""Method copy's service: target indices checked, work items written once, the copy's
context for the workers, and verification by counts and sampled content.

The target indices themselves are created by the metadata migration (one typed →
typeless conversion, one place that creates indices); this module only checks that
each one is there and may be written to.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from ferry.api.backfill import BackfillSpec
from ferry.clients.engine import quote
from ferry.errors import FerryError, InvalidSpec, TargetRejected
from ferry.services import indices as idx
from ferry.services.backfill.copier import CopySettings
from ferry.services.backfill.documents import DocumentSource, SeqNoWindows, UidCursor, by_uid
from ferry.services.backfill.plan import (
    IndexPlan,
    Plan,
    doc_counts,
    plan_indices,
    uid_work_items,
    work_items,
)
from ferry.services.backfill.pool import CopyContext, WorkerPool
from ferry.services.backfill.snapshot_source import (
    SnapshotDocuments,
    SnapshotItemStore,
    SnapshotReader,
    plan_snapshot,
    snapshot_work_items,
)
from ferry.services.backfill.throttle import TokenBucket
from ferry.services.backfill.workitems import WorkItemStore, coordination_index
from ferry.services.indices import META_KEY
from ferry.services.metadata.mappings import mapping_types
from ferry.services.metadata.targets import copy_refusal
from ferry.services.references import Endpoints

SAMPLE_SEED = 42
MAX_MISMATCHES = 20


class TargetIndexNotEmpty(FerryError):
    code = "TargetIndexNotEmpty"
    retryable = False


# Checkpoints (which renew a worker's lease) are saved this many times per lease.
CHECKPOINTS_PER_LEASE = 4


def copy_settings(spec: BackfillSpec, lease_seconds: float) -> CopySettings:
    return CopySettings(max_docs=spec.batch.max_docs, max_bytes=spec.batch.max_bytes,
                        bulks_in_flight=spec.batch.bulks_in_flight,
                        op_type="create" if spec.on_conflict == "skip" else "index",
                        checkpoint_seconds=lease_seconds / CHECKPOINTS_PER_LEASE)


# How long a plan is reused by the next phases' passes (see CopyService.plan).
PLAN_REUSE_SECONDS = 30.0


def content_hash(source: Any) -> str:
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


class CopyService:
    def __init__(self, endpoints: Endpoints, spec: BackfillSpec, uid: str,
                 lease_seconds: float = 60.0) -> None:
        self.ep = endpoints
        self.spec = spec
        self.uid = uid
        self.lease_seconds = lease_seconds
        self.store = WorkItemStore(endpoints.target, coordination_index(uid), lease_seconds)
        # Method copy from a snapshot's files: no source Cluster is read.
        self.snapshot = SnapshotReader(endpoints.snapshot) \
            if endpoints.snapshot is not None else None
        self._planned: tuple[float, Plan] | None = None

    def plan(self) -> Plan:
        """The indices to copy. Planning, the metadata step and preparing the work
        items each ask, one pass after the other: a plan made moments ago is the same
        answer (the last item of every shard is open-ended, so documents written since
        are copied anyway), and on a thousand indices it costs seconds to make again."""
        if self._planned is not None and time.monotonic() - self._planned[0] < PLAN_REUSE_SECONDS:
            return self._planned[1]
        plan = self._plan()
        self._planned = (time.monotonic(), plan)
        return plan

    def _plan(self) -> Plan:
        if self.snapshot is not None:
            return plan_snapshot(self.snapshot, self.spec)
        assert self.ep.source is not None
        refusal = copy_refusal(self.ep.source.info(), self.ep.target.info())
        if refusal:
            raise InvalidSpec(refusal, code="IncompatibleVersions")
        plan = plan_indices(self.ep.source, self.spec)
        if by_uid(self.ep.source):
            mappings = idx.Mappings(self.ep.source, (i.source for i in plan.indices))
            for index in plan.indices:
                got = next(iter((mappings.get(index.source) or {}).values()), {})
                # Several types (merged into one mapping, or refused by the metadata
                # step): type#id as _id keeps a colliding _id of two types two documents.
                index.fold_types = len(mapping_types(got.get("mappings") or {}) or {}) > 1
        return plan

    def check_targets(self, plan: Plan) -> None:
        """Every target index exists (the metadata migration made it) and is ours, or
        empty, or onConflict allows writing into it."""
        mappings = idx.Mappings(self.ep.target, (i.target for i in plan.indices))
        for index in plan.indices:
            mapping = mappings.get(index.target)
            if mapping is None:
                raise TargetRejected(f"target index {index.target} does not exist: the "
                                     "metadata migration did not create it (see "
                                     "status.metadata)")
            self._check_existing(index, mapping)

    def _check_existing(self, index: IndexPlan, mapping: dict[str, Any]) -> None:
        meta = (next(iter(mapping.values()))["mappings"].get("_meta") or {})
        if meta.get(META_KEY) == self.uid:
            return  # created by this Backfill (now, or before an operator restart)
        count = self.ep.target.get(f"/{quote(index.target)}/_count")["count"]
        if count and self.spec.on_conflict is None:
            raise TargetIndexNotEmpty(
                f"target index {index.target} already holds {count} documents; set "
                "onConflict (overwrite or skip) to write into it")

    def prepare(self, check: Callable[[Plan], None] | None = None) -> Plan:
        """Plan, check target indices and write work items. Idempotent: a plan already
        recorded in the coordination index is reused as it is. ``check`` sees the plan
        before anything is written and may refuse it."""
        store = self.store
        exists = store.exists()
        if exists:
            recorded = store.planned()
            if recorded is not None:
                return Plan.from_dict(recorded)
        plan = self.plan()
        if check is not None:
            check(plan)
        self.check_targets(plan)
        # Only now, with every check passed, does the Backfill leave its own index on
        # the target; one left by an interrupted planning is started afresh.
        if exists:
            store.reset()
        else:
            store.create()
        if self.snapshot is not None:
            items = snapshot_work_items(plan)
        else:
            assert self.ep.source is not None
            items = uid_work_items(plan) if by_uid(self.ep.source) else work_items(plan)
        store.write_plan(items, plan.to_dict())
        return plan

    def context(self) -> CopyContext:
        source: DocumentSource
        store = self.store
        if self.snapshot is not None:
            source = SnapshotDocuments(self.snapshot)
            store = SnapshotItemStore(self.ep.target, store.index, self.lease_seconds, source)
        else:
            assert self.ep.source is not None
            source = SeqNoWindows(self.ep.source)
            if by_uid(self.ep.source):
                recorded = Plan.from_dict(store.planned() or {"indices": []})
                source = UidCursor(self.ep.source, frozenset(
                    i.source for i in recorded.indices if i.fold_types))
        return CopyContext(source, self.ep.target, store,
                           copy_settings(self.spec, self.lease_seconds),
                           TokenBucket(self.spec.throttle.max_docs_per_second))

    def configure(self, pool: WorkerPool, spec: BackfillSpec) -> None:
        """The spec's live fields (batch, onConflict, throttle) into a running pool."""
        pool.configure(copy_settings(spec, self.lease_seconds),
                       spec.throttle.max_docs_per_second)

    # -- verification -------------------------------------------------------------------

    def verify(self, plan: Plan) -> list[dict[str, Any]]:
        """Per-index counts (and sampled content hashes) of source vs target."""
        if self.snapshot is not None:
            from ferry.services.backfill.snapshot_verify import verify_snapshot

            return verify_snapshot(self.snapshot, self.ep.target, self.store.index, plan,
                                   self.spec.verify.sample_size)
        src, tgt = self.ep.source, self.ep.target
        assert src is not None
        for group in idx.name_groups(i.target for i in plan.indices):
            tgt.request("POST", f"/{idx.path_expression(group)}/_refresh", missing_ok=False)
        # Counted per group of names: one request per index would dominate the
        # verification of a migration of many small indices.
        source_counts = doc_counts(src, [i.source for i in plan.indices])
        target_counts = doc_counts(tgt, [i.target for i in plan.indices],
                                   idx.alias_names(tgt))
        rows = []
        for index in plan.indices:
            source_count = source_counts[index.source]
            target_count = target_counts[index.target]
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
        assert self.ep.source is not None
        # ES 5 scores by _uid and knows no "field" (nor _seq_no).
        seed = {"seed": SAMPLE_SEED} if by_uid(self.ep.source) else {
            "seed": SAMPLE_SEED, "field": "_seq_no"}
        hits = self.ep.source.request(
            "POST", f"/{quote(index.source)}/_search", missing_ok=False,
            body={"size": size, "query": {"function_score": {"random_score": seed}}})
        docs = hits["hits"]["hits"]
        if not docs:
            return []
        if index.fold_types:  # the target _id is the source _uid
            docs = [{**d, "_id": f"{d['_type']}#{d['_id']}"} for d in docs]
        got = self.ep.target.request(
            "POST", f"/{quote(index.target)}/_mget", missing_ok=False,
            body={"docs": [{"_id": d["_id"], **({"routing": d["_routing"]}
                                                 if d.get("_routing") else {})}
                           for d in docs]})
        by_id = {d["_id"]: d for d in got["docs"] if d.get("found")}
        return [d["_id"] for d in docs
                if d["_id"] not in by_id or content_hash(by_id[d["_id"]]["_source"])
                != content_hash(d["_source"])][:MAX_MISMATCHES]

    def cleanup(self) -> None:
        self.store.delete()
