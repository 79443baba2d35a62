"""Copies one work item: pages read from a :class:`DocumentSource`, written with
``_bulk`` keeping ``_id`` and routing (each ``_source`` the reader's bytes, untouched),
reads and writes overlapping, checkpointed in order on a timer. The writer is the same
for every source."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec

from ferry.api.common import MAX_STATUS_LIST
from ferry.clients.engine import Engine, Refused
from ferry.conditions import now
from ferry.errors import FerryError
from ferry.services import backoff
from ferry.services.backfill.documents import RESULT_WINDOW, DocumentSource, Hit
from ferry.services.backfill.throttle import TokenBucket
from ferry.services.backfill.workitems import WorkItem, WorkItemStore

log = logging.getLogger("ferry.backfill")

# Bulk item errors worth retrying: the node was busy, not the document wrong.
RETRYABLE_STATUSES = {429, 502, 503, 504}
# A request body above the target's limit: halved down to single documents.
TOO_LARGE = 413
MAX_BULK_ATTEMPTS = 12
REASON_LIMIT = 300
# Pages: the first is small (document sizes are not known yet); later ones are sized to
# fill a bulk by bytes, below the engines' default result window (the reader lists one
# document more than a page to know a window holds no more).
FIRST_PAGE, MIN_PAGE, MAX_PAGE = 500, 1, RESULT_WINDOW - 1
BULK_FILTER = "errors,items.*.status,items.*.error"
_ACTIONS = msgspec.json.Encoder()


@dataclass
class CopySettings:
    max_docs: int = 10_000
    max_bytes: int = 10 * 1024 * 1024
    op_type: str = "index"  # "create" skips ids that exist on the target
    bulks_in_flight: int = 4
    checkpoint_seconds: float = 15.0


# How long before an item's estimated end its worker calls ``near_end`` (see
# copy_item): about the time one refresh interval's documents take, so that restoring
# the target's refresh then leaves little for the final refresh.
NEAR_END_SECONDS = 2.0


@dataclass
class BatchResult:
    written: int
    failed: list[dict[str, Any]]
    skipped: int
    bytes: int


# Engines quote a refused document's values in their reasons ("Preview of field's
# value: 'x'", `For input string: "x"`, "value [x]"): every quoted run, and the
# brackets after a word that introduces a value, are redacted; the field names, types
# and error types a person acts on (also bracketed) stay.
# (An apostrophe after a letter — "field's" — opens no quote.)
_QUOTED = re.compile(r"(?<![A-Za-z])'[^']*'|\"[^\"]*\"")
_VALUE_IN_BRACKETS = re.compile(
    r"(?i)\b(value|values|input|string|text|term|token|content|date field)(\s*)\[[^\]]*\]")
REDACTED = "<redacted>"


def redact(reason: str) -> str:
    """An engine's reason for refusing a document, without the document's content."""
    reason = _QUOTED.sub(REDACTED, reason)
    return _VALUE_IN_BRACKETS.sub(lambda m: f"{m.group(1)}{m.group(2)}[{REDACTED}]", reason)


def _failure(index: str, doc_id: str, error: Any) -> dict[str, Any]:
    if isinstance(error, dict):
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            reason += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    else:
        reason = str(error)
    # Status, events and logs never carry document content; and reasons stay short.
    return {"time": now(), "index": index, "id": doc_id,
            "reason": redact(reason)[:REASON_LIMIT]}


def write_batch(target: Engine, target_index: str, hits: list[Hit],
                settings: CopySettings) -> BatchResult:
    """Bulk-write hits, retrying busy answers; returns what landed and what was refused.

    A body the target refuses for its size (HTTP 413: above its
    ``http.max_content_length``, or a proxy's limit) is split in halves until it passes;
    a single document still refused is a failure of that document, not of the batch."""
    pending = {h.id: h for h in hits}
    failed: list[dict[str, Any]] = []
    written = skipped = size = 0
    for attempt in range(MAX_BULK_ATTEMPTS):
        if not pending:
            break
        retry: dict[str, Hit] = {}
        bodies = deque(bulk_bodies(list(pending.values()), target_index, settings))
        while bodies:
            ids, body = bodies.popleft()
            try:
                ops = bulk_outcomes(target.request_raw(
                    "POST", "/_bulk", body=body, params={"filter_path": BULK_FILTER},
                    missing_ok=False), len(ids))
            except Refused as exc:
                if exc.status != TOO_LARGE:
                    raise
                if len(ids) > 1:  # smaller bodies may pass: try each half
                    bodies.extendleft(reversed(halves([pending[i] for i in ids],
                                                      target_index, settings)))
                    continue
                ops = [too_large(len(body))]
            except FerryError as exc:
                if not exc.retryable:
                    raise
                retry.update({i: pending[i] for i in ids})  # busy or unreachable
                continue
            if ops is None:  # every document written: the rule, and no items to read
                written += len(ids)
                size += sum(len(pending[i].source) for i in ids)
                continue
            for doc_id, op in zip(ids, ops, strict=True):
                if op.status < 300:
                    written += 1
                    size += len(pending[doc_id].source)
                elif op.status == 409 and settings.op_type == "create":
                    skipped += 1
                elif op.status in RETRYABLE_STATUSES:
                    retry[doc_id] = pending[doc_id]
                else:
                    failed.append(_failure(target_index, doc_id, op.error))
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
    """Split one page into bulk bodies no larger than max_bytes (at least one doc).

    A body is built in one buffer: each action line encoded into it by msgspec, each
    ``_source`` appended as the reader's bytes. (orjson hands back every bytes object
    with 4 KB or more allocated behind it: a page of action lines held as objects
    would cost that per document.)"""
    chunks: list[tuple[list[str], bytes]] = []
    ids: list[str] = []
    body = bytearray()
    for hit in hits:
        action: dict[str, Any] = {"_index": target_index, "_id": hit.id}
        if hit.routing is not None:
            action["routing"] = hit.routing
        start = len(body)
        _ACTIONS.encode_into({settings.op_type: action}, body, -1)
        body += b"\n"
        body += hit.source
        body += b"\n"
        if ids and len(body) > settings.max_bytes:
            chunks.append((ids, bytes(memoryview(body)[:start])))
            del body[:start]
            ids = []
        ids.append(hit.id)
    if ids:
        chunks.append((ids, bytes(body)))
    return chunks


def halves(hits: list[Hit], target_index: str, settings: CopySettings
           ) -> list[tuple[list[str], bytes]]:
    """The bulk bodies of each half of ``hits`` (two or more), in order: what is sent
    instead of a body the target refused as too large."""
    middle = len(hits) // 2
    return [*bulk_bodies(hits[:middle], target_index, settings),
            *bulk_bodies(hits[middle:], target_index, settings)]


class BulkOp(msgspec.Struct, gc=False):
    """One item of a ``_bulk`` answer: its status and, when refused, the error."""

    status: int = 500
    error: Any = None


class _BulkAnswer(msgspec.Struct, gc=False):
    errors: bool = True
    items: list[dict[str, BulkOp]] = msgspec.field(default_factory=list)


class _BulkHead(msgspec.Struct, gc=False):
    """A bulk answer's ``errors`` flag, its items left as the answer's bytes."""

    errors: bool = True
    items: msgspec.Raw = msgspec.Raw(b"[]")


_BULK_ANSWER = msgspec.json.Decoder(_BulkAnswer)
_BULK_HEAD = msgspec.json.Decoder(_BulkHead)


def bulk_outcomes(raw: bytes | None, sent: int) -> list[BulkOp] | None:
    """Each document's outcome, in the order sent (a bulk answers its items in the
    order of its actions, so no ``_id`` needs to come back); None: all written.

    Decoded by msgspec, not into dicts: a bulk of ten thousand documents answers with
    ten thousand items."""
    try:
        head = _BULK_HEAD.decode(raw or b"{}")
        # All written, the rule: each item holds one "status" key (and, filtered by
        # BULK_FILTER, nothing else), so counting the key, which JSON cannot hold
        # inside a string, checks that each document was answered, and no item is
        # built. (A count that differs is read whole.)
        if not head.errors and bytes(head.items).count(b'"status":') == sent:
            return None
        answer = _BULK_ANSWER.decode(raw or b"{}")
    except msgspec.DecodeError as exc:
        raise FerryError(f"the target's bulk answer could not be read: {exc}",
                         code="UnreadableAnswer") from None
    if not answer.errors and len(answer.items) == sent:
        return None
    ops = [next(iter(entry.values()), BulkOp()) for entry in answer.items]
    # An item missing from the answer is unknown: sent again, like a busy one.
    return ops[:sent] + [BulkOp(503)] * (sent - len(ops))


def too_large(size: int) -> BulkOp:
    """The outcome of a document the target refused alone for its size."""
    return BulkOp(TOO_LARGE, {
        "type": "document_too_large",
        "reason": f"document too large for the target (HTTP 413): a bulk request of "
                  f"{size} bytes holding only this document is above the target's "
                  "http.max_content_length"})


@dataclass
class _Written:
    """A page whose bulk is in flight, and the checkpoint it reaches once written."""

    future: Future[BatchResult]
    reached: int


def page_size(settings: CopySettings, docs: int, size: int) -> int:
    """Documents to ask for next: enough to fill a bulk of ``max_bytes`` at the size
    documents had so far, within [MIN_PAGE, max_docs] and the engines' result window."""
    cap = min(settings.max_docs, MAX_PAGE)
    if docs <= 0:
        return min(cap, FIRST_PAGE)
    return max(min(cap, MIN_PAGE), min(cap, settings.max_bytes * docs // max(1, size)))


def ends_within(left: int, written: int, seconds_copying: float, seconds: float) -> bool:
    """Whether ``left`` documents take at most ``seconds`` at the rate ``written`` took
    ``seconds_copying`` (False until something was written)."""
    if written <= 0 or seconds_copying <= 0:
        return False
    return left <= written / seconds_copying * seconds


def copy_item(item: WorkItem, source: DocumentSource, target: Engine, store: WorkItemStore,
              holder: str, settings: Callable[[], CopySettings], throttle: TokenBucket,
              should_stop: Callable[[], bool],
              near_end: Callable[[], None] | None = None) -> str:
    """Copy until the item is exhausted ("done"), asked to stop ("released"), or its
    lease was taken by another worker ("lost").

    A pipeline per worker: the next page is read while earlier pages are written, with
    up to ``bulks_in_flight`` bulks at once. Pages are applied to the item in the order
    they were read, so its checkpoint only ever covers pages that were written: a crash
    re-copies from there, never skips. The checkpoint (which renews the lease) is saved
    every ``checkpoint_seconds``, well inside the lease, and when the item ends.

    ``settings`` gives the current settings, taken afresh for every page: a change of
    the Backfill's batch or onConflict applies from the next page read; a throttle's
    from the next page paid for (pages are at most one second of the throttle's share).

    ``near_end`` is called once, when the item's estimated rest takes at most
    NEAR_END_SECONDS.
    """
    in_flight: deque[_Written] = deque()
    read_docs = read_bytes = 0
    started = last_save = time.monotonic()
    done_before = item.docs_done

    def apply(written: _Written) -> None:
        result = written.future.result()
        item.checkpoint = written.reached
        item.docs_done += result.written + result.skipped
        item.docs_failed += len(result.failed)
        item.bytes_done += result.bytes
        item.failures = (item.failures + result.failed)[-MAX_STATUS_LIST:]

    def end(exhausted: bool, reached: int) -> str:
        while in_flight:
            apply(in_flight.popleft())
        if exhausted:
            item.checkpoint = reached
            store.complete(item, holder)
            return "done"
        store.release(item)
        return "released"

    def next_page(docs: int, size: int) -> int:
        return min(page_size(settings(), docs, size), throttle.page_limit() or MAX_PAGE)

    with ThreadPoolExecutor(max_workers=1 + settings().bulks_in_flight,
                            thread_name_prefix=f"ferry-copy-{holder}") as pool:
        reading = pool.submit(source.read, item, item.checkpoint, next_page(0, 0))
        try:
            while True:
                hits, reached = reading.result()
                if not hits or should_stop():
                    return end(not hits, reached)
                read_docs += len(hits)
                read_bytes += sum(len(h.source) for h in hits)
                # What is left counts from what was read (the written lags by the bulks
                # in flight); the pace from what was written (reads run ahead of the
                # writes and of the throttle).
                if near_end is not None and item.docs_estimate > 0 and ends_within(
                        item.docs_estimate - done_before - read_docs,
                        item.docs_done - done_before, time.monotonic() - started,
                        NEAR_END_SECONDS):
                    near_end()
                    near_end = None
                reading = pool.submit(source.read, item, reached,
                                      next_page(read_docs, read_bytes))
                if not throttle.acquire(len(hits), should_stop):
                    return end(False, reached)  # this page unwritten: not checkpointed
                current = settings()
                in_flight.append(_Written(pool.submit(write_batch, target, item.target,
                                                      hits, current), reached))
                while len(in_flight) >= current.bulks_in_flight:
                    apply(in_flight.popleft())
                if time.monotonic() - last_save >= current.checkpoint_seconds:
                    last_save = time.monotonic()
                    if not store.checkpoint(item, holder):
                        log.warning("lost the lease on %s (another worker took it over)",
                                    item.id)
                        return "lost"
        finally:
            reading.cancel()
