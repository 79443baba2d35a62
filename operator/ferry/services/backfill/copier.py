"""Copies one work item: pages read from a :class:`DocumentSource`, written with
``_bulk`` keeping ``_id`` and routing, checkpointed per batch. The writer is the same
for every source."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ferry.api.common import MAX_STATUS_LIST
from ferry.clients.engine import Engine
from ferry.conditions import now
from ferry.errors import FerryError
from ferry.services import backoff
from ferry.services.backfill.documents import DocumentSource, Hit
from ferry.services.backfill.workitems import WorkItem, WorkItemStore

log = logging.getLogger("ferry.backfill")

# Bulk item errors worth retrying: the node was busy, not the document wrong.
RETRYABLE_STATUSES = {429, 502, 503, 504}
MAX_BULK_ATTEMPTS = 12
REASON_LIMIT = 300
BULK_FILTER = "errors,items.*._id,items.*.status,items.*.error"


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
                now_ = time.monotonic()
                self._allowance = min(self.rate, self._allowance
                                      + (now_ - self._last) * self.rate)
                self._last = now_
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
    return {"time": now(), "index": index, "id": doc_id, "reason": reason[:REASON_LIMIT]}


def write_batch(target: Engine, target_index: str, hits: list[Hit],
                settings: CopySettings) -> BatchResult:
    """Bulk-write hits, retrying busy answers; returns what landed and what was refused."""
    pending = {h.id: h for h in hits}
    failed: list[dict[str, Any]] = []
    written = skipped = size = 0
    for attempt in range(MAX_BULK_ATTEMPTS):
        if not pending:
            break
        retry: dict[str, Hit] = {}
        for ids, body in bulk_bodies(list(pending.values()), target_index, settings):
            try:
                result = target.request("POST", "/_bulk", body=body,
                                        params={"filter_path": BULK_FILTER},
                                        missing_ok=False)
            except FerryError as exc:
                if not exc.retryable:
                    raise
                retry.update({i: pending[i] for i in ids})  # busy or unreachable
                continue
            for entry in result.get("items") or []:
                op = next(iter(entry.values()))
                doc_id, status = op.get("_id"), op.get("status", 500)
                if status < 300:
                    written += 1
                    size += len(pending[doc_id].source)
                elif status == 409 and settings.op_type == "create":
                    skipped += 1
                elif status in RETRYABLE_STATUSES:
                    retry[doc_id] = pending[doc_id]
                else:
                    failed.append(_failure(target_index, doc_id, op.get("error")))
        pending = retry
        if pending:
            time.sleep(backoff.delay(attempt, base=0.4, cap=30.0, fraction=0.3))
    if pending:
        raise FerryError(f"the target kept refusing {len(pending)} documents of "
                         f"{target_index} as busy after {MAX_BULK_ATTEMPTS} attempts",
                         code="TargetBusy")
    return BatchResult(written, failed, skipped, size)


def bulk_bodies(hits: list[Hit], target_index: str, settings: CopySettings
                ) -> list[tuple[list[str], bytes]]:
    """Split one page into bulk bodies no larger than max_bytes (at least one doc)."""
    chunks: list[tuple[list[str], bytes]] = []
    ids: list[str] = []
    lines: list[bytes] = []
    size = 0
    for hit in hits:
        action: dict[str, Any] = {"_index": target_index, "_id": hit.id}
        if hit.routing is not None:
            action["routing"] = hit.routing
        line = orjson.dumps({settings.op_type: action}) + b"\n" + hit.source + b"\n"
        if ids and size + len(line) > settings.max_bytes:
            chunks.append((ids, b"".join(lines)))
            ids, lines, size = [], [], 0
        ids.append(hit.id)
        lines.append(line)
        size += len(line)
    if ids:
        chunks.append((ids, b"".join(lines)))
    return chunks


def copy_item(item: WorkItem, source: DocumentSource, target: Engine, store: WorkItemStore,
              holder: str, settings: CopySettings, throttle: TokenBucket,
              should_stop: Callable[[], bool]) -> str:
    """Copy until the item is exhausted ("done"), asked to stop ("released"), or its
    lease was taken by another worker ("lost")."""
    while True:
        if should_stop():
            store.release(item)
            return "released"
        hits, reached = source.read(item, item.checkpoint, settings.max_docs)
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
        item.failures = (item.failures + result.failed)[-MAX_STATUS_LIST:]
        if not store.checkpoint(item, holder):
            log.warning("lost the lease on %s (another worker took it over)", item.id)
            return "lost"
