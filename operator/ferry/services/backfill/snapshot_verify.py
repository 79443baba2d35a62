"""Verification of a copy from a snapshot's files: the target against the reader.

The reader's own count of an index's live documents is what its items walked: an
item's final checkpoint is the number of the shard's documents read, all of them once
the item is done. (The counts a Snapshot recorded are taken before it starts, and are
unset for adopted snapshots, so they serve only as a cross-check when present.) A
shard that could not be read, or an item not done, leaves its index unverified. The
sampled check compares the first documents of each index in the reader's order with
what the target holds under their ids.
"""

from __future__ import annotations

import json
from typing import Any

from ferry.clients.engine import Engine, quote
from ferry.services import indices as idx
from ferry.services.backfill.plan import Plan
from ferry.services.backfill.snapshot_source import SnapshotReader, reading

MAX_MISMATCHES = 20


def reader_counts(target: Engine, coordination: str) -> dict[str, dict[str, int]]:
    """Per source index: documents the reader walked, items in all, items done, and
    shards found unreadable — from the coordination index."""
    target.request("POST", f"/{quote(coordination)}/_refresh", missing_ok=False)
    got = target.request("POST", f"/{quote(coordination)}/_search", missing_ok=False, body={
        "size": 0, "query": {"term": {"kind": "item"}},
        "aggs": {"indices": {"terms": {"field": "index", "size": 10000}, "aggs": {
            "read": {"sum": {"field": "checkpoint"}},
            "done": {"filter": {"term": {"state": "done"}}},
            "unreadable": {"filter": {"range": {"checkpoint": {"lt": 0}}}}}}}})
    return {b["key"]: {"read": int(b["read"]["value"]), "items": int(b["doc_count"]),
                       "done": int(b["done"]["doc_count"]),
                       "unreadable": int(b["unreadable"]["doc_count"])}
            for b in got["aggregations"]["indices"]["buckets"]}


def verify_snapshot(reader: SnapshotReader, target: Engine, coordination: str, plan: Plan,
                    sample_size: int) -> list[dict[str, Any]]:
    """Rows as the live verification makes them (``docsTotal`` is the reader's count),
    with a ``reason`` where the reader's own state already rules the index out."""
    for group in idx.name_groups(i.target for i in plan.indices):
        target.request("POST", f"/{idx.path_expression(group)}/_refresh", missing_ok=False)
    counts = reader_counts(target, coordination)
    rows = []
    for index in plan.indices:
        read = counts.get(index.source, {"read": 0, "items": 0, "done": 0, "unreadable": 0})
        target_count = target.get(f"/{quote(index.target)}/_count")["count"]
        row: dict[str, Any] = {"name": index.source, "target": index.target,
                               "docsTotal": read["read"], "targetCount": target_count,
                               "verified": read["read"] == target_count}
        recorded = reader.files.documents.get(index.source)
        if read["unreadable"]:
            row["verified"] = False
            row["reason"] = f"{read['unreadable']} shards could not be read (see failures)"
        elif read["done"] < read["items"]:
            row["verified"] = False
            row["reason"] = f"{read['items'] - read['done']} work items are not done"
        elif recorded is not None and recorded != read["read"]:
            row["verified"] = False
            row["reason"] = (f"the Snapshot recorded {recorded} documents, the reader found "
                             f"{read['read']}")
        if sample_size and row["verified"]:
            mismatched = sample_mismatches(reader, target, index.source, index.target,
                                           sample_size)
            if mismatched:
                row["verified"] = False
                row["sampleMismatches"] = mismatched
        rows.append(row)
    return rows


def sample_mismatches(reader: SnapshotReader, target: Engine, source: str, target_index: str,
                      size: int) -> list[str]:
    """Ids among the index's first ``size`` documents (reader order) whose source or
    routing differ on the target, or that it lacks."""
    from ferry.services.backfill.copy import content_hash  # copy imports this module

    docs = []
    with reading(f"index {source} of snapshot {reader.files.snapshot}"):
        for shard in range(reader.facts(source).shards):
            for doc in reader.documents(source, shard):
                if doc.source is not None:
                    docs.append(doc)
                if len(docs) >= size:
                    break
            if len(docs) >= size:
                break
    if not docs:
        return []
    got = target.request("POST", f"/{quote(target_index)}/_mget", missing_ok=False, body={
        "docs": [{"_id": d.id, **({"routing": d.routing} if d.routing else {})}
                 for d in docs]})
    found = {(d["_id"], d.get("_routing")): d for d in got["docs"] if d.get("found")}
    bad = []
    for doc in docs:
        hit = found.get((doc.id, doc.routing))
        if hit is None or content_hash(hit["_source"]) != content_hash(json.loads(doc.source)):
            bad.append(doc.id)
    return bad[:MAX_MISMATCHES]
