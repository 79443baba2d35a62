"""Work items of a Backfill, held in a small coordination index on the target.

An item is one shard of one source index, optionally one ``_seq_no`` range of it.
Any number of workers — threads in the operator, or `ferry worker` processes — share
the items: a worker claims items, each under a lease (holder + expiry), with optimistic
concurrency (``if_seq_no``/``if_primary_term``) — several small ones in one claim, so
that they share their coordination requests — and renews the lease with every
checkpoint; a crashed worker's items are claimed again once their leases expire,
resuming from their checkpoints. Beside the items it keeps the whole plan, the
original settings of the target indices tuned for the copy, and one member document per
process copying (holder + expiry, renewed like a lease) by which the processes share
the throttle.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from ferry.api.common import MAX_STATUS_LIST
from ferry.clients.engine import Conflict, Engine, Refused, quote
from ferry.errors import TargetRejected

PLAN_ID = "plan"
# The original settings of tuned target indices (services/backfill/tuning.py).
TUNING_ID = "tuning"
# A process copying for the Backfill (its throttle share; services/backfill/pool.py).
MEMBER_PREFIX = "member-"
# The end of an open-ended item: documents written after planning get higher _seq_nos,
# so a shard's last range has no upper bound (any value above every real _seq_no).
OPEN_END = 2 ** 62
FAILURES_PER_ITEM = MAX_STATUS_LIST
# A claim takes several small items at once, so that their coordination requests
# (search, read, conditional write) are shared: at most this many items, ...
CLAIM_ITEMS = 8
# ... holding no more documents than this between them (by the plan's estimate), so the
# last one starts well inside its lease; never more than a CLAIM_SHARE-th of what is
# claimable, so other workers are not left idle.
CLAIM_DOCS = 20_000
CLAIM_SHARE = 4
CLAIM_FILTER = "errors,items.*._id,items.*.status,items.*._seq_no,items.*._primary_term"

MAPPING = {
    "dynamic": "strict",
    "properties": {
        "kind": {"type": "keyword"},
        "index": {"type": "keyword"},
        "target": {"type": "keyword"},
        "shard": {"type": "integer"},
        "seq_from": {"type": "long"},
        "seq_to": {"type": "long"},
        "state": {"type": "keyword"},
        "holder": {"type": "keyword"},
        "lease_until": {"type": "long"},
        "checkpoint": {"type": "long"},
        "cursor": {"type": "keyword", "index": False, "doc_values": False},
        "docs_estimate": {"type": "long"},
        "docs_done": {"type": "long"},
        "docs_failed": {"type": "long"},
        "bytes_done": {"type": "long"},
        "claims": {"type": "integer"},
        "updated": {"type": "long"},
        "failures": {"type": "object", "enabled": False},
        "plan": {"type": "object", "enabled": False},
        "tuning": {"type": "object", "enabled": False},
    },
}


def now_ms() -> int:
    return int(time.time() * 1000)


def coordination_index(uid: str) -> str:
    return f".ferry-backfill-{uid}"


def _position(checkpoint: int | str) -> dict[str, Any]:
    """A string checkpoint is kept in ``cursor`` (a long cannot hold it), ``checkpoint``
    then -1."""
    if isinstance(checkpoint, str):
        return {"checkpoint": -1, "cursor": checkpoint}
    return {"checkpoint": checkpoint}


@dataclass
class WorkItem:
    id: str
    index: str
    target: str
    shard: int
    seq_from: int
    seq_to: int
    # Where the item's reader is: a _seq_no (live ES 6+/OpenSearch), a count of documents
    # (snapshot files), or a string cursor (ES 5.6: the last _uid handed over).
    checkpoint: int | str
    docs_estimate: int = 0
    docs_done: int = 0
    docs_failed: int = 0
    bytes_done: int = 0
    claims: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    seq_no: int = 0
    primary_term: int = 0
    # When the lease this process holds ends (epoch ms; 0: none held); not stored.
    lease_until: int = 0

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> WorkItem:
        s = hit["_source"]
        return cls(id=hit["_id"], index=s["index"], target=s["target"], shard=s["shard"],
                   seq_from=s["seq_from"], seq_to=s["seq_to"],
                   checkpoint=s.get("cursor", s["checkpoint"]),
                   docs_estimate=s.get("docs_estimate", 0), docs_done=s.get("docs_done", 0),
                   docs_failed=s.get("docs_failed", 0), bytes_done=s.get("bytes_done", 0),
                   claims=s.get("claims", 0), failures=s.get("failures") or [],
                   seq_no=hit["_seq_no"], primary_term=hit["_primary_term"])

    def source(self, state: str, holder: str | None, lease_until: int) -> dict[str, Any]:
        return {"kind": "item", "index": self.index, "target": self.target,
                "shard": self.shard, "seq_from": self.seq_from, "seq_to": self.seq_to,
                "state": state, "holder": holder, "lease_until": lease_until,
                **_position(self.checkpoint), "docs_estimate": self.docs_estimate,
                "docs_done": self.docs_done, "docs_failed": self.docs_failed,
                "bytes_done": self.bytes_done, "claims": self.claims,
                "failures": self.failures[-FAILURES_PER_ITEM:], "updated": now_ms()}


def claim_count(estimates: list[int], claimable: int, most: int = CLAIM_ITEMS,
                docs: int = CLAIM_DOCS) -> int:
    """How many of the first candidates (their documents by estimate, in claim order) one
    claim takes: at least one; then while they hold at most ``docs`` documents between
    them, no more than ``most`` and no more than a CLAIM_SHARE-th of the ``claimable``
    items."""
    limit = max(1, min(most, len(estimates), claimable // CLAIM_SHARE))
    taken, held = 1, estimates[0] if estimates else 0
    while taken < limit and held + estimates[taken] <= docs:
        held += estimates[taken]
        taken += 1
    return taken


def renewal_due(item: WorkItem, now: int, lease_ms: int) -> bool:
    """Whether a claimed item waiting for its turn needs its lease renewed before it is
    started: half of a lease or less is left (or it is already over)."""
    return item.lease_until - now <= lease_ms // 2


@dataclass
class Summary:
    total: int = 0
    waiting: int = 0
    in_progress: int = 0
    completed: int = 0
    docs_done: int = 0
    docs_failed: int = 0
    bytes_done: int = 0
    holders: int = 0
    per_index: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.completed == self.total


class WorkItemStore:
    """The coordination index of one Backfill. Every call is blocking and raises a
    classified FerryError (the engine layer's), so callers never see client errors."""

    def __init__(self, engine: Engine, index: str, lease_seconds: float = 60.0) -> None:
        self.engine = engine
        self.index = index
        self.lease_ms = int(lease_seconds * 1000)
        self._path = f"/{quote(index)}"
        # Items still claimable after this store's last claim (None before it): 0 means
        # the last ones are being copied. An upper bound when set (the search is
        # near-real-time), until a lease expires or an item is released.
        self.left_to_claim: int | None = None

    def _doc(self, doc_id: str) -> str:
        return f"{self._path}/_doc/{quote(doc_id)}"

    def _get(self, doc_id: str) -> dict[str, Any] | None:
        return self.engine.request("GET", self._doc(doc_id))

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.engine.request("POST", f"{self._path}/_search", body=body,
                                   missing_ok=False)

    # -- planning -----------------------------------------------------------------------

    def exists(self) -> bool:
        return self.engine.exists(self._path)

    def create(self) -> None:
        body = {"settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1",
                                       "hidden": True, "refresh_interval": "1s"}},
                "mappings": MAPPING}
        try:
            self.engine.request("PUT", self._path, body=body)
        except Refused as exc:
            if "already_exists" not in exc.text:
                raise

    def planned(self) -> dict[str, Any] | None:
        doc = self._get(PLAN_ID)
        return doc["_source"].get("plan") if doc and doc.get("found", True) else None

    def write_plan(self, items: list[WorkItem], plan: dict[str, Any]) -> None:
        """Items first, then the plan marker: workers start only once the marker exists,
        so an interrupted planning is redone from scratch (see reset)."""
        lines: list[dict[str, Any]] = []
        for item in items:
            lines += [{"index": {"_index": self.index, "_id": item.id}},
                      item.source("waiting", None, 0)]
        for start in range(0, len(lines), 2000):
            body = "".join(json.dumps(line) + "\n" for line in lines[start:start + 2000])
            result = self.engine.request("POST", "/_bulk", body=body)
            if result.get("errors"):
                raise TargetRejected(f"the target refused work items of {self.index}",
                                     retryable=True)
        # One forced refresh shows the marker and every item to the workers' searches
        # at once; refresh=wait_for would wait up to a refresh interval per request.
        self.engine.request("PUT", self._doc(PLAN_ID),
                            body={"kind": "plan", "plan": plan, "updated": now_ms()},
                            params={"refresh": "true"})

    def tuning(self) -> dict[str, Any] | None:
        """The tuning record (original settings of tuned target indices), or None."""
        doc = self._get(TUNING_ID)
        return doc["_source"].get("tuning") if doc and doc.get("found", True) else None

    def write_tuning(self, record: dict[str, Any]) -> None:
        body = {"kind": "tuning", "tuning": record, "updated": now_ms()}
        try:
            self.engine.request("PUT", self._doc(TUNING_ID), body=body, missing_ok=False)
        except Refused as exc:
            if "strict_dynamic_mapping" not in exc.text:
                raise
            # A coordination index made by an operator that predates tuning.
            self.engine.request("PUT", f"{self._path}/_mapping", missing_ok=False,
                                body={"properties": {"tuning": MAPPING["properties"]["tuning"]}})
            self.engine.request("PUT", self._doc(TUNING_ID), body=body, missing_ok=False)

    def reset(self) -> None:
        self.delete()
        self.create()

    def delete(self) -> None:
        self.engine.request("DELETE", self._path)

    # -- working ------------------------------------------------------------------------

    def _claimable_query(self) -> dict[str, Any]:
        return {"bool": {"filter": [{"term": {"kind": "item"}}], "should": [
            {"term": {"state": "waiting"}},
            {"bool": {"filter": [{"term": {"state": "leased"}},
                                 {"range": {"lease_until": {"lt": now_ms()}}}]}},
        ], "minimum_should_match": 1}}

    def claim_batch(self, holder: str, most: int = CLAIM_ITEMS) -> list[WorkItem]:
        """Claim up to ``most`` waiting or expired items (as :func:`claim_count` says),
        none when there is none right now. Each is leased to ``holder`` on its own, by a
        conditional write, so a crash leaves every one of them to expire and be claimed
        again.

        The search is near-real-time: with many small items every hit of a page can have
        been taken since the last refresh. Workers then look again at a refreshed view
        rather than idle, and each orders equal items by its own random seed so that
        concurrent workers do not all race for the same few."""
        for _ in range(2):
            hits, claimable = self._claimable(holder)
            if not hits:
                self.left_to_claim = 0
                return []
            while hits:
                count = claim_count([h["_source"].get("docs_estimate", 0) for h in hits],
                                    claimable, most)
                items = self._claim_hits(hits[:count], holder)
                if items:
                    self.left_to_claim = max(0, claimable - len(items))
                    return items
                hits = hits[count:]  # every one taken meanwhile: the next ones
            self.engine.request("POST", f"{self._path}/_refresh", missing_ok=False)
        self.left_to_claim = 0
        return []

    def _claimable(self, holder: str) -> tuple[list[dict[str, Any]], int]:
        """A page of claimable items in claim order, and how many are claimable."""
        found = self._search({
            "size": 50, "seq_no_primary_term": True,
            "query": {"function_score": {
                "query": self._claimable_query(), "boost_mode": "replace",
                "random_score": {"seed": zlib.crc32(holder.encode()), "field": "_seq_no"}}},
            "sort": [{"claims": "asc"}, {"docs_estimate": "desc"}, "_score"]})
        total = found["hits"]["total"]
        return list(found["hits"]["hits"]), int(total["value"] if isinstance(total, dict)
                                                else total)

    def _claim_hits(self, hits: list[dict[str, Any]], holder: str) -> list[WorkItem]:
        """Lease the hits that are still claimable: read again in one realtime request
        (the search is near-real-time; ``_mget`` is not, and carries the seq_no each
        conditional write is checked against), then written in one bulk, each write
        conditional on its own."""
        got = self.engine.request("POST", f"{self._path}/_mget", missing_ok=False,
                                  body={"ids": [h["_id"] for h in hits]})
        now = now_ms()
        items = [WorkItem.from_hit(d) for d in got["docs"] if d.get("found")
                 and d["_source"]["state"] != "done"
                 and not (d["_source"]["state"] == "leased"
                          and d["_source"]["lease_until"] >= now)]
        if not items:
            return []
        lease_until = now + self.lease_ms
        lines: list[dict[str, Any]] = []
        for item in items:
            item.claims += 1
            lines += [{"index": {"_index": self.index, "_id": item.id,
                                 "if_seq_no": item.seq_no,
                                 "if_primary_term": item.primary_term}},
                      item.source("leased", holder, lease_until)]
        answer = self.engine.request(
            "POST", "/_bulk", body="".join(json.dumps(line) + "\n" for line in lines),
            params={"filter_path": CLAIM_FILTER}, missing_ok=False)
        written = {op["_id"]: op for entry in answer.get("items") or []
                   for op in entry.values() if op.get("status", 500) < 300}
        claimed = []
        for item in items:
            op = written.get(item.id)  # missing: another worker was faster (409)
            if op is not None:
                item.seq_no, item.primary_term = op["_seq_no"], op["_primary_term"]
                item.lease_until = lease_until
                claimed.append(item)
        return claimed

    def _save(self, item: WorkItem, state: str, holder: str | None, lease_until: int) -> bool:
        """A conditional write (``if_seq_no``): False when someone else wrote it first."""
        try:
            result = self.engine.request(
                "PUT", self._doc(item.id), body=item.source(state, holder, lease_until),
                params={"if_seq_no": item.seq_no, "if_primary_term": item.primary_term},
                missing_ok=False)
        except Conflict:
            return False
        item.seq_no, item.primary_term = result["_seq_no"], result["_primary_term"]
        item.lease_until = lease_until if state == "leased" else 0
        return True

    def checkpoint(self, item: WorkItem, holder: str) -> bool:
        """Record progress and renew the lease; False means the lease was lost."""
        return self._save(item, "leased", holder, now_ms() + self.lease_ms)

    def release(self, item: WorkItem) -> bool:
        return self._save(item, "waiting", None, 0)

    def complete(self, item: WorkItem, holder: str | None = None) -> bool:
        # The last holder stays on a done item (no lease: state "done" is never claimed),
        # so the coordination index tells who copied what.
        return self._save(item, "done", holder, 0)

    def all_done(self) -> bool:
        return self.summary(with_failures=False).finished

    # -- members: the processes sharing the throttle --------------------------------------

    def join(self, member: str, *, renewal: bool = False) -> int:
        """Register (or renew) a process copying for this Backfill, live for one lease;
        returns how many are live now. A first registration is refreshed at once, so
        every other member's next count sees it."""
        body = {"kind": "member", "holder": member, "lease_until": now_ms() + self.lease_ms,
                "updated": now_ms()}
        self.engine.request("PUT", self._doc(MEMBER_PREFIX + member), body=body,
                            params=None if renewal else {"refresh": "true"},
                            missing_ok=False)
        return self.members()

    def members(self) -> int:
        found = self.engine.request("POST", f"{self._path}/_count", missing_ok=False, body={
            "query": {"bool": {"filter": [{"term": {"kind": "member"}},
                                          {"range": {"lease_until": {"gte": now_ms()}}}]}}})
        return int(found["count"])

    def leave(self, member: str) -> None:
        self.engine.request("DELETE", self._doc(MEMBER_PREFIX + member),
                            params={"refresh": "true"})

    # -- reporting ----------------------------------------------------------------------

    def summary(self, *, with_failures: bool = True) -> Summary:
        self.engine.request("POST", f"{self._path}/_refresh", missing_ok=False)
        now = now_ms()
        result = self._search({
            "size": 0, "query": {"term": {"kind": "item"}},
            "aggs": {
                "states": {"terms": {"field": "state", "size": 10}},
                "live": {"filter": {"bool": {"filter": [
                    {"term": {"state": "leased"}}, {"range": {"lease_until": {"gte": now}}}]}},
                    "aggs": {"holders": {"cardinality": {"field": "holder"}}}},
                "docs": {"sum": {"field": "docs_done"}},
                "failed": {"sum": {"field": "docs_failed"}},
                "bytes": {"sum": {"field": "bytes_done"}},
                "indices": {"terms": {"field": "index", "size": 10000}, "aggs": {
                    "docs": {"sum": {"field": "docs_done"}},
                    "failed": {"sum": {"field": "docs_failed"}},
                    "estimate": {"sum": {"field": "docs_estimate"}}}},
            }})
        aggs = result["aggregations"]
        states = {b["key"]: b["doc_count"] for b in aggs["states"]["buckets"]}
        live = aggs["live"]["doc_count"]
        summary = Summary(
            total=sum(states.values()),
            completed=states.get("done", 0),
            in_progress=live,
            waiting=states.get("waiting", 0) + states.get("leased", 0) - live,
            docs_done=int(aggs["docs"]["value"]),
            docs_failed=int(aggs["failed"]["value"]),
            bytes_done=int(aggs["bytes"]["value"]),
            holders=int(aggs["live"]["holders"]["value"]),
            per_index={b["key"]: {"docs": int(b["docs"]["value"]),
                                  "failed": int(b["failed"]["value"])}
                       for b in aggs["indices"]["buckets"]},
        )
        if with_failures and summary.docs_failed:
            found = self._search({
                "size": 100, "query": {"range": {"docs_failed": {"gt": 0}}},
                "_source": ["failures"]})
            failures = [f for h in found["hits"]["hits"] for f in h["_source"]["failures"]]
            summary.failures = sorted(failures, key=lambda f: f.get("time", ""),
                                      reverse=True)[:MAX_STATUS_LIST]
        return summary
