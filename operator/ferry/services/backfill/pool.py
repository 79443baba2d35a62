"""A pool of copy workers (threads) for one Backfill, scaled and paused at runtime.

The operator runs one pool per Backfill with the inProcess executor; `ferry worker`
runs one per process for the pods executor. Either way the workers only talk to the
work item store, so pools in different processes share one Backfill safely.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ferry.clients.engine import Engine
from ferry.errors import FerryError
from ferry.services.backfill.copier import CopySettings, TokenBucket, copy_item
from ferry.services.backfill.documents import DocumentSource
from ferry.services.backfill.workitems import WorkItemStore

log = logging.getLogger("ferry.backfill")
IDLE_SECONDS = 2.0


@dataclass
class CopyContext:
    source: DocumentSource
    target: Engine
    store: WorkItemStore
    settings: CopySettings
    throttle: TokenBucket


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
        self.holder_prefix = f"{socket.gethostname()}-{os.getpid()}-{name}"

    @property
    def active(self) -> int:
        with self._lock:
            return sum(1 for t in self._slots.values() if t.is_alive())

    def scale(self, desired: int, paused: bool) -> None:
        """Start missing workers; surplus ones stop after their current batch."""
        with self._lock:
            self._desired, self._paused = desired, paused
            if paused or self._closing:
                return
            for slot in range(desired):
                thread = self._slots.get(slot)
                if thread is None or not thread.is_alive():
                    thread = threading.Thread(target=self._run, args=(slot,), daemon=True,
                                              name=f"ferry-worker-{self.name}-{slot}")
                    self._slots[slot] = thread
                    thread.start()

    def _should_stop(self, slot: int) -> bool:
        return self._closing or self._paused or slot >= self._desired

    def _run(self, slot: int) -> None:
        holder = f"{self.holder_prefix}-{slot}"
        ctx = self.context
        while not self._should_stop(slot):
            try:
                item = ctx.store.claim(holder)
                if item is None:
                    if ctx.store.all_done():
                        if self.on_finished is not None:
                            self.on_finished()
                        return
                    time.sleep(IDLE_SECONDS)
                    continue
                outcome = copy_item(item, ctx.source, ctx.target, ctx.store, holder,
                                    ctx.settings, ctx.throttle,
                                    lambda: self._should_stop(slot))
                log.debug("worker %s: item %s %s", holder, item.id, outcome)
            except FerryError as exc:
                log.warning("worker %s: %s", holder, exc.message)
                time.sleep(IDLE_SECONDS)
            except Exception:  # a worker never dies silently, nor kills the pool
                log.exception("worker %s: unexpected error; retrying", holder)
                time.sleep(IDLE_SECONDS)

    def close(self, timeout: float = 60.0) -> None:
        """Stop every worker; each releases its item after the in-flight batch."""
        with self._lock:
            self._closing = True
            threads = list(self._slots.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
