"""A pool of copy workers (threads) for one Backfill, scaled, paused and re-configured
at runtime.

The operator runs one pool per Backfill with the inProcess executor; `ferry worker`
runs one per process for the pods executor. Either way the workers only talk to the
work item store, so pools in different processes share one Backfill safely.

The throttle is Backfill-wide: each pool is a member of the coordination index
(:class:`Membership`) and its token bucket gets ``limit / live members``. A new member
that finds others sends nothing for JOIN_PERIODS membership periods (by then every one
of them has counted it and lowered its own share; one that finds itself alone starts at
once: whoever registers after it sees it, and waits); a member whose renewals fail stops sending
before its membership can expire; a dead member's share returns to the others once its
membership expires, one lease (FERRY_LEASE_SECONDS) after its last renewal. Settings
given to ``configure`` (batch, onConflict, the limit) apply from each worker's next page.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from ferry.clients.engine import Engine
from ferry.errors import FerryError
from ferry.services.backfill.copier import CopySettings, copy_item
from ferry.services.backfill.documents import DocumentSource
from ferry.services.backfill.throttle import TokenBucket
from ferry.services.backfill.tuning import restore_for_the_last_items
from ferry.services.backfill.workitems import WorkItem, WorkItemStore, now_ms, renewal_due

log = logging.getLogger("ferry.backfill")
IDLE_SECONDS = 2.0
# Membership periods a joining process waits before it sends: every other member
# re-counts once a period, so by then each has lowered its share to make room.
JOIN_PERIODS = 2


@dataclass
class CopyContext:
    source: DocumentSource
    target: Engine
    store: WorkItemStore
    settings: CopySettings
    throttle: TokenBucket


class Membership:
    """This process's part of a Backfill-wide throttle: a member document in the
    coordination index, renewed every ``period`` (the checkpoint timer, a quarter of
    the lease), each renewal re-counting the live members into the bucket."""

    def __init__(self, store: WorkItemStore, member: str, bucket: TokenBucket,
                 period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.member, self.bucket = store, member, bucket
        self.period, self.lease = period, store.lease_ms / 1000
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._valid_until = clock()
        bucket.expire(self._valid_until)  # nothing is sent before the first count

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"ferry-member-{self.member}")
            self._thread.start()

    def renew(self) -> None:
        """Register or renew, and take the current count. A first registration, or one
        after the last had lapsed, that finds other members holds the bucket for
        JOIN_PERIODS periods."""
        started = self._clock()
        joining = started >= self._valid_until
        members = self.store.join(self.member, renewal=not joining)
        self.bucket.set_members(members)
        if joining and members > 1:
            self.bucket.hold(started + JOIN_PERIODS * self.period)
        # Stop sending a period before the others may count this member as gone.
        self._valid_until = started + self.lease - self.period
        self.bucket.expire(self._valid_until)

    def _run(self) -> None:
        while True:
            try:
                self.renew()
            except FerryError as exc:
                log.warning("throttle membership %s: %s", self.member, exc.message)
            if self._stop.wait(self.period):
                break
        with suppress(FerryError):
            self.store.leave(self.member)

    def stop(self, timeout: float = 30.0) -> None:
        """Leave (after the workers stopped sending): the others' shares grow."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


class WorkerPool:
    def __init__(self, name: str, context: CopyContext,
                 on_finished: Callable[[], None] | None = None) -> None:
        self.name = name
        self.context = context
        # Called when a worker finds every item done, so the owner need not poll for it.
        self.on_finished = on_finished
        self._lock = threading.Lock()
        self._desired = 0
        self._paused = False
        self._closing = False
        self._slots: dict[int, threading.Thread] = {}
        # Host and pid alone are not unique: host-network pods share the node's hostname
        # and each runs as pid 1 in its own pid namespace.
        self.holder_prefix = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}-{name}"
        self.membership = Membership(context.store, self.holder_prefix, context.throttle,
                                     context.settings.checkpoint_seconds)

    @property
    def active(self) -> int:
        with self._lock:
            return sum(1 for t in self._slots.values() if t.is_alive())

    def configure(self, settings: CopySettings, limit: float | None) -> None:
        """New copy settings and throttle limit, from each worker's next page on."""
        self.context.settings = settings
        self.context.throttle.set_limit(limit)

    def scale(self, desired: int, paused: bool) -> None:
        """Start missing workers; surplus ones stop after their current batch."""
        with self._lock:
            self._desired, self._paused = desired, paused
            if paused or self._closing:
                return
            if desired:
                self.membership.start()
            for slot in range(desired):
                thread = self._slots.get(slot)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(target=self._run, args=(slot,), daemon=True,
                                              name=f"ferry-worker-{self.name}-{slot}")
                    self._slots[slot] = thread
                    thread.start()

    def _should_stop(self, slot: int) -> bool:
        return self._closing or self._paused or slot >= self._desired

    def _next(self, holder: str, held: deque[WorkItem]) -> WorkItem | None:
        """The next item to copy: one claimed earlier in a batch, its lease renewed
        first when half of it has passed (dropped if another worker has taken it over
        since), or a new batch's first; None when nothing is claimable."""
        store = self.context.store
        if not held:
            held.extend(store.claim_batch(holder))
        while held:
            item = held.popleft()
            if not renewal_due(item, now_ms(), store.lease_ms) \
                    or store.checkpoint(item, holder):
                return item
        return None

    def _near_end(self) -> None:
        """A worker's item ends within seconds: if nothing is left to claim, these are
        the load's last seconds, and the target indices get their own settings back
        now (see tuning.restore_for_the_last_items)."""
        store = self.context.store
        if store.left_to_claim != 0:
            return
        try:
            if restore_for_the_last_items(self.context.target, store):
                log.info("%s: target settings restored while the last items are copied",
                         self.name)
        except FerryError as exc:  # verification restores them anyway
            log.warning("%s: restoring the target settings early: %s", self.name,
                        exc.message)

    def _release(self, held: deque[WorkItem]) -> None:
        """Items claimed but not started go back at once, not after their leases."""
        while held:
            with suppress(FerryError):
                self.context.store.release(held.popleft())

    def _run(self, slot: int) -> None:
        holder = f"{self.holder_prefix}-{slot}"
        held: deque[WorkItem] = deque()
        try:
            self._work(slot, holder, held)
        finally:
            self._release(held)

    def _work(self, slot: int, holder: str, held: deque[WorkItem]) -> None:
        ctx = self.context
        while not self._should_stop(slot):
            try:
                item = self._next(holder, held)
                if item is None:
                    if ctx.store.all_done():
                        if self.on_finished is not None:
                            self.on_finished()
                        return
                    time.sleep(IDLE_SECONDS)
                    continue
                outcome = copy_item(item, ctx.source, ctx.target, ctx.store, holder,
                                    lambda: ctx.settings, ctx.throttle,
                                    lambda: self._should_stop(slot), self._near_end)
                log.debug("worker %s: item %s %s", holder, item.id, outcome)
            except FerryError as exc:
                log.warning("worker %s: %s", holder, exc.message)
                time.sleep(IDLE_SECONDS)
            except Exception:  # a worker never dies silently, nor kills the pool
                log.exception("worker %s: unexpected error; retrying", holder)
                time.sleep(IDLE_SECONDS)

    def close(self, timeout: float = 60.0) -> None:
        """Stop every worker; each releases its item after the in-flight batch, and the
        items it had claimed but not started."""
        with self._lock:
            self._closing = True
            threads = list(self._slots.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.membership.stop()
