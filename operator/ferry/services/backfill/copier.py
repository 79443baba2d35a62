"""Copies one work item: pages of documents read in ``_seq_no`` order from one source
shard, written with ``_bulk`` keeping ``_id`` and routing, checkpointed per batch."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opensearchpy import OpenSearch, TransportError
from opensearchpy import exceptions as os_exc

from ferry.errors import FerryError
from ferry.services.backfill.workitems import WorkItem, WorkItemStore

log = logging.getLogger("ferry.backfill")

# Bulk item errors worth retrying: the node was busy, not the document wrong.
RETRYABLE_STATUSES = {429, 502, 503, 504}
MAX_BULK_ATTEMPTS = 12
REASON_LIMIT = 300


class TokenBucket:
    """Documents per second shared by every worker of one process; None: unlimited."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._allowance = rate or 0.0
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, n: int) -> None:
        if not self.rate:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                self._allowance = min(self.rate, self._allowance
                                      + (now - self._last) * self.rate)
                self._last = now
                if self._allowance >= min(n, self.rate):
                    self._allowance -= n
                    return
                wait = (min(n, self.rate) - self._allowance) / self.rate
            time.sleep(wait)


@dataclass
class CopySettings:
    max_docs: int = 1000
    max_bytes: int = 10 * 1024 * 1024
    op_type: str = "index"  # "create" skips ids that exist on the target


@dataclass
class BatchResult:
    written: int
    failed: list[dict[str, Any]]
    skipped: int
    bytes: int


def _failure(index: str, doc_id: str, error: Any) -> dict[str, Any]:
    if isinstance(error, dict):
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    else:
        reason = str(error)
    # Reasons from mapping errors can quote a field value; keep them short.
    return {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "index": index,
            "id": doc_id, "reason": reason[:REASON_LIMIT]}


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2 ** attempt) * random.uniform(0.5, 1.0)


def write_batch(target: OpenSearch, target_index: str, hits: list[dict[str, Any]],
                settings: CopySettings) -> BatchResult:
    """Bulk-write hits, retrying busy answers; returns what landed and what was refused."""
    pending = {h["_id"]: h for h in hits}
    failed: list[dict[str, Any]] = []
    written = skipped = size = 0
    sources = {h["_id"]: json.dumps(h["_source"], separators=(",", ":"),
                                    ensure_ascii=False) for h in hits}
    for attempt in range(MAX_BULK_ATTEMPTS):
        if not pending:
            break
        chunks = _chunks(list(pending.values()), sources, target_index, settings)
        retry: dict[str, dict[str, Any]] = {}
        for ids, body in chunks:
            try:
                result = target.bulk(body=body, filter_path=BULK_FILTER)
            except TransportError as exc:
                status = exc.status_code if isinstance(exc.status_code, int) else 0
                if status in RETRYABLE_STATUSES or isinstance(exc, os_exc.ConnectionError):
                    retry.update({i: pending[i] for i in ids})
                    continue
                raise
            for entry in result.get("items") or []:
                op = next(iter(entry.values()))
                doc_id, status = op.get("_id"), op.get("status", 500)
                if status < 300:
                    written += 1
                    size += len(sources[doc_id])
                elif status == 409 and settings.op_type == "create":
                    skipped += 1
                elif status in RETRYABLE_STATUSES:
                    retry[doc_id] = pending[doc_id]
                else:
                    failed.append(_failure(target_index, doc_id, op.get("error")))
        pending = retry
        if pending:
            time.sleep(_backoff(attempt))
    if pending:
        raise FerryError(f"the target kept refusing {len(pending)} documents of "
                         f"{target_index} as busy after {MAX_BULK_ATTEMPTS} attempts",
                         code="TargetBusy")
    return BatchResult(written, failed, skipped, size)


def _chunks(hits: list[dict[str, Any]], sources: dict[str, str], target_index: str,
            settings: CopySettings) -> list[tuple[list[str], str]]:
    """Split one page into bulk bodies no larger than max_bytes (at least one doc)."""
    chunks: list[tuple[list[str], str]] = []
    ids: list[str] = []
    lines: list[str] = []
    size = 0
    for hit in hits:
        action: dict[str, Any] = {"_index": target_index, "_id": hit["_id"]}
        if hit.get("_routing") is not None:
            action["routing"] = hit["_routing"]
        line = json.dumps({settings.op_type: action}) + "\n" + sources[hit["_id"]] + "\n"
        if ids and size + len(line) > settings.max_bytes:
            chunks.append((ids, "".join(lines)))
            ids, lines, size = [], [], 0
        ids.append(hit["_id"])
        lines.append(line)
        size += len(line)
    if ids:
        chunks.append((ids, "".join(lines)))
    return chunks


SEARCH_FILTER = "hits.hits._id,hits.hits._routing,hits.hits._source,hits.hits.sort"
BULK_FILTER = "errors,items.*._id,items.*.status,items.*.error"


def read_page(source: OpenSearch, item: WorkItem, size: int
              ) -> tuple[list[dict[str, Any]], int]:
    """The next page of the item and the checkpoint it reaches.

    The range is bounded to a window of ``_seq_no`` values just past the checkpoint, so
    each page costs the engine a scan of that window, not of the whole rest of the
    shard (``search_after`` alone would make a shard's copy quadratic). A window with
    fewer than ``size`` live documents is read whole and the checkpoint jumps to its
    end; empty windows (deleted or updated documents) are skipped the same way.
    """
    checkpoint = item.checkpoint
    while checkpoint + 1 < item.seq_to:
        upper = min(item.seq_to, checkpoint + 1 + 2 * size)
        body = {
            "size": size,
            "sort": [{"_seq_no": "asc"}],
            "query": {"range": {"_seq_no": {"gte": checkpoint + 1, "lt": upper}}},
            "track_total_hits": False,
        }
        result = source.search(index=item.index, body=body,
                               preference=f"_shards:{item.shard}", filter_path=SEARCH_FILTER)
        hits = (result.get("hits") or {}).get("hits") or []
        if len(hits) == size:
            return hits, int(hits[-1]["sort"][0])
        if hits or upper >= item.seq_to:
            return hits, upper - 1
        checkpoint = upper - 1
        if item.seq_to >= 2 ** 62 and checkpoint > _max_seq_no_hint(source, item):
            return [], checkpoint
    return [], checkpoint


def _max_seq_no_hint(source: OpenSearch, item: WorkItem) -> int:
    """The shard's current highest _seq_no: where an open-ended item ends for now."""
    stats = source.indices.stats(index=item.index, metric="docs", level="shards")
    copies = stats["indices"][item.index]["shards"][str(item.shard)]
    return int(next(c for c in copies if c["routing"]["primary"])["seq_no"]["max_seq_no"])


def copy_item(item: WorkItem, source: OpenSearch, target: OpenSearch, store: WorkItemStore,
              holder: str, settings: CopySettings, throttle: TokenBucket,
              should_stop: Callable[[], bool]) -> str:
    """Copy until the item is exhausted ("done"), asked to stop ("released"), or its
    lease was taken by another worker ("lost")."""
    while True:
        if should_stop():
            store.release(item)
            return "released"
        hits, reached = read_page(source, item, settings.max_docs)
        if not hits:
            item.checkpoint = reached
            store.complete(item)
            return "done"
        throttle.acquire(len(hits))
        result = write_batch(target, item.target, hits, settings)
        item.checkpoint = reached
        item.docs_done += result.written + result.skipped
        item.docs_failed += len(result.failed)
        item.bytes_done += result.bytes
        item.failures = (item.failures + result.failed)[-20:]
        if not store.checkpoint(item, holder):
            log.warning("lost the lease on %s (another worker took it over)", item.id)
            return "lost"
